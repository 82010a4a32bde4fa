package handoff

import (
	"sync"
	"time"
)

// Deferred holds messages that may wait to go out with the next message
// on a channel, or until a delay has passed, whichever comes first
// (ARCHITECTURE.md §11: a worker's SESSION_END rides ahead of its next
// ACK, so the acceptor wakes once for both). It shares its owner's send
// lock: Add and Flush take it, the *Locked methods expect it held, and
// the owner calls FlushLocked before each message of its own.
type Deferred[T any] struct {
	mu    *sync.Mutex // the owner's send lock
	delay time.Duration
	send  func(T) // sends one message; called with mu held
	items []T
	timer *time.Timer
}

// NewDeferred returns a Deferred that sends with send, under mu, at most
// delay after the first message waiting.
func NewDeferred[T any](mu *sync.Mutex, delay time.Duration, send func(T)) *Deferred[T] {
	return &Deferred[T]{mu: mu, delay: delay, send: send}
}

// Add queues m; now, it is sent at once with whatever waits.
func (d *Deferred[T]) Add(m T, now bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.items = append(d.items, m)
	switch {
	case now:
		d.FlushLocked()
	case d.timer == nil:
		d.timer = time.AfterFunc(d.delay, d.Flush)
	case len(d.items) == 1:
		d.timer.Reset(d.delay)
	}
}

// Flush sends what waits (the timer, and the owner at exit).
func (d *Deferred[T]) Flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.FlushLocked()
}

// FlushLocked sends what waits, in order, back to back. The lock is held.
func (d *Deferred[T]) FlushLocked() {
	if len(d.items) == 0 {
		return
	}
	if d.timer != nil {
		d.timer.Stop()
	}
	var zero T
	for i, m := range d.items {
		d.send(m)
		d.items[i] = zero
	}
	d.items = d.items[:0]
}

// LenLocked returns how many messages wait. The lock is held.
func (d *Deferred[T]) LenLocked() int { return len(d.items) }
