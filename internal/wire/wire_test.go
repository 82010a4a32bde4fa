package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// unhex decodes a hex string with optional spaces.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// seq returns n bytes 0, 1, 2, ... (mod 256).
func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// Golden frames of the default gss-client exchange and of v1 framing, as
// MIT's gss-misc.c send_token lays them out.
func TestAppendFrameGolden(t *testing.T) {
	tests := []struct {
		name  string
		flags byte
		body  []byte
		want  string
	}{
		{"session open NOOP|CONTEXT_NEXT", FlagNoop | FlagContextNext, nil, "11 00000000"},
		{"NOOP", FlagNoop, nil, "01 00000000"},
		{"NOOP empty non-nil body", FlagNoop, []byte{}, "01 00000000"},
		{"context token", FlagContext, []byte{0x60, 0x01, 0x00}, "02 00000003 600100"},
		{"default DATA 0xE4", FlagData | FlagWrapped | FlagEncrypted | FlagSendMIC, seq(0x43),
			"e4 00000043 " + hex.EncodeToString(seq(0x43))},
		{"-nw DATA 0xC4", FlagData | FlagEncrypted | FlagSendMIC, []byte("testmsg"), "c4 00000007 746573746d7367"},
		{"MIC reply", FlagMIC, seq(0x1c), "08 0000001c " + hex.EncodeToString(seq(0x1c))},
		{"v1 frame has no flag byte", 0, []byte("abc"), "00000003 616263"},
		{"v1 empty", 0, nil, "00000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			if got := AppendFrame(nil, tt.flags, tt.body); !bytes.Equal(got, want) {
				t.Errorf("AppendFrame = %x, want %x", got, want)
			}
			prefix := []byte("xy")
			if got := AppendFrame(prefix, tt.flags, tt.body); !bytes.Equal(got, append([]byte("xy"), want...)) {
				t.Errorf("AppendFrame after prefix = %x", got)
			}
			var buf bytes.Buffer
			if err := WriteFrame(&buf, tt.flags, tt.body); err != nil {
				t.Fatalf("WriteFrame: %v", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("WriteFrame wrote %x, want %x", buf.Bytes(), want)
			}
			f, err := NewReader(bytes.NewReader(want), 64).ReadFrame(1 << 20)
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if f.Flags != tt.flags || !bytes.Equal(f.Body, tt.body) {
				t.Errorf("ReadFrame = {%#x %x}, want {%#x %x}", f.Flags, f.Body, tt.flags, tt.body)
			}
			if f.IsV1() != (tt.flags == 0) {
				t.Errorf("IsV1 = %v for flags %#x", f.IsV1(), tt.flags)
			}
			if n := HeaderLen(tt.flags); n != len(want)-len(tt.body) {
				t.Errorf("HeaderLen(%#x) = %d, want %d", tt.flags, n, len(want)-len(tt.body))
			}
		})
	}
}

// A whole default-mode session as the server sees it, in one stream.
func TestReadFrameSessionStream(t *testing.T) {
	stream := unhex(t, "11 00000000"+
		"02 00000004 60820102"+
		"e4 00000005 0504060000"+
		"01 00000000")
	r := NewReader(bytes.NewReader(stream), 4096)
	want := []Frame{
		{FlagNoop | FlagContextNext, []byte{}},
		{FlagContext, unhex(t, "60820102")},
		{0xe4, unhex(t, "0504060000")},
		{FlagNoop, []byte{}},
	}
	for i, w := range want {
		f, err := r.ReadFrame(1 << 10)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Flags != w.Flags || !bytes.Equal(f.Body, w.Body) {
			t.Fatalf("frame %d = {%#x %x}, want {%#x %x}", i, f.Flags, f.Body, w.Flags, w.Body)
		}
		if f.Body == nil {
			t.Fatalf("frame %d: zero-length body is nil, want empty slice", i)
		}
	}
	if _, err := r.ReadFrame(1 << 10); err != io.EOF {
		t.Fatalf("after last frame: err = %v, want io.EOF", err)
	}
}

