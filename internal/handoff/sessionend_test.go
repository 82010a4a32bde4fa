package handoff

import (
	"bytes"
	"reflect"
	"testing"
)

// SESSION_END crosses the channel intact, including counter values at the
// top of their ranges.
func TestSessionEndRoundTrip(t *testing.T) {
	checkNoLeak(t)
	parent, child := pair(t)
	tests := []struct {
		name string
		msg  *SessionEnd
	}{
		{"ok", &SessionEnd{ID: 7, Result: SessionOK, Load: 3, DurationUS: 1500, MessagesIn: 11, MessagesOut: 10, BytesIn: 4096, BytesOut: 350}},
		{"failed, idle worker", &SessionEnd{ID: 1, Result: SessionFailed}},
		{"maximal", &SessionEnd{ID: ^uint64(0), Result: SessionFailed, Load: ^uint32(0), DurationUS: ^uint64(0),
			MessagesIn: ^uint64(0), MessagesOut: ^uint64(0) - 1, BytesIn: 1 << 62, BytesOut: 1<<63 + 1}},
		{"proxy", &SessionEnd{ID: 9, Result: SessionOK, Load: 1, MessagesIn: 3, BytesIn: 300,
			Backend: BackendEnd{Kind: BackendProxy, Connect: ConnectOK, ConnectUS: 250, ToBackend: 100, FromBackend: ^uint64(0)}}},
		{"proxy refused", &SessionEnd{ID: 10, Result: SessionFailed,
			Backend: BackendEnd{Kind: BackendProxy, Connect: ConnectRefused, ConnectUS: 80}}},
		{"proxy, client gone before connect", &SessionEnd{ID: 11, Result: SessionFailed,
			Backend: BackendEnd{Kind: BackendProxy}}},
		{"exec exit 3", &SessionEnd{ID: 12, Result: SessionOK,
			Backend: BackendEnd{Kind: BackendExec, ToBackend: 5, FromBackend: 7, Exit: ExitCode, ExitValue: 3}}},
		{"exec killed", &SessionEnd{ID: 13, Result: SessionFailed,
			Backend: BackendEnd{Kind: BackendExec, Exit: ExitSignal, ExitValue: 9}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := child.Send(tt.msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got, err := parent.Recv()
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			if got.Type() != TypeSessionEnd || got.Type().String() != "SESSION_END" {
				t.Fatalf("type %v, want SESSION_END", got.Type())
			}
			if !reflect.DeepEqual(got, tt.msg) {
				t.Fatalf("got %+v, want %+v", got, tt.msg)
			}
		})
	}
}

// The SESSION_END layout is part of the acceptor↔worker contract.
func TestSessionEndGolden(t *testing.T) {
	m := &SessionEnd{ID: 0x0102, Result: SessionFailed, Load: 5, DurationUS: 6, MessagesIn: 7, MessagesOut: 8, BytesIn: 9, BytesOut: 0x0a0b}
	want := []byte{
		0xa1, 7,
		0, 0, 0, 0, 0, 0, 1, 2, // ID
		0, 0, 0, 1, // result
		0, 0, 0, 5, // load
		0, 0, 0, 0, 0, 0, 0, 6, // duration µs
		0, 0, 0, 0, 0, 0, 0, 7, // messages in
		0, 0, 0, 0, 0, 0, 0, 8, // messages out
		0, 0, 0, 0, 0, 0, 0, 9, // bytes in
		0, 0, 0, 0, 0, 0, 0x0a, 0x0b, // bytes out
	}
	got, err := appendMessage(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding %x, want %x", got, want)
	}
	if len(got) != 2+sessionEndLen {
		t.Fatalf("SESSION_END is %d bytes, want %d", len(got), 2+sessionEndLen)
	}
}

// decode refuses every SESSION_END that is not exactly one well-formed
// report, and Recv closes any descriptor that came with one.
func TestSessionEndRejects(t *testing.T) {
	good := func(t *testing.T) []byte { return enc(t, &SessionEnd{ID: 3, Result: SessionOK, Load: 1}) }
	tests := []struct {
		name  string
		bytes func(t *testing.T) []byte
		nfds  int
		want  error
	}{
		{"header only", func(*testing.T) []byte { return []byte{Version, byte(TypeSessionEnd)} }, 0, ErrMalformed},
		{"truncated", func(t *testing.T) []byte { b := good(t); return b[:len(b)-1] }, 0, ErrMalformed},
		{"trailing byte", func(t *testing.T) []byte { return append(good(t), 0) }, 0, ErrMalformed},
		{"ID zero", func(t *testing.T) []byte { return enc(t, &SessionEnd{ID: 0}) }, 0, ErrMalformed},
		{"unknown result", func(t *testing.T) []byte { return enc(t, &SessionEnd{ID: 1, Result: 2}) }, 0, ErrMalformed},
		{"result with high bit", func(t *testing.T) []byte { return enc(t, &SessionEnd{ID: 1, Result: 1 << 31}) }, 0, ErrMalformed},
		{"with a descriptor", good, 1, ErrFDCount},
		{"one byte of a backend block", func(t *testing.T) []byte { return append(good(t), backendBlockVersion) }, 0, ErrMalformed},
		{"backend block truncated", func(t *testing.T) []byte { b := goodBackend(t, proxyOK); return b[:len(b)-1] }, 0, ErrMalformed},
		{"backend block trailing byte", func(t *testing.T) []byte { return append(goodBackend(t, proxyOK), 0) }, 0, ErrMalformed},
		{"backend block version 2", func(t *testing.T) []byte { b := goodBackend(t, proxyOK); b[2+sessionEndLen] = 2; return b }, 0, ErrMalformed},
		{"backend block of kind none", func(t *testing.T) []byte {
			b := goodBackend(t, BackendEnd{Kind: BackendExec})
			b[2+sessionEndLen+1] = byte(BackendNone)
			return b
		}, 0, ErrMalformed},
		{"unknown backend kind", func(t *testing.T) []byte { return goodBackend(t, BackendEnd{Kind: 3}) }, 0, ErrMalformed},
		{"unknown connect result", func(t *testing.T) []byte { return goodBackend(t, BackendEnd{Kind: BackendProxy, Connect: 5}) }, 0, ErrMalformed},
		{"connect time without a connect", func(t *testing.T) []byte { return goodBackend(t, BackendEnd{Kind: BackendProxy, ConnectUS: 1}) }, 0, ErrMalformed},
		{"exec with a connect", func(t *testing.T) []byte { return goodBackend(t, BackendEnd{Kind: BackendExec, Connect: ConnectOK}) }, 0, ErrMalformed},
		{"proxy with an exit", func(t *testing.T) []byte {
			return goodBackend(t, BackendEnd{Kind: BackendProxy, Exit: ExitCode})
		}, 0, ErrMalformed},
		{"unknown exit kind", func(t *testing.T) []byte { return goodBackend(t, BackendEnd{Kind: BackendExec, Exit: 3}) }, 0, ErrMalformed},
		{"exit value without an exit", func(t *testing.T) []byte { return goodBackend(t, BackendEnd{Kind: BackendExec, ExitValue: 1}) }, 0, ErrMalformed},
		{"signal 0", func(t *testing.T) []byte { return goodBackend(t, BackendEnd{Kind: BackendExec, Exit: ExitSignal}) }, 0, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantRejected(t, tt.bytes(t), tt.nfds, tt.want) })
	}
}

