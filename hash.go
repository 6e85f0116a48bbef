package exactly

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
)

// RangeHash is the deterministic digest of a batch's records: topic,
// partition, offset, key and value of every record, in offset order. verify
// re-reads the range from Kafka and compares it with the ledger's hash.
//
// Encoding, per record: uvarint len(topic) topic, varint partition, varint
// offset, then key and value each as a presence byte (0 null, 1 present),
// uvarint length and bytes. The digest is SHA-256, written in hex.
type RangeHash struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64]byte
}

// NewRangeHash starts an empty digest.
func NewRangeHash() *RangeHash { return &RangeHash{h: sha256.New()} }

// Add appends one record; records must be added in offset order.
func (r *RangeHash) Add(rec *Record) {
	r.bytes([]byte(rec.Topic), true)
	r.h.Write(r.buf[:binary.PutVarint(r.buf[:], int64(rec.Partition))])
	r.h.Write(r.buf[:binary.PutVarint(r.buf[:], rec.Offset)])
	r.bytes(rec.Key, rec.Key != nil)
	r.bytes(rec.Value, rec.Value != nil)
}

func (r *RangeHash) bytes(b []byte, present bool) {
	if !present {
		r.h.Write([]byte{0})
		return
	}
	r.h.Write([]byte{1})
	r.h.Write(r.buf[:binary.PutUvarint(r.buf[:], uint64(len(b)))])
	r.h.Write(b)
}

// Sum returns the hex digest.
func (r *RangeHash) Sum() string { return hex.EncodeToString(r.h.Sum(nil)) }

// HashRecords digests records in the given order.
func HashRecords(recs []*Record) string {
	h := NewRangeHash()
	for _, r := range recs {
		h.Add(r)
	}
	return h.Sum()
}
