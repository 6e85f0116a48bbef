package exactly

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Config is one pipeline: where records come from, where they go, and how
// topics map to tables. README.md ("Configuration") describes the file.
type Config struct {
	// Pipeline names the ledger rows; one database can hold many pipelines.
	Pipeline string       `yaml:"pipeline"`
	Source   SourceConfig `yaml:"source"`
	Sink     SinkConfig   `yaml:"sink"`
	Batch    BatchConfig  `yaml:"batch"`
	Tables   []TableRule  `yaml:"tables"`

	// File is the path the configuration was read from, for error messages.
	File string `yaml:"-"`
}

// SourceConfig is the Kafka side.
type SourceConfig struct {
	Brokers []string `yaml:"brokers"`
	// Group is the consumer group used for partition assignment only.
	// Default: the pipeline name.
	Group string `yaml:"group"`
	// StartFrom applies when the ledger has no row for a partition:
	// earliest (default), latest, group, or timestamp:<RFC3339>.
	StartFrom string `yaml:"start_from"`
	// SessionTimeout of the consumer group. Default 45s.
	SessionTimeout Duration `yaml:"session_timeout"`
	// RebalanceTimeout of the consumer group. Default 60s.
	RebalanceTimeout Duration `yaml:"rebalance_timeout"`
	// ClientID reported to the brokers. Default "exactly".
	ClientID string `yaml:"client_id"`
	// Membership is static (default) or dynamic. A static member (KIP-345)
	// has an identity that survives a restart: a process killed and
	// started again takes its old place at once instead of waiting for
	// its dead self's session to end.
	Membership string `yaml:"membership"`
	// InstanceID is the static member's identity. Default
	// <hostname>-<slot>, the slot being the lowest free one of this
	// group on this host (a lock file), so two processes on one machine
	// never share it and a restarted one gets its own back. Set it where
	// the hostname is not stable or unique, e.g. to a StatefulSet's pod
	// name.
	InstanceID string `yaml:"instance_id"`
	// OnStop is what a clean stop (SIGTERM) does with the partitions:
	// leave (default) hands them to the other members at once, as a
	// rolling deploy or a scale-down wants; stay keeps them for this
	// identity until its session ends, so a restart within
	// session_timeout resumes without a rebalance.
	OnStop string `yaml:"on_stop"`
	// GroupProtocol is classic (default, JoinGroup/SyncGroup) or consumer
	// (KIP-848: the broker assigns partitions and one member's death or
	// restart never stops the others). consumer needs Kafka 4.0+.
	GroupProtocol string `yaml:"group_protocol"`
	// SchemaRegistry resolves the schema ids of format avro records.
	SchemaRegistry SchemaRegistryConfig `yaml:"schema_registry"`
	// TLS encrypts the broker connections. Default: plaintext.
	TLS TLSConfig `yaml:"tls"`
	// SASL authenticates to the brokers. Default: none.
	SASL SASLConfig `yaml:"sasl"`
}

// SchemaRegistryConfig is the Confluent schema registry that format avro
// records (magic byte 0 + 4-byte schema id) are resolved through.
type SchemaRegistryConfig struct {
	// URL of the registry, e.g. http://registry:8081. Required when a
	// table rule has format avro.
	URL string `yaml:"url"`
	// Username and Password for HTTP basic authentication, if any.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// RetryNotFound is how long a schema id the registry answers 404 for
	// fails the batch (it is retried) before the records with that id
	// become dead letters: a registry replica or a restored registry may
	// not know a schema a producer has just registered. Default 5m.
	RetryNotFound Duration `yaml:"retry_not_found"`
	// PasswordFile is read for Password (a mounted Kubernetes secret);
	// one trailing newline is dropped.
	PasswordFile string `yaml:"password_file"`
}

