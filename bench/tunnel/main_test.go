package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseCSV(t *testing.T) {
	out := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","9397.05","0.806","0.080","0.767","1.375","2.071","9.823"
"GET","11742.00","0.640","0.072","0.599","1.071","1.615","6.439"
`
	r, err := parseCSV([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.rps["SET"] != 9397.05 || r.rps["GET"] != 11742 || r.p50["GET"] != 0.599 || r.p99["SET"] != 2.071 {
		t.Errorf("parsed %+v", r)
	}
	for _, bad := range []string{
		"",
		`"test","rps"` + "\n" + `"SET","1"` + "\n", // no latency columns
		strings.Replace(out, "9397.05", "fast", 1),
	} {
		if _, err := parseCSV([]byte(bad)); err == nil {
			t.Errorf("parseCSV(%q) succeeded", bad)
		}
	}
}

func TestParseStat(t *testing.T) {
	// The command name holds ") " to check fields are counted from the last ')'.
	b := []byte("42 (a) b) S 7 42 42 0 -1 4194560 100 0 0 0 150 50 3 -1 20 0 1 0 5 0 0\n")
	st, err := parseStat(b)
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != 7 || st.CPU != 150+50+3 {
		t.Errorf("got %+v, want PPID 7, CPU 203", st)
	}
	if _, err := parseStat([]byte("42 (x) S 7 1 2")); err == nil {
		t.Error("short stat parsed")
	}
}

func TestParseRSS(t *testing.T) {
	v, err := parseRSS([]byte("Name:\tx\nVmRSS:\t  2048 kB\nThreads:\t1\n"))
	if err != nil || v != 2<<20 {
		t.Errorf("got %d, %v; want 2 MiB", v, err)
	}
	if _, err := parseRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("status without VmRSS parsed")
	}
}

// TestTreeAndCPU: the test process's tree holds a child it started, and
// the CPU it spends is seen.
func TestTreeAndCPU(t *testing.T) {
	p, err := startProc(t.TempDir(), "sleep", nil, "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	pids := tree(os.Getpid())
	found := false
	for _, q := range pids {
		found = found || q == p.pid()
	}
	if !found || pids[0] != os.Getpid() {
		t.Errorf("tree(%d) = %v, want it first and child %d in it", os.Getpid(), pids, p.pid())
	}
	// Spin until a clock tick of CPU shows, bounded: on a busy machine
	// 100 ms of wall time may be far less CPU.
	c0 := cpuOf([]int{os.Getpid()})
	c1 := c0
	for end := time.Now().Add(10 * time.Second); c1 <= c0 && time.Now().Before(end); {
		for spin := time.Now().Add(20 * time.Millisecond); time.Now().Before(spin); {
		}
		c1 = cpuOf([]int{os.Getpid()})
	}
	if c1 <= c0 {
		t.Errorf("CPU %v then %v after 10 s of spinning", c0, c1)
	}
	p.stop()
	if !p.exited() {
		t.Error("stop returned before the process exited")
	}
}

func TestParallelStopsAtFirstError(t *testing.T) {
	err := parallel(100, 4, func(i int) error {
		if i == 10 {
			return os.ErrInvalid
		}
		return nil
	})
	if err != os.ErrInvalid {
		t.Fatalf("err %v", err)
	}
	if err := parallel(50, 3, func(i int) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestMedianRow(t *testing.T) {
	row := func(set, p50, cpu float64) *benchRow {
		return &benchRow{rps: map[string]float64{"SET": set}, p50: map[string]float64{"SET": p50},
			p99: map[string]float64{"SET": 2 * p50}, cpuPerReq: cpu}
	}
	m := medianRow([]*benchRow{row(300, 0.1, 50), row(100, 0.3, 70), row(200, 0.2, 60)})
	if m.rps["SET"] != 200 || m.p50["SET"] != 0.2 || m.p99["SET"] != 0.4 || m.cpuPerReq != 60 {
		t.Errorf("median of three: %+v", m)
	}
	m = medianRow([]*benchRow{row(100, 0.1, 50), row(300, 0.3, 70)})
	if m.rps["SET"] != 200 || m.cpuPerReq != 60 {
		t.Errorf("median of two: %+v", m)
	}
}
