package gss

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// Context export and import (RFC 2743 §2.2.8-2.2.9, RFC 2744 §5.14 and
// §5.17): the listener establishes a context, exports it into an
// interprocess token and hands the token to a worker, which imports it and
// carries on with the per-message traffic.
//
// MIT's interprocess token is neither encrypted nor integrity protected and
// holds the session key in the clear. Ours is sealed with AES-256-GCM under a
// key that exists only inside one running instance of the daemon (made by
// the listener at start and handed to each worker over its private
// socketpair), so a token is useless outside that instance and any change to
// it is detected before a single field is parsed.
//
// Token layout (DESIGN.md §5), version 1:
//
//	"GSXC" | version u8 (1) | key id u8 | nonce [12] | AES-256-GCM(plaintext) || tag [16]
//
// The additional authenticated data is the 18-byte header, so the version
// and the key id cannot be changed without breaking the tag. The plaintext
// is a fixed sequence of fields written with cryptobyte (integers are
// big-endian; "<n>-prefixed" is a length prefix of n bytes):
//
//	context id            u8-prefixed, 16 random bytes
//	exported at           u64, Unix nanoseconds
//	import deadline       u64, Unix nanoseconds, after "exported at"
//	mech OID              u8-prefixed DER contents (oidKRB5 or oidKRB5MS)
//	via SPNEGO            u8, 0 or 1
//	initiator             u8, 0 or 1
//	ret_flags             u32
//	initiator name        u16-prefixed
//	acceptor name         u16-prefixed
//	context expiry        u64 Unix seconds (at most year 9999), u32 nanoseconds
//	session key           u32 enctype, u8-prefixed key
//	subkey                u32 enctype, u8-prefixed key
//	acceptor subkey       u32 enctype, u8-prefixed key; enctype 0 and no bytes when absent
//	send sequence         u64
//	receive window        u64 base, u64 next, u64 recvmap, u8 replay, u8 sequence
//	delegated credential  u24-prefixed KRB-CRED, may be empty
//
// and then nothing: trailing bytes are an error.
//
// Field-version discipline: the version byte names the exact field list. A
// later version may only append fields after the last field of the version
// before it and must never change or reorder earlier fields, so a parser for
// version N reads a version M ≤ N token by stopping after M's fields. A
// parser refuses any version it does not know; this one knows only version 1.
// Because the header is authenticated, a token cannot be relabelled with
// another version to make a parser skip fields.

// Interprocess token constants.
const (
	iptMagic           = "GSXC"
	iptVersion1        = 1
	iptNonceLen        = 12
	iptHeaderLen       = len(iptMagic) + 1 + 1 + iptNonceLen // 18
	iptTagLen          = 16
	sealKeyLen         = 32
	contextIDLen       = 16
	maxSealsPerKey     = 1 << 32 // NIST SP 800-38D §8.3 bound for random 96-bit nonces
	iptMaxNameLen      = 1<<16 - 1
	iptMaxKeyLen       = 1<<8 - 1
	iptMaxDelegatedLen = 1<<24 - 1
	// iptMaxExpiryUnix is 9999-12-31T23:59:59Z, the last KerberosTime (RFC
	// 4120 §5.2.3: GeneralizedTime with a four-digit year). Bounding the
	// expiry keeps it exactly representable by time.Unix.
	iptMaxExpiryUnix = 253402300799
)

// DefaultImportDeadline is how long an interprocess token stays importable
// when ExportOptions.ImportDeadline is zero. The listener hands a context to
// a worker within milliseconds; a token older than this is stale or replayed.
const DefaultImportDeadline = 30 * time.Second

// SealKey protects interprocess tokens: an AES-256-GCM key together with the
// one-byte key id written in each token's header, so that an Importer holding
// several keys (key rotation) knows which one to try.
//
// A SealKey never prints its key bytes: it implements fmt.Formatter. It is
// safe for concurrent use. Zero overwrites the key bytes; the expanded AES
// key schedule inside the standard library cannot be reached to be
// overwritten and is left to the garbage collector.
type SealKey struct {
	id    uint8
	seals atomic.Uint64 // tokens sealed so far (nonce budget)

	mu   sync.RWMutex
	key  []byte      // guarded by mu; nil once zeroed
	aead cipher.AEAD // guarded by mu; nil once zeroed
}

