package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/proxyproto"
	"github.com/gss-acceptor/gss-acceptor/internal/stream"
)

// DefaultConnectTimeout bounds a backend connection attempt when
// StreamService.ConnectTimeout is 0.
const DefaultConnectTimeout = 5 * time.Second

// Backend is where a proxy session's plaintext goes: a TCP address or a
// unix socket path.
type Backend struct {
	Network string // "tcp" or "unix"
	Address string // host:port or the socket path
}

// String returns the backend as configured: tcp:HOST:PORT or unix:PATH.
func (b Backend) String() string { return b.Network + ":" + b.Address }

// ParseBackend parses "tcp:HOST:PORT" or "unix:PATH" (an absolute path).
func ParseBackend(s string) (Backend, error) {
	network, addr, ok := strings.Cut(s, ":")
	switch {
	case ok && network == "tcp":
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" || port == "" {
			return Backend{}, fmt.Errorf("worker: backend %q: want tcp:HOST:PORT", s)
		}
	case ok && network == "unix":
		if !strings.HasPrefix(addr, "/") {
			return Backend{}, fmt.Errorf("worker: backend %q: want unix:/absolute/path", s)
		}
	default:
		return Backend{}, fmt.Errorf("worker: backend %q: want sample, tcp:HOST:PORT or unix:PATH", s)
	}
	return Backend{Network: network, Address: addr}, nil
}

// StreamService is the proxy backend: it carries the session as a stream
// (internal/stream, docs/stream.md) and relays it to Backend, opened per
// session, optionally after a PROXY v2 header that names the client's
// address and Kerberos principal. Either side's EOF is passed on as a
// half-close; a failure on the backend side reaches the client as an ERROR
// record; the session's idle timeout counts silence in both directions.
type StreamService struct {
	Backend        Backend
	ProxyProtocol  bool          // send a PROXY v2 header first
	ConnectTimeout time.Duration // 0: DefaultConnectTimeout
	// AllowIntegrity accepts integrity-only records from clients
	// (stream_confidentiality: false). The worker always seals its own.
	AllowIntegrity bool
}

// openStream starts the stream protocol on the session (docs/stream.md).
func (s *Session) openStream(allowIntegrity bool) (*stream.Conn, error) {
	st, err := stream.New(s.Conn, s.Reader, s.Context, stream.Config{AllowIntegrity: allowIntegrity})
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	return st, nil
}

// countStream reports st's records and bytes as the session's counters.
func (s *Session) countStream(st *stream.Conn) {
	stats := st.Stats()
	s.MessagesIn, s.MessagesOut = int(stats.RecordsIn), int(stats.RecordsOut)
	s.BytesIn, s.BytesOut = stats.BytesIn, stats.BytesOut
}

// Serve implements Service.
func (svc *StreamService) Serve(ctx context.Context, s *Session) error {
	s.Backend.Kind = handoff.BackendProxy
	st, err := s.openStream(svc.AllowIntegrity)
	if err != nil {
		return err
	}
	defer s.countStream(st)

	timeout := svc.ConnectTimeout
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	d := net.Dialer{Timeout: timeout}
	start := time.Now()
	bc, err := d.DialContext(ctx, svc.Backend.Network, svc.Backend.Address)
	s.Backend.ConnectUS = uint64(max(time.Since(start), time.Microsecond) / time.Microsecond)
	s.Backend.Connect = connectResult(err)
	if err != nil {
		reason := "backend unreachable: " + err.Error()
		st.Abort(reason)
		return fmt.Errorf("worker: %s", reason)
	}
	defer bc.Close()

	if svc.ProxyProtocol {
		h := proxyHeader(s)
		b, err := h.Append(nil)
		if err == nil {
			bc.SetWriteDeadline(time.Now().Add(timeout))
			_, err = bc.Write(b)
			bc.SetWriteDeadline(time.Time{})
		}
		if err != nil {
			reason := "backend unreachable: sending the PROXY header: " + err.Error()
			st.Abort(reason)
			return fmt.Errorf("worker: %s", reason)
		}
	}

	counts, err := stream.Relay(st, bc, stream.RelayOptions{
		IdleTimeout: s.IdleTimeout,
		AbortReason: func(err error) string { return "backend failed: " + err.Error() },
	})
	s.Backend.ToBackend, s.Backend.FromBackend = uint64(max(counts.FromPeer, 0)), uint64(max(counts.ToPeer, 0))
	if err != nil {
		return fmt.Errorf("worker: stream: %w", err)
	}
	return nil
}

// proxyHeader describes the session for the backend: the client's TCP
// source and the address it connected to (UNSPEC when either is not an IP
// address), the client and service principals.
func proxyHeader(s *Session) *proxyproto.Header {
	h := &proxyproto.Header{
		ClientPrincipal:  s.Context.InitiatorName(),
		ServicePrincipal: s.Context.AcceptorName(),
	}
	src, ok1 := addrPort(s.Conn.RemoteAddr())
	dst, ok2 := addrPort(s.Conn.LocalAddr())
	if ok1 && ok2 {
		h.Source, h.Dest = src, dst
	}
	return h
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.IP == nil {
		return netip.AddrPort{}, false
	}
	ap := ta.AddrPort()
	return ap, ap.IsValid()
}

// connectResult classifies a backend dial's outcome for SESSION_END and
// the metrics: ECONNREFUSED (also a unix socket nobody listens on) is
// refused, a timeout is timeout, anything else (no route, a missing unix
// socket, a name that does not resolve) is unreachable.
func connectResult(err error) handoff.ConnectResult {
	var ne net.Error
	switch {
	case err == nil:
		return handoff.ConnectOK
	case errors.Is(err, syscall.ECONNREFUSED):
		return handoff.ConnectRefused
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return handoff.ConnectTimeout
	}
	return handoff.ConnectUnreachable
}
