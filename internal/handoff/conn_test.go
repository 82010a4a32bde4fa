package handoff

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// Every way a Recv can end (a message, a deadline, the peer closing, the
// local Close from another goroutine) returns, and leaves no goroutine
// and no descriptor behind.
func TestConnLeavesNothingBehind(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	tests := []struct {
		name string
		run  func(t *testing.T, parent, child *Conn) error // the error the blocked Recv must see
		want func(error) bool
	}{
		{"message with a descriptor", func(t *testing.T, parent, child *Conn) error {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
			defer a.Close()
			defer b.Close()
			if err := parent.Send(&Handoff{ID: 9, Token: []byte("token"), File: a}); err != nil {
				t.Fatal(err)
			}
			m, err := child.Recv()
			if h, ok := m.(*Handoff); ok {
				h.Close()
			}
			return err
		}, func(err error) bool { return err == nil }},
		{"read deadline", func(t *testing.T, _, child *Conn) error {
			child.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			_, err := child.Recv()
			return err
		}, func(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }},
		{"peer closes", func(t *testing.T, parent, child *Conn) error {
			closed := closeLater(parent)
			_, err := child.Recv()
			<-closed
			return err
		}, func(err error) bool { return err != nil }},
		{"local Close while blocked", func(t *testing.T, _, child *Conn) error {
			closed := closeLater(child)
			_, err := child.Recv()
			<-closed
			return err
		}, func(err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			startPoller(t)
			before := countFDs(t)
			parent, childFile, err := Pair()
			if err != nil {
				t.Fatal(err)
			}
			// FromFD owns (and closes) the number it is given: give it a copy.
			dup, err := unix.Dup(int(childFile.Fd()))
			childFile.Close()
			if err != nil {
				t.Fatal(err)
			}
			child, err := FromFD(uintptr(dup))
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- tt.run(t, parent, child) }()
			select {
			case err := <-done:
				if !tt.want(err) {
					t.Errorf("Recv ended with %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Recv did not return")
			}
			parent.Close()
			child.Close()
			if after := countFDs(t); after != before {
				t.Errorf("%d descriptors after, %d before", after, before)
			}
		})
	}
}

// closeLater closes c from another goroutine after 20 ms and returns a
// channel closed once Close has returned. Recv can fail as soon as the
// closing Close has begun (it marks the descriptor closing first) and
// return before that Close has released the socket: a descriptor count
// taken before Close returns would see it still open.
func closeLater(c *Conn) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(20 * time.Millisecond)
		c.Close()
	}()
	return done
}

// SendContext returns when its context ends while the peer has stopped
// reading and the channel is full, by deadline or by cancel, and the
// message it gave up on never reaches the peer. The channel stays usable.
func TestSendContextBounded(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, context.DeadlineExceeded},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, child := pair(t)
			big := &Ack{ID: 1}
			// Fill the channel: the child does not read. A send can time
			// out without the channel being full (a loaded machine can
			// pass the 20 ms before the write is even tried), so the
			// channel counts as full after three timeouts in a row.
			filled, timeouts := 0, 0
			for filled < 10000 && timeouts < 3 {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
				err := parent.SendContext(ctx, big)
				cancel()
				switch {
				case errors.Is(err, os.ErrDeadlineExceeded):
					timeouts++
				case err != nil:
					t.Fatal(err)
				default:
					filled, timeouts = filled+1, 0
				}
			}
			if filled == 10000 {
				t.Fatal("the channel never filled")
			}
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			err := parent.SendContext(ctx, &Ack{ID: 2})
			if !errors.Is(err, tt.want) || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("SendContext on a full channel: %v; want %v and os.ErrDeadlineExceeded", err, tt.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("SendContext returned after %v", d)
			}
			// The peer reads what was queued, never ID 2; then the channel works.
			for i := 0; i < filled; i++ {
				m, err := child.Recv()
				if err != nil || m.(*Ack).ID != 1 {
					t.Fatalf("message %d: %v, %v", i, m, err)
				}
			}
			if err := parent.Send(&Ack{ID: 3}); err != nil {
				t.Fatal(err)
			}
			if m, err := child.Recv(); err != nil || m.(*Ack).ID != 3 {
				t.Fatalf("after the timeout: %v, %v; want ACK 3", m, err)
			}
		})
	}
}
