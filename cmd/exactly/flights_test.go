package main

import (
	"testing"
	"time"
)

// TestRunShowsTheFlightLimit: exactly run wraps the metrics in its run
// summary, which must pass the adaptive flight limit on: without it
// exactly_flight_limit{,_max} stayed 0 and the status page had no
// "transactions" card under exactly run, the command that matters (only
// bench and tests, which hand the metrics to the source unwrapped, showed
// them).
func TestRunShowsTheFlightLimit(t *testing.T) {
	e := newLiveEnv(t)
	addr := freeAddr(t)
	cfg := e.config("a", "", e.dsn)
	stop := e.produce(200)
	defer stop()
	a := e.startWith("a", cfg, "--metrics-addr", addr)
	if _, ok := e.waitCommit(0, time.Now(), 60*time.Second); !ok {
		t.Fatalf("no commit within 60s\n%s", e.log())
	}
	metric(t, addr, `exactly_flight_limit_max{pipeline="live"} 4`)
	waitHTTP(t, "http://"+addr+"/", `id="flight-limit"`, `of 4 (sink.max_conns)`)
	stop()
	e.term(a, 10*time.Second)
}
