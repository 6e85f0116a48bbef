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
// sink's address refuses connections until the run says it is waiting,
// then forwards to PostgreSQL; the run must catch up with every record
// exactly once.
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
		// The database "comes back" once the run has said it is waiting
		// for it: no race with how fast the process starts.
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(e.log(), waiting); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Errorf("the run never said it was waiting for the database:\n%s", e.log())
				return
			}
		}
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
}

// waiting is what run logs while the sink database cannot be reached.
const waiting = "the sink database is unreachable; retrying"
