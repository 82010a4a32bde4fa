package worker

import (
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// A served session ends with one SESSION_END carrying the session's ID,
// result, message and byte counts and the worker's new load; the ACK
// before it carries the load while the session runs.
func TestSessionEndReport(t *testing.T) {
	tests := []struct {
		name     string
		messages int
		payload  string
		closeRaw bool // client hangs up without the closing NOOP
		result   uint32
	}{
		{"three messages, clean end", 3, "hello worker", false, handoff.SessionOK},
		{"no messages, clean end", 0, "", false, handoff.SessionOK},
		{"two messages, client vanishes", 2, "x", true, handoff.SessionFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rw := startWorker(t, 1<<20)
			s := rw.send(t)
			id, cli, cctx := s.id, s.conn, s.ctx
			m, err := rw.parent.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if ack, ok := m.(*handoff.Ack); !ok || ack.ID != id || ack.Status != 0 || ack.Load != 1 {
				t.Fatalf("want ACK{ID %d, status 0, load 1}, got %#v", id, m)
			}

			var wantIn, wantOut uint64
			r := s.r
			for j := 0; j < tt.messages; j++ {
				tok, err := cctx.Wrap([]byte(tt.payload), true)
				if err != nil {
					t.Fatal(err)
				}
				if err := wire.WriteFrame(cli, wire.FlagData|wire.FlagWrapped|wire.FlagEncrypted|wire.FlagSendMIC, tok); err != nil {
					t.Fatal(err)
				}
				wantIn += uint64(wire.HeaderLen(wire.FlagData) + len(tok))
				f, err := r.ReadFrame(1 << 16)
				if err != nil {
					t.Fatal(err)
				}
				if err := cctx.VerifyMIC([]byte(tt.payload), f.Body); err != nil {
					t.Fatalf("MIC: %v", err)
				}
				wantOut += uint64(wire.HeaderLen(f.Flags) + len(f.Body))
			}
			msgsIn := uint64(tt.messages)
			if tt.closeRaw {
				cli.Close()
			} else {
				if err := wire.WriteFrame(cli, wire.FlagNoop, nil); err != nil {
					t.Fatal(err)
				}
				msgsIn++ // the closing NOOP is a frame read
				wantIn += uint64(wire.HeaderLen(wire.FlagNoop))
			}

			m, err = rw.parent.Recv()
			if err != nil {
				t.Fatal(err)
			}
			end, ok := m.(*handoff.SessionEnd)
			if !ok {
				t.Fatalf("want SESSION_END, got %#v", m)
			}
			want := handoff.SessionEnd{ID: id, Result: tt.result, Load: 0, DurationUS: end.DurationUS,
				MessagesIn: msgsIn, MessagesOut: uint64(tt.messages), BytesIn: wantIn, BytesOut: wantOut}
			if *end != want {
				t.Errorf("SESSION_END %+v, want %+v", *end, want)
			}
			if end.DurationUS == 0 || end.DurationUS > uint64(20*time.Second/time.Microsecond) {
				t.Errorf("duration %d µs out of range", end.DurationUS)
			}

			// DRAIN: the worker says BYE and Run returns.
			rw.drain(t)
		})
	}
}
