// Package adopt decides where a pipeline that takes over from another
// starts: the offsets it wants per partition (from a Spark checkpoint, a
// consumer group or a timestamp), checked against Kafka's logs and the
// ledger. Once the ledger has a row for a partition the ledger is the
// truth: adopt never moves it, and refuses an adoption that would. The
// command prints; this package decides.
package adopt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/spark"
)

// Adoption is one adopt run: the offsets it wants per partition and what
// stands in their way.
type Adoption struct {
	Cfg *exactly.Config
	// Source names where the offsets come from, for the offsets rows'
	// writer column and the output.
	Source string
	Want   map[exactly.TP]int64
	// Notes are printed after the plan; Problems make adopt refuse to
	// write.
	Notes    []string
	Problems []string
	// Rows and Seed are filled by Decide: one row per wanted partition,
	// and the partitions to seed.
	Rows []Row
	Seed []exactly.TP
}

// Row is one partition of the plan.
type Row struct {
	TP     exactly.TP
	Next   int64  // the offset the partition would start at
	Bounds string // Kafka's offsets, "start..end"
	Ledger string // the ledger's next_offset, or "(no row)"
	Action string
}

// FromSpark takes the end offsets of the checkpoint's last committed
// micro-batch in st.
func FromSpark(ctx context.Context, cfg *exactly.Config, adm *kafka.Client, st spark.Store) (*Adoption, error) {
	a := &Adoption{Cfg: cfg}
	dir := st.Where("")
	cp, err := spark.ReadStore(ctx, st)
	if err != nil {
		return nil, err
	}
	for _, s := range cp.Ignored {
		a.Notes = append(a.Notes, "ignored in the checkpoint: "+s)
	}
	if cp.LastCommitted < 0 {
		a.Problems = append(a.Problems, fmt.Sprintf("the checkpoint %s has no committed micro-batch (no commits/N next to an offsets/N): there is no position to take over from; use start_from in the configuration instead", dir))
	}
	a.Source = fmt.Sprintf("spark checkpoint %s, micro-batch %d", dir, cp.LastCommitted)
	a.Want = map[exactly.TP]int64{}
	for tp, next := range cp.Next {
		if _, _, ok := cfg.Route(tp.Topic); !ok {
			a.Notes = append(a.Notes, fmt.Sprintf("%s is in the checkpoint but no table rule of this pipeline matches it: not seeded", tp))
			continue
		}
		a.Want[tp] = next
	}
	tps, err := adm.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	a.dropMissing(tps)
	if err := a.fresh(ctx, adm, cp, tps); err != nil {
		return nil, err
	}
	for _, b := range cp.Uncommitted {
		a.Notes = append(a.Notes, UncommittedNote(cfg.File, b)...)
		if tables := a.appendTables(b); len(tables) > 0 {
			a.Notes = append(a.Notes, "append tables of this pipeline in that range: "+strings.Join(tables, ", "))
		}
	}
	return a, nil
}

// dropMissing refuses the checkpoint's partitions Kafka does not have.
func (a *Adoption) dropMissing(tps []exactly.TP) {
	inKafka := map[exactly.TP]bool{}
	for _, tp := range tps {
		inKafka[tp] = true
	}
	for tp := range a.Want {
		if !inKafka[tp] {
			a.Problems = append(a.Problems, fmt.Sprintf("%s is in the checkpoint but Kafka has no such partition: a different cluster, or the topic was recreated", tp))
			delete(a.Want, tp)
		}
	}
}

