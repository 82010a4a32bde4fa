package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/gss-acceptor/gss-acceptor/internal/listener"
)

// The operator files in contrib/ that query these metrics.
var (
	alertsFile    = filepath.Join("..", "..", "contrib", "prometheus", "alerts.yaml")
	alertsTest    = filepath.Join("..", "..", "contrib", "prometheus", "alerts_test.yaml")
	dashboardFile = filepath.Join("..", "..", "contrib", "grafana", "gss-acceptor.json")
	metricsDoc    = filepath.Join("..", "..", "docs", "metrics.md")
)

// family is what a query may say about one gathered metric family.
type family struct {
	typ    dto.MetricType
	labels map[string]bool
	// derived marks a histogram's or summary's _bucket, _sum and _count
	// names, which are not families of their own.
	derived bool
}

// registryFamilies gathers every family the acceptor serves, with a
// snapshot and observations that give every vector a series, keyed by
// every name a query can use (a histogram's _bucket, _sum and _count).
// It fails when a family in docs/metrics.md's table has no series here,
// so that a vector without one cannot slip past the checks below.
func registryFamilies(t *testing.T) map[string]family {
	t.Helper()
	m := New(Options{Version: "devel", Snapshot: func() Snapshot {
		return Snapshot{
			Workers:     []Worker{{Slot: 0, PID: 1, Sessions: 1, Ready: true}},
			WorkerKills: map[string]int{"ack_timeout": 1},
		}
	}})
	m.ObserveHandshake("rejected", time.Millisecond, 0, 37)
	m.ObserveSession(Session{Backend: true, ExecStatus: "exit_0"})
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]family{}
	for _, mf := range mfs {
		f := family{typ: mf.GetType(), labels: map[string]bool{}}
		for _, s := range mf.GetMetric() {
			for _, lp := range s.GetLabel() {
				f.labels[lp.GetName()] = true
			}
		}
		out[mf.GetName()] = f
		switch f.typ {
		case dto.MetricType_HISTOGRAM:
			bucket := family{typ: f.typ, labels: map[string]bool{"le": true}, derived: true}
			for l := range f.labels {
				bucket.labels[l] = true
			}
			out[mf.GetName()+"_bucket"] = bucket
			f.derived = true
			out[mf.GetName()+"_sum"] = f
			out[mf.GetName()+"_count"] = f
		case dto.MetricType_SUMMARY:
			f.derived = true
			out[mf.GetName()+"_sum"] = f
			out[mf.GetName()+"_count"] = f
		}
	}
	doc, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(doc), "\n") {
		if name, ok := strings.CutPrefix(line, "| `"+namespace+"_"); ok {
			if i := strings.Index(name, "`"); i > 0 {
				if _, ok := out[namespace+"_"+name[:i]]; !ok {
					t.Fatalf("docs/metrics.md documents %s%s, which the fixture gathers no series of", namespace+"_", name[:i])
				}
			}
		}
	}
	return out
}

// baseName is the family a queried name belongs to: a histogram's
// _bucket, _sum and _count name their histogram.
func baseName(fams map[string]family, name string) string {
	if fams[name].derived {
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suf); ok {
				return b
			}
		}
	}
	return name
}

