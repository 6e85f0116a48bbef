package verify_test

import (
	"strings"
	"testing"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/verify"
)

// TestVerifyMixedHashSchemes: a ledger holding both legacy rows (bare hex
// SHA-256, as exactly wrote before the hash was versioned) and blake3: rows
// verifies clean on each dialect; an altered blake3 row is a
// hash_mismatch; a row naming an unknown scheme is an unknown_hash_scheme
// finding with its coordinates, its range not re-read.
func TestVerifyMixedHashSchemes(t *testing.T) {
	for _, driver := range append(drivers, "sqlserver") {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, driver, 50, 10)
			stored := make([]string, len(e.batches))
			for i, b := range e.batches {
				if s, err := exactly.HashSchemeOf(b.Hash); err != nil || s != exactly.HashBLAKE3 || !strings.HasPrefix(b.Hash, "blake3:") {
					t.Fatalf("batch %d: the sink wrote %q (%s, %v), want a blake3: hash", i, b.Hash, s, err)
				}
				stored[i] = b.Hash
			}
			for _, i := range []int{0, 1, 3} { // rows of an older exactly
				h := exactly.HashSHA256.NewRangeHash()
				for _, r := range e.batches[i].Records {
					h.Add(r)
				}
				stored[i] = h.Sum()
				e.exec("UPDATE exactly_batches SET hash = ? WHERE batch_id = ?", stored[i], e.batches[i].BatchID)
			}
			rep := e.verify()
			want(t, rep)
			if rep.Rehashed != 5 || rep.Records != 50 {
				t.Errorf("mixed ledger: rehashed %d ranges / %d records, want 5 / 50", rep.Rehashed, rep.Records)
			}

			e.exec("UPDATE exactly_batches SET hash = ? WHERE batch_id = ?", "blake3:"+strings.Repeat("0", 64), e.batches[4].BatchID)
			rep = e.verify()
			want(t, rep, verify.Finding{Kind: verify.HashMismatch, From: 40, To: 50})
			if f := rep.Findings; len(f) == 1 && (f[0].BatchID != e.batches[4].BatchID || f[0].Kafka != stored[4]) {
				t.Errorf("altered blake3 row: %+v, want batch %s, Kafka hashing to %s", f[0], e.batches[4].BatchID, stored[4])
			}
			e.exec("UPDATE exactly_batches SET hash = ? WHERE batch_id = ?", stored[4], e.batches[4].BatchID)

			e.exec("UPDATE exactly_batches SET hash = ? WHERE batch_id = ?", "sha3:"+strings.Repeat("0", 64), e.batches[2].BatchID)
			rep = e.verify()
			want(t, rep, verify.Finding{Kind: verify.UnknownHashScheme, From: 20, To: 30})
			if f := rep.Findings; len(f) == 1 {
				if line := f[0].String(); f[0].BatchID != e.batches[2].BatchID || !strings.Contains(line, `"sha3"`) ||
					!strings.Contains(line, "t.items[0] offsets 20..29 batch "+e.batches[2].BatchID) {
					t.Errorf("unknown scheme finding: %s", line)
				}
			}
			if rep.Rehashed != 4 {
				t.Errorf("unknown scheme: rehashed %d ranges, want the 4 others", rep.Rehashed)
			}
		})
	}
}
