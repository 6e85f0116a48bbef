package decode

import (
	"fmt"
	"testing"

	"github.com/exactly/exactly"
)

// TestJSONKeyFrom pins where the key comes from: key_from record_key takes
// the record key in any form, value takes the value's fields, and the
// default takes the record key only when it is a JSON object (a scalar
// record key is often a partitioning hint, not the row's key), except for
// a tombstone, which has nothing else.
func TestJSONKeyFrom(t *testing.T) {
	for _, tc := range []struct {
		keyFrom, key, value string
		want                string // fmt of Change.Key, or "error"
	}{
		{"", `{"id":7}`, `{"id":7,"n":"a"}`, "map[id:7]"},
		{"", `{"schema":{"type":"struct"},"payload":{"id":7}}`, `{"id":7}`, "map[id:7]"},
		{"", `user-42`, `{"id":42}`, "map[]"},
		{"", `42`, ``, "map[id:42]"},
		{"", ``, ``, "error"},
		{"record_key", `42`, `{"id":1}`, "map[id:42]"},
		{"record_key", `{"id":9}`, `{"id":1}`, "map[id:9]"},
		{"record_key", ``, `{"id":1}`, "error"},
		{"value", `{"id":9}`, `{"id":1}`, "map[]"},
		{"value", `9`, ``, "map[id:9]"},
	} {
		d := &JSON{Key: []string{"id"}, KeyFrom: tc.keyFrom}
		r := &exactly.Record{Topic: "t", Key: []byte(tc.key)}
		if tc.value != "" {
			r.Value = []byte(tc.value)
		}
		ch, err := d.Decode(r)
		got := fmt.Sprint(ch.Key)
		if err != nil {
			got = "error"
		}
		if got != tc.want {
			t.Errorf("key_from %q key %q value %q: got %s (%v), want %s", tc.keyFrom, tc.key, tc.value, got, err, tc.want)
		}
	}
}
