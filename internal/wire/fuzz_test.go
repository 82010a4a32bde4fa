package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame checks that ReadFrame never panics, never returns a body
// over the limit, and that the frames it returns re-encode (AppendFrame) to
// exactly the bytes it consumed, so nothing is skipped or invented.
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
