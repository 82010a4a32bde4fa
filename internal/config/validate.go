package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Limits enforced by Validate. They catch unit mistakes and values that
// would exhaust memory or descriptors, not taste; configs/gss-acceptor.yaml
// states each one next to its key.
const (
	maxListen                = 64
	maxServices              = 1024
	maxPrincipalLen          = 1024
	maxAccountLen            = 256
	maxSessionsPerWorker     = 1 << 24 // also bounded by RLIMIT_NOFILE at run time
	maxTotalSessions         = math.MaxInt32
	maxHandshakes            = 1 << 16
	maxPending               = 1 << 20 // each one a descriptor: RLIMIT_NOFILE bounds it too
	minTokenSize             = 1 << 10
	maxTokenSize             = 16 << 20
	minMessageSize           = 1 << 10
	maxMessageSize           = 1 << 30
	maxReplayCacheSize       = 100_000_000
	maxChannelBindings       = 64 << 10
	minTimeout               = 100 * time.Millisecond
	maxHandshakeTimeout      = 10 * time.Minute
	maxDeferAccept           = time.Minute // a silent connection waits this long in the kernel before first_frame_timeout starts
	maxImportDeadline        = 10 * time.Minute
	maxShutdownTimeout       = 24 * time.Hour
	maxRespawnBackoff        = time.Hour
	minClockSkew             = time.Second
	maxClockSkew             = 24 * time.Hour
	minIdleTimeout           = time.Second
	minWorkerMaxLifetime     = time.Second
	maxBackendConnectTimeout = 5 * time.Minute
	maxNumericAccountID      = math.MaxUint32 - 1 // (uid_t)-1 means "no change" to setresuid
	maxWorkerAckTimeout      = time.Minute
	minWorkerHeartbeat       = time.Second // one PING per second per idle worker at most
	maxWorkerHeartbeat       = time.Hour
)

// validator collects the problems of one Config.
type validator struct {
	c    *Config
	errs []*Error
}

// validate checks c. A missing keytab is reported only when requireKeytab is
// set (see Load).
func (c *Config) validate(requireKeytab bool) []*Error {
	if c == nil {
		return []*Error{{Msg: "nil configuration"}}
	}
	v := &validator{c: c}
	v.listen()
	v.keytab(requireKeytab)
	v.services()
	v.allowClients()
	v.pool()
	v.limits()
	v.logging()
	v.metrics()
	v.backend()
	return v.errs
}

// line returns the file line of key's value, or 0 when c did not come from
// a file, the key was not in it, or the field has changed since.
func (v *validator) line(key string) int {
	o := v.c.origin
	if o == nil {
		return 0
	}
	l, ok := o.lines[key]
	if !ok || !reflect.DeepEqual(lookupKey(key).get(v.c), o.values[key]) {
		return 0
	}
	return l
}

// report records msg about key at line; the file is named only with a line,
// so that a value set by a command-line flag is not blamed on the file.
func (v *validator) report(line int, key, msg string) {
	e := &Error{Line: line, Key: key, Msg: msg}
	if line > 0 {
		e.File = v.c.origin.name
	}
	v.errs = append(v.errs, e)
}

// fail reports a problem with key's value.
func (v *validator) fail(key, format string, args ...any) {
	v.report(v.line(key), key, fmt.Sprintf(format, args...))
}

// failItem reports a problem with item i of the list key, at the item's own
// line when the list still holds the file's items.
func (v *validator) failItem(key string, i int, format string, args ...any) {
	line := 0
	if v.line(key) > 0 {
		if lines := v.c.origin.itemLines[key]; i < len(lines) {
			line = lines[i]
		}
	}
	v.report(line, key, fmt.Sprintf(format, args...))
}

func (v *validator) intRange(key string, n, lo, hi int) {
	if n < lo || n > hi {
		v.fail(key, "must be between %d and %d, got %d", lo, hi, n)
	}
}

func (v *validator) sizeRange(key string, n, lo, hi int) {
	if n < lo || n > hi {
		v.fail(key, "must be between %s and %s, got %s", formatSize(lo), formatSize(hi), formatSignedSize(n))
	}
}

func (v *validator) durationRange(key string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		v.fail(key, "must be between %s and %s, got %s", lo, hi, formatDuration(d))
	}
}

// formatSignedSize is formatSize for values that may be negative in a
// message.
func formatSignedSize(n int) string {
	if n < 0 {
		return strconv.Itoa(n) + "B"
	}
	return formatSize(n)
}

