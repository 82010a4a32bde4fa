package gss

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Importer implements GSS_Import_sec_context (RFC 2743 §2.2.9) for the
// tokens sealed by ExportWith. It holds the seal keys it accepts, by id, and
// remembers the id of every context it imported until that token's import
// deadline has passed, so that a token is imported at most once ("a given
// interprocess token may be imported only once", RFC 2744 §5.17) while the
// memory it needs stays bounded. It is safe for concurrent use.
//
// The memory is per Importer, that is per worker process. That suffices
// because a token travels only over one worker's private socketpair
// (ARCHITECTURE.md §6); when the listener re-sends the handoff of a worker
// that died before acknowledging it, the second worker's Importer accepts
// the token once more, which is the intended recovery, provided it happens
// before the token's import deadline.
type Importer struct {
	keys [256]*SealKey // by key id; immutable after NewImporter

	mu   sync.Mutex
	now  func() time.Time // guarded by mu
	seen map[[contextIDLen]byte]struct{}
	// byDeadline is a min-heap on deadline over the ids in seen, so that
	// entries are dropped in deadline order without scanning the map.
	byDeadline expiryHeap[[contextIDLen]byte]
}

// NewImporter returns an Importer that accepts tokens sealed with any of
// keys. Several keys allow rotation: tokens carry their key's id, so tokens
// sealed with the old key keep importing while new ones use the new key.
// When two keys share an id the last one wins; nil keys are ignored.
func NewImporter(keys ...*SealKey) *Importer {
	im := &Importer{now: time.Now, seen: make(map[[contextIDLen]byte]struct{})}
	for _, k := range keys {
		if k != nil {
			im.keys[k.id] = k
		}
	}
	return im
}

// SetNow replaces the clock the Importer checks deadlines, expiry and its
// memory of imported contexts against; nil restores time.Now. For tests.
func (im *Importer) SetNow(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	im.mu.Lock()
	im.now = now
	im.mu.Unlock()
}

// Import rebuilds the context sealed in token, restoring its send sequence
// number and its receive window exactly, so the peer sees no gap and a
// replay of a token the exporter already accepted is still detected.
// token is not modified and may be reused by the caller.
//
// Status codes, following RFC 2743 §2.2.9 (GSS_S_DEFECTIVE_TOKEN: "the
// interprocess token is defective"; GSS_S_NO_CONTEXT: the token holds no
// valid context reference) and ARCHITECTURE.md §5:
//
//	shorter than header + tag, malformed plaintext,
//	trailing bytes                      DEFECTIVE_TOKEN              MinorBadLength
//	bad magic, unsupported version      DEFECTIVE_TOKEN              MinorWrongTokenID
//	unknown key id, key zeroed          DEFECTIVE_TOKEN              MinorBadSealKey
//	GCM tag mismatch (altered token,
//	  wrong key with a known id)        DEFECTIVE_TOKEN              MinorNone
//	unknown mechanism OID               BAD_MECH                     MinorBadMechOID
//	import deadline passed              DEFECTIVE_TOKEN              MinorImportDeadline
//	context expiry passed               CONTEXT_EXPIRED              MinorContextExpired
//	context already imported here       NO_CONTEXT|DUPLICATE_TOKEN   MinorImportReplay
//
// The last is a routine error, because the only live instance of the context
// is elsewhere (RFC 2743 §2.2.8), carrying the DUPLICATE_TOKEN supplementary
// bit (RFC 2743 §1.2.1.1), so both errors.Is(err, StatusNoContext) and
// errors.Is(err, StatusDuplicateToken) hold. A deadline is checked before
// the replay memory, so a replay after the deadline reports the deadline.
func (im *Importer) Import(token []byte) (*Context, error) {
	if len(token) < iptHeaderLen+iptTagLen {
		return nil, newError(StatusDefectiveToken, MinorBadLength,
			fmt.Sprintf("interprocess token is %d bytes, shorter than the minimum %d",
				len(token), iptHeaderLen+iptTagLen), nil)
	}
	if string(token[:len(iptMagic)]) != iptMagic {
		return nil, newError(StatusDefectiveToken, MinorWrongTokenID, "not an interprocess token (bad magic)", nil)
	}
	if v := token[4]; v != iptVersion1 {
		return nil, newError(StatusDefectiveToken, MinorWrongTokenID,
			fmt.Sprintf("unsupported interprocess token version %d", v), nil)
	}
	key := im.keys[token[5]]
	if key == nil {
		return nil, newError(StatusDefectiveToken, MinorBadSealKey,
			fmt.Sprintf("interprocess token sealed with unknown key id %d", token[5]), nil)
	}
	pt, err := key.open(token)
	if err != nil {
		return nil, err
	}
	e, err := parsePlaintext(pt)
	clear(pt)
	if err != nil {
		return nil, err
	}

	im.mu.Lock()
	nowFn := im.now
	im.mu.Unlock()
	now := nowFn()
	nowNanos := now.UnixNano()
	if nowNanos > e.deadline {
		e.zero()
		return nil, newError(StatusDefectiveToken, MinorImportDeadline,
			fmt.Sprintf("interprocess token is %v old; import deadline %v",
				time.Duration(nowNanos-e.exportedAt).Round(time.Millisecond),
				time.Duration(e.deadline-e.exportedAt).Round(time.Millisecond)), nil)
	}
	if now.After(e.params.expiry) {
		e.zero()
		return nil, newError(StatusContextExpired, MinorContextExpired,
			fmt.Sprintf("context expired %v ago", now.Sub(e.params.expiry).Round(time.Second)), nil)
	}
	if !im.remember(e.id, e.deadline, nowNanos) {
		e.zero()
		return nil, newError(StatusNoContext|StatusDuplicateToken, MinorImportReplay,
			"interprocess token already imported", nil)
	}
	return e.build()
}

