package exactly

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseConfig: whatever the bytes, ParseConfig does not panic; a
// refusal is a *ConfigError naming the file and a field; an accepted
// configuration routes its literal topics, and writing it back as YAML
// parses to the same configuration. Seeds: testdata/fuzz/FuzzParseConfig.
func FuzzParseConfig(f *testing.F) {
	f.Add(validConfig)
	f.Add(`pipeline: p
source: {brokers: [b:1], start_from: 'timestamp:2026-01-02T15:04:05Z', schema_registry: {url: 'http://r:8081'}}
sink: {driver: sqlite, dsn: x.db}
batch: {interval: 250ms, max_records: 10}
tables:
  - {topics: 's\.public\.(.*)', table: '$1', format: avro, mode: cdc, key: [id], version: source_lsn, on_error: fail}
`)
	f.Fuzz(func(t *testing.T, data string) {
		c, err := ParseConfig(strings.NewReader(data), "fuzz.yaml")
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.File != "fuzz.yaml" || ce.Field == "" || !strings.HasPrefix(err.Error(), "fuzz.yaml:") {
				t.Fatalf("refusal is not a ConfigError naming the file and field: %#v", err)
			}
			return
		}
		for _, rule := range c.Tables {
			if !IsPattern(rule.Topics) {
				if got, _, ok := c.Route(rule.Topics); !ok || got == nil {
					t.Fatalf("literal topic %q does not route", rule.Topics)
				}
			}
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshaling an accepted configuration: %v", err)
		}
		c2, err := ParseConfig(strings.NewReader(string(out)), "fuzz.yaml")
		if err != nil {
			t.Fatalf("the accepted configuration written back does not parse: %v\n%s", err, out)
		}
		out2, err := yaml.Marshal(c2)
		if err != nil || string(out2) != string(out) {
			t.Fatalf("round trip changed the configuration:\n%s\n---\n%s", out, out2)
		}
	})
}
