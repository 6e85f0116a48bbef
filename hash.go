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
	h       hash.Hash
	scratch []byte // one record's encoding, written in one call
}

// NewRangeHash starts an empty digest.
func NewRangeHash() *RangeHash { return &RangeHash{h: sha256.New()} }

// Add appends one record; records must be added in offset order. The
// topic is written like a present key (presence byte 1, length, bytes).
func (r *RangeHash) Add(rec *Record) {
	b := r.scratch[:0]
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(rec.Topic)))
	b = append(b, rec.Topic...)
	b = binary.AppendVarint(b, int64(rec.Partition))
	b = binary.AppendVarint(b, rec.Offset)
	b = appendBytes(b, rec.Key)
	b = appendBytes(b, rec.Value)
	r.h.Write(b)
	if cap(b) <= 64<<10 {
		r.scratch = b
	}
}

func appendBytes(b, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
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
