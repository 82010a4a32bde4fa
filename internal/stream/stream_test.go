package stream

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestRoundTripHalfClose(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		sizes    []int
		wantRecs int64 // records the client sends, EOF included
	}{
		{"one byte", Config{}, []int{1}, 2},
		{"exact chunk", Config{}, []int{MaxChunk}, 2},
		{"split write", Config{}, []int{3*MaxChunk + 5}, 5},
		{"many writes", Config{}, []int{10, 20, MaxChunk + 1}, 5},
		{"integrity only", Config{IntegrityOnly: true, AllowIntegrity: true}, []int{100, 2 * MaxChunk}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := streamPair(t, tc.cfg, tc.cfg)
			var sent bytes.Buffer
			go func() {
				for _, n := range tc.sizes {
					b := randomBytes(t, n)
					sent.Write(b)
					if _, err := client.Write(b); err != nil {
						t.Error(err)
					}
				}
				if err := client.CloseWrite(); err != nil {
					t.Error(err)
				}
			}()
			got, err := io.ReadAll(server)
			if err != nil {
				t.Fatalf("server read: %v", err)
			}
			if !bytes.Equal(got, sent.Bytes()) {
				t.Fatalf("server got %d bytes, client sent %d (or different)", len(got), sent.Len())
			}
			// The server answers after the client's half-close.
			if _, err := server.Write([]byte("reply")); err != nil {
				t.Fatal(err)
			}
			if err := server.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			reply, err := io.ReadAll(client)
			if err != nil || string(reply) != "reply" {
				t.Fatalf("client read %q, %v", reply, err)
			}
			if err := client.Done(); err != nil {
				t.Errorf("client Done: %v", err)
			}
			if err := server.Done(); err != nil {
				t.Errorf("server Done: %v", err)
			}
			if st := client.Stats(); st.RecordsOut != tc.wantRecs {
				t.Errorf("client sent %d records, want %d", st.RecordsOut, tc.wantRecs)
			}
			if _, err := client.Write([]byte("x")); !errors.Is(err, ErrClosedWrite) {
				t.Errorf("Write after CloseWrite: %v, want ErrClosedWrite", err)
			}
		})
	}
}