// NewSealKey returns a SealKey with the given id for the 32-byte AES-256 key.
// It copies key; the caller should zero its own copy.
func NewSealKey(id uint8, key []byte) (*SealKey, error) {
	if len(key) != sealKeyLen {
		return nil, newError(StatusFailure, MinorNone,
			fmt.Sprintf("seal key must be %d bytes, got %d", sealKeyLen, len(key)), nil)
	}
	k := &SealKey{id: id, key: bytes.Clone(key)}
	block, err := aes.NewCipher(k.key)
	if err != nil {
		clear(k.key)
		return nil, newError(StatusFailure, MinorNone, "seal key", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		clear(k.key)
		return nil, newError(StatusFailure, MinorNone, "seal key", err)
	}
	k.aead = aead
	return k, nil
}

// GenerateSealKey returns a SealKey with the given id and a fresh random key
// from crypto/rand.
func GenerateSealKey(id uint8) (*SealKey, error) {
	var buf [sealKeyLen]byte
	defer clear(buf[:])
	if _, err := rand.Read(buf[:]); err != nil {
		return nil, newError(StatusFailure, MinorNone, "generating seal key", err)
	}
	return NewSealKey(id, buf[:])
}

// ID returns the key id written in the header of the tokens k seals.
func (k *SealKey) ID() uint8 { return k.id }

// AppendKey appends the 32 key bytes to dst and returns the extended slice,
// so that the listener can hand the key to a worker over their private
// socketpair (DESIGN.md §6). A zeroed key appends nothing.
func (k *SealKey) AppendKey(dst []byte) []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return append(dst, k.key...)
}

// Zero overwrites the key bytes and makes k unusable: Export with k fails and
// an Importer holding k refuses the tokens it sealed. It is idempotent.
func (k *SealKey) Zero() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.key)
	k.key = nil
	k.aead = nil
}

// Format implements fmt.Formatter and never prints the key bytes.
func (k *SealKey) Format(f fmt.State, _ rune) {
	if k == nil {
		io.WriteString(f, "SealKey(nil)")
		return
	}
	k.mu.RLock()
	zeroed := k.aead == nil
	k.mu.RUnlock()
	if zeroed {
		fmt.Fprintf(f, "SealKey{id=%d, zeroed}", k.id)
		return
	}
	fmt.Fprintf(f, "SealKey{id=%d}", k.id)
}

// ExportOptions tunes ExportWith. The zero value gives the defaults.
type ExportOptions struct {
	// ImportDeadline is how long the token stays importable; zero means
	// DefaultImportDeadline. It must not be negative.
	ImportDeadline time.Duration
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
	// Rand supplies the context id and the GCM nonce; nil means crypto/rand.
	Rand io.Reader
}

// Export is ExportWith with the default options.
func (c *Context) Export(key *SealKey) ([]byte, error) {
	return c.ExportWith(key, ExportOptions{})
}

// ExportWith implements GSS_Export_sec_context (RFC 2743 §2.2.8): it returns
// an interprocess token sealed with key from which Importer.Import rebuilds
// the context, with its sequence numbers and receive window, in another
// process of the same daemon instance.
//
// On success the token is the only live instance of the context (RFC 2743
// §2.2.8: "only a single instantiation of a given context may be active at
// any one time"): c is deactivated, its keys are zeroed, and every later call
// on it, Export included, fails with GSS_S_NO_CONTEXT. On failure no token is
// returned and c is unchanged, as RFC 2744 §5.14 requires. Failures:
//
//	context already exported or deleted  the sticky error (GSS_S_NO_CONTEXT)
//	ret_flags without GSS_C_TRANS_FLAG    GSS_S_UNAVAILABLE
//	context expired                       GSS_S_CONTEXT_EXPIRED (Import would refuse it)
//	nil or zeroed key, bad options,
//	randomness failure, oversized field   GSS_S_FAILURE
func (c *Context) ExportWith(key *SealKey, opts ExportOptions) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usableLocked(); err != nil {
		return nil, err
	}
	if c.flags&FlagTrans == 0 {
		return nil, newError(StatusUnavailable, MinorNone,
			"context cannot be exported: GSS_C_TRANS_FLAG not set", nil)
	}
	lifetime := opts.ImportDeadline
	switch {
	case lifetime == 0:
		lifetime = DefaultImportDeadline
	case lifetime < 0:
		return nil, newError(StatusFailure, MinorNone,
			fmt.Sprintf("negative import deadline %v", lifetime), nil)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	t := now()
	if t.After(c.expiry) {
		return nil, newError(StatusContextExpired, MinorContextExpired,
			fmt.Sprintf("context expired %v ago", t.Sub(c.expiry).Round(time.Second)), nil)
	}
	exportedAt := t.UnixNano()
	deadline := t.Add(lifetime).UnixNano()
	if deadline <= exportedAt {
		return nil, newError(StatusFailure, MinorNone,
			fmt.Sprintf("import deadline %v is out of range", lifetime), nil)
	}
	token, err := c.sealLocked(key, rnd, exportedAt, deadline)
	if err != nil {
		return nil, err
	}
	// The token now carries the context: deactivate this instance.
	c.err = newError(StatusNoContext, MinorExported, "context exported", nil)
	c.zeroLocked()
	return token, nil
}

