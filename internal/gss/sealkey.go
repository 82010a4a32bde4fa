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
)

// Seal key constants.
const (
	sealKeyLen     = 32
	maxSealsPerKey = 1 << 32 // NIST SP 800-38D §8.3 bound for random 96-bit nonces
)

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
// socketpair (ARCHITECTURE.md §6). A zeroed key appends nothing. A nil or
// short dst leaves a copy of the key in a new heap buffer that the caller
// must zero; PutKey avoids it.
func (k *SealKey) AppendKey(dst []byte) []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return append(dst, k.key...)
}

// PutKey writes the 32 key bytes into dst without allocating, so that the
// key can be handed to a worker over its private socketpair (ARCHITECTURE.md
// §6) with no copy left on the heap. The caller owns dst and must zero it
// once the key has been sent. PutKey reports whether k holds a key: a zeroed
// key clears dst and returns false.
func (k *SealKey) PutKey(dst *[32]byte) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if len(k.key) != len(dst) {
		clear(dst[:])
		return false
	}
	copy(dst[:], k.key)
	return true
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
