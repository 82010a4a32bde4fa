package proxyproto

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

// TestParseV1: the forms the specification allows, and strict refusals.
func TestParseV1(t *testing.T) {
	ok := []struct {
		in       string
		src, dst string // "" for UNKNOWN
	}{
		{"PROXY TCP4 192.0.2.10 198.51.100.1 50000 4444\r\n", "192.0.2.10:50000", "198.51.100.1:4444"},
		{"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", "[2001:db8::1]:1", "[2001:db8::2]:65535"},
		{"PROXY TCP6 ::ffff:10.0.0.1 ::1 0 4444\r\n", "[::ffff:10.0.0.1]:0", "[::1]:4444"},
		{"PROXY UNKNOWN\r\n", "", ""},
		{"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", "", ""},
		{"PROXY UNKNOWN " + strings.Repeat("x", MaxV1-len("PROXY UNKNOWN \r\n")) + "\r\n", "", ""},
	}
	for _, tc := range ok {
		h, err := ParseV1([]byte(tc.in))
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if tc.src == "" {
			if h.Source.IsValid() || h.Dest.IsValid() {
				t.Errorf("%q: addresses %v %v for UNKNOWN", tc.in, h.Source, h.Dest)
			}
			continue
		}
		if h.Source != netip.MustParseAddrPort(tc.src) || h.Dest != netip.MustParseAddrPort(tc.dst) {
			t.Errorf("%q: %v -> %v", tc.in, h.Source, h.Dest)
		}
	}
	bad := []string{
		"",
		"PROXY TCP4 192.0.2.10 198.51.100.1 50000 4444\n",      // LF only
		"PROXY TCP4 192.0.2.10 198.51.100.1 50000 4444",        // no CRLF
		"PROXY  TCP4 192.0.2.10 198.51.100.1 50000 4444\r\n",   // two spaces
		"PROXY TCP4 192.0.2.10  198.51.100.1 50000 4444\r\n",   // two spaces
		"PROXY TCP4 192.0.2.10 198.51.100.1 50000 4444 \r\n",   // trailing space
		"PROXY TCP4 192.0.2.10 198.51.100.1 50000\r\n",         // no dport
		"PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n",          // v6 in TCP4
		"PROXY TCP6 192.0.2.10 2001:db8::2 1 2\r\n",            // v4 in TCP6
		"PROXY TCP6 fe80::1%eth0 2001:db8::2 1 2\r\n",          // zone
		"PROXY TCP4 192.0.2.010 198.51.100.1 1 2\r\n",          // leading zero
		"PROXY TCP4 192.0.2.10 198.51.100.1 65536 2\r\n",       // port range
		"PROXY TCP4 192.0.2.10 198.51.100.1 080 2\r\n",         // leading zero port
		"PROXY TCP4 192.0.2.10 198.51.100.1 +80 2\r\n",         // sign
		"PROXY TCP4 192.0.2.10 198.51.100.1 -1 2\r\n",          // sign
		"PROXY UDP4 192.0.2.10 198.51.100.1 1 2\r\n",           // protocol
		"PROXY tcp4 192.0.2.10 198.51.100.1 1 2\r\n",           // case
		"proxy TCP4 192.0.2.10 198.51.100.1 1 2\r\n",           // case
		"PROXY TCP4 192.0.2.10\r198.51.100.1 1 2\r\n",          // CR inside
		"PROXY UNKNOWNX\r\n",                                   // not UNKNOWN
		"PROXY UNKNOWN " + strings.Repeat("x", MaxV1) + "\r\n", // too long
		"PROXY TCP4 192.0.2.10 198.51.100.1 1 2\r\n\r\n",       // two lines
	}
	for _, in := range bad {
		if h, err := ParseV1([]byte(in)); err == nil {
			t.Errorf("%q accepted: %+v", in, h)
		}
	}
}

// TestReadAny: v1 and v2 from a stream, nothing read past the header;
// anything else is ErrNotProxy or an error, never a header.
func TestReadAny(t *testing.T) {
	v2, err := (&Header{Source: netip.MustParseAddrPort("192.0.2.1:1000"), Dest: netip.MustParseAddrPort("192.0.2.2:4444")}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in      []byte
		version int
		src     string
	}{
		{[]byte("PROXY TCP4 203.0.113.7 192.0.2.2 40000 4444\r\n"), 1, "203.0.113.7:40000"},
		{v2, 2, "192.0.2.1:1000"},
	} {
		r := bytes.NewReader(append(append([]byte{}, tc.in...), "\x01\x00\x00\x00\x00client"...))
		h, v, err := ReadAny(r)
		if err != nil || v != tc.version || h.Source != netip.MustParseAddrPort(tc.src) {
			t.Fatalf("%q: %+v v%d %v", tc.in, h, v, err)
		}
		rest, _ := io.ReadAll(r)
		if string(rest) != "\x01\x00\x00\x00\x00client" {
			t.Errorf("%q: read past the header, left %q", tc.in, rest)
		}
	}
	for _, in := range []string{"\x01\x00\x00\x00\x00", "GET / HTTP/1.1\r\n", "PRO", "PROXX TCP4", "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c",
		"PROXY TCP4 " + strings.Repeat("1", 200)} {
		h, _, err := ReadAny(strings.NewReader(in))
		if err == nil {
			t.Errorf("%q accepted: %+v", in, h)
		}
	}
	if _, _, err := ReadAny(strings.NewReader("\x01\x00\x00\x00\x00")); !errors.Is(err, ErrNotProxy) {
		t.Errorf("a gss-sample frame: %v, want ErrNotProxy", err)
	}
	// A v1 line without its CRLF stops at MaxV1 bytes.
	r := strings.NewReader("PROXY UNKNOWN " + strings.Repeat("x", 300))
	if _, _, err := ReadAny(r); err == nil {
		t.Fatal("unterminated v1 accepted")
	}
	if left := r.Len(); left != 314-MaxV1 {
		t.Errorf("read %d bytes of an unterminated v1 header, want %d", 314-left, MaxV1)
	}
}

// FuzzParseV1: whatever parses names addresses of the protocol it
// announced, and ReadAny agrees with ParseV1 on it.
func FuzzParseV1(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseV1(b)
		h2, v, err2 := ReadAny(bytes.NewReader(b))
		if err != nil {
			if err2 == nil && v == 1 && len(b) <= MaxV1 && bytes.IndexByte(b, '\n') == len(b)-1 {
				t.Fatalf("ReadAny accepted what ParseV1 refused: %q", b)
			}
			return
		}
		if len(b) > MaxV1 {
			t.Fatalf("accepted %d bytes", len(b))
		}
		if err2 != nil || v != 1 || h2.Source != h.Source || h2.Dest != h.Dest {
			t.Fatalf("ReadAny disagrees on %q: %+v v%d %v", b, h2, v, err2)
		}
		if h.Source.IsValid() != h.Dest.IsValid() || h.Source.Addr().Is4() != h.Dest.Addr().Is4() {
			t.Fatalf("mixed addresses from %q: %v %v", b, h.Source, h.Dest)
		}
	})
}