// sealLocked builds and seals the plaintext. c.mu must be held. It encrypts
// in place, so the only copy of the plaintext is overwritten by the
// ciphertext; on failure the buffer is cleared.
func (c *Context) sealLocked(key *SealKey, rnd io.Reader, exportedAt, deadline int64) ([]byte, error) {
	if key == nil {
		return nil, newError(StatusFailure, MinorNone, "no seal key", nil)
	}
	if err := c.checkExportSizesLocked(); err != nil {
		return nil, err
	}
	key.mu.RLock()
	defer key.mu.RUnlock()
	if key.aead == nil {
		return nil, newError(StatusFailure, MinorBadSealKey, "seal key has been zeroed", nil)
	}
	if key.seals.Add(1) > maxSealsPerKey {
		return nil, newError(StatusFailure, MinorBadSealKey,
			"seal key has sealed 2^32 tokens; rotate it", nil)
	}

	// One read for the context id and the nonce.
	var random [contextIDLen + iptNonceLen]byte
	if _, err := io.ReadFull(rnd, random[:]); err != nil {
		return nil, newError(StatusFailure, MinorNone, "reading random bytes", err)
	}
	id := random[:contextIDLen]

	n := c.plaintextLenLocked()
	out := make([]byte, iptHeaderLen, iptHeaderLen+n+key.aead.Overhead())
	copy(out, iptMagic)
	out[4] = iptVersion1
	out[5] = key.id
	copy(out[6:iptHeaderLen], random[contextIDLen:])

	b := cryptobyte.NewFixedBuilder(out[iptHeaderLen : iptHeaderLen : iptHeaderLen+n])
	c.marshalLocked(b, id, exportedAt, deadline)
	pt, err := b.Bytes()
	if err != nil || len(pt) != n {
		clear(out[:cap(out)])
		if err == nil {
			err = fmt.Errorf("gss: plaintext is %d bytes, expected %d", len(pt), n)
		}
		return nil, newError(StatusFailure, MinorNone, "encoding interprocess token", err)
	}
	// Encrypt in place: dst starts where pt starts (crypto/cipher AEAD.Seal
	// allows exactly this overlap) and has room for the tag, so the
	// ciphertext overwrites the only copy of the plaintext and no second
	// buffer is allocated.
	dst := out[iptHeaderLen:iptHeaderLen]
	sealed := key.aead.Seal(dst, out[6:iptHeaderLen], pt, out[:iptHeaderLen])
	if len(sealed) != n+key.aead.Overhead() || &sealed[0] != &out[iptHeaderLen : iptHeaderLen+1][0] {
		// Seal reallocated: the plaintext would still be in out.
		clear(out[:cap(out)])
		clear(sealed)
		return nil, newError(StatusFailure, MinorNone, "sealing interprocess token: buffer reallocated", nil)
	}
	return out[:iptHeaderLen+len(sealed)], nil
}

// checkExportSizesLocked refuses fields too long for their length prefix
// before anything is written, so the failure message names the field.
func (c *Context) checkExportSizesLocked() error {
	fields := []struct {
		name string
		n    int
		max  int
	}{
		{"mech OID", len(c.mech), iptMaxKeyLen},
		{"initiator name", len(c.initName), iptMaxNameLen},
		{"acceptor name", len(c.acceptName), iptMaxNameLen},
		{"session key", len(c.sessionKey.Value), iptMaxKeyLen},
		{"subkey", len(c.subkey.Value), iptMaxKeyLen},
		{"acceptor subkey", len(c.acceptorSubkey.Value), iptMaxKeyLen},
		{"delegated credential", len(c.delegated), iptMaxDelegatedLen},
	}
	for _, f := range fields {
		if f.n > f.max {
			return newError(StatusFailure, MinorBadLength,
				fmt.Sprintf("%s is %d bytes, the interprocess token allows %d", f.name, f.n, f.max), nil)
		}
	}
	if sec := c.expiry.Unix(); sec < 0 || sec > iptMaxExpiryUnix {
		return newError(StatusFailure, MinorNone,
			fmt.Sprintf("context expiry %v is outside the interprocess token's range", c.expiry), nil)
	}
	return nil
}

