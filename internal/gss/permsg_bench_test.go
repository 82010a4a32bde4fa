package gss

import (
	"fmt"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// The per-message benchmarks run each Context method beside a "raw
// ceiling": the same bytes through krb5crypto with pre-derived keys and
// nothing else (no header, no lock, no window, no output allocation). The
// ratio of the two is the overhead of the token layer.

var permsgBenchEtypes = []int32{18, 20}

func permsgBenchPair(b *testing.B, et int32) (ini, acc *Context) {
	b.Helper()
	return pmPair(b, et, true, FlagReplay|FlagSequence)
}

// rawUsage derives one usage from a fresh key: the ceiling benchmarks'
// stand-in for a context's pre-derived keys.
func rawUsage(b *testing.B, et int32, usage uint32) *krb5crypto.Usage {
	b.Helper()
	k := pmKey(b, et)
	u, err := krb5crypto.DeriveUsage(et, k.Value, usage)
	if err != nil {
		b.Fatal(err)
	}
	return u
}

func BenchmarkWrapSealed(b *testing.B) {
	for _, et := range permsgBenchEtypes {
		for _, n := range []int{1 << 10, 64 << 10} {
			msg := make([]byte, n)
			b.Run(fmt.Sprintf("etype%d/%dKiB", et, n>>10), func(b *testing.B) {
				ini, _ := permsgBenchPair(b, et)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := ini.Wrap(msg, true); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("etype%d/%dKiB/raw-ceiling", et, n>>10), func(b *testing.B) {
				u := rawUsage(b, et, usageInitiatorSeal)
				var hdr [cfxHeaderLen]byte
				dst := make([]byte, 0, krb5crypto.CiphertextLen(et, n+cfxHeaderLen))
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := u.Encrypt(dst, nil, msg, hdr[:]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkUnwrapSealed(b *testing.B) {
	for _, et := range permsgBenchEtypes {
		for _, n := range []int{1 << 10, 64 << 10} {
			msg := make([]byte, n)
			b.Run(fmt.Sprintf("etype%d/%dKiB", et, n>>10), func(b *testing.B) {
				ini, acc := permsgBenchPair(b, et)
				tok, err := ini.Wrap(msg, true)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					// Reset the window so the same token is fresh each time;
					// the window still runs its check.
					acc.recv = newSeqState(1000, true, true)
					if _, _, err := acc.Unwrap(tok); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("etype%d/%dKiB/raw-ceiling", et, n>>10), func(b *testing.B) {
				u := rawUsage(b, et, usageInitiatorSeal)
				var hdr [cfxHeaderLen]byte
				ct, err := u.Encrypt(nil, nil, msg, hdr[:])
				if err != nil {
					b.Fatal(err)
				}
				dst := make([]byte, 0, n+cfxHeaderLen)
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

func BenchmarkGetMIC(b *testing.B) {
	const n = 1 << 10
	msg := make([]byte, n)
	for _, et := range permsgBenchEtypes {
		b.Run(fmt.Sprintf("etype%d/1KiB", et), func(b *testing.B) {
			_, acc := permsgBenchPair(b, et)
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := acc.GetMIC(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("etype%d/1KiB/raw-ceiling", et), func(b *testing.B) {
			u := rawUsage(b, et, usageAcceptorSign)
			var hdr [cfxHeaderLen]byte
			dst := make([]byte, 0, 32)
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				u.Checksum(dst, msg, hdr[:])
			}
		})
	}
}

func BenchmarkVerifyMIC(b *testing.B) {
	const n = 1 << 10
	msg := make([]byte, n)
	for _, et := range permsgBenchEtypes {
		b.Run(fmt.Sprintf("etype%d/1KiB", et), func(b *testing.B) {
			ini, acc := permsgBenchPair(b, et)
			mic, err := acc.GetMIC(msg)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				ini.recv = newSeqState(7000, true, true)
				if err := ini.VerifyMIC(msg, mic); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("etype%d/1KiB/raw-ceiling", et), func(b *testing.B) {
			u := rawUsage(b, et, usageAcceptorSign)
			var hdr [cfxHeaderLen]byte
			sum := u.Checksum(nil, msg, hdr[:])
			b.SetBytes(n)
			b.ReportAllocs()
			for b.Loop() {
				if !u.VerifyChecksum(sum, msg, hdr[:]) {
					b.Fatal("checksum does not verify")
				}
			}
		})
	}
}

// BenchmarkUnwrapSealedRatio interleaves Unwrap of a sealed 64 KiB token
// with the raw-ceiling Decrypt of the same size and reports their
// throughput ratio ("unwrap/ceiling", 1.0 = no overhead). Interleaving makes
// the ratio robust on a shared, loaded machine, where two separate
// benchmarks see different load.
func BenchmarkUnwrapSealedRatio(b *testing.B) {
	const n = 64 << 10
	msg := make([]byte, n)
	for _, et := range permsgBenchEtypes {
		b.Run(fmt.Sprintf("etype%d/64KiB", et), func(b *testing.B) {
			ini, acc := permsgBenchPair(b, et)
			tok, err := ini.Wrap(msg, true)
			if err != nil {
				b.Fatal(err)
			}
			u := rawUsage(b, et, usageInitiatorSeal)
			var hdr [cfxHeaderLen]byte
			ct, err := u.Encrypt(nil, nil, msg, hdr[:])
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, 0, n+cfxHeaderLen)
			var tUnwrap, tRaw time.Duration
			b.SetBytes(2 * n)
			for b.Loop() {
				t0 := time.Now()
				acc.recv = newSeqState(1000, true, true)
				if _, _, err := acc.Unwrap(tok); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := u.Decrypt(dst, ct); err != nil {
					b.Fatal(err)
				}
				tRaw += time.Since(t1)
				tUnwrap += t1.Sub(t0)
			}
			b.ReportMetric(float64(tRaw)/float64(tUnwrap), "unwrap/ceiling")
		})
	}
}