// build makes the Context: newContext takes ownership of the keys and
// derives the per-message keys (zeroing them on failure), then the sequence
// state is restored exactly (RFC 4121 §4.2.6.1): the send counter continues
// where the exporter stopped, and the receive window keeps the numbers
// already seen, so a replayed peer token is still caught.
func (e *exportedContext) build() (*Context, error) {
	c, err := newContext(e.params)
	if err != nil {
		return nil, err
	}
	c.sendSeq = e.params.sendSeq
	c.recv.base = e.params.recvSeq
	c.recv.next = e.recvNext
	c.recv.recvmap = e.recvMap
	c.recv.doReplay = e.doReplay
	c.recv.doSequence = e.doSequence
	return c, nil
}

// open authenticates and decrypts token, whose header has been checked,
// into a new buffer (the caller's token is left intact). The caller must
// clear the returned plaintext.
func (k *SealKey) open(token []byte) ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.aead == nil {
		return nil, newError(StatusDefectiveToken, MinorBadSealKey,
			fmt.Sprintf("interprocess token sealed with key id %d, which has been zeroed", k.id), nil)
	}
	ct := token[iptHeaderLen:]
	pt, err := k.aead.Open(make([]byte, 0, len(ct)-iptTagLen), token[6:iptHeaderLen], ct, token[:iptHeaderLen])
	if err != nil {
		return nil, newError(StatusDefectiveToken, MinorNone, "interprocess token failed authentication", err)
	}
	return pt, nil
}

// remember records id as imported and reports whether it was new. It first
// drops the ids whose deadline is before now: their tokens are refused by
// the deadline check, so remembering them no longer serves a purpose.
func (im *Importer) remember(id [contextIDLen]byte, deadline, now int64) bool {
	im.mu.Lock()
	defer im.mu.Unlock()
	for len(im.byDeadline) > 0 && im.byDeadline[0].at < now {
		delete(im.seen, im.byDeadline.pop().key)
	}
	if _, dup := im.seen[id]; dup {
		return false
	}
	im.seen[id] = struct{}{}
	im.byDeadline.push(expiryItem[[contextIDLen]byte]{key: id, at: deadline})
	return true
}

// exportedContext is a parsed plaintext. Its keys and delegated credential
// are copies owned by it (the plaintext buffer is zeroed after parsing).
type exportedContext struct {
	id                   [contextIDLen]byte
	exportedAt           int64
	deadline             int64
	params               contextParams
	recvNext, recvMap    uint64
	doReplay, doSequence bool
}

// zero overwrites the keys of a parsed context that will not be imported.
func (e *exportedContext) zero() {
	e.params.sessionKey.Zero()
	e.params.subkey.Zero()
	e.params.acceptorSubkey.Zero()
	clear(e.params.delegated)
	e.params.delegated = nil
}

// iptMalformed is the error for a plaintext that does not parse. The plaintext
// was authenticated, so this means a bug in the exporter, not an attack;
// it is still refused as a defective token.
func iptMalformed(what string) error {
	return newError(StatusDefectiveToken, MinorBadLength, "malformed interprocess token: "+what, nil)
}

