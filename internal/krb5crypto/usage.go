package krb5crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/subtle"
	"fmt"
	"hash"
	"io"
	"sync"
)

// Usage holds the keys derived from one base key for one key usage number:
// Ke (encryption), Ki (integrity of an encryption) and Kc (checksums), plus
// the expanded AES key schedule and a pool of keyed HMAC states.
//
// A Usage is immutable after DeriveUsage and safe for concurrent use, except
// that Zero must not run concurrently with any other method.
type Usage struct {
	etype int32
	p     profile
	usage uint32

	ke, ki, kc []byte       // derived keys; zeroed by Zero
	block      cipher.Block // AES(Ke); nil after Zero
	newHash    func() hash.Hash
	pool       *sync.Pool // of *opState; nil after Zero
}

// opState is the per-operation scratch state: HMAC instances keyed with Ki
// and Kc (reset, not rebuilt, between uses), CBC modes whose IV is reset per
// message, and a buffer for HMAC output so that Sum does not allocate.
//
// A state goes back to the pool holding no bytes of the message it served:
// the block buffers and sum are cleared, and each HMAC is reset right after
// its Sum (see mac), which overwrites the partial input block it buffers.
// Zero cannot reach the pool's states, so this is what keeps plaintext from
// outliving the call; what a pooled state keeps is key material only (the
// AES schedule and the keyed HMAC pads), like the Usage itself.
type opState struct {
	macI, macC hash.Hash
	enc, dec   cipher.BlockMode
	sumBuf     [64]byte
	// Block scratch for CTS and the confounder. It lives here rather than
	// on the stack because arrays passed to cipher.Block methods (an
	// interface) escape, and would be allocated per call.
	conf, b1, b2 [aes.BlockSize]byte
}

// ivSetter is implemented by the standard library's AES CBC modes; it lets
// a pooled mode be reused with a fresh IV instead of being reallocated.
type ivSetter interface{ SetIV([]byte) }

// zeroIV is the initial cipher state of every Kerberos encryption: RFC 3961
// §5.3 with a zero initial cipher state, as GSS-API (RFC 4121 §4.2.4) uses.
var zeroIV [aes.BlockSize]byte

// DeriveUsage derives Ke, Ki and Kc for usage from the base key of etype:
// RFC 3961 DK for enctypes 17 and 18, RFC 8009 KDF-HMAC-SHA2 for 19 and 20.
// The key bytes are copied; the caller keeps ownership of key.
func DeriveUsage(etype int32, key []byte, usage uint32) (*Usage, error) {
	p, ok := profileOf(etype)
	if !ok {
		return nil, fmt.Errorf("%w %d", ErrUnsupported, etype)
	}
	if len(key) != p.keySize {
		return nil, fmt.Errorf("%w: enctype %d needs %d bytes, got %d", ErrKeySize, etype, p.keySize, len(key))
	}
	u := &Usage{etype: etype, p: p, usage: usage, newHash: hashFor(etype)}
	if p.sha2 {
		u.kc = deriveKDF(u.newHash, key, usage, kindChecksum, p.kcSize)
		u.ke = deriveKDF(u.newHash, key, usage, kindEncrypt, p.keySize)
		u.ki = deriveKDF(u.newHash, key, usage, kindIntegrity, p.kiSize)
	} else {
		var err error
		if u.kc, err = deriveDK(key, usage, kindChecksum, p.kcSize); err == nil {
			if u.ke, err = deriveDK(key, usage, kindEncrypt, p.keySize); err == nil {
				u.ki, err = deriveDK(key, usage, kindIntegrity, p.kiSize)
			}
		}
		if err != nil {
			u.Zero()
			return nil, fmt.Errorf("krb5crypto: deriving keys: %w", err)
		}
	}
	block, err := aes.NewCipher(u.ke)
	if err != nil {
		u.Zero()
		return nil, fmt.Errorf("krb5crypto: expanding Ke: %w", err)
	}
	u.block = block
	u.pool = &sync.Pool{New: func() any { return u.newState(block) }}
	return u, nil
}

// newState builds a scratch state for u. HMAC states are created lazily
// because most Usages serve either encryption or checksums, not both.
func (u *Usage) newState(block cipher.Block) *opState {
	return &opState{
		enc: cipher.NewCBCEncrypter(block, zeroIV[:]),
		dec: cipher.NewCBCDecrypter(block, zeroIV[:]),
	}
}

