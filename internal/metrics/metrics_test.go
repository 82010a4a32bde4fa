package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gss-acceptor/gss-acceptor/internal/listener"
)

// gathered returns the value of the sample of family name whose labels
// include all of want, and whether it exists.
func gathered(t *testing.T, m *Metrics, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, s := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range s.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue next
				}
			}
			return value(s), true
		}
	}
	return 0, false
}

// toFloat64 reads the value of one counter or gauge.
func toFloat64(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		t.Fatal(err)
	}
	return value(&d)
}

// countSeries counts the series a collector has.
func countSeries(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 64)
	go func() { c.Collect(ch); close(ch) }()
	n := 0
	for range ch {
		n++
	}
	return n
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Histogram != nil:
		return float64(s.Histogram.GetSampleCount())
	}
	return -1
}

func TestObserveHandshake(t *testing.T) {
	type obs struct {
		result             listener.Result
		handshake, handoff time.Duration
		krb                int32
	}
	tests := []struct {
		name       string
		obs        []obs
		results    map[string]float64 // handshakes_total by result
		krb        map[string]float64 // handshake_krb_errors_total by code
		histograms uint64             // observations in each duration histogram
	}{
		{"nothing yet: known results exported at zero", nil,
			map[string]float64{"ok": 0, "rejected": 0, "timeout": 0, "handshake_limit": 0}, nil, 0},
		{"two ok", []obs{{"ok", time.Millisecond, 200 * time.Microsecond, 0}, {"ok", 2 * time.Millisecond, time.Millisecond, 0}},
			map[string]float64{"ok": 2, "rejected": 0}, nil, 2},
		{"rejections by code", []obs{{"rejected", time.Millisecond, 0, 37}, {"rejected", time.Millisecond, 0, 44}, {"rejected", 0, 0, 37}},
			map[string]float64{"rejected": 3, "ok": 0}, map[string]float64{"37": 2, "44": 1}, 0},
		{"out-of-range code is other", []obs{{"rejected", 0, 0, 100000}, {"rejected", 0, 0, -5}},
			map[string]float64{"rejected": 2}, map[string]float64{"other": 2}, 0},
		{"failed handoff has both durations", []obs{{"handoff_failed", time.Millisecond, time.Second, 0}},
			map[string]float64{"handoff_failed": 1}, nil, 1},
		{"timeout and new reason", []obs{{"timeout", 10 * time.Second, 0, 0}, {"export_failed", 0, 0, 0}, {"", 0, 0, 0}},
			map[string]float64{"timeout": 1, "export_failed": 1, "error": 1}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(Options{Version: "v1.2.3"})
			for _, o := range tt.obs {
				m.ObserveHandshake(o.result, o.handshake, o.handoff, o.krb)
			}
			for r, want := range tt.results {
				if got := toFloat64(t, m.handshakes.WithLabelValues(r)); got != want {
					t.Errorf("handshakes_total{result=%q} = %v, want %v", r, got, want)
				}
			}
			if got, want := countSeries(m.krbErrors), len(tt.krb); got != want {
				t.Errorf("%d krb error series, want %d", got, want)
			}
			for c, want := range tt.krb {
				if got := toFloat64(t, m.krbErrors.WithLabelValues(c)); got != want {
					t.Errorf("handshake_krb_errors_total{code=%q} = %v, want %v", c, got, want)
				}
			}
			for _, h := range []string{"gss_acceptor_handshake_duration_seconds", "gss_acceptor_handoff_duration_seconds"} {
				if got, _ := gathered(t, m, h, nil); got != float64(tt.histograms) {
					t.Errorf("%s has %v observations, want %d", h, got, tt.histograms)
				}
			}
		})
	}
}

// The handshake results exported at zero before any connection are a
// fixed set (dashboards and alerts rely on them); they are listener
// results.
func TestHandshakeResultsAtZero(t *testing.T) {
	m := New(Options{})
	want := []string{"ok", "rejected", "timeout", "client_closed", "bad_frame", "too_large", "handoff_failed", "handshake_limit",
		"pending_full", "source_limit", "first_frame_timeout"}
	if got := countSeries(m.handshakes); got != len(want) {
		t.Errorf("%d handshakes_total series at start, want %d", got, len(want))
	}
	known := map[listener.Result]bool{}
	for _, r := range listener.Results() {
		known[r] = true
	}
	for _, r := range want {
		if v, ok := gathered(t, m, "gss_acceptor_handshakes_total", map[string]string{"result": r}); !ok || v != 0 {
			t.Errorf("handshakes_total{result=%q} = %v (exported: %v), want 0", r, v, ok)
		}
		if !known[listener.Result(r)] {
			t.Errorf("%q is not a listener.Result", r)
		}
	}
}