// TLSConfig is the Kafka client's TLS. Setting any field turns TLS on.
type TLSConfig struct {
	// Enabled turns TLS on with the system's root CAs.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM file of CA certificates that sign the brokers'
	// certificates. Default: the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that authenticate clients by certificate (mutual TLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the brokers' certificates.
	// Default: the host of each broker address.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any broker certificate. For tests only:
	// it gives up the protection TLS is for. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// On tells whether TLS is configured.
func (t TLSConfig) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "" || t.InsecureSkipVerify
}

// SASLConfig is the Kafka client's SASL authentication.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty turns SASL
	// off. PLAIN sends the password as is: use it over TLS only.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password; write ${ENV_VAR}, or use PasswordFile, to keep it out of
	// the file.
	Password string `yaml:"password"`
	// PasswordFile is read for Password (a mounted Kubernetes secret);
	// one trailing newline is dropped.
	PasswordFile string `yaml:"password_file"`
}

// The values of sink.flights.
const (
	FlightsAdaptive = "adaptive"
	FlightsFixed    = "fixed"
)

// SinkConfig is the database side.
type SinkConfig struct {
	// Driver is postgres, mysql, sqlserver or sqlite.
	Driver string `yaml:"driver"`
	// DSN locates the database; write ${ENV_VAR}, or use DSNFile, to keep
	// its password out of the file. Never printed in clear: see
	// internal/secret.
	DSN string `yaml:"dsn"`
	// DSNFile is read for DSN (a mounted Kubernetes secret); one trailing
	// newline is dropped.
	DSNFile string `yaml:"dsn_file"`
	// SynchronousCommit "off" lets PostgreSQL acknowledge a commit before it
	// is flushed: a database crash loses the last moments of data and the
	// offsets covering them together, and they are read again from Kafka.
	// Default: the server's setting.
	SynchronousCommit string `yaml:"synchronous_commit"`
	// AllowedSchemas, when set, lists the only schemas a rule's table may
	// be in once $1.. are expanded from the topic (a name without a schema
	// is always allowed: it is the connection's default). Default: any
	// schema a template names literally.
	AllowedSchemas []string `yaml:"allowed_schemas"`
	// MaxConns bounds the connections used for writing. Default 4.
	MaxConns int `yaml:"max_conns"`
	// Flights is "adaptive" (the default): how many transactions are in
	// flight at once, up to MaxConns, is chosen at run time from the
	// records/s the database commits with each number; or "fixed": always
	// MaxConns when there is work for them.
	Flights string `yaml:"flights"`
	// IdleTxTimeout is how long a batch transaction may sit idle before
	// the database ends it; derived from source.rebalance_timeout by
	// Validate, not configured. A member paused mid-transaction (a
	// zombie) has lost its partitions by then, and its row locks on
	// exactly_offsets would only block the member that owns them now.
	// Zero: the server's setting.
	IdleTxTimeout time.Duration `yaml:"-"`
	// RefusedShare: a flight in which the database refuses more than this
	// share of the rows it writes to a table fails instead of
	// dead-lettering them (a circuit breaker: a NOT NULL or CHECK an
	// operator added refuses every row, and that is not the rows' fault).
	// Default 0.5; 1 turns the breaker off.
	RefusedShare float64 `yaml:"refused_share"`
	// RefusedWait is how long such a flight, or one with a row refused by
	// a foreign key (a child before its parent, from another topic), is
	// failed and retried before the refused rows become dead letters
	// after all. Default 5m; 0 dead-letters at once.
	RefusedWait Duration `yaml:"refused_wait"`
	// StatementTimeout, when set, makes the database end any statement of
	// the pool's sessions that runs longer (PostgreSQL statement_timeout).
	// The status server's pool sets it; the sink's never does. Not
	// configured.
	StatementTimeout time.Duration `yaml:"-"`
	// ReadOnly is set by the commands that only look (status, verify,
	// plan, the dry runs): the dialect opens the database without any
	// setting that writes (SQLite's journal_mode=WAL rewrites the header
	// of a file in rollback-journal mode). Not configured.
	ReadOnly bool `yaml:"-"`
}

