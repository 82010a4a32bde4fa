package krb5crypto

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

var allEtypes = []int32{17, 18, 19, 20}

func TestSizes(t *testing.T) {
	tests := []struct {
		name   string
		etype  int32
		key    int
		mac    int
		supp   bool
		ctLen5 int
	}{
		{"aes128-sha1", 17, 16, 12, true, 16 + 5 + 12},
		{"aes256-sha1", 18, 32, 12, true, 16 + 5 + 12},
		{"aes128-sha256", 19, 16, 16, true, 16 + 5 + 16},
		{"aes256-sha384", 20, 32, 24, true, 16 + 5 + 24},
		{"des3", 16, 0, 0, false, 0},
		{"rc4", 23, 0, 0, false, 0},
		{"zero", 0, 0, 0, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Supported(tt.etype); got != tt.supp {
				t.Errorf("Supported = %v, want %v", got, tt.supp)
			}
			k, err := KeySize(tt.etype)
			if tt.supp {
				if err != nil || k != tt.key {
					t.Errorf("KeySize = %d, %v; want %d", k, err, tt.key)
				}
			} else if !errors.Is(err, ErrUnsupported) {
				t.Errorf("KeySize error = %v, want ErrUnsupported", err)
			}
			if got := ChecksumSize(tt.etype); got != tt.mac {
				t.Errorf("ChecksumSize = %d, want %d", got, tt.mac)
			}
			if got := CiphertextLen(tt.etype, 5); got != tt.ctLen5 {
				t.Errorf("CiphertextLen = %d, want %d", got, tt.ctLen5)
			}
			rk, err := RandomKey(tt.etype, nil)
			if tt.supp && (err != nil || len(rk) != tt.key || bytes.Equal(rk, make([]byte, tt.key))) {
				t.Errorf("RandomKey = %d bytes, %v", len(rk), err)
			}
			if !tt.supp && err == nil {
				t.Errorf("RandomKey succeeded for unsupported enctype")
			}
		})
	}
}

func TestDeriveUsageErrors(t *testing.T) {
	tests := []struct {
		name  string
		etype int32
		key   []byte
		want  error
	}{
		{"unsupported", 23, make([]byte, 16), ErrUnsupported},
		{"short key 17", 17, make([]byte, 15), ErrKeySize},
		{"aes128 key for 18", 18, make([]byte, 16), ErrKeySize},
		{"24-byte key for 20", 20, make([]byte, 24), ErrKeySize},
		{"nil key", 19, nil, ErrKeySize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DeriveUsage(tt.etype, tt.key, 2); !errors.Is(err, tt.want) {
				t.Fatalf("DeriveUsage error = %v, want %v", err, tt.want)
			}
		})
	}
}

// RFC 3961 Appendix A.1 n-fold vectors (output sizes in bits).
func TestNfold(t *testing.T) {
	tests := []struct {
		name string
		bits int
		in   string
		want string
	}{
		{"64-fold 012345", 64, "012345", "be072631276b1955"},
		{"56-fold password", 56, "password", "78a07b6caf85fa"},
		{"64-fold rough consensus", 64, "Rough Consensus, and Running Code", "bb6ed30870b7f0e0"},
		{"168-fold password", 168, "password", "59e4a8ca7c0385c3c37b3f6d2000247cb6e6bd5b3e"},
		{"192-fold MASSACHVSETTS", 192, "MASSACHVSETTS INSTITVTE OF TECHNOLOGY", "db3b0d8f0b061e603282b308a50841229ad798fab9540c1b"},
		{"168-fold Q", 168, "Q", "518a54a215a8452a518a54a215a8452a518a54a215"},
		{"168-fold ba", 168, "ba", "fb25d531ae8974499f52fd92ea9857c4ba24cf297e"},
		{"64-fold kerberos", 64, "kerberos", "6b65726265726f73"},
		{"128-fold kerberos", 128, "kerberos", "6b65726265726f737b9b5b2b93132b93"},
		{"168-fold kerberos", 168, "kerberos", "8372c236344e5f1550cd0747e15d62ca7a5a3bcea4"},
		{"256-fold kerberos", 256, "kerberos", "6b65726265726f737b9b5b2b93132b935c9bdcdad95c9899c4cae4dee6d6cae4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hex.EncodeToString(nfold([]byte(tt.in), tt.bits/8))
			if got != tt.want {
				t.Fatalf("nfold = %s, want %s", got, tt.want)
			}
		})
	}
}

