// Package proxyproto writes and strictly parses the binary PROXY protocol
// version 2 header (HAProxy's "The PROXY protocol", section 2.2), which a
// gss-worker proxy backend sends before the client's bytes so that the
// service learns the client's address and Kerberos identity. It also
// parses, strictly, the v1 text header (section 2.1, ParseV1) and reads
// either version (ReadAny), for the listener's inbound PROXY protocol from
// trusted load balancers (proxy_protocol_from).
//
// Layout (docs/stream.md):
//
//	sig[12] = 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A
//	ver_cmd:1 = 0x21 (version 2, PROXY) | 0x20 (LOCAL)
//	fam:1     = 0x11 TCP/IPv4 | 0x21 TCP/IPv6 | 0x00 UNSPEC
//	len:2     = big-endian length of what follows
//	addresses: IPv4 src[4] dst[4] sport[2] dport[2]; IPv6 src[16] dst[16] sport[2] dport[2]; UNSPEC none
//	TLVs:     type:1 | length:2 BE | value, to the end
//
// gss-acceptor's TLVs: TypeClientPrincipal (0xE0) and TypeServicePrincipal
// (0xE1), each a UTF-8 principal name, in the range the specification
// reserves for custom use (0xE0-0xEF).
package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"unicode/utf8"
)

// Signature starts every v2 header.
var Signature = [12]byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

// Commands and families.
const (
	CmdLocal = 0x20
	CmdProxy = 0x21

	FamUnspec = 0x00
	FamTCP4   = 0x11
	FamTCP6   = 0x21
)

// TLV types sent by gss-worker.
const (
	TypeClientPrincipal  = 0xE0
	TypeServicePrincipal = 0xE1
)

// MaxPrincipal bounds a principal TLV.
const MaxPrincipal = 1024

// Header is a parsed (or to be written) v2 header.
type Header struct {
	Local            bool           // LOCAL command: no addresses
	Source, Dest     netip.AddrPort // invalid (zero) for UNSPEC
	ClientPrincipal  string         // TLV 0xE0
	ServicePrincipal string         // TLV 0xE1
	Other            []TLV          // TLVs of other types, in order
}

// TLV is one type-length-value entry.
type TLV struct {
	Type  byte
	Value []byte
}

// Append appends h's encoding to dst. Source and Dest must both be IPv4 or
// both IPv6 (an IPv4-mapped IPv6 address counts as IPv4) for an address
// block; otherwise the family is UNSPEC with no addresses.
func (h *Header) Append(dst []byte) ([]byte, error) {
	var addr []byte
	fam := byte(FamUnspec)
	src, dstA := h.Source.Addr().Unmap(), h.Dest.Addr().Unmap()
	if !h.Local && src.IsValid() && dstA.IsValid() {
		switch {
		case src.Is4() && dstA.Is4():
			fam = FamTCP4
			s, d := src.As4(), dstA.As4()
			addr = append(append(addr, s[:]...), d[:]...)
		case src.Is6() && dstA.Is6():
			fam = FamTCP6
			s, d := src.As16(), dstA.As16()
			addr = append(append(addr, s[:]...), d[:]...)
		}
		if fam != FamUnspec {
			addr = binary.BigEndian.AppendUint16(addr, h.Source.Port())
			addr = binary.BigEndian.AppendUint16(addr, h.Dest.Port())
		}
	}
	var tlvs []byte
	add := func(typ byte, v []byte) error {
		if len(v) > 0xFFFF {
			return fmt.Errorf("proxyproto: TLV %#02x of %d bytes", typ, len(v))
		}
		tlvs = append(tlvs, typ)
		tlvs = binary.BigEndian.AppendUint16(tlvs, uint16(len(v)))
		tlvs = append(tlvs, v...)
		return nil
	}
	if h.ClientPrincipal != "" {
		if err := add(TypeClientPrincipal, []byte(h.ClientPrincipal)); err != nil {
			return nil, err
		}
	}
	if h.ServicePrincipal != "" {
		if err := add(TypeServicePrincipal, []byte(h.ServicePrincipal)); err != nil {
			return nil, err
		}
	}
	for _, t := range h.Other {
		if err := add(t.Type, t.Value); err != nil {
			return nil, err
		}
	}
	n := len(addr) + len(tlvs)
	if n > 0xFFFF {
		return nil, errors.New("proxyproto: header longer than 65535 bytes")
	}
	cmd := byte(CmdProxy)
	if h.Local {
		cmd = CmdLocal
	}
	dst = append(dst, Signature[:]...)
	dst = append(dst, cmd, fam)
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	dst = append(dst, addr...)
	return append(dst, tlvs...), nil
}

