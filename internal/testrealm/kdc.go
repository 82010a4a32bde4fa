package testrealm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// startKDC runs krb5kdc in the foreground (-n) as a child process and waits
// until it accepts TCP connections. If another process grabbed the port
// between freePort and krb5kdc's bind, it retries on a new port.
func (r *Realm) startKDC() error {
	var lastErr error
	for attempt := 0; attempt < portAttempts; attempt++ {
		if attempt > 0 {
			port, err := freePort()
			if err != nil {
				return err
			}
			r.mu.Lock()
			err = r.writeConf(port)
			r.mu.Unlock()
			if err != nil {
				return err
			}
		}
		err := r.tryStartKDC()
		if err == nil {
			return nil
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			return err
		}
	}
	return fmt.Errorf("testrealm: no free KDC port after %d attempts: %w", portAttempts, lastErr)
}

// kdcReadyLine is what krb5kdc logs after binding every listener.
const kdcReadyLine = "commencing operation"

// errAddrInUse marks a KDC start that failed because its port was taken.
var errAddrInUse = errors.New("testrealm: KDC port in use")

// tryStartKDC makes one attempt at starting krb5kdc on r.KDCAddr.
func (r *Realm) tryStartKDC() error {
	out := &tailBuffer{max: logTail, watch: []byte(kdcReadyLine)}
	cmd := exec.Command(krb5kdcPath, "-n", "-r", r.Name)
	cmd.Dir = r.Dir
	cmd.Env = r.Env()
	cmd.Stdout = io.MultiWriter(out, r.log)
	cmd.Stderr = cmd.Stdout
	// Pdeathsig kills the KDC if the test binary dies without Close, so a
	// crashed or timed-out test run cannot leave a KDC behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testrealm: starting krb5kdc: %w", err)
	}
	done := make(chan struct{})
	r.procMu.Lock()
	r.kdc, r.kdcDone, r.kdcOutput = cmd, done, out
	r.procMu.Unlock()
	go func() {
		r.kdcErr = cmd.Wait()
		close(done)
	}()

	deadline := time.Now().Add(readyTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		select {
		case <-done:
			// krb5kdc exits at once when it cannot bind its sockets.
			msg := out.String()
			r.procMu.Lock()
			r.kdc = nil
			r.procMu.Unlock()
			if strings.Contains(msg, "Address already in use") {
				return fmt.Errorf("%w: %s", errAddrInUse, r.KDCAddr)
			}
			return fmt.Errorf("testrealm: krb5kdc exited during startup (%v); log:\n%s", r.kdcErr, msg)
		default:
		}
		// krb5kdc logs "commencing operation" once all its sockets are
		// bound. The TCP dial alone could be answered by whoever holds
		// the port when krb5kdc lost a bind race.
		if out.Seen(kdcReadyLine) {
			c, err := net.DialTimeout("tcp", r.KDCAddr, time.Second)
			if err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			stopErr := r.stopKDC()
			return errors.Join(fmt.Errorf("testrealm: krb5kdc not answering on tcp %s after %v; log:\n%s",
				r.KDCAddr, readyTimeout, out.String()), stopErr)
		}
		time.Sleep(delay)
	}
}

// Close stops the KDC (SIGTERM, then SIGKILL after a bounded wait) and
// waits for it to exit. The realm directory is left in place. Close is
// idempotent and safe for concurrent use; every call returns the first
// call's result.
func (r *Realm) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.stopKDC() })
	return r.closeErr
}

// stopKDC signals the KDC by the pid of the child it started, never by name.
func (r *Realm) stopKDC() error {
	r.procMu.Lock()
	cmd, done := r.kdc, r.kdcDone
	r.kdc = nil
	r.procMu.Unlock()
	if cmd == nil {
		return nil
	}
	// Signal errors only mean the process is already gone; the Wait in
	// the goroutine reports what happened.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
		return fmt.Errorf("testrealm: krb5kdc (pid %d) ignored SIGTERM for %v and was killed", cmd.Process.Pid, stopTimeout)
	case <-time.After(stopTimeout):
		return fmt.Errorf("testrealm: krb5kdc (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// KDCPid returns the process id of the running KDC, or 0 once it is closed.
func (r *Realm) KDCPid() int {
	r.procMu.Lock()
	defer r.procMu.Unlock()
	if cmd := r.kdc; cmd != nil {
		return cmd.Process.Pid
	}
	return 0
}

// freePort returns a port number that is free on 127.0.0.1 for both UDP
// and TCP at the time of the call. Another process can still take it before
// krb5kdc binds; startKDC retries in that case.
func freePort() (int, error) {
	var lastErr error
	for range 32 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("testrealm: %w", err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		pc.Close()
		if err != nil {
			lastErr = err
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("testrealm: no port free for both udp and tcp: %w", lastErr)
}

// tailBuffer is an io.Writer keeping the last max bytes written, safe for
// concurrent use. It also remembers whether watch was ever written.
type tailBuffer struct {
	max   int
	watch []byte

	mu   sync.Mutex
	buf  []byte
	seen bool
}

// Write implements io.Writer; it never fails.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if !b.seen && len(b.watch) > 0 && bytes.Contains(b.buf, b.watch) {
		b.seen = true
	}
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// Seen reports whether s, which must be the watched string, was written.
func (b *tailBuffer) Seen(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen && string(b.watch) == s
}

// String returns the retained bytes.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