// TestReceiverRefuses feeds forged records, wrapped with the real peer
// context, to a server stream and checks what Read and Done report.
func TestReceiverRefuses(t *testing.T) {
	isProto := func(err error) bool { var p *ProtocolError; return errors.As(err, &p) }
	isGSS := func(err error) bool { var g *gss.Error; return errors.As(err, &g) }
	data := func(n int) []byte { return append([]byte{TypeData}, bytes.Repeat([]byte{'a'}, n)...) }
	tests := []struct {
		name  string
		cfg   Config
		build func(t *testing.T, peer *gss.Context) []byte // bytes on the wire, connection then closed
		check func(err error) bool
		want  string
	}{
		{"integrity-only record not allowed", Config{}, func(t *testing.T, p *gss.Context) []byte {
			return rawRecord(t, p, FlagsIntegrity, false, data(1))
		}, isProto, "record flags 0x24"},
		{"sealed flags on an integrity token", Config{AllowIntegrity: true}, func(t *testing.T, p *gss.Context) []byte {
			return rawRecord(t, p, FlagsSealed, false, data(1))
		}, isProto, "do not match"},
		{"MIT gss-client flags 0xe4", Config{}, func(t *testing.T, p *gss.Context) []byte {
			return rawRecord(t, p, 0xE4, true, data(1))
		}, isProto, "record flags 0xe4"},
		{"empty plaintext", Config{}, func(t *testing.T, p *gss.Context) []byte {
			return rawRecord(t, p, FlagsSealed, true, nil)
		}, isProto, "empty record"},
		{"empty DATA", Config{}, func(t *testing.T, p *gss.Context) []byte {
			return rawRecord(t, p, FlagsSealed, true, data(0))
		}, isProto, "DATA payload of 0 bytes"},
		{"DATA over MaxChunk", Config{}, func(t *testing.T, p *gss.Context) []byte {
			return rawRecord(t, p, FlagsSealed, true, data(MaxChunk+1))
		}, isProto, "DATA payload of 16385 bytes"},
		{"EOF with payload", Config{}, func(t *testing.T, p *gss.Context) []byte {
			return rawRecord(t, p, FlagsSealed, true, []byte{TypeEOF, 'x'})
		}, isProto, "EOF with a payload"},
		{"unknown type", Config{}, func(t *testing.T, p *gss.Context) []byte {
			return rawRecord(t, p, FlagsSealed, true, []byte{0x03, 'x'})
		}, isProto, "unknown record type 0x03"},
		{"ERROR reason too long", Config{}, func(t *testing.T, p *gss.Context) []byte {
			return rawRecord(t, p, FlagsSealed, true, append([]byte{TypeError}, bytes.Repeat([]byte{'r'}, MaxReason+1)...))
		}, isProto, "exceeds 1024"},
		{"ERROR reason not UTF-8", Config{}, func(t *testing.T, p *gss.Context) []byte {
			return rawRecord(t, p, FlagsSealed, true, []byte{TypeError, 0xff, 0xfe})
		}, isProto, "not UTF-8"},
		{"ERROR", Config{}, func(t *testing.T, p *gss.Context) []byte {
			return rawRecord(t, p, FlagsSealed, true, append([]byte{TypeError}, "backend unreachable"...))
		}, func(err error) bool {
			var pe *PeerError
			return errors.As(err, &pe) && pe.Reason == "backend unreachable"
		}, "peer aborted: backend unreachable"},
		{"bit flipped in the token", Config{}, func(t *testing.T, p *gss.Context) []byte {
			r := rawRecord(t, p, FlagsSealed, true, data(10))
			r[len(r)-20] ^= 1
			return r
		}, isGSS, "unwrap"},
		{"replayed record", Config{}, func(t *testing.T, p *gss.Context) []byte {
			r := rawRecord(t, p, FlagsSealed, true, data(10))
			return append(r, r...)
		}, isGSS, "unwrap"},
		{"record dropped", Config{}, func(t *testing.T, p *gss.Context) []byte {
			r := rawRecord(t, p, FlagsSealed, true, data(10))
			rawRecord(t, p, FlagsSealed, true, data(10)) // consumes a sequence number, never sent
			return append(r, rawRecord(t, p, FlagsSealed, true, data(10))...)
		}, isGSS, "unwrap"},
		{"truncated: closed before EOF", Config{}, func(t *testing.T, p *gss.Context) []byte {
			return rawRecord(t, p, FlagsSealed, true, data(10))
		}, func(err error) bool { return errors.Is(err, ErrTruncated) }, "truncated"},
		{"truncated inside a frame", Config{}, func(t *testing.T, p *gss.Context) []byte {
			r := rawRecord(t, p, FlagsSealed, true, data(10))
			return r[:len(r)-3]
		}, func(err error) bool { return errors.Is(err, ErrTruncated) }, "truncated"},
		{"oversized frame refused from its header", Config{}, func(t *testing.T, p *gss.Context) []byte {
			return []byte{FlagsSealed, 0x00, 0x10, 0x00, 0x00}
		}, isProto, "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ictx, actx := contexts(t)
			a, b := tcpPair(t)
			server, err := New(b, nil, actx, tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Write(tt.build(t, ictx)); err != nil {
				t.Fatal(err)
			}
			a.Close()
			_, err = io.ReadAll(server)
			if err == nil || !tt.check(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Read error %v (%T), want one containing %q", err, err, tt.want)
			}
			if server.Done() == nil {
				t.Fatal("Done = nil after a failed stream")
			}
		})
	}
}

