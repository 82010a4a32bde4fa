package listener

// Result is how one connection's handshake ended: the "result" field of
// the listener's log line for the connection and the result label of
// gss_acceptor_handshakes_total (ARCHITECTURE.md §9). The set is closed:
// Results lists every value, and the label's cardinality is bounded by it.
type Result string

// The handshake results. Every result but ResultOK means the connection
// was closed without reaching a worker.
const (
	// ResultOK: the context was established and a worker took the session.
	ResultOK Result = "ok"
	// ResultRejected: the Kerberos or SPNEGO acceptor refused a context
	// token (bad token, replay, clock skew, no key, ...). The error token,
	// if any, was sent back first; Outcome.KRBCode holds its Kerberos
	// error code.
	ResultRejected Result = "rejected"
	// ResultTimeout: the handshake deadline passed while waiting for the
	// client's next frame.
	ResultTimeout Result = "timeout"
	// ResultClientClosed: the client closed the connection before a context
	// was established.
	ResultClientClosed Result = "client_closed"
	// ResultBadFrame: the client sent a frame the handshake does not expect
	// (not the NOOP opener, not a context token, an opener with a body).
	ResultBadFrame Result = "bad_frame"
	// ResultTooLarge: a frame was larger than max_token_size.
	ResultTooLarge Result = "too_large"
	// ResultReadError: reading from the client failed otherwise (e.g. a
	// connection reset).
	ResultReadError Result = "read_error"
	// ResultWriteFailed: sending the reply context token to the client
	// failed.
	ResultWriteFailed Result = "write_failed"
	// ResultUnauthenticated: the client asked for an unauthenticated
	// session (an opener without CONTEXT_NEXT), which is refused.
	ResultUnauthenticated Result = "unauthenticated"
	// ResultSocketError: the handshake deadline could not be set on the
	// accepted socket.
	ResultSocketError Result = "socket_error"
	// ResultExportFailed: the established context could not be exported
	// (sealed) for a worker.
	ResultExportFailed Result = "export_failed"
	// ResultHandoffFailed: the context was established but no worker took
	// the session: it refused the context, every attempt failed, or the
	// handshake deadline passed while waiting for a worker.
	ResultHandoffFailed Result = "handoff_failed"
	// ResultHandshakeLimit: the connection's context token waited for one
	// of the max_handshakes slots of CPU work until the handshake deadline.
	ResultHandshakeLimit Result = "handshake_limit"
	// ResultPendingFull: max_pending_connections pre-authentication
	// connections were open. The connection was the oldest one still
	// waiting for its first context token and was closed to make room for
	// a newcomer, or (none waiting) it was the newcomer, closed unread.
	ResultPendingFull Result = "pending_full"
	// ResultSourceLimit: the same for max_pending_per_source, counted per
	// client IP address.
	ResultSourceLimit Result = "source_limit"
	// ResultFirstFrameTimeout: the first context token had not fully
	// arrived within first_frame_timeout of accept.
	ResultFirstFrameTimeout Result = "first_frame_timeout"
	// ResultClientNotAllowed: the context was established but the client
	// principal is not on the allow-list (allow_clients,
	// allow_clients_file); the connection was closed before any handoff,
	// after an ERROR record for a stream-protocol backend.
	ResultClientNotAllowed Result = "client_not_allowed"
	// ResultProxyHeader: a connection from a proxy_protocol_from network
	// did not start with a valid PROXY v1 or v2 header, or one from any
	// other address started with one (ARCHITECTURE.md §7).
	ResultProxyHeader Result = "proxy_header"
	// ResultInternalError: the handshake panicked (a bug); only that
	// connection was lost.
	ResultInternalError Result = "internal_error"
	// ResultError: a failure that carries no more specific result. Every
	// failure path sets one today; this is the fallback should one not.
	ResultError Result = "error"
)

// Results returns every Result the listener reports, ResultOK first. The
// caller may modify the returned slice.
func Results() []Result {
	return []Result{
		ResultOK,
		ResultRejected,
		ResultTimeout,
		ResultClientClosed,
		ResultBadFrame,
		ResultTooLarge,
		ResultReadError,
		ResultWriteFailed,
		ResultUnauthenticated,
		ResultSocketError,
		ResultExportFailed,
		ResultHandoffFailed,
		ResultHandshakeLimit,
		ResultPendingFull,
		ResultSourceLimit,
		ResultFirstFrameTimeout,
		ResultClientNotAllowed,
		ResultProxyHeader,
		ResultInternalError,
		ResultError,
	}
}