// fresh starts the partitions new to Spark at their log start. A
// partition of a topic the query read that the last committed micro-batch
// does not list was new to Spark (added to the topic, or first planned in
// an uncommitted batch): Spark reads a partition it discovers from its
// earliest offset (KafkaOffsetReader's getOffsetRangesFromResolvedOffsets),
// so nothing of it is committed anywhere and it is taken over from the
// log start, whatever start_from says (start_from latest would skip it
// all).
func (a *Adoption) fresh(ctx context.Context, adm *kafka.Client, cp *spark.Checkpoint, tps []exactly.TP) error {
	sparkTopics := map[string]bool{}
	for tp := range cp.Next {
		sparkTopics[tp.Topic] = true
	}
	for _, b := range cp.Uncommitted {
		for tp := range b.To {
			sparkTopics[tp.Topic] = true
		}
	}
	var fresh []exactly.TP
	for _, tp := range tps {
		if _, ok := a.Want[tp]; ok || cp.LastCommitted < 0 {
			continue
		}
		if sparkTopics[tp.Topic] {
			fresh = append(fresh, tp)
			continue
		}
		a.Notes = append(a.Notes, fmt.Sprintf("%s is not in the checkpoint: it starts from start_from (%s) when the pipeline first sees it", tp, a.Cfg.Source.StartFrom))
	}
	if len(fresh) == 0 {
		return nil
	}
	bounds, err := adm.AllBounds(ctx, fresh)
	if err != nil {
		return err
	}
	for _, tp := range fresh {
		a.Want[tp] = bounds[tp].Start
		a.Notes = append(a.Notes, fmt.Sprintf("%s is not in the last committed micro-batch: Spark reads a partition new to it from its earliest offset, so it starts at the log start (%d)", tp, bounds[tp].Start))
	}
	return nil
}

// appendTables are the append-mode tables of this pipeline the batch's
// topics route to, sorted.
func (a *Adoption) appendTables(b spark.Batch) []string {
	var tables []string
	for tp := range b.To {
		if rule, table, ok := a.Cfg.Route(tp.Topic); ok && table != "" && rule.Mode == "append" && !slices.Contains(tables, table) {
			tables = append(tables, table)
		}
	}
	sort.Strings(tables)
	return tables
}

// UncommittedNote explains a micro-batch Spark planned but never
// committed: the exact failure of "written, then killed before the
// commit". file is the configuration file, for the dedupe command line.
func UncommittedNote(file string, b spark.Batch) []string {
	tps := make([]exactly.TP, 0, len(b.To))
	for tp := range b.To {
		tps = append(tps, tp)
	}
	exactly.SortTPs(tps)
	out := []string{fmt.Sprintf("micro-batch %d was planned (offsets/%d) but never committed (no commits/%d): Spark may have written some or all of it to the sink before it stopped. Its ranges:", b.ID, b.ID, b.ID)}
	for _, tp := range tps {
		from, to := b.From[tp], b.To[tp]
		switch {
		case from < 0:
			out = append(out, fmt.Sprintf("  %s offsets from the partition's first record to %d", tp, to-1))
		case to > from:
			out = append(out, fmt.Sprintf("  %s offsets %d..%d (%d records)", tp, from, to-1, to-from))
		}
	}
	out = append(out, "exactly starts after the last committed micro-batch, so it applies these records (again): harmless for upsert and cdc tables (the same key gets the same row);",
		"an append table may then hold some of them twice. Find such duplicates (dry run) and remove them (--apply moves the surplus rows to TABLE_exactly_removed) with:",
		"  exactly dedupe -c "+file+" --table TABLE --key COLUMNS-THAT-IDENTIFY-A-RECORD [--apply]")
	return out
}

// ErrNoTopic says no topic in Kafka matches the pipeline's table rules.
var ErrNoTopic = errors.New("no topic in Kafka matches this pipeline's table rules")

// FromKafka takes a consumer group's committed offsets (startFrom
// "group") or the offsets at a timestamp (startFrom "timestamp:T").
func FromKafka(ctx context.Context, cfg *exactly.Config, adm *kafka.Client, startFrom, group string) (*Adoption, error) {
	a := &Adoption{Cfg: cfg, Source: startFrom}
	tps, err := adm.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	if len(tps) == 0 {
		return nil, ErrNoTopic
	}
	if group != "" {
		n, err := adm.ActiveMembers(ctx, group)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			a.Problems = append(a.Problems, fmt.Sprintf("consumer group %s has %d active member(s): the old pipeline is still consuming and its offsets still move; stop it first", group, n))
		}
		a.Source = "consumer group " + group
	}
	offs, uncommitted, err := adm.StartOffsets(ctx, startFrom, group, tps)
	if err != nil {
		return nil, err
	}
	a.Want = offs
	for _, tp := range uncommitted {
		delete(a.Want, tp)
		a.Notes = append(a.Notes, fmt.Sprintf("%s: group %s never committed an offset for it: not seeded; it starts from start_from (%s)", tp, group, cfg.Source.StartFrom))
	}
	return a, nil
}

