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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantRejected(t, tt.bytes(t), tt.nfds, tt.want) })
	}
}