func (v *validator) listen() {
	c := v.c
	if len(c.Listen) == 0 {
		v.fail("listen", "must list at least one address, e.g. [%q]", DefaultListen)
		return
	}
	if len(c.Listen) > maxListen {
		v.fail("listen", "lists %d addresses, more than %d", len(c.Listen), maxListen)
	}
	seen := make(map[string]bool, len(c.Listen))
	for i, a := range c.Listen {
		if msg := checkHostPort(a); msg != "" {
			v.failItem("listen", i, "%s: %s", quote(a), msg)
			continue
		}
		if seen[a] {
			v.failItem("listen", i, "%s is listed more than once", quote(a))
		}
		seen[a] = true
	}
}

func (v *validator) keytab(required bool) {
	if v.c.Keytab == "" {
		if required {
			v.fail("keytab", "required: set it in the file or with -keytab")
		}
		return
	}
	v.path("keytab", v.c.Keytab)
}

// path checks an optional file path: it must be absolute, because the
// daemon's working directory is not the file's (systemd starts it in /).
func (v *validator) path(key, p string) {
	switch {
	case strings.ContainsRune(p, 0):
		v.fail(key, "must not contain a NUL byte")
	case strings.HasPrefix(p, "FILE:") || strings.HasPrefix(p, "WRFILE:"):
		_, rest, _ := strings.Cut(p, ":")
		v.fail(key, "must be a plain path without the Kerberos %q prefix, e.g. %s", p[:len(p)-len(rest)], quote(rest))
	case !filepath.IsAbs(p):
		v.fail(key, "must be an absolute path, got %s", quote(p))
	}
}

func (v *validator) services() {
	c := v.c
	if len(c.Services) > maxServices {
		v.fail("services", "lists %d principals, more than %d", len(c.Services), maxServices)
	}
	seen := make(map[string]bool, len(c.Services))
	for i, s := range c.Services {
		if msg := checkPrincipal(s); msg != "" {
			v.failItem("services", i, "%s: %s", quote(s), msg)
			continue
		}
		if seen[s] {
			v.failItem("services", i, "%s is listed more than once", quote(s))
		}
		seen[s] = true
	}
}

// allowClients checks allow_clients and allow_clients_file. The file's
// lines are checked when the acceptor reads it (start, reload).
func (v *validator) allowClients() {
	c := v.c
	if len(c.AllowClients) > maxServices {
		v.fail("allow_clients", "lists %d entries, more than %d", len(c.AllowClients), maxServices)
	}
	for i, e := range c.AllowClients {
		if msg := checkAllowEntry(e); msg != "" {
			v.failItem("allow_clients", i, "%s: %s", quote(e), msg)
		}
	}
	if c.AllowClientsFile != "" {
		v.path("allow_clients_file", c.AllowClientsFile)
	}
}

// checkAllowEntry is "" for NAME@REALM or *@REALM, else why not.
func checkAllowEntry(e string) string {
	if strings.ContainsFunc(e, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "contains a space or control character"
	}
	at := strings.LastIndexByte(e, '@')
	if at <= 0 || at == len(e)-1 {
		return "want NAME@REALM or *@REALM"
	}
	if strings.Contains(e, "*") && (!strings.HasPrefix(e, "*@") || strings.ContainsAny(e[2:], "*@")) {
		return "* is only allowed as the whole name, *@REALM"
	}
	return ""
}