// RFC 3962 Appendix B: AES-128-CTS with key "chicken teriyaki" and a zero IV.
func TestCTSVectors(t *testing.T) {
	key := unhex(t, "636869636b656e207465726979616b69")
	tests := []struct {
		name, plain, cipher string
	}{
		{"17 bytes", "4920776f756c64206c696b652074686520", "c6353568f2bf8cb4d8a580362da7ff7f97"},
		{"31 bytes", "4920776f756c64206c696b65207468652047656e6572616c20476175277320", "fc00783e0efdb2c1d445d4c8eff7ed2297687268d6ecccc0c07b25e25ecfe5"},
		{"32 bytes", "4920776f756c64206c696b65207468652047656e6572616c2047617527732043", "39312523a78662d5be7fcbcc98ebf5a897687268d6ecccc0c07b25e25ecfe584"},
		{"47 bytes", "4920776f756c64206c696b65207468652047656e6572616c20476175277320436869636b656e2c20706c656173652c", "97687268d6ecccc0c07b25e25ecfe584b3fffd940c16a18c1b5549d2f838029e39312523a78662d5be7fcbcc98ebf5"},
		{"48 bytes", "4920776f756c64206c696b65207468652047656e6572616c20476175277320436869636b656e2c20706c656173652c20", "97687268d6ecccc0c07b25e25ecfe5849dad8bbb96c4cdc03bc103e1a194bbd839312523a78662d5be7fcbcc98ebf5a8"},
		{"64 bytes", "4920776f756c64206c696b65207468652047656e6572616c20476175277320436869636b656e2c20706c656173652c20616e6420776f6e746f6e20736f75702e", "97687268d6ecccc0c07b25e25ecfe58439312523a78662d5be7fcbcc98ebf5a84807efe836ee89a526730dbc2f7bc8409dad8bbb96c4cdc03bc103e1a194bbd8"},
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	u := &Usage{block: block}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, want := unhex(t, tt.plain), unhex(t, tt.cipher)
			st := u.newState(block)
			buf := append([]byte(nil), pt...)
			u.ctsEncrypt(st, buf)
			if !bytes.Equal(buf, want) {
				t.Fatalf("encrypt = %x, want %x", buf, want)
			}
			var conf [16]byte
			out := make([]byte, len(want)-16)
			u.ctsDecrypt(st, &conf, out, want)
			if got := append(conf[:], out...); !bytes.Equal(got, pt) {
				t.Fatalf("decrypt = %x, want %x", got, pt)
			}
		})
	}
}

// RFC 8009 Appendix A: key derivation for usage 2.
func TestRFC8009KeyDerivation(t *testing.T) {
	tests := []struct {
		name       string
		etype      int32
		base       string
		kc, ke, ki string
	}{
		{"aes128-sha256", 19, "3705d96080c17728a0e800eab6e0d23c",
			"b31a018a48f54776f403e9a396325dc3", "9b197dd1e8c5609d6e67c3e37c62c72e", "9fda0e56ab2d85e1569a688696c26a6c"},
		{"aes256-sha384", 20, "6d404d37faf79f9df0d33568d320669800eb4836472ea8a026d16b7182460c52",
			"ef5718be86cc84963d8bbb5031e9f5c4ba41f28faf69e73d",
			"56ab22bee63d82d7bc5227f6773f8ea7a5eb1c825160c38312980c442e5c7e49",
			"69b16514e3cd8e56b82010d5c73012b622c4d00ffc23ed1f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := DeriveUsage(tt.etype, unhex(t, tt.base), 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []struct {
				name      string
				got, want string
			}{{"Kc", hex.EncodeToString(u.kc), tt.kc}, {"Ke", hex.EncodeToString(u.ke), tt.ke}, {"Ki", hex.EncodeToString(u.ki), tt.ki}} {
				if k.got != k.want {
					t.Errorf("%s = %s, want %s", k.name, k.got, k.want)
				}
			}
		})
	}
}

