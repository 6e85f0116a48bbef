package kafka

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/exactly/exactly"
)

// maxSlots bounds the slots tried on one host for one group.
const maxSlots = 1000

// identity is this process's static group membership: the instance id
// and, when the id was derived from the host, the slot lock that keeps it
// unique on the host until the process ends.
type identity struct {
	id      string // "" for a dynamic member
	derived bool   // from <hostname>-<slot>, not configured
	release func()
	// memberFile keeps the member id the broker last knew this identity
	// by (group_protocol: consumer, see releaseOldSelf).
	memberFile string
	member     string // what memberFile holds
}

// newIdentity returns the configured instance id, or derives
// <hostname>-<slot> where the slot is the lowest one of this group whose
// lock file no other live process on the host holds. The kernel drops the
// lock when the process dies, however it dies, so a restarted process gets
// its slot, and so its identity, back — and two processes on one host
// (the scale-out test, a second unit started by mistake) never share one:
// two members with one instance id fence each other out of the group.
func newIdentity(cfg *exactly.Config) (*identity, error) {
	src := cfg.Source
	switch {
	case src.Membership == "dynamic":
		return &identity{release: func() {}}, nil
	case src.InstanceID != "":
		return &identity{id: src.InstanceID, release: func() {}, memberFile: memberFile(src.Group, src.InstanceID)}, nil
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return nil, fmt.Errorf("deriving the group instance id: reading the hostname: %w (set source.instance_id)", err)
	}
	dir, shared := lockDir()
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("deriving the group instance id: creating the slot lock directory %s: %w (set source.instance_id or EXACTLY_LOCK_DIR)", dir, err)
	}
	if shared {
		// Shared by every user of the host, like /tmp (sticky: no user
		// removes another's lock): two users running one group must not
		// both be slot 0. os.Chmod takes os.ModeSticky, not 0o1000: 0o1777
		// made it 0777, where any user could unlink a live process's lock
		// and take its slot. A directory EXACTLY_LOCK_DIR names is the
		// operator's and keeps its mode.
		_ = os.Chmod(dir, 0o777|os.ModeSticky)
	}
	base := groupBase(src.Group)
	for slot := 0; slot < maxSlots; slot++ {
		path := filepath.Join(dir, fmt.Sprintf("%s.%d.lock", base, slot))
		release, ok, err := lockSlot(path)
		if err != nil {
			return nil, fmt.Errorf("deriving the group instance id: locking %s: %w (set source.instance_id or EXACTLY_LOCK_DIR)", path, err)
		}
		if ok {
			id := fmt.Sprintf("%s-%d", host, slot)
			return &identity{id: id, derived: true, release: release, memberFile: memberFile(src.Group, id)}, nil
		}
	}
	return nil, fmt.Errorf("deriving the group instance id: all %d slots of group %q are held on this host", maxSlots, src.Group)
}

// groupBase names a group's files in the lock directory.
func groupBase(group string) string {
	sum := sha256.Sum256([]byte(group))
	return safeName(group, 40) + "-" + hex.EncodeToString(sum[:6])
}

// memberFile is where the member id of a static identity is kept.
func memberFile(group, id string) string {
	sum := sha256.Sum256([]byte(id))
	dir, _ := lockDir()
	return filepath.Join(dir, groupBase(group)+"."+safeName(id, 60)+"-"+hex.EncodeToString(sum[:4])+".member")
}

// lockDir is where slot locks live: EXACTLY_LOCK_DIR, else
// $TMPDIR/exactly-slots.
// shared is true for the default one, which every user of the host uses.
func lockDir() (dir string, shared bool) {
	if d := os.Getenv("EXACTLY_LOCK_DIR"); d != "" {
		return d, false
	}
	return filepath.Join(os.TempDir(), "exactly-slots"), true
}

// safeName keeps letters, digits, '-', '_' and '.' of s, at most n bytes.
func safeName(s string, n int) string {
	out := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
	if len(out) > n {
		out = out[:n]
	}
	return out
}
