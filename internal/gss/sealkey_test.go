package gss

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

func TestSealKey(t *testing.T) {
	t.Run("length", func(t *testing.T) {
		for _, n := range []int{0, 16, 24, 31, 33, 64} {
			if k, err := NewSealKey(1, make([]byte, n)); err == nil || k != nil {
				t.Errorf("NewSealKey with %d bytes succeeded", n)
			} else if !strings.HasPrefix(err.Error(), "gss: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		}
	})
	t.Run("copies and hands out the key", func(t *testing.T) {
		raw := expRandBytes(t, 32)
		orig := bytes.Clone(raw)
		k, err := NewSealKey(3, raw)
		if err != nil {
			t.Fatal(err)
		}
		clear(raw)
		if k.ID() != 3 {
			t.Errorf("ID = %d", k.ID())
		}
		got := k.AppendKey([]byte("x"))
		if !bytes.Equal(got, append([]byte("x"), orig...)) {
			t.Error("AppendKey does not return the original key")
		}
		// The worker's copy, made from AppendKey's bytes, opens the
		// listener's tokens.
		worker, err := NewSealKey(3, got[1:])
		if err != nil {
			t.Fatal(err)
		}
		tok := expExportAt(t, expContext(t, expParams(t, 18, 32, true)), k, expT0)
		if _, err := expImporterAt(expT0, worker).Import(tok); err != nil {
			t.Fatalf("worker import: %v", err)
		}
	})
	t.Run("generated keys differ", func(t *testing.T) {
		a, b := expSealKey(t, 1), expSealKey(t, 1)
		if bytes.Equal(a.AppendKey(nil), b.AppendKey(nil)) || len(a.AppendKey(nil)) != 32 {
			t.Error("GenerateSealKey did not make fresh 32-byte keys")
		}
	})
	t.Run("zero", func(t *testing.T) {
		k := expSealKey(t, 1)
		k.mu.RLock()
		alias := k.key
		k.mu.RUnlock()
		k.Zero()
		k.Zero()
		if !bytes.Equal(alias, make([]byte, 32)) {
			t.Error("key bytes not overwritten")
		}
		if got := k.AppendKey(nil); len(got) != 0 {
			t.Error("zeroed key still hands out bytes")
		}
		if s := fmt.Sprint(k); s != "SealKey{id=1, zeroed}" {
			t.Errorf("formatted zeroed key = %q", s)
		}
	})
	t.Run("never formatted", func(t *testing.T) {
		raw := bytes.Repeat([]byte("K3y!"), 8)
		k, err := NewSealKey(9, raw)
		if err != nil {
			t.Fatal(err)
		}
		needles := []string{string(raw), hex.EncodeToString(raw), strings.ToUpper(hex.EncodeToString(raw)),
			base64.StdEncoding.EncodeToString(raw), "K3y!"}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			for _, v := range []any{k, *expSliceOf(k)} {
				out := fmt.Sprintf(verb, v)
				for _, n := range needles {
					if strings.Contains(strings.ToLower(out), strings.ToLower(n)) {
						t.Errorf("%s of %T prints key material: %q", verb, v, out)
					}
				}
			}
		}
		if got := fmt.Sprintf("%v", k); got != "SealKey{id=9}" {
			t.Errorf("%%v = %q", got)
		}
		var nilKey *SealKey
		if got := fmt.Sprint(nilKey); got != "SealKey(nil)" {
			t.Errorf("nil key formats as %q", got)
		}
	})
}

// expSliceOf returns a one-element slice holding k, so formatting checks also
// cover a key inside a container.
func expSliceOf(k *SealKey) *[]*SealKey { s := []*SealKey{k}; return &s }

func TestSealKeyPutKey(t *testing.T) {
	t.Run("writes the key", func(t *testing.T) {
		raw := expRandBytes(t, 32)
		k, err := NewSealKey(4, raw)
		if err != nil {
			t.Fatal(err)
		}
		dst := [32]byte{0: 0xff, 31: 0xff}
		if !k.PutKey(&dst) {
			t.Fatal("PutKey reports no key")
		}
		if !bytes.Equal(dst[:], raw) {
			t.Error("PutKey did not write the key bytes")
		}
		// The worker's copy, made from PutKey's bytes, opens the
		// listener's tokens.
		worker, err := NewSealKey(4, dst[:])
		clear(dst[:])
		if err != nil {
			t.Fatal(err)
		}
		tok := expExportAt(t, expContext(t, expParams(t, 18, 32, true)), k, expT0)
		if _, err := expImporterAt(expT0, worker).Import(tok); err != nil {
			t.Fatalf("worker import: %v", err)
		}
	})
	t.Run("does not allocate", func(t *testing.T) {
		k := expSealKey(t, 1)
		var dst [32]byte
		if n := testing.AllocsPerRun(100, func() { k.PutKey(&dst) }); n != 0 {
			t.Errorf("PutKey allocates %v times, want 0", n)
		}
		clear(dst[:])
	})
	t.Run("zeroed key", func(t *testing.T) {
		k := expSealKey(t, 1)
		k.Zero()
		dst := [32]byte{0: 0xff, 17: 0xff, 31: 0xff}
		if k.PutKey(&dst) {
			t.Error("PutKey of a zeroed key reports a key")
		}
		if dst != ([32]byte{}) {
			t.Error("PutKey of a zeroed key left dst's old bytes")
		}
	})
}
