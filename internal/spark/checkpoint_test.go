package spark

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exactly/exactly"
)

// writeBatch writes offsets/id in Spark's format and, when committed,
// commits/id, the way Spark's OffsetSeqLog and CommitLog write them.
func writeBatch(t *testing.T, dir string, id int, committed bool, sources ...string) {
	t.Helper()
	for _, d := range []string{"offsets", "commits"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	meta := fmt.Sprintf(`{"batchWatermarkMs":0,"batchTimestampMs":%d,"conf":{"spark.sql.shuffle.partitions":"200"}}`, 1700000000000+id)
	body := "v1\n" + meta + "\n" + strings.Join(sources, "\n")
	if err := os.WriteFile(filepath.Join(dir, "offsets", fmt.Sprint(id)), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	// Spark's checksum files sit next to the logs.
	os.WriteFile(filepath.Join(dir, "offsets", "."+fmt.Sprint(id)+".crc"), []byte("crc"), 0o644)
	if committed {
		if err := os.WriteFile(filepath.Join(dir, "commits", fmt.Sprint(id)), []byte("v1\n{\"nextBatchWatermarkMs\":0}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadLastCommittedAndUncommitted(t *testing.T) {
	dir := t.TempDir()
	writeBatch(t, dir, 0, true, `{"shop.orders":{"0":10,"1":4}}`)
	writeBatch(t, dir, 1, true, `{"shop.orders":{"0":25,"1":9}}`, `-`)
	writeBatch(t, dir, 2, false, `{"shop.orders":{"0":40,"1":9,"2":3}}`, `{"logOffset":7}`)
	cp, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	tp := func(p int32) exactly.TP { return exactly.TP{Topic: "shop.orders", Partition: p} }
	if cp.LastCommitted != 1 || fmt.Sprint(cp.Next) != fmt.Sprint(map[exactly.TP]int64{tp(0): 25, tp(1): 9}) {
		t.Errorf("last committed: batch %d, next %v", cp.LastCommitted, cp.Next)
	}
	if len(cp.Uncommitted) != 1 {
		t.Fatalf("uncommitted: %+v", cp.Uncommitted)
	}
	u := cp.Uncommitted[0]
	got := fmt.Sprint(u.ID, u.From, u.To)
	want := fmt.Sprint(2, map[exactly.TP]int64{tp(0): 25, tp(1): 9, tp(2): -1}, map[exactly.TP]int64{tp(0): 40, tp(1): 9, tp(2): 3})
	if got != want {
		t.Errorf("uncommitted batch:\n got %s\nwant %s", got, want)
	}
}

func TestReadRefusesWhatItCannotTrust(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{"empty", map[string]string{"metadata": `{"id":"x"}`}, "offsets"},
		{"version", map[string]string{"offsets/0": "v9\n{}\n{\"t\":{\"0\":1}}", "commits/0": "v1\n{}"}, `got version "v9"`},
		{"truncated", map[string]string{"offsets/0": "v1", "commits/0": "v1\n{}"}, "incomplete"},
		{"partition", map[string]string{"offsets/0": "v1\n{}\n{\"t\":{\"x\":1}}", "commits/0": "v1\n{}"}, `partition "x"`},
		{"negative partition", map[string]string{"offsets/0": "v1\n{}\n{\"t\":{\"-1\":1}}", "commits/0": "v1\n{}"}, `partition "-1"`},
		{"unresolved", map[string]string{"offsets/0": "v1\n{}\n{\"t\":{\"0\":-2}}", "commits/0": "v1\n{}"}, "not a resolved offset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range tc.files {
				os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
				os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
			}
			_, err := Read(dir)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestReadNothingCommitted(t *testing.T) {
	dir := t.TempDir()
	writeBatch(t, dir, 0, false, `{"t":{"0":5}}`)
	cp, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cp.LastCommitted != -1 || len(cp.Next) != 0 || len(cp.Uncommitted) != 1 || cp.Uncommitted[0].From[exactly.TP{Topic: "t"}] != -1 {
		t.Errorf("got %+v", cp)
	}
}

// FuzzRead: whatever an offsets file holds, Read returns offsets or an
// error, never panics, and never returns a negative offset.
func FuzzRead(f *testing.F) {
	f.Add([]byte("v1\n{\"batchWatermarkMs\":0}\n{\"t\":{\"0\":10,\"1\":4}}\n-"))
	f.Add([]byte("v1\n\n{\"logOffset\":3}"))
	f.Add([]byte("v1\n{}\n{\"t\":{\"2147483648\":1}}"))
	f.Add([]byte("v1\n{}\n{\"t\":{\"-1\":1}}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "offsets"), 0o755)
		os.MkdirAll(filepath.Join(dir, "commits"), 0o755)
		os.WriteFile(filepath.Join(dir, "offsets", "0"), body, 0o644)
		os.WriteFile(filepath.Join(dir, "commits", "0"), []byte("v1\n{}"), 0o644)
		cp, err := Read(dir)
		if err != nil {
			return
		}
		for tp, o := range cp.Next {
			if o < 0 || tp.Partition < 0 {
				t.Fatalf("%s at %d", tp, o)
			}
		}
	})
}
