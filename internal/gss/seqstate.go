package gss

// PLACEHOLDER owned by the per-message work: the RFC 4121 receive window.
// Replaced by the real implementation (a port of MIT util_seqstate.c).
type seqState struct {
	doReplay, doSequence bool
	base, next, recvmap  uint64
}

func newSeqState(base uint64, replay, sequence bool) seqState {
	return seqState{doReplay: replay, doSequence: sequence, base: base}
}
