package decode

import (
	"sync"
	"sync/atomic"
)

// names interns the member names of JSON objects: a topic's records repeat
// the same few field names, and a string per name per record was a third of
// the JSON decoder's allocations. Names come from topics (untrusted), so
// the table is bounded: past maxNames distinct names, or for a name longer
// than maxNameLen, a name is copied as before.
var names nameTable

const (
	maxNames   = 4096
	maxNameLen = 128
)

// nameTable is read without a lock by every decoding flight: a lookup is a
// load of an immutable map, and an addition (rare: a topic's names are
// learnt in its first records) copies it.
type nameTable struct {
	m  atomic.Pointer[map[string]string]
	mu sync.Mutex
}

// get returns b as a string, the interned one when there is one.
func (t *nameTable) get(b []byte) string {
	m := t.m.Load()
	if m != nil {
		if s, ok := (*m)[string(b)]; ok { // no allocation: the compiler looks up b's bytes
			return s
		}
	}
	s := string(b)
	if len(s) <= maxNameLen && (m == nil || len(*m) < maxNames) { // a full table takes no lock
		t.add(s)
	}
	return s
}

// add interns s unless the table is full.
func (t *nameTable) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var old map[string]string
	if p := t.m.Load(); p != nil {
		old = *p
	}
	if _, ok := old[s]; ok || len(old) >= maxNames {
		return
	}
	m := make(map[string]string, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[s] = s
	t.m.Store(&m)
}
