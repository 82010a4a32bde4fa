package stream

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// FuzzRecords drives a receiving Conn with a script of records made by the
// real peer context. The script is a list of entries
//
//	mode:1 | flags:1 | len:2 (big-endian) | bytes:len
//
// mode%4 = 0: wrap bytes sealed; 1: wrap them integrity-only; 2: send
// bytes as a raw frame body (no wrap); 3: send bytes as they are (broken
// framing). The receiver (AllowIntegrity when mode byte 0 of the input is
// odd) reads to the end; nothing may panic, DATA read never exceeds what
// was scripted, and a clean Done needs the peer's EOF.
func FuzzRecords(f *testing.F) {
	f.Fuzz(func(t *testing.T, script []byte) {
		ictx, actx := contexts(t)
		var stream []byte
		var scripted int
		allowInteg := len(script) > 0 && script[0]&1 == 1
		for p := script; len(p) >= 4; {
			mode, flags, n := p[0]%4, p[1], int(binary.BigEndian.Uint16(p[2:4]))
			p = p[4:]
			n = min(n, len(p))
			body := p[:n]
			p = p[n:]
			scripted += n
			switch mode {
			case 0, 1:
				tok, err := ictx.Wrap(body, mode == 0)
				if err != nil {
					t.Fatal(err)
				}
				stream = wire.AppendFrame(stream, flags, tok)
			case 2:
				stream = wire.AppendFrame(stream, flags, body)
			case 3:
				stream = append(stream, body...)
			}
		}
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		c, err := New(b, wire.NewReader(&byteReader{b: stream}, 4096), actx, Config{AllowIntegrity: allowInteg})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if len(got) > scripted {
			t.Fatalf("read %d bytes of DATA from %d scripted bytes", len(got), scripted)
		}
		if err == nil {
			// io.ReadAll hides io.EOF: the peer's EOF record arrived.
			if !c.eofIn {
				t.Fatal("ReadAll ended without error and without the peer's EOF")
			}
		} else {
			var pe *PeerError
			if errors.As(err, &pe) && len(pe.Reason) > MaxReason {
				t.Fatalf("reason of %d bytes", len(pe.Reason))
			}
		}
	})
}

// byteReader is a bytes.Reader that is not an io.WriterTo, so wire.Reader
// sees short reads as from a socket.
type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
