package main

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/spf13/pflag"

	"github.com/exactly/exactly"
)

// selector narrows a command to some topics and tables: --topic and
// --table take shell patterns (path.Match: * ? [a-z]), comma-separated or
// repeated; a partition matches when its topic matches one --topic pattern
// (if any) and its table one --table pattern (if any). With 800 topics,
// `status --table 'sales_*'` is a screen, not a book.
type selector struct {
	topics, tables []string
	// more names other flags that narrow the selection (replay's
	// --partition), for messages.
	more string
}

func (s *selector) flags(f *pflag.FlagSet, what string) {
	f.StringSliceVar(&s.topics, "topic", nil, "only topics matching these shell patterns (e.g. 'cdc.sales.*'); "+what)
	f.StringSliceVar(&s.tables, "table", nil, "only topics whose table matches these shell patterns (e.g. 'orders_*')")
}

// check refuses malformed patterns up front, naming the flag.
func (s *selector) check() error {
	for _, l := range []struct {
		flag string
		pats []string
	}{{"--topic", s.topics}, {"--table", s.tables}} {
		for _, p := range l.pats {
			if _, err := path.Match(p, ""); err != nil {
				return usage(fmt.Errorf("%s %q: %w (patterns use * ? and [a-z])", l.flag, p, err))
			}
		}
	}
	return nil
}

func (s *selector) empty() bool { return len(s.topics) == 0 && len(s.tables) == 0 }

func matchAny(pats []string, name string) bool {
	if len(pats) == 0 {
		return true
	}
	for _, p := range pats {
		if ok, _ := path.Match(strings.TrimSpace(p), name); ok {
			return true
		}
	}
	return false
}

// match reports whether a topic (routed to table by the configuration;
// "" when no rule matches) is selected.
func (s *selector) match(topic, table string) bool {
	return matchAny(s.topics, topic) && (len(s.tables) == 0 || (table != "" && matchAny(s.tables, table)))
}

// matchTopic routes the topic through cfg and matches it.
func (s *selector) matchTopic(cfg *exactly.Config, topic string) bool {
	_, table, _ := cfg.Route(topic)
	return s.match(topic, table)
}

// String renders the selection as the flags that made it, for messages.
func (s *selector) String() string {
	var parts []string
	for _, p := range s.topics {
		parts = append(parts, "--topic '"+p+"'")
	}
	for _, p := range s.tables {
		parts = append(parts, "--table '"+p+"'")
	}
	if s.more != "" {
		parts = append(parts, s.more)
	}
	return strings.Join(parts, " ")
}

// filter keeps the partitions whose topic (and table, routed through cfg)
// the selection matches.
func (s *selector) filter(cfg *exactly.Config, tps []exactly.TP) []exactly.TP {
	if s.empty() {
		return tps
	}
	out := tps[:0:0]
	for _, tp := range tps {
		if s.matchTopic(cfg, tp.Topic) {
			out = append(out, tp)
		}
	}
	return out
}

// matchedNothing is the usage error for a selection that matches none of
// the partitions a command looked at (what: "the ledger and Kafka hold"):
// most often a typo, and printing an empty table would hide it.
func (s *selector) matchedNothing(what string, among []exactly.TP) error {
	topics := map[string]bool{}
	var names []string
	for _, tp := range among {
		if !topics[tp.Topic] {
			topics[tp.Topic] = true
			names = append(names, tp.Topic)
		}
	}
	msg := fmt.Sprintf("%s matches none of the %d partitions %s", s, len(among), what)
	if len(names) > 0 {
		const show = 5
		if len(names) > show {
			msg += fmt.Sprintf(" (topics %s and %d more)", strings.Join(names[:show], ", "), len(names)-show)
		} else {
			msg += " (topics " + strings.Join(names, ", ") + ")"
		}
	}
	return usage(errors.New(msg + "; --topic matches topic names, --table the tables the rules map them to, with * ? and [a-z]"))
}
