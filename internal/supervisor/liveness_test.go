package supervisor

import (
	"testing"
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
