package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// faultTally counts what the fault suite observed, for its summary line.
// Every refusal and every served session it counts was also asserted.
type faultTally struct {
	scenarios atomic.Int64 // fault cases run
	refused   atomic.Int64 // hostile connections or sessions ended as expected
	served    atomic.Int64 // real sessions that completed during or after a fault
}

func (ft *faultTally) scenario() { ft.scenarios.Add(1) }

// opener is the gss-sample session opener (NOOP|CONTEXT_NEXT, no body).
func opener() []byte { return wire.AppendFrame(nil, wire.FlagNoop|wire.FlagContextNext, nil) }

// dataFlags is what MIT gss-client sends by default for a message.
const dataFlags = wire.FlagData | wire.FlagWrapped | wire.FlagEncrypted | wire.FlagSendMIC

// ioTimeout bounds every read and write the fault tests make.
const ioTimeout = 10 * time.Second

// rawSession is an established session the test drives frame by frame,
// so that it can send what no well-behaved client would.
type rawSession struct {
	t   testing.TB
	nc  net.Conn
	r   *wire.Reader
	ctx *gss.Context
}

// dialRaw establishes a session with the Go initiator and returns it for
// raw use. The connection is closed when the test ends.
func dialRaw(t testing.TB, addr string, tkt *client.Ticket, flags gss.Flags) *rawSession {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c, err := client.Establish(nc, tkt, client.Options{Flags: flags, Timeout: ioTimeout})
	if err != nil {
		t.Fatalf("establishing a session: %v", err)
	}
	t.Cleanup(c.Context().Delete)
	// Establish read only the AP-REP: nothing else is buffered, so a new
	// reader on the same connection sees every later frame.
	return &rawSession{t: t, nc: nc, r: wire.NewReader(nc, 16<<10), ctx: c.Context()}
}

// peer is the session's client address as the acceptor logs it.
func (s *rawSession) peer() string { return s.nc.LocalAddr().String() }

func (s *rawSession) wrap(msg string, conf bool) []byte {
	s.t.Helper()
	tok, err := s.ctx.Wrap([]byte(msg), conf)
	if err != nil {
		s.t.Fatalf("wrap: %v", err)
	}
	return tok
}

func (s *rawSession) write(b []byte) error {
	s.nc.SetWriteDeadline(time.Now().Add(ioTimeout))
	_, err := s.nc.Write(b)
	return err
}

// sendToken sends tok as a DATA frame asking for a MIC and checks that the
// reply is a MIC of msg.
func (s *rawSession) sendToken(tok []byte, msg string) error {
	if err := s.write(wire.AppendFrame(nil, dataFlags, tok)); err != nil {
		return fmt.Errorf("sending: %w", err)
	}
	s.nc.SetReadDeadline(time.Now().Add(ioTimeout))
	f, err := s.r.ReadFrame(64 << 10)
	if err != nil {
		return fmt.Errorf("reading the reply: %w", err)
	}
	if f.Flags != wire.FlagMIC {
		return fmt.Errorf("reply flags %#02x, want MIC", f.Flags)
	}
	if err := s.ctx.VerifyMIC([]byte(msg), f.Body); err != nil {
		return fmt.Errorf("server MIC: %w", err)
	}
	return nil
}

// exchange wraps msg, sends it and verifies the server's MIC.
func (s *rawSession) exchange(msg string) error {
	s.t.Helper()
	return s.sendToken(s.wrap(msg, true), msg)
}

// end closes the session the gss-sample way (a NOOP) and the connection.
func (s *rawSession) end() {
	s.write(wire.AppendFrame(nil, wire.FlagNoop, nil))
	s.nc.Close()
}

// expectClosed waits until the server closes the connection, failing if it
// sends anything or keeps it open for d.
func (s *rawSession) expectClosed(d time.Duration) error {
	return expectClosed(s.nc, d)
}

// expectClosed reads c until the server closes it. It returns the bytes
// the server sent and an error if the connection stayed open for d.
func expectClosed(c net.Conn, d time.Duration) error {
	_, err := readUntilClosed(c, d)
	return err
}

