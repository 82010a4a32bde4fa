package gss

import (
	"fmt"

	"github.com/jcmturner/gokrb5/v8/types"
)

// Key is a Kerberos key: an RFC 3961 enctype number and the key bytes.
//
// A Key never prints its bytes: it implements fmt.Formatter so that %v, %+v,
// %#v and %s all show only the enctype and length. Zero overwrites the bytes;
// every owner zeroes its keys when a context is exported or deleted.
type Key struct {
	Etype int32
	Value []byte
}

// Zero overwrites the key bytes with zeros and forgets them.
func (k *Key) Zero() {
	clear(k.Value)
	k.Value = nil
}

// IsZero reports whether k holds no key.
func (k Key) IsZero() bool { return len(k.Value) == 0 }

// Clone returns a deep copy of k.
func (k Key) Clone() Key {
	if k.Value == nil {
		return Key{Etype: k.Etype}
	}
	return Key{Etype: k.Etype, Value: append([]byte(nil), k.Value...)}
}

// Format implements fmt.Formatter and never prints the key bytes.
func (k Key) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "Key{etype=%d, %d bytes}", k.Etype, len(k.Value))
}

// keyFromKrb converts a gokrb5 key, copying its bytes.
func keyFromKrb(k types.EncryptionKey) Key {
	return Key{Etype: k.KeyType, Value: append([]byte(nil), k.KeyValue...)}
}

// toKrb returns a gokrb5 view of k sharing its bytes.
func (k Key) toKrb() types.EncryptionKey {
	return types.EncryptionKey{KeyType: k.Etype, KeyValue: k.Value}
}
