package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
)

// errorBackoff is the pause after a failed operation, so that a dead or
// refusing server does not turn the load generator into a busy loop that
// starves the server it measures of the shared CPU.
const errorBackoff = 10 * time.Millisecond

// errKind classifies a failed operation.
type errKind int

const (
	errDial      errKind = iota // TCP connect failed
	errHandshake                // context establishment failed without a Kerberos error code
	errKRB                      // the acceptor answered with a KRB-ERROR, or its AP-REP failed Kerberos checks
	errMessage                  // a message exchange or the closing NOOP failed
	errMIC                      // the server's MIC did not verify
	errTimeout                  // a dial, read or write hit -timeout
	numErrKinds
)

// String returns the kind's name as used in the JSON output.
func (k errKind) String() string {
	switch k {
	case errDial:
		return "dial"
	case errHandshake:
		return "handshake"
	case errKRB:
		return "krb_error"
	case errMessage:
		return "message"
	case errMIC:
		return "mic"
	case errTimeout:
		return "timeout"
	}
	return fmt.Sprintf("errKind(%d)", int(k))
}

// phase is the step of a connection an error happened in.
type phase int

const (
	phaseDial phase = iota
	phaseEstablish
	phaseMessage
)

// classify maps an error from phase p to its kind. Timeouts win over the
// phase: a server too slow to answer is a different finding from one that
// answers wrongly.
func classify(p phase, err error) errKind {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout()) {
		return errTimeout
	}
	switch p {
	case phaseDial:
		return errDial
	case phaseEstablish:
		if gss.KRBCodeOf(err) != 0 {
			return errKRB
		}
		return errHandshake
	}
	if errors.Is(err, client.ErrBadMIC) {
		return errMIC
	}
	return errMessage
}

// stats are one load goroutine's results; merged at the end.
type stats struct {
	handshakes int64
	messages   int64
	// late counts operations that completed after -duration ran out: they
	// are left out of the rates, which cover the measured window only.
	late    int64
	lat     histogram // per operation: a whole connection, or a round trip
	hsLat   histogram // connect to established context
	errors  [numErrKinds]int64
	lastErr error
}

func (s *stats) merge(o *stats) {
	s.handshakes += o.handshakes
	s.messages += o.messages
	s.late += o.late
	s.lat.Merge(&o.lat)
	s.hsLat.Merge(&o.hsLat)
	for i, n := range o.errors {
		s.errors[i] += n
	}
	if o.lastErr != nil {
		s.lastErr = o.lastErr
	}
}

// bench runs one load against one server.
type bench struct {
	o      options
	tkt    *client.Ticket
	msg    []byte
	mo     client.MessageOptions
	stderr io.Writer
	dialer net.Dialer

	// Live totals for the progress line; the per-goroutine stats are exact.
	liveHandshakes atomic.Int64
	liveMessages   atomic.Int64
	liveErrors     atomic.Int64
	// issued counts operations started against -n.
	issued atomic.Int64
}

func newBench(o options, tkt *client.Ticket, stderr io.Writer) *bench {
	return &bench{
		o:      o,
		tkt:    tkt,
		msg:    message(o.size),
		mo:     client.MessageOptions{NoEncrypt: o.nx},
		stderr: stderr,
		dialer: net.Dialer{Timeout: o.timeout},
	}
}

// message returns n printable bytes. MIT's gss-server logs every message it
// receives, as text when it starts with printable characters and as a hex
// dump otherwise; printable text keeps its logging cost at one fwrite.
func message(n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[i%len(alphabet)]
	}
	return b
}

// next reserves one operation: false once the load should stop (duration
// over, -n reached, or aborted).
func (b *bench) next(stop context.Context) bool {
	if stop.Err() != nil {
		return false
	}
	return b.o.count == 0 || b.issued.Add(1) <= b.o.count
}

// conn is an established connection with its abort hook.
type conn struct {
	c       *client.Conn
	release func() bool // stops the abort hook
}

func (c *conn) close() error {
	c.release()
	return c.c.Close()
}

func (c *conn) abort() {
	c.release()
	c.c.Abort()
}

// connect dials and establishes one context. The connection is closed if
// abort is cancelled (hard cap or signal), which unblocks any read or write
// in progress.
func (b *bench) connect(abort context.Context) (*conn, phase, error) {
	nc, err := b.dialer.DialContext(abort, "tcp", b.o.addr)
	if err != nil {
		return nil, phaseDial, err
	}
	if tc, ok := nc.(*net.TCPConn); ok && b.o.quickAck {
		if qc, err := newQuickAckConn(tc); err == nil {
			nc = qc
		}
	}
	closer := nc
	release := context.AfterFunc(abort, func() { closer.Close() })
	c, err := client.Establish(nc, b.tkt, client.Options{Flags: b.o.gssFlags(), Timeout: b.o.timeout})
	if err != nil {
		release()
		nc.Close()
		return nil, phaseEstablish, err
	}
	return &conn{c: c, release: release}, phaseEstablish, nil
}