func (v *validator) pool() {
	c := v.c
	v.intRange("workers", c.Workers, 1, MaxWorkers)
	v.intRange("max_sessions_per_worker", c.MaxSessionsPerWorker, 1, maxSessionsPerWorker)
	// Both factors are range-checked above, but only separately; their
	// product is what the listener sizes its accounting by, and it must
	// fit an int on 32-bit platforms too.
	if c.Workers >= 1 && c.MaxSessionsPerWorker >= 1 {
		if total := int64(c.Workers) * int64(c.MaxSessionsPerWorker); total > maxTotalSessions {
			v.fail("max_sessions_per_worker", "workers (%d) × max_sessions_per_worker (%d) = %d sessions, more than %d",
				c.Workers, c.MaxSessionsPerWorker, total, int64(maxTotalSessions))
		}
	}
	if c.WorkerMaxSessions < 0 {
		v.fail("worker_max_sessions", "must not be negative (0 never recycles), got %d", c.WorkerMaxSessions)
	}
	switch d := c.WorkerMaxLifetime; {
	case d < 0:
		v.fail("worker_max_lifetime", "must not be negative (0 never recycles), got %s", d)
	case d > 0 && d < minWorkerMaxLifetime:
		v.fail("worker_max_lifetime", "must be 0 (never) or at least %s, got %s", minWorkerMaxLifetime, d)
	case d > 0 && d < c.ShutdownTimeout:
		// A recycled worker drains for up to shutdown_timeout. If
		// workers were recycled faster than that, retiring workers
		// would pile up; with lifetime >= shutdown_timeout at most
		// one drains per slot, so processes stay below 2 × workers.
		v.fail("worker_max_lifetime", "must be 0 (never) or at least shutdown_timeout (%s), got %s", c.ShutdownTimeout, d)
	}
	if c.WorkerPath != "" {
		v.path("worker_path", c.WorkerPath)
	}
	if c.WorkerUser != "" {
		if msg := checkAccount(c.WorkerUser); msg != "" {
			v.fail("worker_user", "%s", msg)
		}
	}
	if c.WorkerGroup != "" {
		if msg := checkAccount(c.WorkerGroup); msg != "" {
			v.fail("worker_group", "%s", msg)
		}
	}
	v.intRange("worker_cpus", c.WorkerCPUs, 1, MaxWorkers)
	if c.AcceptorCPUs != 0 {
		v.intRange("acceptor_cpus", c.AcceptorCPUs, 1, MaxWorkers)
	}
	v.durationRange("worker_respawn_backoff_max", c.WorkerRespawnBackoffMax, minTimeout, maxRespawnBackoff)
	v.durationRange("worker_ack_timeout", c.WorkerAckTimeout, minTimeout, maxWorkerAckTimeout)
	if d := c.WorkerHeartbeat; d >= 0 && (d < minWorkerHeartbeat || d > maxWorkerHeartbeat) {
		v.fail("worker_heartbeat", "must be 0 (off) or from %s to %s, got %s", minWorkerHeartbeat, maxWorkerHeartbeat, d)
	}
}

func (v *validator) limits() {
	c := v.c
	v.durationRange("handshake_timeout", c.HandshakeTimeout, minTimeout, maxHandshakeTimeout)
	v.intRange("max_handshakes", c.MaxHandshakes, 1, maxHandshakes)
	v.intRange("max_pending_connections", c.MaxPendingConnections, 1, maxPending)
	v.intRange("max_pending_per_source", c.MaxPendingPerSource, 1, maxPending)
	v.durationRange("first_frame_timeout", c.FirstFrameTimeout, minTimeout, maxHandshakeTimeout)
	if d := c.DeferAccept; d >= 0 && (d < time.Second || d > maxDeferAccept || d%time.Second != 0) {
		v.fail("defer_accept", "must be 0 (off) or whole seconds from 1s to %s, got %s", maxDeferAccept, d)
	}
	if d := c.IdleTimeout; d >= 0 && d < minIdleTimeout {
		v.fail("idle_timeout", "must be 0 (no idle timeout) or at least %s, got %s", minIdleTimeout, d)
	}
	v.sizeRange("max_token_size", c.MaxTokenSize, minTokenSize, maxTokenSize)
	v.sizeRange("max_message_size", c.MaxMessageSize, minMessageSize, maxMessageSize)
	v.durationRange("clock_skew", c.ClockSkew, minClockSkew, maxClockSkew)
	v.intRange("replay_cache_size", c.ReplayCacheSize, 1, maxReplayCacheSize)
	v.replayCache()
	v.proxyProtocolFrom()
	v.durationRange("import_deadline", c.ImportDeadline, minTimeout, maxImportDeadline)
	v.durationRange("shutdown_timeout", c.ShutdownTimeout, minTimeout, maxShutdownTimeout)
	v.ackUnderHandshake()
	if c.AllowUnauthenticated {
		// A worker serves a session only through its security context
		// (unwrap, MIC); there is nothing to serve an unauthenticated
		// client with, so the key may only say so.
		v.fail("allow_unauthenticated", "must be false: unauthenticated sessions are not supported "+
			"(workers serve only sessions with an established security context)")
	}
	if n := len(c.ChannelBindings); n > maxChannelBindings {
		v.fail("channel_bindings", "is %d bytes, more than %s", n, formatSize(maxChannelBindings))
	}
}

