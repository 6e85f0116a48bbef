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
func lockSlot(path string) (release func(), ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o666)
	if err != nil {
		return nil, false, err
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
