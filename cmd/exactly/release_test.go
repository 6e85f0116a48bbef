package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestVersionFlag: exactly --version names the module version, the commit
// and the Go version (in a test binary the toolchain stamps no commit).
func TestVersionFlag(t *testing.T) {
	code, out, errs := runCLI("--version")
	if code != 0 || !regexp.MustCompile(`^exactly \S+ commit \S+ .*go1\.\d+.* \w+/\w+\n$`).MatchString(out) {
		t.Errorf("exactly --version: exit %d\n%q%s", code, out, errs)
	}
}

// TestStaticBuildCarriesItsCommit builds the command as the container
// recipe does (CGO_ENABLED=0, -trimpath): the binary must be static (no
// ELF interpreter, so it runs on distroless/static or scratch) and, built
// from a git checkout, print the checkout's commit in --version.
func TestStaticBuildCarriesItsCommit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the ELF check is for Linux")
	}
	if os.Getenv("CI") == "" && os.Getenv("EXACTLY_RELEASE_BUILD") == "" {
		// Without cgo every package is compiled again (modernc SQLite
		// alone takes minutes on a loaded 2-core machine): CI runs it.
		t.Skip("set CI=true or EXACTLY_RELEASE_BUILD=1 to build the static binary")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// A source tree without git (an archive) has no commit to stamp; a
	// checkout asks for the stamp (-buildvcs=true), since a GOFLAGS of
	// -buildvcs=false in the environment would drop it silently.
	head, gerr := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
	vcs := "-buildvcs=false"
	if gerr == nil {
		vcs = "-buildvcs=true"
	}
	bin := filepath.Join(t.TempDir(), "exactly")
	cmd := exec.Command("go", "build", vcs, "-trimpath", "-o", bin, "./cmd/exactly")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the CGO_ENABLED=0 binary asks for an ELF interpreter: it is not static")
		}
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", bin, err)
	}
	if gerr == nil {
		if want := strings.TrimSpace(string(head)); !strings.Contains(string(out), "commit "+want) {
			t.Errorf("--version of a build at %s: %s", want, out)
		}
	} else if !strings.HasPrefix(string(out), "exactly ") {
		t.Errorf("--version: %s", out)
	}
}

// TestDockerContextKeepsTrackedFiles: the image's build stage runs go build
// in the context with .git, and go build stamps vcs.modified when a
// tracked file is missing, so .dockerignore leaving out the tests,
// testdata and chaos made every image say "commit …+dirty" (seen: a clone
// without those files built "exactly v0.0.0-…+dirty commit ae022cd…+dirty").
// No .dockerignore pattern may match a file git tracks.
func TestDockerContextKeepsTrackedFiles(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, err := exec.Command("git", "-C", root, "ls-files").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err) // an archive: nothing is stamped
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	// matches reports whether a .dockerignore pattern (path.Match syntax,
	// "**/" for any depth) excludes path or a directory above it.
	matches := func(pat, path string) bool {
		parts := strings.Split(path, "/")
		for i := 1; i <= len(parts); i++ {
			prefix := strings.Join(parts[:i], "/")
			if ok, _ := filepath.Match(pat, prefix); ok {
				return true
			}
			if rest, ok := strings.CutPrefix(pat, "**/"); ok {
				for j := 0; j < i; j++ {
					if ok, _ := filepath.Match(rest, strings.Join(parts[j:i], "/")); ok {
						return true
					}
				}
			}
		}
		return false
	}
	for _, line := range strings.Split(string(ignore), "\n") {
		pat := strings.TrimPrefix(strings.TrimSpace(line), "/")
		if pat == "" || strings.HasPrefix(pat, "#") || strings.HasPrefix(pat, "!") {
			continue
		}
		var hit []string
		for _, f := range strings.Split(strings.TrimSpace(string(files)), "\n") {
			if matches(pat, f) {
				hit = append(hit, f)
			}
		}
		if len(hit) > 0 {
			t.Errorf(".dockerignore %q leaves out %d tracked files (%s…): the image's --version says +dirty", pat, len(hit), hit[0])
		}
	}
}
