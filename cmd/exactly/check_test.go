package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly/exactly"
	"github.com/exactly/exactly/internal/demo"
	"github.com/exactly/exactly/internal/workload"
)

// checkEnv is a kfake cluster with the workload's topics and a SQLite sink
// with the workload's tables.
func checkEnv(t *testing.T, opts ...kfake.Opt) (brokers, dsn string) {
	t.Helper()
	cluster, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, workload.Topics...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	dsn = filepath.Join(t.TempDir(), "sink.db")
	d, _ := dialectFor("sqlite")
	db, err := d.Open(context.Background(), exactly.SinkConfig{Driver: "sqlite", DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := demo.Reset(context.Background(), db, d, "sqlite", "check"); err != nil {
		t.Fatal(err)
	}
	return strings.Join(cluster.ListenAddrs(), ","), dsn
}

func writeCheckConfig(t *testing.T, brokers, dsn, source, rules string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "check.yaml")
	y := fmt.Sprintf("pipeline: check\nsource:\n  brokers: [%s]\n%ssink: {driver: sqlite, dsn: '%s'}\n%s", brokers, source, dsn, rules)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCheck(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"check"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheckOfflineAndConnected(t *testing.T) {
	brokers, dsn := checkEnv(t)
	good := writeCheckConfig(t, brokers, dsn, "", workload.Rules)

	code, out, errs := runCheck(t, "-c", good)
	if code != 0 || !strings.Contains(out, "valid") || !strings.Contains(out, `^demo\.(customers|orders)$ → demo_$1`) {
		t.Fatalf("offline check: exit %d\n%s%s", code, out, errs)
	}

	code, out, errs = runCheck(t, "-c", good, "--connect")
	if code != 0 {
		t.Fatalf("connected check: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{
		"ok   kafka: 9 partitions of matching topics",
		"ok   sink: sqlite answers",
		"ok   ledger table exactly_batches",
		"mapping (3 topics):",
		"demo.customers", "→ demo_customers", "exists, 4 columns, primary key (id)",
		"demo.events", "→ demo_events",
		"all checks passed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("connected check output lacks %q:\n%s", want, out)
		}
	}

	// A literal topic that does not exist and a table that does not.
	bad := writeCheckConfig(t, brokers, dsn, "", workload.Rules+"  - topics: demo.missing\n    key: [id]\n  - topics: demo.orders_archive_nope\n    mode: append\n")
	code, out, errs = runCheck(t, "-c", bad, "--connect")
	if code != 1 || !strings.Contains(out, "topic demo.missing (a literal name in the rules) does not exist") {
		t.Errorf("missing topic: exit %d, want 1\n%s%s", code, out, errs)
	}

	// A configuration error is exit 2 and names the field, offline.
	broken := writeCheckConfig(t, brokers, dsn, "  sasl: {mechanism: SCRAM-SHA-256, username: u}\n", workload.Rules)
	code, _, errs = runCheck(t, "-c", broken)
	if code != 2 || !strings.Contains(errs, "source.sasl.password") {
		t.Errorf("config error: exit %d, want 2, stderr %q", code, errs)
	}
}

func TestCheckConnectsWithSCRAM(t *testing.T) {
	brokers, dsn := checkEnv(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "auditor", "pa55"))
	t.Setenv("EXACTLY_TEST_SCRAM_PASSWORD", "pa55")
	good := writeCheckConfig(t, brokers, dsn, "  sasl: {mechanism: SCRAM-SHA-512, username: auditor, password: '${EXACTLY_TEST_SCRAM_PASSWORD}'}\n", workload.Rules)
	code, out, errs := runCheck(t, "-c", good, "--connect")
	if code != 0 || !strings.Contains(out, "sasl SCRAM-SHA-512 as auditor") || !strings.Contains(out, "mapping (3 topics)") {
		t.Fatalf("SCRAM check: exit %d\n%s%s", code, out, errs)
	}
	if strings.Contains(out, "pa55") {
		t.Error("check printed the password")
	}
	wrong := writeCheckConfig(t, brokers, dsn, "  sasl: {mechanism: SCRAM-SHA-512, username: auditor, password: n0t-the-pa55word}\n", workload.Rules)
	code, out, errs = runCheck(t, "-c", wrong, "--connect", "--timeout", "3s")
	if code != 1 || !strings.Contains(out, "FAIL kafka") {
		t.Errorf("wrong password: exit %d, want 1\n%s%s", code, out, errs)
	}
}

// An Avro rule is valid with a schema registry: check built decoders with
// the registry-less factory and refused every Avro configuration ("format
// avro needs source.schema_registry.url") although run accepted it.
func TestCheckAcceptsAvroRules(t *testing.T) {
	brokers, dsn := checkEnv(t)
	avro := "tables:\n  - topics: demo.customers\n    format: avro\n    key: [id]\n"
	withRegistry := writeCheckConfig(t, brokers, dsn, "  schema_registry: {url: 'http://127.0.0.1:1'}\n", avro)
	if code, out, errs := runCheck(t, "-c", withRegistry); code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("avro with a registry: exit %d\n%s%s", code, out, errs)
	}
	without := writeCheckConfig(t, brokers, dsn, "", avro)
	if code, _, errs := runCheck(t, "-c", without); code != 2 || !strings.Contains(errs, "schema_registry") {
		t.Fatalf("avro without a registry: exit %d, want 2 naming schema_registry; stderr %q", code, errs)
	}
}

// TestCheckConnectCreatesNoSQLiteFile: check --connect changes nothing, so
// a SQLite file that does not exist (a first start, or a typo in sink.dsn)
// is looked at as the empty database run would find, not created: opening
// it created an empty file and then reported the sink as answering.
func TestCheckConnectCreatesNoSQLiteFile(t *testing.T) {
	brokers, _ := checkEnv(t)
	missing := filepath.Join(t.TempDir(), "typo.db")
	file := writeCheckConfig(t, brokers, missing, "", workload.Rules)
	code, out, errs := runCheck(t, "-c", file, "--connect")
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("check --connect created %s (stat: %v)", missing, err)
	}
	if code == 2 || !strings.Contains(out, "does not exist yet") || !strings.Contains(out, "ledger table exactly_offsets is missing") {
		t.Errorf("check --connect on a missing SQLite file: exit %d, want it said to be missing\n%s%s", code, out, errs)
	}
}

// TestCheckConnectBlamesOnlyTheSilentBroker: a broker that accepts
// connections and never answers is the problem check --connect reports;
// waiting for it must not use up the time the sink is given, which then
// failed as "sink: … context deadline exceeded" though it answered.
func TestCheckConnectBlamesOnlyTheSilentBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	_, dsn := checkEnv(t)
	file := writeCheckConfig(t, ln.Addr().String(), dsn, "", workload.Rules)
	code, out, errs := runCheck(t, "-c", file, "--connect", "--timeout", "2s")
	if code != 1 || !strings.Contains(out, "FAIL kafka") || !strings.Contains(out, "ok   sink: sqlite answers") || strings.Contains(out, "FAIL sink") {
		t.Errorf("check --connect with a silent broker: exit %d, want only Kafka failing\n%s%s", code, out, errs)
	}
}