// parsePlaintext parses a version 1 plaintext strictly: every length is
// checked, booleans are 0 or 1, keys are present and consistent, and
// trailing bytes are refused. On error nothing it copied is left behind.
func parsePlaintext(pt []byte) (*exportedContext, error) {
	e := &exportedContext{}
	if err := e.parse(cryptobyte.String(pt)); err != nil {
		e.zero()
		return nil, err
	}
	return e, nil
}

func (e *exportedContext) parse(s cryptobyte.String) error {
	var (
		id, mech, initName, acceptName, delegated cryptobyte.String
		u64                                       uint64
		flags, nsec                               uint32
		expirySec                                 uint64
	)
	if !s.ReadUint8LengthPrefixed(&id) || len(id) != contextIDLen {
		return iptMalformed("context id")
	}
	copy(e.id[:], id)
	if !s.ReadUint64(&u64) {
		return iptMalformed("export time")
	}
	e.exportedAt = int64(u64)
	if !s.ReadUint64(&u64) {
		return iptMalformed("import deadline")
	}
	e.deadline = int64(u64)
	if e.deadline <= e.exportedAt {
		return iptMalformed("import deadline before export time")
	}

	p := &e.params
	if !s.ReadUint8LengthPrefixed(&mech) {
		return iptMalformed("mech OID")
	}
	switch {
	case bytes.Equal(mech, oidKRB5):
		p.mech = oidKRB5
	case bytes.Equal(mech, oidKRB5MS):
		p.mech = oidKRB5MS
	default:
		return newError(StatusBadMech, MinorBadMechOID, "interprocess token names an unknown mechanism", nil)
	}
	if !iptReadBool(&s, &p.viaSPNEGO) {
		return iptMalformed("via-SPNEGO flag")
	}
	if !iptReadBool(&s, &p.initiator) {
		return iptMalformed("initiator flag")
	}
	if !s.ReadUint32(&flags) {
		return iptMalformed("flags")
	}
	p.flags = Flags(flags)
	if !s.ReadUint16LengthPrefixed(&initName) {
		return iptMalformed("initiator name")
	}
	p.initName = string(initName)
	if !s.ReadUint16LengthPrefixed(&acceptName) {
		return iptMalformed("acceptor name")
	}
	p.acceptName = string(acceptName)
	if !s.ReadUint64(&expirySec) || expirySec > iptMaxExpiryUnix ||
		!s.ReadUint32(&nsec) || nsec >= uint32(time.Second) {
		return iptMalformed("context expiry")
	}
	p.expiry = time.Unix(int64(expirySec), int64(nsec))

	var ok bool
	if p.sessionKey, ok = iptReadKey(&s); !ok || p.sessionKey.IsZero() || p.sessionKey.Etype == 0 {
		return iptMalformed("session key")
	}
	if p.subkey, ok = iptReadKey(&s); !ok || p.subkey.IsZero() || p.subkey.Etype == 0 {
		return iptMalformed("subkey")
	}
	if p.acceptorSubkey, ok = iptReadKey(&s); !ok || p.acceptorSubkey.IsZero() != (p.acceptorSubkey.Etype == 0) {
		return iptMalformed("acceptor subkey")
	}
	if !s.ReadUint64(&p.sendSeq) {
		return iptMalformed("send sequence")
	}
	if !s.ReadUint64(&p.recvSeq) || !s.ReadUint64(&e.recvNext) || !s.ReadUint64(&e.recvMap) ||
		!iptReadBool(&s, &e.doReplay) || !iptReadBool(&s, &e.doSequence) {
		return iptMalformed("receive window")
	}
	if !s.ReadUint24LengthPrefixed(&delegated) {
		return iptMalformed("delegated credential")
	}
	if len(delegated) > 0 {
		p.delegated = bytes.Clone(delegated)
	}
	if !s.Empty() {
		return iptMalformed(fmt.Sprintf("%d trailing bytes", len(s)))
	}
	return nil
}

func iptReadBool(s *cryptobyte.String, out *bool) bool {
	var v uint8
	if !s.ReadUint8(&v) || v > 1 {
		return false
	}
	*out = v == 1
	return true
}

// iptReadKey reads an enctype and a key, copying the key bytes.
func iptReadKey(s *cryptobyte.String) (Key, bool) {
	var etype uint32
	var v cryptobyte.String
	if !s.ReadUint32(&etype) || !s.ReadUint8LengthPrefixed(&v) {
		return Key{}, false
	}
	k := Key{Etype: int32(etype)}
	if len(v) > 0 {
		k.Value = bytes.Clone(v)
	}
	return k, true
}
