// Package secret keeps passwords out of every output: logs at every level,
// errors, command output (text and JSON), the status page. Scrub masks the
// password of every DSN form it recognises (URLs, the MySQL driver's
// user:pass@tcp(host)/db, ADO/ODBC and libpq key=value strings, JSON
// "password" fields) and every secret value Register was told about (the
// configuration's DSN password, SASL and schema registry passwords), in the
// encodings an output may give them (URL, JSON, Go-quoted, HTML). Its rule:
// an output that could carry text from a DSN, a driver error or a
// configuration value goes through Scrub, a Writer or a Handler.
package secret

import (
	"encoding/json"
	"html"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Mask replaces a password; url.URL.Redacted uses the same.
const Mask = "xxxxx"

// minLen is the shortest registered secret that is masked wherever it
// appears; masking every "ab" in every log line would garble the output
// and tell the password anyway. Secrets of minWordLen to minLen-1
// characters are masked where they stand as a word of their own (not
// inside a longer run of letters and digits); shorter ones only where a
// DSN form puts them.
const (
	minLen     = 6
	minWordLen = 4
)

var (
	// scheme://user:PASSWORD@host — the password runs to the last @
	// before a /, so an unencoded @ in it is still covered.
	urlForm = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/"'<>]*:)([^\s@/]*(?:@[^\s@/]*)*)@`)
	// user:PASSWORD@tcp(host)/db, user:PASSWORD@unix(/s)/db,
	// user:PASSWORD@/db: the MySQL driver's form, which url.Parse reads as
	// a scheme "user" and leaves unredacted.
	mysqlForm = regexp.MustCompile(`(^|[\s"'=(,\[{])([^\s:@/"'(),\[\]{}]*:)(\S*?)@((?:tcp[46]?|unix|udp|pipe|memory)?\(|/)`)
	// user:PASSWORD@host:port/db with the scheme left out (a URL pasted
	// without "postgres://"): the password runs to the last @ before a
	// space or /, as in urlForm.
	bareForm = regexp.MustCompile(`(^|[\s"'=(,\[{])([^\s:@/"'(),\[\]{}]+:)([^\s@/]*(?:@[^\s@/]*)*)@([A-Za-z0-9\[])`)
	// ;Password=my secret pass; — ADO and ODBC values run to the next ; and
	// may hold spaces unquoted (go-mssqldb trims the ends). Only where the
	// key starts a ;-separated pair, so a libpq "password=x dbname=y" is
	// left to keyValueForm.
	adoForm = regexp.MustCompile(`(?i)((?:^|;|odbc:)\s*(?:password|pwd|passwd)\s*=\s*)([^;{'"\s][^;]*)`)
	// password=…, pwd=…, passwd=… in ADO, ODBC ({…}), libpq ('…') and
	// URL-query strings, any case.
	keyValueForm = regexp.MustCompile(`(?i)(\b(?:password|pwd|passwd)\s*=\s*)(\{(?:[^}]|\}\})*\}|'(?:[^'\\]|\\.|'')*'|"(?:[^"]|"")*"|[^;&\s]*)`)
	// "password": "…" in JSON.
	jsonForm = regexp.MustCompile(`(?i)("(?:password|pwd|passwd)"\s*:\s*)"(?:[^"\\]|\\.)*"`)

	// looseURL is scheme://user:PASSWORD@ with the password run to the
	// last @ before the query: a password holding @ # / ? or a space not
	// percent-encoded, which a driver misreads (part of it becomes the
	// host or the database and is quoted in its errors).
	looseURL = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/"'<>]*:(.*)@`)
	// looseMySQL is the MySQL driver's user:PASSWORD@net(addr)/db read as
	// the driver reads it: the password runs from the first : to the last
	// @ before net(addr)/db, and may hold spaces, @ and / unencoded.
	looseMySQL = regexp.MustCompile(`^[^\s:@/]*:(.*)@(?:(?:tcp[46]?|unix|udp|pipe|memory)?\([^()]*\))?/[^/]*$`)
	// looseKeyValue is an unquoted password=… run to the next key=, for a
	// libpq string whose password holds an unquoted space.
	looseKeyValue = regexp.MustCompile(`(?i)\b(?:password|pwd|passwd)\s*=\s*([^\s'"{;&][^;&]*?)\s*(?:\s[A-Za-z_][A-Za-z0-9_]*\s*=|[;&]|$)`)
	// delimiters split a loosely read password into the pieces a driver
	// may quote apart.
	delimiters = regexp.MustCompile(`[\s@#/?:]+`)
)

var (
	mu      sync.RWMutex
	known   = map[string]bool{}
	ordered []string // longest first, so a secret containing another is masked whole
	// replacer is rebuilt when a secret is registered.
	replacer *strings.Replacer
	// words are the secrets of minWordLen to minLen-1 characters, masked
	// only as words of their own (see maskWord).
	words []string
)

// Register adds secret values to mask wherever they appear. Values of 4
// or 5 characters are masked where they stand as a word; shorter ones are
// ignored (see minLen).
func Register(values ...string) {
	mu.Lock()
	defer mu.Unlock()
	changed := false
	for _, v := range values {
		if len(v) < minWordLen {
			continue
		}
		for _, form := range encodings(v) {
			switch {
			case known[form] || len(form) < minWordLen:
			case len(form) < minLen:
				known[form] = true
				words = append(words, form)
			default:
				known[form] = true
				ordered = append(ordered, form)
				changed = true
			}
		}
	}
	if !changed {
		return
	}
	sort.SliceStable(ordered, func(i, j int) bool { return len(ordered[i]) > len(ordered[j]) })
	pairs := make([]string, 0, 2*len(ordered))
	for _, s := range ordered {
		pairs = append(pairs, s, Mask)
	}
	replacer = strings.NewReplacer(pairs...)
}

// encodings are the forms an output may give a secret: as is, URL-encoded,
// JSON- and Go-quoted, HTML-escaped.
func encodings(v string) []string {
	j, _ := json.Marshal(v)
	q := strconv.Quote(v)
	return []string{v, url.QueryEscape(v), url.PathEscape(v), string(j[1 : len(j)-1]), q[1 : len(q)-1], html.EscapeString(v)}
}

// Scrub returns s with every password it recognises masked.
func Scrub(s string) string {
	if s == "" {
		return s
	}
	mu.RLock()
	r, w := replacer, words
	mu.RUnlock()
	if r != nil {
		s = r.Replace(s)
	}
	for _, word := range w {
		s = maskWord(s, word)
	}
	if strings.Contains(s, "@") {
		s = urlForm.ReplaceAllString(s, "${1}"+Mask+"@")
		s = mysqlForm.ReplaceAllString(s, "${1}${2}"+Mask+"@${4}")
		s = bareForm.ReplaceAllString(s, "${1}${2}"+Mask+"@${4}")
	}
	if strings.Contains(s, "=") {
		s = adoForm.ReplaceAllString(s, "${1}"+Mask)
		s = keyValueForm.ReplaceAllString(s, "${1}"+Mask)
	}
	if strings.Contains(s, `"`) {
		s = jsonForm.ReplaceAllString(s, `${1}"`+Mask+`"`)
	}
	return s
}

// maskWord masks each occurrence of word in s that is not part of a longer
// run of letters and digits: a 5-character password "k9#xq" is masked in
// "login k9#xq failed" but "abcd" is not masked inside "abcdef".
func maskWord(s, word string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, word)
		if i < 0 {
			break
		}
		end := i + len(word)
		if isWordByte(s, i-1) && isWordByte(word, 0) || isWordByte(s, end) && isWordByte(word, len(word)-1) {
			b.WriteString(s[:i+1])
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i])
		b.WriteString(Mask)
		s = s[end:]
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(s)
	return b.String()
}

