package exactly_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/sink/postgres"
	"github.com/exactly/exactly/internal/testenv"
)

// cuttingProxy forwards TCP to a PostgreSQL server until a client sends a
// message containing cutAt; then it closes every connection and its
// listener, as a database that went away at that moment.
type cuttingProxy struct {
	ln     net.Listener
	target string
	cutAt  []byte
	mu     sync.Mutex
	cut    bool
	conns  []net.Conn
}

func newCuttingProxy(t *testing.T, dsn, cutAt string) (*cuttingProxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{ln: ln, target: u.Host, cutAt: []byte(cutAt)}
	t.Cleanup(p.close)
	go p.serve()
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *cuttingProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.toServer(c, s)
		go func() { io.Copy(c, s); c.Close() }()
	}
}

// toServer forwards what the client sends, unless it holds cutAt (looked
// for across reads too).
func (p *cuttingProxy) toServer(c, s net.Conn) {
	buf := make([]byte, 32<<10)
	var tail []byte
	for {
		n, err := c.Read(buf)
		if err != nil {
			s.Close()
			return
		}
		seen := append(tail, buf[:n]...)
		if bytes.Contains(seen, p.cutAt) {
			p.close()
			return
		}
		tail = append([]byte(nil), seen[max(len(seen)-len(p.cutAt), 0):]...)
		if _, err := s.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (p *cuttingProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestLedgerDescribeLosingTheDatabaseIsAConnectionError: the database
// goes away after NewSink opened its pool and created the ledger tables,
// as EnsureLedger describes them. The error must still be a connection
// error by the dialect's Classify, as run's start-up retries only those
// (openSinkPatiently). Regression: the describe error was formatted with
// %v, so it read as "other" and the run exited instead of waiting for the
// database.
func TestLedgerDescribeLosingTheDatabaseIsAConnectionError(t *testing.T) {
	d := &postgres.Dialect{}
	proxy, dsn := newCuttingProxy(t, testenv.PostgresSchema(t), "to_regclass") // in Describe's query only
	cfg := configFor("postgres", dsn, "items")("p")
	_, err := exactly.NewSink(context.Background(), cfg, d, decode.For(cfg), slog.New(slog.NewTextHandler(io.Discard, nil)))
	proxy.mu.Lock()
	cut := proxy.cut
	proxy.mu.Unlock()
	if !cut {
		t.Fatalf("the proxy never saw the ledger described (err %v)", err)
	}
	if err == nil {
		t.Fatal("NewSink succeeded with the database gone")
	}
	if k := d.Classify(err); k != exactly.ErrConnection {
		t.Errorf("NewSink's error when the database went away while describing the ledger: %v\nclassified %v, want %v", err, k, exactly.ErrConnection)
	}
}

// TestEnsureLedgerDoesNotWaitForAFlightInProgress: a member starting
// while another member's transaction holds the ledger (a frozen member,
// until the idle-transaction timeout) ran CREATE INDEX IF NOT EXISTS on
// exactly_batches, which PostgreSQL locks for before it sees the index
// exists: the start waited there without a word, and the running
// members' flights queued behind it (TestNothingMovesIsSaid under load).
func TestEnsureLedgerDoesNotWaitForAFlightInProgress(t *testing.T) {
	dsn := testenv.PostgresSchema(t)
	cfg := configFor("postgres", dsn, "items")("p")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	first, err := exactly.NewSink(context.Background(), cfg, &postgres.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	tx, err := first.DB().Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE exactly_batches SET notes = notes WHERE false`); err != nil { // the lock a flight's ledger row takes
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	second, err := exactly.NewSink(ctx, cfg, &postgres.Dialect{}, decode.For(cfg), log)
	if err != nil {
		t.Fatalf("a second sink could not start while a transaction held the ledger: %v", err)
	}
	second.Close()
}
