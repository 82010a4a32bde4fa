package stream

import (
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// relayFixture runs Relay(server stream, plain) in the background, as a
// worker does with its backend connection: client is the remote end of
// the stream, backend the far end of the plain connection.
type relayFixture struct {
	client  *Conn
	backend *net.TCPConn
	done    chan struct{}
	counts  Counts
	err     error
}

func startRelay(t *testing.T, o RelayOptions) *relayFixture {
	t.Helper()
	client, server := streamPair(t, Config{}, Config{})
	plain, backend := tcpPair(t)
	f := &relayFixture{client: client, backend: backend, done: make(chan struct{})}
	go func() {
		f.counts, f.err = Relay(server, plain, o)
		close(f.done)
	}()
	return f
}

func (f *relayFixture) wait(t *testing.T) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Relay did not return")
	}
}

// TestRelayHalfClose: the client sends, half-closes; the backend reads to
// EOF (the half-close reached it), answers with the digest and closes; the
// client reads the answer and its EOF. Both ends are clean.
func TestRelayHalfClose(t *testing.T) {
	f := startRelay(t, RelayOptions{})
	payload := randomBytes(t, 1<<20+123)
	go func() {
		got, err := io.ReadAll(f.backend)
		if err != nil {
			t.Error(err)
			return
		}
		sum := sha256.Sum256(got)
		f.backend.Write(sum[:])
		f.backend.CloseWrite()
	}()
	go func() {
		f.client.Write(payload)
		f.client.CloseWrite()
	}()
	answer, err := io.ReadAll(f.client)
	if err != nil {
		t.Fatal(err)
	}
	if want := sha256.Sum256(payload); string(answer) != string(want[:]) {
		t.Fatal("the backend's digest differs from the payload's")
	}
	f.wait(t)
	if f.err != nil {
		t.Fatalf("Relay: %v", f.err)
	}
	if f.counts.FromPeer != int64(len(payload)) || f.counts.ToPeer != 32 {
		t.Fatalf("counts %+v, want FromPeer %d ToPeer 32", f.counts, len(payload))
	}
	if err := f.client.Done(); err != nil {
		t.Fatalf("client Done: %v", err)
	}
}

// TestRelayPeerAbort: an ERROR record from the client ends the relay with
// a *PeerError and closes the backend connection.
func TestRelayPeerAbort(t *testing.T) {
	f := startRelay(t, RelayOptions{})
	f.client.Abort("client gave up")
	f.wait(t)
	var pe *PeerError
	if !errors.As(f.err, &pe) || pe.Reason != "client gave up" {
		t.Fatalf("Relay = %v, want PeerError", f.err)
	}
	f.backend.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := f.backend.Read(make([]byte, 1)); err == nil {
		t.Fatal("backend connection still open after the client aborted")
	}
}

// TestRelayClientVanishes: the client's connection closes without EOF; the
// relay reports truncation and closes the backend.
func TestRelayClientVanishes(t *testing.T) {
	f := startRelay(t, RelayOptions{})
	f.client.Write([]byte("partial"))
	f.client.Close()
	f.wait(t)
	if !errors.Is(f.err, ErrTruncated) {
		t.Fatalf("Relay = %v, want ErrTruncated", f.err)
	}
	f.backend.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(f.backend); err != nil || string(b) != "partial" {
		t.Fatalf("backend read %q, %v; want the bytes then its close", b, err)
	}
}

// TestRelayBackendReset: a backend failure becomes an ERROR record with
// the reason AbortReason gives.
func TestRelayBackendReset(t *testing.T) {
	f := startRelay(t, RelayOptions{AbortReason: func(err error) string { return "backend failed: " + err.Error() }})
	f.backend.SetLinger(0)
	f.backend.Close() // RST
	_, err := io.ReadAll(f.client)
	var pe *PeerError
	if !errors.As(err, &pe) || !strings.HasPrefix(pe.Reason, "backend failed: ") {
		t.Fatalf("client read %v, want a PeerError from AbortReason", err)
	}
	f.wait(t)
	if f.err == nil {
		t.Fatal("Relay = nil after a backend reset")
	}
}

func TestRelayIdleTimeout(t *testing.T) {
	// The gaps are a sixth of the timeout, so a loaded machine that
	// oversleeps does not end the relay early; the traffic still lasts
	// longer than the timeout.
	f := startRelay(t, RelayOptions{IdleTimeout: 600 * time.Millisecond})
	// Traffic keeps it alive past the timeout...
	for range 10 {
		time.Sleep(100 * time.Millisecond)
		f.client.Write([]byte("x"))
	}
	select {
	case <-f.done:
		t.Fatalf("relay ended while traffic flowed: %v", f.err)
	default:
	}
	// ...silence ends it.
	start := time.Now()
	f.wait(t)
	if !errors.Is(f.err, ErrIdle) {
		t.Fatalf("Relay = %v, want ErrIdle", f.err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("idle timeout took %v", d)
	}
}

// TestRelayBackpressure: a backend that never reads stops the client's
// writes; the relay holds at most one chunk, so what the client managed to
// write is bounded by the socket buffers.
func TestRelayBackpressure(t *testing.T) {
	f := startRelay(t, RelayOptions{})
	var written atomic.Int64
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := f.client.Write(buf)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	var last int64 = -1
	for i := 0; i < 100; i++ {
		time.Sleep(50 * time.Millisecond)
		w := written.Load()
		if w == last {
			break
		}
		last = w
	}
	if w := written.Load(); w != last || w > 64<<20 {
		t.Fatalf("client writes did not stall: %d bytes written", w)
	}
	t.Logf("client stalled after %d bytes", last)
	f.client.Close()
	f.backend.Close()
	f.wait(t)
}
