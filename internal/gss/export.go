package gss

import (
	"crypto/rand"
	"fmt"
	"io"
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
// Token layout (ARCHITECTURE.md §5), version 1:
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
	contextIDLen       = 16
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
