package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

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
