// Package testenv gives tests the real services they run against. A service
// that is not reachable skips the test on a developer machine, and fails it
// when CI=true: CI never hides a missing database behind a skip.
package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // registers "mysql"
	"github.com/jackc/pgx/v5"
	_ "github.com/microsoft/go-mssqldb" // registers "sqlserver"
)

// CI reports whether missing services must fail tests.
func CI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips the test, or fails it under CI=true.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if CI() {
		t.Fatalf("%s is required under CI=true: %v", what, err)
	}
	t.Skipf("%s not reachable (set CI=true to make this a failure): %v", what, err)
}

// PostgresDSN returns the DSN of the test PostgreSQL server
// (EXACTLY_TEST_POSTGRES_DSN, default the local server's test database).
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("EXACTLY_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		Unavailable(t, "PostgreSQL ("+dsn+")", err)
	}
	c.Close(ctx)
	return dsn
}

// MySQLDSN returns the go-sql-driver DSN of the test MariaDB/MySQL server
// (EXACTLY_TEST_MYSQL_DSN, default root@127.0.0.1:3306/test).
func MySQLDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("EXACTLY_TEST_MYSQL_DSN")
	if dsn == "" {
		dsn = "root@tcp(127.0.0.1:3306)/test"
	}
	db, err := sql.Open("mysql", dsn)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err != nil {
		Unavailable(t, "MariaDB/MySQL ("+dsn+")", err)
	}
	return dsn
}

// SQLServerDSN returns the go-mssqldb DSN of the test SQL Server
// (EXACTLY_TEST_SQLSERVER_DSN). There is no default: .ci/services starts
// Babelfish and .ci/run points the variable at it; anyone can point it at
// a real SQL Server or Azure SQL database instead.
func SQLServerDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("EXACTLY_TEST_SQLSERVER_DSN")
	if dsn == "" {
		Unavailable(t, "SQL Server (EXACTLY_TEST_SQLSERVER_DSN, e.g. Babelfish: bash .ci/services)",
			fmt.Errorf("EXACTLY_TEST_SQLSERVER_DSN is not set"))
	}
	db, err := sql.Open("sqlserver", dsn)
	if err == nil {
		// Generous: a TDS login on a loaded machine has taken seconds.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err != nil {
		Unavailable(t, "SQL Server (EXACTLY_TEST_SQLSERVER_DSN)", err)
	}
	return dsn
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds the exactly command once per test process (with -race
// when the tests run with it) and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "exactly-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "exactly")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/exactly")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// PostgresSchema creates a fresh schema in the test database and returns a
// DSN whose search_path is that schema, so tests running at the same time
// (and their ledger tables) never see each other. The schema is dropped
// when the test ends.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	dsn := PostgresDSN(t)
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), time.Now().UnixNano()%1e12)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		Unavailable(t, "PostgreSQL", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			c.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE")
			c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + name
}

// MySQLDatabase creates a fresh database on the test MariaDB/MySQL server
// and returns a DSN using it; it is dropped when the test ends.
func MySQLDatabase(t testing.TB) string {
	t.Helper()
	dsn := MySQLDSN(t)
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), time.Now().UnixNano()%1e12)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", dsn)
		if err == nil {
			db.Exec("DROP DATABASE " + name)
			db.Close()
		}
	})
	base, _, _ := strings.Cut(dsn, "?")
	i := strings.LastIndex(base, "/")
	return base[:i+1] + name + strings.TrimPrefix(dsn, base)
}

// SQLServerDatabase creates a fresh database on the test SQL Server and
// returns a DSN (URL form) naming it, so tests whose table names are fixed
// (the demo workload) never see each other. The database is dropped when
// the test ends.
func SQLServerDatabase(t testing.TB) string {
	t.Helper()
	dsn := SQLServerDSN(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme != "sqlserver" {
		t.Fatalf("EXACTLY_TEST_SQLSERVER_DSN must be a sqlserver:// URL for a test that creates its own database")
	}
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), time.Now().UnixNano()%1e12)
	db, err := sql.Open("sqlserver", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("sqlserver", dsn)
		if err == nil {
			if _, err := db.Exec("DROP DATABASE " + name); err != nil {
				t.Logf("dropping database %s: %v", name, err)
			}
			db.Close()
		}
	})
	q := u.Query()
	q.Set("database", name)
	u.RawQuery = q.Encode()
	return u.String()
}