func TestReadFrameV1Detection(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantFlags byte
		wantLen   int
	}{
		{"v1 small", "00000003 616263", 0, 3},
		{"v1 length uses all three low bytes", "00 000102" + strings.Repeat("ab", 0x102), 0, 0x102},
		{"flagged frame with high length byte zero", "04 00000002 ffff", FlagData, 2},
		{"flag byte 0x80 alone", "80 00000001 00", FlagSendMIC, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewReader(bytes.NewReader(unhex(t, tt.in)), 16).ReadFrame(1 << 20)
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if f.Flags != tt.wantFlags || len(f.Body) != tt.wantLen {
				t.Fatalf("got flags %#x len %d, want %#x len %d", f.Flags, len(f.Body), tt.wantFlags, tt.wantLen)
			}
		})
	}
}

func TestReadFrameLimit(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int
		wantLen uint64 // 0: the frame must be accepted
	}{
		{"at limit", "04 00000004 01020304", 4, 0},
		{"one over limit", "04 00000005 0102030405", 4, 5},
		{"zero limit, empty body", "01 00000000", 0, 0},
		{"zero limit, one byte", "04 00000001 00", 0, 1},
		{"negative limit acts as zero", "04 00000001 00", -7, 1},
		{"4 GiB-1 against 1 MiB", "ff ffffffff", 1 << 20, 0xffffffff},
		{"v1 16 MiB-1 against 1 MiB", "00 ffffff", 1 << 20, 0xffffff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(unhex(t, tt.in)), 16)
			f, err := r.ReadFrame(tt.max)
			if tt.wantLen == 0 {
				if err != nil {
					t.Fatalf("ReadFrame: %v", err)
				}
				if len(f.Body) > max(tt.max, 0) {
					t.Fatalf("body of %d bytes over limit %d", len(f.Body), tt.max)
				}
				return
			}
			var tl *TooLargeError
			if !errors.As(err, &tl) {
				t.Fatalf("err = %v, want *TooLargeError", err)
			}
			if tl.Len != tt.wantLen || tl.Max != max(tt.max, 0) {
				t.Fatalf("TooLargeError = %+v, want Len %d Max %d", *tl, tt.wantLen, max(tt.max, 0))
			}
			if !strings.HasPrefix(err.Error(), "wire: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			// Sticky: the stream is desynchronised, so later calls fail too.
			if _, err2 := r.ReadFrame(1 << 30); err2 != err {
				t.Errorf("second ReadFrame err = %v, want the sticky %v", err2, err)
			}
		})
	}
}

// headerOnly serves a frame header and fails the test if anything tries to
// read past it.
type headerOnly struct {
	t    testing.TB
	hdr  []byte
	done bool
}

func (h *headerOnly) Read(p []byte) (int, error) {
	if h.done {
		h.t.Errorf("read past the frame header")
		return 0, io.ErrNoProgress
	}
	h.done = true
	return copy(p, h.hdr), nil
}

// An oversized length must be refused at once: no body read, no body
// allocation (a 4 GiB make would take seconds and fail this bound).
func TestReadFrameTooLargeDoesNotReadOrAllocate(t *testing.T) {
	hdr := unhex(t, "e4 ffffffff")
	const rounds = 200
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range rounds {
		r := NewReader(&headerOnly{t: t, hdr: hdr}, 16)
		_, err := r.ReadFrame(1 << 20)
		var tl *TooLargeError
		if !errors.As(err, &tl) {
			t.Fatalf("err = %v, want *TooLargeError", err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / rounds; per > 1024 {
		t.Fatalf("refusing an oversized frame allocated %d bytes per call", per)
	}
}

// A peer announcing a large permitted body and sending little of it gets
// only bodyChunk bytes committed, and large bodies still arrive intact.
func TestReadFrameLargeBodyGrowth(t *testing.T) {
	for _, n := range []int{bodyChunk - 1, bodyChunk, bodyChunk + 1, 3*bodyChunk + 17} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			body := seq(n)
			stream := AppendFrame(nil, FlagData, body)
			f, err := NewReader(iotest.HalfReader(bytes.NewReader(stream)), 4096).ReadFrame(1 << 20)
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if !bytes.Equal(f.Body, body) {
				t.Fatalf("body mismatch")
			}
			if cap(f.Body) != n {
				t.Errorf("cap(body) = %d, want %d", cap(f.Body), n)
			}
		})
	}
	t.Run("truncated large body", func(t *testing.T) {
		stream := AppendFrame(nil, FlagData, seq(1<<20))[:HeaderSize+100]
		_, err := NewReader(bytes.NewReader(stream), 4096).ReadFrame(1 << 20)
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
		}
	})
}

