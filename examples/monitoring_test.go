// Package examples_test checks the monitoring examples against the code:
// every likes_ metric and label the Grafana dashboard and the Prometheus
// alert rules use is one the code defines, the dashboard covers every
// metric family the operations issue asks for, and both files are well
// formed.
package examples_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	metricDef  = regexp.MustCompile(`Name:\s*"(likes_[a-z0-9_]+)"`)
	labelDef   = regexp.MustCompile(`\[\]string\{((?:"[a-z_]+",?\s*)+)\}`)
	metricUse  = regexp.MustCompile(`\blikes_[a-z0-9_]+\b`)
	byClause   = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	matcher    = regexp.MustCompile(`([a-z_]+)\s*(?:=~|!~|!=|=)\s*"`)
	quoted     = regexp.MustCompile(`"[^"]*"`)
	labelQuote = regexp.MustCompile(`"([a-z_]+)"`)
)

// codeMetrics returns the likes_ metric names and the label names defined in
// the module's non-test Go files.
func codeMetrics(t *testing.T) (metrics, labels map[string]bool) {
	t.Helper()
	metrics, labels = map[string]bool{}, map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && d.Name() != "..") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		src := string(b)
		ms := metricDef.FindAllStringSubmatch(src, -1)
		for _, m := range ms {
			metrics[m[1]] = true
		}
		if len(ms) > 0 {
			for _, l := range labelDef.FindAllStringSubmatch(src, -1) {
				for _, q := range labelQuote.FindAllStringSubmatch(l[1], -1) {
					labels[q[1]] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(metrics) < 20 {
		t.Fatalf("found %d likes_ metrics in the code, want the full set (is the walk broken?)", len(metrics))
	}
	// Labels Prometheus adds, and the histogram bucket label.
	for _, l := range []string{"le", "job", "instance", "pod", "namespace"} {
		labels[l] = true
	}
	return metrics, labels
}

// checkExpr reports likes_ metrics and labels in expr that the code does
// not define, and unbalanced brackets.
func checkExpr(t *testing.T, where, expr string, metrics, labels map[string]bool) {
	t.Helper()
	if strings.TrimSpace(expr) == "" {
		t.Errorf("%s: empty expression", where)
		return
	}
	bare := quoted.ReplaceAllString(expr, `""`)
	if strings.Count(expr, `"`)%2 != 0 {
		t.Errorf("%s: unbalanced quotes in %q", where, expr)
	}
	for _, p := range []string{"()", "{}", "[]"} {
		depth := 0
		for _, r := range bare {
			switch r {
			case rune(p[0]):
				depth++
			case rune(p[1]):
				depth--
			}
			if depth < 0 {
				break
			}
		}
		if depth != 0 {
			t.Errorf("%s: unbalanced %s in %q", where, p, expr)
		}
	}
	for _, m := range metricUse.FindAllString(bare, -1) {
		base := m
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if !metrics[base] && strings.HasSuffix(base, suf) {
				base = strings.TrimSuffix(base, suf)
			}
		}
		if !metrics[base] {
			t.Errorf("%s: metric %s is not defined in the code", where, m)
		}
	}
	for _, b := range byClause.FindAllStringSubmatch(bare, -1) {
		for _, l := range strings.Split(b[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !labels[l] {
				t.Errorf("%s: label %s in %q is not defined in the code", where, l, b[0])
			}
		}
	}
	for _, m := range matcher.FindAllStringSubmatch(expr, -1) {
		if !labels[m[1]] {
			t.Errorf("%s: label %s is not defined in the code", where, m[1])
		}
	}
}

type panel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Datasource  *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
}

func TestGrafanaDashboard(t *testing.T) {
	metrics, labels := codeMetrics(t)
	raw, err := os.ReadFile("grafana/likes.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title      string  `json:"title"`
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name, Type string
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("likes.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatalf("got title %q uid %q and %d panels, want all three", d.Title, d.UID, len(d.Panels))
	}
	if !slices.ContainsFunc(d.Templating.List, func(v struct{ Name, Type string }) bool {
		return v.Name == "datasource" && v.Type == "datasource"
	}) {
		t.Fatalf("want a datasource variable, so the dashboard imports into any Grafana")
	}
	used := map[string]bool{}
	ids := map[int]bool{}
	var boxes []panel
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: duplicate id %d", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" {
			t.Errorf("panel %d: no title", p.ID)
		}
		if g := p.GridPos; g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for _, q := range boxes {
			a, b := p.GridPos, q.GridPos
			if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				t.Errorf("panels %q and %q overlap", p.Title, q.Title)
			}
		}
		boxes = append(boxes, p)
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: want datasource ${datasource}", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries", p.Title)
		}
		for _, tg := range p.Targets {
			checkExpr(t, "panel "+p.Title, tg.Expr, metrics, labels)
			for _, m := range metricUse.FindAllString(tg.Expr, -1) {
				used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")] = true
			}
		}
	}

	// What the operations issue asks to see.
	for _, m := range []string{
		"likes_http_requests_total", "likes_http_request_seconds", // requests by route and status, latency
		"likes_dedup_decisions_total",                                          // dedup decisions by layer
		"likes_coalescer_log_batch_events", "likes_redis_counter_writes_total", // flush sizes and intervals
		"likes_kafka_publish_seconds", "likes_kafka_publish_errors_total", // Kafka latency and errors
		"likes_redis_counter_flush_seconds", "likes_redis_counter_flush_errors_total", // Redis latency and errors
		"likes_redis_count_read_seconds", "likes_redis_count_read_errors_total",
		"likes_pending_events", "likes_shed_total", // pending work, shed requests
		"likes_consumer_lag", "likes_consumer_batch_records", "likes_consumer_transaction_seconds", // consumer
		"likes_count_staleness_seconds",
		// Likes answered through Envoy ext_proc never reach the HTTP
		// metrics above: an Envoy deployment sees its traffic only here.
		"likes_extproc_requests_total", "likes_extproc_request_seconds",
	} {
		if !used[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

// promDuration matches Prometheus' duration syntax (e.g. 30s, 5m, 1h30m).
var promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

func TestPrometheusAlerts(t *testing.T) {
	metrics, labels := codeMetrics(t)
	raw, err := os.ReadFile("prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	if len(f.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	names := map[string]bool{}
	var exprs []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	// The like API's error rate is alerted on for both transports: ext_proc
	// answers are counted only in likes_extproc_requests_total.
	for _, m := range []string{"likes_http_requests_total", "likes_extproc_requests_total"} {
		if !slices.ContainsFunc(exprs, func(e string) bool { return strings.Contains(e, m) }) {
			t.Errorf("no alert uses %s", m)
		}
	}
	// likes_dedup_shared_up is registered, at 0, also with
	// dedup.shared_mode=off: an alert on it alone would fire forever on
	// every pod that turned the shared filter off.
	for _, e := range exprs {
		if strings.Contains(e, "likes_dedup_shared_up") && !strings.Contains(e, "likes_dedup_shared_errors_total") {
			t.Errorf("alert %q: likes_dedup_shared_up is 0 with dedup.shared_mode=off; require failing checks (likes_dedup_shared_errors_total) too", e)
		}
	}
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: want a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			where := "alert " + r.Alert
			if !regexp.MustCompile(`^Likes[A-Z][A-Za-z]+$`).MatchString(r.Alert) || names[r.Alert] {
				t.Errorf("%s: want a unique CamelCase name starting with Likes", where)
			}
			names[r.Alert] = true
			checkExpr(t, where, r.Expr, metrics, labels)
			if r.For != "" && !promDuration.MatchString(r.For) {
				t.Errorf("%s: for %q is not a Prometheus duration", where, r.For)
			}
			if d, err := time.ParseDuration(r.For); r.For != "" && err == nil && d > time.Hour {
				t.Errorf("%s: for %s: an alert that waits over an hour is not an alert", where, r.For)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("%s: severity %q, want critical, warning or info", where, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: want summary and description annotations", where)
			}
			for _, a := range r.Annotations {
				if strings.Count(a, "{{") != strings.Count(a, "}}") {
					t.Errorf("%s: unbalanced template in %q", where, a)
				}
			}
		}
	}
}
