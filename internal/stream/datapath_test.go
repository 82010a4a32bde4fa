package stream

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// writeCounter counts the writes to a connection.
type writeCounter struct {
	net.Conn
	mu     sync.Mutex
	writes []int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, len(p))
	w.mu.Unlock()
	return w.Conn.Write(p)
}

// TestWriteBatches: Write seals up to writeBatch records before one write
// to the connection (a 64 KiB write is one system call), and every record
// is still a frame of its own, at most MaxChunk of payload, in sequence.
func TestWriteBatches(t *testing.T) {
	ictx, actx := contexts(t)
	a, b := tcpPair(t)
	wc := &writeCounter{Conn: a}
	client, err := New(wc, nil, ictx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	server, err := New(b, nil, actx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{64 << 10, 3*MaxChunk + 1, 9 * MaxChunk, 10}
	var sent bytes.Buffer
	var chunks [][]byte
	for _, n := range sizes {
		chunks = append(chunks, randomBytes(t, n))
		sent.Write(chunks[len(chunks)-1])
	}
	written := make(chan struct{})
	go func() {
		defer close(written)
		for _, p := range chunks {
			if k, err := client.Write(p); err != nil || k != len(p) {
				t.Errorf("Write(%d) = %d, %v", len(p), k, err)
			}
		}
		client.CloseWrite()
	}()
	got, err := io.ReadAll(server)
	if err != nil {
		t.Fatal(err)
	}
	// The EOF record can arrive before CloseWrite has counted it.
	<-written
	if !bytes.Equal(got, sent.Bytes()) {
		t.Fatalf("server got %d bytes, want the %d sent", len(got), sent.Len())
	}
	// 64 KiB: 4 records, one write; 3 chunks + 1 byte: 4 records, one
	// write; 9 chunks: 4 + 4 + 1; 10 bytes: 1; EOF: 1.
	wantWrites := []int{4, 4, 4, 4, 1, 1, 1}
	wantRecords := 4 + 4 + 9 + 1 + 1
	wc.mu.Lock()
	writes := append([]int(nil), wc.writes...)
	wc.mu.Unlock()
	if len(writes) != len(wantWrites) {
		t.Fatalf("%d writes to the connection (%v bytes), want %d", len(writes), writes, len(wantWrites))
	}
	for i, recs := range wantWrites {
		if max := recs * (wire.HeaderSize + MaxRecordBody); writes[i] > max {
			t.Errorf("write %d is %d bytes, more than %d records can be", i, writes[i], recs)
		}
	}
	if st := client.Stats(); st.RecordsOut != int64(wantRecords) {
		t.Errorf("client sent %d records, want %d", st.RecordsOut, wantRecords)
	}
	if st := server.Stats(); st.RecordsIn != int64(wantRecords) {
		t.Errorf("server read %d records, want %d", st.RecordsIn, wantRecords)
	}
	if err := server.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(client); err != nil {
		t.Fatal(err)
	}
	if err := client.Done(); err != nil {
		t.Fatal(err)
	}
}

// TestSessionNoAllocs: once a session's buffers exist, sending and reading
// 64 KiB allocates nothing: records are sealed into one frame buffer and
// opened from the read buffer into one plaintext buffer.
func TestSessionNoAllocs(t *testing.T) {
	client, server := streamPair(t, Config{}, Config{})
	buf := make([]byte, 64<<10)
	in := make([]byte, 64<<10)
	allocs := testing.AllocsPerRun(20, func() {
		done := make(chan error, 1)
		go func() {
			_, err := io.ReadFull(server, in)
			done <- err
		}()
		if _, err := client.Write(buf); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	// The goroutine and its channel: 2 allocations per run at most.
	if allocs > 3 && !raceEnabled {
		t.Errorf("%.1f allocations per 64 KiB sent and read, want at most 3 (the test's goroutine)", allocs)
	}
}