// BatchConfig sets the micro-batch triggers.
type BatchConfig struct {
	// Interval is the longest a record waits before its batch is written.
	// Default 1s.
	Interval Duration `yaml:"interval"`
	// MaxRecords caps the records in one flight across all partitions, like
	// Spark's maxOffsetsPerTrigger. Default 50000.
	MaxRecords int `yaml:"max_records"`
	// MaxBytes caps the buffered record bytes of one flight. Default 64 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
}

// TableRule maps topics to a table.
type TableRule struct {
	// Topics is a topic name, or a regular expression when it contains any
	// of ^$*+?()[]{}|\ (anchored at both ends).
	Topics string `yaml:"topics"`
	// Table is the target table; $1.. expand the pattern's groups. Default:
	// the topic name's last dot-separated part.
	Table string `yaml:"table"`
	// Format is json (default) or debezium.
	Format string `yaml:"format"`
	// Mode is upsert (default), append or cdc.
	Mode string `yaml:"mode"`
	// Key lists the key columns; required for upsert and cdc.
	Key []string `yaml:"key"`
	// KeyFrom is record_key or value. Default: the record key when it is a
	// JSON object, else the value's fields named in Key.
	KeyFrom string `yaml:"key_from"`
	// OnError is dead_letter (default) or fail.
	OnError string `yaml:"on_error"`
	// Version names a column: a change never replaces a row whose stored
	// version is newer.
	Version string `yaml:"version"`
	// Create makes a missing table from the record schema. Default false.
	Create bool `yaml:"create"`
	// Evolve "add_columns" adds nullable columns for new fields; "widen"
	// also widens a column whose type was inferred from values when a
	// later value does not fit it (integer → float, decimal or text), so
	// the table's types do not depend on where batches were cut. Default
	// off.
	Evolve  string        `yaml:"evolve"`
	Columns ColumnMapping `yaml:"columns"`

	re *regexp.Regexp
}

// AddsColumns says whether the rule's evolve adds columns for new fields
// (add_columns, and widen, which also widens them).
func (t *TableRule) AddsColumns() bool { return t.Evolve == "add_columns" || t.Evolve == "widen" }

// ColumnMapping selects and renames fields.
type ColumnMapping struct {
	Include []string          `yaml:"include"`
	Exclude []string          `yaml:"exclude"`
	Rename  map[string]string `yaml:"rename"`
}

// Duration is a time.Duration written as "5s" in YAML.
type Duration time.Duration

// UnmarshalYAML reads "250ms", "5s", "1m".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("expected a duration like 500ms, 5s or 1m, got %q", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as "5s", the form UnmarshalYAML reads.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// DefaultConfig returns a configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		Source: SourceConfig{StartFrom: "earliest", SessionTimeout: Duration(45 * time.Second),
			RebalanceTimeout: Duration(60 * time.Second), ClientID: "exactly",
			Membership: "static", OnStop: "leave", GroupProtocol: "classic"},
		Sink:  SinkConfig{MaxConns: 4, Flights: FlightsAdaptive, RefusedShare: 0.5, RefusedWait: Duration(5 * time.Minute)},
		Batch: BatchConfig{Interval: Duration(time.Second), MaxRecords: 50000, MaxBytes: 64 << 20},
	}
}

