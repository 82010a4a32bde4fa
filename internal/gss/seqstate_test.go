package gss

import (
	"math"
	"testing"
)

// TestSeqStateMIT ports the whole table of MIT krb5's
// src/lib/gssapi/generic/t_seqstate.c. Rows marked "both" run in the
// narrow (32-bit) and wide (64-bit) sequence spaces.
func TestSeqStateMIT(t *testing.T) {
	const (
		ok     = StatusComplete
		gap    = StatusGapToken
		unseq  = StatusUnseqToken
		old    = StatusOldToken
		replay = StatusDuplicateToken
	)
	type step struct {
		seq  uint64
		want Major
	}
	const (
		narrow = iota
		wide
		both
	)
	const u32 = math.MaxUint32
	const u64 = uint64(math.MaxUint64)
	tests := []struct {
		name             string
		initial          uint64
		replay, sequence bool
		width            int
		steps            []step
	}{
		{"no replay or sequence checking", 10, false, false, both,
			[]step{{11, ok}, {10, ok}, {10, ok}, {9, ok}}},
		{"basic sequence checking", 100, false, true, both,
			[]step{{100, ok}, {102, gap}, {103, ok}, {101, unseq}}},
		{"initial gap", 200, false, true, both,
			[]step{{201, gap}, {202, ok}, {200, unseq}, {203, ok}}},
		{"narrow wraparound", u32 - 1, false, true, narrow,
			[]step{{u32 - 1, ok}, {u32, ok}, {0, ok}, {1, ok}}},
		{"narrow wraparound with gap", u32 - 1, false, true, narrow,
			[]step{{u32 - 1, ok}, {0, gap}, {u32, unseq}, {1, ok}}},
		{"wide wraparound", u64 - 1, false, true, wide,
			[]step{{u64 - 1, ok}, {u64, ok}, {0, ok}, {1, ok}}},
		{"wide wraparound with gap", u64 - 1, false, true, wide,
			[]step{{u64 - 1, ok}, {0, gap}, {u64, unseq}, {1, ok}}},
		{"wide beyond 32 bits", u32 - 1, false, true, wide,
			[]step{{u32 - 1, ok}, {u32, ok}, {u32 + 1, ok}, {u32 + 2, ok}}},
		{"wide beyond 32 bits with gap", u32 - 1, false, true, wide,
			[]step{{u32 - 1, ok}, {u32 + 1, gap}, {u32, unseq}, {u32 + 2, ok}}},
		{"wide does not wrap at 32 bits", u32 - 1, false, true, wide,
			[]step{{u32 - 1, ok}, {u32, ok}, {0, gap}}},
		{"replay reported without the replay flag", 250, false, true, both,
			[]step{{250, ok}, {250, replay}}},
		{"replay and sequence", 0, true, true, both,
			[]step{{5, gap}, {3, unseq}, {8, gap}, {3, replay}, {0, unseq}, {0, replay},
				{5, replay}, {3, replay}, {8, replay}, {9, ok}}},
		{"replay only", 0, true, false, both,
			[]step{{5, ok}, {3, ok}, {8, ok}, {3, replay}, {0, ok}, {0, replay},
				{5, replay}, {3, replay}, {8, replay}, {9, ok}}},
		{"wide replay and sequence with wraparound", u64 - 5, true, true, wide,
			[]step{{u64, gap}, {u64 - 2, unseq}, {0, ok}, {u64, replay}, {u64, replay},
				{2, gap}, {0, replay}, {1, unseq}, {u64 - 2, replay}, {u64 - 6, gap}}},
		{"narrow replay and sequence with wraparound", u32 - 5, true, true, narrow,
			[]step{{u32, gap}, {u32 - 2, unseq}, {0, ok}, {u32, replay}, {u32, replay},
				{2, gap}, {0, replay}, {1, unseq}, {u32 - 2, replay}, {u32 - 6, gap}}},
	}
	for _, tt := range tests {
		for _, w := range []int{narrow, wide} {
			if tt.width != both && tt.width != w {
				continue
			}
			wname := map[int]string{narrow: "narrow", wide: "wide"}[w]
			t.Run(tt.name+"/"+wname, func(t *testing.T) {
				s := newSeqStateWidth(tt.initial, tt.replay, tt.sequence, w == wide)
				for i, st := range tt.steps {
					if got := s.check(st.seq); got != st.want {
						t.Fatalf("step %d seq %d: got %v, want %v", i, st.seq, got, st.want)
					}
				}
			})
		}
	}
}

// TestSeqStateWindow checks the 64-entry window edges and the OLD/UNSEQ
// split beyond it, which the MIT table does not reach.
func TestSeqStateWindow(t *testing.T) {
	tests := []struct {
		name             string
		replay, sequence bool
		seq              uint64
		want             Major
	}{
		// After receiving 1000..1099 (next = 100 relative), 1036 is offset 64:
		// the oldest number still in the window, already seen.
		{"oldest in window replayed", true, false, 1036, StatusDuplicateToken},
		{"just outside window, replay only", true, false, 1035, StatusOldToken},
		{"just outside window, sequence", true, true, 1035, StatusUnseqToken},
		{"newest replayed", true, false, 1099, StatusDuplicateToken},
		{"next expected", true, true, 1100, StatusComplete},
		{"far future with sequence", true, true, 5000, StatusGapToken},
		{"far future replay only", true, false, 5000, StatusComplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeqState(1000, tt.replay, tt.sequence)
			for i := uint64(1000); i < 1100; i++ {
				if got := s.check(i); got != StatusComplete {
					t.Fatalf("in-order %d: %v", i, got)
				}
			}
			if got := s.check(tt.seq); got != tt.want {
				t.Fatalf("check(%d) = %v, want %v", tt.seq, got, tt.want)
			}
		})
	}
}

// TestSeqStateBigJump checks the window slide at its edges: after a jump
// of 62 the first number is still remembered (bit 63); from 63 on only the
// new number is, and a huge jump does not overflow the shift.
func TestSeqStateBigJump(t *testing.T) {
	tests := []struct {
		name    string
		jump    uint64
		wantMap uint64
	}{
		{"62 keeps the oldest", 62, 1<<63 | 1},
		{"63 drops it", 63, 1},
		{"64", 64, 1},
		{"2^40", 1 << 40, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSeqState(0, true, false)
			s.check(0)
			s.check(tt.jump + 1)
			if s.recvmap != tt.wantMap || s.next != tt.jump+2 {
				t.Fatalf("recvmap %#x next %d, want %#x %d", s.recvmap, s.next, tt.wantMap, tt.jump+2)
			}
			if got := s.check(tt.jump + 1); got != StatusDuplicateToken {
				t.Fatalf("replay of new number: %v", got)
			}
			wantZero := StatusOldToken
			if tt.wantMap&(1<<63) != 0 {
				wantZero = StatusDuplicateToken
			}
			if got := s.check(0); got != wantZero {
				t.Fatalf("check(0) = %v, want %v", got, wantZero)
			}
		})
	}
}