// ackUnderHandshake checks that worker_ack_timeout is less than
// handshake_timeout. A handoff waits for its ACK only until the handshake's
// deadline (accept + handshake_timeout, which the context establishment
// has already used part of): with an ACK timeout as long, a stalled worker
// is never killed and replaced, and every connection handed to it fails
// (ARCHITECTURE.md §6). The key blamed is the one the file sets.
func (v *validator) ackUnderHandshake() {
	c := v.c
	ack, hs := c.WorkerAckTimeout, c.HandshakeTimeout
	if ack < minTimeout || ack > maxWorkerAckTimeout || hs < minTimeout || hs > maxHandshakeTimeout || ack < hs {
		return // out of range: reported on its own
	}
	if v.line("worker_ack_timeout") == 0 && v.line("handshake_timeout") > 0 {
		v.fail("handshake_timeout", "must be more than worker_ack_timeout (%s), got %s: "+
			"a stalled worker is killed only when a handoff's ACK is overdue within the handshake", formatDuration(ack), formatDuration(hs))
		return
	}
	v.fail("worker_ack_timeout", "must be less than handshake_timeout (%s), got %s: "+
		"a handoff is given up at the handshake's deadline, so a stalled worker would never be killed and replaced", formatDuration(hs), formatDuration(ack))
}

// proxyProtocolFrom checks that every item is a CIDR network (its network
// address, so that 10.0.0.1/8 is not mistaken for a host).
func (v *validator) proxyProtocolFrom() {
	for i, s := range v.c.ProxyProtocolFrom {
		p, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			v.failItem("proxy_protocol_from", i, "%s is not a CIDR network (e.g. 10.0.0.0/24, 192.0.2.10/32)", quote(s))
		case p != p.Masked():
			v.failItem("proxy_protocol_from", i, "%s has host bits set; the network is %s", quote(s), p.Masked())
		case p.Addr().Zone() != "":
			v.failItem("proxy_protocol_from", i, "%s has a zone", quote(s))
		}
	}
	if len(v.c.ProxyProtocolFrom) > 1024 {
		v.fail("proxy_protocol_from", "lists %d networks, more than 1024", len(v.c.ProxyProtocolFrom))
	}
}

// replayCache checks the replay cache backend: memory, or a redis:// or
// rediss:// URL with a host and port (the Redis client parses the rest at
// start and in -check-config).
func (v *validator) replayCache() {
	c := v.c
	switch rc := c.ReplayCache; {
	case rc == DefaultReplayCache:
	case strings.HasPrefix(rc, "file:"):
		if p := strings.TrimPrefix(rc, "file:"); !filepath.IsAbs(p) || filepath.Clean(p) != p {
			v.fail("replay_cache", "file:PATH needs an absolute, clean path; got %s", quote(rc))
		}
	case strings.HasPrefix(rc, "redis://") || strings.HasPrefix(rc, "rediss://"):
		u, err := url.Parse(rc)
		if err != nil {
			v.fail("replay_cache", "not a URL (%v)", redactURLError(err))
		} else if u.Hostname() == "" || u.Port() == "" {
			v.fail("replay_cache", "%s needs HOST:PORT", u.Redacted())
		}
	default:
		v.fail("replay_cache", "must be memory, file:/PATH, redis://HOST:PORT/DB or rediss://HOST:PORT/DB; got %s", quote(rc))
	}
	v.enum("replay_cache_failure", c.ReplayCacheFailure, []string{"refuse", "fallback"})
	v.durationRange("replay_cache_timeout", c.ReplayCacheTimeout, time.Millisecond, time.Minute)
	if c.ReplayCacheKeyPrefix == "" {
		v.fail("replay_cache_key_prefix", "must not be empty")
	}
	tlsFiles := []struct{ key, path string }{
		{"replay_cache_tls_ca", c.ReplayCacheTLSCA},
		{"replay_cache_tls_cert", c.ReplayCacheTLSCert},
		{"replay_cache_tls_key", c.ReplayCacheTLSKey},
	}
	for _, f := range tlsFiles {
		if f.path == "" {
			continue
		}
		v.path(f.key, f.path)
		if !strings.HasPrefix(c.ReplayCache, "rediss://") {
			v.fail(f.key, "needs replay_cache: rediss://... (TLS)")
		}
	}
	v.enum("replay_cache_fsync", c.ReplayCacheFsync, []string{"never", "interval", "always"})
	v.durationRange("replay_cache_fsync_interval", c.ReplayCacheFsyncInterval, time.Millisecond, time.Minute)
	if (c.ReplayCacheTLSCert == "") != (c.ReplayCacheTLSKey == "") {
		v.fail("replay_cache_tls_cert", "and replay_cache_tls_key go together: set both or neither")
	}
}