// plaintextLenLocked returns the exact plaintext length marshalLocked
// writes, so that the buffer is allocated once and never regrown (a regrown
// buffer would leave a copy of the keys behind).
func (c *Context) plaintextLenLocked() int {
	const keyOverhead = 4 + 1
	return 1 + contextIDLen + // context id
		8 + 8 + // exported at, deadline
		1 + len(c.mech) +
		1 + 1 + 4 + // via SPNEGO, initiator, ret_flags
		2 + len(c.initName) + 2 + len(c.acceptName) +
		8 + 4 + // expiry
		keyOverhead + len(c.sessionKey.Value) +
		keyOverhead + len(c.subkey.Value) +
		keyOverhead + len(c.acceptorSubkey.Value) +
		8 + // send sequence
		8 + 8 + 8 + 1 + 1 + // receive window
		3 + len(c.delegated)
}

// marshalLocked writes the version 1 plaintext (see the layout at the top of
// this file). c.mu must be held. Length prefixes are written directly rather
// than through child builders, which allocate per field; the prefixed writers
// below refuse a value too long for its prefix.
func (c *Context) marshalLocked(b *cryptobyte.Builder, id []byte, exportedAt, deadline int64) {
	iptAddPrefixed(b, 1, id)
	b.AddUint64(uint64(exportedAt))
	b.AddUint64(uint64(deadline))
	iptAddPrefixed(b, 1, c.mech)
	iptAddBool(b, c.viaSPNEGO)
	iptAddBool(b, c.initiator)
	b.AddUint32(uint32(c.flags))
	iptAddPrefixedString(b, c.initName)
	iptAddPrefixedString(b, c.acceptName)
	b.AddUint64(uint64(c.expiry.Unix()))
	b.AddUint32(uint32(c.expiry.Nanosecond()))
	iptAddKey(b, c.sessionKey)
	iptAddKey(b, c.subkey)
	if c.acceptorSubkey.IsZero() {
		iptAddKey(b, Key{})
	} else {
		iptAddKey(b, c.acceptorSubkey)
	}
	b.AddUint64(c.sendSeq)
	b.AddUint64(c.recv.base)
	b.AddUint64(c.recv.next)
	b.AddUint64(c.recv.recvmap)
	iptAddBool(b, c.recv.doReplay)
	iptAddBool(b, c.recv.doSequence)
	iptAddPrefixed(b, 3, c.delegated)
}

// iptAddPrefixed writes v with a big-endian length prefix of prefixLen (1, 2
// or 3) bytes, the encoding cryptobyte.String.ReadUint{8,16,24}LengthPrefixed
// reads.
func iptAddPrefixed(b *cryptobyte.Builder, prefixLen int, v []byte) {
	if len(v) >= 1<<(8*prefixLen) {
		b.SetError(fmt.Errorf("gss: %d-byte field exceeds a %d-byte length prefix", len(v), prefixLen))
		return
	}
	switch prefixLen {
	case 1:
		b.AddUint8(uint8(len(v)))
	case 2:
		b.AddUint16(uint16(len(v)))
	case 3:
		b.AddUint24(uint32(len(v)))
	}
	b.AddBytes(v)
}

// iptAddPrefixedString is iptAddPrefixed with a two-byte prefix for a string,
// written byte by byte so that no []byte copy of it is made.
func iptAddPrefixedString(b *cryptobyte.Builder, v string) {
	if len(v) > iptMaxNameLen {
		b.SetError(fmt.Errorf("gss: %d-byte name exceeds a 2-byte length prefix", len(v)))
		return
	}
	b.AddUint16(uint16(len(v)))
	for i := 0; i < len(v); i++ {
		b.AddUint8(v[i])
	}
}

func iptAddBool(b *cryptobyte.Builder, v bool) {
	if v {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
}

func iptAddKey(b *cryptobyte.Builder, k Key) {
	b.AddUint32(uint32(k.Etype))
	iptAddPrefixed(b, 1, k.Value)
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

// Importer implements GSS_Import_sec_context (RFC 2743 §2.2.9) for the
// tokens sealed by ExportWith. It holds the seal keys it accepts, by id, and
// remembers the id of every context it imported until that token's import
// deadline has passed, so that a token is imported at most once ("a given
// interprocess token may be imported only once", RFC 2744 §5.17) while the
// memory it needs stays bounded. It is safe for concurrent use.
//
// The memory is per Importer, that is per worker process. That suffices
// because a token travels only over one worker's private socketpair
// (DESIGN.md §6); when the listener re-sends the handoff of a worker that
// died before acknowledging it, the second worker's Importer accepts the
// token once more, which is the intended recovery, provided it happens
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
// valid context reference) and DESIGN.md §5:
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
