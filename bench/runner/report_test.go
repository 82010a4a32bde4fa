package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestClientBoundCeiling(t *testing.T) {
	for _, tc := range []struct {
		name      string
		clientCPU time.Duration // over ops, against our server
		ops       int64
		mitRate   float64
		cpus      int
		want      float64
	}{
		// 400 µs of client CPU per context: two cores run 5,000/s at most.
		{"two cores", 400 * time.Millisecond, 1000, 2000, 2, 2.5},
		{"four cores", 400 * time.Millisecond, 1000, 2000, 4, 5},
		{"client CPU not measured", 0, 1000, 2000, 2, 0},
		{"no operations", time.Second, 0, 2000, 2, 0},
		{"MIT rate unknown", time.Second, 1000, 0, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := clientBoundCeiling(row{ClientCPU: tc.clientCPU, Ops: tc.ops}, row{OpsPerSec: tc.mitRate}, tc.cpus)
			if math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("clientBoundCeiling = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMITClientRows checks that the report shows the MIT clients' CPU per
// context and the ceiling it puts on the contexts/s ratios.
func TestMITClientRows(t *testing.T) {
	const load = "8 MIT gss-client"
	out := t.TempDir()
	h := &harness{cfg: config{mitClients: 8, outDir: out, only: map[string]bool{"mit": true}},
		started: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), logw: &strings.Builder{}}
	h.rows = []row{
		{Load: load, Server: "ours", CPU: 1600 * time.Millisecond, ClientCPU: 3200 * time.Millisecond, Ops: 8000, OpsPerSec: 1500},
		{Load: load, Server: "mit-none", CPU: 2160 * time.Millisecond, ClientCPU: 2400 * time.Millisecond, Ops: 8000, OpsPerSec: 1000},
		{Load: load, Server: "mit-rcache", CPU: 2400 * time.Millisecond, ClientCPU: 2400 * time.Millisecond, Ops: 8000, OpsPerSec: 800},
	}
	if err := h.write("hs0", "hs1", "1k", "64k", load, "floor"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	// Our clients: 400 µs per context, so the cores allow 2,500/s per CPU.
	perCPU := float64(runtime.NumCPU()) * 2500
	for _, want := range []string{
		"| client CPU µs per context (the MIT gss-client processes) | 400 µs | 300 µs | 300 µs |",
		fmt.Sprintf("1.50× (ceiling, the clients alone on every core: %.2f×)", perCPU/1000),
		fmt.Sprintf("1.88× (ceiling, the clients alone on every core: %.2f×)", perCPU/800),
	} {
		if !strings.Contains(got, want) {
			t.Errorf("latest.md lacks %q:\n%s", want, got)
		}
	}
}
