package statuspage

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/testenv"
)

// TestPageRefreshesInPlace: the page fetches itself every Refresh and
// swaps its body in without navigating, keeping the filter: a table that
// appears after the page was loaded shows up, filtered as typed.
func TestPageRefreshesInPlace(t *testing.T) {
	bin := testenv.Chromium(t)
	s, _ := server(t, nil)
	s.Refresh = time.Second
	s.Metrics.Assigned(map[exactly.TP]int64{{Topic: "first", Partition: 0}: 0})
	// The second request for the page (the first refresh) finds a new
	// table.
	var loads atomic.Int32
	h := s.Handler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && loads.Add(1) == 2 {
			s.Metrics.Assigned(map[exactly.TP]int64{{Topic: "second_fresh", Partition: 0}: 0})
			s.pageMu.Lock()
			s.pageBody = nil
			s.pageMu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// Virtual time runs the page's timers; its fetches are real.
	out, err := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=15000", "--dump-dom", hs.URL+"/#q=fresh").Output()
	if err != nil {
		t.Fatal(err)
	}
	dom := string(out)
	if !strings.Contains(dom, `data-table="second_fresh"`) || !strings.Contains(dom, `id="shown">1 of 2 tables<`) {
		i := max(strings.Index(dom, `id="shown"`), 0)
		t.Errorf("after a refresh the page does not show the new table filtered: %s", cut(dom[i:], 200))
	}
	if loads.Load() < 2 {
		t.Errorf("the page was loaded %d times: it did not refresh", loads.Load())
	}
	if strings.Contains(dom, `id="stale"`) {
		t.Error("the refresh failed")
	}
}