// quickAckConn re-arms TCP_QUICKACK (tcp(7)) after every read and write,
// so that this end acknowledges the server's segments at once. MIT's
// gss-server writes each reply as three write(2)s (flag byte, length,
// body) without TCP_NODELAY; Nagle's algorithm then holds the second and
// third until the first is acknowledged, and a delayed ACK makes every
// round trip take about 40 ms on Linux whatever the server's speed.
// Quick ACKs let the benchmark measure the server instead. The kernel
// drops the flag when it sees the connection as interactive, hence the
// re-arming; it costs one setsockopt per read or write.
type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func newQuickAckConn(tc *net.TCPConn) (*quickAckConn, error) {
	// client.Establish sets TCP_NODELAY only on a *net.TCPConn, which
	// this wrapper is not.
	if err := tc.SetNoDelay(true); err != nil {
		return nil, err
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &quickAckConn{TCPConn: tc, raw: raw}, nil
}

func (q *quickAckConn) quickAck() {
	q.raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}

// Read reads, then re-arms quick ACKs.
func (q *quickAckConn) Read(b []byte) (int, error) {
	n, err := q.TCPConn.Read(b)
	q.quickAck()
	return n, err
}

// Write writes, then re-arms quick ACKs: sending data is what puts the
// connection back into delayed-ACK mode.
func (q *quickAckConn) Write(b []byte) (int, error) {
	n, err := q.TCPConn.Write(b)
	q.quickAck()
	return n, err
}

// fail records a failed operation, unless the run is being aborted (then
// the failure is the abort's doing), and pauses briefly.
func (b *bench) fail(abort, stop context.Context, st *stats, p phase, err error) {
	if abort.Err() != nil {
		return
	}
	st.errors[classify(p, err)]++
	st.lastErr = err
	b.liveErrors.Add(1)
	t := time.NewTimer(errorBackoff)
	defer t.Stop()
	select {
	case <-t.C:
	case <-stop.Done():
	}
}

// handshakeWorker loops whole connections: connect, establish, -mcount
// messages, NOOP, close. Latency is the whole connection.
func (b *bench) handshakeWorker(abort, stop context.Context, st *stats) {
	for b.next(stop) {
		t0 := time.Now()
		c, p, err := b.connect(abort)
		if err != nil {
			b.fail(abort, stop, st, p, err)
			continue
		}
		st.hsLat.Record(time.Since(t0))
		sent := 0
		for range b.o.mcount {
			if err := c.c.Exchange(b.msg, b.mo); err != nil {
				c.abort()
				b.fail(abort, stop, st, phaseMessage, err)
				break
			}
			sent++
			b.liveMessages.Add(1)
		}
		if sent < b.o.mcount {
			continue
		}
		if err := c.close(); err != nil {
			b.fail(abort, stop, st, phaseMessage, err)
			continue
		}
		if stop.Err() != nil {
			st.late++
			continue
		}
		st.handshakes++
		st.messages += int64(sent)
		b.liveHandshakes.Add(1)
		st.lat.Record(time.Since(t0))
	}
}

// sessionWorker establishes one session and loops round trips on it; a
// failed session is replaced. Latency is one round trip.
func (b *bench) sessionWorker(abort, stop context.Context, st *stats) {
	for stop.Err() == nil {
		t0 := time.Now()
		c, p, err := b.connect(abort)
		if err != nil {
			b.fail(abort, stop, st, p, err)
			continue
		}
		st.hsLat.Record(time.Since(t0))
		st.handshakes++
		b.liveHandshakes.Add(1)
		for {
			if !b.next(stop) {
				if err := c.close(); err != nil {
					b.fail(abort, stop, st, phaseMessage, err)
				}
				return
			}
			t1 := time.Now()
			if err := c.c.Exchange(b.msg, b.mo); err != nil {
				c.abort()
				b.fail(abort, stop, st, phaseMessage, err)
				break
			}
			if stop.Err() != nil {
				st.late++
				continue
			}
			st.lat.Record(time.Since(t1))
			st.messages++
			b.liveMessages.Add(1)
		}
	}
}

// load runs worker on -c goroutines until -duration or -n, and collects
// the result.
func (b *bench) load(abort context.Context, worker func(abort, stop context.Context, st *stats)) *Result {
	stop, cancel := context.WithTimeout(abort, b.o.duration)
	defer cancel()
	b.issued.Store(0)
	b.liveHandshakes.Store(0)
	b.liveMessages.Store(0)
	b.liveErrors.Store(0)

	start := time.Now()
	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	if b.o.progress > 0 {
		progressWG.Go(func() { b.reportProgress(start, progressDone) })
	}
	all := make([]stats, b.o.concurrency)
	var wg sync.WaitGroup
	for i := range all {
		wg.Go(func() { worker(abort, stop, &all[i]) })
	}
	wg.Wait()
	// The rates cover the measured window: all of -duration when it ran
	// out (operations still in flight then are counted as late), else up
	// to the last operation of -n.
	elapsed := time.Since(start)
	if stop.Err() != nil && abort.Err() == nil {
		elapsed = b.o.duration
	}
	close(progressDone)
	progressWG.Wait()

	var total stats
	for i := range all {
		total.merge(&all[i])
	}
	return b.result(&total, elapsed, abort.Err() != nil)
}

// reportProgress prints a line on stderr every -progress until done.
func (b *bench) reportProgress(start time.Time, done <-chan struct{}) {
	t := time.NewTicker(b.o.progress)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			s := now.Sub(start).Seconds()
			h, m := b.liveHandshakes.Load(), b.liveMessages.Load()
			fmt.Fprintf(b.stderr, "gss-bench: %5.1fs  %d handshakes (%.0f/s)  %d messages (%.0f/s)  %d errors\n",
				s, h, float64(h)/s, m, float64(m)/s, b.liveErrors.Load())
		}
	}
}

