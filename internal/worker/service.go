// Package worker runs inside a gss-worker process: it receives established
// security contexts and client sockets from the acceptor over the handoff
// channel, imports each context and serves the session with a Service.
//
// The worker never reads the keytab. It holds only the session keys of the
// sessions it serves.
package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"
	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// Service serves one established session. Serve owns the session until it
// returns; the worker closes the connection and deletes the context after.
// A returned error ends only this session and is logged with its outcome.
type Service interface {
	Serve(ctx context.Context, s *Session) error
}

// Session is one client connection with its imported security context.
type Session struct {
	ID      uint64       // handoff id, unique per acceptor instance
	Context *gss.Context // imported context; deleted when Serve returns
	Conn    net.Conn     // the client connection, with any read-ahead bytes replayed first
	Reader  *wire.Reader // frames from Conn
	Log     *zap.Logger  // logger with the session's fields

	// Limits from the acceptor's HELLO.
	MaxMessageSize int           // largest DATA body accepted
	IdleTimeout    time.Duration // 0: no idle timeout

	// Counters reported in the session's outcome log line. Bytes are
	// frames as on the wire, headers included (4 bytes in v1 framing, 5
	// with a flag byte).
	MessagesIn, MessagesOut int
	BytesIn, BytesOut       int64

	// Backend is what a proxy or exec service did with its backend
	// (plaintext bytes each way, connect result, program exit), reported
	// in SESSION_END and the session's log line; gss-sample leaves it zero.
	Backend handoff.BackendEnd
}

// ReadFrame reads the next frame, applying the idle timeout.
func (s *Session) ReadFrame() (wire.Frame, error) {
	if s.IdleTimeout > 0 {
		if err := s.Conn.SetReadDeadline(time.Now().Add(s.IdleTimeout)); err != nil {
			return wire.Frame{}, err
		}
	}
	f, err := s.Reader.ReadFrame(s.MaxMessageSize)
	if err == nil {
		s.MessagesIn++
		s.BytesIn += int64(wire.HeaderLen(f.Flags) + len(f.Body))
	}
	return f, err
}

// WriteFrame writes one frame in a single write.
func (s *Session) WriteFrame(flags byte, body []byte) error {
	if err := wire.WriteFrame(s.Conn, flags, body); err != nil {
		return err
	}
	s.MessagesOut++
	s.BytesOut += int64(wire.HeaderLen(flags) + len(body))
	return nil
}

// ErrSessionDone is returned by a Service when the client ended the session
// cleanly (gss-sample: a NOOP frame).
var ErrSessionDone = errors.New("worker: session ended by client")

// SampleService is byte-compatible with MIT's gss-server message loop
// (src/appl/gss-sample/gss-server.c sign_server): for each DATA frame it
// unwraps the body if WRAPPED is set, then replies with a MIC of the
// plaintext when SEND_MIC is set, else with an empty NOOP. A NOOP from the
// client ends the session. Like MIT, any non-COMPLETE status from Unwrap,
// supplementary codes included, ends the session.
type SampleService struct{}

// Serve implements Service. When the context carries a delegated
// credential (the client ran with GSS_C_DELEG_FLAG and the acceptor has
// allow_delegation set) it logs whose it is; the sample service has no use
// for it beyond that.
func (SampleService) Serve(_ context.Context, s *Session) error {
	if cred := s.Context.DelegatedCredential(); len(cred) > 0 {
		logDelegation(s.Log, cred)
	}
	for {
		f, err := s.ReadFrame()
		if err != nil {
			return fmt.Errorf("worker: reading message: %w", err)
		}
		if f.Flags&wire.FlagNoop != 0 {
			return ErrSessionDone
		}
		if f.Flags&wire.FlagData == 0 && f.Flags != 0 {
			return fmt.Errorf("worker: unexpected frame flags %#02x in session", f.Flags)
		}
		msg := f.Body
		if f.Flags&wire.FlagWrapped != 0 || f.Flags == 0 {
			// A v1 client (flags 0) always wraps its messages.
			pt, _, err := s.Context.Unwrap(f.Body)
			if err != nil {
				return fmt.Errorf("worker: unwrap: %w", err)
			}
			msg = pt
		}
		if f.Flags&wire.FlagSendMIC != 0 || f.Flags == 0 {
			mic, err := s.Context.GetMIC(msg)
			if err != nil {
				return fmt.Errorf("worker: get_mic: %w", err)
			}
			flags := byte(wire.FlagMIC)
			if f.Flags == 0 {
				flags = 0 // reply in the client's v1 framing
			}
			if err := s.WriteFrame(flags, mic); err != nil {
				return fmt.Errorf("worker: writing MIC: %w", err)
			}
			continue
		}
		if err := s.WriteFrame(wire.FlagNoop, nil); err != nil {
			return fmt.Errorf("worker: writing NOOP: %w", err)
		}
	}
}

// logDelegation logs the arrival of a delegated credential, naming its
// client. The credential itself (it holds a TGT session key) is never
// logged.
func logDelegation(log *zap.Logger, cred []byte) {
	name, err := delegatedClient(cred)
	if err != nil {
		log.Warn("delegated credential arrived but cannot be read", zap.Error(err))
		return
	}
	// The name is the client's to choose (it forged the KRB-CRED's clear
	// enc-part if it liked), and the console encoder writes messages raw:
	// quote it if it holds a control character, so it cannot forge lines.
	shown := name
	if strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		shown = strconv.Quote(name)
	}
	log.Info("delegated credential for "+shown+" arrived", zap.String("delegated_client", name))
}

// delegatedClient returns "pname@prealm" (escaped as MIT's
// krb5_unparse_name does) of the first KrbCredInfo of a
// delegated KRB-CRED (RFC 4120 §5.8.1). The acceptor stores the credential
// with a clear enc-part (etype 0), so no key is needed. The decoders are
// gokrb5's, which can panic on malformed input: the credential was already
// decoded by the acceptor and came in a sealed token, but a panic here
// must still not end the session.
func delegatedClient(cred []byte) (name string, err error) {
	defer func() {
		if r := recover(); r != nil {
			name, err = "", fmt.Errorf("worker: malformed delegated credential: %v", r)
		}
	}()
	var kc messages.KRBCred
	if err := kc.Unmarshal(cred); err != nil {
		return "", fmt.Errorf("worker: delegated credential: %w", err)
	}
	if kc.EncPart.EType != 0 {
		return "", fmt.Errorf("worker: delegated credential is encrypted (etype %d), want a clear enc-part", kc.EncPart.EType)
	}
	var part messages.EncKrbCredPart
	err = part.Unmarshal(kc.EncPart.Cipher)
	clear(kc.EncPart.Cipher)
	for _, ci := range part.TicketInfo {
		clear(ci.Key.KeyValue)
	}
	if err != nil {
		return "", fmt.Errorf("worker: delegated credential enc-part: %w", err)
	}
	if len(part.TicketInfo) == 0 {
		return "", errors.New("worker: delegated credential holds no ticket")
	}
	ci := part.TicketInfo[0]
	if len(ci.PName.NameString) == 0 || ci.PName.NameString[0] == "" || ci.PRealm == "" {
		return "", errors.New("worker: delegated credential does not name its client")
	}
	// Escaped as krb5_unparse_name does, so a realm or component holding
	// "@" or "/" cannot pass for a different principal.
	return gss.PrincipalString(ci.PName.NameString, ci.PRealm), nil
}
