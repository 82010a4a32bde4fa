package worker

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

const (
	testRealm   = "EXAMPLE.COM"
	testService = "host/server.example.com"
)

// establish makes a real context pair the way the acceptor does: a ticket
// forged with a service key from an in-memory keytab (AES256, etype 18),
// an AP-REQ from gss.Initiator, Accept, and Export of the acceptor's
// context with seal. It returns the sealed token and the initiator's
// context.
func establish(t *testing.T, seal *gss.SealKey) (token []byte, client *gss.Context) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	kt := keytab.New()
	if err := kt.AddEntry(testService, testRealm, "worker test password", now, 1, 18); err != nil {
		t.Fatal(err)
	}
	sname := types.NewPrincipalName(nametype.KRB_NT_SRV_HST, testService)
	cname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "alice")
	tf := types.NewKrbFlags()
	types.SetFlag(&tf, flags.Initial)
	tkt, sessKey, err := messages.NewTicket(cname, testRealm, sname, testRealm, tf, kt, 18, 1, now, now, now.Add(time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := gss.NewAcceptor(gss.AcceptorConfig{Keytab: kt})
	if err != nil {
		t.Fatal(err)
	}
	init, err := gss.NewInitiator(cname, testRealm, tkt, sessKey, gss.InitiatorConfig{Flags: gss.FlagSequence | gss.FlagReplay})
	if err != nil {
		t.Fatal(err)
	}
	apreq, err := init.InitialToken()
	if err != nil {
		t.Fatal(err)
	}
	sctx, _, err := acc.Accept(apreq)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	if token, err = sctx.Export(seal); err != nil {
		t.Fatal(err)
	}
	if client, err = init.Context(); err != nil {
		t.Fatal(err)
	}
	return token, client
}

// socketPair returns a connected pair of stream sockets: the server end as
// a file for the HANDOFF, the client end as a file to talk through.
func socketPair(t *testing.T) (server, client *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	server, client = os.NewFile(uintptr(fds[0]), "server"), os.NewFile(uintptr(fds[1]), "client")
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

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
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, child, err := handoff.Pair()
			if err != nil {
				t.Fatal(err)
			}
			defer parent.Close()
			// FromFD takes ownership of the descriptor it is given, as of
			// fd 3 in a worker; give it a copy and let child go.
			dup, err := unix.Dup(int(child.Fd()))
			child.Close()
			if err != nil {
				t.Fatal(err)
			}
			ch, err := handoff.FromFD(uintptr(dup))
			if err != nil {
				t.Fatal(err)
			}
			w := New(Config{Channel: ch})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()

			seal, err := gss.GenerateSealKey(1)
			if err != nil {
				t.Fatal(err)
			}
			hello := &handoff.Hello{KeyID: seal.ID(), MaxMessageBytes: 1 << 20}
			copy(hello.Key[:], seal.AppendKey(nil))
			if err := parent.Send(hello); err != nil {
				t.Fatal(err)
			}
			if m, err := parent.Recv(); err != nil || m.Type() != handoff.TypeReady {
				t.Fatalf("want READY, got %v, %v", m, err)
			}

			token, cctx := establish(t, seal)
			srv, cli := socketPair(t)
			id := uint64(100 + i)
			if err := parent.Send(&handoff.Handoff{ID: id, Token: token, File: srv}); err != nil {
				t.Fatal(err)
			}
			m, err := parent.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if ack, ok := m.(*handoff.Ack); !ok || ack.ID != id || ack.Status != 0 || ack.Load != 1 {
				t.Fatalf("want ACK{ID %d, status 0, load 1}, got %#v", id, m)
			}
			srv.Close()

			var wantIn, wantOut uint64
			r := wire.NewReader(cli, 4096)
			for j := 0; j < tt.messages; j++ {
				tok, err := cctx.Wrap([]byte(tt.payload), true)
				if err != nil {
					t.Fatal(err)
				}
				if err := wire.WriteFrame(cli, wire.FlagData|wire.FlagWrapped|wire.FlagEncrypted|wire.FlagSendMIC, tok); err != nil {
					t.Fatal(err)
				}
				wantIn += uint64(len(tok)) + 5
				f, err := r.ReadFrame(1 << 16)
				if err != nil {
					t.Fatal(err)
				}
				if err := cctx.VerifyMIC([]byte(tt.payload), f.Body); err != nil {
					t.Fatalf("MIC: %v", err)
				}
				wantOut += uint64(len(f.Body)) + 5
			}
			msgsIn := uint64(tt.messages)
			if tt.closeRaw {
				cli.Close()
			} else {
				if err := wire.WriteFrame(cli, wire.FlagNoop, nil); err != nil {
					t.Fatal(err)
				}
				msgsIn++ // the closing NOOP is a frame read
				wantIn += 5
			}

			m, err = parent.Recv()
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

			// DRAIN: the worker says BYE and Run returns nil.
			if err := parent.Send(&handoff.Drain{}); err != nil {
				t.Fatal(err)
			}
			if m, err := parent.Recv(); err != nil || m.Type() != handoff.TypeBye {
				t.Fatalf("want BYE, got %v, %v", m, err)
			}
			if err := <-done; err != nil && !errors.Is(err, ErrParentGone) {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}
