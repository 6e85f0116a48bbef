package kafka

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exactly/exactly"
)

func identityConfig(group string) *exactly.Config {
	cfg := &exactly.Config{}
	cfg.Source.Group = group
	return cfg
}

// TestSlotsAreUniquePerLiveProcessAndGroup: two sources of one group on
// one host never share an instance id, a released slot is taken again
// (a restart gets its identity back), and another group has slots of its
// own.
func TestSlotsAreUniquePerLiveProcessAndGroup(t *testing.T) {
	t.Setenv("EXACTLY_LOCK_DIR", t.TempDir())
	a, err := newIdentity(identityConfig("g"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := newIdentity(identityConfig("g"))
	if err != nil {
		t.Fatal(err)
	}
	if a.id == b.id || !strings.HasSuffix(a.id, "-0") || !strings.HasSuffix(b.id, "-1") {
		t.Fatalf("ids %q and %q, want <host>-0 and <host>-1", a.id, b.id)
	}
	other, err := newIdentity(identityConfig("h"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(other.id, "-0") {
		t.Errorf("another group: id %q, want slot 0", other.id)
	}
	a.release()
	again, err := newIdentity(identityConfig("g"))
	if err != nil {
		t.Fatal(err)
	}
	if again.id != a.id {
		t.Errorf("after a's release: id %q, want a's %q back", again.id, a.id)
	}
	b.release()
	other.release()
	again.release()
}

// TestSlotIsKeptUntilTheClientIsClosed: a stop that stops waiting for
// the Kafka client's Close (a JoinGroup in progress) must keep the slot
// until Close returns; released earlier, a process started meanwhile on
// the host took the same instance id while the old client's join could
// still fence it out.
func TestSlotIsKeptUntilTheClientIsClosed(t *testing.T) {
	t.Setenv("EXACTLY_LOCK_DIR", t.TempDir())
	id, err := newIdentity(identityConfig("g"))
	if err != nil {
		t.Fatal(err)
	}
	unblock := make(chan struct{})
	var released atomic.Bool
	closed := closeThenRelease(func() { <-unblock }, func() { id.release(); released.Store(true) }, 50*time.Millisecond)
	if closed {
		t.Fatal("closeThenRelease reported a closed client while Close was blocked")
	}
	next, err := newIdentity(identityConfig("g"))
	if err != nil {
		t.Fatal(err)
	}
	if next.id == id.id || released.Load() {
		t.Fatalf("a process started while the old client was still closing got %q, the old one's id (released %v)", next.id, released.Load())
	}
	next.release()
	close(unblock)
	deadline := time.Now().Add(5 * time.Second)
	for !released.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the slot was not released after Close returned")
		}
		time.Sleep(10 * time.Millisecond)
	}
	back, err := newIdentity(identityConfig("g"))
	if err != nil {
		t.Fatal(err)
	}
	if back.id != id.id {
		t.Errorf("after Close returned: id %q, want %q back", back.id, id.id)
	}
	back.release()
	if !closeThenRelease(func() {}, func() {}, time.Second) {
		t.Error("a Close that returns at once: reported not closed")
	}
}
