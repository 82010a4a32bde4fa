package supervisor

import (
	"testing"
	"time"
)

// A worker that sends HANDOFF messages of its own, each with a
// descriptor, does not leak descriptors into the acceptor: the pool's
// reader closes every descriptor on a message it does not expect.
func TestPoolClosesStrayDescriptors(t *testing.T) {
	fp := startFaultyPool(t, 1, modeFDSpam, nil)
	before := openFDs(t)
	// The spam comes with the first HANDOFF, ahead of its ACK, so the
	// reader has seen every stray message once handoffOne returns.
	handoffOne(t, fp.Pool, "first")
	if after := openFDs(t); after > before+2 {
		t.Fatalf("%d open descriptors after %d stray HANDOFFs with one each, %d before", after, fakeSpamCount, before)
	}
}

// An ACK a worker sends just before it exits is not lost: the pool reads
// the channel to its end before it fails the worker's handoffs over, so
// the handoff is not re-sent and no second worker takes the session. The
// first SESSION_END is slow to process, so without that drain the exit is
// seen while the ACK still waits in the channel.
func TestPoolKeepsAckSentBeforeExit(t *testing.T) {
	slow := make(chan struct{}, 1)
	slow <- struct{}{}
	fp := startFaultyPool(t, 2, modeAckThenExit, func(c *PoolConfig) {
		c.OnSessionEnd = func(SessionEnd) {
			select {
			case <-slow:
				time.Sleep(300 * time.Millisecond)
			default:
			}
		}
	})
	res := handoffOne(t, fp.Pool, "tok")
	if res.Attempts != 1 || res.Status != 0 {
		t.Errorf("handoff %+v: want taken at the first attempt", res)
	}
	if got := fp.takenBy(t)["tok"]; len(got) != 1 {
		t.Errorf("session taken by workers %v, want exactly one", got)
	}
}