// RFC 8009 Appendix A: encryption with given confounders, usage 2.
func TestRFC8009Encryption(t *testing.T) {
	const (
		base19 = "3705d96080c17728a0e800eab6e0d23c"
		base20 = "6d404d37faf79f9df0d33568d320669800eb4836472ea8a026d16b7182460c52"
	)
	tests := []struct {
		name       string
		etype      int32
		base       string
		plain      string
		confounder string
		want       string
	}{
		{"19 empty", 19, base19, "", "7e5895eaf2672435bad817f545a37148", "ef85fb890bb8472f4dab20394dca781dad877eda39d50c870c0d5a0a8e48c718"},
		{"19 6 bytes", 19, base19, "000102030405", "7bca285e2fd4130fb55b1a5c83bc5b24", "84d7f30754ed987bab0bf3506beb09cfb55402cef7e6877ce99e247e52d16ed4421dfdf8976c"},
		{"19 16 bytes", 19, base19, "000102030405060708090a0b0c0d0e0f", "56ab21713ff62c0a1457200f6fa9948f", "3517d640f50ddc8ad3628722b3569d2ae07493fa8263254080ea65c1008e8fc295fb4852e7d83e1e7c48c37eebe6b0d3"},
		{"19 21 bytes", 19, base19, "000102030405060708090a0b0c0d0e0f1011121314", "a7a4e29a4728ce10664fb64e49ad3fac", "720f73b18d9859cd6ccb4346115cd336c70f58edc0c4437c5573544c31c813bce1e6d072c186b39a413c2f92ca9b8334a287ffcbfc"},
		{"20 empty", 20, base20, "", "f764e9fa15c276478b2c7d0c4e5f58e4", "41f53fa5bfe7026d91faf9be959195a058707273a96a40f0a01960621ac612748b9bbfbe7eb4ce3c"},
		{"20 6 bytes", 20, base20, "000102030405", "b80d3251c1f6471494256ffe712d0b9a", "4ed7b37c2bcac8f74f23c1cf07e62bc7b75fb3f637b9f559c7f664f69eab7b6092237526ea0d1f61cb20d69d10f2"},
		{"20 16 bytes", 20, base20, "000102030405060708090a0b0c0d0e0f", "53bf8a0d105265d4e276428624ce5e63", "bc47ffec7998eb91e8115cf8d19dac4bbbe2e163e87dd37f49beca92027764f68cf51f14d798c2273f35df574d1f932e40c4ff255b36a266"},
		{"20 21 bytes", 20, base20, "000102030405060708090a0b0c0d0e0f1011121314", "763e65367e864f02f55153c7e3b58af1", "40013e2df58e8751957d2878bcd2d6fe101ccfd556cb1eae79db3c3ee86429f2b2a602ac86fef6ecb647d6295fae077a1feb517508d2c16b4192e01f62"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := DeriveUsage(tt.etype, unhex(t, tt.base), 2)
			if err != nil {
				t.Fatal(err)
			}
			pt, want := unhex(t, tt.plain), unhex(t, tt.want)
			// Split the plaintext in two parts to exercise concatenation.
			half := len(pt) / 2
			got, err := u.Encrypt([]byte("prefix"), bytes.NewReader(unhex(t, tt.confounder)), pt[:half], pt[half:])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:6], []byte("prefix")) || !bytes.Equal(got[6:], want) {
				t.Fatalf("Encrypt = %x, want prefix || %x", got, want)
			}
			dec, err := u.Decrypt(nil, want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(dec, pt) {
				t.Fatalf("Decrypt = %x, want %x", dec, pt)
			}
		})
	}
}

