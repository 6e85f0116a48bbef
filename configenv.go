package exactly

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// envRef is ${NAME}, ${NAME:-default} or the escape $${ (a literal ${).
var envRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// unsetVar is one ${NAME} without a value, and the field and line it is in.
type unsetVar struct {
	name, field string
	line        int
}

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
				missing = append(missing, unsetVar{sub[1], path, n.Line})
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