// isWordByte reports whether s[i] is an ASCII letter or digit (false out
// of range).
func isWordByte(s string, i int) bool {
	if i < 0 || i >= len(s) {
		return false
	}
	c := s[i]
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// Error is err's text, scrubbed.
func Error(err error) string {
	if err == nil {
		return ""
	}
	return Scrub(err.Error())
}

// Passwords returns the passwords a DSN (or any text) holds in the forms
// Scrub recognises, unquoted, for Register.
func Passwords(s string) []string {
	var out []string
	for _, m := range urlForm.FindAllStringSubmatch(s, -1) {
		out = append(out, m[2])
		if p, err := url.PathUnescape(m[2]); err == nil && p != m[2] {
			out = append(out, p)
		}
	}
	for _, m := range mysqlForm.FindAllStringSubmatch(s, -1) {
		out = append(out, m[3])
	}
	for _, m := range bareForm.FindAllStringSubmatch(s, -1) {
		out = append(out, m[3])
		if p, err := url.PathUnescape(m[3]); err == nil && p != m[3] {
			out = append(out, p)
		}
	}
	// A careless DSN: the whole loosely read password and its pieces
	// (Register ignores those too short to mask).
	loose := func(p string) {
		if strings.ContainsAny(p, " \t@#/?:") {
			out = append(out, p)
			out = append(out, delimiters.Split(p, -1)...)
		}
	}
	prefix := s
	if at := strings.IndexByte(s, '@'); at >= 0 {
		if q := strings.IndexByte(s[at:], '?'); q >= 0 {
			prefix = s[:at+q]
		}
	}
	if m := looseURL.FindStringSubmatch(prefix); m != nil {
		loose(m[1])
	}
	if m := looseMySQL.FindStringSubmatch(s); m != nil {
		loose(m[1])
	}
	for _, m := range looseKeyValue.FindAllStringSubmatch(s, -1) {
		loose(m[1])
	}
	for _, m := range adoForm.FindAllStringSubmatch(s, -1) {
		out = append(out, strings.TrimSpace(m[2]))
	}
	for _, m := range keyValueForm.FindAllStringSubmatch(s, -1) {
		v := m[2]
		switch {
		case strings.HasPrefix(v, "{") && strings.HasSuffix(v, "}") && len(v) >= 2:
			v = strings.ReplaceAll(v[1:len(v)-1], "}}", "}")
		case strings.HasPrefix(v, "'") && strings.HasSuffix(v, "'") && len(v) >= 2:
			v = strings.NewReplacer(`\'`, `'`, `''`, `'`, `\\`, `\`).Replace(v[1 : len(v)-1])
		case strings.HasPrefix(v, `"`) && strings.HasSuffix(v, `"`) && len(v) >= 2:
			v = strings.ReplaceAll(v[1:len(v)-1], `""`, `"`)
		}
		out = append(out, v)
		if p, err := url.QueryUnescape(v); err == nil && p != v {
			out = append(out, p)
		}
	}
	return out
}
