package main

import (
	"strings"
	"testing"
	"time"
)

// serialHarness is a harness holding the rows of a one-client-at-a-time
// section of two rounds of 1000 contexts.
func serialHarness(rows map[string][2]time.Duration, bConfig string) *harness {
	h := &harness{cfg: config{serial: 1000, serialRounds: 2, bConfig: bConfig}}
	for name, cpus := range rows {
		for k, c := range cpus {
			r := row{Load: serialLoad(1000, k+1), Server: name, CPU: c, Ops: 1000, OpsPerSec: 2000, Elapsed: time.Second / 2}
			if strings.HasPrefix(name, "ours") {
				r.AcceptorCPU = c / 2
			}
			h.rows = append(h.rows, r)
		}
	}
	return h
}

// The section sums the rounds per server and compares them: ours ÷ MIT
// and, with an ours-b, ours-b ÷ ours; a server without rows has no
// totals.
func TestSerialSection(t *testing.T) {
	h := serialHarness(map[string][2]time.Duration{
		"ours":       {300 * time.Millisecond, 340 * time.Millisecond},
		"ours-b":     {480 * time.Millisecond, 480 * time.Millisecond},
		"mit-rcache": {300 * time.Millisecond, 340 * time.Millisecond},
		"mit-none":   {250 * time.Millisecond, 270 * time.Millisecond},
	}, "acceptor_cpus: 2\n")
	h.cfg.bEnv = listFlag{"GOGC=400"}
	o := h.serialTotals("ours")
	if o == nil || o.Ops != 2000 || o.CPU != 640*time.Millisecond || o.cpuPerOp() != 320 || o.elapsedPerOp() != 500 {
		t.Fatalf("serialTotals(ours) = %+v, want 2000 ops, 640 ms CPU, 320 µs and 500 µs per op", o)
	}
	if h.serialTotals("floor-inline") != nil {
		t.Error("totals for a server without rows")
	}
	s := h.serialSection()
	for _, want := range []string{
		"## One client at a time",
		"| 2 | ours-b | 2000 | 500 | 480 | 240 |",
		"server CPU per context 1.00× (vs default rcache), 1.23× (vs rcache=none)",
		"A/B, all rounds: ours-b (acceptor_cpus: 2; GOGC=400) ÷ ours, server CPU per context 1.50×, acceptor alone 1.50×, elapsed per context 1.00×",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
}

func TestConfigRuns(t *testing.T) {
	all := config{}
	if !all.runs("serial") || !all.runs("hold") {
		t.Error("without -only every section runs")
	}
	some := config{only: map[string]bool{"serial": true}}
	if !some.runs("serial") || some.runs("handshake") {
		t.Error("-only serial runs serial and nothing else")
	}
}
