package chaos

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/exactly/exactly/internal/testenv"
)

// TDS (SQL Server's wire protocol) packet types and the transaction
// manager request that commits: go-mssqldb's Tx.Commit sends no COMMIT
// statement but a TM_COMMIT_XACT request (MS-TDS 2.2.6.9).
const (
	tdsTransMgrReq   = 0x0E
	tdsStatusEOM     = 0x01
	tdsTMCommitXact  = 7
	tdsPacketHdrSize = 8
)

// tdsClientToServer is clientToServer for TDS: it forwards the client's
// packets one by one and applies the proxy's COMMIT cuts to a transaction
// manager commit request. The DSN must say encrypt=disable: under TLS the
// packets could not be read.
func (p *pgProxy) tdsClientToServer(c *proxyConn) {
	r := c.client
	for {
		var hdr [tdsPacketHdrSize]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[2:4]))
		if n < tdsPacketHdrSize {
			return
		}
		body := make([]byte, n-tdsPacketHdrSize)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		commit := hdr[0] == tdsTransMgrReq && hdr[1]&tdsStatusEOM != 0 && isTDSCommit(body)
		cut := false
		if commit {
			if p.cutBefore.Load() > 0 && p.cutBefore.Add(-1) >= 0 {
				p.firedBefore.Add(1)
				return // never forwarded: the server rolls back when the session ends
			}
			if p.cutAfter.Load() > 0 && p.cutAfter.Add(-1) >= 0 {
				cut = true
				c.swallow.Store(true)
			}
		}
		if _, err := c.server.Write(append(hdr[:], body...)); err != nil {
			return
		}
		if cut {
			// The COMMIT reached the server; its reply is dropped and the
			// connection cut once the server has answered.
			p.firedAfter.Add(1)
			select {
			case <-c.replied:
			case <-time.After(500 * time.Millisecond):
			}
			if d := time.Duration(p.downAfterCut.Swap(0)); d > 0 {
				p.setDown(true)
				time.AfterFunc(d, func() { p.setDown(false) })
			}
			return
		}
	}
}

// isTDSCommit: a transaction manager request is ALL_HEADERS (its total
// length first, little-endian) followed by the request type.
func isTDSCommit(body []byte) bool {
	if len(body) < 4 {
		return false
	}
	h := int(binary.LittleEndian.Uint32(body[:4]))
	if h < 4 || len(body) < h+2 {
		return false
	}
	return binary.LittleEndian.Uint16(body[h:h+2]) == tdsTMCommitXact
}

// TestTDSProxyCutsCommits: the proxy knows a go-mssqldb COMMIT when it
// sees one. Cut before forwarding, the row is not there; cut after, it is,
// and in both cases the client gets an error, not an answer.
func TestTDSProxyCutsCommits(t *testing.T) {
	dsn := testenv.SQLServerDSN(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "sqlserver" {
		t.Fatalf("need a sqlserver:// DSN: %v", err)
	}
	direct, err := sql.Open("sqlserver", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	table := fmt.Sprintf("tds_proxy_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	if _, err := direct.Exec("CREATE TABLE " + table + " (id INT NOT NULL PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	defer direct.Exec("DROP TABLE " + table)
	p, err := newTDSProxy(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	q := u.Query()
	q.Set("encrypt", "disable")
	u.RawQuery = q.Encode()
	u.Host = p.addr()
	for id, after := range map[int]bool{1: false, 2: true} {
		db, err := sql.Open("sqlserver", u.String())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		tx, err := db.BeginTx(ctx, nil)
		if err == nil {
			_, err = tx.ExecContext(ctx, "INSERT INTO "+table+" (id) VALUES (@p1)", id)
		}
		if err != nil {
			t.Fatal(err)
		}
		if after {
			p.cutAfter.Store(1)
		} else {
			p.cutBefore.Store(1)
		}
		if err := tx.Commit(); err == nil {
			t.Errorf("id %d: COMMIT answered through a cut connection", id)
		}
		cancel()
		db.Close()
		var n int
		deadline := time.Now().Add(30 * time.Second)
		for {
			// The server ends a session cut mid-transaction on its own time.
			if err := direct.QueryRow("SELECT COUNT(*) FROM "+table+" WHERE id = @p1", id).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 1 || !after || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if want := map[bool]int{false: 0, true: 1}[after]; n != want {
			t.Errorf("cut after forwarding=%v: %d rows with id %d, want %d", after, n, id, want)
		}
	}
	if p.firedBefore.Load() != 1 || p.firedAfter.Load() != 1 {
		t.Errorf("cuts fired: before %d, after %d; want 1 and 1", p.firedBefore.Load(), p.firedAfter.Load())
	}
}
