package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/demo"
	"github.com/exactly/exactly/repair"
)

type dedupeOpts struct {
	file, driver  string
	sink          sinkFlags
	spec          repair.Dedupe
	apply, unique bool
	asJSON        bool
}

func newDedupeCmd(g *globals) *cobra.Command {
	o := dedupeOpts{}
	cmd := &cobra.Command{
		Use:   "dedupe --sink-file FILE --table T --key COLS [--keep newest|oldest --order-by COL] [--apply] [--add-unique-key]",
		Short: "Repair a table damaged by an at-least-once tool: one row per key, surplus rows moved to T_exactly_removed",
		Long: `dedupe finds keys held by more than one row. By default it only prints the
plan (keys, surplus rows, samples) and exits 1 when there is something to do,
0 when the table is clean. With --apply it copies the surplus rows into
T_exactly_removed and deletes them from T in one transaction: nothing is
deleted without being kept. --add-unique-key (with --apply) then creates the
unique index on the key columns so duplicates cannot come back.

The copy kept is the newest (or oldest) by --order-by; without --order-by an
arbitrary copy is kept, which is right when the copies are identical. Rows
with a NULL key column are never touched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("keep") && o.spec.OrderBy == "" {
				return usage(errors.New("--keep needs --order-by COL: the column that tells newest from oldest"))
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return dedupe(ctx, g, o)
		},
	}
	f := cmd.Flags()
	o.sink.env = true
	o.sink.add(f, "sink DSN (postgres://…, or a SQLite file path); default: $"+sinkEnv)
	f.StringVar(&o.driver, "driver", "", "sink driver; default: told from the DSN")
	f.StringVarP(&o.file, "config", "c", "", "take the sink from this configuration file instead of --sink")
	f.StringVar(&o.spec.Table, "table", "", "table to repair")
	f.StringSliceVar(&o.spec.Key, "key", nil, "columns that identify a row (comma-separated)")
	f.StringVar(&o.spec.Keep, "keep", "newest", "which copy to keep: newest or oldest by --order-by")
	f.StringVar(&o.spec.OrderBy, "order-by", "", "column ranking the copies of a key")
	f.BoolVar(&o.apply, "apply", false, "move the surplus rows to the backup table and delete them")
	f.BoolVar(&o.unique, "add-unique-key", false, "after --apply, create a unique index on the key columns")
	f.BoolVar(&o.asJSON, "json", false, "print the plan or result as JSON")
	return cmd
}

func dedupe(ctx context.Context, g *globals, o dedupeOpts) error {
	if o.spec.Table == "" || len(o.spec.Key) == 0 {
		return usage(errors.New("--table and --key are required"))
	}
	if o.unique && !o.apply {
		return usage(errors.New("--add-unique-key changes the table: it needs --apply"))
	}
	dsn, err := o.sink.resolve()
	if err != nil {
		return err
	}
	sc := exactly.SinkConfig{Driver: o.driver, DSN: dsn}
	switch {
	case o.file != "" && (o.sink.dsn != "" || o.sink.file != ""):
		return usage(errors.New("give either --sink DSN (or --sink-file) or -c FILE, not both"))
	case o.file != "":
		cfg, err := exactly.LoadConfig(o.file)
		if err != nil {
			return err
		}
		sc = cfg.Sink
	case dsn == "":
		return usage(errors.New("--sink-file FILE, $" + sinkEnv + ", --sink DSN or -c FILE is required"))
	}
	if sc.Driver == "" {
		sc.Driver = demo.DriverOf(sc.DSN)
	}
	d, err := dialectFor(sc.Driver)
	if err != nil {
		return usage(err)
	}
	db, err := d.Open(ctx, sc)
	if err != nil {
		return fmt.Errorf("opening %s sink: %w", d.Name(), err)
	}
	defer db.Close()
	pg := newProgress(g)
	pg.Show(true, "dedupe %s: reading duplicates…", o.spec.Table)
	if !o.apply {
		p, err := repair.PlanDedupe(ctx, db, d, o.spec)
		pg.Done()
		if errors.Is(err, repair.ErrSpec) {
			return usage(err)
		}
		if err != nil {
			return err
		}
		if o.asJSON {
			if err := writeJSON(g, p); err != nil {
				return err
			}
		} else {
			printPlan(g, p)
			if p.Surplus > 0 {
				fmt.Fprintf(g.stdout, "dry run: nothing changed. Run again with --apply to move the %d surplus rows into %s and delete them in one transaction", p.Surplus, p.Backup)
				fmt.Fprintf(g.stdout, " (add --add-unique-key to then run: %s)\n", p.UniqueKey)
			}
		}
		if p.Surplus > 0 {
			return findings("dedupe: %s has %d surplus rows over %d keys", p.Table, p.Surplus, p.Keys)
		}
		return nil
	}
	pg.Show(true, "dedupe %s: moving surplus rows to %s_exactly_removed…", o.spec.Table, o.spec.Table)
	res, err := repair.ApplyDedupe(ctx, db, d, o.spec)
	pg.Done()
	if errors.Is(err, repair.ErrSpec) {
		return usage(err)
	}
	if err != nil {
		return err
	}
	var uniq string
	if o.unique {
		if uniq, err = repair.AddUniqueKey(ctx, db, d, o.spec); err != nil {
			return fmt.Errorf("the dedupe committed, but %w", err)
		}
	}
	if o.asJSON {
		return writeJSON(g, map[string]any{"result": res, "unique_key_added": uniq})
	}
	printPlan(g, &res.Plan)
	fmt.Fprintf(g.stdout, "moved %d rows into %s and deleted them from %s; %d keys now hold one row each\n", res.Removed, res.Backup, res.Table, res.Kept)
	if uniq != "" {
		fmt.Fprintf(g.stdout, "added the unique key: %s\n", uniq)
	}
	return nil
}

func writeJSON(g *globals, v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printPlan(g *globals, p *repair.Plan) {
	w := g.stdout
	keep := "an arbitrary copy (no --order-by)"
	if p.OrderBy != "" {
		keep = fmt.Sprintf("the %s by %s", p.Keep, p.OrderBy)
	}
	fmt.Fprintf(w, "table %s, key (%s), keeping %s\n", p.Table, strings.Join(p.Key, ", "), keep)
	fmt.Fprintf(w, "rows %d, keys with duplicates %d, surplus rows %d", p.Rows, p.Keys, p.Surplus)
	if p.NullKeys > 0 {
		fmt.Fprintf(w, ", rows with a NULL key (left alone) %d", p.NullKeys)
	}
	fmt.Fprintln(w)
	for _, s := range p.Samples {
		fmt.Fprintf(w, "  (%s): %d copies\n", strings.Join(s.Key, ", "), s.Copies)
	}
}
