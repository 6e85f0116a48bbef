package exactly

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"testing"
)

// TestRangeHashEncodingIsStable pins the digest's byte stream: stored
// ledger hashes must keep matching after any rewrite of RangeHash (the
// allocation-free version replaced one that wrote field by field).
func TestRangeHashEncodingIsStable(t *testing.T) {
	recs := []*Record{
		{Topic: "shop.orders", Partition: 3, Offset: 41, Key: []byte("k"), Value: []byte(`{"id":1}`)},
		{Topic: "shop.orders", Partition: 3, Offset: 300, Key: nil, Value: nil},
		{Topic: "shop.orders", Partition: 3, Offset: 301, Key: []byte{}, Value: make([]byte, 200)},
	}
	h := sha256.New()
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
	if got, want := HashRecords(recs), hex.EncodeToString(h.Sum(nil)); got != want {
		t.Fatalf("digest changed: got %s, want %s", got, want)
	}
}
