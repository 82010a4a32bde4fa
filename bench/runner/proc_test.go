package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{"plain", "1234 (gss-worker) S 1200 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 100 0 0",
			procStat{PPID: 1200, Utime: 250, Stime: 75}, false},
		{"name with spaces and parens", "77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 9 8 0",
			procStat{PPID: 1, Utime: 9, Stime: 8}, false},
		{"no name", "77 a R 1 2 3", procStat{}, true},
		{"too short", "77 (x) R 1 2 3 4", procStat{}, true},
		{"bad utime", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 x 8 0", procStat{}, true},
		{"bad ppid", "7 (x) R p 7 7 0 -1 0 0 0 0 0 1 8 0", procStat{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseStat = %+v, %v; want %+v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestReadOwnStat(t *testing.T) {
	st, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPID != os.Getppid() {
		t.Fatalf("ppid %d, want %d", st.PPID, os.Getppid())
	}
	// Burn a little CPU: the counter must not go backwards and must move.
	before, _ := cpuTime(os.Getpid())
	deadline := time.Now().Add(100 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	after, err := cpuTime(os.Getpid())
	if err != nil || after <= before {
		t.Fatalf("cpu time %v → %v (%v)", before, after, err)
	}
	if r, err := rss(os.Getpid()); err != nil || r < 1<<20 {
		t.Fatalf("rss %d, %v", r, err)
	}
}

func TestParseRSS(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{"present", "Name:\tx\nVmPeak:\t 100 kB\nVmRSS:\t    2048 kB\nThreads: 3\n", 2048 << 10, false},
		{"missing", "Name:\tx\n", 0, true},
		{"bad unit", "VmRSS:\t12 MB\n", 0, true},
		{"negative", "VmRSS:\t-12 kB\n", 0, true},
		{"garbage", "VmRSS:\tlots kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRSS([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseRSS = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseHandoff(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    handoff
		ok      bool
		wantErr bool
	}{
		{"zap strings", `{"level":"info","msg":"session handed off","handshake":"1.5ms","handoff":"250µs","worker_pid":9}`,
			handoff{1500 * time.Microsecond, 250 * time.Microsecond}, true, false},
		{"seconds", `{"msg":"session handed off","handshake":0.002,"handoff":0.0001}`,
			handoff{2 * time.Millisecond, 100 * time.Microsecond}, true, false},
		{"other line", `{"msg":"ready"}`, handoff{}, false, false},
		{"missing handoff", `{"msg":"session handed off","handshake":"1ms"}`, handoff{}, false, true},
		{"negative", `{"msg":"session handed off","handshake":"-1ms","handoff":"1ms"}`, handoff{}, false, true},
		{"not json", `session handed off`, handoff{}, false, true},
		{"bad type", `{"msg":"session handed off","handshake":[1],"handoff":"1ms"}`, handoff{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, err := parseHandoff([]byte(tt.in))
			if (err != nil) != tt.wantErr || ok != tt.ok || got != tt.want {
				t.Fatalf("parseHandoff = %+v, %v, %v; want %+v, %v, error %v", got, ok, err, tt.want, tt.ok, tt.wantErr)
			}
		})
	}
}

func TestLatencyFrom(t *testing.T) {
	var lines [][]byte
	lines = append(lines, []byte(`{"msg":"listening"}`), []byte(`not json`))
	for i := 1; i <= 100; i++ {
		d := time.Duration(i) * time.Millisecond
		lines = append(lines, []byte(`{"msg":"session handed off","handshake":"`+d.String()+`","handoff":"1ms"}`))
	}
	f, err := latencyFrom(lines, &row{Ops: 100, CPU: 50 * time.Millisecond, AcceptorCPU: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if f.N != 100 || f.P50 != 51*time.Millisecond || f.P99 != 100*time.Millisecond || f.Max != 101*time.Millisecond {
		t.Fatalf("n %d p50 %v p99 %v max %v", f.N, f.P50, f.P99, f.Max)
	}
	if f.HoP50 != time.Millisecond || f.TotalCPUPerHS != 500*time.Microsecond || f.AcceptorCPUPerHS != 200*time.Microsecond {
		t.Fatalf("handoff p50 %v cpu %v / %v", f.HoP50, f.TotalCPUPerHS, f.AcceptorCPUPerHS)
	}
	if _, err := latencyFrom(lines[:2], &row{}); err == nil {
		t.Fatal("no handoff lines: want an error")
	}
}

func TestReportHelpers(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"ratio", ratio(3, 2), "1.50×"},
		{"ratio missing", ratio(3, 0), "—"},
		{"µs", fmtDur(250 * time.Microsecond), "250 µs"},
		{"ms", fmtDur(2500 * time.Microsecond), "2.50 ms"},
		{"zero", fmtDur(0), "—"},
		{"rate", fmtRate(&row{OpsPerSec: 1234.4}, "/s"), "1234/s"},
		{"MB", fmtRate(&row{MBPerSec: 12.34}, "MB/s"), "12.3 MB/s"},
		{"cpu", fmtCPU(&row{Ops: 4, CPU: 2 * time.Millisecond}), "500 µs"},
		{"missing row", fmtCPU(nil), "—"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	if !strings.Contains(machine(), "CPUs") {
		t.Fatalf("machine() = %q", machine())
	}
}
