package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeReplay puts each backend's CPU per handshake and p50 beside
// memory's of the same round, pools the rounds, and names the errors.
func TestWriteReplay(t *testing.T) {
	out := t.TempDir()
	h := &harness{cfg: config{outDir: out, replayRounds: 2, duration: time.Second, conc: 16},
		started: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC), logw: &strings.Builder{}}
	servers := []*server{{name: "memory", title: "memory (default)"}, {name: "redis", title: "redis:// on loopback"}}
	figs := []replayFigures{
		{Variant: "memory", Round: 1, Handshakes: 1000, PerSec: 1000, CPU: 250 * time.Millisecond, ClientP50: 5.0},
		{Variant: "redis", Round: 1, Handshakes: 1000, PerSec: 900, CPU: 300 * time.Millisecond, RedisCPU: 25 * time.Millisecond, ClientP50: 5.3},
		{Variant: "redis", Round: 2, Handshakes: 1000, PerSec: 800, CPU: 330 * time.Millisecond, ClientP50: 6.0, Errors: 2, LastError: "krb5 error 60"},
		{Variant: "memory", Round: 2, Handshakes: 1000, PerSec: 1100, CPU: 300 * time.Millisecond, ClientP50: 5.5},
	}
	if err := h.writeReplay(servers, figs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "replay.md"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"| memory (default) | 1050 | 275 | 1.00 / 1.00 | 0.0 |",
		"| redis:// on loopback | 850 | 315 | 1.20 / 1.10 | 12.5 |",
		"+0.30 / +0.50",
		"redis round 2: 2 (last: krb5 error 60)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("replay.md lacks %q:\n%s", want, got)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(out, "raw", "replay-*.json")); len(m) != 1 {
		t.Errorf("raw JSON files: %v", m)
	}
}
