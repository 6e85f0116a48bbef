//go:build unix

package kafka

import (
	"errors"
	"os"
	"syscall"
)

// lockSlot takes an exclusive, non-blocking flock on path. ok is false when
// another open file (another process, or another source in this one) holds
// it. The lock lives as long as the file stays open.
//
// The file is made readable by every user whatever the umask (a read-only
// descriptor is all flock needs): created 0600 under umask 077, another
// user's process could not open it, and exited 1 at every start, even
// after the process that made it was gone. A lock file this user may not
// open (made so by another user) counts as held: the next slot is tried.
func lockSlot(path string) (release func(), ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if errors.Is(err, os.ErrPermission) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o044 != 0o044 {
		_ = f.Chmod(fi.Mode().Perm() | 0o044) // fails on another user's file: theirs to fix
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return func() { f.Close() }, true, nil
}
