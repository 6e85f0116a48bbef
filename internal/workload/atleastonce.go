package workload

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// AtLeastOnceFailpoint is where ConsumeAtLeastOnce can be killed: its rows
// are committed in the database, its offsets not yet in Kafka. It is the
// window of Spark's foreachBatch (the sink write done, the commit log not
// yet written) and of every consumer that writes, then commits.
const AtLeastOnceFailpoint = "at_least_once_after_write"

// MicroBatch is how many records ConsumeAtLeastOnce writes per poll.
const MicroBatch = 200

// ConsumeAtLeastOnce is the pipeline most teams start with, kept small and
// honest so the demo can show what it does: a consumer group reads the
// events topic, each poll's records (at most MicroBatch) are inserted into demo_events in one
// database transaction, then the offsets are committed to Kafka. Killed
// between the two, the next consumer of the group reads those records
// again and inserts them again. It returns when every partition has been
// consumed up to ends (the end offsets of the events topic).
func ConsumeAtLeastOnce(ctx context.Context, brokers []string, group string, db *sql.DB, d exactly.Dialect, ends map[int32]int64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(TopicEvents),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A killed member must leave the group quickly for the next one
		// to be assigned its partitions.
		kgo.SessionTimeout(6*time.Second), kgo.RebalanceTimeout(6*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	// Where the group stands: a member started after everything was
	// committed has nothing left to read.
	committed, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("reading the group's offsets: %w", err)
	}
	insert := exactly.Rebind(d, "INSERT INTO "+TableEvents+" (event_id, kind, customer_id) VALUES (?, ?, ?)")
	done := map[int32]int64{}
	committed.Each(func(o kadm.OffsetResponse) {
		if o.Topic == TopicEvents && o.Err == nil {
			done[o.Partition] = o.At
		}
	})
	for {
		if caughtUp(done, ends) {
			return nil
		}
		fs := cl.PollRecords(ctx, MicroBatch)
		if err := ctx.Err(); err != nil {
			return err
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return fmt.Errorf("fetching: %v", errs[0].Err)
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, r := range recs {
			var e struct {
				EventID    int64  `json:"event_id"`
				Kind       string `json:"kind"`
				CustomerID int64  `json:"customer_id"`
			}
			if err := json.Unmarshal(r.Value, &e); err != nil {
				tx.Rollback()
				return fmt.Errorf("decoding %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
			}
			if _, err := tx.ExecContext(ctx, insert, e.EventID, e.Kind, e.CustomerID); err != nil {
				tx.Rollback()
				return fmt.Errorf("inserting event %d: %w", e.EventID, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		exactly.Failpoint(AtLeastOnceFailpoint) // written, offsets not committed: the window
		if err := cl.CommitRecords(ctx, recs...); err != nil {
			return fmt.Errorf("committing offsets: %w", err)
		}
		for _, r := range recs {
			done[r.Partition] = r.Offset + 1
		}
	}
}

func caughtUp(done, ends map[int32]int64) bool {
	for p, end := range ends {
		if end > 0 && done[p] < end {
			return false
		}
	}
	return true
}

// CountEvents returns the rows of demo_events and how many distinct events
// they hold.
func CountEvents(ctx context.Context, db *sql.DB) (rows, distinct int64, err error) {
	err = db.QueryRowContext(ctx, "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM "+TableEvents).Scan(&rows, &distinct)
	return rows, distinct, err
}