func TestRecordAfterEOF(t *testing.T) {
	ictx, actx := contexts(t)
	a, b := tcpPair(t)
	server, err := New(b, nil, actx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	wireBytes := rawRecord(t, ictx, FlagsSealed, true, []byte{TypeEOF})
	wireBytes = append(wireBytes, rawRecord(t, ictx, FlagsSealed, true, []byte{TypeData, 'x'})...)
	if _, err := a.Write(wireBytes); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(server); err != nil || len(got) != 0 {
		t.Fatalf("ReadAll = %q, %v; want the EOF", got, err)
	}
	if err := server.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var pe *ProtocolError
	if err := server.Done(); !errors.As(err, &pe) || !strings.Contains(err.Error(), "record after EOF") {
		t.Fatalf("Done = %v, want a record-after-EOF protocol error", err)
	}
}

func TestAbortReason(t *testing.T) {
	for _, tc := range []struct{ name, reason, want string }{
		{"short", "backend unreachable: connection refused", "backend unreachable: connection refused"},
		{"cut at MaxReason", strings.Repeat("é", MaxReason), strings.Repeat("é", MaxReason/2)},
		{"invalid UTF-8 replaced", "bad \xff byte", "bad \uFFFD byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := streamPair(t, Config{}, Config{})
			if err := server.Abort(tc.reason); err != nil {
				t.Fatal(err)
			}
			_, err := io.ReadAll(client)
			var pe *PeerError
			if !errors.As(err, &pe) || pe.Reason != tc.want {
				t.Fatalf("client read error %v, want PeerError %q", err, tc.want)
			}
			if _, err := server.Write([]byte("x")); !errors.Is(err, ErrClosedWrite) {
				t.Errorf("Write after Abort = %v", err)
			}
		})
	}
}

// TestReflectionRefused sends a record back to its own sender: the wrap
// token's direction flag makes it fail.
func TestReflectionRefused(t *testing.T) {
	client, server := streamPair(t, Config{}, Config{})
	_ = server
	a, b := tcpPair(t)
	mirror, err := New(b, nil, client.Context(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	a.Write(rawRecord(t, client.Context(), FlagsSealed, true, []byte{TypeData, 'x'}))
	a.Close()
	var g *gss.Error
	if _, err := io.ReadAll(mirror); !errors.As(err, &g) {
		t.Fatalf("reflected record: %v, want a GSS error", err)
	}
}

func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		pt      []byte
		typ     byte
		payload string
		bad     bool
	}{
		{[]byte{0x00, 'a'}, TypeData, "a", false},
		{[]byte{0x01}, TypeEOF, "", false},
		{[]byte{0x02}, TypeError, "", false},
		{[]byte{0x02, 'n', 'o'}, TypeError, "no", false},
		{nil, 0, "", true},
		{[]byte{0x00}, 0, "", true},
		{[]byte{0x01, 0}, 0, "", true},
		{[]byte{0x04}, 0, "", true},
		{[]byte{0xff, 1}, 0, "", true},
	} {
		typ, payload, err := ParseRecord(tc.pt)
		if (err != nil) != tc.bad || (!tc.bad && (typ != tc.typ || string(payload) != tc.payload)) {
			t.Errorf("ParseRecord(%x) = %d, %q, %v", tc.pt, typ, payload, err)
		}
	}
}

// TestWireLayout pins the record layout of docs/stream.md: flags 0x64, a
// 4-byte length, a wrap token (TOK_ID 05 04) whose plaintext starts with
// the type byte.
func TestWireLayout(t *testing.T) {
	ictx, actx := contexts(t)
	a, b := tcpPair(t)
	client, err := New(a, nil, ictx, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	r := wire.NewReader(b, 4096)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := r.ReadFrame(MaxRecordBody)
	if err != nil {
		t.Fatal(err)
	}
	if f.Flags != 0x64 || f.Body[0] != 0x05 || f.Body[1] != 0x04 {
		t.Fatalf("frame flags %#02x body % x..., want 0x64 and a wrap token", f.Flags, f.Body[:4])
	}
	pt, conf, err := actx.Unwrap(f.Body)
	if err != nil || !conf || !bytes.Equal(pt, []byte{0x00, 'h', 'i'}) {
		t.Fatalf("Unwrap = % x, %t, %v; want 00 68 69 sealed", pt, conf, err)
	}
}

var _ net.Conn = (*net.TCPConn)(nil)
