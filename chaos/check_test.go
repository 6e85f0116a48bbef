package chaos

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/workload"
)

// findings are what a run found, named the Jepsen way (FAULTS.md).
type findings struct {
	Duplicate   []string // a record applied twice
	Lost        []string // a record below next_offset not applied
	AbortedRead []string // a record of an aborted transaction applied
	Skip        []string // a gap in the ledger, or a range whose records were not all applied
	Unseen      []string // produced and committed, never applied by the end
	Ledger      []string // ledger rows that do not say what happened
}

func (f *findings) empty() bool {
	return len(f.Duplicate)+len(f.Lost)+len(f.AbortedRead)+len(f.Skip)+len(f.Unseen)+len(f.Ledger) == 0
}

func (f *findings) String() string {
	s := ""
	for _, c := range []struct {
		name string
		list []string
	}{{"duplicate", f.Duplicate}, {"lost", f.Lost}, {"aborted read", f.AbortedRead},
		{"skip", f.Skip}, {"unseen", f.Unseen}, {"ledger", f.Ledger}} {
		if len(c.list) == 0 {
			continue
		}
		s += fmt.Sprintf("%s (%d):\n", c.name, len(c.list))
		for i, x := range c.list {
			if i == 8 {
				s += fmt.Sprintf("  … %d more\n", len(c.list)-i)
				break
			}
			s += "  " + x + "\n"
		}
	}
	return s
}

// check compares the real tables and the ledger with the topics.
func (h *harness) check(ctx context.Context, recs, aborted []*kgo.Record) (*findings, *workload.Model, *workload.Ledger, error) {
	f := &findings{}
	model, err := workload.Expect(recs)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := model.Abort(aborted); err != nil {
		return nil, nil, nil, err
	}
	tables, err := workload.Check(ctx, h.db, model)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, t := range tables {
		for _, s := range t.Samples {
			switch {
			case strings.HasPrefix(s, "aborted read"):
				f.AbortedRead = append(f.AbortedRead, s)
			case t.Duplicate > 0 && strings.Contains(s, "present"):
				f.Duplicate = append(f.Duplicate, s)
			default:
				f.Lost = append(f.Lost, s)
			}
		}
		if !t.OK() && len(t.Samples) == 0 {
			f.Lost = append(f.Lost, fmt.Sprintf("%s: expected %d rows, found %d", t.Table, t.Expected, t.Found))
		}
		if t.Duplicate > 5 || t.Lost > 5 || t.Aborted > 5 {
			f.Ledger = append(f.Ledger, fmt.Sprintf("%s totals: %d duplicate, %d lost, %d aborted read (only 5 samples listed)", t.Table, t.Duplicate, t.Lost, t.Aborted))
		}
	}
	ends := workload.DataEnds(recs)
	l, err := workload.CheckLedger(ctx, h.db, h.d, pipeline, ends)
	if err != nil {
		return nil, nil, nil, err
	}
	f.Skip = append(f.Skip, l.Breaks...)
	f.Unseen = append(f.Unseen, l.Lagging...)
	if l.Records != int64(model.Records) {
		f.Ledger = append(f.Ledger, fmt.Sprintf("committed batches count %d records, the topics hold %d", l.Records, model.Records))
	}
	if err := h.checkRanges(ctx, recs, f); err != nil {
		return nil, nil, nil, err
	}
	return f, model, l, nil
}

// checkRanges proves every committed ledger row covers exactly the Kafka
// records of its range: their number, first and last offsets and hash. A
// range holding more records than the row counts is a skip (records
// jumped over, e.g. read from a stale fetch position), fewer is a row
// claiming records that do not exist. Failed rows must carry their error
// and no commit time.
func (h *harness) checkRanges(ctx context.Context, recs []*kgo.Record, f *findings) error {
	type tp struct {
		t string
		p int32
	}
	byTP := map[tp][]*kgo.Record{}
	for _, r := range recs {
		byTP[tp{r.Topic, r.Partition}] = append(byTP[tp{r.Topic, r.Partition}], r)
	}
	for _, rs := range byTP {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
	}
	rows, err := h.db.QueryContext(ctx, h.q(`SELECT batch_id, topic, "partition", from_offset, to_offset, min_offset, max_offset,
		records, hash, status, error, committed_at FROM exactly_batches WHERE pipeline = ?`), pipeline)
	if err != nil {
		return fmt.Errorf("reading exactly_batches: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, topic, hash, status string
		var part int32
		var from, to, n int64
		var minO, maxO sql.NullInt64
		var errText sql.NullString
		var committedAt any
		if err := rows.Scan(&id, &topic, &part, &from, &to, &minO, &maxO, &n, &hash, &status, &errText, &committedAt); err != nil {
			return err
		}
		where := fmt.Sprintf("%s[%d] %d..%d (batch %s, %s)", topic, part, from, to, id, status)
		if status != "committed" {
			if status != "failed" {
				f.Ledger = append(f.Ledger, where+": unexpected status")
			}
			if !errText.Valid || errText.String == "" {
				f.Ledger = append(f.Ledger, where+": failed row without its error")
			}
			if committedAt != nil {
				f.Ledger = append(f.Ledger, where+": failed row with a commit time")
			}
			continue
		}
		if committedAt == nil || errText.Valid {
			f.Ledger = append(f.Ledger, where+": committed row without commit time, or with an error")
		}
		all := byTP[tp{topic, part}]
		lo := sort.Search(len(all), func(i int) bool { return all[i].Offset >= from })
		hi := sort.Search(len(all), func(i int) bool { return all[i].Offset >= to })
		in := all[lo:hi]
		switch {
		case int64(len(in)) > n:
			f.Skip = append(f.Skip, fmt.Sprintf("%s: Kafka holds %d records in the range, the batch applied %d", where, len(in), n))
			continue
		case int64(len(in)) < n:
			f.Ledger = append(f.Ledger, fmt.Sprintf("%s: claims %d records, Kafka holds %d in the range", where, n, len(in)))
			continue
		}
		if len(in) > 0 && (in[0].Offset != minO.Int64 || in[len(in)-1].Offset != maxO.Int64) {
			f.Ledger = append(f.Ledger, fmt.Sprintf("%s: min/max %d/%d, Kafka says %d/%d", where, minO.Int64, maxO.Int64, in[0].Offset, in[len(in)-1].Offset))
		}
		er := make([]*exactly.Record, len(in))
		for i, r := range in {
			er[i] = &exactly.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: r.Key, Value: r.Value}
		}
		if got := exactly.HashRecords(er); got != hash {
			f.Ledger = append(f.Ledger, fmt.Sprintf("%s: hash %s, the records of the range hash to %s", where, hash, got))
		}
	}
	return rows.Err()
}
