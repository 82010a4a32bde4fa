package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/stream"
)

// Exec backend defaults.
const (
	DefaultExecMaxPerWorker = 64
	// DefaultExecKillGrace is how long a program has between SIGTERM and
	// SIGKILL to its process group at the session's end.
	DefaultExecKillGrace = 2 * time.Second
	// execStderrLine bounds one logged stderr line; execStderrPerSecond
	// the lines logged per session per second (the rest are counted).
	execStderrLine      = 512
	execStderrPerSecond = 20
	execPath            = "/usr/local/bin:/usr/bin:/bin"
)

// ExecService is the exec backend (docs/backends.md): per session it runs
// Path with Args, inetd style, the decrypted stream on its stdin and
// stdout, stderr lines to the log, in its own process group with a clean
// environment plus GSS_CLIENT_PRINCIPAL, GSS_SERVICE_PRINCIPAL,
// GSS_CLIENT_ADDR and GSS_SESSION_ID. The client's EOF closes its stdin;
// its stdout's EOF becomes the EOF record; its exit (stdout drained) ends
// the session; the session's end kills its process group (SIGTERM, then
// SIGKILL after KillGrace) and reaps it.
type ExecService struct {
	Path           string
	Args           []string
	MaxPerWorker   int           // programs at once; 0: DefaultExecMaxPerWorker
	KillGrace      time.Duration // 0: DefaultExecKillGrace
	AllowIntegrity bool

	once    sync.Once
	slots   chan struct{}
	Running atomic.Int64 // programs running now (tests, status)
}

func (svc *ExecService) init() {
	svc.once.Do(func() {
		n := svc.MaxPerWorker
		if n <= 0 {
			n = DefaultExecMaxPerWorker
		}
		svc.slots = make(chan struct{}, n)
	})
}

// Serve implements Service.
func (svc *ExecService) Serve(ctx context.Context, s *Session) error {
	svc.init()
	s.Backend.Kind = handoff.BackendExec
	st, err := s.openStream(svc.AllowIntegrity)
	if err != nil {
		return err
	}
	defer s.countStream(st)
	select {
	case svc.slots <- struct{}{}:
		defer func() { <-svc.slots }()
	default:
		reason := fmt.Sprintf("exec: too many programs running (exec_max_per_worker %d)", cap(svc.slots))
		st.Abort(reason)
		return fmt.Errorf("worker: %s", reason)
	}
	p, err := svc.start(s)
	if err != nil {
		reason := "exec failed: " + err.Error()
		st.Abort(reason)
		return fmt.Errorf("worker: %s", reason)
	}
	svc.Running.Add(1)
	defer svc.Running.Add(-1)
	err = p.relay(ctx, st, s)
	status := p.stop(svc.killGrace())
	s.Backend.ToBackend, s.Backend.FromBackend = uint64(p.toProgram.Load()), uint64(p.fromProgram.Load())
	s.Backend.Exit, s.Backend.ExitValue = exitOf(p.cmd.ProcessState)
	s.Log.Debug("exec program ended", zap.String("exec", svc.Path), zap.Int("program_pid", p.cmd.Process.Pid), zap.String("status", status))
	if err != nil {
		return fmt.Errorf("worker: exec: %w (program %s)", err, status)
	}
	return nil
}

func (svc *ExecService) killGrace() time.Duration {
	if svc.KillGrace > 0 {
		return svc.KillGrace
	}
	return DefaultExecKillGrace
}

// program is one running exec backend process and our ends of its pipes.
type program struct {
	cmd                     *exec.Cmd
	stdin, stdout, stderr   *os.File
	exited                  chan struct{} // the leader exited (not reaped yet)
	stderrDone              chan struct{}
	closeStdin, closeStdout sync.Once
	toProgram, fromProgram  atomic.Int64 // plaintext bytes written to stdin, read from stdout and sent
}

// exitOf returns how a reaped program ended, for SESSION_END.
func exitOf(ps *os.ProcessState) (handoff.ExitKind, uint8) {
	if ps == nil {
		return handoff.ExitNone, 0
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled():
		return handoff.ExitSignal, uint8(ws.Signal())
	case ok && ws.Exited():
		return handoff.ExitCode, uint8(ws.ExitStatus())
	}
	return handoff.ExitNone, 0
}

