package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
)

type pruneOpts struct {
	file, before, reason string
	apply, deadLetters   bool
	asJSON               bool
	chunk                int
	sel                  selector
}

func newPruneCmd(g *globals) *cobra.Command {
	o := pruneOpts{}
	cmd := &cobra.Command{
		Use:   "prune -c FILE --before DURATION|TIME [--apply] [--dead-letters] [--topic PATTERN] [--table PATTERN] [--json]",
		Short: "Ledger retention: delete the exactly_batches rows older than a cut, leaving a marker that keeps the chain provable",
		Long: `prune deletes old ledger rows: per partition, the committed batches of the
chain's prefix committed before --before (a duration ago like 90d or 720h, a
date or an RFC3339 time), and the failed and replayed rows older than it whose
range lies in the pruned prefix. It never deletes a partition's newest
committed row, never goes past a break of the chain (the break stays for
exactly verify to report: exit 1), and leaves the rows before a partition's
last reseed and its redriven rows alone.

In the transaction that deletes them it replaces the partition's marker, one
exactly_batches row of status "pruned": from_offset the first pruned row's,
to_offset the first kept row's, records the sum, hash a digest of the pruned
rows' hashes in chain order, writer who, notes (JSON) how many rows, the cut
and why. exactly verify starts the chain at the marker: a gap between the
marker and the first kept row, or rows deleted without a marker, are still
findings. Transactions delete at most --chunk rows by primary key and never
touch exactly_offsets: a running pipeline is not held up.

Without --apply it prints what it would delete and changes nothing.
--dead-letters also deletes dead letters resolved (redriven) before the cut;
an open dead letter is never deleted.

Exit 0 when done (or planned), 1 when a partition stopped at a break of its
chain or the ledger changed under the prune, 2 on a usage error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return prune(ctx, g, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "config", "c", "", "configuration file (YAML)")
	f.StringVar(&o.before, "before", "", "the cut: rows committed before it go (a duration ago like 90d or 720h, a date, or an RFC3339 time)")
	f.BoolVar(&o.apply, "apply", false, "delete (without it: print what would be deleted)")
	f.BoolVar(&o.deadLetters, "dead-letters", false, "also delete the dead letters resolved before the cut (never an open one)")
	f.IntVar(&o.chunk, "chunk", 10000, "ledger rows deleted per transaction")
	f.StringVar(&o.reason, "reason", "", "why (written to the marker's notes); default: ledger retention")
	f.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	o.sel.flags(f, "default: every topic")
	return cmd
}

// pruneReport is what exactly prune prints with --json.
type pruneReport struct {
	Pipeline    string          `json:"pipeline"`
	Before      time.Time       `json:"before"`
	Applied     bool            `json:"applied"`
	Rows        int64           `json:"rows"`
	DeadLetters int64           `json:"dead_letters"`
	Seconds     float64         `json:"seconds"`
	Partitions  []prunedJSON    `json:"partitions"`
	Stopped     []prunedStopped `json:"stopped"`
}

type prunedJSON struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Committed   int64  `json:"committed"`
	Failed      int64  `json:"failed"`
	Replayed    int64  `json:"replayed"`
	Records     int64  `json:"records"`
	From        int64  `json:"from"`
	To          int64  `json:"to"`
	DeadLetters int64  `json:"dead_letters"`
	// ChainStart is where the partition's chain starts after the prune
	// (the marker's to_offset); absent without a marker.
	ChainStart *int64 `json:"chain_start,omitempty"`
	Marker     string `json:"marker,omitempty"`
}

type prunedStopped struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Why       string `json:"why"`
}

func prune(ctx context.Context, g *globals, o pruneOpts) error {
	if err := o.sel.check(); err != nil {
		return err
	}
	if o.file == "" {
		return usage(errMissingConfig)
	}
	if o.before == "" {
		return usage(errors.New("--before is required: the cut, e.g. --before 90d"))
	}
	cut, err := parseSince(o.before)
	if err != nil {
		return usage(fmt.Errorf("--before: got %q, expected an RFC3339 time (2025-06-10T08:00:00Z), a date (2025-06-10) or a duration ago (720h, 90d)", o.before))
	}
	if !cut.Before(time.Now()) {
		return usage(fmt.Errorf("--before %s: the cut is not in the past", o.before))
	}
	if o.chunk <= 0 {
		return usage(fmt.Errorf("--chunk %d: expected a positive number of rows", o.chunk))
	}
	e, err := openEnv(ctx, g, o.file, envOpts{})
	if err != nil {
		return err
	}
	defer e.Close()
	// A ledger to prune must exist: neither a dry run nor --apply creates
	// one (a wrong sink.dsn is refused, exit 2, not given empty tables).
	if err := e.openSink(ctx, drySink); err != nil {
		return err
	}
	if o.apply { // brings an older ledger up to date (resolved_* columns)
		e.sink.Close()
		e.sink, e.ledger = nil, nil
		if err := e.openSink(ctx, writeSink); err != nil {
			return err
		}
	}
	ledger := exactly.NewLedger(e.sink.DB(), e.d, e.cfg.Pipeline)
	var sel func(exactly.TP) bool
	if !o.sel.empty() {
		all, err := ledger.Partitions(ctx)
		if err != nil {
			return err
		}
		if len(o.sel.filter(e.cfg, all)) == 0 {
			return o.sel.matchedNothing("the ledger holds", all)
		}
		sel = func(tp exactly.TP) bool { return o.sel.matchTopic(e.cfg, tp.Topic) }
	}
	why := strings.TrimSpace(o.reason)
	if why == "" {
		why = "ledger retention (exactly prune --before " + o.before + ")"
	}
	pg := newProgress(g)
	var prev exactly.TP
	var base, cur int64 // rows of the partitions done, and of the current one
	started := time.Now()
	res, err := e.sink.Prune(ctx, exactly.Prune{Before: cut, Chunk: o.chunk, Apply: o.apply, DeadLetters: o.deadLetters,
		Who: operator(), Why: why, Select: sel,
		Progress: func(tp exactly.TP, rows int64) {
			if tp != prev {
				base, cur, prev = base+cur, 0, tp
			}
			cur = rows
			pg.Show(false, "prune: %d ledger rows (%s)", base+cur, tp)
		}})
	pg.Done()
	elapsed := time.Since(started)
	rep := pruneReport{Pipeline: e.cfg.Pipeline, Before: cut, Applied: o.apply, Seconds: elapsed.Seconds(),
		Partitions: []prunedJSON{}, Stopped: []prunedStopped{}}
	for _, r := range res {
		rep.Rows += r.Rows()
		rep.DeadLetters += r.DeadLetters
		if r.Stopped != "" {
			rep.Stopped = append(rep.Stopped, prunedStopped{r.Topic, r.Partition, r.Stopped})
		}
		if r.Rows() == 0 && r.DeadLetters == 0 {
			continue
		}
		p := prunedJSON{Topic: r.Topic, Partition: r.Partition, Committed: r.Committed, Failed: r.Failed, Replayed: r.Replayed,
			Records: r.Records, From: r.From, To: r.To, DeadLetters: r.DeadLetters}
		if r.Marker != nil {
			start := r.Marker.To
			p.ChainStart = &start
			if o.apply {
				p.Marker = r.Marker.BatchID
			}
		}
		rep.Partitions = append(rep.Partitions, p)
	}
	if o.asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(rep); jerr != nil {
			return jerr
		}
	} else {
		printPrune(g, &rep, len(res))
	}
	if err != nil {
		var moved *exactly.PruneMovedError
		if errors.As(err, &moved) {
			return findings("%v", err)
		}
		return err
	}
	if len(rep.Stopped) > 0 {
		return findings("prune: %d partitions stopped at a break of their chain (exactly verify reports it)", len(rep.Stopped))
	}
	return nil
}

func printPrune(g *globals, rep *pruneReport, partitions int) {
	w := g.stdout
	verb := "would prune"
	if rep.Applied {
		verb = "pruned"
	}
	for _, p := range rep.Partitions {
		fmt.Fprintf(w, "%s %s[%d]: %d ledger rows (%d committed", verb, p.Topic, p.Partition, p.Committed+p.Failed+p.Replayed, p.Committed)
		if p.Committed > 0 {
			fmt.Fprintf(w, ", offsets %d..%d, %d records", p.From, p.To-1, p.Records)
		}
		fmt.Fprintf(w, "; %d failed, %d replayed)", p.Failed, p.Replayed)
		if p.ChainStart != nil {
			fmt.Fprintf(w, "; the chain starts at %d", *p.ChainStart)
		}
		if p.Marker != "" {
			fmt.Fprintf(w, " (marker %s)", p.Marker)
		}
		if p.DeadLetters > 0 {
			fmt.Fprintf(w, "; %d resolved dead letters", p.DeadLetters)
		}
		fmt.Fprintln(w)
	}
	for _, s := range rep.Stopped {
		fmt.Fprintf(w, "STOPPED %s[%d]: %s\n", s.Topic, s.Partition, s.Why)
	}
	rate := ""
	if rep.Applied && rep.Seconds > 0 && rep.Rows > 0 {
		rate = fmt.Sprintf(", %.0f rows/s", float64(rep.Rows)/rep.Seconds)
	}
	fmt.Fprintf(w, "%s %d ledger rows in %d of %d partitions (committed before %s)", verb, rep.Rows, len(rep.Partitions), partitions, rep.Before.Format(time.RFC3339))
	if rep.DeadLetters > 0 {
		fmt.Fprintf(w, " and %d resolved dead letters", rep.DeadLetters)
	}
	fmt.Fprintf(w, " in %.1fs%s\n", rep.Seconds, rate)
	if !rep.Applied && rep.Rows+rep.DeadLetters > 0 {
		fmt.Fprintln(w, "dry run: nothing was deleted; --apply deletes")
	}
}
