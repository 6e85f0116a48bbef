package sqlserver

import "testing"

func TestPlainDigits(t *testing.T) {
	for in, want := range map[string]string{"1e3": "1000", "1.5e3": "1500", "-2.5E-2": "-0.025", "1E0": "1", "0.5e1": "5", "12e-1": "1.2", "+3e2": "300", "1.25e1": "12.5", "5e-3": "0.005"} {
		if got, ok := plainDigits(in); !ok || got != want {
			t.Errorf("plainDigits(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"1.5", "abc", "e3", "1e", "1ex", "1.2.3e4"} {
		if got, ok := plainDigits(in); ok {
			t.Errorf("plainDigits(%q) = %q, want not ok", in, got)
		}
	}
}
