package listener

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/proxyproto"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

func v2Header(t *testing.T, h proxyproto.Header) []byte {
	t.Helper()
	b, err := h.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestServerProxyProtocol: with proxy_protocol_from 127.0.0.1/32, a
// connection from 127.0.0.1 must open with a PROXY v1 or v2 header, whose
// source becomes the peer in the logs; without one, or with a malformed
// one, it is closed (proxy_header). A connection from 127.0.0.2 (not
// trusted) with a header is closed the same way, and one without is served
// as usual.
func TestServerProxyProtocol(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	ts := startServer(t, k, Config{
		ProxyProtocolFrom: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		FirstFrameTimeout: 300 * time.Millisecond, HandshakeTimeout: 10 * time.Second,
	}, nil)
	v2 := v2Header(t, proxyproto.Header{Source: netip.MustParseAddrPort("198.51.100.20:50123"), Dest: netip.MustParseAddrPort("192.0.2.1:4444")})
	v2local := v2Header(t, proxyproto.Header{Local: true})
	v1 := []byte("PROXY TCP4 203.0.113.7 192.0.2.1 40000 4444\r\n")
	v1v6 := []byte("PROXY TCP6 2001:db8::7 2001:db8::1 40001 4444\r\n")
	tests := []struct {
		name   string
		from   string
		send   func() []byte
		result Result
		peer   string // logged peer of a served connection; "" for the socket's
		server string // the header's destination, handed to the worker with peer
	}{
		{"v1 TCP4", "127.0.0.1", func() []byte { return append(bytes.Clone(v1), k.handshake(t)...) }, ResultOK, "203.0.113.7:40000", "192.0.2.1:4444"},
		{"v1 TCP6", "127.0.0.1", func() []byte { return append(bytes.Clone(v1v6), k.handshake(t)...) }, ResultOK, "[2001:db8::7]:40001", "[2001:db8::1]:4444"},
		{"v2 TCP4", "127.0.0.1", func() []byte { return append(bytes.Clone(v2), k.handshake(t)...) }, ResultOK, "198.51.100.20:50123", "192.0.2.1:4444"},
		{"v2 LOCAL", "127.0.0.1", func() []byte { return append(bytes.Clone(v2local), k.handshake(t)...) }, ResultOK, "", ""},
		{"v1 UNKNOWN", "127.0.0.1", func() []byte { return append([]byte("PROXY UNKNOWN\r\n"), k.handshake(t)...) }, ResultOK, "", ""},
		{"trusted without header", "127.0.0.1", func() []byte { return k.handshake(t) }, ResultProxyHeader, "", ""},
		{"trusted, malformed v1", "127.0.0.1", func() []byte { return []byte("PROXY TCP4 203.0.113.7 192.0.2.1 40000\r\n") }, ResultProxyHeader, "", ""},
		{"trusted, v1 without CRLF", "127.0.0.1", func() []byte { return bytes.Repeat([]byte("PROXY "), 30) }, ResultProxyHeader, "", ""},
		{"trusted, bad v2 family", "127.0.0.1", func() []byte { b := bytes.Clone(v2); b[13] = 0x12; return b }, ResultProxyHeader, "", ""},
		{"trusted, partial header", "127.0.0.1", func() []byte { return v1[:10] }, ResultFirstFrameTimeout, "", ""},
		{"untrusted with v1", "127.0.0.2", func() []byte { return append(bytes.Clone(v1), k.handshake(t)...) }, ResultProxyHeader, "", ""},
		{"untrusted with v2", "127.0.0.2", func() []byte { return append(bytes.Clone(v2), k.handshake(t)...) }, ResultProxyHeader, "", ""},
		{"untrusted without header", "127.0.0.2", func() []byte { return k.handshake(t) }, ResultOK, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ts.dialFrom(t, tt.from)
			before := ts.disp.count()
			c.Write(tt.send())
			if o := ts.outcome(t); o.Result != tt.result {
				t.Fatalf("outcome %q, want %q", o.Result, tt.result)
			}
			if tt.result != ResultOK {
				readUntilClosed(t, c, 5*time.Second)
				if ts.disp.count() != before {
					t.Fatal("a refused connection was handed off")
				}
				return
			}
			want := tt.peer
			if want == "" {
				want = c.LocalAddr().String()
			}
			var found bool
			for _, e := range ts.logs.FilterMessage("session handed off").All() {
				if e.ContextMap()["peer"] == want {
					found = true
					if tt.peer != "" && e.ContextMap()["proxy"] != c.LocalAddr().String() {
						t.Errorf("proxy %v, want %s", e.ContextMap()["proxy"], c.LocalAddr())
					}
				}
			}
			if !found {
				t.Errorf("no 'session handed off' line with peer %s", want)
			}
			// The session's bytes start after the header: the worker got
			// a token, and nothing of the header.
			h := ts.disp.handed[ts.disp.count()-1]
			if len(h.token) == 0 || bytes.Contains(h.readAhead, []byte("PROXY")) {
				t.Errorf("handoff: %d token bytes, read-ahead %q", len(h.token), h.readAhead)
			}
			// The worker gets the header's addresses (zero without them).
			var wantAddrs Addrs
			if tt.peer != "" {
				wantAddrs = Addrs{Client: netip.MustParseAddrPort(tt.peer), Server: netip.MustParseAddrPort(tt.server)}
			}
			if h.addrs != wantAddrs {
				t.Errorf("handed off with addresses %+v, want %+v", h.addrs, wantAddrs)
			}
		})
	}
	// The refusals say why.
	if n := len(ts.logs.FilterField(zap.String("result", string(ResultProxyHeader))).All()); n < 6 {
		t.Errorf("%d proxy_header log lines, want 6", n)
	}
}

