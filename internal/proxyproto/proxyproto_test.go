package proxyproto

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// TestAppendGolden pins the bytes of a TCP/IPv4 header with both principal
// TLVs (docs/stream.md shows the same example).
func TestAppendGolden(t *testing.T) {
	h := &Header{
		Source:           netip.MustParseAddrPort("192.0.2.10:50000"),
		Dest:             netip.MustParseAddrPort("198.51.100.1:4444"),
		ClientPrincipal:  "alice@EXAMPLE.TEST",
		ServicePrincipal: "host/h@EXAMPLE.TEST",
	}
	got, err := h.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "0d0a0d0a000d0a515549540a" + "21" + "11" + "0037" +
		"c000020a" + "c6336401" + "c350" + "115c" +
		"e00012" + hex.EncodeToString([]byte("alice@EXAMPLE.TEST")) +
		"e10013" + hex.EncodeToString([]byte("host/h@EXAMPLE.TEST"))
	if hex.EncodeToString(got) != want {
		t.Fatalf("header\n got %x\nwant %s", got, want)
	}
	back, err := Read(bytes.NewReader(append(got, "trailing client bytes"...)))
	if err != nil {
		t.Fatal(err)
	}
	if back.Source != h.Source || back.Dest != h.Dest || back.ClientPrincipal != h.ClientPrincipal || back.ServicePrincipal != h.ServicePrincipal {
		t.Fatalf("round trip %+v", back)
	}
}

func TestRoundTripFamilies(t *testing.T) {
	for _, h := range []*Header{
		{Source: netip.MustParseAddrPort("[2001:db8::1]:1"), Dest: netip.MustParseAddrPort("[2001:db8::2]:2"), ClientPrincipal: "bob@R"},
		{Source: netip.MustParseAddrPort("[::ffff:10.0.0.1]:5"), Dest: netip.MustParseAddrPort("10.0.0.2:6"), ClientPrincipal: "c@R"},
		{ClientPrincipal: "unspec@R", ServicePrincipal: "svc/h@R"},
		{Local: true},
		{Source: netip.MustParseAddrPort("10.0.0.1:5"), Dest: netip.MustParseAddrPort("[2001:db8::2]:2"), Other: []TLV{{Type: 0x04, Value: []byte("x")}}},
	} {
		b, err := h.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(%x): %v", b, err)
		}
		wantSrc, wantDst := h.Source, h.Dest
		if wantSrc.Addr().Is4In6() || wantSrc.Addr().Is4() != wantDst.Addr().Is4() || h.Local {
			if wantSrc.Addr().Unmap().Is4() && wantDst.Addr().Unmap().Is4() && !h.Local {
				wantSrc = netip.AddrPortFrom(wantSrc.Addr().Unmap(), wantSrc.Port())
			} else {
				wantSrc, wantDst = netip.AddrPort{}, netip.AddrPort{}
			}
		}
		if got.Source != wantSrc || got.Dest != wantDst || got.ClientPrincipal != h.ClientPrincipal ||
			got.ServicePrincipal != h.ServicePrincipal || got.Local != h.Local || len(got.Other) != len(h.Other) {
			t.Errorf("%+v: parsed %+v", h, got)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	good, _ := (&Header{Source: netip.MustParseAddrPort("1.2.3.4:1"), Dest: netip.MustParseAddrPort("5.6.7.8:2"), ClientPrincipal: "a@R"}).Append(nil)
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tlv := func(extra ...byte) []byte {
		b := mut(func(b []byte) []byte { return append(b, extra...) })
		b[15] += byte(len(extra))
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"v1 text header", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), "no PROXY v2 signature"},
		{"short", good[:10], "no PROXY v2 signature"},
		{"version 1 in the binary header", mut(func(b []byte) []byte { b[12] = 0x11; return b }), "version 1"},
		{"unknown command", mut(func(b []byte) []byte { b[12] = 0x22; return b }), "unknown command"},
		{"UDP", mut(func(b []byte) []byte { b[13] = 0x12; return b }), "unsupported family"},
		{"AF_UNIX", mut(func(b []byte) []byte { b[13] = 0x31; return b }), "unsupported family"},
		{"length beyond the data", mut(func(b []byte) []byte { b[15]++; return b }), "announces"},
		{"trailing byte", mut(func(b []byte) []byte { return append(b, 0) }), "announces"},
		{"address block short", mut(func(b []byte) []byte { b[13] = FamTCP6; return b }), "address block"},
		{"truncated TLV header", tlv(0xE2, 0), "truncated TLV"},
		{"TLV longer than the rest", tlv(0xE2, 0, 5, 'x'), "TLV 0xe2 of 5 bytes"},
		{"client principal twice", tlv(0xE0, 0, 1, 'b'), "twice"},
		{"empty service principal", tlv(0xE1, 0, 0), "not a principal"},
		{"principal not UTF-8", tlv(0xE1, 0, 1, 0xff), "not a principal"},
		{"principal with NUL", tlv(0xE1, 0, 2, 'a', 0), "not a principal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.b)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse(%x) = %v, want %q", tc.b, err, tc.want)
			}
		})
	}
}

// TestReadStopsAtHeader: Read consumes the header only.
func TestReadStopsAtHeader(t *testing.T) {
	b, _ := (&Header{ClientPrincipal: "a@R"}).Append(nil)
	r := bytes.NewReader(append(b, "PING\r\n"...))
	if _, err := Read(r); err != nil {
		t.Fatal(err)
	}
	if rest, _ := r.ReadByte(); rest != 'P' {
		t.Fatalf("Read consumed past the header: next byte %q", rest)
	}
}

func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := Parse(b)
		if err != nil {
			return
		}
		// What parses re-encodes to a header that parses the same.
		out, err := h.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		h2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-encoded header does not parse: %v", err)
		}
		if h2.ClientPrincipal != h.ClientPrincipal || h2.ServicePrincipal != h.ServicePrincipal || h2.Source != h.Source || len(h2.Other) != len(h.Other) {
			t.Fatalf("round trip changed the header: %+v -> %+v", h, h2)
		}
	})
}
