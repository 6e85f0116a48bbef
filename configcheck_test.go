package exactly

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/config/*.err from the current errors")

// TestConfigErrorsAPersonReads: the errors of testdata/config/*.yaml,
// compared with the .err next to each. Every problem is named at once,
// with file, line and field path: a misspelt key with the field meant
// ("batch.max_record: unknown field; did you mean max_records?"), every
// unset ${VAR} with its field, a duration without a unit with the one
// meant (interval: 2 → "2s"), a word where a number, a boolean or a list
// goes. Before, the first unknown key was "field max_record not found in
// type exactly.BatchConfig" and "interval: 2" named neither field nor line.
func TestConfigErrorsAPersonReads(t *testing.T) {
	for _, v := range []string{"KAFKA_HOST", "KAFKA_USER", "KAFKA_PASSWORD", "PG_PASSWORD", "PG_HOST", "PG_CONNS"} {
		os.Unsetenv(v)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "config", "*.yaml"))
	if len(files) < 5 {
		t.Fatalf("%d cases in testdata/config", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			_, err := LoadConfig(file)
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.File != file || ce.Line == 0 {
				t.Fatalf("got %#v, want a *ConfigError with file and line", err)
			}
			got := strings.ReplaceAll(err.Error(), file, filepath.Base(file)) + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".err"
			if *updateGolden {
				os.WriteFile(golden, []byte(got), 0o644)
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run TestConfigErrorsAPersonReads -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("errors of %s:\n--- got\n%s--- want\n%s", file, got, want)
			}
		})
	}
}

func TestSuggestions(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"max_record", "max_records"}, {"intervall", "interval"}, {"tabels", "tables"}, {"grup", "group"},
		{"Pipeline", "pipeline"}, {"colour", ""}, {"x", ""}, {"on_eror", "on_error"},
	} {
		names := []string{"pipeline", "source", "sink", "batch", "tables", "interval", "max_records", "max_bytes", "group", "on_error", "key"}
		if got := nearest(tc.key, names); got != tc.want {
			t.Errorf("nearest(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
	for in, want := range map[string]string{"2": "2s", "1.5": "1.5s", "5 sec": "5s", "10 minutes": "10m", "2hours": "2h",
		"250 ms": "250ms", "1d": "24h", "2 days": "48h", "soon": "", "5 fortnights": ""} {
		if got := suggestDuration(in); got != want {
			t.Errorf("suggestDuration(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestConfigErrorsAreCapped: a file of garbage gives 50 problems and a
// count of the rest, not one line per key.
func TestConfigErrorsAreCapped(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("pipeline: p\n")
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&sb, "junk%d: 1\n", i)
	}
	_, err := ParseConfig(strings.NewReader(sb.String()), "junk.yaml")
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 51 || lines[50] != "junk.yaml:52: and 450 more problems" {
		t.Errorf("%d lines, last %q", len(lines), lines[len(lines)-1])
	}
}
