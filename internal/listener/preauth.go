package listener

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// pendingTable holds the pre-authentication connections: accepted, no
// context established yet (ARCHITECTURE.md §7). It is bounded by a count
// sized by memory (MaxPending), not by the CPU limit (MaxHandshakes), and
// per source address (MaxPendingPerSource). A connection is idle until its
// first context token has fully arrived; only idle connections are ever
// evicted, oldest first, so that a full table makes room for a newcomer
// instead of refusing it: an attacker holding connections open loses them
// to the clients that arrive after, and a client that sends its token
// promptly is never the one evicted.
type pendingTable struct {
	max, perSource int
	// proxies are trusted load balancers' networks: their connections
	// are exempt from the per-source limit until their PROXY header names
	// the client (rekey), which then counts against the client's.
	proxies []netip.Prefix

	mu       sync.Mutex
	n        int                    // entries, idle or not
	idle     list.List              // *pendingEntry, idle ones in accept order
	bySource map[netip.Addr]*source // entries per source address
}

type source struct {
	n    int
	idle list.List // this source's idle entries in accept order
}

// pendingEntry is one connection in the table.
type pendingEntry struct {
	conn      net.Conn
	src       netip.Addr
	all, mine *list.Element // positions in the idle lists; nil once not idle
	in        bool          // counted in the table
	evicted   Result        // set when the table closed the connection
}

func newPendingTable(max, perSource int, proxies []netip.Prefix) *pendingTable {
	return &pendingTable{max: max, perSource: perSource, proxies: proxies, bySource: make(map[netip.Addr]*source)}
}

// trusted reports whether a is in one of the proxy networks.
func (t *pendingTable) trusted(a netip.Addr) bool {
	for _, p := range t.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// sourceOf is the address a connection counts against: its remote IP
// (IPv4-mapped IPv6 unmapped), or the zero Addr for non-IP connections,
// which then share one budget.
func sourceOf(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// admit adds conn as an idle entry. To make room it evicts the oldest idle
// connection of conn's source when that source has perSource entries, then
// the oldest idle connection overall when the table has max entries. If
// there is no idle connection to evict, conn is refused: admit returns a
// nil entry and the result to close it with. Evicted connections are
// returned for the caller to close outside the lock.
func (t *pendingTable) admit(conn net.Conn) (e *pendingEntry, refused Result, victims []*pendingEntry) {
	src := sourceOf(conn)
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.bySource[src]
	if s == nil {
		s = &source{}
		t.bySource[src] = s
	}
	if s.n >= t.perSource && !t.trusted(src) {
		front := s.idle.Front()
		if front == nil {
			t.dropSourceIfEmpty(src, s)
			return nil, ResultSourceLimit, nil
		}
		victims = append(victims, t.evictLocked(front.Value.(*pendingEntry), ResultSourceLimit))
	}
	if t.n >= t.max {
		front := t.idle.Front()
		if front == nil {
			t.dropSourceIfEmpty(src, s)
			return nil, ResultPendingFull, victims
		}
		victims = append(victims, t.evictLocked(front.Value.(*pendingEntry), ResultPendingFull))
	}
	// The victims' sources may have been dropped; conn's source is
	// looked up again in case it was one of them.
	if s = t.bySource[src]; s == nil {
		s = &source{}
		t.bySource[src] = s
	}
	e = &pendingEntry{conn: conn, src: src, in: true}
	e.all = t.idle.PushBack(e)
	e.mine = s.idle.PushBack(e)
	s.n++
	t.n++
	return e, "", victims
}

// rekey moves e to source src (the client a PROXY header named), under
// src's per-source limit: the oldest idle connection of src is evicted to
// make room, or, none being idle, rekey refuses with ResultSourceLimit and
// leaves e where it was. It reports the eviction result if the table had
// already closed e. Victims are returned for the caller to close.
func (t *pendingTable) rekey(e *pendingEntry, src netip.Addr) (victims []*pendingEntry, refused Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.evicted != "" {
		return nil, e.evicted
	}
	if !e.in || src == e.src {
		return nil, ""
	}
	if ns := t.bySource[src]; ns != nil && ns.n >= t.perSource {
		front := ns.idle.Front()
		if front == nil {
			return nil, ResultSourceLimit
		}
		victims = append(victims, t.evictLocked(front.Value.(*pendingEntry), ResultSourceLimit))
	}
	old := t.bySource[e.src]
	if e.mine != nil {
		old.idle.Remove(e.mine)
	}
	old.n--
	t.dropSourceIfEmpty(e.src, old)
	ns := t.bySource[src]
	if ns == nil {
		ns = &source{}
		t.bySource[src] = ns
	}
	e.src = src
	ns.n++
	if e.mine != nil {
		e.mine = ns.idle.PushBack(e)
	}
	return victims, ""
}

// evictLocked removes e from the table and marks it evicted with class.
func (t *pendingTable) evictLocked(e *pendingEntry, class Result) *pendingEntry {
	t.removeLocked(e)
	e.evicted = class
	return e
}

func (t *pendingTable) removeLocked(e *pendingEntry) {
	if !e.in {
		return
	}
	s := t.bySource[e.src]
	if e.all != nil {
		t.idle.Remove(e.all)
		s.idle.Remove(e.mine)
		e.all, e.mine = nil, nil
	}
	e.in = false
	s.n--
	t.n--
	t.dropSourceIfEmpty(e.src, s)
}

func (t *pendingTable) dropSourceIfEmpty(src netip.Addr, s *source) {
	if s.n == 0 {
		delete(t.bySource, src)
	}
}

// evictOldest evicts the oldest idle entry with class and returns it for
// the caller to close; nil if none is idle.
func (t *pendingTable) evictOldest(class Result) *pendingEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	front := t.idle.Front()
	if front == nil {
		return nil
	}
	return t.evictLocked(front.Value.(*pendingEntry), class)
}

// ready marks e no longer idle (its first context token arrived): it stays
// counted but is never evicted. It reports the eviction result instead if
// the table closed the connection first.
func (t *pendingTable) ready(e *pendingEntry) Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.evicted != "" {
		return e.evicted
	}
	if e.all != nil {
		s := t.bySource[e.src]
		t.idle.Remove(e.all)
		s.idle.Remove(e.mine)
		e.all, e.mine = nil, nil
	}
	return ""
}

