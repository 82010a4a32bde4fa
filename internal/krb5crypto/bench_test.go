package krb5crypto

import (
	"fmt"
	"testing"

	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
)

func benchUsage(b *testing.B, et int32) *Usage {
	key, err := RandomKey(et, nil)
	if err != nil {
		b.Fatal(err)
	}
	u, err := DeriveUsage(et, key, 22)
	if err != nil {
		b.Fatal(err)
	}
	return u
}

func BenchmarkEncrypt(b *testing.B) {
	for _, et := range []int32{18, 20} {
		for _, n := range []int{1024, 65536} {
			b.Run(fmt.Sprintf("etype%d/%d", et, n), func(b *testing.B) {
				u := benchUsage(b, et)
				msg := pattern(n)
				dst := make([]byte, 0, CiphertextLen(et, n))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := u.Encrypt(dst, nil, msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	for _, et := range []int32{18, 20} {
		for _, n := range []int{1024, 65536} {
			b.Run(fmt.Sprintf("etype%d/%d", et, n), func(b *testing.B) {
				u := benchUsage(b, et)
				ct, err := u.Encrypt(nil, nil, pattern(n))
				if err != nil {
					b.Fatal(err)
				}
				dst := make([]byte, 0, n)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := u.Decrypt(dst, ct); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkChecksum1KiB(b *testing.B) {
	for _, et := range []int32{18, 20} {
		b.Run(fmt.Sprintf("etype%d", et), func(b *testing.B) {
			u := benchUsage(b, et)
			msg := pattern(1024)
			dst := make([]byte, 0, 32)
			b.SetBytes(1024)
			b.ReportAllocs()
			for b.Loop() {
				u.Checksum(dst, msg)
			}
		})
	}
}

func BenchmarkDeriveUsage(b *testing.B) {
	for _, et := range []int32{18, 20} {
		b.Run(fmt.Sprintf("etype%d", et), func(b *testing.B) {
			key, _ := RandomKey(et, nil)
			b.ReportAllocs()
			for b.Loop() {
				u, err := DeriveUsage(et, key, 22)
				if err != nil {
					b.Fatal(err)
				}
				u.Zero()
			}
		})
	}
}

// BenchmarkGokrb5Encrypt1KiB is the baseline this package replaces: gokrb5
// derives Ke and Ki on every call.
func BenchmarkGokrb5Encrypt1KiB(b *testing.B) {
	for _, et := range []int32{18, 20} {
		b.Run(fmt.Sprintf("etype%d", et), func(b *testing.B) {
			key, _ := RandomKey(et, nil)
			e, err := krbcrypto.GetEtype(et)
			if err != nil {
				b.Fatal(err)
			}
			msg := pattern(1024)
			b.SetBytes(1024)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := e.EncryptMessage(key, msg, 22); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