// ourFamilies lists the acceptor's own families the registry serves
// (gss_acceptor_*, not the Go runtime's or the process collector's).
func ourFamilies(fams map[string]family) []string {
	var out []string
	for n, f := range fams {
		if strings.HasPrefix(n, namespace+"_") && !f.derived {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

var (
	// metricRE finds the metric names in a PromQL expression: ours, the
	// Go runtime's and the process collector's (label names never start
	// so).
	metricRE = regexp.MustCompile(`\b((?:gss_acceptor|go|process)_[a-zA-Z0-9_]+)\b(\{[^}]*\})?`)
	// matcherRE is one label matcher in a selector.
	matcherRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
	// upRE is Prometheus' own scrape health series, the one other name the
	// files may use.
	upRE = regexp.MustCompile(`\bup\{`)
	// scrapeLabels are added by Prometheus to every series.
	scrapeLabels = map[string]bool{"instance": true, "job": true}
)

// checkExpr reports (with errorf) every metric in expr that the registry
// does not serve, every label it matches that the metric does not have,
// and every result of gss_acceptor_handshakes_total it names that
// listener.Results does not know. It returns the names it found.
func checkExpr(errorf func(string, ...any), where, expr string, fams map[string]family) []string {
	results := map[string]bool{}
	for _, r := range listener.Results() {
		results[string(r)] = true
	}
	var names []string
	for _, m := range metricRE.FindAllStringSubmatch(expr, -1) {
		name := m[1]
		names = append(names, name)
		f, ok := fams[name]
		if !ok {
			errorf("%s: metric %s is not served by the acceptor (expr %q)", where, name, expr)
			continue
		}
		for _, lm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
			label, op, value := lm[1], lm[2], lm[3]
			if !f.labels[label] && !scrapeLabels[label] {
				errorf("%s: %s has no label %q", where, name, label)
			}
			if name != "gss_acceptor_handshakes_total" || label != "result" || strings.HasPrefix(value, "$") {
				continue
			}
			values := []string{value}
			if op == "=~" || op == "!~" {
				values = strings.Split(value, "|")
			}
			for _, v := range values {
				if !results[v] {
					errorf("%s: %s{result%s%q}: %q is not a handshake result (listener.Results)", where, name, op, value, v)
				}
			}
		}
	}
	return names
}

// checkDocumented reports names of ours that docs/metrics.md does not list.
func checkDocumented(t *testing.T, where string, names []string) {
	t.Helper()
	doc, err := os.ReadFile(metricsDoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		base := n
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suf); ok && strings.Contains(string(doc), "`"+b+"`") {
				base = b
			}
		}
		if strings.HasPrefix(base, "gss_acceptor_") && !strings.Contains(string(doc), "`"+base+"`") {
			t.Errorf("%s: %s is not in docs/metrics.md", where, base)
		}
	}
}

// Every metric and label the alert rules query exists in the registry and
// in docs/metrics.md, and the rules cover the alerts the docs suggest.
func TestContribAlertsMetrics(t *testing.T) {
	fams := registryFamilies(t)
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	alerts := 0
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			alerts++
			names := checkExpr(t.Errorf, "alert "+r.Alert, r.Expr, fams)
			if len(names) == 0 && !upRE.MatchString(r.Expr) {
				t.Errorf("alert %s queries no metric of the acceptor: %q", r.Alert, r.Expr)
			}
			checkDocumented(t, "alert "+r.Alert, names)
			for _, n := range names {
				used[n] = true
			}
		}
	}
	if alerts < 10 {
		t.Errorf("%d alerts in %s", alerts, alertsFile)
	}
	// What docs/metrics.md and docs/operations.md tell operators to alert on.
	for _, n := range []string{
		"gss_acceptor_handshakes_total",
		"gss_acceptor_handshake_krb_errors_total",
		"gss_acceptor_config_last_reload_successful",
		"gss_acceptor_worker_restarts_total",
		"gss_acceptor_worker_kills_total",
		"gss_acceptor_workers",
		"gss_acceptor_workers_desired",
		"gss_acceptor_replay_cache_errors_total",
		"gss_acceptor_replay_cache_fallbacks_total",
		"gss_acceptor_accept_errors_total",
		"gss_acceptor_connections_shed_total",
		"gss_acceptor_sessions_total",
		"gss_acceptor_backend_connect_failures_total",
		"gss_acceptor_exec_exits_total",
	} {
		if !used[n] {
			t.Errorf("no alert uses %s", n)
		}
	}
}