// leave removes e (context established, or the connection ended) and
// reports whether the table had evicted it, and with which result.
func (t *pendingTable) leave(e *pendingEntry) Result {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(e)
	return e.evicted
}

// len returns the number of pre-authentication connections.
func (t *pendingTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// sourceCount returns the entries of one source (tests).
func (t *pendingTable) sourceCount(a netip.Addr) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.bySource[a]; s != nil {
		return s.n
	}
	return 0
}

// closeLimiter logs pre-authentication closes of one class at most once
// per interval, with how many there were since its previous line: under a
// flood the log gets one line per class per second, not one per
// connection.
type closeLimiter struct {
	interval time.Duration
	mu       sync.Mutex
	classes  map[string]*closeClass
}

type closeClass struct {
	last  time.Time
	count int
}

func newCloseLimiter(interval time.Duration) *closeLimiter {
	return &closeLimiter{interval: interval, classes: make(map[string]*closeClass)}
}

// note counts one close of class and returns the count to log if a line is
// due now, else 0.
func (l *closeLimiter) note(class string, now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.classes[class]
	if c == nil {
		c = &closeClass{}
		l.classes[class] = c
	}
	c.count++
	if !c.last.IsZero() && now.Sub(c.last) < l.interval {
		return 0
	}
	n := c.count
	c.count, c.last = 0, now
	return n
}

// preauthClosed logs (rate-limited) one connection closed by the
// pre-authentication limits.
func (s *Server) preauthClosed(class Result, peer net.Addr, extra ...zap.Field) {
	n := s.closes.note(string(class), time.Now())
	if n == 0 {
		return
	}
	fields := append([]zap.Field{
		zap.String("result", string(class)),
		zap.Int("count", n),
		zap.String("peer", peer.String()),
		zap.Int("pending", s.pending.len()),
		zap.Int("max_pending_connections", s.cfg.MaxPending),
		zap.Int("max_pending_per_source", s.cfg.MaxPendingPerSource),
	}, extra...)
	s.log.Warn("pre-authentication connections closed", fields...)
}