// Result is the outcome of a run, printed as text or JSON.
type Result struct {
	Mode        string  `json:"mode"`
	Target      string  `json:"target"`
	Service     string  `json:"service"`
	Concurrency int     `json:"concurrency"`
	Size        int     `json:"size"`
	MCount      int     `json:"mcount"`
	Conf        bool    `json:"conf"`
	Seq         bool    `json:"seq"`
	Elapsed     float64 `json:"elapsed_s"`

	Handshakes       int64   `json:"handshakes"`
	HandshakesPerSec float64 `json:"handshakes_per_s"`
	Messages         int64   `json:"messages"`
	// LateOps completed after -duration ran out and are not in the rates.
	LateOps        int64   `json:"late_ops"`
	MessagesPerSec float64 `json:"messages_per_s"`
	// MBPerSec is message payload (plaintext, one direction) in 10^6 bytes/s.
	MBPerSec float64 `json:"mb_per_s"`

	// Latency is per operation: a whole connection in handshake and hold
	// modes, one wrap→MIC round trip in session mode.
	Latency Percentiles `json:"latency_ms"`
	// HandshakeLatency is connect to established context.
	HandshakeLatency Percentiles `json:"handshake_latency_ms"`

	Errors      map[string]int64 `json:"errors"`
	ErrorsTotal int64            `json:"errors_total"`
	LastError   string           `json:"last_error,omitempty"`
	Aborted     bool             `json:"aborted"`

	Hold *HoldResult `json:"hold,omitempty"`
}

// HoldResult describes the idle sessions of hold mode.
type HoldResult struct {
	Requested int `json:"requested"`
	Held      int `json:"held"`
	// EstablishSeconds is how long opening them took.
	EstablishSeconds float64          `json:"establish_s"`
	EstablishErrors  map[string]int64 `json:"establish_errors"`
	// Checked is true when every held session was sent one message after
	// the load; Alive counts those that answered with a valid MIC.
	Checked bool `json:"checked"`
	Alive   int  `json:"alive"`
}

func errorMap(e *[numErrKinds]int64) (map[string]int64, int64) {
	m := make(map[string]int64, numErrKinds)
	var total int64
	for k := range numErrKinds {
		m[k.String()] = e[k]
		total += e[k]
	}
	return m, total
}

func (b *bench) result(st *stats, elapsed time.Duration, aborted bool) *Result {
	secs := elapsed.Seconds()
	r := &Result{
		Mode: b.o.mode, Target: b.o.addr, Service: b.o.service,
		Concurrency: b.o.concurrency, Size: b.o.size, MCount: b.o.mcount,
		Conf: !b.o.nx, Seq: b.o.seq, Elapsed: secs,
		Handshakes: st.handshakes, Messages: st.messages, LateOps: st.late,
		Latency: st.lat.Summary(), HandshakeLatency: st.hsLat.Summary(),
		Aborted: aborted,
	}
	if b.o.mode == "session" {
		r.MCount = 0
	}
	if secs > 0 {
		r.HandshakesPerSec = float64(st.handshakes) / secs
		r.MessagesPerSec = float64(st.messages) / secs
		r.MBPerSec = float64(st.messages) * float64(b.o.size) / secs / 1e6
	}
	r.Errors, r.ErrorsTotal = errorMap(&st.errors)
	if st.lastErr != nil {
		r.LastError = st.lastErr.Error()
	}
	return r
}

// ok counts the operations that succeeded.
func (r *Result) ok() int64 {
	if r.Mode == "session" {
		return r.Messages
	}
	return r.Handshakes
}

