package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/exactly/exactly"
)

// config parses a minimal pipeline configuration with the given source
// security section.
func config(t *testing.T, brokers []string, security string) *exactly.Config {
	t.Helper()
	y := fmt.Sprintf(`pipeline: sec
source:
  brokers: [%s]
%s
sink: {driver: sqlite, dsn: x.db}
tables: [{topics: t, key: [id]}]
`, strings.Join(brokers, ","), security)
	c, err := exactly.ParseConfig(strings.NewReader(y), "sec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// roundTrip produces one record and reads it back with a client built
// from the configuration, the way every command builds its client.
func roundTrip(t *testing.T, c *exactly.Config) error { return roundTripWithin(t, c, 10*time.Second) }

// refused tells whether a round trip fails: a refused client retries
// until its deadline, so the deadline is short.
func refused(t *testing.T, c *exactly.Config) bool {
	return roundTripWithin(t, c, 1500*time.Millisecond) != nil
}

func roundTripWithin(t *testing.T, c *exactly.Config, within time.Duration) error {
	t.Helper()
	opts, err := clientOpts(c)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics("t"), kgo.RequestRetries(1), kgo.RetryTimeout(3*time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v")}).FirstErr(); err != nil {
		return err
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		return err
	}
	if fs.NumRecords() == 0 {
		return fmt.Errorf("no record read back")
	}
	return nil
}

func TestSASLMechanismsAgainstKfake(t *testing.T) {
	t.Setenv("EXACTLY_TEST_KAFKA_PASSWORD", "s3cret")
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"), kfake.EnableSASL(),
				kfake.Superuser(mech, "exactly", "s3cret"))
			if err != nil {
				t.Fatal(err)
			}
			defer cluster.Close()
			good := config(t, cluster.ListenAddrs(), "  sasl: {mechanism: "+mech+", username: exactly, password: '${EXACTLY_TEST_KAFKA_PASSWORD}'}")
			if err := roundTrip(t, good); err != nil {
				t.Fatalf("%s with the right password: %v", mech, err)
			}
			bad := config(t, cluster.ListenAddrs(), "  sasl: {mechanism: "+mech+", username: exactly, password: wrong}")
			if !refused(t, bad) {
				t.Fatalf("%s with a wrong password was accepted", mech)
			}
			none := config(t, cluster.ListenAddrs(), "")
			if !refused(t, none) {
				t.Fatalf("no SASL was accepted by a SASL-only broker")
			}
		})
	}
}

// serverCert returns a CA-signed-by-itself certificate for 127.0.0.1 as
// PEM files and a server TLS config using it.
func serverCert(t *testing.T) (caFile string, srv *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

func TestTLSAgainstKfake(t *testing.T) {
	ca, srv := serverCert(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"), kfake.TLS(srv),
		kfake.EnableSASL(), kfake.Superuser("PLAIN", "exactly", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addrs := cluster.ListenAddrs()
	sasl := "  sasl: {mechanism: PLAIN, username: exactly, password: pw}\n"
	if err := roundTrip(t, config(t, addrs, "  tls: {ca_file: '"+ca+"'}\n"+sasl)); err != nil {
		t.Fatalf("TLS with the test CA and SASL PLAIN: %v", err)
	}
	if !refused(t, config(t, addrs, "  tls: {enabled: true}\n"+sasl)) {
		t.Fatal("a certificate from an unknown CA was accepted")
	}
	if err := roundTrip(t, config(t, addrs, "  tls: {insecure_skip_verify: true}\n"+sasl)); err != nil {
		t.Fatalf("insecure_skip_verify: %v", err)
	}
	if !refused(t, config(t, addrs, sasl)) {
		t.Fatal("plaintext reached a TLS listener")
	}
}

// TestLoadTLSNamesTheField: a TLS file refused when the client is built
// names the configuration file, the field and what is expected, as every
// configuration error does.
func TestLoadTLSNamesTheField(t *testing.T) {
	for _, tc := range []struct{ name, yaml, field, msg string }{
		{"unreadable CA", "  tls: {ca_file: DIR/missing.pem}", "source.tls.ca_file", "a readable PEM file of CA certificates"},
		{"CA without certificates", "  tls: {ca_file: DIR/garbage.pem}", "source.tls.ca_file", "PEM-encoded CA certificates (none found"},
		{"bad client certificate", "  tls: {cert_file: DIR/garbage.pem, key_file: DIR/garbage.pem}", "source.tls.cert_file", "a PEM certificate matching source.tls.key_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "garbage.pem"), []byte("not a certificate"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadTLS(config(t, []string{"127.0.0.1:9092"}, strings.ReplaceAll(tc.yaml, "DIR", dir)))
			var ce *exactly.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *exactly.ConfigError", err)
			}
			if ce.Field != tc.field {
				t.Errorf("field %q, want %q (%v)", ce.Field, tc.field, err)
			}
			if ce.File == "" || !strings.HasPrefix(err.Error(), ce.File+":") {
				t.Errorf("message %q does not start with the file name", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not say %q", err, tc.msg)
			}
		})
	}
}

func TestLoadTLSReadsCAAndClientCertificate(t *testing.T) {
	cert, key := selfSigned(t, t.TempDir())
	c := config(t, []string{"127.0.0.1:9092"}, "  tls: {ca_file: '"+cert+"', cert_file: '"+cert+"', key_file: '"+key+"', server_name: kafka.internal}")
	tc, err := LoadTLS(c)
	if err != nil {
		t.Fatal(err)
	}
	if tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "kafka.internal" || tc.InsecureSkipVerify {
		t.Errorf("TLS config not as configured: %+v", tc)
	}
	if tc, err := LoadTLS(config(t, []string{"127.0.0.1:9092"}, "")); tc != nil || err != nil {
		t.Errorf("no tls section: got %v, %v; want plaintext", tc, err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, PEM.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "exactly test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// TestLoadTLSNamesTheUnreadableFile: of a client certificate and its key,
// the one that cannot be read is the field named, so the error points at
// the line to fix (a missing key_file was reported as source.tls.cert_file).
func TestLoadTLSNamesTheUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct{ name, cert, key, field, msg string }{
		{"missing key", cert, missing, "source.tls.key_file", "missing.pem: no such file"},
		{"key is a directory", cert, dir, "source.tls.key_file", "is a directory"},
		{"missing certificate", missing, key, "source.tls.cert_file", "missing.pem: no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadTLS(config(t, []string{"127.0.0.1:9092"}, "  tls: {cert_file: '"+tc.cert+"', key_file: '"+tc.key+"'}"))
			var ce *exactly.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *exactly.ConfigError", err)
			}
			if ce.Field != tc.field || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %q (field %s), want field %s saying %q", err, ce.Field, tc.field, tc.msg)
			}
		})
	}
}
