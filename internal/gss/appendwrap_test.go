package gss

import (
	"bytes"
	"fmt"
	"testing"
)

// TestAppendWrapUnwrap: AppendWrap keeps dst's bytes, wraps the
// concatenation of its parts, and the peer's AppendUnwrap appends the same
// message after its own prefix, for every enctype, sealed and not.
func TestAppendWrapUnwrap(t *testing.T) {
	parts := [][]byte{{0x00}, bytes.Repeat([]byte("0123456789abcdef"), 1024), []byte("tail")}
	want := bytes.Join(parts, nil)
	for _, et := range []int32{17, 18, 19, 20} {
		for _, conf := range []bool{true, false} {
			t.Run(fmt.Sprintf("etype%d/conf=%v", et, conf), func(t *testing.T) {
				ini, acc := pmPair(t, et, true, FlagReplay|FlagSequence)
				frame, err := ini.AppendWrap([]byte("hdr!!"), conf, parts...)
				if err != nil {
					t.Fatal(err)
				}
				if string(frame[:5]) != "hdr!!" {
					t.Fatalf("prefix changed: %q", frame[:5])
				}
				// The token is what Unwrap reads, and the next Wrap takes the
				// next sequence number.
				msg, gotConf, err := acc.AppendUnwrap([]byte("pre"), frame[5:])
				if err != nil || gotConf != conf {
					t.Fatalf("AppendUnwrap: conf=%v err=%v", gotConf, err)
				}
				if string(msg[:3]) != "pre" || !bytes.Equal(msg[3:], want) {
					t.Fatalf("AppendUnwrap gave %d bytes, want pre + %d", len(msg), len(want))
				}
				tok, err := ini.Wrap(want, conf)
				if err != nil {
					t.Fatal(err)
				}
				if len(tok) != len(frame)-5 {
					t.Fatalf("Wrap token %d bytes, AppendWrap token %d", len(tok), len(frame)-5)
				}
				if got, _, err := acc.Unwrap(tok); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("Unwrap after AppendUnwrap: %d bytes, %v", len(got), err)
				}
			})
		}
	}
}

// TestAppendUnwrapFailureLeavesDst: a token that does not verify leaves dst
// as it was and no plaintext behind its length.
func TestAppendUnwrapFailureLeavesDst(t *testing.T) {
	for _, conf := range []bool{true, false} {
		ini, acc := pmPair(t, 18, false, 0)
		tok, err := ini.Wrap([]byte("secret payload"), conf)
		if err != nil {
			t.Fatal(err)
		}
		tok[len(tok)-1] ^= 1
		buf := make([]byte, 2, 256)
		copy(buf, "ok")
		got, _, err := acc.AppendUnwrap(buf, tok)
		pmStatus(t, err, StatusBadSig)
		if string(got) != "ok" || cap(got) != 256 {
			t.Fatalf("conf=%v: dst after failure = %q (cap %d)", conf, got, cap(got))
		}
		if bytes.Contains(buf[:cap(buf)], []byte("secret")) {
			t.Fatalf("conf=%v: plaintext left in dst's spare capacity", conf)
		}
	}
}

// TestAppendWrapUnwrapNoAllocs: with room in dst, neither direction
// allocates; the stream data path relies on it (one frame buffer and one
// plaintext buffer per connection).
func TestAppendWrapUnwrapNoAllocs(t *testing.T) {
	ini, acc := pmPair(t, 18, true, FlagReplay|FlagSequence)
	typ := []byte{0}
	payload := make([]byte, 16384)
	frame := make([]byte, 0, 20000)
	pt := make([]byte, 0, 20000)
	for _, conf := range []bool{true, false} {
		allocs := testing.AllocsPerRun(50, func() {
			var err error
			frame, err = ini.AppendWrap(frame[:0], conf, typ, payload)
			if err != nil {
				t.Fatal(err)
			}
			if pt, _, err = acc.AppendUnwrap(pt[:0], frame); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 && !raceEnabled {
			t.Errorf("conf=%v: %.1f allocations per AppendWrap+AppendUnwrap, want 0", conf, allocs)
		}
	}
}
