package krb5crypto

import (
	"crypto/aes"
	"crypto/subtle"
)

// AES-CTS as RFC 3962 §5 specifies it: CBC with a zero IV, the final partial
// block padded with zeros, and the last two ciphertext blocks swapped
// (NIST CBC-CS3), so the ciphertext is exactly as long as the plaintext. A
// one-block message is plain ECB of that block. Kerberos never calls it with
// less than one block because of the confounder.

// ctsEncrypt encrypts buf (len ≥ aes.BlockSize) in place.
func (u *Usage) ctsEncrypt(st *opState, buf []byte) {
	const bs = aes.BlockSize
	n := len(buf)
	if n == bs {
		u.block.Encrypt(buf, buf)
		return
	}
	m := (n + bs - 1) / bs // number of blocks, the last possibly partial
	full := bs * (m - 2)   // bytes before the last two blocks
	r := n - bs*(m-1)      // length of the last block, 1..16
	prev := zeroIV[:]
	if full > 0 {
		st.encrypter(u.block).CryptBlocks(buf[:full], buf[:full])
		prev = buf[full-bs : full]
	}
	pn1 := buf[full : full+bs]
	pn := buf[full+bs:]
	// E(n-1) = AES(P(n-1) ^ C(n-2)).
	e := &st.b1
	subtle.XORBytes(e[:], pn1, prev)
	u.block.Encrypt(e[:], e[:])
	// C(n) = AES((P(n) || 0) ^ E(n-1)), emitted first; E(n-1) truncated
	// to r bytes is emitted last.
	x := &st.b2
	copy(x[:], e[:])
	subtle.XORBytes(x[:r], x[:r], pn)
	u.block.Encrypt(x[:], x[:])
	copy(pn[:r], e[:r])
	copy(pn1, x[:])
	clear(e[:])
	clear(x[:])
}

// ctsDecrypt decrypts in (len ≥ aes.BlockSize). The first plaintext block,
// the confounder, goes to conf, and the rest to out, which must be
// len(in)-aes.BlockSize bytes and must not overlap in. Splitting the first
// block off lets Decrypt write the caller's plaintext without a second copy.
func (u *Usage) ctsDecrypt(st *opState, conf *[aes.BlockSize]byte, out, in []byte) {
	const bs = aes.BlockSize
	n := len(in)
	if n == bs {
		u.block.Decrypt(conf[:], in)
		return
	}
	m := (n + bs - 1) / bs
	full := bs * (m - 2)
	r := n - bs*(m-1)
	prev := zeroIV[:]
	if full > 0 {
		// The first block: P1 = D(C1) ^ IV with a zero IV.
		u.block.Decrypt(conf[:], in[:bs])
		if full > bs {
			st.decrypter(u.block, in[:bs]).CryptBlocks(out[:full-bs], in[bs:full])
		}
		prev = in[full-bs : full]
	}
	cn := in[full : full+bs] // C(n), the swapped full block
	ep := in[full+bs:]       // E(n-1) truncated to r bytes
	// D(C(n)) = (P(n) || 0) ^ E(n-1), so P(n) = D[:r] ^ ep and the tail of
	// E(n-1) is D[r:].
	d := &st.b1
	u.block.Decrypt(d[:], cn)
	pn := &st.b2
	subtle.XORBytes(pn[:r], d[:r], ep)
	copy(d[:r], ep) // d is now E(n-1)
	u.block.Decrypt(d[:], d[:])
	// P(n-1) = D(E(n-1)) ^ C(n-2) lands at plaintext offset full.
	if full == 0 {
		subtle.XORBytes(conf[:], d[:], prev)
	} else {
		subtle.XORBytes(out[full-bs:full], d[:], prev)
	}
	copy(out[full:], pn[:r])
	clear(d[:])
	clear(pn[:])
}
