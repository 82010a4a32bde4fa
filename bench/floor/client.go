package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// errorBackoff is the pause after a failed connection, so that a dead
// server does not turn the client into a busy loop.
const errorBackoff = 10 * time.Millisecond

// clientConfig configures the load generator.
type clientConfig struct {
	addr     string
	conc     int
	duration time.Duration // how long to start new connections
	n        int64         // connections in all; 0: no limit
	req      int           // context frame body bytes
}

// clientResult is the load generator's report. The field names match
// gss-bench's JSON where they mean the same.
type clientResult struct {
	Mode             string  `json:"mode"`
	Concurrency      int     `json:"concurrency"`
	Handshakes       int64   `json:"handshakes"`
	HandshakesPerSec float64 `json:"handshakes_per_s"`
	ElapsedS         float64 `json:"elapsed_s"`
	ErrorsTotal      int64   `json:"errors_total"`
	LastError        string  `json:"last_error,omitempty"`
}

// tally is one client goroutine's counts.
type tally struct {
	ok, failed int64
	last       error
}

// runClient runs cfg.conc goroutines that each loop whole connections
// until cfg.duration has passed, cfg.n connections have been started or
// ctx ends. Connections in progress when the time is up are finished and
// counted; the rate covers the whole run. A failure caused by ctx ending
// is not counted.
func runClient(ctx context.Context, cfg clientConfig) clientResult {
	// What gss-bench -mode handshake -mcount 0 writes: the opener and the
	// first context token in one write, then a NOOP once the reply is in.
	hello := wire.AppendFrame(nil, wire.FlagNoop|wire.FlagContextNext, nil)
	hello = wire.AppendFrame(hello, wire.FlagContext, make([]byte, cfg.req))
	noop := wire.AppendFrame(nil, wire.FlagNoop, nil)

	start := time.Now()
	end := start.Add(cfg.duration)
	var issued atomic.Int64
	next := func() bool {
		if ctx.Err() != nil || !time.Now().Before(end) {
			return false
		}
		return cfg.n == 0 || issued.Add(1) <= cfg.n
	}
	tallies := make([]tally, cfg.conc)
	var wg sync.WaitGroup
	for i := range tallies {
		t := &tallies[i]
		wg.Go(func() {
			for next() {
				err := oneConnection(ctx, cfg.addr, hello, noop)
				switch {
				case err == nil:
					t.ok++
				case ctx.Err() == nil:
					t.failed++
					t.last = err
					pause(ctx, errorBackoff)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := clientResult{Mode: "floor", Concurrency: cfg.conc, ElapsedS: elapsed.Seconds()}
	for _, t := range tallies {
		r.Handshakes += t.ok
		r.ErrorsTotal += t.failed
		if t.last != nil {
			r.LastError = t.last.Error()
		}
	}
	r.HandshakesPerSec = float64(r.Handshakes) / elapsed.Seconds()
	return r
}

// oneConnection dials, sends the opener and the context frame, reads the
// reply, sends a NOOP and waits for the server to close. Every read and
// write falls within ioTimeout of the dial.
func oneConnection(ctx context.Context, addr string, hello, noop []byte) error {
	d := net.Dialer{Timeout: ioTimeout, KeepAlive: -1}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("floor: dial: %w", err)
	}
	defer conn.Close()
	release := context.AfterFunc(ctx, func() { conn.Close() })
	defer release()
	if err := conn.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		return fmt.Errorf("floor: setting the deadline: %w", err)
	}
	if _, err := conn.Write(hello); err != nil {
		return fmt.Errorf("floor: writing the context frame: %w", err)
	}
	r := wire.NewReader(conn, acceptorReadBuffer)
	f, err := r.ReadFrame(maxFrameBody)
	if err != nil {
		return fmt.Errorf("floor: reading the reply: %w", err)
	}
	if f.Flags&wire.FlagContext == 0 {
		return fmt.Errorf("floor: reply flags %#02x, want a context frame", f.Flags)
	}
	if _, err := conn.Write(noop); err != nil {
		return fmt.Errorf("floor: writing the NOOP: %w", err)
	}
	switch _, err := r.ReadFrame(0); {
	case err == nil:
		return errors.New("floor: a frame after the reply, want end of stream")
	case !errors.Is(err, io.EOF):
		return fmt.Errorf("floor: waiting for the server to close: %w", err)
	}
	return nil
}

// pause sleeps for d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
