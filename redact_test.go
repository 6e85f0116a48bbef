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
		// A value holding its own quote: MySQL and PostgreSQL quote
		// O'Brien unescaped; the mask ended at the inner quote and the log
		// showed Brien-Smith (issue 16 review).
		{`Incorrect integer value: 'O'Brien-Smith' for column 'qty' at row 1`, `Incorrect integer value: '…' for column '…' at row 1`},
		{`invalid input syntax for type integer: "O"Brien-Smith"`, `invalid input syntax for type integer: "…"`},
		{`Key (name)=(O'Brien-Smith) already exists`, `Key (name)=(…) already exists`},
	} {
		if got := exactly.RedactError(errors.New(c.in)); got != c.want {
			t.Errorf("RedactError(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := exactly.RedactError(errors.New(strings.Repeat("x", 1000))); len(got) > 310 {
		t.Errorf("RedactError of 1000 bytes: %d bytes", len(got))
	}
}
