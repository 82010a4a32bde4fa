package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame checks that ReadFrame never panics, never returns a body
// over the limit, and that the frames it returns re-encode (AppendFrame) to
// exactly the bytes it consumed, so nothing is skipped or invented; and
// that NextFrame, with a buffer smaller and one larger than the frames,
// returns the same frames and the same final error.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0x11, 0, 0, 0, 0}, uint16(1024))
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c'}, uint16(1024))
	f.Add([]byte{0xe4, 0, 0, 0, 2, 5, 4, 0x01, 0, 0, 0, 0}, uint16(1024))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff}, uint16(1024))
	f.Add([]byte{0x02, 0, 0, 0}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		max := int(limit)
		r := NewReader(bytes.NewReader(data), 16)
		var consumed []byte
		var err error
		for {
			var fr Frame
			fr, err = r.ReadFrame(max)
			if err != nil {
				break
			}
			if len(fr.Body) > max {
				t.Fatalf("body of %d bytes over limit %d", len(fr.Body), max)
			}
			consumed = AppendFrame(consumed, fr.Flags, fr.Body)
		}
		for _, bufSize := range []int{16, 1 << 16} {
			nr := NewReader(bytes.NewReader(data), bufSize)
			var again []byte
			var nerr error
			for {
				var fr Frame
				if fr, nerr = nr.NextFrame(max); nerr != nil {
					break
				}
				again = AppendFrame(again, fr.Flags, fr.Body)
			}
			if !bytes.Equal(again, consumed) || !sameErr(nerr, err) {
				t.Fatalf("NextFrame (buffer %d) read %d bytes and %v; ReadFrame %d bytes and %v", bufSize, len(again), nerr, len(consumed), err)
			}
		}
		if !bytes.HasPrefix(data, consumed) {
			t.Fatalf("re-encoded frames are not a prefix of the input")
		}
		rest := data[len(consumed):]
		var tl *TooLargeError
		switch {
		case err == io.EOF:
			if len(rest) != 0 {
				t.Fatalf("io.EOF with %d unread bytes", len(rest))
			}
		case err == io.ErrUnexpectedEOF:
			if len(rest) == 0 {
				t.Fatalf("io.ErrUnexpectedEOF on a frame boundary")
			}
		case errors.As(err, &tl):
			if tl.Len <= uint64(max) || tl.Max != max {
				t.Fatalf("bad TooLargeError %+v for limit %d", *tl, max)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}

// sameErr reports whether two readers ended alike: the same error, or
// TooLargeErrors with the same fields.
func sameErr(a, b error) bool {
	var ta, tb *TooLargeError
	if errors.As(a, &ta) && errors.As(b, &tb) {
		return *ta == *tb
	}
	return a == b
}
