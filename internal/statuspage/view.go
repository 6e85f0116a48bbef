package statuspage

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/secret"
)

// ledgerView is what the page read from the ledger, kept for CacheFor.
type ledgerView struct {
	at        time.Time
	checks    []Check
	offsets   []exactly.OffsetRow
	totals    map[exactly.TP]*exactly.BatchTotals
	openDead  map[exactly.TP]int64
	batches   []exactly.BatchRow
	dead      []deadLetter
	deadTotal int64
	chain     []exactly.ChainBreak
	chainRows int64
	chainAt   string
	errors    []string
}

// ledgerView returns what the page shows from the ledger, reading it again
// when the last reading is older than CacheFor. One reading at a time:
// concurrent page loads wait for it and share it, so however many browsers
// are open the status pool runs one set of queries per CacheFor.
func (s *Server) ledgerView(ctx context.Context) *ledgerView {
	cacheFor := s.CacheFor
	if cacheFor <= 0 {
		cacheFor = 5 * time.Second
	}
	s.viewMu.Lock()
	defer s.viewMu.Unlock()
	if v := s.view; v != nil && time.Since(v.at) < cacheFor {
		return v
	}
	timeout := s.QueryTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	// Not the request's context: the reading is shared, and a browser
	// that goes away must not fail it for the others.
	bg := context.WithoutCancel(ctx)
	read := func(f func(ctx context.Context) error) error {
		ctx, cancel := context.WithTimeout(bg, timeout)
		defer cancel()
		return f(ctx)
	}
	v := &ledgerView{}
	fail := func(what string, err error) {
		if err != nil {
			v.errors = append(v.errors, what+": "+s.text(err.Error()))
		}
	}
	v.checks = s.Ready(bg)
	for i := range v.checks {
		v.checks[i].Info = s.text(v.checks[i].Info)
	}
	fail("offsets", read(func(ctx context.Context) (err error) { v.offsets, err = s.Ledger.Offsets(ctx); return }))
	fail("totals", read(func(ctx context.Context) (err error) { v.totals, err = s.Ledger.Totals(ctx); return }))
	fail("dead letter counts", read(func(ctx context.Context) error {
		counts, err := s.Ledger.DeadLetterCounts(ctx)
		v.openDead = make(map[exactly.TP]int64, len(counts))
		for tp, c := range counts {
			v.openDead[tp] = c.Open
		}
		return err
	}))
	fail("batches", read(func(ctx context.Context) (err error) { v.batches, err = s.Ledger.RecentBatches(ctx, 25); return }))
	fail("dead letters", read(func(ctx context.Context) error {
		rows, total, err := s.Ledger.RecentDeadLetters(ctx, 20)
		for i := range rows {
			v.dead = append(v.dead, newDeadLetter(&rows[i]))
		}
		v.deadTotal = total
		return err
	}))
	fail("chain", read(func(ctx context.Context) (err error) {
		v.chain, v.chainRows, v.chainAt, err = s.chainCheck(ctx, v.offsets)
		return
	}))
	for i := range v.batches {
		v.batches[i].Error = s.text(v.batches[i].Error)
	}
	for i := range v.dead {
		d := &v.dead[i]
		d.Error = s.text(d.Error)
		if !s.ShowData {
			d.Key, d.Value = hidden(d.KeyLen), hidden(d.ValueLen)
		}
	}
	v.at = time.Now()
	s.view = v
	return v
}

func hidden(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("(%d bytes, hidden)", n)
}

// quoted is a value a database or decoder error quotes: 'abc', "abc",
// Key (id)=(5). A quote followed by a letter or digit does not end the
// value (MySQL and PostgreSQL quote O'Brien as 'O'Brien' without
// escaping it), nor does a backslash-escaped one (Go's "O\"Brien").
var quoted = regexp.MustCompile(`'(?:[^'\\]|\\.|'[\p{L}\p{N}])*'|"(?:[^"\\]|\\.|"[\p{L}\p{N}])*"|=\([^)]*\)`)

// text is what the page shows of an error: scrubbed of secrets always,
// and without the values it quotes unless ShowData.
func (s *Server) text(t string) string {
	t = secret.Scrub(t)
	if s.ShowData {
		return t
	}
	return quoted.ReplaceAllStringFunc(t, func(m string) string {
		switch m[0] {
		case '=':
			return "=(…)"
		default:
			return string(m[0]) + "…" + string(m[0])
		}
	})
}