// redactURLError drops the URL, which may hold a password, from a
// url.Parse error.
func redactURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

func (v *validator) logging() {
	c := v.c
	v.enum("log_level", c.LogLevel, []string{LogLevelDebug, LogLevelInfo, LogLevelWarn, LogLevelError})
	v.enum("log_format", c.LogFormat, []string{LogFormatJSON, LogFormatConsole})
	if c.LogFile != "" {
		v.path("log_file", c.LogFile)
	}
}

// enum checks that s is one of allowed, suggesting the closest on a typo.
func (v *validator) enum(key, s string, allowed []string) {
	if slices.Contains(allowed, s) {
		return
	}
	msg := fmt.Sprintf("must be one of %s; got %s", strings.Join(allowed, ", "), quote(s))
	if len(s) <= maxQuoted {
		if hint := suggest(s, allowed); hint != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", hint)
		}
	}
	v.fail(key, "%s", msg)
}

func (v *validator) metrics() {
	c := v.c
	a := c.MetricsAddress
	if a == "" {
		return
	}
	if msg := checkHostPort(a); msg != "" {
		v.fail("metrics_address", "%s: %s", quote(a), msg)
		return
	}
	host, port, _ := net.SplitHostPort(a)
	if !c.MetricsAllowNonLoopback && !isLoopback(host) {
		v.fail("metrics_address", "%s is not a loopback address; the metrics endpoint has no authentication, "+
			"so use 127.0.0.1, [::1] or localhost, or set metrics_allow_non_loopback: true", quote(a))
	}
	if port == "0" {
		return
	}
	for _, l := range c.Listen {
		lh, lp, err := net.SplitHostPort(l)
		if err != nil || lp != port {
			continue
		}
		if lh == host || isWildcard(lh) || isWildcard(host) {
			v.fail("metrics_address", "%s overlaps listen address %s", quote(a), quote(l))
			return
		}
	}
}

// checkHostPort checks a "host:port" TCP address and returns what is wrong
// with it, or "". The host is empty (every address), an IP literal (IPv6 in
// brackets, with an optional zone) or a DNS name; the port is numeric.
func checkHostPort(a string) string {
	const want = `must be "host:port", e.g. ":4444", "192.0.2.1:4444" or "[::1]:4444"`
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return want
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "port must be a number from 0 to 65535, got " + quote(port)
	}
	if host == "" {
		return ""
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		// "[192.0.2.1]:80" passes SplitHostPort but is no IPv6 literal.
		if ip.Is4() && strings.Contains(a, "[") {
			return "only IPv6 addresses go in brackets"
		}
		return ""
	}
	if strings.Contains(host, ":") || strings.Contains(host, "%") {
		return "invalid IPv6 address " + quote(host)
	}
	if !isHostname(host) {
		return "invalid host name " + quote(host)
	}
	return ""
}

// isHostname checks RFC 1123 host name syntax: dot-separated labels of
// letters, digits and inner hyphens, each at most 63 bytes, 253 in all, with
// an optional final dot.
func isHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-') {
				return false
			}
		}
	}
	return true
}

// isLoopback reports whether host names only the loopback interface:
// "localhost" or a loopback IP (127/8, ::1). Other names might resolve
// anywhere, so they do not count.
func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// isWildcard reports whether host listens on every address.
func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

// checkPrincipal checks the syntax of a Kerberos principal name as MIT's
// krb5_parse_name reads it: components separated by "/", an optional realm
// after "@", and "\" escaping the next character. It returns what is wrong,
// or "".
func checkPrincipal(s string) string {
	if s == "" {
		return "empty principal name"
	}
	if len(s) > maxPrincipalLen {
		return fmt.Sprintf("longer than %d bytes", maxPrincipalLen)
	}
	var comps []string
	var cur strings.Builder
	realm, inRealm := "", false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < 0x20 || ch == 0x7f {
			return "contains a control character"
		}
		switch {
		case ch == '\\':
			if i+1 == len(s) {
				return `ends with a lone "\"`
			}
			i++
			cur.WriteByte(s[i])
		case ch == '/' && !inRealm:
			comps = append(comps, cur.String())
			cur.Reset()
		case ch == '@':
			if inRealm {
				return `has more than one unescaped "@"`
			}
			comps = append(comps, cur.String())
			cur.Reset()
			inRealm = true
		default:
			cur.WriteByte(ch)
		}
	}
	if inRealm {
		realm = cur.String()
		if realm == "" {
			return `has an empty realm after "@"`
		}
	} else {
		comps = append(comps, cur.String())
	}
	if slices.Contains(comps, "") {
		return "has an empty component"
	}
	// MIT gss-server takes GSS host-based service names, "host@h.example.com"
	// (RFC 2743 §4.1). Read as a principal that is the one-component name
	// "host" in realm "h.example.com", which is not what was meant and
	// would never match: realms are upper case by convention.
	if inRealm && len(comps) == 1 && strings.Contains(realm, ".") && strings.ToLower(realm) == realm {
		return fmt.Sprintf("looks like a GSS host-based service name; write it as %q or %q",
			comps[0]+"/"+realm, comps[0]+"/"+realm+"@REALM")
	}
	return ""
}

