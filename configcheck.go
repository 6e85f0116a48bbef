package exactly

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// checkDocument names every problem of the parsed (and expanded) document
// that decoding would either stop at or ignore: keys with no field (with
// the nearest field name), values of the wrong kind (a duration without a
// unit, a word where a number goes, a scalar where a list goes), each
// with its field path and line.
func checkDocument(n *yaml.Node, t reflect.Type, path, file string) []*ConfigError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode {
		var out []*ConfigError
		for _, c := range n.Content {
			out = append(out, checkDocument(c, t, path, file)...)
		}
		return out
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return checkDocument(n.Alias, t, path, file)
	}
	bad := func(problem string) []*ConfigError {
		field := path
		if field == "" {
			field = "configuration"
		}
		return []*ConfigError{{File: file, Line: n.Line, Field: field, Problem: problem}}
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil // an empty value: the default
	}
	if t == reflect.TypeFor[Duration]() {
		if n.Kind != yaml.ScalarNode {
			return bad("expected a duration like 500ms, 5s or 1m")
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			if s := suggestDuration(n.Value); s != "" {
				return bad(fmt.Sprintf("%q is not a duration; did you mean %q?", n.Value, s))
			}
			return bad(fmt.Sprintf("%q is not a duration like 500ms, 5s or 1m", n.Value))
		}
		return nil
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return bad("expected a mapping of " + strings.Join(fieldNames(t), ", "))
		}
		return checkFields(n, t, path, file)
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			if n.Kind == yaml.ScalarNode {
				return bad(fmt.Sprintf("%q is not a list; did you mean [%s]?", n.Value, n.Value))
			}
			return bad("expected a list")
		}
		var out []*ConfigError
		for i, c := range n.Content {
			out = append(out, checkDocument(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), file)...)
		}
		return out
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return bad("expected a mapping")
		}
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return bad("expected a single value, not a " + map[yaml.Kind]string{yaml.MappingNode: "mapping", yaml.SequenceNode: "list"}[n.Kind])
	}
	return checkScalar(n, t, bad)
}

// checkFields checks a mapping against the fields of struct t: an unknown
// key is named with the field it is nearest to, or the fields t takes.
func checkFields(n *yaml.Node, t reflect.Type, path, file string) []*ConfigError {
	fields := map[string]reflect.Type{}
	names := fieldNames(t)
	for i := 0; i < t.NumField(); i++ {
		if name, ok := yamlName(t.Field(i)); ok {
			fields[name] = t.Field(i).Type
		}
	}
	var out []*ConfigError
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ft, ok := fields[k.Value]
		if !ok {
			key := k.Value
			if key == "" {
				key = `""`
			}
			e := &ConfigError{File: file, Line: k.Line, Field: joinPath(path, key)}
			if near := nearest(k.Value, names); near != "" {
				e.Problem = "unknown field; did you mean " + near + "?"
			} else {
				where := path
				if where == "" {
					where = "the top level"
				}
				e.Problem = "unknown field; " + where + " takes " + strings.Join(names, ", ")
			}
			out = append(out, e)
			continue
		}
		out = append(out, checkDocument(n.Content[i+1], ft, joinPath(path, k.Value), file)...)
	}
	return out
}

// checkScalar checks that a scalar decodes into t, naming what t takes.
func checkScalar(n *yaml.Node, t reflect.Type, bad func(string) []*ConfigError) []*ConfigError {
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			return bad(fmt.Sprintf("%q is not a whole number", n.Value))
		case reflect.Float32, reflect.Float64:
			return bad(fmt.Sprintf("%q is not a number", n.Value))
		case reflect.Bool:
			return bad(fmt.Sprintf("%q is not true or false", n.Value))
		}
		return bad(fmt.Sprintf("%q: %v", n.Value, strings.TrimPrefix(err.Error(), "yaml: ")))
	}
	return nil
}

// yamlName is a struct field's key in the file; ok is false for fields
// that are not configured (unexported, yaml:"-").
func yamlName(f reflect.StructField) (string, bool) {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if !f.IsExported() || name == "-" {
		return "", false
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, true
}

func fieldNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if name, ok := yamlName(t.Field(i)); ok {
			names = append(names, name)
		}
	}
	return names
}

// nearest returns the field name closest to a misspelt key (at most two
// edits, a swap of neighbours counting one, and fewer than half its
// letters), or "".
func nearest(key string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		d := editDistance(strings.ToLower(key), n)
		if d < bestD && d*2 < max(len(n), len(key)) {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of adjacent letters.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

var durationWords = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Zµ]*)\s*$`)

// suggestDuration turns what a person may write for a duration into Go's
// form: 2 → 2s, "5 sec" → 5s, "1 minute" → 1m, "2hours" → 2h; "" when it
// cannot tell.
func suggestDuration(s string) string {
	m := durationWords.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	unit := strings.ToLower(m[2])
	for _, u := range []struct {
		to    string
		words []string
	}{
		{"s", []string{"", "s", "sec", "secs", "second", "seconds"}},
		{"ms", []string{"ms", "msec", "msecs", "millis", "millisecond", "milliseconds"}},
		{"m", []string{"m", "min", "mins", "minute", "minutes"}},
		{"h", []string{"h", "hr", "hrs", "hour", "hours"}},
	} {
		if slices.Contains(u.words, unit) {
			if _, err := time.ParseDuration(m[1] + u.to); err == nil {
				return m[1] + u.to
			}
		}
	}
	if unit == "d" || unit == "day" || unit == "days" {
		if n, err := strconv.ParseFloat(m[1], 64); err == nil {
			return strconv.FormatFloat(n*24, 'f', -1, 64) + "h"
		}
	}
	return ""
}

// lineOf finds the line of a field path (tables[1].mode) in the document,
// 0 when the file does not set it.
func lineOf(doc *yaml.Node, field string) int {
	n := doc
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(field, ".") {
		name, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			name = part[:i]
			v, err := strconv.Atoi(part[i+1 : len(part)-1])
			if err != nil {
				return line
			}
			idx = v
		}
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				line, n, found = n.Content[i].Line, n.Content[i+1], true
				break
			}
		}
		if !found {
			return line
		}
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}
