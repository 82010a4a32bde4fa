package krb5crypto

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
)

// trackStates makes u's pool record every scratch state it creates, so a
// test can inspect all of them, whichever one an operation used.
func trackStates(u *Usage) *[]*opState {
	var states []*opState
	next := u.pool.New
	u.pool.New = func() any {
		st := next().(*opState)
		states = append(states, st)
		return st
	}
	return &states
}

// reachableHolds reports whether any byte array or slice reachable from v
// (through pointers, interfaces, structs, arrays and slices, unexported
// fields included) contains needle. It is not tied to the layout of the
// standard library's hash and cipher states, so a new Go release that moves
// a buffer still has it scanned.
func reachableHolds(v reflect.Value, needle []byte, seen map[uintptr]bool) bool {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return false
		}
		seen[v.Pointer()] = true
		return reachableHolds(v.Elem(), needle, seen)
	case reflect.Interface:
		return !v.IsNil() && reachableHolds(v.Elem(), needle, seen)
	case reflect.Struct:
		for i := range v.NumField() {
			if reachableHolds(v.Field(i), needle, seen) {
				return true
			}
		}
	case reflect.Array, reflect.Slice:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return false
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, v.Len())
			for i := range b {
				b[i] = byte(v.Index(i).Uint())
			}
			return bytes.Contains(b, needle)
		}
		for i := range v.Len() {
			if reachableHolds(v.Index(i), needle, seen) {
				return true
			}
		}
	}
	return false
}

// TestPooledStatesHoldNoMessage: once an operation returns, no scratch state
// kept for reuse still holds bytes of the message it processed. The HMAC
// buffers a partial block of its input; if it went back to the pool like
// that, a fragment of the plaintext would outlive the call, and Zero, which
// cannot reach the pool's states, would leave it behind.
func TestPooledStatesHoldNoMessage(t *testing.T) {
	// 40 bytes: with the confounder, 56 bytes, under one hash block, so an
	// unscrubbed HMAC would hold all of it in its buffer.
	msg := []byte("plaintext-that-must-not-stay-in-a-pool!!")
	marker := msg[8:24]
	for _, et := range []int32{17, 18, 19, 20} {
		for _, op := range []string{"encrypt", "decrypt", "checksum", "verify"} {
			t.Run(fmt.Sprintf("etype%d/%s", et, op), func(t *testing.T) {
				key, err := RandomKey(et, nil)
				if err != nil {
					t.Fatal(err)
				}
				u, err := DeriveUsage(et, key, 22)
				if err != nil {
					t.Fatal(err)
				}
				defer u.Zero()
				ct, err := u.Encrypt(nil, nil, msg) // before tracking: its state is not scanned
				if err != nil {
					t.Fatal(err)
				}
				mac := u.Checksum(nil, msg)
				states := trackStates(u)
				switch op {
				case "encrypt":
					_, err = u.Encrypt(nil, nil, msg)
				case "decrypt":
					var pt []byte
					pt, err = u.Decrypt(nil, ct)
					if err == nil && !bytes.Equal(pt, msg) {
						t.Fatalf("decrypted %q", pt)
					}
					clear(pt) // the caller's copy is not the pool's business
				case "checksum":
					mac = u.Checksum(nil, msg)
				case "verify":
					if !u.VerifyChecksum(mac, msg) {
						err = fmt.Errorf("checksum did not verify")
					}
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(*states) == 0 {
					// The operation reused the untracked state: scan
					// that one by taking it back.
					st := u.getState()
					*states = append(*states, st)
					defer u.putState(st)
				}
				for _, st := range *states {
					if reachableHolds(reflect.ValueOf(st), marker, map[uintptr]bool{}) {
						t.Fatalf("a pooled scratch state still holds message bytes %q after %s", marker, op)
					}
				}
			})
		}
	}
}
