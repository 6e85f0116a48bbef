package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/exactly/exactly/internal/testenv"
)

// TestStatusPageLoadLeavesThroughput is issue 16's load test: exactly
// bench on PostgreSQL with the status server on (its own pool of 2
// connections, a 5 s cache), three rounds over the same records; during
// the second round's pipeline phase 50 clients load the status page
// for up to 30 s: back to back, or each once per EXACTLY_LOAD_EVERY (1s:
// 50 people watching the page at five times its default refresh). The
// second round's throughput must stay within 10% of the mean of the
// rounds around it, measured in the same run. The clients run in this
// test's process, on the same cores as the pipeline: back to back on 2
// cores they take CPU the pipeline needs whatever the server does (it
// serves the cached page in ~27 µs). It is CPU heavy: opt in with
// EXACTLY_LOAD_TEST=1.
func TestStatusPageLoadLeavesThroughput(t *testing.T) {
	if os.Getenv("EXACTLY_LOAD_TEST") == "" {
		t.Skip("a 3-round bench on PostgreSQL with 50 page loaders: set EXACTLY_LOAD_TEST=1")
	}
	dsn := testenv.PostgresDSN(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// EXACTLY_LOAD_PATH floods another path (/readyz, /metrics): / is
	// cached, the others are served per request.
	path := os.Getenv("EXACTLY_LOAD_PATH")
	if path == "" {
		path = "/"
	}
	var every time.Duration
	if v := os.Getenv("EXACTLY_LOAD_EVERY"); v != "" {
		if every, err = time.ParseDuration(v); err != nil {
			t.Fatalf("EXACTLY_LOAD_EVERY: %v", err)
		}
	}
	records := os.Getenv("EXACTLY_LOAD_RECORDS")
	if records == "" {
		records = "1000000"
	}
	cmd := exec.Command(testenv.Binary(t), "bench", "--sink", dsn, "--records", records, "--rounds", "3",
		"--topics", "8", "--partitions", "4", "--metrics-addr", addr, "--status-cache", "5s", "--json", "--log-level", "warn")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	load1 := loadavg3()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var (
		stopLoad  = make(chan struct{})
		loadDone  sync.WaitGroup
		loads     atomic.Int64
		failures  atomic.Int64
		latMu     sync.Mutex
		latencies []time.Duration
		loadFrom  time.Time
		loadFor   time.Duration
		stopOnce  sync.Once
		// firstFailure is the first failed load's error or status.
		firstFailure atomic.Value
	)
	startLoad := func() {
		loadFrom = time.Now()
		cl := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		for i := 0; i < 50; i++ {
			loadDone.Add(1)
			go func() {
				defer loadDone.Done()
				for time.Since(loadFrom) < 30*time.Second {
					select {
					case <-stopLoad:
						return
					default:
					}
					start := time.Now()
					resp, err := cl.Get("http://" + addr + path)
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					if errors.Is(err, syscall.ECONNREFUSED) {
						if loads.Load() > 0 {
							// The round's pipeline stopped and its status
							// server with it: this client's load is over.
							return
						}
						time.Sleep(20 * time.Millisecond) // not serving yet
						continue
					}
					if err != nil || resp.StatusCode != 200 && (path != "/readyz" || resp.StatusCode != 503) {
						if failures.Add(1) == 1 {
							if err != nil {
								firstFailure.Store(err.Error())
							} else {
								firstFailure.Store(resp.Status)
							}
						}
						time.Sleep(50 * time.Millisecond)
						continue
					}
					loads.Add(1)
					latMu.Lock()
					latencies = append(latencies, time.Since(start))
					latMu.Unlock()
					if wait := every - time.Since(start); wait > 0 {
						select {
						case <-stopLoad:
							return
						case <-time.After(wait):
						}
					}
				}
			}()
		}
	}
	stop := func() {
		stopOnce.Do(func() {
			close(stopLoad)
			loadDone.Wait()
			loadFor = time.Since(loadFrom)
		})
	}
	pipelines := 0
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		switch {
		case strings.Contains(line, "pipeline: consuming"):
			pipelines++
			if pipelines == 2 {
				startLoad()
			}
		case pipelines == 2 && strings.Contains(line, "baseline:"):
			stop() // the third round starts: the loaded round is over
		}
	}
	err = cmd.Wait()
	load2 := loadavg3()
	if pipelines >= 2 {
		stop()
	}
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, log.String(), stdout.String())
	}
	var res struct {
		Throughput struct {
			Rounds []struct {
				Pipeline float64 `json:"pipeline_records_per_s"`
				Baseline float64 `json:"baseline_records_per_s"`
			} `json:"rounds"`
		} `json:"throughput"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || len(res.Throughput.Rounds) != 3 {
		t.Fatalf("bench output: %v\n%s", err, stdout.String())
	}
	r := res.Throughput.Rounds
	quiet := (r[0].Pipeline + r[2].Pipeline) / 2
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[int(p*float64(len(latencies)-1))]
	}
	pace := "back to back"
	if every > 0 {
		pace = "each every " + every.String()
	}
	report := fmt.Sprintf("round 1 (no page loads) %.0f records/s; round 2 (50 clients loading %s "+pace+" for %s: %d loads, %d failed, p50 %s p99 %s max %s) %.0f records/s; round 3 (no page loads) %.0f records/s; loaded/unloaded = %.3f; baselines %.0f %.0f %.0f; load average %s → %s",
		r[0].Pipeline, path, loadFor.Truncate(time.Millisecond), loads.Load(), failures.Load(), pct(.5).Truncate(time.Millisecond), pct(.99).Truncate(time.Millisecond), pct(1).Truncate(time.Millisecond),
		r[1].Pipeline, r[2].Pipeline, r[1].Pipeline/quiet, r[0].Baseline, r[1].Baseline, r[2].Baseline, load1, load2)
	if f := firstFailure.Load(); f != nil {
		report += fmt.Sprintf("; first failed load: %v", f)
	}
	t.Log(report)
	if loads.Load() == 0 {
		t.Fatalf("no page load succeeded\n%s", log.String())
	}
	if r[1].Pipeline < 0.9*quiet {
		t.Errorf("the loaded round is more than 10%% slower: %s", report)
	}
}

// loadavg3 is the 1, 5 and 15 minute load averages.
func loadavg3() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}