// LoadConfig reads, expands and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &ConfigError{File: path, Field: "file", Expected: "a readable YAML file (" + err.Error() + ")"}
	}
	defer f.Close()
	c, err := ParseConfig(f, path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ParseConfig reads YAML from r, expands ${ENV} references inside its
// values, reads the secret files (sink.dsn_file, …), applies the defaults
// and validates the result. file is used in error messages.
func ParseConfig(r io.Reader, file string) (*Config, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, &ConfigError{File: file, Field: "file", Expected: "readable YAML (" + err.Error() + ")"}
	}
	c := DefaultConfig()
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, yamlSyntaxError(file, err, raw)
	}
	// Every problem the document shows before decoding, in line order:
	// unset variables, unknown keys, values of the wrong kind.
	var errs ConfigErrors
	unset := map[string]bool{}
	for _, m := range expandEnv(&doc, os.LookupEnv) {
		if m.field == "" {
			m.field = "configuration" // the document is a lone value
		}
		unset[m.field] = true
		errs = append(errs, &ConfigError{File: file, Line: m.line, Field: m.field,
			Problem: "${" + m.name + "} is not set (set it, or give a default: ${" + m.name + ":-default})"})
	}
	for _, e := range checkDocument(&doc, reflect.TypeFor[Config](), "", file) {
		if !unset[e.Field] { // max_conns: ${CONNS} unset is not also "" not a number
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b *ConfigError) int { return a.Line - b.Line })
		const most = 50 // a file of garbage is not a book of errors
		if len(errs) > most {
			rest := len(errs) - most
			errs = append(errs[:most], &ConfigError{File: file, Line: errs[most].Line, Field: "yaml", Problem: fmt.Sprintf("and %d more problems", rest)})
		}
		if len(errs) == 1 {
			return nil, errs[0]
		}
		return nil, errs
	}
	if doc.Kind != 0 {
		if err := doc.Decode(&c); err != nil {
			return nil, yamlSyntaxError(file, err, nil)
		}
	}
	c.File = file
	if err := c.readSecretFiles(); err != nil {
		return nil, withLine(err, &doc)
	}
	c.File = file
	if err := c.Validate(); err != nil {
		return nil, withLine(err, &doc)
	}
	return &c, nil
}

// yamlSyntaxError turns the YAML library's "yaml: line 3: …" into the
// file's line. For "did not find expected key" the library names the line
// the mapping starts on, not the line that breaks it (a key indented one
// space too far, ten lines below): with the source at hand, the line is
// the first one whose addition makes the document fail the same way.
func yamlSyntaxError(file string, err error, src []byte) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	e := &ConfigError{File: file, Field: "yaml", Problem: "not valid YAML: " + msg}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, tail, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				e.Line, e.Problem = line, "not valid YAML: "+tail
				if tail == "did not find expected key" && src != nil {
					e.Line = breakingLine(src, line, tail)
				}
			}
		}
	}
	return e
}

// breakingLine returns the first line at or after from whose addition
// to the lines before it makes the YAML fail with the message want
// (from when none does).
func breakingLine(src []byte, from int, want string) int {
	lines := strings.SplitAfter(string(src), "\n")
	for k := from; k <= len(lines); k++ {
		var n yaml.Node
		err := yaml.Unmarshal([]byte(strings.Join(lines[:k], "")), &n)
		if err != nil && strings.HasSuffix(err.Error(), ": "+want) {
			return k
		}
	}
	return from
}

// withLine adds the line of the field a *ConfigError names.
func withLine(err error, doc *yaml.Node) error {
	var ce *ConfigError
	if errors.As(err, &ce) && ce.Line == 0 {
		ce.Line = lineOf(doc, ce.Field)
	}
	return err
}

// validateGroup checks the consumer group settings.
func (c *Config) validateGroup(bad func(field, value, expected string) error) error {
	src := &c.Source
	switch src.Membership {
	case "static", "dynamic":
	default:
		return bad("source.membership", src.Membership, "static or dynamic")
	}
	if src.InstanceID != "" && src.Membership == "dynamic" {
		return bad("source.instance_id", src.InstanceID, "no instance_id with membership: dynamic (an instance id makes a member static)")
	}
	if len(src.InstanceID) > 249 || strings.ContainsFunc(src.InstanceID, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return bad("source.instance_id", src.InstanceID, "at most 249 printable characters")
	}
	switch src.OnStop {
	case "leave", "stay":
	default:
		return bad("source.on_stop", src.OnStop, "leave (hand the partitions over at once) or stay (keep them for a restart within session_timeout)")
	}
	switch src.GroupProtocol {
	case "classic", "consumer":
	default:
		return bad("source.group_protocol", src.GroupProtocol, "classic or consumer (KIP-848, Kafka 4.0+)")
	}
	return nil
}