// TestServerProxyPerSource: the per-source limit counts the client a
// trusted header names, not the load balancer: many clients behind one
// proxy address are not limited together, and one client's waiting
// connections evict each other beyond the limit.
func TestServerProxyPerSource(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	ts := startServer(t, k, Config{
		ProxyProtocolFrom:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/24")},
		MaxPendingPerSource: 2, HandshakeTimeout: 10 * time.Second,
	}, nil)
	opener := wire.AppendFrame(nil, wire.FlagNoop|wire.FlagContextNext, nil)
	// Five clients through one proxy address: all five wait.
	for i := range 5 {
		c := ts.dialFrom(t, "127.0.0.1")
		c.Write(append([]byte("PROXY TCP4 198.51.100."+string(rune('1'+i))+" 192.0.2.1 4000 4444\r\n"), opener...))
	}
	if !ts.waitPending(5) {
		t.Fatalf("%d pending, want 5 (one proxy, five clients)", ts.s.Pending())
	}
	waitCount := func(ip string, n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ts.s.pending.sourceCount(netip.MustParseAddr(ip)) != n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d pending from %s, want %d", ts.s.pending.sourceCount(netip.MustParseAddr(ip)), ip, n)
			}
		}
	}
	// Every one counted against its client, none against the proxy.
	waitCount("127.0.0.1", 0)
	for i := range 5 {
		waitCount("198.51.100."+string(rune('1'+i)), 1)
	}
	// One client, three waiting connections: the oldest is evicted.
	var conns []net.Conn
	for i := range 3 {
		c := ts.dialFrom(t, "127.0.0.1")
		c.Write([]byte("PROXY TCP4 203.0.113.9 192.0.2.1 1 4444\r\n"))
		conns = append(conns, c)
		waitCount("203.0.113.9", min(i+1, 2))
	}
	start := time.Now()
	readUntilClosed(t, conns[0], 5*time.Second)
	if d := time.Since(start); d > time.Second {
		t.Errorf("the oldest closed after %v, want at once", d)
	}
	if o := ts.outcome(t); o.Result != ResultSourceLimit {
		t.Errorf("outcome %q, want source_limit", o.Result)
	}
	if n := ts.s.pending.sourceCount(netip.MustParseAddr("203.0.113.9")); n != 2 {
		t.Errorf("%d pending from 203.0.113.9, want 2", n)
	}
}
