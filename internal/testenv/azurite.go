package testenv

import (
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// Azurite returns the blob endpoint of the Azure storage emulator
// (EXACTLY_TEST_AZURITE_ENDPOINT, default http://127.0.0.1:10000/devstoreaccount1,
// started by .ci/services). Unreachable, it skips the test, or fails it
// under CI=true.
func Azurite(t testing.TB) string {
	t.Helper()
	ep := os.Getenv("EXACTLY_TEST_AZURITE_ENDPOINT")
	if ep == "" {
		ep = "http://127.0.0.1:10000/" + AzuriteAccount
	}
	u, err := url.Parse(ep)
	if err == nil {
		var c net.Conn
		if c, err = net.DialTimeout("tcp", u.Host, 3*time.Second); err == nil {
			c.Close()
		}
	}
	if err != nil {
		Unavailable(t, "Azurite at "+ep+" (bash .ci/services starts it)", err)
	}
	return strings.TrimRight(ep, "/")
}

// AzuriteAccount and AzuriteKey are the emulator's well-known development
// account and its shared key (published by Microsoft; not a secret).
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
