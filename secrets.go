package exactly

import (
	"os"
	"strings"

	"github.com/exactly/exactly/internal/secret"
)

// readSecretFiles fills sink.dsn, source.sasl.password and
// source.schema_registry.password from their *_file fields (how Kubernetes
// mounts secrets), and registers every secret value of the configuration
// with internal/secret, so that any output that would print one prints a
// mask instead (the backstop behind the structural redaction of DSNs).
func (c *Config) readSecretFiles() error {
	for _, f := range []struct {
		field, fileField string
		value            *string
		path             string
	}{
		{"sink.dsn", "sink.dsn_file", &c.Sink.DSN, c.Sink.DSNFile},
		{"source.sasl.password", "source.sasl.password_file", &c.Source.SASL.Password, c.Source.SASL.PasswordFile},
		{"source.schema_registry.password", "source.schema_registry.password_file", &c.Source.SchemaRegistry.Password, c.Source.SchemaRegistry.PasswordFile},
	} {
		if f.path == "" {
			continue
		}
		if *f.value != "" {
			return &ConfigError{File: c.File, Field: f.fileField, Value: f.path, Expected: "either " + f.field + " or " + f.fileField + ", not both"}
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return &ConfigError{File: c.File, Field: f.fileField, Value: f.path, Expected: "a readable file holding " + f.field + " (" + err.Error() + ")"}
		}
		*f.value = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if *f.value == "" {
			return &ConfigError{File: c.File, Field: f.fileField, Value: f.path, Expected: "a file holding " + f.field + " (it is empty)"}
		}
	}
	c.RegisterSecrets()
	return nil
}

// RegisterSecrets tells internal/secret the configuration's secret
// values (the DSN's password, the SASL and schema registry passwords), so
// that every output masks them wherever they appear.
func (c *Config) RegisterSecrets() {
	secret.Register(secret.Passwords(c.Sink.DSN)...)
	secret.Register(c.Source.SASL.Password, c.Source.SchemaRegistry.Password)
}