func TestObserveSession(t *testing.T) {
	m := New(Options{})
	m.ObserveSession(Session{OK: true, Duration: time.Second, MessagesIn: 4, MessagesOut: 3, BytesIn: 400, BytesOut: 120})
	m.ObserveSession(Session{OK: true, Duration: time.Millisecond, MessagesIn: 1, BytesIn: 5})
	m.ObserveSession(Session{OK: false, MessagesIn: 2, MessagesOut: 2, BytesIn: 10, BytesOut: 20})
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"ok sessions", "gss_acceptor_sessions_total", map[string]string{"result": "ok"}, 2},
		{"failed sessions", "gss_acceptor_sessions_total", map[string]string{"result": "error"}, 1},
		{"messages in", "gss_acceptor_session_messages_total", map[string]string{"direction": "in"}, 7},
		{"messages out", "gss_acceptor_session_messages_total", map[string]string{"direction": "out"}, 5},
		{"bytes in", "gss_acceptor_session_bytes_total", map[string]string{"direction": "in"}, 415},
		{"bytes out", "gss_acceptor_session_bytes_total", map[string]string{"direction": "out"}, 140},
		{"durations observed", "gss_acceptor_session_duration_seconds", nil, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := gathered(t, m, tt.metric, tt.labels)
			if !ok || got != tt.want {
				t.Errorf("%s%v = %v (present %v), want %v", tt.metric, tt.labels, got, ok, tt.want)
			}
		})
	}
}

// Backend sessions feed the backend families; a gss-sample session
// (Backend false) leaves them alone, whatever else it carries.
func TestObserveBackendSession(t *testing.T) {
	m := New(Options{})
	m.ObserveSession(Session{OK: true, Backend: true, ToBackend: 100, FromBackend: 2000, Connect: "ok", ConnectDuration: 300 * time.Microsecond})
	m.ObserveSession(Session{OK: true, Backend: true, ToBackend: 5, FromBackend: 7, Connect: "ok", ConnectDuration: 2 * time.Millisecond})
	m.ObserveSession(Session{Backend: true, Connect: "refused", ConnectDuration: time.Millisecond})
	m.ObserveSession(Session{Backend: true, Connect: "timeout", ConnectDuration: 5 * time.Second})
	m.ObserveSession(Session{Backend: true, Connect: "unreachable"})
	m.ObserveSession(Session{Backend: true, Connect: "bogus"})
	m.ObserveSession(Session{OK: true, Backend: true, ToBackend: 10, FromBackend: 20, ExecStatus: "exit_0"})
	m.ObserveSession(Session{Backend: true, ExecStatus: "exit_3"})
	m.ObserveSession(Session{Backend: true, ExecStatus: "signal_SIGTERM"})
	m.ObserveSession(Session{Backend: true, ExecStatus: "exit_0"})
	m.ObserveSession(Session{OK: true, ToBackend: 1 << 20, Connect: "refused", ExecStatus: "exit_9"}) // gss-sample
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"to backend", "gss_acceptor_backend_bytes_total", map[string]string{"direction": "client_to_backend"}, 115},
		{"from backend", "gss_acceptor_backend_bytes_total", map[string]string{"direction": "backend_to_client"}, 2027},
		{"refused", "gss_acceptor_backend_connect_failures_total", map[string]string{"reason": "refused"}, 1},
		{"unreachable", "gss_acceptor_backend_connect_failures_total", map[string]string{"reason": "unreachable"}, 1},
		{"timeout", "gss_acceptor_backend_connect_failures_total", map[string]string{"reason": "timeout"}, 1},
		{"connects observed", "gss_acceptor_backend_connect_duration_seconds", nil, 2},
		{"exit 0", "gss_acceptor_exec_exits_total", map[string]string{"status": "exit_0"}, 2},
		{"exit 3", "gss_acceptor_exec_exits_total", map[string]string{"status": "exit_3"}, 1},
		{"SIGTERM", "gss_acceptor_exec_exits_total", map[string]string{"status": "signal_SIGTERM"}, 1},
		{"sessions", "gss_acceptor_sessions_total", map[string]string{"result": "ok"}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := gathered(t, m, tt.metric, tt.labels)
			if !ok || got != tt.want {
				t.Errorf("%s%v = %v (present %v), want %v", tt.metric, tt.labels, got, ok, tt.want)
			}
		})
	}
	if _, ok := gathered(t, m, "gss_acceptor_exec_exits_total", map[string]string{"status": "exit_9"}); ok {
		t.Error("a gss-sample session counted an exec exit")
	}
	if _, ok := gathered(t, m, "gss_acceptor_backend_connect_failures_total", map[string]string{"reason": "bogus"}); ok {
		t.Error("an unknown connect result became a label value")
	}
	var sum float64
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "gss_acceptor_backend_connect_duration_seconds" {
			sum = mf.GetMetric()[0].GetHistogram().GetSampleSum()
		}
	}
	if sum < 0.0022 || sum > 0.0024 {
		t.Errorf("connect duration sum %v s, want 0.0023 (successful connects only)", sum)
	}
}