// RFC 8009 Appendix A: checksums, usage 2.
func TestRFC8009Checksum(t *testing.T) {
	data := unhex(t, "000102030405060708090a0b0c0d0e0f1011121314")
	tests := []struct {
		name  string
		etype int32
		base  string
		want  string
	}{
		{"19", 19, "3705d96080c17728a0e800eab6e0d23c", "d78367186643d67b411cba9139fc1dee"},
		{"20", 20, "6d404d37faf79f9df0d33568d320669800eb4836472ea8a026d16b7182460c52", "45ee791567eefca37f4ac1e0222de80d43c3bfa06699672a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := DeriveUsage(tt.etype, unhex(t, tt.base), 2)
			if err != nil {
				t.Fatal(err)
			}
			got := u.Checksum(nil, data[:7], data[7:])
			if hex.EncodeToString(got) != tt.want {
				t.Fatalf("Checksum = %x, want %s", got, tt.want)
			}
			if !u.VerifyChecksum(got, data) {
				t.Fatal("VerifyChecksum rejected the vector")
			}
			bad := append([]byte(nil), got...)
			bad[0] ^= 1
			if u.VerifyChecksum(bad, data) || u.VerifyChecksum(got[:len(got)-1], data) {
				t.Fatal("VerifyChecksum accepted a bad checksum")
			}
		})
	}
}

var crossSizes = []int{0, 1, 15, 16, 17, 31, 32, 33, 1000, 65536}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// TestCrossGokrb5 checks interoperability with gokrb5 in both directions.
func TestCrossGokrb5(t *testing.T) {
	const usage = 24
	for _, et := range allEtypes {
		for _, n := range crossSizes {
			t.Run(fmt.Sprintf("etype%d/%d", et, n), func(t *testing.T) {
				key, err := RandomKey(et, nil)
				if err != nil {
					t.Fatal(err)
				}
				ge, err := krbcrypto.GetEtype(et)
				if err != nil {
					t.Fatal(err)
				}
				u, err := DeriveUsage(et, key, usage)
				if err != nil {
					t.Fatal(err)
				}
				msg := pattern(n)

				// ours -> gokrb5
				ct, err := u.Encrypt(nil, nil, msg)
				if err != nil {
					t.Fatal(err)
				}
				if len(ct) != CiphertextLen(et, n) {
					t.Fatalf("ciphertext length %d, want %d", len(ct), CiphertextLen(et, n))
				}
				pt, err := ge.DecryptMessage(key, ct, usage)
				if err != nil {
					t.Fatalf("gokrb5 cannot decrypt ours: %v", err)
				}
				if !bytes.Equal(pt, msg) {
					t.Fatal("gokrb5 decrypted different plaintext")
				}

				// gokrb5 -> ours
				_, gct, err := ge.EncryptMessage(key, msg, usage)
				if err != nil {
					t.Fatal(err)
				}
				pt, err = u.Decrypt(nil, gct)
				if err != nil {
					t.Fatalf("cannot decrypt gokrb5's: %v", err)
				}
				if !bytes.Equal(pt, msg) {
					t.Fatal("decrypted different plaintext")
				}

				// Checksums agree.
				gsum, err := ge.GetChecksumHash(key, msg, usage)
				if err != nil {
					t.Fatal(err)
				}
				sum := u.Checksum(nil, msg)
				if !bytes.Equal(gsum[:ChecksumSize(et)], sum) {
					t.Fatalf("checksum %x, gokrb5 %x", sum, gsum)
				}
				if !u.VerifyChecksum(gsum[:ChecksumSize(et)], msg) {
					t.Fatal("VerifyChecksum rejected gokrb5's checksum")
				}
			})
		}
	}
}

