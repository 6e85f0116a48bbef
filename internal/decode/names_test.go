package decode

import (
	"fmt"
	"sync"
	"testing"
)

// Member names are shared between records, yet every record still gets
// its own names and values, flights decoding at once included; names from
// a hostile topic (ever new ones) stop being interned at maxNames.
func TestMemberNamesInterned(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3000 {
				name := fmt.Sprintf("f%d_%d", g, i)
				m, err := Object(fmt.Appendf(nil, `{"id":%d,%q:"v%d","esc\u0061ped":1}`, i, name, i))
				if err != nil {
					t.Error(err)
					return
				}
				if m["id"] != int64(i) || m[name] != fmt.Sprintf("v%d", i) || m["escaped"] != int64(1) || len(m) != 3 {
					t.Errorf("record %d decoded as %v", i, m)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := len(*names.m.Load()); n > maxNames {
		t.Fatalf("%d names interned, the bound is %d", n, maxNames)
	}
	long := make([]byte, maxNameLen+1)
	for i := range long {
		long[i] = 'x'
	}
	if s := names.get(long); s != string(long) {
		t.Fatalf("a long name came back as %q", s)
	}
	if _, ok := (*names.m.Load())[string(long)]; ok {
		t.Fatal("a name longer than maxNameLen was interned")
	}
}
