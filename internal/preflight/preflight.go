// Package preflight checks a configuration before a pipeline runs: offline
// (TLS files, the table rules' decoders) and, connected, that Kafka and
// the sink answer, which ledger and target tables exist, and which table
// each existing topic maps to. Its rule: it never creates or changes
// anything, in Kafka or in the sink; exactly check prints its report.
package preflight

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/decode"
	"github.com/exactly/exactly/internal/kafka"
)

// Offline checks what needs no connection: the TLS files and each table
// rule's decoder (an Avro rule needs the registry's client, not an answer
// from it).
func Offline(cfg *exactly.Config) error {
	if _, err := kafka.LoadTLS(cfg); err != nil {
		return err
	}
	decoderFor := decode.For(cfg)
	for i := range cfg.Tables {
		if _, err := decoderFor(&cfg.Tables[i]); err != nil {
			return &exactly.ConfigError{File: cfg.File, Field: fmt.Sprintf("tables[%d]", i), Value: cfg.Tables[i].Topics, Expected: err.Error()}
		}
	}
	return nil
}

// Kind is what a Line of the report says.
type Kind int

const (
	OK      Kind = iota // reached, or present
	Note                // missing, but the pipeline creates it
	Fail                // a problem: the pipeline would stop or refuse
	Mapping             // the heading of the topic → table mapping
	Topic               // one topic's row of the mapping
)

// Line is one line of the report, in the order found.
type Line struct {
	Kind Kind
	Text string    // OK, Note, Fail, Mapping
	Row  *TopicRow // Topic
}

// TopicRow is the table an existing topic maps to, and its state.
type TopicRow struct {
	Topic      string
	Partitions int
	Table      string
	State      string // "" when the sink is unreachable
	Refused    bool   // the rules refuse the topic's table name
}

// Report is what Connect found.
type Report struct {
	Lines    []Line
	Problems []string // the Fail lines' texts
}

// Kafka is what Connect asks Kafka (internal/kafka.Client answers it).
type Kafka interface {
	// Partitions lists the partitions of the topics the rules match.
	Partitions(ctx context.Context) ([]exactly.TP, error)
}

type checker struct {
	cfg     *exactly.Config
	d       exactly.Dialect
	rep     Report
	tps     []exactly.TP
	kafkaOK bool
	live    *sql.DB // the sink's database; nil when it is unreachable
}

func (c *checker) add(k Kind, format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	c.rep.Lines = append(c.rep.Lines, Line{Kind: k, Text: text})
	if k == Fail {
		c.rep.Problems = append(c.rep.Problems, text)
	}
}

// Connect reads the metadata of the topics the rules match, reaches the
// sink (openDB opens its database, which the caller closes) and its
// ledger tables, and maps each existing topic to its table. Only a DSN
// that does not parse (an *exactly.ConfigError) is an error, returned with
// the report so far; what does not answer or is missing is in the report.
func Connect(ctx context.Context, cfg *exactly.Config, d exactly.Dialect, k Kafka, openDB func(context.Context) (*sql.DB, error)) (*Report, error) {
	c := &checker{cfg: cfg, d: d}
	if err := c.reach(ctx, k, openDB); err != nil {
		return &c.rep, err
	}
	c.mapping(ctx)
	return &c.rep, nil
}

// reach asks Kafka and the sink at once, each within the whole deadline:
// a broker that never answers must not use up the sink's time and make a
// sink that answers look unreachable. Kafka's line comes first.
func (c *checker) reach(ctx context.Context, k Kafka, openDB func(context.Context) (*sql.DB, error)) error {
	type answer struct {
		tps []exactly.TP
		err error
	}
	kafka := make(chan answer, 1)
	go func() {
		tps, err := k.Partitions(ctx)
		kafka <- answer{tps, err}
	}()
	sink := &checker{cfg: c.cfg, d: c.d}
	err := sink.reachSink(ctx, openDB)
	a := <-kafka
	c.tps = a.tps
	if c.kafkaOK = a.err == nil; !c.kafkaOK {
		c.add(Fail, "kafka %s: %v", strings.Join(c.cfg.Source.Brokers, ","), a.err)
	} else {
		c.add(OK, "kafka: %d partitions of matching topics", len(c.tps))
	}
	c.rep.Lines = append(c.rep.Lines, sink.rep.Lines...)
	c.rep.Problems = append(c.rep.Problems, sink.rep.Problems...)
	c.live = sink.live
	return err
}

// reachSink opens the sink's database and looks for the ledger tables.
func (c *checker) reachSink(ctx context.Context, openDB func(context.Context) (*sql.DB, error)) error {
	db, err := openDB(ctx)
	var ce *exactly.ConfigError
	if errors.As(err, &ce) {
		return err
	}
	if err != nil {
		c.add(Fail, "sink: %v", err)
		return nil
	}
	if err := db.PingContext(ctx); err != nil {
		c.add(Fail, "sink: %v", err)
		return nil
	}
	c.live = db
	c.add(OK, "sink: %s answers", c.cfg.Sink.Driver)
	for _, t := range []string{"exactly_offsets", "exactly_batches", "exactly_dead_letters", "exactly_pipelines"} {
		if _, err := db.ExecContext(ctx, "SELECT COUNT(*) FROM "+t+" WHERE 1 = 0"); err != nil {
			c.add(Note, "ledger table %s is missing: exactly run creates it", t)
		} else {
			c.add(OK, "ledger table %s", t)
		}
	}
	return nil
}

// mapping maps each existing topic to its table and that table's state.
func (c *checker) mapping(ctx context.Context) {
	parts := map[string]int{}
	var topics []string
	for _, tp := range c.tps {
		if parts[tp.Topic] == 0 {
			topics = append(topics, tp.Topic)
		}
		parts[tp.Topic]++
	}
	sort.Strings(topics)
	if c.kafkaOK {
		c.add(Mapping, "mapping (%d topics):", len(topics))
	}
	tableState := map[string]string{}
	for _, topic := range topics {
		rule, table, refused := c.cfg.Resolve(topic)
		row := &TopicRow{Topic: topic, Partitions: parts[topic], Table: table}
		if refused != nil {
			c.add(Fail, "%v", refused)
			row.Refused = true
		} else {
			state, seen := tableState[table]
			if !seen && c.live != nil {
				state = c.tableState(ctx, topic, table, rule)
				tableState[table] = state
			}
			row.State = state
		}
		c.rep.Lines = append(c.rep.Lines, Line{Kind: Topic, Row: row})
	}
	for _, t := range c.cfg.Tables {
		if !exactly.IsPattern(t.Topics) && parts[t.Topics] == 0 && c.kafkaOK {
			c.add(Fail, "topic %s (a literal name in the rules) does not exist", t.Topics)
		}
	}
}

// tableState describes the table a topic maps to.
func (c *checker) tableState(ctx context.Context, topic, table string, rule *exactly.TableRule) string {
	t, err := c.d.Describe(ctx, c.live, table)
	switch {
	case err != nil:
		return "unreadable: " + err.Error()
	case t == nil && rule.Create:
		return "missing, created at first record (create: true)"
	case t == nil:
		c.add(Fail, "table %s (for topic %s) does not exist in the sink: create it, or set create: true on its rule", table, topic)
		return "MISSING"
	}
	state := fmt.Sprintf("exists, %d columns, primary key (%s)", len(t.Columns), strings.Join(t.Key, ","))
	for _, k := range rule.Key {
		if t.Column(k) == nil {
			state += ", NO key column " + k
			c.add(Fail, "table %s has no column %s named in the key of the rule for %s", table, k, topic)
		}
	}
	return state
}