// checkAccount checks a user or group given as a name or a numeric id, and
// returns what is wrong, or "". Whether it exists is checked where it is
// used.
func checkAccount(s string) string {
	if strings.Trim(s, "0123456789") == "" {
		id, err := strconv.ParseUint(s, 10, 32)
		if err != nil || id > maxNumericAccountID {
			return fmt.Sprintf("numeric id must be from 0 to %d, got %s", uint64(maxNumericAccountID), quote(s))
		}
		return ""
	}
	if len(s) > maxAccountLen {
		return fmt.Sprintf("name longer than %d bytes", maxAccountLen)
	}
	if s[0] == '-' || s[0] == '+' {
		return fmt.Sprintf("name must not start with %q, got %s", s[:1], quote(s))
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == ':' || r == '/' || r == ',' || r == unicode.ReplacementChar {
			return fmt.Sprintf("name must not contain %q, got %s", r, quote(s))
		}
	}
	return ""
}

// backend checks backend, backend_proxy_protocol and
// backend_connect_timeout.
func (v *validator) backend() {
	c := v.c
	switch network, addr, _ := strings.Cut(c.Backend, ":"); {
	case c.Backend == BackendSample:
	case c.Backend == BackendExec:
		if c.ExecPath == "" {
			v.fail("exec_path", "backend exec needs exec_path (or -exec PATH)")
		}
	case network == "tcp":
		if msg := checkHostPort(addr); msg != "" {
			v.fail("backend", "tcp:HOST:PORT: %s", msg)
		} else if host, port, _ := net.SplitHostPort(addr); host == "" || port == "0" {
			v.fail("backend", "tcp:HOST:PORT needs a host and a non-zero port, got %s", quote(c.Backend))
		}
	case network == "unix":
		if !strings.HasPrefix(addr, "/") {
			v.fail("backend", "unix:PATH needs an absolute path, got %s", quote(c.Backend))
		}
	default:
		v.fail("backend", "must be %s, %s, tcp:HOST:PORT or unix:/PATH; got %s", BackendSample, BackendExec, quote(c.Backend))
	}
	if c.ExecPath != "" {
		v.path("exec_path", c.ExecPath)
	}
	// Only the exec backend runs a program: anywhere else these keys
	// would be accepted and silently ignored.
	if c.Backend != BackendExec {
		if c.ExecPath != "" {
			v.fail("exec_path", "is used only with backend exec (backend is %s)", c.Backend)
		}
		if len(c.ExecArgs) > 0 {
			v.fail("exec_args", "is used only with backend exec (backend is %s)", c.Backend)
		}
		if c.ExecMaxPerWorker != DefaultExecMaxPerWorker || v.line("exec_max_per_worker") > 0 {
			v.fail("exec_max_per_worker", "is used only with backend exec (backend is %s)", c.Backend)
		}
	}
	v.intRange("exec_max_per_worker", c.ExecMaxPerWorker, 1, 65536)
	for i, a := range c.ExecArgs {
		if strings.ContainsRune(a, 0) {
			v.failItem("exec_args", i, "contains a NUL byte")
		}
	}
	v.enum("backend_proxy_protocol", c.BackendProxyProtocol, []string{"", ProxyProtocolV2})
	if (c.Backend == BackendSample || c.Backend == BackendExec) && c.BackendProxyProtocol != "" {
		v.fail("backend_proxy_protocol", "needs a proxy backend (backend is %s)", c.Backend)
	}
	v.durationRange("backend_connect_timeout", c.BackendConnectTimeout, minTimeout, maxBackendConnectTimeout)
}