// The connect failure reasons are exported at 0 before any failure, so
// that rate() and alerts work from the first scrape.
func TestBackendFailuresAtZero(t *testing.T) {
	m := New(Options{})
	for _, r := range []string{"refused", "unreachable", "timeout"} {
		if v, ok := gathered(t, m, "gss_acceptor_backend_connect_failures_total", map[string]string{"reason": r}); !ok || v != 0 {
			t.Errorf("reason %q: %v (present %v), want 0", r, v, ok)
		}
	}
	for _, d := range []string{"client_to_backend", "backend_to_client"} {
		if v, ok := gathered(t, m, "gss_acceptor_backend_bytes_total", map[string]string{"direction": d}); !ok || v != 0 {
			t.Errorf("direction %q: %v (present %v), want 0", d, v, ok)
		}
	}
}

// TestMetricsDocumented fails when a family is added without a row in
// docs/metrics.md's metric table, or a row names a family that is gone.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if name, ok := strings.CutPrefix(line, "| `"+namespace+"_"); ok {
			if i := strings.Index(name, "`"); i > 0 {
				rows[namespace+"_"+name[:i]] = true
			}
		}
	}
	// Every family with a series: labelled ones get one observation.
	m := New(Options{Snapshot: func() Snapshot {
		return Snapshot{Workers: []Worker{{PID: 1, Ready: true}}, WorkerKills: map[string]int{"ack_timeout": 1}}
	}})
	m.ObserveHandshake("rejected", time.Millisecond, 0, 37)
	m.ObserveSession(Session{Backend: true, ExecStatus: "exit_0"})
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	families := map[string]bool{}
	for _, mf := range mfs {
		if name := mf.GetName(); strings.HasPrefix(name, namespace+"_") {
			families[name] = true
			if !rows[name] {
				t.Errorf("docs/metrics.md has no row for %s", name)
			}
		}
	}
	for name := range rows {
		if !families[name] {
			t.Errorf("docs/metrics.md documents %s, which is not exported", name)
		}
	}
}

func TestObserveReload(t *testing.T) {
	m := New(Options{})
	start := toFloat64(t, m.reloadTimestamp)
	if start <= 0 || toFloat64(t, m.reloadOK) != 1 {
		t.Fatalf("fresh: timestamp %v, successful %v", start, toFloat64(t, m.reloadOK))
	}
	m.ObserveReload(false)
	if toFloat64(t, m.reloadOK) != 0 || toFloat64(t, m.reloads.WithLabelValues("refused")) != 1 {
		t.Error("a refused reload is not recorded")
	}
	if toFloat64(t, m.reloadTimestamp) != start {
		t.Error("a refused reload moved the success timestamp")
	}
	time.Sleep(10 * time.Millisecond)
	m.ObserveReload(true)
	if toFloat64(t, m.reloadOK) != 1 || toFloat64(t, m.reloads.WithLabelValues("ok")) != 1 {
		t.Error("an applied reload is not recorded")
	}
	if toFloat64(t, m.reloadTimestamp) <= start {
		t.Error("an applied reload did not move the success timestamp")
	}
}

