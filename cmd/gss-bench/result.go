package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
)

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
