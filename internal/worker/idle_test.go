package worker

import (
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/gss/gsstest"
	"github.com/gss-acceptor/gss-acceptor/internal/stream"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// maxIdleSessionBytes bounds the memory one idle proxy session holds in a
// worker (heap and goroutine stacks, after one request and its answer).
// 10,000 idle sessions must fit in 300 MiB of worker RSS (issue #15,
// bench/tunnel/run), the workers' runtimes included: under 30 KiB each.
// The figure here also counts the client end's context state. A session
// that held a read buffer per direction (16 KiB each) and a goroutine for
// its idle timer, as the relay once did, measured 83 KiB.
const maxIdleSessionBytes = 28 << 10

// TestStreamIdleSessionMemory: idle proxy sessions, each after one
// PING/PONG through the relay, hold at most maxIdleSessionBytes each.
func TestStreamIdleSessionMemory(t *testing.T) {
	const n = 300
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var (
		mu      sync.Mutex
		backend []net.Conn
	)
	defer func() {
		mu.Lock()
		for _, c := range backend {
			c.Close()
		}
		mu.Unlock()
	}()
	// The backend answers each connection's PING once, then holds it with
	// no goroutine, so that its memory stays small beside the sessions'.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			backend = append(backend, c)
			mu.Unlock()
			go func() {
				buf := make([]byte, 6)
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(c, buf); err == nil && string(buf) == "PING\r\n" {
					io.WriteString(c, "+PONG\r\n")
				}
				c.SetDeadline(time.Time{})
			}()
		}
	}()
	svc := &StreamService{Backend: Backend{Network: "tcp", Address: ln.Addr().String()}}

	f := gsstest.New(t, 18)
	acc := f.Acceptor(t, gss.AcceptorConfig{})
	clients := make([]*stream.Conn, n)
	servers := make([]net.Conn, n)
	actxs := make([]*gss.Context, n)
	for i := range n {
		ictx, actx := f.Establish(t, acc, gss.FlagMutual|gss.FlagReplay|gss.FlagSequence)
		cc, sc := tcpConnPair(t)
		// A tiny client-side reader: only the server side is measured.
		if clients[i], err = stream.New(cc, wire.NewReader(cc, 16), ictx, stream.Config{}); err != nil {
			t.Fatal(err)
		}
		servers[i], actxs[i] = sc, actx
	}

	before := liveBytes()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := range n {
		s := &Session{ID: uint64(i), Context: actxs[i], Conn: servers[i], Reader: wire.NewReader(servers[i], readBufferSize),
			Log: zap.NewNop(), IdleTimeout: time.Minute}
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc.Serve(ctx, s)
		}()
	}
	defer func() {
		for _, c := range servers {
			c.Close()
		}
	}()
	pong := make([]byte, 7)
	for i, c := range clients {
		c.NetConn().SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, pong); err != nil || string(pong) != "+PONG\r\n" {
			t.Fatalf("session %d: %q, %v", i, pong, err)
		}
	}
	time.Sleep(100 * time.Millisecond) // every relay back in its reads
	per := (liveBytes() - before) / n
	t.Logf("%d idle proxy sessions: %d bytes each (heap + stacks)", n, per)
	limit := int64(maxIdleSessionBytes)
	if raceEnabled {
		limit += 8 << 10
	}
	if per > limit {
		t.Errorf("an idle proxy session holds %d bytes, want at most %d", per, limit)
	}
}

// liveBytes is the heap in use plus goroutine stacks, after a collection.
func liveBytes() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// tcpConnPair returns the two ends of a loopback TCP connection.
func tcpConnPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