// The state gauges come from the snapshot at each scrape: a worker that
// is gone leaves no series.
func TestStateCollector(t *testing.T) {
	var mu sync.Mutex
	snap := Snapshot{
		Workers: []Worker{
			{Slot: 0, PID: 100, Sessions: 3, Ready: true},
			{Slot: 1, PID: 101, Sessions: 0, Ready: false},
			{Slot: 2, PID: 102, Sessions: 5, Ready: true, Retiring: true},
		},
		WorkersDesired: 2, WorkerRestarts: 4, ReplayCacheEntries: 17, HandshakesInProgress: 2,
		WorkerKills:        map[string]int{"ack_timeout": 3, "no_ready": 0},
		PendingConnections: 9, AcceptErrors: 5, ShedConnections: 3,
	}
	m := New(Options{Snapshot: func() Snapshot { mu.Lock(); defer mu.Unlock(); return snap }})
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{"ready", "gss_acceptor_workers", map[string]string{"state": "ready"}, 1},
		{"starting", "gss_acceptor_workers", map[string]string{"state": "starting"}, 1},
		{"draining", "gss_acceptor_workers", map[string]string{"state": "draining"}, 1},
		{"desired", "gss_acceptor_workers_desired", nil, 2},
		{"per worker", "gss_acceptor_worker_sessions", map[string]string{"slot": "0", "pid": "100"}, 3},
		{"draining worker", "gss_acceptor_worker_sessions", map[string]string{"slot": "2", "pid": "102"}, 5},
		{"active", "gss_acceptor_sessions_active", nil, 8},
		{"restarts", "gss_acceptor_worker_restarts_total", nil, 4},
		{"kills", "gss_acceptor_worker_kills_total", map[string]string{"reason": "ack_timeout"}, 3},
		{"no kills", "gss_acceptor_worker_kills_total", map[string]string{"reason": "no_ready"}, 0},
		{"replay cache", "gss_acceptor_replay_cache_entries", nil, 17},
		{"in progress", "gss_acceptor_handshakes_in_progress", nil, 2},
		{"pending", "gss_acceptor_pending_connections", nil, 9},
		{"accept errors", "gss_acceptor_accept_errors_total", nil, 5},
		{"shed", "gss_acceptor_connections_shed_total", nil, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := gathered(t, m, tt.metric, tt.labels)
			if !ok || got != tt.want {
				t.Errorf("%s%v = %v (present %v), want %v", tt.metric, tt.labels, got, ok, tt.want)
			}
		})
	}
	mu.Lock()
	snap.Workers = snap.Workers[:1]
	mu.Unlock()
	if _, ok := gathered(t, m, "gss_acceptor_worker_sessions", map[string]string{"pid": "102"}); ok {
		t.Error("a worker that exited still has a series")
	}
	if got, _ := gathered(t, m, "gss_acceptor_workers", map[string]string{"state": "draining"}); got != 0 {
		t.Errorf("%v draining after the worker left", got)
	}
}

// Two Metrics share nothing: the registry is private.
func TestIndependentRegistries(t *testing.T) {
	a, b := New(Options{}), New(Options{})
	a.ObserveHandshake("ok", time.Millisecond, time.Millisecond, 0)
	if got := toFloat64(t, b.handshakes.WithLabelValues("ok")); got != 0 {
		t.Fatalf("second Metrics sees %v handshakes", got)
	}
}

// Our metric names, types and help texts follow the Prometheus naming
// conventions: help on every family, snake_case, counters end in _total,
// durations are in seconds.
func TestLint(t *testing.T) {
	m := New(Options{Version: "devel", Snapshot: func() Snapshot { return Snapshot{Workers: []Worker{{PID: 1, Ready: true}}} }})
	m.ObserveHandshake("rejected", time.Millisecond, 0, 37)
	m.ObserveSession(Session{Backend: true, ExecStatus: "exit_0"})
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	ours := 0
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), namespace+"_") {
			ours++
		}
	}
	if ours != 33 { // every family in the docs/metrics.md table
		t.Fatalf("%d gss_acceptor_ families gathered, want 33", ours)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, namespace+"_") {
			continue
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
		if name != strings.ToLower(name) {
			t.Errorf("%s is not snake_case", name)
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			if !strings.HasSuffix(name, "_total") {
				t.Errorf("counter %s does not end in _total", name)
			}
		case dto.MetricType_HISTOGRAM:
			if !strings.HasSuffix(name, "_seconds") {
				t.Errorf("histogram %s is not in seconds", name)
			}
		case dto.MetricType_GAUGE:
			if strings.HasSuffix(name, "_total") {
				t.Errorf("gauge %s ends in _total", name)
			}
		}
	}
}

