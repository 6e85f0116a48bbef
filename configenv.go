package exactly

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// envRef is ${NAME}, ${NAME:-default} or the escape $${ (a literal ${).
var envRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// unsetVar is one ${NAME} without a value, and the field it is in.
type unsetVar struct{ name, field string }

// expandEnv replaces ${NAME} and ${NAME:-default} inside the scalar values
// of the parsed document, never in the YAML text: a value from the
// environment is data, so a password holding YAML syntax (*Zq9, "ab #cd",
// "a, b: c", a newline) can neither change the structure nor be cut short.
// Keys are not expanded. It returns every unset variable with its field.
func expandEnv(doc *yaml.Node, lookup func(string) (string, bool)) []unsetVar {
	var missing []unsetVar
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				walk(n.Content[i+1], joinPath(path, n.Content[i].Value))
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		case yaml.ScalarNode:
			if !strings.Contains(n.Value, "${") {
				return
			}
			plain := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 && n.Style&yaml.TaggedStyle == 0
			n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
				if m == "$${" {
					return "${"
				}
				sub := envRef.FindStringSubmatch(m)
				if v, ok := lookup(sub[1]); ok && (v != "" || !strings.Contains(m, ":-")) {
					return v
				}
				if strings.Contains(m, ":-") {
					return sub[2]
				}
				missing = append(missing, unsetVar{sub[1], path})
				return ""
			})
			// A plain ${N} that expands to a number or a boolean stays one
			// (max_conns: ${CONNS}); anything else is a string, whatever
			// it looks like: a password "null", "~" or "2026-01-02" must
			// not become nothing or a date.
			n.Tag = ""
			if t := n.ShortTag(); !plain || (t != "!!int" && t != "!!float" && t != "!!bool") {
				n.Tag, n.Style = "!!str", yaml.DoubleQuotedStyle
			}
		}
	}
	walk(doc, "")
	return missing
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// unknownFields names every mapping key of the document that has no field
// in the configuration types (yaml.v3's KnownFields only applies to a
// Decoder reading text, and the expanded document is decoded from nodes).
func unknownFields(n *yaml.Node, t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode {
		var out []string
		for _, c := range n.Content {
			out = append(out, unknownFields(c, t, path)...)
		}
		return out
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		return unknownFields(n.Alias, t, path)
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
		return nil
	}
	var out []string
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := map[string]reflect.Type{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fields[name] = f.Type
			names = append(names, name)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			if !ok {
				out = append(out, "line "+strconv.Itoa(k.Line)+": unknown field "+joinPath(path, k.Value)+" (expected one of "+strings.Join(names, ", ")+")")
				continue
			}
			out = append(out, unknownFields(n.Content[i+1], ft, joinPath(path, k.Value))...)
		}
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		for i, c := range n.Content {
			out = append(out, unknownFields(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return out
}
