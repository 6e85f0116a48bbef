package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version describes the running binary from what the Go toolchain
// stamped into it: the module version (a tag, a pseudo-version, or
// "(devel)" for a plain go build in a checkout), the VCS commit and its
// time, "+dirty" when the tree had uncommitted changes, and the Go
// version. An operator reports it with a bug; nothing is set by hand at
// release time, so it cannot be forgotten.
func version() string {
	v, commit, at, dirty := "(unknown)", "unknown", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if dirty {
		commit += "+dirty"
	}
	out := fmt.Sprintf("exactly %s commit %s", v, commit)
	if at != "" {
		out += " (" + at + ")"
	}
	return out + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
