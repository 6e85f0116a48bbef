//go:build !unix

package kafka

import (
	"os"
)

// lockSlot without flock: an exclusive create, removed on release. A file
// left by a crashed process keeps its slot taken; a restart takes the next.
func lockSlot(path string) (release func(), ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if os.IsExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return func() { f.Close(); os.Remove(path) }, true, nil
}
