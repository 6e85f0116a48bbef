package kafka

import (
	"crypto/tls"
	"net"
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
	tc, err := cfg.LoadTLS()
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
// cfg, for clients that do not join the group (Client).
func clientOpts(cfg *exactly.Config) ([]kgo.Opt, error) {
	sec, err := securityOpts(cfg)
	if err != nil {
		return nil, err
	}
	return append([]kgo.Opt{kgo.SeedBrokers(cfg.Source.Brokers...), kgo.ClientID(cfg.Source.ClientID)}, sec...), nil
}