var proxyOK = BackendEnd{Kind: BackendProxy, Connect: ConnectOK, ConnectUS: 3, ToBackend: 4, FromBackend: 5}

// goodBackend encodes a SESSION_END with backend block be, bypassing
// nothing: the encoder writes whatever it is given.
func goodBackend(t *testing.T, be BackendEnd) []byte {
	return enc(t, &SessionEnd{ID: 3, Result: SessionOK, Load: 1, Backend: be})
}

// The backend block layout is part of the contract too; it follows the
// unchanged 56-byte base, which a gss-sample session still sends alone.
func TestSessionEndBackendGolden(t *testing.T) {
	m := &SessionEnd{ID: 1, Result: SessionOK, Backend: BackendEnd{Kind: BackendExec, ToBackend: 0x0102, FromBackend: 3,
		Exit: ExitSignal, ExitValue: 15}}
	got, err := appendMessage(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		1,                      // block version
		2,                      // kind exec
		0,                      // connect: none
		0, 0, 0, 0, 0, 0, 0, 0, // connect µs
		0, 0, 0, 0, 0, 0, 1, 2, // to backend
		0, 0, 0, 0, 0, 0, 0, 3, // from backend
		2,  // exit: signal
		15, // SIGTERM
	}
	if len(got) != 2+sessionEndLen+backendBlockLen {
		t.Fatalf("SESSION_END with backend is %d bytes, want %d", len(got), 2+sessionEndLen+backendBlockLen)
	}
	if block := got[2+sessionEndLen:]; !bytes.Equal(block, want) {
		t.Fatalf("backend block %x, want %x", block, want)
	}
}

func TestBackendEndStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{BackendEnd{Kind: BackendExec, Exit: ExitCode, ExitValue: 0}.ExitStatus(), "exit_0"},
		{BackendEnd{Kind: BackendExec, Exit: ExitCode, ExitValue: 127}.ExitStatus(), "exit_127"},
		{BackendEnd{Kind: BackendExec, Exit: ExitSignal, ExitValue: 9}.ExitStatus(), "signal_SIGKILL"},
		{BackendEnd{Kind: BackendExec, Exit: ExitSignal, ExitValue: 200}.ExitStatus(), "signal_200"},
		{BackendEnd{Kind: BackendExec}.ExitStatus(), ""},
		{ConnectOK.String(), "ok"},
		{ConnectRefused.String(), "refused"},
		{ConnectUnreachable.String(), "unreachable"},
		{ConnectTimeout.String(), "timeout"},
		{ConnectNone.String(), ""},
		{BackendProxy.String(), "proxy"},
		{BackendExec.String(), "exec"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
