package proxyproto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// MaxV1 is the longest v1 header, CRLF included (the specification's 107
// bytes: "PROXY UNKNOWN ffff:...:ffff ffff:...:ffff 65535 65535\r\n").
const MaxV1 = 107

// v1Prefix starts every v1 header.
var v1Prefix = []byte("PROXY ")

// ParseV1 parses one complete v1 (text) header, CRLF included, strictly:
// "PROXY TCP4 a.b.c.d e.f.g.h sport dport\r\n", the same with TCP6 and
// IPv6 addresses, or "PROXY UNKNOWN" followed by anything up to the CRLF
// (the proxy does not know the addresses; Source and Dest stay invalid).
// Single spaces, dotted-quad IPv4 for TCP4, IPv6 without a zone for TCP6,
// decimal ports 0-65535 without a sign or leading zero, at most MaxV1
// bytes, no CR or LF before the final CRLF.
func ParseV1(b []byte) (*Header, error) {
	if len(b) > MaxV1 {
		return nil, fmt.Errorf("proxyproto: v1 header of %d bytes, at most %d", len(b), MaxV1)
	}
	if !bytes.HasPrefix(b, v1Prefix) {
		return nil, ErrNotProxy
	}
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		return nil, errors.New("proxyproto: v1 header does not end with CRLF")
	}
	line := b[len(v1Prefix) : len(b)-2]
	if bytes.ContainsAny(line, "\r\n\x00") {
		return nil, errors.New("proxyproto: v1 header has a CR, LF or NUL inside")
	}
	if bytes.Equal(line, []byte("UNKNOWN")) || bytes.HasPrefix(line, []byte("UNKNOWN ")) {
		return &Header{}, nil
	}
	f := bytes.Split(line, []byte(" "))
	if len(f) != 5 {
		return nil, fmt.Errorf("proxyproto: v1 header has %d fields after PROXY, want 5", len(f))
	}
	var want4 bool
	switch string(f[0]) {
	case "TCP4":
		want4 = true
	case "TCP6":
	default:
		return nil, fmt.Errorf("proxyproto: v1 protocol %q, want TCP4, TCP6 or UNKNOWN", f[0])
	}
	src, err := v1Addr(f[1], want4)
	if err != nil {
		return nil, err
	}
	dst, err := v1Addr(f[2], want4)
	if err != nil {
		return nil, err
	}
	sp, err := v1Port(f[3])
	if err != nil {
		return nil, err
	}
	dp, err := v1Port(f[4])
	if err != nil {
		return nil, err
	}
	return &Header{Source: netip.AddrPortFrom(src, sp), Dest: netip.AddrPortFrom(dst, dp)}, nil
}

func v1Addr(b []byte, want4 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(string(b))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("proxyproto: v1 address: %w", err)
	}
	if a.Zone() != "" || a.Is4() != want4 {
		return netip.Addr{}, fmt.Errorf("proxyproto: v1 address %q does not match the protocol", b)
	}
	return a, nil
}

func v1Port(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (len(b) > 1 && b[0] == '0') || b[0] < '0' || b[0] > '9' {
		return 0, fmt.Errorf("proxyproto: v1 port %q", b)
	}
	n, err := strconv.ParseUint(string(b), 10, 16)
	if err != nil {
		return 0, fmt.Errorf("proxyproto: v1 port %q", b)
	}
	return uint16(n), nil
}

// ReadAny reads one v1 or v2 header from r, whichever the first byte
// announces ('P' for v1, the v2 signature's 0x0D), and parses it strictly
// (ParseV1, Parse). It reads nothing past the header: a v1 header is read
// byte by byte up to its CRLF, at most MaxV1 bytes. Anything else is
// ErrNotProxy. The returned version is 1 or 2.
func ReadAny(r io.Reader) (h *Header, version int, err error) {
	var first [1]byte
	if _, err := io.ReadFull(r, first[:]); err != nil {
		return nil, 0, fmt.Errorf("proxyproto: reading the header: %w", err)
	}
	switch first[0] {
	case Signature[0]:
		h, err := Read(io.MultiReader(bytes.NewReader(first[:]), r))
		return h, 2, err
	case 'P':
		buf := make([]byte, 1, MaxV1)
		buf[0] = 'P'
		var c [1]byte
		for len(buf) < MaxV1 {
			if _, err := io.ReadFull(r, c[:]); err != nil {
				return nil, 1, fmt.Errorf("proxyproto: reading the v1 header: %w", err)
			}
			buf = append(buf, c[0])
			if c[0] == '\n' {
				break
			}
			if len(buf) <= len(v1Prefix) && buf[len(buf)-1] != v1Prefix[len(buf)-1] {
				return nil, 1, ErrNotProxy
			}
		}
		h, err := ParseV1(buf)
		return h, 1, err
	}
	return nil, 0, ErrNotProxy
}
