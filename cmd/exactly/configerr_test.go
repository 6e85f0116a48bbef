package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigErrorsOnePerLine: exactly check prints every problem of a
// configuration on its own line, each with file, line and field, and no
// secret: the password that is set stays out of the message about the
// ones that are not.
func TestConfigErrorsOnePerLine(t *testing.T) {
	const secret = "Zq9-sEcReT-Kx7w"
	t.Setenv("KAFKA_PASSWORD", secret)
	t.Setenv("PG_CONNS", "4")
	for _, name := range []string{"unset", "typos", "types"} {
		file := filepath.Join("..", "..", "testdata", "config", name+".yaml")
		code, out, errs := runCLI("check", "-c", file)
		if code != 2 || out != "" {
			t.Errorf("check %s: exit %d, want 2 and nothing on stdout\n%s", name, code, out)
		}
		if strings.Contains(errs, secret) {
			t.Errorf("check %s printed the password:\n%s", name, errs)
		}
		golden(t, "config_"+name, strings.ReplaceAll(errs, file, name+".yaml"))
	}
}
