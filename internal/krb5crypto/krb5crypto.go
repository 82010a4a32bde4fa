// Package krb5crypto implements the RFC 3961 simplified profile for the four
// AES Kerberos enctypes, with keys derived once and reused.
//
// The supported enctypes are aes128-cts-hmac-sha1-96 (17) and
// aes256-cts-hmac-sha1-96 (18) from RFC 3962, and aes128-cts-hmac-sha256-128
// (19) and aes256-cts-hmac-sha384-192 (20) from RFC 8009. Everything is built
// on the standard library (crypto/aes, crypto/cipher CBC, crypto/hmac and the
// SHA family).
//
// The Kerberos profile derives three keys from a base key and a key usage
// number: Ke for encryption, Ki for the integrity HMAC of an encryption and Kc
// for keyed checksums (RFC 3961 §5.3, RFC 8009 §5). Generic libraries redo
// that derivation on every call, which costs several AES or HMAC operations
// per message. A Usage holds the derived keys, the expanded AES key schedule
// and pooled HMAC states, so a per-message operation is just the bulk cipher
// work.
package krb5crypto

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
)

// Enctype numbers (RFC 3961 §8, RFC 3962 §7, RFC 8009 §9).
const (
	AES128CTSHMACSHA196    int32 = 17 // aes128-cts-hmac-sha1-96 (RFC 3962)
	AES256CTSHMACSHA196    int32 = 18 // aes256-cts-hmac-sha1-96 (RFC 3962)
	AES128CTSHMACSHA256128 int32 = 19 // aes128-cts-hmac-sha256-128 (RFC 8009)
	AES256CTSHMACSHA384192 int32 = 20 // aes256-cts-hmac-sha384-192 (RFC 8009)
)

// ConfounderSize is the length of the random confounder prepended to every
// plaintext: one AES block (RFC 3962 §6, RFC 8009 §5).
const ConfounderSize = 16

// Sentinel errors. Every error returned by this package wraps one of them,
// so callers can classify failures with errors.Is.
var (
	// ErrUnsupported reports an enctype this package does not implement.
	ErrUnsupported = errors.New("krb5crypto: unsupported enctype")
	// ErrKeySize reports a base key whose length does not match its enctype.
	ErrKeySize = errors.New("krb5crypto: wrong key size")
	// ErrShort reports a ciphertext too short to hold a confounder and a MAC.
	ErrShort = errors.New("krb5crypto: ciphertext too short")
	// ErrIntegrity reports a ciphertext whose HMAC does not verify.
	ErrIntegrity = errors.New("krb5crypto: integrity check failed")
	// ErrZeroed reports use of a Usage after Zero.
	ErrZeroed = errors.New("krb5crypto: keys have been zeroed")
)

// profile describes one enctype's parameters.
type profile struct {
	keySize int  // base key and Ke length in bytes
	macSize int  // h: truncated HMAC length in bytes
	kcSize  int  // Kc length in bytes
	kiSize  int  // Ki length in bytes
	sha2    bool // RFC 8009 (KDF-HMAC-SHA2, MAC over IV||C) rather than RFC 3962
}

// profileOf returns the parameters of etype, or false when it is not one of
// the four AES enctypes.
func profileOf(etype int32) (profile, bool) {
	switch etype {
	case AES128CTSHMACSHA196:
		return profile{keySize: 16, macSize: 12, kcSize: 16, kiSize: 16}, true
	case AES256CTSHMACSHA196:
		return profile{keySize: 32, macSize: 12, kcSize: 32, kiSize: 32}, true
	case AES128CTSHMACSHA256128:
		// RFC 8009 §5: Kc and Ki are 128 bits for the SHA-256 enctype.
		return profile{keySize: 16, macSize: 16, kcSize: 16, kiSize: 16, sha2: true}, true
	case AES256CTSHMACSHA384192:
		// RFC 8009 §5: Ke is 256 bits, Kc and Ki 192 bits for SHA-384.
		return profile{keySize: 32, macSize: 24, kcSize: 24, kiSize: 24, sha2: true}, true
	}
	return profile{}, false
}

// Supported reports whether etype is one of the four AES enctypes.
func Supported(etype int32) bool {
	_, ok := profileOf(etype)
	return ok
}

// KeySize returns the base key length of etype in bytes: 16 for 17 and 19,
// 32 for 18 and 20. (RFC 8009 §5: the aes256-cts-hmac-sha384-192 key is 256
// bits; only its checksum is 192 bits.)
func KeySize(etype int32) (int, error) {
	p, ok := profileOf(etype)
	if !ok {
		return 0, fmt.Errorf("%w %d", ErrUnsupported, etype)
	}
	return p.keySize, nil
}

// ChecksumSize returns h, the length of the truncated HMAC that ends every
// ciphertext and that Checksum produces: 12, 12, 16 and 24 bytes for
// enctypes 17 to 20. It returns 0 for an unsupported enctype.
func ChecksumSize(etype int32) int {
	p, _ := profileOf(etype)
	return p.macSize
}

// CiphertextLen returns the length of the encryption of an n-byte
// plaintext: confounder, plaintext and MAC (CTS needs no padding). It
// returns 0 for an unsupported enctype.
func CiphertextLen(etype int32, n int) int {
	p, ok := profileOf(etype)
	if !ok {
		return 0
	}
	return ConfounderSize + n + p.macSize
}

// RandomKey returns a fresh random base key for etype read from rand, or
// from crypto/rand when rand is nil. For AES random-to-key is the identity
// (RFC 3962 §6, RFC 8009 §5), so the key is just KeySize random bytes.
func RandomKey(etype int32, rand io.Reader) ([]byte, error) {
	n, err := KeySize(etype)
	if err != nil {
		return nil, err
	}
	k := make([]byte, n)
	if _, err := io.ReadFull(randOrDefault(rand), k); err != nil {
		clear(k)
		return nil, fmt.Errorf("krb5crypto: reading random key: %w", err)
	}
	return k, nil
}

// randOrDefault returns r, or crypto/rand's Reader when r is nil.
func randOrDefault(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}