// The checker itself catches what it is for: a misspelt metric, a label
// the metric lacks, and a handshake result that does not exist; and it
// passes a valid histogram query.
func TestContribCheckExprCatches(t *testing.T) {
	fams := registryFamilies(t)
	for expr, want := range map[string]string{
		`rate(gss_acceptor_handshake_total[5m])`:                                            "metric gss_acceptor_handshake_total is not served",
		`gss_acceptor_workers{reason="x"}`:                                                  `gss_acceptor_workers has no label "reason"`,
		`increase(gss_acceptor_handshakes_total{result=~"pending_full|source_limits"}[5m])`: `"source_limits" is not a handshake result`,
	} {
		var errs []string
		checkExpr(func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }, "test", expr, fams)
		if len(errs) != 1 || !strings.Contains(errs[0], want) {
			t.Errorf("checkExpr(%q): %q, want one error with %q", expr, errs, want)
		}
	}
	var errs []string
	valid := `histogram_quantile(0.99, sum by (le) (rate(gss_acceptor_handoff_duration_seconds_bucket{job="x"}[5m])))`
	checkExpr(func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }, "test", valid, fams)
	if len(errs) != 0 {
		t.Errorf("checkExpr refused a valid expression: %q", errs)
	}
}

// promtool (Debian's prometheus package, installed by scripts/install-deps)
// accepts the rules, and their unit tests pass: the alerts fire on the
// series they are meant for and not otherwise.
func TestContribAlertRules(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Fatalf("promtool is not installed (scripts/install-deps installs the prometheus package): %v", err)
	}
	for _, argv := range [][]string{
		{"promtool", "check", "rules", filepath.Base(alertsFile)},
		{"promtool", "test", "rules", filepath.Base(alertsTest)},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = filepath.Dir(alertsFile)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
}

// queries collects the PromQL of a Grafana dashboard: every "expr"
// (targets, annotations), and the string "query" and "definition" of its
// template variables.
func queries(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok {
				if k == "expr" || k == "query" || k == "definition" {
					*out = append(*out, s)
				}
				continue
			}
			queries(e, out)
		}
	case []any:
		for _, e := range v {
			queries(e, out)
		}
	}
}

// The Grafana dashboard is well formed (unique panel ids, every panel with
// a title, the data source variable and a query, laid out on the 24-column
// grid without overlaps), every metric and label it queries exists in the
// registry and docs/metrics.md, and it shows every family of the
// acceptor's that the registry serves (the list comes from the registry,
// so a new metric fails here until it has a panel).
func TestContribDashboard(t *testing.T) {
	fams := registryFamilies(t)
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			GridPos struct{ H, W, X, Y int } `json:"gridPos"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Errorf("dashboard title %q, uid %q", dash.Title, dash.UID)
	}
	ids := map[int]bool{}
	type rect struct{ x, y, w, h int }
	var placed []rect
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		r := rect{g.X, g.Y, g.W, g.H}
		if r.w <= 0 || r.h <= 0 || r.x < 0 || r.x+r.w > 24 {
			t.Errorf("panel %q: gridPos %+v is off the 24-column grid", p.Title, g)
		}
		for _, o := range placed {
			if r.x < o.x+o.w && o.x < r.x+r.w && r.y < o.y+o.h && o.y < r.y+r.h {
				t.Errorf("panel %q at %+v overlaps another at %+v", p.Title, r, o)
			}
		}
		placed = append(placed, r)
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source %q, want the ${datasource} variable", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
		}
	}
	var all any
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	var qs []string
	queries(all, &qs)
	used := map[string]bool{}
	for _, q := range qs {
		names := checkExpr(t.Errorf, "dashboard", q, fams)
		checkDocumented(t, "dashboard", names)
		for _, n := range names {
			used[baseName(fams, n)] = true
		}
	}
	checkPromQL(t, qs)
	ours := ourFamilies(fams)
	if len(ours) < 29 {
		t.Fatalf("the registry serves only %d gss_acceptor_ families: %q", len(ours), ours)
	}
	for _, n := range ours {
		if !used[n] {
			t.Errorf("the dashboard shows nothing of %s", n)
		}
	}
}

// checkPromQL has promtool parse each query (with Grafana's variables
// replaced by values), as the expression of a recording rule.
func checkPromQL(t *testing.T, qs []string) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Fatalf("promtool is not installed (scripts/install-deps installs the prometheus package): %v", err)
	}
	vars := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range qs {
		if strings.HasPrefix(q, "label_values(") || q == "prometheus" {
			continue // a template variable's query, not PromQL
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query:%d", i), Expr: vars.Replace(q)})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("promtool", "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
}
