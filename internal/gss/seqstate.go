package gss

// seqState is the receive window for per-message sequence numbers, a port
// of MIT krb5's g_seqstate (src/lib/gssapi/generic/util_seqstate.c).
//
// Numbers are tracked relative to base, the first number expected from the
// peer, so wraparound needs no special cases: rel = (seq - base) mod 2^w.
// next is the relative number expected next, and bit i of recvmap records
// whether relative number next-1-i has been seen, for a window of 64.
//
// RFC 4121 (CFX) sequence numbers are 64 bits wide; the narrow 32-bit mode
// is for RFC 1964 tokens and exists here so that MIT's whole test table can
// be checked. The zero value of narrow means wide, so export/import only
// needs the five serialized fields.
type seqState struct {
	doReplay, doSequence bool
	base, next, recvmap  uint64
	narrow               bool // 32-bit sequence space (RFC 1964); false for CFX
}

// seqWindow is the number of past sequence numbers remembered for replay
// detection, as in MIT.
const seqWindow = 64

// newSeqState returns a wide (64-bit, CFX) window expecting base first.
// replay and sequence are the negotiated GSS_C_REPLAY_FLAG and
// GSS_C_SEQUENCE_FLAG.
func newSeqState(base uint64, replay, sequence bool) seqState {
	return seqState{doReplay: replay, doSequence: sequence, base: base}
}

// newSeqStateWidth returns a window in the 64-bit (wide) or 32-bit
// sequence space.
func newSeqStateWidth(base uint64, replay, sequence, wide bool) seqState {
	s := newSeqState(base, replay, sequence)
	s.narrow = !wide
	if s.narrow {
		s.base &= 0xffffffff
	}
	return s
}

// mask returns the modulus mask of the sequence space.
func (s *seqState) mask() uint64 {
	if s.narrow {
		return 0xffffffff
	}
	return ^uint64(0)
}

// check records seq and classifies it, returning StatusComplete or one of
// the supplementary bits (RFC 2743 §1.2.3):
//
//   - seq at or beyond the expected number moves the window; skipping
//     numbers gives GSS_S_GAP_TOKEN when sequencing was requested.
//   - seq within the window that was already seen gives
//     GSS_S_DUPLICATE_TOKEN. Like MIT, this is reported even without
//     replay detection when sequencing is on (t_seqstate.c says so).
//   - seq within the window but not yet seen is marked and gives
//     GSS_S_UNSEQ_TOKEN when sequencing was requested.
//   - seq older than the window gives GSS_S_UNSEQ_TOKEN with sequencing,
//     else GSS_S_OLD_TOKEN.
//
// With neither flag set every number is accepted and nothing is recorded.
// A number "before" base lands far in the future after the subtraction and
// counts as a gap, exactly as in MIT.
func (s *seqState) check(seq uint64) Major {
	if !s.doReplay && !s.doSequence {
		return StatusComplete
	}
	mask := s.mask()
	rel := (seq - s.base) & mask
	if rel >= s.next {
		// Expected or future: slide the window so that bit 0 is rel.
		offset := rel - s.next
		if offset >= seqWindow-1 {
			// Shifting by 64 or more leaves only the new bit; Go's shift
			// would give 0 as well, but offset+1 can overflow to 0.
			s.recvmap = 1
		} else {
			s.recvmap = s.recvmap<<(offset+1) | 1
		}
		s.next = (rel + 1) & mask
		if offset > 0 && s.doSequence {
			return StatusGapToken
		}
		return StatusComplete
	}
	// In the past.
	offset := s.next - rel
	if offset > seqWindow {
		if s.doSequence {
			return StatusUnseqToken
		}
		return StatusOldToken
	}
	bit := uint64(1) << (offset - 1)
	if s.recvmap&bit != 0 {
		return StatusDuplicateToken
	}
	s.recvmap |= bit
	if s.doSequence {
		return StatusUnseqToken
	}
	return StatusComplete
}
