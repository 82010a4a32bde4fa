package handoff

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzDecode checks the message parser: no panics; errors are the
// package's sentinels; the descriptor rule holds; and whatever decodes
// re-encodes to exactly the input, i.e. the encoding is canonical (no
// trailing bytes, no slack in any length).
func FuzzDecode(f *testing.F) {
	seed := func(m Message, nfd uint8) {
		b, err := appendMessage(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, nfd)
	}
	seed(&Hello{WorkerID: 1, KeyID: 1, MaxSessions: 10}, 0)
	seed(&Ready{PID: 99}, 0)
	seed(&Handoff{ID: 7, Token: []byte("token"), ReadAhead: []byte{0xe4, 0, 0, 0, 0}}, 1)
	seed(&Handoff{ID: 7}, 2)
	seed(&Handoff{ID: 8, Token: []byte("t"), Client: netip.MustParseAddrPort("192.0.2.66:1234"), Server: netip.MustParseAddrPort("198.51.100.1:4444")}, 1)
	seed(&Handoff{ID: 9, Client: netip.MustParseAddrPort("[2001:db8::66]:1"), Server: netip.MustParseAddrPort("[::ffff:198.51.100.1]:2")}, 1)
	seed(&Ack{ID: 7, Status: 0x90000, Load: 3}, 0)
	seed(&Drain{}, 1)
	seed(&Bye{Reason: ByeDrained}, 0)
	seed(&Ping{Seq: 1}, 0)
	seed(&Pong{Seq: 1 << 40}, 0)
	seed(&SessionEnd{ID: 7, Result: SessionOK, Load: 2, DurationUS: 1500, MessagesIn: 4, MessagesOut: 3, BytesIn: 90, BytesOut: 70}, 0)
	seed(&SessionEnd{ID: 0, Result: SessionFailed}, 0)
	seed(&SessionEnd{ID: 8, Result: SessionOK, Backend: BackendEnd{Kind: BackendProxy, Connect: ConnectTimeout, ConnectUS: 5e6}}, 0)
	seed(&SessionEnd{ID: 8, Result: SessionOK, Backend: BackendEnd{Kind: BackendExec, ToBackend: 9, FromBackend: 1, Exit: ExitSignal, ExitValue: 15}}, 0)
	f.Add([]byte{Version}, uint8(0))
	f.Add([]byte{0x00, byte(TypeDrain)}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, nfd uint8) {
		n := int(nfd % 4)
		m, err := decode(data, n)
		if err != nil {
			if m != nil {
				t.Fatalf("message %v returned with error %v", m, err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFDCount) {
				t.Fatalf("error %v is not ErrMalformed or ErrFDCount", err)
			}
			return
		}
		if n != fdsFor(m.Type()) {
			t.Fatalf("%v accepted with %d descriptors", m.Type(), n)
		}
		again, err := appendMessage(nil, m)
		if err != nil {
			t.Fatalf("re-encoding %v: %v", m.Type(), err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", data, again)
		}
	})
}

// FuzzParseRights checks the control-data parser on arbitrary bytes (the
// kernel writes it, but the parser must not trust lengths it reads).
func FuzzParseRights(f *testing.F) {
	f.Add(unix.UnixRights(3))
	f.Add(unix.UnixRights(3, 4, 5))
	f.Add(append(unix.UnixCredentials(&unix.Ucred{Pid: 1}), unix.UnixRights(7)...))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, oob []byte) {
		fds, err := parseRights(nil, oob)
		if len(fds) > len(oob)/4 {
			t.Fatalf("%d descriptors from %d bytes", len(fds), len(oob))
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", err)
		}
	})
}