// Partitions are the wanted partitions, sorted.
func (a *Adoption) Partitions() []exactly.TP {
	tps := make([]exactly.TP, 0, len(a.Want))
	for tp := range a.Want {
		tps = append(tps, tp)
	}
	exactly.SortTPs(tps)
	return tps
}

// Compare reads Kafka's bounds of the wanted partitions and the ledger's
// rows for them (none when the sink has no ledger yet), then decides.
func (a *Adoption) Compare(ctx context.Context, adm *kafka.Client, sink *exactly.Sink) error {
	tps := a.Partitions()
	bounds := map[exactly.TP]exactly.Bounds{}
	var err error
	if len(tps) > 0 {
		if bounds, err = adm.AllBounds(ctx, tps); err != nil {
			return err
		}
	}
	stored := map[exactly.TP]int64{}
	if ok, err := sink.HasLedger(ctx); err != nil {
		return err
	} else if ok {
		if stored, err = sink.LoadOffsets(ctx, tps); err != nil {
			return err
		}
	}
	a.Decide(bounds, stored)
	return nil
}

// Decide is the decision table: per wanted partition, given Kafka's
// bounds and the ledger's next_offset (stored; absent when the ledger has
// no row), whether it is seeded, already there, or refused, and why.
func (a *Adoption) Decide(bounds map[exactly.TP]exactly.Bounds, stored map[exactly.TP]int64) {
	a.Rows, a.Seed = nil, nil
	for _, tp := range a.Partitions() {
		next, b := a.Want[tp], bounds[tp]
		r := Row{TP: tp, Next: next, Bounds: fmt.Sprintf("%d..%d", b.Start, b.End), Ledger: "(no row)"}
		have, hasRow := stored[tp]
		switch {
		case hasRow && have == next:
			r.Ledger, r.Action = fmt.Sprint(have), "nothing: already there"
		case hasRow:
			r.Ledger, r.Action = fmt.Sprint(have), "REFUSED"
			a.Problems = append(a.Problems, fmt.Sprintf("%s: the ledger already has next_offset %d, %s says %d: once the ledger has a row it is the truth; adopt never moves it", tp, have, a.Source, next))
		case next > b.End:
			r.Action = "REFUSED"
			a.Problems = append(a.Problems, fmt.Sprintf("%s: %s says %d but the partition ends at %d: a different cluster, or the topic was recreated", tp, a.Source, next, b.End))
		case next < b.Start:
			r.Action = "REFUSED"
			a.Problems = append(a.Problems, fmt.Sprintf("%s: offsets %d..%d were deleted by retention before the old pipeline read them: that data is lost upstream; seeding at %d would halt the partition with a gap", tp, next, b.Start-1, next))
		default:
			r.Action = fmt.Sprintf("seed next_offset %d (%d records to apply)", next, b.End-next)
			a.Seed = append(a.Seed, tp)
		}
		a.Rows = append(a.Rows, r)
	}
	sort.Slice(a.Seed, func(i, j int) bool { return a.Seed[i].String() < a.Seed[j].String() })
}

// Raced is a partition whose offsets row another writer created first.
type Raced struct {
	TP  exactly.TP
	Got int64 // the other writer's next_offset, which stays
}

// Apply seeds the decided partitions through w, which writes its rows
// with WriterName(Source). step is called before each row (i counts from
// 1). A row another writer created meanwhile stays, and is returned.
func (a *Adoption) Apply(ctx context.Context, w *exactly.Sink, step func(i int, tp exactly.TP)) ([]Raced, error) {
	w.SetWriter(WriterName("exactly adopt: " + a.Source))
	var raced []Raced
	for i, tp := range a.Seed {
		step(i+1, tp)
		got, err := w.SeedOffset(ctx, tp, a.Want[tp])
		if err != nil {
			return raced, err
		}
		if got != a.Want[tp] {
			raced = append(raced, Raced{TP: tp, Got: got})
		}
	}
	return raced, nil
}

// WriterName fits the ledger's writer column (VARCHAR(255) on MySQL and
// SQL Server): a checkpoint URL in ADLS is easily longer. The end (the
// micro-batch) is kept.
func WriterName(s string) string {
	r := []rune(s)
	if len(r) <= 255 {
		return s
	}
	return "exactly adopt: …" + string(r[len(r)-(255-len([]rune("exactly adopt: …"))):])
}