// multiFrameStream is a mix of flagged, v1 and empty frames.
func multiFrameStream() ([]byte, []Frame) {
	frames := []Frame{
		{FlagNoop | FlagContextNext, []byte{}},
		{FlagContext, seq(300)},
		{0, []byte("v1 body")},
		{0xe4, seq(70)},
		{0, []byte{}},
		{FlagNoop, []byte{}},
	}
	var b []byte
	for _, f := range frames {
		b = AppendFrame(b, f.Flags, f.Body)
	}
	return b, frames
}

func readAll(t *testing.T, r *Reader, max int) ([]Frame, error) {
	t.Helper()
	var got []Frame
	for {
		f, err := r.ReadFrame(max)
		if err != nil {
			return got, err
		}
		got = append(got, f)
	}
}

// readAllNext is readAll through NextFrame, copying each body before the
// next call (it is only valid until then).
func readAllNext(t *testing.T, r *Reader, max int) ([]Frame, error) {
	t.Helper()
	var got []Frame
	for {
		f, err := r.NextFrame(max)
		if err != nil {
			return got, err
		}
		got = append(got, Frame{f.Flags, append([]byte{}, f.Body...)})
	}
}

// readers are the two ways to read frames, for tests that check both.
var readers = []struct {
	name string
	read func(*testing.T, *Reader, int) ([]Frame, error)
}{{"ReadFrame", readAll}, {"NextFrame", readAllNext}}

func sameFrames(a, b []Frame) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Flags != b[i].Flags || !bytes.Equal(a[i].Body, b[i].Body) {
			return false
		}
	}
	return true
}

func TestReadFrameShortReads(t *testing.T) {
	stream, want := multiFrameStream()
	tests := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"plain", func(r io.Reader) io.Reader { return r }},
		{"OneByteReader", iotest.OneByteReader},
		{"HalfReader", iotest.HalfReader},
		{"DataErrReader", iotest.DataErrReader},
		{"OneByte+DataErr", func(r io.Reader) io.Reader { return iotest.DataErrReader(iotest.OneByteReader(r)) }},
	}
	for _, tt := range tests {
		// Buffers of 16 bytes send NextFrame's longer bodies through its
		// scratch buffer; of 4096, every body is a view of the buffer.
		for _, bufSize := range []int{16, 4096} {
			for _, rd := range readers {
				t.Run(fmt.Sprintf("%s/buf%d/%s", tt.name, bufSize, rd.name), func(t *testing.T) {
					got, err := rd.read(t, NewReader(tt.wrap(bytes.NewReader(stream)), bufSize), 1<<10)
					if err != io.EOF {
						t.Fatalf("final err = %v, want io.EOF", err)
					}
					if !sameFrames(got, want) {
						t.Fatalf("frames differ: got %d frames", len(got))
					}
				})
			}
		}
	}
}

// Cutting the stream at every byte position yields the complete frames
// before the cut, then io.EOF on a frame boundary or io.ErrUnexpectedEOF
// inside a frame.
func TestReadFrameTruncatedAtEveryPosition(t *testing.T) {
	stream, want := multiFrameStream()
	boundaries := map[int]int{0: 0} // offset → frames complete before it
	off := 0
	for i, f := range want {
		off += len(AppendFrame(nil, f.Flags, f.Body))
		boundaries[off] = i + 1
	}
	type variant struct {
		wrap    func(io.Reader) io.Reader
		bufSize int
		read    func(*testing.T, *Reader, int) ([]Frame, error)
	}
	variants := []variant{
		{iotest.OneByteReader, 16, readAll}, {iotest.DataErrReader, 16, readAll},
		{iotest.OneByteReader, 16, readAllNext}, {iotest.DataErrReader, 16, readAllNext},
		{iotest.OneByteReader, 4096, readAllNext}, {iotest.DataErrReader, 4096, readAllNext},
	}
	for cut := 0; cut <= len(stream); cut++ {
		for _, v := range variants {
			got, err := v.read(t, NewReader(v.wrap(bytes.NewReader(stream[:cut])), v.bufSize), 1<<10)
			if n, ok := boundaries[cut]; ok {
				if err != io.EOF || !sameFrames(got, want[:n]) {
					t.Fatalf("cut %d (boundary): %d frames, err %v; want %d frames, io.EOF", cut, len(got), err, n)
				}
				continue
			}
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("cut %d: err = %v, want io.ErrUnexpectedEOF", cut, err)
			}
			if !sameFrames(got, want[:len(got)]) {
				t.Fatalf("cut %d: frames before the cut differ", cut)
			}
		}
	}
}

