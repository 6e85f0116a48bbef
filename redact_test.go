package exactly_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

// TestRedactErrorKeepsNoPayload: the dead-letter warning's error has the
// values drivers and decoders quote replaced, and is cut short.
func TestRedactErrorKeepsNoPayload(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`invalid input syntax for type bigint: "4111-1111"`, `invalid input syntax for type bigint: "…"`},
		{`Incorrect integer value: 'secret' for column 'qty' at row 1`, `Incorrect integer value: '…' for column '…' at row 1`},
		{`record key "{\"ssn\":\"1\"}" is not a JSON object`, `record key "…" is not a JSON object`},
		{"no quotes at all", "no quotes at all"},
	} {
		if got := exactly.RedactError(errors.New(c.in)); got != c.want {
			t.Errorf("RedactError(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := exactly.RedactError(errors.New(strings.Repeat("x", 1000))); len(got) > 310 {
		t.Errorf("RedactError of 1000 bytes: %d bytes", len(got))
	}
}
