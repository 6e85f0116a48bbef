package sqlserver

import (
	"context"
	"database/sql/driver"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/microsoft/go-mssqldb/msdsn"
)

// Round trips decide a flight's latency on Azure SQL (1–4 ms each): every
// connection counts them where they happen, on the socket — a read that
// follows a write is one — so bulk copies and the driver's own requests
// (BEGIN, COMMIT) count as well as statements. Each transaction's count is
// logged at debug level when it ends ("sqlserver transaction round trips").

type tripsKey struct{}

// countingDialer dials TCP like the driver's default dialer (keep-alive
// from the DSN, default 30s) and counts the round trips of connections
// whose Connect context carries a counter.
type countingDialer struct{ keepAlive time.Duration }

func newCountingDialer(dsn string) countingDialer {
	ka := 30 * time.Second
	if cfg, err := msdsn.Parse(dsn); err == nil && cfg.KeepAlive != 0 {
		ka = cfg.KeepAlive
	}
	return countingDialer{keepAlive: ka}
}

func (d countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{KeepAlive: d.keepAlive}
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if n, ok := ctx.Value(tripsKey{}).(*atomic.Int64); ok {
		return &countedConn{Conn: c, trips: n}, nil
	}
	return c, nil
}

// countedConn counts a read that follows a write as one round trip.
type countedConn struct {
	net.Conn
	trips *atomic.Int64
	wrote atomic.Bool
}

func (c *countedConn) Write(b []byte) (int, error) {
	c.wrote.Store(true)
	return c.Conn.Write(b)
}

func (c *countedConn) Read(b []byte) (int, error) {
	if c.wrote.Swap(false) {
		c.trips.Add(1)
	}
	return c.Conn.Read(b)
}

// countedTx logs the round trips from BEGIN to COMMIT or ROLLBACK.
type countedTx struct {
	driver.Tx
	c     *conn
	start int64
}

func (t *countedTx) end(what string, err error) error {
	n := t.c.trips.Load() - t.start
	slog.Debug("sqlserver transaction round trips", "round_trips", n, "end", what, "ok", err == nil)
	return err
}

func (t *countedTx) Commit() error   { return t.end("commit", t.Tx.Commit()) }
func (t *countedTx) Rollback() error { return t.end("rollback", t.Tx.Rollback()) }

// RoundTrips implements exactly.RoundTripCounter: the round trips of the
// connection since it was opened.
func (c *conn) RoundTrips() int64 { return c.trips.Load() }
