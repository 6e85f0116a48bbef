package preflight_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/kafka"
	"github.com/exactly/exactly/internal/preflight"
	"github.com/exactly/exactly/internal/sink/sqlite"
)

func config(t *testing.T, brokers, dsn, rules string) *exactly.Config {
	t.Helper()
	yaml := fmt.Sprintf("pipeline: p\nsource:\n  brokers: [%s]\n  group: g\nsink:\n  driver: sqlite\n  dsn: %s\ntables:\n%s", brokers, dsn, rules)
	cfg, err := exactly.ParseConfig(strings.NewReader(yaml), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConnectMapsTopicsAndNamesWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "shop.items", "shop.users"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dsn := filepath.Join(t.TempDir(), "s.db")
	cfg := config(t, strings.Join(c.ListenAddrs(), ","), dsn, `  - topics: '^shop\.(.*)$'
    table: '$1'
    key: [id]
  - topics: shop.absent
    table: absent
    mode: append
`)
	d := &sqlite.Dialect{}
	db, err := d.Open(ctx, cfg.Sink)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"); err != nil {
		t.Fatal(err)
	}
	if err := preflight.Offline(cfg); err != nil {
		t.Fatalf("Offline: %v", err)
	}
	k, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	rep, err := preflight.Connect(ctx, cfg, d, k, func(context.Context) (*sql.DB, error) { return db, nil })
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]*preflight.TopicRow{}
	var notes int
	for _, l := range rep.Lines {
		switch l.Kind {
		case preflight.Topic:
			rows[l.Row.Topic] = l.Row
		case preflight.Note:
			notes++
		}
	}
	if r := rows["shop.items"]; r == nil || r.Table != "items" || r.Partitions != 2 || r.State != "exists, 2 columns, primary key (id)" {
		t.Errorf("shop.items: got %+v, want table items, 2 partitions, existing", r)
	}
	if r := rows["shop.users"]; r == nil || r.State != "MISSING" {
		t.Errorf("shop.users: got %+v, want MISSING", r)
	}
	if notes != 4 {
		t.Errorf("got %d notes, want the 4 ledger tables missing (exactly run creates them)", notes)
	}
	want := []string{
		"table users (for topic shop.users) does not exist in the sink: create it, or set create: true on its rule",
		"topic shop.absent (a literal name in the rules) does not exist",
	}
	if strings.Join(rep.Problems, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\ngot  %q\nwant %q", rep.Problems, want)
	}
}

func TestConnectReturnsTheReportSoFarWithAConfigError(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "a"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg := config(t, strings.Join(c.ListenAddrs(), ","), filepath.Join(t.TempDir(), "s.db"), "  - topics: a\n    mode: append\n")
	k, err := kafka.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	bad := &exactly.ConfigError{Field: "sink.dsn"}
	rep, err := preflight.Connect(context.Background(), cfg, &sqlite.Dialect{}, k, func(context.Context) (*sql.DB, error) { return nil, bad })
	if !errors.Is(err, bad) {
		t.Fatalf("got %v, want the DSN's configuration error", err)
	}
	if rep == nil || len(rep.Lines) != 1 || rep.Lines[0].Kind != preflight.OK || rep.Lines[0].Text != "kafka: 1 partitions of matching topics" {
		t.Errorf("got %+v, want Kafka's line, printed before the error", rep)
	}
}

func TestOfflineNamesTheRuleWhoseDecoderFails(t *testing.T) {
	cfg := config(t, "127.0.0.1:9", filepath.Join(t.TempDir(), "s.db"), "  - topics: a\n    mode: append\n  - topics: b\n    mode: append\n")
	cfg.Tables[1].Format = "no-such-format"
	var ce *exactly.ConfigError
	if err := preflight.Offline(cfg); !errors.As(err, &ce) || ce.Field != "tables[1]" || ce.Value != "b" {
		t.Errorf("got %v, want a ConfigError naming tables[1]", err)
	}
}
