package workload

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// Model is the expected state of the workload's tables.
type Model struct {
	Customers map[int64]string // id → "name|balance|version"
	Orders    map[int64]string // id → "customer_id|amount|status"
	Events    map[int64]string // event_id → "kind|customer_id"
	Records   int
	// aborted holds "table|id|value" of records from aborted transactions
	// (see Abort), so a row holding one is named an aborted read.
	aborted map[string]bool
}

// Expect applies records in partition order to an empty model: upserts
// replace by key, tombstones delete, events append.
func Expect(recs []*kgo.Record) (*Model, error) {
	m := &Model{Customers: map[int64]string{}, Orders: map[int64]string{}, Events: map[int64]string{}}
	for _, r := range recs {
		m.Records++
		table, id, val, err := decodeRecord(r)
		if err != nil {
			return nil, err
		}
		rows := m.table(table)
		if val == "" {
			delete(rows, id)
		} else {
			rows[id] = val
		}
	}
	return m, nil
}

// Abort tells the model which records belong to aborted transactions: a
// table row holding one of their values is an aborted read.
func (m *Model) Abort(recs []*kgo.Record) error {
	if m.aborted == nil {
		m.aborted = map[string]bool{}
	}
	for _, r := range recs {
		table, id, val, err := decodeRecord(r)
		if err != nil {
			return err
		}
		if val != "" {
			m.aborted[fmt.Sprintf("%s|%d|%s", table, id, val)] = true
		}
	}
	return nil
}

func (m *Model) table(name string) map[int64]string {
	switch name {
	case TableCustomers:
		return m.Customers
	case TableOrders:
		return m.Orders
	}
	return m.Events
}

// decodeRecord returns the table, row id and row value ("" for a delete)
// a workload record stands for.
func decodeRecord(r *kgo.Record) (table string, id int64, val string, err error) {
	var v map[string]any
	if r.Value != nil {
		dec := json.NewDecoder(strings.NewReader(string(r.Value)))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return "", 0, "", fmt.Errorf("%s[%d]@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
	}
	switch r.Topic {
	case TopicCustomers:
		var k struct{ ID int64 }
		if err := json.Unmarshal(r.Key, &k); err != nil {
			return "", 0, "", fmt.Errorf("%s[%d]@%d: key: %w", r.Topic, r.Partition, r.Offset, err)
		}
		if v != nil {
			val = join(v["name"], v["balance"], v["version"])
		}
		return TableCustomers, k.ID, val, nil
	case TopicOrders:
		id, err := strconv.ParseInt(string(r.Key), 10, 64)
		if err != nil {
			return "", 0, "", fmt.Errorf("%s[%d]@%d: key: %w", r.Topic, r.Partition, r.Offset, err)
		}
		if v != nil {
			val = join(v["customer_id"], v["amount"], v["status"])
		}
		return TableOrders, id, val, nil
	case TopicEvents:
		id, _ := v["event_id"].(json.Number).Int64()
		return TableEvents, id, join(v["kind"], v["customer_id"]), nil
	}
	return "", 0, "", fmt.Errorf("%s[%d]@%d: not a workload topic", r.Topic, r.Partition, r.Offset)
}

func join(vs ...any) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		if v == nil {
			s[i] = "NULL"
		} else {
			s[i] = fmt.Sprint(v)
		}
	}
	return strings.Join(s, "|")
}

// Finding counts what differs between the model and a table, in the
// vocabulary of FAULTS.md.
type Finding struct {
	Table     string
	Expected  int      // rows the model holds
	Found     int      // rows the table holds
	Lost      int      // expected rows missing, or holding an older value
	Duplicate int      // rows present twice, or present though deleted
	Aborted   int      // rows holding a value only an aborted transaction wrote
	Samples   []string // a few coordinates of what differs
}

// OK is true when nothing is lost or doubled.
func (f Finding) OK() bool {
	return f.Lost == 0 && f.Duplicate == 0 && f.Aborted == 0 && f.Expected == f.Found
}

