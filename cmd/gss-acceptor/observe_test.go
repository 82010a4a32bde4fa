package main

import (
	"testing"

	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/metrics"
	"github.com/gss-acceptor/gss-acceptor/internal/supervisor"
)

// sample returns the value of the series of family name with label
// key=value (a histogram's sample count), and whether it exists.
func sample(t *testing.T, m *metrics.Metrics, name, key, value string) (float64, bool) {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			found := key == ""
			for _, lp := range s.GetLabel() {
				found = found || lp.GetName() == key && lp.GetValue() == value
			}
			if !found {
				continue
			}
			switch {
			case s.Counter != nil:
				return s.Counter.GetValue(), true
			case s.Histogram != nil:
				return float64(s.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// SESSION_END's backend block reaches the backend metrics: the acceptor
// translates the worker's report, nothing is lost on the way.
func TestObserveSessionBackend(t *testing.T) {
	d := &daemonState{metrics: metrics.New(metrics.Options{})}
	d.observeSession(supervisor.SessionEnd{Slot: 0, PID: 10, SessionEnd: handoff.SessionEnd{ID: 1, Result: handoff.SessionOK,
		Backend: handoff.BackendEnd{Kind: handoff.BackendProxy, Connect: handoff.ConnectOK, ConnectUS: 400, ToBackend: 11, FromBackend: 22}}})
	d.observeSession(supervisor.SessionEnd{SessionEnd: handoff.SessionEnd{ID: 2, Result: handoff.SessionFailed,
		Backend: handoff.BackendEnd{Kind: handoff.BackendProxy, Connect: handoff.ConnectTimeout, ConnectUS: 5e6}}})
	d.observeSession(supervisor.SessionEnd{SessionEnd: handoff.SessionEnd{ID: 3, Result: handoff.SessionFailed,
		Backend: handoff.BackendEnd{Kind: handoff.BackendExec, ToBackend: 1, FromBackend: 2, Exit: handoff.ExitSignal, ExitValue: 9}}})
	d.observeSession(supervisor.SessionEnd{SessionEnd: handoff.SessionEnd{ID: 4, Result: handoff.SessionOK}}) // gss-sample
	tests := []struct {
		name, key, value string
		want             float64
	}{
		{"gss_acceptor_backend_bytes_total", "direction", "client_to_backend", 12},
		{"gss_acceptor_backend_bytes_total", "direction", "backend_to_client", 24},
		{"gss_acceptor_backend_connect_failures_total", "reason", "timeout", 1},
		{"gss_acceptor_backend_connect_failures_total", "reason", "refused", 0},
		{"gss_acceptor_backend_connect_duration_seconds", "", "", 1},
		{"gss_acceptor_exec_exits_total", "status", "signal_SIGKILL", 1},
		{"gss_acceptor_sessions_total", "result", "ok", 2},
	}
	for _, tt := range tests {
		if got, ok := sample(t, d.metrics, tt.name, tt.key, tt.value); !ok || got != tt.want {
			t.Errorf("%s{%s=%q} = %v (present %v), want %v", tt.name, tt.key, tt.value, got, ok, tt.want)
		}
	}
}
