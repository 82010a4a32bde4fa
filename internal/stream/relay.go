package stream

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// Counts are the stream bytes a Relay moved in each direction.
type Counts struct {
	ToPeer   int64 // from the plain side, written to the stream
	FromPeer int64 // read from the stream, written to the plain side
}

// RelayOptions tune Relay.
type RelayOptions struct {
	// IdleTimeout ends the relay when no byte has moved in either
	// direction for this long (a write that does not progress counts as
	// idle). 0: no idle timeout.
	IdleTimeout time.Duration
	// AbortReason, when set, turns a failure on the plain side into an
	// ERROR record for the peer: it gets AbortReason(err) as the reason.
	AbortReason func(err error) string
}

// ErrIdle is returned by Relay when the idle timeout ended the session.
var ErrIdle = errors.New("stream: idle timeout")

// closeWriter is a connection that can end its writing side.
type closeWriter interface {
	CloseWrite() error
}

// peerReasonGrace bounds how long Relay waits, after a write to the peer
// failed, for the other direction to read the peer's ERROR record.
const peerReasonGrace = time.Second

// Relay copies between the stream s and the plain connection p in both
// directions until both have ended: p's EOF becomes s's EOF record
// (CloseWrite), the peer's EOF record becomes p's half-close (CloseWrite,
// when p has one; else p is left open until the relay ends). One chunk is
// in flight per direction: Relay reads the next chunk only after the last
// one was written, so a slow reader on either side holds the other back
// through TCP and nothing buffers without bound.
//
// It returns nil when both directions ended with EOF (s.Done), else the
// first failure: a *PeerError, ErrTruncated, ErrIdle, a read or write
// error. On failure both connections are closed at once (the caller closes
// them anyway); the relay never leaves a goroutine behind.
func Relay(s *Conn, p io.ReadWriteCloser, o RelayOptions) (Counts, error) {
	var (
		counts   Counts
		toPeer   atomic.Int64
		fromPeer atomic.Int64
		once     sync.Once
		first    error
		plainAct atomic.Int64
		failed   atomic.Bool
	)
	fail := func(err error) {
		once.Do(func() {
			failed.Store(true)
			first = err
			s.Close()
			p.Close()
		})
	}
	// abort tells the peer why the plain side failed, unless the relay
	// is already over (the failure is then our own Close).
	abort := func(err error) {
		if o.AbortReason != nil && !failed.Load() {
			s.Abort(o.AbortReason(err))
		}
		fail(err)
	}

	var stopIdle func()
	if o.IdleTimeout > 0 {
		stopIdle = watchIdle(o.IdleTimeout, func() int64 { return s.activity.Load() + plainAct.Load() }, func() { fail(ErrIdle) })
	}

	var wg sync.WaitGroup
	wg.Add(2)
	fromPeerDone := make(chan struct{})
	// failWrite reports a failed write to the peer. A peer that ends the
	// session with an ERROR record closes right after it, so the write
	// can fail (EPIPE) before the other direction has read that record:
	// the reader gets a moment to report the peer's reason, which says
	// more than a broken pipe.
	failWrite := func(err error) {
		t := time.NewTimer(peerReasonGrace)
		select {
		case <-fromPeerDone:
		case <-t.C:
		}
		t.Stop()
		fail(err)
	}
	// plain -> stream. Neither direction holds a buffer while its source
	// is idle (ChunkReader, next): an idle session costs its goroutines
	// and little else (ARCHITECTURE.md §1).
	go func() {
		defer wg.Done()
		cr := wire.NewChunkReader(p, MaxChunk)
		defer cr.Release()
		for {
			buf, rerr := cr.Next()
			if n := len(buf); n > 0 {
				plainAct.Add(1)
				if _, err := s.Write(buf); err != nil {
					failWrite(err)
					return
				}
				toPeer.Add(int64(n))
			}
			if rerr == io.EOF {
				if err := s.CloseWrite(); err != nil {
					failWrite(err)
				}
				return
			}
			if rerr != nil {
				abort(fmt.Errorf("stream: reading the plain side: %w", rerr))
				return
			}
		}
	}()
	// stream -> plain, in this goroutine: one goroutine fewer per session
	func() {
		defer wg.Done()
		defer close(fromPeerDone)
		for {
			buf, rerr := s.next()
			if n := len(buf); n > 0 {
				if _, err := p.Write(buf); err != nil {
					abort(fmt.Errorf("stream: writing the plain side: %w", err))
					return
				}
				plainAct.Add(1)
				fromPeer.Add(int64(n))
			}
			if rerr == io.EOF {
				if cw, ok := p.(closeWriter); ok {
					if err := cw.CloseWrite(); err != nil {
						fail(fmt.Errorf("stream: half-closing the plain side: %w", err))
					}
				}
				return
			}
			if rerr != nil {
				fail(rerr)
				return
			}
		}
	}()
	wg.Wait()
	if stopIdle != nil {
		stopIdle()
	}
	counts.ToPeer, counts.FromPeer = toPeer.Load(), fromPeer.Load()
	var err error
	once.Do(func() {}) // no failure recorded after this point
	if first != nil {
		err = first
	} else {
		err = s.Done()
	}
	return counts, err
}

// watchIdle calls onIdle once when activity() has not changed for d. The
// returned function stops watching. It checks from a timer, every d/4,
// so it costs no goroutine while it waits.
func watchIdle(d time.Duration, activity func() int64, onIdle func()) (stop func()) {
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	period := max(d/4, time.Millisecond)
	last, since := activity(), time.Now()
	check := func() {
		mu.Lock()
		if stopped {
			mu.Unlock()
			return
		}
		now := time.Now()
		if a := activity(); a != last {
			last, since = a, now
		} else if now.Sub(since) >= d {
			stopped = true
			mu.Unlock()
			onIdle()
			return
		}
		t.Reset(period)
		mu.Unlock()
	}
	mu.Lock()
	t = time.AfterFunc(period, check)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
