package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/exactly/exactly"
)

// securityOpts turns source.tls and source.sasl into client options.
func securityOpts(cfg *exactly.Config) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	tc, err := LoadTLS(cfg)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, kgo.Dialer((&tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: tc}).DialContext))
	}
	if m := saslMechanism(cfg.Source.SASL); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// saslMechanism returns the configured mechanism, or nil for none.
func saslMechanism(c exactly.SASLConfig) sasl.Mechanism {
	switch c.Mechanism {
	case "PLAIN":
		return plain.Auth{User: c.Username, Pass: c.Password}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: c.Username, Pass: c.Password}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: c.Username, Pass: c.Password}.AsSha512Mechanism()
	}
	return nil
}

// clientOpts returns the seed brokers, client id and security options of
// cfg: the options every client starts from (Source, Client and the
// client that releases an old member, see releaseOldSelf).
func clientOpts(cfg *exactly.Config) ([]kgo.Opt, error) {
	sec, err := securityOpts(cfg)
	if err != nil {
		return nil, err
	}
	return append([]kgo.Opt{kgo.SeedBrokers(cfg.Source.Brokers...), kgo.ClientID(cfg.Source.ClientID)}, sec...), nil
}

// LoadTLS reads the configured certificate files and returns the client's
// TLS configuration, or nil when TLS is off. Errors name the field
// (*exactly.ConfigError).
func LoadTLS(cfg *exactly.Config) (*tls.Config, error) {
	t := cfg.Source.TLS
	if !t.On() {
		return nil, nil
	}
	bad := func(field, value, expected string) error {
		return &exactly.ConfigError{File: cfg.File, Field: field, Value: value, Expected: expected}
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // documented test-only option
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, bad("source.tls.ca_file", t.CAFile, "a readable PEM file of CA certificates ("+err.Error()+")")
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, bad("source.tls.ca_file", t.CAFile, "PEM-encoded CA certificates (none found in the file)")
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		// Each file read on its own, so an unreadable one is the field
		// named; what they hold is then judged as a pair.
		certPEM, err := os.ReadFile(t.CertFile)
		if err != nil {
			return nil, bad("source.tls.cert_file", t.CertFile, "a readable PEM client certificate ("+err.Error()+")")
		}
		keyPEM, err := os.ReadFile(t.KeyFile)
		if err != nil {
			return nil, bad("source.tls.key_file", t.KeyFile, "a readable PEM private key of source.tls.cert_file ("+err.Error()+")")
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, bad("source.tls.cert_file", t.CertFile, "a PEM certificate matching source.tls.key_file ("+err.Error()+")")
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