// TestNextFrameReuse: NextFrame reads frames, some longer than the
// Reader's buffer, without an allocation per frame, and enforces the same
// limit as ReadFrame before reading.
func TestNextFrameReuse(t *testing.T) {
	var stream []byte
	var want []Frame
	for pass := range 2 {
		for i := range 64 {
			body := seq(100 + 37*i) // 100 .. 2431 bytes, the buffer is 1024
			body[0] = byte(pass)
			stream = AppendFrame(stream, 0x64, body)
			want = append(want, Frame{0x64, body})
		}
	}
	r := NewReader(bytes.NewReader(stream), 1024)
	got := 0
	// AllocsPerRun makes a warm-up pass (the first 64 frames, which grow
	// the scratch buffer to the longest body) and one measured pass.
	allocs := testing.AllocsPerRun(1, func() {
		for range 64 {
			f, err := r.NextFrame(4096)
			if err != nil {
				t.Fatal(err)
			}
			if f.Flags != 0x64 || !bytes.Equal(f.Body, want[got].Body) {
				t.Fatalf("frame %d differs", got)
			}
			got++
		}
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("%v allocations for 64 frames, want 0", allocs)
	}
	if _, err := r.NextFrame(4096); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
	tooLong := NewReader(bytes.NewReader(AppendFrame(nil, 0x64, seq(5000))), 1024)
	var tl *TooLargeError
	if _, err := tooLong.NextFrame(4096); !errors.As(err, &tl) || tl.Len != 5000 {
		t.Fatalf("NextFrame of a 5000-byte body with limit 4096: %v", err)
	}
}

func TestReadFrameErrorsAreSticky(t *testing.T) {
	boom := errors.New("boom")
	stream := AppendFrame(nil, FlagData, []byte("hello"))
	r := NewReader(io.MultiReader(bytes.NewReader(stream[:3]), iotest.ErrReader(boom)), 16)
	if _, err := r.ReadFrame(100); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if _, err := r.ReadFrame(100); !errors.Is(err, boom) {
		t.Fatalf("second err = %v, want sticky boom", err)
	}
}

// countingWriter records each Write call.
type countingWriter struct {
	writes [][]byte
	n      int   // bytes to report written per call; <0: all
	err    error // error to return
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, append([]byte(nil), p...))
	if w.err != nil {
		return 0, w.err
	}
	if w.n >= 0 && w.n < len(p) {
		return w.n, nil
	}
	return len(p), nil
}

func TestWriteFrameOneWrite(t *testing.T) {
	for _, n := range []int{0, 1, 100, 4091, 4096, pooledFrameMax - HeaderSize, pooledFrameMax, 200 << 10} {
		for _, flags := range []byte{0, FlagNoop, 0xe4} {
			t.Run(fmt.Sprintf("len%d/flags%#x", n, flags), func(t *testing.T) {
				body := seq(n)
				w := &countingWriter{n: -1}
				if err := WriteFrame(w, flags, body); err != nil {
					t.Fatalf("WriteFrame: %v", err)
				}
				if len(w.writes) != 1 {
					t.Fatalf("%d Write calls, want 1", len(w.writes))
				}
				if !bytes.Equal(w.writes[0], AppendFrame(nil, flags, body)) {
					t.Fatalf("written bytes differ from AppendFrame")
				}
			})
		}
	}
}

func TestWriteFrameErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name  string
		w     *countingWriter
		flags byte
		body  []byte
		want  error
	}{
		{"writer error", &countingWriter{n: -1, err: boom}, FlagData, []byte("x"), boom},
		{"short write", &countingWriter{n: 2}, FlagData, []byte("xyz"), io.ErrShortWrite},
		{"v1 body of 16 MiB", &countingWriter{n: -1}, 0, make([]byte, 1<<24), ErrV1TooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteFrame(tt.w, tt.flags, tt.body)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "wire: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	t.Run("v1 body of 16 MiB-1 is fine", func(t *testing.T) {
		w := &countingWriter{n: -1}
		if err := WriteFrame(w, 0, make([]byte, 1<<24-1)); err != nil {
			t.Fatalf("WriteFrame: %v", err)
		}
		if w.writes[0][0] != 0 {
			t.Fatalf("first byte %#x, want 0x00 (v1 marker)", w.writes[0][0])
		}
	})
}