// Validate checks the configuration, fills derived defaults and compiles
// the topic patterns. Contradictions are refused here, not at run time.
func (c *Config) Validate() error {
	bad := func(field, value, expected string) error {
		return &ConfigError{File: c.File, Field: field, Value: value, Expected: expected}
	}
	if c.Pipeline == "" {
		return bad("pipeline", "", "a pipeline name (it names the ledger rows)")
	}
	if len(c.Source.Brokers) == 0 {
		return bad("source.brokers", "", "at least one broker address host:port")
	}
	if c.Source.Group == "" {
		c.Source.Group = c.Pipeline
	}
	if c.Source.ClientID == "" {
		c.Source.ClientID = "exactly"
	}
	if c.Sink.IdleTxTimeout == 0 {
		c.Sink.IdleTxTimeout = c.Source.RebalanceTimeout.D()
	}
	if err := c.validateGroup(bad); err != nil {
		return err
	}
	switch sf := c.Source.StartFrom; {
	case sf == "earliest", sf == "latest", sf == "group":
	case strings.HasPrefix(sf, "timestamp:"):
		if _, err := time.Parse(time.RFC3339, strings.TrimPrefix(sf, "timestamp:")); err != nil {
			return bad("source.start_from", sf, "timestamp:<RFC3339>, e.g. timestamp:2026-01-02T15:04:05Z")
		}
	default:
		return bad("source.start_from", sf, "earliest, latest, group or timestamp:<RFC3339>")
	}
	if err := c.validateSecurity(bad); err != nil {
		return err
	}
	if err := c.validateSink(bad); err != nil {
		return err
	}
	if err := c.validateBatch(bad); err != nil {
		return err
	}
	if c.Source.SchemaRegistry.RetryNotFound < 0 {
		return bad("source.schema_registry.retry_not_found", c.Source.SchemaRegistry.RetryNotFound.D().String(),
			"how long a schema id the registry answers 404 for is retried before its records are dead letters (e.g. 5m)")
	}
	if len(c.Tables) == 0 {
		return bad("tables", "", "at least one table rule with topics")
	}
	for i := range c.Tables {
		t := &c.Tables[i]
		f := func(name string) string { return fmt.Sprintf("tables[%d].%s", i, name) }
		if err := c.validateRule(t, f, bad); err != nil {
			return err
		}
		if err := c.validateRuleWrites(t, f, bad); err != nil {
			return err
		}
	}
	return nil
}

// validateSink checks the sink section and fills its defaults.
func (c *Config) validateSink(bad func(field, value, expected string) error) error {
	switch c.Sink.Driver {
	case "postgres", "sqlite", "mysql", "sqlserver":
	default:
		return bad("sink.driver", c.Sink.Driver, "one of postgres, mysql, sqlserver, sqlite")
	}
	if c.Sink.DSN == "" {
		return bad("sink.dsn", "", "a data source name for the "+c.Sink.Driver+" sink (or sink.dsn_file)")
	}
	switch c.Sink.SynchronousCommit {
	case "", "on", "off", "local", "remote_write", "remote_apply":
	default:
		return bad("sink.synchronous_commit", c.Sink.SynchronousCommit, "on, off, local, remote_write or remote_apply")
	}
	if c.Sink.RefusedShare <= 0 || c.Sink.RefusedShare > 1 {
		return bad("sink.refused_share", fmt.Sprint(c.Sink.RefusedShare), "a share of a flight's rows above 0 and at most 1 (1: never hold a flight for its refused rows)")
	}
	if c.Sink.RefusedWait < 0 {
		return bad("sink.refused_wait", c.Sink.RefusedWait.D().String(), "a duration of 0 or more")
	}
	if c.Sink.MaxConns <= 0 {
		return bad("sink.max_conns", fmt.Sprint(c.Sink.MaxConns), "a positive number of connections")
	}
	switch c.Sink.Flights {
	case "":
		c.Sink.Flights = FlightsAdaptive
	case FlightsAdaptive, FlightsFixed:
	default:
		return bad("sink.flights", c.Sink.Flights, FlightsAdaptive+" or "+FlightsFixed)
	}
	return nil
}

