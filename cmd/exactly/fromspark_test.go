package main

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly/internal/testenv"
)

// runMarker precedes every shell block of docs/from-spark.md that
// TestFromSparkPageRuns executes.
const runMarker = "<!-- run -->"

// pageBlocks returns the shell blocks of a Markdown page that follow the
// run marker, in order.
func pageBlocks(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []string
	var cur []string
	marked, in := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case in && line == "```":
			blocks = append(blocks, strings.Join(cur, "\n"))
			cur, in, marked = nil, false, false
		case in:
			cur = append(cur, line)
		case strings.TrimSpace(line) == runMarker:
			marked = true
		case marked && line == "```sh":
			in = true
		case marked && strings.TrimSpace(line) != "":
			t.Fatalf("%s: %q follows the run marker; a ```sh block must", path, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// TestFromSparkPageRuns keeps docs/from-spark.md honest: every shell block
// marked <!-- run --> runs, in order, in one bash with -euo pipefail, with
// the exactly binary on PATH, $SINK a fresh PostgreSQL database, $BROKERS
// a kfake broker holding the page's topic shop.orders (2 partitions, 30
// records each) and $CHK a Spark checkpoint (micro-batches 0 and 1
// committed, 2 planned and never committed). It fails when a command of the
// page stops working or stops printing what the page says it prints.
func TestFromSparkPageRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo and a pipeline: seconds to minutes")
	}
	for _, tool := range []string{"bash", "psql", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Unavailable(t, tool, err)
		}
	}
	bin := testenv.Binary(t)
	dir := t.TempDir()

	// A fresh database: psql and the page's commands share one DSN.
	base := testenv.PostgresDSN(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("from_spark_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	sink := u.String()

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "shop.orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for p := int32(0); p < 2; p++ {
		for o := 0; o < 30; o++ {
			id := int(p)*1000 + o
			recs = append(recs, &kgo.Record{Topic: "shop.orders", Partition: p, Key: []byte(strconv.Itoa(id)),
				Value: []byte(fmt.Sprintf(`{"order_id":%d,"status":"paid","updated_at":%q}`, id, at.Add(time.Duration(o)*time.Minute).Format(time.RFC3339)))})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	chk := filepath.Join(dir, "chk")
	sparkBatch(t, chk, 0, true, `{"shop.orders":{"0":10,"1":10}}`)
	sparkBatch(t, chk, 1, true, `{"shop.orders":{"0":20,"1":20}}`)
	sparkBatch(t, chk, 2, false, `{"shop.orders":{"0":30,"1":25}}`)

	blocks := pageBlocks(t, filepath.Join("..", "..", "docs", "from-spark.md"))
	if len(blocks) < 9 {
		t.Fatalf("found %d marked shell blocks in docs/from-spark.md, want at least 9", len(blocks))
	}
	script := "set -euo pipefail\n" + strings.Join(blocks, "\n")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // the demo and a pipeline, under -race, on a loaded machine
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SINK="+sink, "BROKERS="+strings.Join(c.ListenAddrs(), ","), "CHK="+chk)
	out, err := cmd.CombinedOutput()
	t.Logf("the page's commands printed:\n%s", out)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "run.log"))
		t.Fatalf("the page's commands failed: %v\nrun.log:\n%s", err, log)
	}
	text := string(out)
	alo := regexp.MustCompile(`demo_events: (\d+) events in Kafka, (\d+) rows, (\d+) doubled, 0 lost`).FindStringSubmatch(text)
	if alo == nil {
		t.Errorf("the at-least-once run printed no 'demo_events: N events in Kafka, N rows, N doubled, 0 lost' line")
	} else if n, _ := strconv.Atoi(alo[3]); n == 0 {
		t.Errorf("the at-least-once consumer doubled no row (%s): the reproduction reproduces nothing", alo[0])
	}
	for _, want := range []string{
		"exactly once: 0 lost, 0 duplicated",        // the same records through exactly
		"surplus rows 20",                           // dedupe's plan: micro-batch 1, twice
		"moved 20 rows into orders_exactly_removed", // --apply
		"added the unique key",                      // --add-unique-key
		"55|55",                                     // kept rows = keys after the dedupe
		"micro-batch 2 was planned (offsets/2) but never committed (no commits/2)",
		"60|60", // after the takeover: every record once
		"checked: the whole ledger (--all)",
		"OK: no findings",               // verify re-read the ranges
		"partitions committed 20 of 20", // the bench
		"rows that differ: 0",           // the shadow pipeline beside the taken-over table
		"shop|60\nshop-shadow|60",       // each pipeline its own ledger
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the page's commands did not print %q", want)
		}
	}
	// The auditor's two "must return no rows" queries ran and returned
	// none (psql reading a script exits 0 on an SQL error unless
	// ON_ERROR_STOP is set, which the page sets: a query broken by a
	// renamed column failed nothing before).
	if n := strings.Count(text, "(0 rows)"); n != 2 {
		t.Errorf("the auditor's gap and chain-end queries printed (0 rows) %d times, want 2", n)
	}
	if strings.Contains(text, "ERROR:") {
		t.Errorf("an SQL statement of the page failed")
	}
}
