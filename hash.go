package exactly

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"

	"github.com/zeebo/blake3"
)

// HashScheme names the digest a ledger hash was written with. The stored
// value says it: "blake3:" and 64 hex digits for BLAKE3-256, bare hex for
// the legacy SHA-256 of the rows written before the hash was versioned.
// Both digest the same byte encoding (see RangeHash); the sink writes
// CurrentHashScheme, verify re-hashes each row with the scheme it holds.
type HashScheme string

const (
	// HashSHA256 is the legacy scheme: 64 hex digits, no prefix.
	HashSHA256 HashScheme = "sha256"
	// HashBLAKE3 is BLAKE3-256, stored as "blake3:" and 64 hex digits.
	HashBLAKE3 HashScheme = "blake3"

	// CurrentHashScheme is the scheme of the ledger rows the sink writes.
	CurrentHashScheme = HashBLAKE3
)

// UnknownHashSchemeError is a stored hash whose prefix names no scheme
// this version knows: written by a newer exactly, or altered.
type UnknownHashSchemeError struct {
	Scheme string
}

func (e *UnknownHashSchemeError) Error() string {
	return fmt.Sprintf("unknown hash scheme %q (this version knows %s: and bare hex SHA-256): written by a newer exactly, or altered", e.Scheme, HashBLAKE3)
}

// HashSchemeOf returns the scheme a stored ledger hash was written with:
// the text before the first ':', or HashSHA256 when there is none. Any
// other prefix is an *UnknownHashSchemeError.
func HashSchemeOf(stored string) (HashScheme, error) {
	prefix, _, versioned := strings.Cut(stored, ":")
	switch {
	case !versioned:
		return HashSHA256, nil
	case prefix == string(HashBLAKE3):
		return HashBLAKE3, nil
	}
	return "", &UnknownHashSchemeError{Scheme: prefix}
}

// RangeHash is the deterministic digest of a batch's records: topic,
// partition, offset, key and value of every record, in offset order. verify
// re-reads the range from Kafka and compares it with the ledger's hash.
//
// Encoding, per record: uvarint len(topic) topic, varint partition, varint
// offset, then key and value each as a presence byte (0 null, 1 present),
// uvarint length and bytes. The digest is that of its HashScheme, written
// in hex after the scheme's prefix.
type RangeHash struct {
	h       hash.Hash
	prefix  string // "blake3:", or "" for the legacy SHA-256
	scratch []byte // the encoding of the records not yet written to h
}

// rangeHashChunk is how much of the records' encoding RangeHash gathers
// before it writes to the digest: BLAKE3 hashes many 1 KiB chunks of one
// write at once (AVX2: 8), one record at a time it hashed one. The digest
// does not depend on how its input is split into writes.
const rangeHashChunk = 16 << 10

// NewRangeHash starts an empty digest of CurrentHashScheme.
func NewRangeHash() *RangeHash { return CurrentHashScheme.NewRangeHash() }

// NewRangeHash starts an empty digest of the scheme, whose Sum compares
// equal with a stored hash of the same scheme and records. It panics on a
// scheme HashSchemeOf does not return.
func (s HashScheme) NewRangeHash() *RangeHash {
	switch s {
	case HashBLAKE3:
		return &RangeHash{h: blake3.New(), prefix: string(HashBLAKE3) + ":"}
	case HashSHA256:
		return &RangeHash{h: sha256.New()}
	}
	panic(fmt.Sprintf("exactly: no range hash of scheme %q", string(s)))
}

// Add appends one record; records must be added in offset order. The
// topic is written like a present key (presence byte 1, length, bytes).
func (r *RangeHash) Add(rec *Record) {
	b := r.scratch
	if b == nil {
		b = make([]byte, 0, rangeHashChunk+1<<10)
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(rec.Topic)))
	b = append(b, rec.Topic...)
	b = binary.AppendVarint(b, int64(rec.Partition))
	b = binary.AppendVarint(b, rec.Offset)
	b = appendBytes(b, rec.Key)
	b = appendBytes(b, rec.Value)
	r.scratch = b
	if len(b) >= rangeHashChunk {
		r.flush()
	}
}

// flush writes the gathered encoding to the digest; a buffer grown past
// 64 KiB by one large record is not kept.
func (r *RangeHash) flush() {
	r.h.Write(r.scratch)
	r.scratch = r.scratch[:0]
	if cap(r.scratch) > 64<<10 {
		r.scratch = nil
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

// Sum returns the stored form of the digest: the scheme's prefix and the
// digest in hex.
func (r *RangeHash) Sum() string {
	if len(r.scratch) > 0 {
		r.flush()
	}
	var sum [64]byte
	d := r.h.Sum(sum[:0])
	out := make([]byte, len(r.prefix)+hex.EncodedLen(len(d)))
	copy(out, r.prefix)
	hex.Encode(out[len(r.prefix):], d)
	return string(out)
}

// HashRecords digests records in the given order with CurrentHashScheme.
func HashRecords(recs []*Record) string {
	h := NewRangeHash()
	for _, r := range recs {
		h.Add(r)
	}
	return h.Sum()
}