func TestHandler(t *testing.T) {
	m := New(Options{Version: "v9"})
	m.ObserveHandshake("ok", time.Millisecond, time.Millisecond, 0)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	tests := []struct {
		name     string
		method   string
		path     string
		status   int
		contains []string
	}{
		{"scrape", http.MethodGet, "/metrics", http.StatusOK, []string{
			`gss_acceptor_handshakes_total{result="ok"} 1`,
			`gss_acceptor_build_info{goversion="go`,
			`version="v9"} 1`,
			"# TYPE gss_acceptor_handshake_duration_seconds histogram",
			"go_goroutines", "process_start_time_seconds",
		}},
		{"head", http.MethodHead, "/metrics", http.StatusOK, nil},
		{"post refused", http.MethodPost, "/metrics", http.StatusMethodNotAllowed, nil},
		{"other path", http.MethodGet, "/", http.StatusNotFound, nil},
		{"debug path", http.MethodGet, "/debug/pprof/", http.StatusNotFound, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			for _, s := range tt.contains {
				if !strings.Contains(string(body), s) {
					t.Errorf("body lacks %q", s)
				}
			}
		})
	}
}

func TestListenShutdown(t *testing.T) {
	m := New(Options{})
	s, err := m.Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + s.Addr().String() + "/metrics"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "gss_acceptor_handshakes_total") {
		t.Fatalf("scrape: %d\n%s", resp.StatusCode, body)
	}
	if _, err := m.Listen(s.Addr().String(), nil); err == nil || !strings.HasPrefix(err.Error(), "metrics: ") {
		t.Errorf("second Listen on a bound port: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := c.Get(url); err == nil {
		resp.Body.Close()
		t.Fatal("endpoint still serving after Shutdown")
	}
}

// TestObserveReplay: shared replay cache round trips, errors and fallbacks.
func TestObserveReplay(t *testing.T) {
	m := New(Options{})
	m.ObserveReplayOp(200*time.Microsecond, nil)
	m.ObserveReplayOp(250*time.Millisecond, errors.New("timeout"))
	m.ObserveReplayFallback()
	if v := toFloat64(t, m.replayErrors); v != 1 {
		t.Errorf("errors %v, want 1", v)
	}
	if v := toFloat64(t, m.replayFallbacks); v != 1 {
		t.Errorf("fallbacks %v, want 1", v)
	}
	var d dto.Metric
	if err := m.replayOpSeconds.Write(&d); err != nil {
		t.Fatal(err)
	}
	if n := d.GetHistogram().GetSampleCount(); n != 2 {
		t.Errorf("%d operations observed, want 2", n)
	}
}

// TestObserveReplayBatchAndSync: batched round trips count the round trip
// and its insertions; file fsyncs their duration and failures.
func TestObserveReplayBatchAndSync(t *testing.T) {
	m := New(Options{})
	m.ObserveReplayBatch(1)
	m.ObserveReplayBatch(7)
	if b, n := toFloat64(t, m.replayBatches), toFloat64(t, m.replayBatched); b != 2 || n != 8 {
		t.Errorf("%v batches with %v insertions, want 2 with 8", b, n)
	}
	m.ObserveReplaySync(300*time.Microsecond, nil)
	m.ObserveReplaySync(2*time.Second, errors.New("EIO"))
	if v := toFloat64(t, m.replaySyncErrs); v != 1 {
		t.Errorf("fsync errors %v, want 1", v)
	}
	var d dto.Metric
	if err := m.replaySyncs.Write(&d); err != nil {
		t.Fatal(err)
	}
	if n, sum := d.GetHistogram().GetSampleCount(), d.GetHistogram().GetSampleSum(); n != 2 || sum < 2 {
		t.Errorf("%d fsyncs observed summing %vs, want 2 summing over 2s", n, sum)
	}
}