// Etype returns the enctype the keys were derived for.
func (u *Usage) Etype() int32 { return u.etype }

// KeyUsage returns the key usage number the keys were derived for.
func (u *Usage) KeyUsage() uint32 { return u.usage }

// ChecksumSize returns h for the Usage's enctype (see the package-level
// ChecksumSize).
func (u *Usage) ChecksumSize() int { return u.p.macSize }

// getState takes a scratch state from the pool, or nil after Zero.
func (u *Usage) getState() *opState {
	if u.pool == nil {
		return nil
	}
	return u.pool.Get().(*opState)
}

func (u *Usage) putState(st *opState) { u.pool.Put(st) }

// mac returns the Ki-keyed HMAC of st, ready for input. The caller takes
// its result with sum, which resets it for the next use.
func (u *Usage) mac(st *opState) hash.Hash {
	if st.macI == nil {
		st.macI = newHMAC(u.newHash, u.ki)
	}
	return st.macI
}

// cmac returns the Kc-keyed HMAC of st, ready for input, like mac.
func (u *Usage) cmac(st *opState) hash.Hash {
	if st.macC == nil {
		st.macC = newHMAC(u.newHash, u.kc)
	}
	return st.macC
}

// newHMAC returns an HMAC keyed with key, reset once: crypto/hmac then
// keeps the keyed pad states marshaled, and every later Reset restores the
// inner hash from them, overwriting its buffer of the last partial input
// block. (The first Reset of a fresh HMAC rewrites the pad instead, which
// leaves that buffer as it was.)
func newHMAC(h func() hash.Hash, key []byte) hash.Hash {
	m := hmac.New(h, key)
	m.Reset()
	return m
}

// sum returns m's MAC in st.sumBuf (valid until that is cleared) and resets
// m, so that no input bytes stay in it while st is pooled. Unlike resetting
// before each use, this costs nothing extra per operation.
func (st *opState) sum(m hash.Hash) []byte {
	s := m.Sum(st.sumBuf[:0])
	m.Reset()
	return s
}

// encrypter returns a CBC encrypter with a zero IV.
func (st *opState) encrypter(block cipher.Block) cipher.BlockMode {
	if s, ok := st.enc.(ivSetter); ok {
		s.SetIV(zeroIV[:])
		return st.enc
	}
	return cipher.NewCBCEncrypter(block, zeroIV[:])
}

// decrypter returns a CBC decrypter with the given IV.
func (st *opState) decrypter(block cipher.Block, iv []byte) cipher.BlockMode {
	if s, ok := st.dec.(ivSetter); ok {
		s.SetIV(iv)
		return st.dec
	}
	return cipher.NewCBCDecrypter(block, iv)
}

// Encrypt appends the encryption of confounder || parts[0] || parts[1] ...
// to dst and returns the extended slice. The layout is that of RFC 3961
// §5.3 with AES-CTS (RFC 3962 §6): CTS(Ke, conf|plaintext) ||
// HMAC(Ki, conf|plaintext)[:h] for enctypes 17/18, and RFC 8009 §5's
// C = CTS(Ke, conf|plaintext), C || HMAC(Ki, IV|C)[:h] for 19/20. The
// 16-byte confounder is read from rand, or crypto/rand when rand is nil.
//
// The parts are copied exactly once, into dst, and encrypted in place there;
// dst must not overlap any part.
func (u *Usage) Encrypt(dst []byte, rand io.Reader, parts ...[]byte) ([]byte, error) {
	st := u.getState()
	if st == nil {
		return dst, ErrZeroed
	}
	defer u.putState(st)

	n := 0
	for _, p := range parts {
		n += len(p)
	}
	h := u.p.macSize
	start := len(dst)
	out := grow(dst, ConfounderSize+n+h)
	body := out[start : start+ConfounderSize+n]
	if _, err := io.ReadFull(randOrDefault(rand), body[:ConfounderSize]); err != nil {
		return dst, fmt.Errorf("krb5crypto: reading confounder: %w", err)
	}
	off := ConfounderSize
	for _, p := range parts {
		off += copy(body[off:], p)
	}
	tag := out[start+ConfounderSize+n:]
	if u.p.sha2 {
		// RFC 8009 §5: encrypt, then MAC the zero IV and the ciphertext.
		u.ctsEncrypt(st, body)
		m := u.mac(st)
		m.Write(zeroIV[:])
		m.Write(body)
		copy(tag, st.sum(m)[:h])
	} else {
		// RFC 3961 §5.3: MAC the plaintext (confounder included), then encrypt.
		m := u.mac(st)
		m.Write(body)
		copy(tag, st.sum(m)[:h])
		u.ctsEncrypt(st, body)
	}
	clear(st.sumBuf[:])
	return out, nil
}

