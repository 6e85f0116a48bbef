package secret

import (
	"bytes"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

// dsnForms is every DSN form exactly accepts, each with the password it
// holds. The passwords are distinct so a leak names its form.
var dsnForms = []struct{ name, dsn, password string }{
	{"postgres URL", "postgres://app:Pg-S3cret@db:5432/shop?sslmode=disable", "Pg-S3cret"},
	{"postgres URL, encoded", "postgresql://app:p%40ss%2Fw0rd@db/shop", "p@ss/w0rd"},
	{"postgres URL, unencoded @", "postgres://app:at@sign@db/shop", "at@sign"},
	{"postgres key=value", "host=db user=app password=Kv-S3cret dbname=shop", "Kv-S3cret"},
	{"postgres key=value, quoted", "host=db user=app password='qu0ted s3cret' dbname=shop", "qu0ted s3cret"},
	{"postgres URL query", "postgres://db/shop?user=app&password=Qry-S3cret&sslmode=disable", "Qry-S3cret"},
	{"mysql URL", "mysql://app:My-S3cret@db:3306/shop", "My-S3cret"},
	{"mysql URL with a typo (url.Error)", "mysql://app:Typo-S3cret@db:33o6/prod", "Typo-S3cret"},
	{"mysql driver form", "app:Drv-S3cret@tcp(db:3306)/shop?parseTime=true", "Drv-S3cret"},
	{"mysql driver form, unix", "app:Unx-S3cret@unix(/run/mysqld.sock)/shop", "Unx-S3cret"},
	{"mysql driver form, no address", "app:NoAddr-S3cret@/shop", "NoAddr-S3cret"},
	{"sqlserver URL", "sqlserver://sa:Ms-S3cret@db:1433?database=shop", "Ms-S3cret"},
	{"ADO", "server=db;user id=sa;Password=Ado-S3cret;database=shop", "Ado-S3cret"},
	{"ADO, quoted", `server=db;user id=sa;password="Ado;Q""uoted";database=shop`, `Ado;Q"uoted`},
	{"ODBC", "odbc:server=db;uid=sa;PWD={Odbc;S3c}}ret};database=shop", "Odbc;S3c}ret"},
	{"ODBC, lower case", "odbc:server=db;uid=sa;pwd=odbc-low3r;database=shop", "odbc-low3r"},
	{"ADO, unquoted with spaces", "server=db;user id=sa;Password=my Sp4ce s3cret;database=shop", "my Sp4ce s3cret"},
	{"ADO, unquoted with spaces, last pair", "server=db;user id=sa;Password= last Sp4ce w0rd ", "last Sp4ce w0rd"},
	{"ODBC, unquoted with spaces", "odbc:server=db;uid=sa;pwd=0dbc Sp4ce pw;database=shop", "0dbc Sp4ce pw"},
	{"URL without its scheme", "app:Bare-S3cret@db:5432/shop", "Bare-S3cret"},
	{"URL without its scheme, unencoded @", "app:b@re-S3cret@db.example.com/shop", "b@re-S3cret"},
	{"sqlite path", "/var/lib/exactly/sink.db", ""},
}

// leaks reports whether got shows password or any word of it longer than
// two characters: a mask that covers "my" of "my Sp4ce s3cret" still
// leaks the rest.
func leaks(got, password string) bool {
	if password == "" {
		return false
	}
	if strings.Contains(got, password) || strings.Contains(got, url.PathEscape(password)) {
		return true
	}
	for _, w := range strings.Fields(password) {
		if len(w) > 2 && strings.Contains(got, w) {
			return true
		}
	}
	return false
}

// outputs are the shapes in which text carrying a DSN leaves: as is, in
// an error, quoted (%q, url.Error), in JSON.
var outputs = []struct {
	name string
	wrap func(dsn string) string
}{
	{"as is", func(d string) string { return "sink " + d + " unreachable" }},
	{"url.Error", func(d string) string {
		return (&url.Error{Op: "parse", URL: d, Err: errors.New("invalid port")}).Error()
	}},
	{"quoted", func(d string) string { return strings.TrimSpace(strings.ReplaceAll(`dsn "`+d+`"`, "\n", " ")) }},
}

// TestScrubMasksEveryForm: structural redaction alone (nothing registered).
func TestScrubMasksEveryForm(t *testing.T) {
	for _, f := range dsnForms {
		for _, o := range outputs {
			got := Scrub(o.wrap(f.dsn))
			if leaks(got, f.password) {
				t.Errorf("%s, %s: password in %q", f.name, o.name, got)
			}
			if f.password == "" && got != o.wrap(f.dsn) {
				t.Errorf("%s, %s: changed %q to %q", f.name, o.name, o.wrap(f.dsn), got)
			}
		}
	}
}

func TestPasswordsFindsEachForm(t *testing.T) {
	for _, f := range dsnForms {
		got := Passwords(f.dsn)
		found := false
		for _, p := range got {
			found = found || p == f.password
		}
		if f.password != "" && !found {
			t.Errorf("%s: Passwords(%q) = %q, want it to hold %q", f.name, f.dsn, got, f.password)
		}
	}
}

func TestRegisteredSecretsAreMaskedInEveryEncoding(t *testing.T) {
	s := `r3g-"<&>'-s3cret`
	Register(s, "abcde") // too short to mask everywhere
	for _, enc := range encodings(s) {
		if got := Scrub("x " + enc + " y"); strings.Contains(got, enc) || !strings.Contains(got, Mask) {
			t.Errorf("encoding %q: got %q", enc, got)
		}
	}
	if got := Scrub("abcdef"); got != "abcdef" {
		t.Errorf("a short secret masked everywhere: %q", got)
	}
}

func TestHandlerScrubsEveryAttribute(t *testing.T) {
	Register("H4ndler-S3cret")
	for _, json := range []bool{false, true} {
		var buf bytes.Buffer
		var h slog.Handler = slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
		if json {
			h = slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
		}
		log := slog.New(NewHandler(h)).With("dsn", "app:Drv-S3cret@tcp(db)/x")
		err := errors.New("dial postgres://u:Pg-S3cret@h/db: H4ndler-S3cret refused")
		log.Debug("opening mysql://a:My-S3cret@h/db", "err", err, slog.Group("g", "pw", "password=Kv-S3cret"), "any", []string{"H4ndler-S3cret"})
		log.Error("x", "err", err)
		out := buf.String()
		for _, s := range []string{"Drv-S3cret", "Pg-S3cret", "H4ndler-S3cret", "My-S3cret", "Kv-S3cret"} {
			if strings.Contains(out, s) {
				t.Errorf("json=%v: %s in %s", json, s, out)
			}
		}
	}
}

func TestShortSecretsAreMaskedAsWords(t *testing.T) {
	Register("k9#x", "Zq7w1")
	for in, want := range map[string]string{
		"login with k9#x failed":       "login with " + Mask + " failed",
		`password "Zq7w1" refused`:     `password "` + Mask + `" refused`,
		"Zq7w1abc and abcZq7w1 stay":   "Zq7w1abc and abcZq7w1 stay",
		"k9#x,Zq7w1":                   Mask + "," + Mask,
		"ak9#x keeps its word (k9#xa)": "ak9#x keeps its word (k9#xa)",
	} {
		if got := Scrub(in); got != want {
			t.Errorf("Scrub(%q) = %q, want %q", in, got, want)
		}
	}
	Register("abc") // too short: masked only in DSN forms
	if got := Scrub("abc abc"); got != "abc abc" {
		t.Errorf("a 3-character secret masked in plain text: %q", got)
	}
}

// TestScrubLeavesPlainTextAlone: the new forms must not eat ordinary log
// text that merely holds a colon, an @ or a password= in prose.
func TestScrubLeavesPlainTextAlone(t *testing.T) {
	for _, s := range []string{
		"broker 127.0.0.1:9092 unreachable",
		"topic shop.orders partition 3 offset 17: key user@example.com",
		"at 12:30:00 bob@host logged in",
		"/var/lib/exactly/sink.db",
	} {
		if got := Scrub(s); got != s {
			t.Errorf("Scrub(%q) = %q", s, got)
		}
	}
}

// Text from topics reaches the operator's terminal (stored errors, dead
// letters, topic names): a Writer shows its control characters as escapes
// and keeps only newlines, tabs and the progress line's ClearLine.
func TestWriterMakesControlCharactersInert(t *testing.T) {
	var buf bytes.Buffer
	w := Writer{W: &buf}
	evil := "dead letter: value \x1b]0;pwned\x07 \x1b[2J\x1b[1A hidden\rover \u009b31m\x7f end\n\tnext line"
	if _, err := w.Write([]byte(evil)); err != nil {
		t.Fatal(err)
	}
	got := buf.String()
	if strings.ContainsAny(got, "\x1b\x07\r\x7f\u009b") {
		t.Fatalf("control characters reached the terminal: %q", got)
	}
	for _, want := range []string{`\x1b]0;pwned\x07`, `\x1b[2J`, `hidden\x0dover`, `\u009b31m`, `\x7f end`, "\n\tnext line"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q: %q", want, got)
		}
	}
	buf.Reset()
	if _, err := w.Write([]byte(ClearLine + "verify 3/8 \x1b[31m")); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != ClearLine+`verify 3/8 \x1b[31m` {
		t.Fatalf("progress line: %q", got)
	}
}
