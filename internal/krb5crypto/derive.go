package krb5crypto

import (
	"crypto/aes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"hash"
	"sync"
)

// Derivation constants appended to the 4-byte usage number (RFC 3961 §5.3):
// Kc for checksums, Ke for encryption, Ki for the encryption's integrity MAC.
const (
	kindChecksum  byte = 0x99
	kindEncrypt   byte = 0xAA
	kindIntegrity byte = 0x55
)

// nfold implements the RFC 3961 §5.1 n-fold operation: the input is
// replicated lcm(len(in), outLen) / len(in) times, copy k rotated right by
// 13*k bits, and the copies are added outLen bytes at a time in one's
// complement arithmetic (end-around carry). outLen is in bytes.
func nfold(in []byte, outLen int) []byte {
	inLen := len(in)
	out := make([]byte, outLen)
	if inLen == 0 || outLen == 0 {
		return out
	}
	l := lcm(inLen, outLen)
	// buf holds the concatenated rotated copies.
	buf := make([]byte, 0, l)
	for k := 0; k < l/inLen; k++ {
		buf = append(buf, rotateRightBits(in, 13*k)...)
	}
	// One's-complement sum of the outLen-byte chunks, big-endian.
	sum := make([]int, outLen)
	for off := 0; off < l; off += outLen {
		for i := 0; i < outLen; i++ {
			sum[i] += int(buf[off+i])
		}
	}
	// Propagate carries from the least significant byte; the carry out of
	// the top byte wraps around to the bottom until none is left.
	for {
		carry := 0
		for i := outLen - 1; i >= 0; i-- {
			v := sum[i] + carry
			sum[i] = v & 0xff
			carry = v >> 8
		}
		if carry == 0 {
			break
		}
		sum[outLen-1] += carry
	}
	for i := range out {
		out[i] = byte(sum[i])
	}
	return out
}

// rotateRightBits returns in, viewed as one big-endian bit string, rotated
// right by n bits.
func rotateRightBits(in []byte, n int) []byte {
	bits := len(in) * 8
	n %= bits
	out := make([]byte, len(in))
	for i := 0; i < bits; i++ {
		// Output bit (i+n) mod bits is input bit i; bit 0 is the MSB of in[0].
		if in[i/8]&(0x80>>(i%8)) != 0 {
			j := (i + n) % bits
			out[j/8] |= 0x80 >> (j % 8)
		}
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func lcm(a, b int) int { return a / gcd(a, b) * b }

// nfoldCache memoizes the 128-bit n-fold of the 5-byte derivation constants.
// The n-fold depends only on (usage, kind), and a process uses a handful of
// usages (22-25 for GSS tokens, a few more for the AP exchange), so the
// cache stays tiny.
var nfoldCache sync.Map // uint64(usage)<<8|kind -> [aes.BlockSize]byte

// foldedConstant returns the 16-byte n-fold of usage||kind (RFC 3961 §5.3
// DK constant, folded to the AES block size).
func foldedConstant(usage uint32, kind byte) [aes.BlockSize]byte {
	key := uint64(usage)<<8 | uint64(kind)
	if v, ok := nfoldCache.Load(key); ok {
		return v.([aes.BlockSize]byte)
	}
	var c [5]byte
	binary.BigEndian.PutUint32(c[:4], usage)
	c[4] = kind
	var out [aes.BlockSize]byte
	copy(out[:], nfold(c[:], aes.BlockSize))
	nfoldCache.Store(key, out)
	return out
}

// deriveDK is the RFC 3961 §5.1 DK function for the RFC 3962 enctypes:
// DR(base, constant) = k-truncate(E(base, n-fold(constant)) ||
// E(base, previous block) || ...), CBC with a zero IV, and random-to-key is
// the identity for AES. It returns outLen bytes.
func deriveDK(base []byte, usage uint32, kind byte, outLen int) ([]byte, error) {
	block, err := aes.NewCipher(base)
	if err != nil {
		return nil, err
	}
	folded := foldedConstant(usage, kind)
	out := make([]byte, 0, outLen+aes.BlockSize)
	blk := folded
	for len(out) < outLen {
		block.Encrypt(blk[:], blk[:])
		out = append(out, blk[:]...)
	}
	clear(blk[:])
	clear(out[outLen:cap(out)])
	return out[:outLen], nil
}

// deriveKDF is RFC 8009 §3 KDF-HMAC-SHA2(key, label, k) for the key
// derivation of §5: k-truncate(HMAC(key, 0x00000001 | label | 0x00 | k)),
// where label is usage||kind and k is the output length in bits.
func deriveKDF(newHash func() hash.Hash, base []byte, usage uint32, kind byte, outLen int) []byte {
	var msg [4 + 5 + 1 + 4]byte
	binary.BigEndian.PutUint32(msg[0:4], 1)
	binary.BigEndian.PutUint32(msg[4:8], usage)
	msg[8] = kind
	msg[9] = 0
	binary.BigEndian.PutUint32(msg[10:14], uint32(outLen*8))
	m := hmac.New(newHash, base)
	m.Write(msg[:])
	full := m.Sum(nil)
	out := append([]byte(nil), full[:outLen]...)
	clear(full)
	return out
}

// hashFor returns the HMAC hash of etype: SHA-1 for the RFC 3962 enctypes
// (HMAC-SHA1-96), SHA-256 and SHA-384 for RFC 8009's.
func hashFor(etype int32) func() hash.Hash {
	switch etype {
	case AES128CTSHMACSHA256128:
		return sha256.New
	case AES256CTSHMACSHA384192:
		return sha512.New384
	}
	return sha1.New
}
