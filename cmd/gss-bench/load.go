package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
)

// errorBackoff is the pause after a failed operation, so that a dead or
// refusing server does not turn the load generator into a busy loop that
// starves the server it measures of the shared CPU.
const errorBackoff = 10 * time.Millisecond

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
