package gss

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"
)

// checksum builds a 0x8003 value by hand, independently of
// appendAuthChecksum.
func checksum(lgth uint32, bnd byte, flags Flags, tail ...byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, lgth)
	b = append(b, bytes.Repeat([]byte{bnd}, 16)...)
	b = binary.LittleEndian.AppendUint32(b, uint32(flags))
	return append(b, tail...)
}

func TestParseAuthChecksum(t *testing.T) {
	deleg := []byte{0x76, 0x02, 0x05, 0x00}
	tests := []struct {
		name      string
		in        []byte
		major     Major
		flags     Flags
		deleg     []byte
		bindingsB byte
	}{
		{"MIT default 0x136", checksum(16, 0, 0x136), 0, 0x136, nil, 0},
		{"bindings", checksum(16, 0xaa, 0x2), 0, 0x2, nil, 0xaa},
		{"deleg", checksum(16, 0, FlagDeleg|FlagMutual, append([]byte{1, 0, 4, 0}, deleg...)...), 0, FlagDeleg | FlagMutual, deleg, 0},
		{"deleg flag, nothing after", checksum(16, 0, FlagDeleg), 0, FlagDeleg, nil, 0},
		{"deleg flag, 3 bytes after are extensions", checksum(16, 0, FlagDeleg, 1, 0, 4), StatusDefectiveToken, 0, nil, 0},
		{"no deleg flag, option ignored as extension", checksum(16, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 9), 0, 0, nil, 0},
		{"extension", checksum(16, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0), 0, 2, nil, 0},
		{"deleg then extension", checksum(16, 0, FlagDeleg, append(append([]byte{1, 0, 4, 0}, deleg...), 0, 0, 0, 2, 0, 0, 0, 1, 7)...), 0, FlagDeleg, deleg, 0},
		{"short", checksum(16, 0, 0)[:23], StatusBadBindings, 0, nil, 0},
		{"empty", nil, StatusBadBindings, 0, nil, 0},
		{"Lgth 15", checksum(15, 0, 0), StatusDefectiveToken, 0, nil, 0},
		{"DlgOpt 2", checksum(16, 0, FlagDeleg, 2, 0, 0, 0), StatusDefectiveToken, 0, nil, 0},
		{"Dlgth overruns", checksum(16, 0, FlagDeleg, 1, 0, 5, 0, 1, 2), StatusDefectiveToken, 0, nil, 0},
		{"extension overruns", checksum(16, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 1), StatusDefectiveToken, 0, nil, 0},
		{"huge extension length", checksum(16, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff), StatusDefectiveToken, 0, nil, 0},
		{"trailing junk", checksum(16, 0, 0, 1, 2, 3), StatusDefectiveToken, 0, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseAuthChecksum(tc.in)
			if tc.major != 0 {
				if err == nil || MajorOf(err) != tc.major {
					t.Fatalf("err %v, want %v", err, tc.major)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.flags != tc.flags || !bytes.Equal(c.deleg, tc.deleg) || c.bindings != [16]byte(bytes.Repeat([]byte{tc.bindingsB}, 16)) {
				t.Errorf("got flags %v deleg %x bindings %x", c.flags, c.deleg, c.bindings)
			}
		})
	}
}

// TestAppendAuthChecksum: round trips, and DELEG follows the presence of
// a credential.
func TestAppendAuthChecksum(t *testing.T) {
	var bnd [16]byte
	copy(bnd[:], "0123456789abcdef")
	tests := []struct {
		name      string
		flags     Flags
		deleg     []byte
		wantFlags Flags
	}{
		{"plain", FlagMutual | FlagReplay, nil, FlagMutual | FlagReplay},
		{"deleg dropped without credential", FlagDeleg | FlagMutual, nil, FlagMutual},
		{"deleg added with credential", FlagMutual, []byte{1, 2, 3}, FlagMutual | FlagDeleg},
		{"empty credential", FlagDeleg, []byte{}, FlagDeleg},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := appendAuthChecksum(nil, bnd, tc.flags, tc.deleg)
			if err != nil {
				t.Fatal(err)
			}
			c, err := parseAuthChecksum(b)
			if err != nil {
				t.Fatal(err)
			}
			if c.flags != tc.wantFlags || c.bindings != bnd || !bytes.Equal(c.deleg, tc.deleg) {
				t.Errorf("round trip: flags %v bindings %x deleg %x", c.flags, c.bindings, c.deleg)
			}
		})
	}
	if _, err := appendAuthChecksum(nil, bnd, 0, make([]byte, 0x10000)); err == nil {
		t.Error("credential over 64 KiB accepted")
	}
}

// TestChannelBindingsHash pins the hash to values MIT krb5 1.20 agrees
// with: an MIT acceptor given these application data as channel bindings
// accepted our initiator's token and returned GSS_C_CHANNEL_BOUND_FLAG.
func TestChannelBindingsHash(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"tls-server-end-point", []byte("tls-server-end-point:abc"), "feb0fffbc725957540b287e8c838dfd9"},
		{"empty application data", []byte{}, "441018525208457705bf09a8ee3c1093"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := channelBindingsHash(tc.data)
			if got := hex.EncodeToString(h[:]); got != tc.want {
				t.Errorf("hash %s, want %s", got, tc.want)
			}
		})
	}
}

// FuzzParseAuthChecksum: no input panics; accepted inputs have a 16-byte
// Lgth, a delegation only under DELEG, and re-encode to a prefix of the
// input (the rest being extensions).
func FuzzParseAuthChecksum(f *testing.F) {
	f.Add(checksum(16, 0, 0x136))
	f.Add(checksum(16, 0, FlagDeleg, 1, 0, 2, 0, 0x76, 0x00))
	f.Add(checksum(16, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 9))
	f.Add(checksum(16, 0, 0)[:23])
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseAuthChecksum(b)
		if err != nil {
			return
		}
		if binary.LittleEndian.Uint32(b) != 16 {
			t.Fatal("accepted Lgth != 16")
		}
		if c.deleg != nil && c.flags&FlagDeleg == 0 {
			t.Fatal("delegation without DELEG")
		}
		if c.deleg == nil {
			// Re-encoding drops DELEG without a credential; compare the
			// fixed part only.
			if !bytes.Equal(b[4:20], c.bindings[:]) || Flags(binary.LittleEndian.Uint32(b[20:])) != c.flags {
				t.Fatal("fixed fields misread")
			}
			return
		}
		re, err := appendAuthChecksum(nil, c.bindings, c.flags, c.deleg)
		if err != nil || !bytes.HasPrefix(b, re) {
			t.Fatalf("re-encoding %x is not a prefix of %x", re, b)
		}
	})
}
