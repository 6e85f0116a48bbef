//go:build unix

package kafka

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSlotLocksUnderUmask077: a process started under umask 077 (a
// hardened systemd unit's UMask=0077) must leave lock files every user of
// the host can open, or a second user's process of the same group exits 1
// at start ("permission denied") — for good, since the file outlives its
// process. The default directory is sticky (no user unlinks another's live
// lock and takes its slot), and a directory the operator names with
// EXACTLY_LOCK_DIR keeps its mode (it was made world-writable).
func TestSlotLocksUnderUmask077(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv("EXACTLY_LOCK_DIR", "")
	id, err := newIdentity(identityConfig("g"))
	if err != nil {
		t.Fatal(err)
	}
	defer id.release()
	dir := filepath.Join(tmp, "exactly-slots")
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := os.ModeDir | os.ModeSticky | 0o777; fi.Mode() != want {
		t.Errorf("default lock directory: mode %v, want %v", fi.Mode(), want)
	}
	locks, _ := filepath.Glob(filepath.Join(dir, "*.lock"))
	if len(locks) != 1 {
		t.Fatalf("lock files %v, want one", locks)
	}
	if fi, err := os.Stat(locks[0]); err != nil || fi.Mode().Perm()&0o044 != 0o044 {
		t.Errorf("lock file under umask 077: mode %v (%v), want readable by group and others", fi.Mode(), err)
	}

	// A lock file this user may not open (another user's, made before
	// this fix) counts as held: the next slot, not an exit. Root opens
	// anything, so this part runs as another user only.
	if os.Geteuid() != 0 {
		if err := os.Chmod(locks[0], 0); err != nil {
			t.Fatal(err)
		}
		id.release()
		next, err := newIdentity(identityConfig("g"))
		if err != nil {
			t.Fatalf("a lock file this user may not open: %v, want the next slot", err)
		}
		next.release()
	}

	own := filepath.Join(tmp, "own")
	if err := os.Mkdir(own, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("EXACTLY_LOCK_DIR", own)
	id2, err := newIdentity(identityConfig("g"))
	if err != nil {
		t.Fatal(err)
	}
	defer id2.release()
	if fi, err := os.Stat(own); err != nil || fi.Mode() != os.ModeDir|0o700 {
		t.Errorf("EXACTLY_LOCK_DIR made by the operator 0700: mode now %v (%v), want it kept", fi.Mode(), err)
	}
}
