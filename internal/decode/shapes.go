package decode

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/exactly/exactly"
)

// shapes interns the lists of field names of decoded rows (see
// exactly.Change.Shape): a topic's records come in a few shapes, and a
// row that names its shape spares the engine a walk of its map per
// comparison. Field names come from topics (untrusted), so the table is
// bounded: past maxShapes lists, or for a list longer than maxShapeLen, a
// row has no shape (nil), which only costs the walks.
var shapes = newShapeTable()

const (
	maxShapes   = 16384
	maxShapeLen = 64
)

// shapeTable is read without a lock: a lookup is a sync.Map load of the
// hash's bucket, an immutable slice; an addition (rare: a topic's shapes
// are learnt in its first records) replaces the bucket under mu.
type shapeTable struct {
	buckets sync.Map // uint64 -> []*exactly.Shape
	n       atomic.Int64
	mu      sync.Mutex
	seed    maphash.Seed
}

func newShapeTable() *shapeTable { return &shapeTable{seed: maphash.MakeSeed()} }

// lastShape is a decoder's last shape: its next record most likely has
// the same, found by comparing names (interned: pointers) instead of
// hashing them and looking them up.
type lastShape struct{ p atomic.Pointer[exactly.Shape] }

// get returns the shape of the names members carry, in their order; nil
// when the table is full or the list too long. last, if not nil, is
// tried first and then holds the shape returned.
func (t *shapeTable) get(members []member, last *lastShape) *exactly.Shape {
	if last != nil {
		if s := last.p.Load(); s != nil && sameNames(s.Names, members) {
			return s
		}
	}
	s := t.find(members)
	if last != nil && s != nil {
		last.p.Store(s)
	}
	return s
}

// find returns the table's shape of members, adding it if need be.
func (t *shapeTable) find(members []member) *exactly.Shape {
	if len(members) > maxShapeLen {
		return nil
	}
	var h uint64
	for _, kv := range members {
		h = h*0x100000001b3 ^ maphash.String(t.seed, kv.key)
	}
	if s := t.lookup(h, members); s != nil {
		return s
	}
	if t.n.Load() >= maxShapes {
		// Full: no lock taken. Looked up again, as the addition that
		// filled the table stored its bucket before counting it.
		return t.lookup(h, members)
	}
	names := make([]string, len(members))
	for i, kv := range members {
		names[i] = kv.key
	}
	return t.add(h, names)
}

// lookup returns the shape of members, hashed h, if the table has it.
func (t *shapeTable) lookup(h uint64, members []member) *exactly.Shape {
	if b, ok := t.buckets.Load(h); ok {
		for _, s := range b.([]*exactly.Shape) {
			if sameNames(s.Names, members) {
				return s
			}
		}
	}
	return nil
}

// sameNames reports whether members carry names, in that order (interned
// names compare by pointer).
func sameNames(names []string, members []member) bool {
	if len(names) != len(members) {
		return false
	}
	for i, kv := range members {
		if names[i] != kv.key {
			return false
		}
	}
	return true
}

// add interns names under hash h, unless the table is full (nil then).
func (t *shapeTable) add(h uint64, names []string) *exactly.Shape {
	t.mu.Lock()
	defer t.mu.Unlock()
	var old []*exactly.Shape
	if b, ok := t.buckets.Load(h); ok {
		old = b.([]*exactly.Shape)
	}
	for _, s := range old {
		if slices.Equal(s.Names, names) {
			return s
		}
	}
	if t.n.Load() >= maxShapes {
		return nil
	}
	s := &exactly.Shape{Names: names}
	t.buckets.Store(h, append(old[:len(old):len(old)], s))
	t.n.Add(1)
	return s
}
