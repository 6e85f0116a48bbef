package main

import (
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly/internal/testenv"
)

// TestRunWaitsForAnUnreachableDatabase: a service started before its
// database (or during a failover) waits for it instead of exiting. The
// sink's address refuses connections for the first two seconds, then
// forwards to PostgreSQL; the run must catch up with every record exactly
// once, having said that it was waiting.
func TestRunWaitsForAnUnreachableDatabase(t *testing.T) {
	testenv.Binary(t) // built before the clock below starts
	e := newCrashEnv(t, "postgres", 600)
	u, err := url.Parse(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	real := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.Host = ln.Addr().String()
	ln.Close() // refused until the forwarder listens there
	e.dsn = u.String()
	go func() {
		time.Sleep(2 * time.Second)
		fw, err := net.Listen("tcp", u.Host)
		if err != nil {
			t.Errorf("listening again on %s: %v", u.Host, err)
			return
		}
		t.Cleanup(func() { fw.Close() })
		for {
			c, err := fw.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", real)
				if err != nil {
					return
				}
				defer s.Close()
				go io.Copy(s, c)
				io.Copy(c, s)
			}()
		}
	}()
	e.finish(t, 1)
	if log := e.log(); !strings.Contains(log, "the sink database is unreachable; retrying") {
		t.Errorf("the run did not say it was waiting for the database:\n%s", log)
	}
}