// readUntilClosed reads everything the server sends until it closes the
// connection (FIN or RST); it fails if that takes longer than d.
func readUntilClosed(c net.Conn, d time.Duration) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(d))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, c)
	switch {
	case err == nil, errors.Is(err, syscall.ECONNRESET):
		return buf.Bytes(), nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return buf.Bytes(), fmt.Errorf("connection still open after %v (%d bytes received)", d, buf.Len())
	default:
		return buf.Bytes(), err
	}
}

// handshakeReply sends the opener and token as a context token on a new
// connection and returns what the server sent before closing it.
func handshakeReply(t testing.TB, addr string, token []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := c.Write(wire.AppendFrame(opener(), wire.FlagContext, token)); err != nil {
		t.Fatal(err)
	}
	reply, err := readUntilClosed(c, ioTimeout)
	if err != nil {
		t.Fatalf("after a refused context token: %v", err)
	}
	return reply
}

// serveReal runs MIT gss-client (-seq, two messages) against a and fails
// the test unless both MICs verify.
func serveReal(t testing.TB, r *testrealm.Realm, a *acceptor, ft *faultTally, what string) {
	t.Helper()
	out, err := mitClient(t, r, a.port, nil, "-seq", "-mcount", "2", "127.0.0.1", service, what)
	if err != nil {
		t.Fatalf("MIT gss-client (%s): %v\n%s\nacceptor log:\n%s", what, err, out, a.logs)
	}
	if n := strings.Count(out, "Signature verified."); n != 2 {
		t.Fatalf("MIT gss-client (%s): %d verified MICs, want 2\n%s", what, n, out)
	}
	ft.served.Add(1)
}

// sessionFailed matches a worker's outcome line for a session that ended
// with an error whose text contains sub.
func sessionFailed(sub string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		return m["msg"] == "session ended" && m["result"] == "error" && strings.Contains(fmt.Sprint(m["error"]), sub)
	}
}

// handshakeFailed matches the acceptor's line for a refused handshake with
// the given result and a Kerberos error code (0: any) whose error text
// contains sub.
func handshakeFailed(result string, krbCode int, sub string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		if m["msg"] != "handshake failed; connection closed" || m["result"] != result {
			return false
		}
		if krbCode != 0 && m["krb_error"] != float64(krbCode) {
			return false
		}
		return strings.Contains(fmt.Sprint(m["error"]), sub)
	}
}

// handedOff matches the acceptor's line for the session from peer.
func handedOff(peer string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["msg"] == "session handed off" && m["peer"] == peer }
}

// findWithin polls l for a line matching match for up to d, without
// failing the test when none appears.
func findWithin(l *logLines, d time.Duration, match func(map[string]any) bool) (map[string]any, bool) {
	deadline := time.Now().Add(d)
	for {
		if got := l.find(match); len(got) > 0 {
			return got[0], true
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procStatusKiB reads a "Name:   N kB" field of /proc/PID/status.
func procStatusKiB(pid int, field string) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(val), " kB"))
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// procAlive reports whether pid is a live process (not a zombie).
func procAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:])
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// waitGone waits up to d for every pid to exit.
func waitGone(pids []int, d time.Duration) (alive []int) {
	deadline := time.Now().Add(d)
	for {
		alive = alive[:0]
		for _, pid := range pids {
			if procAlive(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFDs polls pid's descriptor count until ok accepts it or d passes,
// and returns the last count.
func waitFDs(pid int, d time.Duration, ok func(int) bool) int {
	deadline := time.Now().Add(d)
	for {
		n := fdCount(pid)
		if ok(n) || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fdLimitWithRoom returns the RLIMIT_NOFILE value under which pid has
// exactly room descriptor numbers free: the kernel hands out the lowest
// free number and refuses numbers at or over the limit, whatever is open
// above it.
func fdLimitWithRoom(t testing.TB, pid, room int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	used := map[int]bool{}
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			used[n] = true
		}
	}
	free, limit := 0, 0
	for ; free < room; limit++ {
		if !used[limit] {
			free++
		}
	}
	return limit
}

// cpuTicks returns the user plus system CPU time pid has used, in clock
// ticks (usually 10 ms).
func cpuTicks(t testing.TB, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th of the line.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return utime + stime
}