func (svc *ExecService) start(s *Session) (*program, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd := exec.Command(svc.Path, svc.Args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.Env = []string{
		"PATH=" + execPath,
		"GSS_CLIENT_PRINCIPAL=" + s.Context.InitiatorName(),
		"GSS_SERVICE_PRINCIPAL=" + s.Context.AcceptorName(),
		"GSS_CLIENT_ADDR=" + s.Conn.RemoteAddr().String(),
		"GSS_SESSION_ID=" + strconv.FormatUint(s.ID, 10),
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, err
	}
	p := &program{cmd: cmd, stdin: inW, stdout: outR, stderr: errR, exited: make(chan struct{}), stderrDone: make(chan struct{})}
	go func() {
		// Wait for the exit without reaping: the process group stays
		// ours to signal until stop reaps the leader.
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		close(p.exited)
	}()
	go p.logStderr(s.Log)
	return p, nil
}

// relay carries the session: client → stdin, stdout → client. It returns
// nil when the program's stdout ended (EOF record sent) and the program
// exited, or the client's failure, the idle timeout or ctx's end.
func (p *program) relay(ctx context.Context, st *stream.Conn, s *Session) error {
	var activity atomic.Int64
	errc := make(chan error, 2)
	outDone := make(chan struct{})
	go func() { // stdout -> client
		buf := make([]byte, stream.MaxChunk)
		for {
			n, rerr := p.stdout.Read(buf)
			if n > 0 {
				activity.Add(1)
				if _, err := st.Write(buf[:n]); err != nil {
					errc <- err
					return
				}
				p.fromProgram.Add(int64(n))
			}
			if rerr != nil {
				if err := st.CloseWrite(); err != nil {
					errc <- err
					return
				}
				close(outDone)
				return
			}
		}
	}()
	go func() { // client -> stdin
		buf := make([]byte, stream.MaxChunk)
		for {
			n, rerr := st.Read(buf)
			if n > 0 {
				activity.Add(1)
				w, err := p.stdin.Write(buf[:n])
				p.toProgram.Add(int64(w))
				if err != nil {
					// The program closed its stdin or exited: what the
					// client still sends has no reader; drop it.
					p.closeIn()
				}
			}
			if rerr == io.EOF {
				p.closeIn()
				return
			}
			if rerr != nil {
				errc <- rerr
				return
			}
		}
	}()
	var tick <-chan time.Time
	if s.IdleTimeout > 0 {
		t := time.NewTicker(s.IdleTimeout / 4)
		defer t.Stop()
		tick = t.C
	}
	last, lastMove := activity.Load(), time.Now()
	exited, out := p.exited, outDone
	var err error
	for exited != nil || out != nil {
		select {
		case <-exited:
			exited = nil
		case <-out:
			out = nil
		case err = <-errc:
		case <-ctx.Done():
			err = fmt.Errorf("worker shutting down: %w", ctx.Err())
		case now := <-tick:
			if a := activity.Load(); a != last {
				last, lastMove = a, now
			} else if now.Sub(lastMove) >= s.IdleTimeout {
				err = stream.ErrIdle
			}
		}
		if err != nil {
			break
		}
	}
	// Unblocks both goroutines: the client read fails on the closed
	// connection, the stdout read ends when stop kills the group.
	st.Close()
	p.closeIn()
	return err
}

func (p *program) closeIn() { p.closeStdin.Do(func() { p.stdin.Close() }) }

// stop kills the process group (SIGTERM, SIGKILL after grace), reaps the
// leader and closes our pipe ends. It returns the exit status.
func (p *program) stop(grace time.Duration) string {
	pgid := p.cmd.Process.Pid
	unix.Kill(-pgid, unix.SIGTERM)
	t := time.NewTimer(grace)
	select {
	case <-p.exited:
	case <-t.C:
	}
	t.Stop()
	unix.Kill(-pgid, unix.SIGKILL)
	p.cmd.Wait()
	p.closeIn()
	p.stdout.Close()
	select {
	case <-p.stderrDone:
	case <-time.After(grace):
	}
	p.stderr.Close()
	return p.cmd.ProcessState.String()
}

// logStderr logs the program's stderr, one line per entry cut to
// execStderrLine bytes, at most execStderrPerSecond lines a second.
func (p *program) logStderr(log *zap.Logger) {
	defer close(p.stderrDone)
	r := bufio.NewReaderSize(p.stderr, execStderrLine)
	window, n, dropped := time.Now(), 0, 0
	for {
		line, isPrefix, err := r.ReadLine()
		if err != nil {
			break
		}
		text := string(line)
		for isPrefix && err == nil { // skip the rest of a long line
			_, isPrefix, err = r.ReadLine()
		}
		if now := time.Now(); now.Sub(window) >= time.Second {
			if dropped > 0 {
				log.Warn("exec stderr lines dropped", zap.Int("lines", dropped))
			}
			window, n, dropped = now, 0, 0
		}
		if n >= execStderrPerSecond {
			dropped++
			continue
		}
		n++
		log.Info("exec stderr", zap.String("line", text))
	}
	if dropped > 0 {
		log.Warn("exec stderr lines dropped", zap.Int("lines", dropped))
	}
}
