package chaos

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// pgProxy forwards PostgreSQL connections and injects faults on demand: it
// can refuse and cut every connection (an outage), and cut a connection
// at its next COMMIT, either before forwarding it (the transaction rolls
// back, the client cannot know) or right after forwarding it while
// swallowing the reply (the transaction commits, the client cannot know).
type pgProxy struct {
	ln     net.Listener
	target string
	// tds: the connections speak SQL Server's TDS, not PostgreSQL's
	// protocol (see tdsClientToServer).
	tds bool

	mu    sync.Mutex
	conns map[*proxyConn]bool

	down        atomic.Bool
	cutAfter    atomic.Int32 // COMMITs still to cut after forwarding
	cutBefore   atomic.Int32 // COMMITs still to drop
	firedAfter  atomic.Int64
	firedBefore atomic.Int64
	// downAfterCut, when set, starts an outage of that length the moment
	// a COMMIT is cut after forwarding: the client cannot read back the
	// outcome until the database returns.
	downAfterCut atomic.Int64
}

type proxyConn struct {
	client, server net.Conn
	swallow        atomic.Bool
	replied        chan struct{}
	once           sync.Once
}

func (c *proxyConn) close() {
	c.client.Close()
	c.server.Close()
}

func newPGProxy(target string) (*pgProxy, error) { return newProxy(target, false) }

// newTDSProxy is the proxy for SQL Server's protocol.
func newTDSProxy(target string) (*pgProxy, error) { return newProxy(target, true) }

func newProxy(target string, tds bool) (*pgProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &pgProxy{ln: ln, target: target, tds: tds, conns: map[*proxyConn]bool{}}
	go p.accept()
	return p, nil
}

func (p *pgProxy) addr() string { return p.ln.Addr().String() }

func (p *pgProxy) close() {
	p.ln.Close()
	p.cutAll()
}

// setDown starts or ends an outage: while down, every connection is cut
// and new ones are closed at once.
func (p *pgProxy) setDown(down bool) {
	p.down.Store(down)
	if down {
		p.cutAll()
	}
}

func (p *pgProxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.close()
	}
}

func (p *pgProxy) accept() {
	for {
		cc, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			cc.Close()
			continue
		}
		go p.serve(cc)
	}
}

func (p *pgProxy) serve(cc net.Conn) {
	sc, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		cc.Close()
		return
	}
	c := &proxyConn{client: cc, server: sc, replied: make(chan struct{})}
	p.mu.Lock()
	p.conns[c] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.close()
	}()
	go func() {
		defer c.close()
		buf := make([]byte, 32<<10)
		for {
			n, err := sc.Read(buf)
			if n > 0 {
				if c.swallow.Load() {
					c.once.Do(func() { close(c.replied) })
				} else if _, werr := cc.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	if p.tds {
		p.tdsClientToServer(c)
		return
	}
	p.clientToServer(c)
}

// clientToServer forwards the client's messages one by one, so it can tell
// a COMMIT from other statements. Startup-phase messages have no type byte.
func (p *pgProxy) clientToServer(c *proxyConn) {
	r := c.client
	for started := false; !started; {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[:4]))
		code := binary.BigEndian.Uint32(hdr[4:])
		body := make([]byte, n-8)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if _, err := c.server.Write(append(hdr[:], body...)); err != nil {
			return
		}
		started = code == 196608 // protocol 3.0 StartupMessage
	}
	pendingCut := false
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(hdr[1:]))
		body := make([]byte, n-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		typ := hdr[0]
		if (typ == 'Q' || typ == 'P') && isCommit(typ, body) {
			if p.cutBefore.Load() > 0 && p.cutBefore.Add(-1) >= 0 {
				p.firedBefore.Add(1)
				return // never forwarded: the server rolls back on EOF
			}
			if p.cutAfter.Load() > 0 && p.cutAfter.Add(-1) >= 0 {
				pendingCut = true
			}
		}
		if pendingCut && (typ == 'Q' || typ == 'S') {
			c.swallow.Store(true)
		}
		if _, err := c.server.Write(append(hdr[:], body...)); err != nil {
			return
		}
		if pendingCut && (typ == 'Q' || typ == 'S') {
			// The COMMIT reached the server; its reply is dropped and
			// the connection cut once the server has answered.
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

func isCommit(typ byte, body []byte) bool {
	q := body
	if typ == 'P' { // statement name, then the query
		if i := bytes.IndexByte(q, 0); i >= 0 {
			q = q[i+1:]
		}
	}
	if i := bytes.IndexByte(q, 0); i >= 0 {
		q = q[:i]
	}
	s := strings.ToLower(strings.TrimSpace(string(q)))
	s = strings.TrimSuffix(s, ";")
	return s == "commit" || s == "commit transaction" || s == "end"
}