// ErrNotProxy is returned by Read when the stream does not start with the
// v2 signature.
var ErrNotProxy = errors.New("proxyproto: no PROXY v2 signature")

// Read reads exactly one v2 header from r and parses it strictly: the
// signature, version 2, command LOCAL or PROXY, family UNSPEC, TCP/IPv4 or
// TCP/IPv6 (others refused), an address block of the family's size, TLVs
// that exactly fill the rest, at most one of each principal TLV, each
// non-empty valid UTF-8 of at most MaxPrincipal bytes without NUL.
// It reads nothing past the header.
func Read(r io.Reader) (*Header, error) {
	var fixed [16]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return nil, fmt.Errorf("proxyproto: reading the header: %w", err)
	}
	if !bytes.Equal(fixed[:12], Signature[:]) {
		return nil, ErrNotProxy
	}
	n := int(binary.BigEndian.Uint16(fixed[14:16]))
	rest := make([]byte, n)
	if _, err := io.ReadFull(r, rest); err != nil {
		return nil, fmt.Errorf("proxyproto: reading %d header bytes: %w", n, err)
	}
	return Parse(append(fixed[:], rest...))
}

// Parse parses a complete header (Read's checks); b must hold exactly one
// header and nothing more.
func Parse(b []byte) (*Header, error) {
	if len(b) < 16 || !bytes.Equal(b[:12], Signature[:]) {
		return nil, ErrNotProxy
	}
	verCmd, fam := b[12], b[13]
	if verCmd>>4 != 2 {
		return nil, fmt.Errorf("proxyproto: version %d, want 2", verCmd>>4)
	}
	h := &Header{}
	switch verCmd {
	case CmdLocal:
		h.Local = true
	case CmdProxy:
	default:
		return nil, fmt.Errorf("proxyproto: unknown command %#02x", verCmd&0x0F)
	}
	n := int(binary.BigEndian.Uint16(b[14:16]))
	if len(b)-16 != n {
		return nil, fmt.Errorf("proxyproto: header announces %d bytes, has %d", n, len(b)-16)
	}
	p := b[16:]
	var alen int
	switch fam {
	case FamUnspec:
	case FamTCP4:
		alen = 12
	case FamTCP6:
		alen = 36
	default:
		return nil, fmt.Errorf("proxyproto: unsupported family/protocol %#02x", fam)
	}
	if len(p) < alen {
		return nil, fmt.Errorf("proxyproto: address block of %d bytes, family %#02x needs %d", len(p), fam, alen)
	}
	// LOCAL: the specification says to ignore the address block.
	switch {
	case h.Local:
	case fam == FamTCP4:
		src, dst := netip.AddrFrom4([4]byte(p[0:4])), netip.AddrFrom4([4]byte(p[4:8]))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(p[8:10]))
		h.Dest = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(p[10:12]))
	case fam == FamTCP6:
		src, dst := netip.AddrFrom16([16]byte(p[0:16])), netip.AddrFrom16([16]byte(p[16:32]))
		h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(p[32:34]))
		h.Dest = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(p[34:36]))
	}
	p = p[alen:]
	var seenClient, seenService bool
	for len(p) > 0 {
		if len(p) < 3 {
			return nil, fmt.Errorf("proxyproto: truncated TLV header (%d bytes left)", len(p))
		}
		typ, l := p[0], int(binary.BigEndian.Uint16(p[1:3]))
		if len(p)-3 < l {
			return nil, fmt.Errorf("proxyproto: TLV %#02x of %d bytes, %d left", typ, l, len(p)-3)
		}
		v := p[3 : 3+l]
		p = p[3+l:]
		switch typ {
		case TypeClientPrincipal, TypeServicePrincipal:
			seen := &seenClient
			if typ == TypeServicePrincipal {
				seen = &seenService
			}
			if *seen {
				return nil, fmt.Errorf("proxyproto: TLV %#02x twice", typ)
			}
			*seen = true
			if l == 0 || l > MaxPrincipal || !utf8.Valid(v) || bytes.IndexByte(v, 0) >= 0 {
				return nil, fmt.Errorf("proxyproto: TLV %#02x is not a principal name", typ)
			}
			if typ == TypeClientPrincipal {
				h.ClientPrincipal = string(v)
			} else {
				h.ServicePrincipal = string(v)
			}
		default:
			h.Other = append(h.Other, TLV{Type: typ, Value: bytes.Clone(v)})
		}
	}
	return h, nil
}
