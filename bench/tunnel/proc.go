package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// procStat holds the fields of /proc/PID/stat the harness needs.
type procStat struct {
	PPID int
	// CPU is utime+stime+cutime+cstime in clock ticks: the process and
	// its children already reaped, so a child that exits between two
	// samples still counts.
	CPU uint64
}

// parseStat parses /proc/PID/stat. The command name is in parentheses and
// may contain anything, so fields are counted from the last ')' (proc(5)):
// after it come state(3) ppid(4) ... utime(14) stime(15) cutime(16)
// cstime(17).
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("tunnel: stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("tunnel: stat: %d fields after the name, want at least 15", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("tunnel: stat: ppid: %w", err)
	}
	var cpu uint64
	for _, s := range f[11:15] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("tunnel: stat: times: %w", err)
		}
		cpu += uint64(max(v, 0))
	}
	return procStat{PPID: ppid, CPU: cpu}, nil
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("tunnel: %w", err)
	}
	return parseStat(b)
}

// tree returns the pids and all their descendants.
func tree(roots ...int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return roots
	}
	kids := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := readStat(pid); err == nil {
			kids[st.PPID] = append(kids[st.PPID], pid)
		}
	}
	var out []int
	queue := append([]int(nil), roots...)
	seen := map[int]bool{}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
		queue = append(queue, kids[p]...)
	}
	return out
}

// cpuOf sums the CPU time of pids (and their reaped children).
func cpuOf(pids []int) time.Duration {
	var t uint64
	for _, p := range pids {
		if st, err := readStat(p); err == nil {
			t += st.CPU
		}
	}
	return time.Duration(t) * time.Second / clockTicks
}

// parseRSS returns VmRSS from /proc/PID/status, in bytes.
func parseRSS(b []byte) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("tunnel: status: VmRSS line %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("tunnel: status: VmRSS: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("tunnel: status: no VmRSS line")
}

// rssOf sums VmRSS over pids.
func rssOf(pids []int) (int64, error) {
	var sum int64
	for _, p := range pids {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(p), "status"))
		if err != nil {
			return 0, fmt.Errorf("tunnel: %w", err)
		}
		v, err := parseRSS(b)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// proc is a process the harness started; its output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startProc runs argv with env (nil: the harness's), its stdout and
// stderr in dir/name.log, in its own process group.
func startProc(dir, name string, env []string, argv ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("tunnel: starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL after 10 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
}

// tail returns the end of the process's log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitReady waits until addr accepts a connection and, when marker is
// set, the log contains it; it fails if the process exits first.
func (p *proc) waitReady(addr, marker string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("tunnel: %s exited during startup:\n%s", p.name, p.tail())
		}
		ok := marker == ""
		if !ok {
			b, _ := os.ReadFile(p.log)
			ok = bytes.Contains(b, []byte(marker))
		}
		if ok {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("tunnel: %s not ready on %s after %v:\n%s", p.name, addr, timeout, p.tail())
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("tunnel: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