// TestTamper flips a bit in every byte of ciphertexts of several sizes:
// each change must fail the integrity check and leave dst untouched.
func TestTamper(t *testing.T) {
	for _, et := range allEtypes {
		for _, n := range []int{0, 1, 17, 33} {
			t.Run(fmt.Sprintf("etype%d/%d", et, n), func(t *testing.T) {
				key, _ := RandomKey(et, nil)
				u, err := DeriveUsage(et, key, 22)
				if err != nil {
					t.Fatal(err)
				}
				ct, err := u.Encrypt(nil, nil, pattern(n))
				if err != nil {
					t.Fatal(err)
				}
				for i := range ct {
					bad := append([]byte(nil), ct...)
					bad[i] ^= 0x01
					dst := []byte("keep")
					got, err := u.Decrypt(dst, bad)
					if !errors.Is(err, ErrIntegrity) {
						t.Fatalf("byte %d flipped: err = %v, want ErrIntegrity", i, err)
					}
					if string(got) != "keep" {
						t.Fatalf("byte %d flipped: dst changed to %q", i, got)
					}
				}
				// Truncation and extension fail too.
				if _, err := u.Decrypt(nil, ct[:len(ct)-1]); err == nil {
					t.Fatal("truncated ciphertext accepted")
				}
				if _, err := u.Decrypt(nil, append(append([]byte(nil), ct...), 0)); err == nil {
					t.Fatal("extended ciphertext accepted")
				}
				// Another usage's keys reject it.
				other, _ := DeriveUsage(et, key, 24)
				if _, err := other.Decrypt(nil, ct); !errors.Is(err, ErrIntegrity) {
					t.Fatalf("other usage: err = %v", err)
				}
			})
		}
	}
}

func TestShort(t *testing.T) {
	for _, et := range allEtypes {
		key, _ := RandomKey(et, nil)
		u, err := DeriveUsage(et, key, 22)
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < ConfounderSize+ChecksumSize(et); n++ {
			if _, err := u.Decrypt(nil, make([]byte, n)); !errors.Is(err, ErrShort) {
				t.Fatalf("etype %d, %d bytes: err = %v, want ErrShort", et, n, err)
			}
		}
	}
}

func TestZero(t *testing.T) {
	for _, et := range allEtypes {
		t.Run(fmt.Sprint(et), func(t *testing.T) {
			key, _ := RandomKey(et, nil)
			u, err := DeriveUsage(et, key, 22)
			if err != nil {
				t.Fatal(err)
			}
			ct, _ := u.Encrypt(nil, nil, []byte("x"))
			sum := u.Checksum(nil, []byte("x"))
			ke, ki, kc := u.ke, u.ki, u.kc
			u.Zero()
			u.Zero() // idempotent
			for _, k := range [][]byte{ke, ki, kc} {
				if !bytes.Equal(k, make([]byte, len(k))) {
					t.Fatal("derived key not zeroed")
				}
			}
			if _, err := u.Encrypt(nil, nil, []byte("x")); !errors.Is(err, ErrZeroed) {
				t.Fatalf("Encrypt after Zero: %v", err)
			}
			if _, err := u.Decrypt(nil, ct); !errors.Is(err, ErrZeroed) {
				t.Fatalf("Decrypt after Zero: %v", err)
			}
			if u.VerifyChecksum(sum, []byte("x")) {
				t.Fatal("VerifyChecksum after Zero succeeded")
			}
			if got := u.Checksum(nil, []byte("x")); len(got) != 0 {
				t.Fatal("Checksum after Zero produced output")
			}
		})
	}
}

func TestEncryptRandError(t *testing.T) {
	key, _ := RandomKey(18, nil)
	u, _ := DeriveUsage(18, key, 22)
	dst := []byte("abc")
	got, err := u.Encrypt(dst, bytes.NewReader(make([]byte, 5)), []byte("msg"))
	if err == nil || string(got) != "abc" {
		t.Fatalf("Encrypt with failing rand = %q, %v", got, err)
	}
}

// TestConcurrent exercises the pooled states from several goroutines
// (meaningful under -race).
func TestConcurrent(t *testing.T) {
	key, _ := RandomKey(20, nil)
	u, _ := DeriveUsage(20, key, 22)
	errc := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func(g int) {
			msg := pattern(100 + g)
			for i := 0; i < 200; i++ {
				ct, err := u.Encrypt(nil, nil, msg)
				if err == nil {
					var pt []byte
					pt, err = u.Decrypt(nil, ct)
					if err == nil && !bytes.Equal(pt, msg) {
						err = errors.New("round trip mismatch")
					}
				}
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}(g)
	}
	for g := 0; g < 8; g++ {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}
