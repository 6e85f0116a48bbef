package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Chromium returns the path of Debian's headless-capable chromium
// (EXACTLY_TEST_CHROMIUM, else chromium on PATH). Missing, it skips the
// test, or fails it under CI=true.
func Chromium(t testing.TB) string {
	t.Helper()
	path := os.Getenv("EXACTLY_TEST_CHROMIUM")
	if path == "" {
		var err error
		if path, err = exec.LookPath("chromium"); err != nil {
			Unavailable(t, "chromium (apt-get install chromium)", err)
		}
	}
	return path
}

// Browse loads url in a fresh headless Chromium and returns the DOM after
// scripts ran (--dump-dom). With screenshot non-empty it also saves a PNG
// of the page there.
func Browse(ctx context.Context, t testing.TB, url, screenshot string) (string, error) {
	t.Helper()
	bin := Chromium(t)
	run := func(extra ...string) ([]byte, error) {
		profile := t.TempDir()
		args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
			"--disable-dev-shm-usage", "--user-data-dir=" + profile}, extra...)
		// Generous: on a loaded 2-core machine Chromium's start alone
		// has taken over a minute.
		ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append(args, url)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		began := time.Now()
		out, err := cmd.Output()
		t.Logf("chromium %v: %s", extra, time.Since(began).Round(time.Millisecond))
		if err != nil {
			return nil, fmt.Errorf("chromium %v: %w\n%s", extra, err, cut(stderr.String(), 2000))
		}
		return out, nil
	}
	dom, err := run("--dump-dom")
	if err != nil {
		return "", err
	}
	if screenshot != "" {
		if _, err := run("--hide-scrollbars", "--window-size=1400,1600", "--screenshot="+screenshot); err != nil {
			return "", err
		}
		if st, err := os.Stat(screenshot); err != nil || st.Size() == 0 {
			return "", errors.Join(errors.New("chromium wrote no screenshot"), err)
		}
	}
	return string(dom), nil
}

// ArtifactDir returns where a test keeps files worth looking at after it
// ran (screenshots): EXACTLY_TEST_ARTIFACTS/<test name> when set, else a
// temporary directory removed with the test.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	base := os.Getenv("EXACTLY_TEST_ARTIFACTS")
	if base == "" {
		return t.TempDir()
	}
	dir := filepath.Join(base, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
