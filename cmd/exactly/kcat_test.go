package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/sink/sqlite"
	"github.com/exactly/exactly/internal/testenv"
)

// TestKcatInterop produces with an independent client (kcat, librdkafka)
// and checks exactly applies it: upserts by a JSON-object key, a tombstone
// (kcat -Z sends an empty value as null) deleting, and Kafka's group offsets
// left as a hint equal to the ledger's next_offset.
func TestKcatInterop(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		testenv.Unavailable(t, "kcat (Debian package kcat)", err)
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "kc.items"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	broker := cluster.ListenAddrs()[0]

	lines := []string{
		`{"id":1}|{"id":1,"name":"a"}`,
		`{"id":2}|{"id":2,"name":"b"}`,
		`{"id":3}|{"id":3,"name":"ü ✓"}`,
		`{"id":1}|{"id":1,"name":"a2"}`,
		`{"id":2}|`,
	}
	prod := exec.Command(kcat, "-P", "-b", broker, "-t", "kc.items", "-K", "|", "-Z", "-X", "broker.address.family=v4")
	prod.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}

	dir := t.TempDir()
	db := filepath.Join(dir, "kc.db")
	cfg := filepath.Join(dir, "kc.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`pipeline: kc
source: {brokers: [%s], group: kc}
sink: {driver: sqlite, dsn: '%s'}
batch: {interval: 50ms}
tables:
  - topics: kc.items
    table: items
    key: [id]
`, broker, db)), 0o600)
	d := &sqlite.Dialect{}
	sdb, err := d.Open(context.Background(), exactly.SinkConfig{DSN: db})
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	if _, err := sdb.Exec("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)"); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(testenv.Binary(t), "run", "-c", cfg, "--log-level", "warn")
	var logb strings.Builder
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var sum int64
		sdb.QueryRow("SELECT COALESCE(SUM(next_offset), 0) FROM exactly_offsets WHERE pipeline = 'kc'").Scan(&sum)
		if sum == int64(len(lines)) {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("not caught up (sum of next_offset %d of %d)\n%s", sum, len(lines), logb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the group-offset hint follows the database commit
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, logb.String())
	}

	got := map[int64]string{}
	rows, err := sdb.Query("SELECT id, name FROM items")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var name string
		rows.Scan(&id, &name)
		got[id] = name
	}
	rows.Close()
	if want := map[int64]string{1: "a2", 3: "ü ✓"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("items: got %v, want %v", got, want)
	}

	// The group offsets are a hint that follows the ledger, never ahead.
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	committed, err := kadm.NewClient(cl).FetchOffsets(context.Background(), "kc")
	if err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		var next int64
		sdb.QueryRow(`SELECT next_offset FROM exactly_offsets WHERE pipeline = 'kc' AND "partition" = ?`, p).Scan(&next)
		o, ok := committed.Lookup("kc.items", p)
		if next > 0 && (!ok || o.At != next) {
			t.Errorf("partition %d: group offset %v (ok %v), ledger next_offset %d", p, o.At, ok, next)
		}
	}
}