// writeText prints r for a human.
func (r *Result) writeText(w io.Writer) {
	fmt.Fprintf(w, "%s load on %s (%s): %d connections, %.2fs", r.Mode, r.Target, r.Service, r.Concurrency, r.Elapsed)
	if r.Aborted {
		fmt.Fprint(w, " (aborted)")
	}
	fmt.Fprintln(w)
	if h := r.Hold; h != nil {
		fmt.Fprintf(w, "  held:        %d of %d idle sessions (opened in %.2fs)", h.Held, h.Requested, h.EstablishSeconds)
		if h.Checked {
			fmt.Fprintf(w, ", %d answered afterwards", h.Alive)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  handshakes:  %d (%.1f/s)\n", r.Handshakes, r.HandshakesPerSec)
	fmt.Fprintf(w, "  messages:    %d of %d bytes (%.1f/s, %.2f MB/s)\n", r.Messages, r.Size, r.MessagesPerSec, r.MBPerSec)
	p := r.Latency
	fmt.Fprintf(w, "  latency ms:  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  (n=%d)\n", p.P50, p.P90, p.P99, p.Max, p.Count)
	p = r.HandshakeLatency
	fmt.Fprintf(w, "  establish ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", p.P50, p.P90, p.P99, p.Max)
	fmt.Fprintf(w, "  errors:      %d", r.ErrorsTotal)
	for k := range numErrKinds {
		if n := r.Errors[k.String()]; n > 0 {
			fmt.Fprintf(w, "  %s=%d", k, n)
		}
	}
	fmt.Fprintln(w)
	if r.LastError != "" {
		fmt.Fprintf(w, "  last error:  %s\n", r.LastError)
	}
}

// run executes the configured mode under the hard cap.
func (b *bench) run(ctx context.Context) (*Result, error) {
	abort, cancel := context.WithTimeout(ctx, b.o.maxTime)
	defer cancel()
	switch b.o.mode {
	case "handshake":
		return b.load(abort, b.handshakeWorker), nil
	case "session":
		return b.load(abort, b.sessionWorker), nil
	case "hold":
		return b.holdRun(abort), nil
	}
	return nil, fmt.Errorf("unknown mode %q", b.o.mode)
}

// holdRun opens -hold idle sessions, then runs the handshake load beside
// them. The lines "gss-bench: held N of M sessions" and "gss-bench: load
// starting" on stderr let a harness sample the server while the sessions
// sit idle.
func (b *bench) holdRun(abort context.Context) *Result {
	h := &HoldResult{Requested: b.o.hold}
	sessions := make([]*conn, b.o.hold)
	var next atomic.Int64
	var mu sync.Mutex
	var estErrs [numErrKinds]int64
	var lastErr error
	t0 := time.Now()
	var wg sync.WaitGroup
	for range min(b.o.concurrency, b.o.hold) {
		wg.Go(func() {
			for abort.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(sessions) {
					return
				}
				c, p, err := b.connect(abort)
				if err != nil {
					if abort.Err() != nil {
						return
					}
					mu.Lock()
					estErrs[classify(p, err)]++
					lastErr = err
					mu.Unlock()
					continue
				}
				sessions[i] = c
			}
		})
	}
	wg.Wait()
	h.EstablishSeconds = time.Since(t0).Seconds()
	for _, c := range sessions {
		if c != nil {
			h.Held++
		}
	}
	h.EstablishErrors, _ = errorMap(&estErrs)
	fmt.Fprintf(b.stderr, "gss-bench: held %d of %d sessions in %.2fs\n", h.Held, h.Requested, h.EstablishSeconds)
	if lastErr != nil {
		fmt.Fprintf(b.stderr, "gss-bench: last error while opening sessions: %v\n", lastErr)
	}

	if b.o.settle > 0 {
		t := time.NewTimer(b.o.settle)
		select {
		case <-t.C:
		case <-abort.Done():
			t.Stop()
		}
	}
	fmt.Fprintln(b.stderr, "gss-bench: load starting")
	r := b.load(abort, b.handshakeWorker)
	r.Hold = h

	// Check, then close, the held sessions, -c at a time.
	h.Checked = b.o.holdCheck && abort.Err() == nil
	var alive atomic.Int64
	next.Store(0)
	for range min(b.o.concurrency, b.o.hold) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(sessions) {
					return
				}
				c := sessions[i]
				if c == nil {
					continue
				}
				if h.Checked {
					if err := c.c.Exchange(b.msg, b.mo); err != nil {
						c.abort()
						continue
					}
					alive.Add(1)
				}
				if abort.Err() != nil {
					c.abort()
				} else {
					c.close()
				}
			}
		})
	}
	wg.Wait()
	h.Alive = int(alive.Load())
	r.Aborted = abort.Err() != nil
	return r
}