// validateBatch checks the batch triggers.
func (c *Config) validateBatch(bad func(field, value, expected string) error) error {
	if c.Batch.Interval.D() <= 0 {
		return bad("batch.interval", c.Batch.Interval.D().String(), "a positive duration like 5s")
	}
	if c.Batch.MaxRecords <= 0 {
		return bad("batch.max_records", fmt.Sprint(c.Batch.MaxRecords), "a positive number of records")
	}
	if c.Batch.MaxBytes <= 0 {
		return bad("batch.max_bytes", fmt.Sprint(c.Batch.MaxBytes), "a positive number of bytes")
	}
	return nil
}

// validateRule checks how a table rule reads its topics: the topic
// pattern, format, mode and key, and fills their defaults. f names a
// field of the rule.
func (c *Config) validateRule(t *TableRule, f func(string) string, bad func(field, value, expected string) error) error {
	if t.Topics == "" {
		return bad(f("topics"), "", "a topic name or a regular expression")
	}
	pat := t.Topics
	if !IsPattern(pat) {
		pat = regexp.QuoteMeta(pat)
	}
	re, err := regexp.Compile("^(?:" + strings.TrimSuffix(strings.TrimPrefix(pat, "^"), "$") + ")$")
	if err != nil {
		return bad(f("topics"), t.Topics, "a valid regular expression ("+err.Error()+")")
	}
	t.re = re
	if t.Format == "" {
		t.Format = "json"
	}
	switch t.Format {
	case "json", "debezium":
	case "avro":
		if u, err := url.Parse(c.Source.SchemaRegistry.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("source.schema_registry.url", c.Source.SchemaRegistry.URL,
				"the schema registry URL (http://host:port) that "+f("format")+": avro resolves schema ids through")
		}
	default:
		return bad(f("format"), t.Format, "json, debezium or avro")
	}
	if t.Mode == "" {
		t.Mode = "upsert"
		if t.Format == "debezium" {
			t.Mode = "cdc"
		}
	}
	if t.Mode == "cdc" && t.Format == "json" {
		return bad(f("mode"), t.Mode, "format debezium (or avro) for mode cdc: plain json carries no change envelope")
	}
	switch t.Mode {
	case "upsert", "cdc":
		if len(t.Key) == 0 && t.KeyFrom != "record_key" {
			return bad(f("key"), "", "the key columns, e.g. [id]: mode "+t.Mode+" replaces rows by key")
		}
	case "append":
	default:
		return bad(f("mode"), t.Mode, "upsert, append or cdc")
	}
	switch t.KeyFrom {
	case "", "record_key", "value":
	default:
		return bad(f("key_from"), t.KeyFrom, "record_key or value")
	}
	return nil
}

// validateRuleWrites checks what a table rule writes: the version column,
// renames, on_error, evolve and the table name.
func (c *Config) validateRuleWrites(t *TableRule, f func(string) string, bad func(field, value, expected string) error) error {
	if strings.ContainsAny(t.Version, ".\"`[];' ") {
		return bad(f("version"), t.Version, "a column name; source_lsn, source_ts_ms (any source_FIELD) or ts_ms take the value from the Debezium envelope")
	}
	// Two fields renamed to one column would each write it, the one
	// that wins chosen by map order: refuse it up front.
	targets := make(map[string]string, len(t.Columns.Rename))
	for _, from := range slices.Sorted(maps.Keys(t.Columns.Rename)) {
		to := t.Columns.Rename[from]
		if other, dup := targets[to]; dup && to != "" {
			return bad(f("columns.rename"), other+", "+from+" → "+to, "at most one field renamed to each column")
		}
		targets[to] = from
	}
	if t.OnError == "" {
		t.OnError = "dead_letter"
	}
	switch t.OnError {
	case "dead_letter", "fail":
	default:
		return bad(f("on_error"), t.OnError, "dead_letter or fail")
	}
	switch t.Evolve {
	case "", "add_columns", "widen":
	default:
		return bad(f("evolve"), t.Evolve, "add_columns or widen (or leave it out)")
	}
	if t.Table != "" && !validTableName(t.Table) {
		return bad(f("table"), t.Table, "a table name, optionally schema-qualified, that may use $1.. from the topic pattern")
	}
	if !strings.Contains(t.Table, "$") && t.Table != "" {
		if reason := c.refuseTable(t.Table, t.Table); reason != "" {
			return bad(f("table"), t.Table, "a table name exactly may write: "+reason)
		}
	}
	return nil
}

