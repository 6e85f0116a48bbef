package chaos

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly/internal/workload"
)

// producers write the workload while the chaos runs: a plain idempotent
// producer at a steady rate, and a transactional one whose transactions
// commit or abort at random (aborted records must never be applied).
type producers struct {
	gen       *workload.Generator
	plain     atomic.Int64
	txCommits atomic.Int64
	txAborts  atomic.Int64
	txRecords atomic.Int64 // records of committed transactions
	errs      chan error
	wg        sync.WaitGroup
}

func startProducers(ctx context.Context, brokers []string, seed int64, rate int) *producers {
	p := &producers{gen: workload.NewGenerator(seed, 150), errs: make(chan error, 16)}
	p.wg.Add(2)
	go func() { defer p.wg.Done(); p.runPlain(ctx, brokers, rate) }()
	go func() { defer p.wg.Done(); p.runTx(ctx, brokers, rand.New(rand.NewSource(seed+1))) }()
	return p
}

func (p *producers) fail(err error) {
	select {
	case p.errs <- err:
	default:
	}
}

// wait stops at ctx's end (every transaction finished) and returns the
// first error.
func (p *producers) wait() error {
	p.wg.Wait()
	select {
	case err := <-p.errs:
		return err
	default:
		return nil
	}
}

func (p *producers) runPlain(ctx context.Context, brokers []string, rate int) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		p.fail(err)
		return
	}
	defer cl.Close()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			cl.Produce(context.Background(), p.gen.Next(), func(_ *kgo.Record, err error) {
				if err != nil {
					p.fail(fmt.Errorf("producing: %w", err))
					return
				}
				p.plain.Add(1)
			})
		}
	}
	fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Flush(fctx); err != nil {
		p.fail(fmt.Errorf("flushing: %w", err))
	}
}

func (p *producers) runTx(ctx context.Context, brokers []string, rng *rand.Rand) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("chaos-tx"),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), kgo.TransactionTimeout(20*time.Second))
	if err != nil {
		p.fail(err)
		return
	}
	defer cl.Close()
	for ctx.Err() == nil {
		bctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := p.oneTx(bctx, cl, rng)
		cancel()
		if err != nil {
			p.fail(fmt.Errorf("transactional producer: %w", err))
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(20+rng.Intn(150)) * time.Millisecond):
		}
	}
}

func (p *producers) oneTx(ctx context.Context, cl *kgo.Client, rng *rand.Rand) error {
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	n := 1 + rng.Intn(25)
	for i := 0; i < n; i++ {
		cl.Produce(ctx, p.gen.Next(), nil)
	}
	commit := kgo.TryCommit
	if rng.Intn(3) == 0 {
		commit = kgo.TryAbort
	}
	if err := cl.Flush(ctx); err != nil {
		commit = kgo.TryAbort
	}
	if err := cl.EndTransaction(ctx, commit); err != nil {
		return err
	}
	if commit == kgo.TryCommit {
		p.txCommits.Add(1)
		p.txRecords.Add(int64(n))
	} else {
		p.txAborts.Add(1)
	}
	return nil
}
