package metrics

import (
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/exactly/exactly"
)

// TestDashboardQueriesExistingMetrics: every metric the Grafana dashboard
// (examples/grafana/exactly-dashboard.json) queries is exported on
// /metrics, with the labels the dashboard groups by, so a renamed metric
// cannot leave a panel silently empty.
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	m := New("p", route)
	tp := exactly.TP{Topic: "shop.orders", Partition: 0}
	m.Assigned(map[exactly.TP]int64{tp: 0})
	m.Fetched(tp, 5, 20)
	b := &exactly.PartitionBatch{Topic: tp.Topic, Partition: tp.Partition, To: 5, Records: make([]*exactly.Record, 5)}
	m.Committed([]exactly.Outcome{{Batch: b, Committed: true}, {Batch: b, Err: errors.New("x")}}, time.Millisecond, time.Millisecond)
	m.Halted(tp, errors.New("halt"))
	m.Failed("db", "connection", errors.New("down"))
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	// name → the label names it carries
	exported := map[string]map[string]bool{}
	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? `)
	for _, line := range strings.Split(string(body), "\n") {
		mm := sample.FindStringSubmatch(line)
		if mm == nil {
			continue
		}
		if exported[mm[1]] == nil {
			exported[mm[1]] = map[string]bool{}
		}
		for _, kv := range strings.Split(mm[2], ",") {
			if k, _, ok := strings.Cut(kv, "="); ok {
				exported[mm[1]][k] = true
			}
		}
	}

	raw, err := os.ReadFile("../../examples/grafana/exactly-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	type query struct{ where, expr string }
	var queries []query
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries = append(queries, query{p.Title, tg.Expr})
		}
	}
	for _, v := range dash.Templating.List {
		if s, ok := v.Query.(string); ok && v.Type == "query" {
			queries = append(queries, query{"templating", s})
		}
	}
	name := regexp.MustCompile(`\b(exactly_[a-z_]+)\b`)
	by := regexp.MustCompile(`\bby \(([^)]*)\)\s*\(([^()]*\(?[^()]*)`)
	checked := 0
	for _, q := range queries {
		names := name.FindAllString(q.expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: %q queries no exactly metric", q.where, q.expr)
		}
		for _, n := range names {
			labels, ok := exported[n]
			if !ok {
				t.Errorf("%s: %q queries %s, which /metrics does not export", q.where, q.expr, n)
				continue
			}
			checked++
			if strings.Contains(q.expr, `pipeline=~"$pipeline"`) && !labels["pipeline"] {
				t.Errorf("%s: %s has no pipeline label", q.where, n)
			}
			for _, g := range by.FindAllStringSubmatch(q.expr, -1) {
				if !strings.Contains(g[2], n) {
					continue
				}
				for _, l := range strings.Split(g[1], ",") {
					if l = strings.TrimSpace(l); !labels[l] {
						t.Errorf("%s: %q groups %s by %s, a label it does not carry", q.where, q.expr, n, l)
					}
				}
			}
		}
	}
	if checked < 15 {
		t.Errorf("only %d metric references checked; the dashboard lost its panels?", checked)
	}
}