// systemSchema tells whether a (lower-case) schema is one of a
// database's own: PostgreSQL's pg_* and information_schema, MySQL's mysql,
// sys, performance_schema, SQL Server's sys and INFORMATION_SCHEMA.
func systemSchema(s string) bool {
	switch s {
	case "information_schema", "mysql", "sys", "performance_schema":
		return true
	}
	return strings.HasPrefix(s, "pg_")
}

// identLimit is the longest identifier the driver's database takes, and
// the length of p in its unit (0: no limit).
func identLimit(driver, p string) (limit, n int) {
	switch driver {
	case "postgres":
		return 63, len(p) // NAMEDATALEN-1 bytes
	case "mysql":
		return 64, utf8.RuneCountInString(p)
	case "sqlserver":
		return 128, utf8.RuneCountInString(p)
	}
	return 0, 0
}

func validTableName(s string) bool {
	return !strings.ContainsAny(s, "\"`[];'\x00")
}

// IsPattern tells whether a topics value is a regular expression rather
// than a literal topic name.
func IsPattern(s string) bool { return strings.ContainsAny(s, `^$*+?()[]{}|\`) }

// Route finds the rule for a topic and the table it maps to. ok is false
// when no rule matches; table is empty when a rule matches but the name it
// expands to is refused (Resolve tells why).
func (c *Config) Route(topic string) (rule *TableRule, table string, ok bool) {
	rule, table, err := c.Resolve(topic)
	if err != nil {
		table = ""
	}
	return rule, table, rule != nil
}

// Resolve finds the rule for a topic and the table it maps to, checking
// the name after $1.. are expanded from the topic: it has as many
// dot-separated parts as the rule's table template (no schema unless the
// template names one), no empty part, no quoting characters, is never an
// exactly_* table, and its schema, if any, is in sink.allowed_schemas when
// that list is set. rule is nil when no rule matches (err is nil then);
// err is a *RouteError when the name is refused.
func (c *Config) Resolve(topic string) (rule *TableRule, table string, err error) {
	for i := range c.Tables {
		t := &c.Tables[i]
		m := t.re.FindStringSubmatchIndex(topic)
		if m == nil {
			continue
		}
		template := t.Table
		if template == "" {
			table = topic[strings.LastIndexByte(topic, '.')+1:]
			template = "$0"
		} else {
			table = string(t.re.ExpandString(nil, t.Table, topic, m))
		}
		if reason := c.refuseTable(template, table); reason != "" {
			return t, table, &RouteError{Topic: topic, Rule: t.Topics, Table: table, Reason: reason}
		}
		return t, table, nil
	}
	return nil, "", nil
}

// refuseTable says why the table name expanded from template is refused,
// or "" when it is fine.
func (c *Config) refuseTable(template, table string) string {
	parts := strings.Split(table, ".")
	if want := strings.Count(template, ".") + 1; len(parts) != want {
		if want == 1 {
			return "the name has a schema part but the rule's table template has none"
		}
		return fmt.Sprintf("the name has %d dot-separated parts but the rule's table template %q has %d", len(parts), template, want)
	}
	for _, p := range parts {
		if p == "" {
			return "the name has an empty part"
		}
	}
	if !validTableName(table) {
		return "the name contains a quote, bracket, semicolon or NUL"
	}
	// A Kafka topic name may have 249 characters. PostgreSQL cuts a longer
	// identifier to 63 bytes without an error (two topics that differ
	// after that write one table); MySQL refuses one over 64 characters
	// and SQL Server over 128, and the partition retried forever.
	for _, p := range parts {
		if limit, n := identLimit(c.Sink.Driver, p); limit > 0 && n > limit {
			return fmt.Sprintf("the name part %.20q… is longer than the %d %s a %s identifier may have", p, limit, map[bool]string{true: "bytes", false: "characters"}[c.Sink.Driver == "postgres"], c.Sink.Driver)
		}
	}
	if name := parts[len(parts)-1]; strings.HasPrefix(strings.ToLower(name), "exactly_") {
		return "exactly_* tables are the ledger's and are never written by a rule"
	}
	// PostgreSQL searches pg_catalog before the connection's search_path:
	// an unqualified "pg_description" is pg_catalog.pg_description, a
	// schema no template named (with a superuser sink, pg_authid).
	if len(parts) == 1 && c.Sink.Driver == "postgres" && strings.HasPrefix(strings.ToLower(parts[0]), "pg_") {
		return "an unqualified pg_* name is a PostgreSQL system catalog (pg_catalog is searched before the connection's schema); name a schema in the rule's table to use such a name"
	}
	// A schema the topic chose is never the database's own: with a
	// superuser sink cdc.pg_catalog.pg_authid under $1.$2 wrote roles.
	if tparts := strings.Split(template, "."); len(parts) > 1 && strings.Contains(strings.Join(tparts[:len(tparts)-1], "."), "$") {
		if schema := strings.ToLower(strings.Join(parts[:len(parts)-1], ".")); systemSchema(schema) {
			return fmt.Sprintf("schema %q is a system schema; the rule's table template takes its schema from the topic", schema)
		}
	}
	if len(parts) > 1 && len(c.Sink.AllowedSchemas) > 0 {
		schema := strings.Join(parts[:len(parts)-1], ".")
		if !slices.Contains(c.Sink.AllowedSchemas, schema) {
			return fmt.Sprintf("schema %q is not in sink.allowed_schemas %v", schema, c.Sink.AllowedSchemas)
		}
	}
	return ""
}

// TopicPatterns returns one anchored regular expression per rule, for a
// regex subscription, and whether any rule is a pattern at all.
func (c *Config) TopicPatterns() (patterns []string, literal []string, anyPattern bool) {
	for _, t := range c.Tables {
		patterns = append(patterns, t.re.String())
		if IsPattern(t.Topics) {
			anyPattern = true
		} else {
			literal = append(literal, t.Topics)
		}
	}
	return patterns, literal, anyPattern
}

// validateSecurity checks source.tls and source.sasl without reading any
// file: internal/kafka reads them when the client is built.
func (c *Config) validateSecurity(bad func(field, value, expected string) error) error {
	t := c.Source.TLS
	if (t.CertFile == "") != (t.KeyFile == "") {
		if t.CertFile == "" {
			return bad("source.tls.cert_file", "", "the client certificate (PEM) that goes with source.tls.key_file")
		}
		return bad("source.tls.key_file", "", "the private key (PEM) of source.tls.cert_file")
	}
	if t.InsecureSkipVerify && t.CAFile != "" {
		return bad("source.tls.insecure_skip_verify", "true", "false when source.tls.ca_file is set: a CA file is pointless if certificates are not verified")
	}
	sa := c.Source.SASL
	switch sa.Mechanism {
	case "":
		if sa.Username != "" || sa.Password != "" {
			return bad("source.sasl.mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 when a username or password is set")
		}
		return nil
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return bad("source.sasl.mechanism", sa.Mechanism, "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	}
	if sa.Username == "" {
		return bad("source.sasl.username", "", "a user name for SASL "+sa.Mechanism)
	}
	if sa.Password == "" {
		return bad("source.sasl.password", "", "a password for SASL "+sa.Mechanism+", e.g. ${KAFKA_PASSWORD}")
	}
	return nil
}