func TestBuffered(t *testing.T) {
	first := AppendFrame(nil, FlagContext, []byte("ap-req"))
	rest := AppendFrame(AppendFrame(nil, 0xe4, []byte("wrap")), FlagNoop, nil)
	r := NewReader(bytes.NewReader(append(append([]byte(nil), first...), rest...)), 4096)
	if b := r.Buffered(); b != nil {
		t.Fatalf("Buffered before any read = %x, want nil", b)
	}
	if _, err := r.ReadFrame(100); err != nil {
		t.Fatal(err)
	}
	got := r.Buffered()
	if !bytes.Equal(got, rest) {
		t.Fatalf("Buffered = %x, want %x", got, rest)
	}
	clear(got) // a copy: scribbling on it must not affect the reader
	f, err := r.ReadFrame(100)
	if err != nil || f.Flags != 0xe4 || string(f.Body) != "wrap" {
		t.Fatalf("next frame = {%#x %q}, %v", f.Flags, f.Body, err)
	}
	if _, err := r.ReadFrame(100); err != nil {
		t.Fatal(err)
	}
	if b := r.Buffered(); b != nil {
		t.Fatalf("Buffered when drained = %x, want nil", b)
	}
}

// The worker's path: read-ahead bytes from the listener's Reader are put in
// front of the connection and a fresh Reader sees an unbroken stream.
func TestPrefixConnReadAhead(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()

	whole := AppendFrame(AppendFrame(nil, 0xe4, seq(40)), FlagNoop, nil)
	prefix := append([]byte(nil), whole[:13]...) // splits the first frame
	backing := prefix
	go func() {
		client.Write(whole[13:])
		client.Close()
	}()
	pc := PrefixConn(server, prefix)
	got, err := readAll(t, NewReader(iotest.OneByteReader(pc), 16), 100)
	if err != io.EOF {
		t.Fatalf("err = %v, want io.EOF", err)
	}
	want := []Frame{{0xe4, seq(40)}, {FlagNoop, []byte{}}}
	if !sameFrames(got, want) {
		t.Fatalf("frames differ: %v", got)
	}
	if !bytes.Equal(backing, make([]byte, len(backing))) {
		t.Errorf("prefix bytes not cleared after reading: %x", backing)
	}
}

func TestPrefixConnPassThrough(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := PrefixConn(a, nil); got != a {
		t.Fatalf("empty prefix: got a wrapper, want the conn itself")
	}
	pc := PrefixConn(a, []byte("pre"))
	if pc.LocalAddr() != a.LocalAddr() {
		t.Errorf("LocalAddr not passed through")
	}
	if nc := pc.(interface{ NetConn() net.Conn }).NetConn(); nc != a {
		t.Errorf("NetConn = %v, want the wrapped conn", nc)
	}
	go func() { pc.Write([]byte("out")) }()
	buf := make([]byte, 3)
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "out" {
		t.Fatalf("write through: %q, %v", buf, err)
	}
	small := make([]byte, 2)
	if n, err := pc.Read(small); n != 2 || err != nil || string(small) != "pr" {
		t.Fatalf("first Read = %d %q %v", n, small, err)
	}
	if n, err := pc.Read(small); n != 1 || err != nil || small[0] != 'e' {
		t.Fatalf("second Read = %d %q %v", n, small[:n], err)
	}
	err := pc.(interface{ CloseWrite() error }).CloseWrite()
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("CloseWrite on a pipe = %v, want ErrUnsupported", err)
	}
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Read(buf); err != io.EOF {
		t.Errorf("peer read after Close = %v, want io.EOF", err)
	}
}

func TestPrefixConnCloseWriteTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pc := PrefixConn(s, []byte("x"))
	if err := pc.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read after CloseWrite = %v, want io.EOF", err)
	}
}

func BenchmarkReadFrame(b *testing.B) {
	frame := AppendFrame(nil, 0xe4, seq(1024))
	src := bytes.NewReader(nil)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(frame)
		r := NewReader(src, 16<<10)
		if _, err := r.ReadFrame(1 << 20); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteFrame(b *testing.B) {
	body := seq(1024)
	b.SetBytes(int64(len(body) + HeaderSize))
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteFrame(io.Discard, 0x08, body); err != nil {
			b.Fatal(err)
		}
	}
}
