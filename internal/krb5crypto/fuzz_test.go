package krb5crypto

import (
	"errors"
	"testing"
)

// FuzzDecrypt feeds arbitrary ciphertexts to Decrypt for every enctype. It
// must never panic, must only fail with ErrShort or ErrIntegrity, and a
// successful decryption must have the length Encrypt would have produced.
func FuzzDecrypt(f *testing.F) {
	keys := map[int32]*Usage{}
	for _, et := range allEtypes {
		key := make([]byte, 32)[:mustKeySize(et)]
		for i := range key {
			key[i] = byte(i + int(et))
		}
		u, err := DeriveUsage(et, key, 24)
		if err != nil {
			f.Fatal(err)
		}
		keys[et] = u
	}
	for _, et := range allEtypes {
		ct, err := keys[et].Encrypt(nil, nil, []byte("seed plaintext"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(et), ct)
		f.Add(byte(et), ct[:len(ct)-1])
	}
	f.Add(byte(17), []byte{})
	f.Fuzz(func(t *testing.T, sel byte, ct []byte) {
		et := allEtypes[int(sel)%len(allEtypes)]
		u := keys[et]
		pt, err := u.Decrypt([]byte("x"), ct)
		if err != nil {
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrIntegrity) {
				t.Fatalf("unexpected error %v", err)
			}
			if string(pt) != "x" {
				t.Fatal("dst changed on error")
			}
			return
		}
		if len(pt) != 1+len(ct)-ConfounderSize-ChecksumSize(et) {
			t.Fatalf("plaintext length %d for %d-byte ciphertext", len(pt), len(ct))
		}
	})
}

func mustKeySize(et int32) int {
	n, err := KeySize(et)
	if err != nil {
		panic(err)
	}
	return n
}