// Decrypt checks and decrypts a ciphertext produced by Encrypt and appends
// the plaintext, without the confounder, to dst. The MAC is compared in
// constant time. A ciphertext shorter than confounder + h gives ErrShort and
// a MAC mismatch gives ErrIntegrity; on error dst is returned unchanged
// (any bytes written beyond its length are cleared). dst must not overlap
// ciphertext.
func (u *Usage) Decrypt(dst, ciphertext []byte) ([]byte, error) {
	h := u.p.macSize
	if len(ciphertext) < ConfounderSize+h {
		return dst, fmt.Errorf("%w: %d bytes, need at least %d", ErrShort, len(ciphertext), ConfounderSize+h)
	}
	st := u.getState()
	if st == nil {
		return dst, ErrZeroed
	}
	defer u.putState(st)

	c := ciphertext[:len(ciphertext)-h]
	tag := ciphertext[len(ciphertext)-h:]
	start := len(dst)
	out := grow(dst, len(c)-ConfounderSize)
	pt := out[start:]
	conf := &st.conf
	if u.p.sha2 {
		// RFC 8009 §5: verify before decrypting anything.
		m := u.mac(st)
		m.Write(zeroIV[:])
		m.Write(c)
		ok := subtle.ConstantTimeCompare(st.sum(m)[:h], tag) == 1
		clear(st.sumBuf[:])
		if !ok {
			return dst, ErrIntegrity
		}
		u.ctsDecrypt(st, conf, pt, c)
		clear(conf[:])
		return out, nil
	}
	// RFC 3961 §5.3: the MAC covers the plaintext, so decrypt first.
	u.ctsDecrypt(st, conf, pt, c)
	m := u.mac(st)
	m.Write(conf[:])
	m.Write(pt)
	ok := subtle.ConstantTimeCompare(st.sum(m)[:h], tag) == 1
	clear(st.sumBuf[:])
	clear(conf[:])
	if !ok {
		clear(pt)
		return dst, ErrIntegrity
	}
	return out, nil
}

// Checksum appends the keyed checksum of parts[0] || parts[1] ... to dst:
// HMAC(Kc, data) truncated to h bytes (RFC 3961 §5.4 for 17/18, RFC 8009 §5
// for 19/20). After Zero it appends nothing.
func (u *Usage) Checksum(dst []byte, parts ...[]byte) []byte {
	st := u.getState()
	if st == nil {
		return dst
	}
	defer u.putState(st)
	m := u.cmac(st)
	for _, p := range parts {
		m.Write(p)
	}
	dst = append(dst, st.sum(m)[:u.p.macSize]...)
	clear(st.sumBuf[:])
	return dst
}

// VerifyChecksum reports whether mac is the keyed checksum of parts[0] ||
// parts[1] ..., comparing in constant time. It is false when mac has the
// wrong length and after Zero.
func (u *Usage) VerifyChecksum(mac []byte, parts ...[]byte) bool {
	if len(mac) != u.p.macSize {
		return false
	}
	st := u.getState()
	if st == nil {
		return false
	}
	defer u.putState(st)
	m := u.cmac(st)
	for _, p := range parts {
		m.Write(p)
	}
	ok := hmac.Equal(st.sum(m)[:u.p.macSize], mac)
	clear(st.sumBuf[:])
	return ok
}

// Zero overwrites the derived key bytes and drops the key schedule and the
// pooled scratch states so that later calls fail with ErrZeroed. The
// standard library offers no way to wipe an AES key schedule or an HMAC's
// keyed pads in place; dropping every reference is the best it allows. No
// pooled state holds message bytes (see opState), so none are left behind.
// Zero must not run concurrently with other methods of u; it is idempotent.
func (u *Usage) Zero() {
	clear(u.ke)
	clear(u.ki)
	clear(u.kc)
	u.ke, u.ki, u.kc = nil, nil, nil
	u.block = nil
	u.pool = nil
}

// grow extends b by n bytes, reallocating at most once, and returns the
// extended slice. The new bytes are not cleared.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), len(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}
