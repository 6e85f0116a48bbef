package exactly

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/zeebo/blake3"
)

// stableRecords are the records of the pinned digests below.
var stableRecords = []*Record{
	{Topic: "shop.orders", Partition: 3, Offset: 41, Key: []byte("k"), Value: []byte(`{"id":1}`)},
	{Topic: "shop.orders", Partition: 3, Offset: 300, Key: nil, Value: nil},
	{Topic: "shop.orders", Partition: 3, Offset: 301, Key: []byte{}, Value: make([]byte, 200)},
}

// encodeByField writes the records' byte stream field by field, the way
// the first RangeHash did.
func encodeByField(h interface{ Write([]byte) (int, error) }, recs []*Record) {
	var buf [binary.MaxVarintLen64]byte
	field := func(b []byte, present bool) {
		if !present {
			h.Write([]byte{0})
			return
		}
		h.Write([]byte{1})
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(len(b)))])
		h.Write(b)
	}
	for _, r := range recs {
		field([]byte(r.Topic), true)
		h.Write(buf[:binary.PutVarint(buf[:], int64(r.Partition))])
		h.Write(buf[:binary.PutVarint(buf[:], r.Offset)])
		field(r.Key, r.Key != nil)
		field(r.Value, r.Value != nil)
	}
}

// TestRangeHashEncodingIsStable pins the digest's byte stream and both
// schemes' stored values: stored ledger hashes must keep matching after
// any rewrite of RangeHash (the allocation-free version replaced one that
// wrote field by field) or change of BLAKE3 library. The BLAKE3 vector was
// checked against a second implementation (lukechampine.com/blake3).
func TestRangeHashEncodingIsStable(t *testing.T) {
	for _, c := range []struct {
		scheme HashScheme
		ref    interface {
			Write([]byte) (int, error)
			Sum([]byte) []byte
		}
		prefix, pinned string
	}{
		{HashSHA256, sha256.New(), "", "48907e7bacbb6b526cdf9b1f8ada90737247d03c09783dc7134173fc22c85c71"},
		{HashBLAKE3, blake3.New(), "blake3:", "blake3:e06d390117d837f842769a497244dcd5028531f683a7b46112b90553a5d0c9e1"},
	} {
		encodeByField(c.ref, stableRecords)
		h := c.scheme.NewRangeHash()
		for _, r := range stableRecords {
			h.Add(r)
		}
		got := h.Sum()
		if want := c.prefix + hex.EncodeToString(c.ref.Sum(nil)); got != want {
			t.Errorf("%s: encoding changed: got %s, the field-by-field stream hashes to %s", c.scheme, got, want)
		}
		if got != c.pinned {
			t.Errorf("%s: digest changed: got %s, want %s", c.scheme, got, c.pinned)
		}
	}
	if got, want := HashRecords(stableRecords), "blake3:e06d390117d837f842769a497244dcd5028531f683a7b46112b90553a5d0c9e1"; got != want {
		t.Errorf("HashRecords: got %s, want the current scheme's %s", got, want)
	}
	// BLAKE3-256 of no input, the specification's first test vector.
	if got, want := HashRecords(nil), "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"; got != want {
		t.Errorf("empty range: got %s, want %s", got, want)
	}
}

// TestHashSchemeOf: the stored value names its scheme; bare hex is the
// legacy SHA-256; any other prefix is an UnknownHashSchemeError; and the
// scheme's RangeHash re-produces the stored value.
func TestHashSchemeOf(t *testing.T) {
	legacy := HashSHA256.NewRangeHash()
	for _, r := range stableRecords {
		legacy.Add(r)
	}
	for _, c := range []struct {
		stored  string
		want    HashScheme
		unknown string
	}{
		{legacy.Sum(), HashSHA256, ""},
		{HashRecords(stableRecords), HashBLAKE3, ""},
		{"tampered", HashSHA256, ""},
		{"", HashSHA256, ""},
		{"blake3:", HashBLAKE3, ""},
		{"BLAKE3:e06d", "", "BLAKE3"},
		{"sha3:e06d", "", "sha3"},
		{":e06d", "", ""},
	} {
		got, err := HashSchemeOf(c.stored)
		var ue *UnknownHashSchemeError
		switch {
		case c.want != "" && (err != nil || got != c.want):
			t.Errorf("HashSchemeOf(%q) = %q, %v; want %q", c.stored, got, err, c.want)
		case c.want == "" && (!errors.As(err, &ue) || ue.Scheme != c.unknown):
			t.Errorf("HashSchemeOf(%q) = %q, %v; want unknown scheme %q", c.stored, got, err, c.unknown)
		}
	}
	for _, stored := range []string{legacy.Sum(), HashRecords(stableRecords)} {
		s, _ := HashSchemeOf(stored)
		h := s.NewRangeHash()
		for _, r := range stableRecords {
			h.Add(r)
		}
		if h.Sum() != stored {
			t.Errorf("%s: re-hash %s, stored %s", s, h.Sum(), stored)
		}
	}
}