// Check compares the model with the real tables.
func Check(ctx context.Context, db *sql.DB, m *Model) ([]Finding, error) {
	specs := []struct {
		table, query string
		want         map[int64]string
	}{
		{TableCustomers, "SELECT id, name, balance, version FROM " + TableCustomers, m.Customers},
		{TableOrders, "SELECT id, customer_id, amount, status FROM " + TableOrders, m.Orders},
		{TableEvents, "SELECT event_id, kind, customer_id FROM " + TableEvents, m.Events},
	}
	var out []Finding
	for _, sp := range specs {
		f := Finding{Table: sp.table, Expected: len(sp.want)}
		rows, err := db.QueryContext(ctx, sp.query)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", sp.table, err)
		}
		seen := map[int64]int{}
		for rows.Next() {
			var id int64
			vals := make([]sql.NullString, strings.Count(sp.query, ",")) // columns after the id
			dest := []any{&id}
			for i := range vals {
				dest = append(dest, &vals[i])
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return nil, err
			}
			f.Found++
			seen[id]++
			got := make([]any, len(vals))
			for i, v := range vals {
				if v.Valid {
					got[i] = v.String
				}
			}
			want, ok := sp.want[id]
			switch {
			case m.aborted[fmt.Sprintf("%s|%d|%s", sp.table, id, join(got...))] && join(got...) != want:
				f.Aborted++
				f.sample("aborted read: %s id %d holds %q, written only by an aborted transaction", sp.table, id, join(got...))
			case seen[id] > 1:
				f.Duplicate++
				f.sample("%s id %d present %d times", sp.table, id, seen[id])
			case !ok:
				f.Duplicate++
				f.sample("%s id %d present but deleted or never produced", sp.table, id)
			case join(got...) != want:
				f.Lost++
				f.sample("%s id %d holds %q, expected %q", sp.table, id, join(got...), want)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for id := range sp.want {
			if seen[id] == 0 {
				f.Lost++
				f.sample("%s id %d missing", sp.table, id)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

func (f *Finding) sample(format string, args ...any) {
	if len(f.Samples) < 5 {
		f.Samples = append(f.Samples, fmt.Sprintf(format, args...))
	}
}

// Ledger summarises the ledger of a pipeline.
type Ledger struct {
	Batches  int      // committed batches
	Failed   int      // failed batch rows (the audit trail of retries)
	Records  int64    // records counted by committed batches
	Breaks   []string // gaps or overlaps in a partition's chain
	AtEnd    bool     // every partition's next_offset reached its end offset
	Lagging  []string // partitions whose next_offset is short of the end
	ChainsOK bool
}

// CheckLedger reads exactly_batches and exactly_offsets of a pipeline and
// checks that, per partition, committed batches chain from offset 0 (the
// workload's topics are read from their beginning) to next_offset without
// gap or overlap, and that next_offset reached the given end offsets.
//
// It reads through exactly.Ledger and applies exactly.Chain, the rule
// verify and the status page apply: both only read and judge what the
// sink wrote, so sharing them does not make the oracle depend on the code
// it checks. The oracle proper, Check against the Model built from the
// topics, stays independent: its own SQL over the workload's tables.
func CheckLedger(ctx context.Context, db *sql.DB, d exactly.Dialect, pipeline string, ends map[string]map[int32]int64) (*Ledger, error) {
	lg := exactly.NewLedger(db, d, pipeline)
	offs, err := lg.Offsets(ctx)
	if err != nil {
		return nil, err
	}
	tps, err := lg.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	stored := map[exactly.TP]int64{}
	for _, o := range offs {
		stored[o.TP] = o.Next
	}
	l := &Ledger{AtEnd: true, ChainsOK: true}
	for _, tp := range tps {
		rows, err := lg.Batches(ctx, tp)
		if err != nil {
			return nil, err
		}
		c := exactly.NewChainFrom(tp, 0)
		for i := range rows {
			b := &rows[i]
			switch b.Status {
			case exactly.StatusCommitted:
				l.Batches++
				l.Records += b.Records
				if brk, broke := c.Add(b); broke {
					l.Breaks = append(l.Breaks, brk.String())
				}
			case exactly.StatusFailed:
				l.Failed++
			}
		}
		if next, ok := stored[tp]; ok {
			if brk, broke := c.Close(next); broke {
				l.Breaks = append(l.Breaks, brk.String())
			}
		}
	}
	l.ChainsOK = len(l.Breaks) == 0
	var keys []string
	for t, ps := range ends {
		for p, end := range ps {
			if at := stored[exactly.TP{Topic: t, Partition: p}]; end > 0 && at < end {
				l.AtEnd = false
				keys = append(keys, fmt.Sprintf("%s[%d] at %d of %d", t, p, at, end))
			}
		}
	}
	sort.Strings(keys)
	l.Lagging = keys
	return l, nil
}
