package gss

import (
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
)

// DefaultReplayCacheEntries is the capacity of a ReplayCache made with
// NewReplayCache(0). At about 120 bytes an entry it bounds the cache near
// 120 MiB, and it allows a sustained 3,000 handshakes a second with the
// default five-minute skew (entries live at most twice the skew).
const DefaultReplayCacheEntries = 1 << 20

// ReplayCache remembers the authenticators an Acceptor has accepted, so that
// a captured AP-REQ cannot be presented a second time while its
// authenticator is still within the clock skew (RFC 4120 §3.2.3).
//
// Entries are keyed on the full tuple (client realm, client name, service
// realm, service name, ctime, cusec) plus the authenticator's ciphertext:
// two services sharing a cache never shadow each other, and no field of the
// key comes from the unencrypted part of the ticket alone (the service name
// is the one whose key decrypted it). The ciphertext is in the key because
// the tuple alone is not unique: processes sharing one ticket (16 MIT
// gss-client processes in parallel, say) can stamp two different
// authenticators with the same microsecond, and refusing the second would
// be a false replay; MIT's rcache2 keys on a hash of the ciphertext for the
// same reason. It costs nothing in protection: a replay is a byte-for-byte
// copy (a confounder makes every encryption distinct, and nobody without
// the session key can make another ciphertext that decrypts to the same
// authenticator). The whole key is hashed with SHA-256 so every entry has
// the same small size whatever the principal names.
//
// An entry expires when its authenticator can no longer pass the skew
// check: at ctime + skew. An authenticator may be up to one skew in the
// future, so an entry lives at most 2×skew after insertion. Expired
// entries are swept lazily, oldest first, by the insertions that follow.
//
// A ReplayCache is safe for concurrent use, and one may be shared by the
// Acceptors built on successive reloads of a keytab, which is what keeps a
// replay from slipping through a reload.
type ReplayCache struct {
	mu      sync.Mutex
	max     int
	entries map[replayKey]time.Time // key → expiry
	byExp   expiryHeap              // the same keys, soonest expiry first
}

// replayKey is the SHA-256 of an authenticator's identifying tuple.
type replayKey [sha256.Size]byte

// NewReplayCache returns an empty cache holding at most maxEntries live
// entries; maxEntries ≤ 0 means DefaultReplayCacheEntries.
//
// When the cache is full of live entries, handshakes are refused
// (GSS_S_UNAVAILABLE) until entries expire, rather than evicting a live
// entry: evicting would silently reopen a replay window for whichever
// authenticator was dropped, and an attacker able to fill the cache (only
// authenticated clients can add entries, but a compromised or misbehaving
// one can add many) would thereby choose which captured tokens become
// replayable. Refusing instead fails loudly and safely, and the condition
// clears by itself within 2×skew. RFC 4120 §3.2.3 requires the same of a
// server that cannot remember authenticators: reject until the skew
// interval has passed.
func NewReplayCache(maxEntries int) *ReplayCache {
	if maxEntries <= 0 {
		maxEntries = DefaultReplayCacheEntries
	}
	return &ReplayCache{max: maxEntries, entries: make(map[replayKey]time.Time)}
}

// Len returns the number of entries held, including expired ones not yet
// swept.
func (rc *ReplayCache) Len() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.entries)
}

// replayTuple identifies one authenticator.
type replayTuple struct {
	crealm string
	cname  []string
	srealm string
	sname  []string
	ctime  time.Time
	cusec  int
	cipher []byte // the authenticator's ciphertext (EncryptedData cipher)
}

// key hashes the tuple with every variable-length field length-prefixed,
// so no two distinct tuples share an encoding.
func (t *replayTuple) key() replayKey {
	h := sha256.New()
	var buf [8]byte
	str := func(s string) {
		binary.BigEndian.PutUint32(buf[:4], uint32(len(s)))
		h.Write(buf[:4])
		h.Write([]byte(s))
	}
	name := func(n []string) {
		binary.BigEndian.PutUint32(buf[:4], uint32(len(n)))
		h.Write(buf[:4])
		for _, c := range n {
			str(c)
		}
	}
	str(t.crealm)
	name(t.cname)
	str(t.srealm)
	name(t.sname)
	binary.BigEndian.PutUint64(buf[:], uint64(t.ctime.Unix()))
	h.Write(buf[:])
	binary.BigEndian.PutUint32(buf[:4], uint32(t.cusec))
	h.Write(buf[:4])
	binary.BigEndian.PutUint32(buf[:4], uint32(len(t.cipher)))
	h.Write(buf[:4])
	h.Write(t.cipher)
	var k replayKey
	h.Sum(k[:0])
	return k
}

// checkAndInsert records the authenticator t, to be remembered until
// expiry, unless it is already present and unexpired at now. The check
// and the insertion happen under one lock, so of two concurrent
// presentations of one authenticator exactly one succeeds.
func (rc *ReplayCache) checkAndInsert(t *replayTuple, expiry, now time.Time) error {
	k := t.key()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if exp, ok := rc.entries[k]; ok && !now.After(exp) {
		return krbError(StatusDuplicateToken, errorcode.KRB_AP_ERR_REPEAT,
			fmt.Sprintf("authenticator of %s for %s with time %s.%06d was already presented (replay)",
				principalString(t.cname, t.crealm), principalString(t.sname, t.srealm),
				t.ctime.UTC().Format(time.RFC3339), t.cusec), nil)
	}
	rc.sweepLocked(now)
	if _, ok := rc.entries[k]; !ok && len(rc.entries) >= rc.max {
		next := rc.byExp[0].expiry
		return krbError(StatusUnavailable, errorcode.KRB_ERR_GENERIC,
			fmt.Sprintf("replay cache full (%d live entries); refusing handshakes until the oldest expires at %s",
				len(rc.entries), next.UTC().Format(time.RFC3339)), nil)
	}
	rc.entries[k] = expiry
	heap.Push(&rc.byExp, expiryItem{key: k, expiry: expiry})
	return nil
}

// sweepLocked drops every entry whose expiry is before now. A heap item
// whose key has since been re-inserted with a later expiry (possible only
// after the clock went backwards) is discarded without touching the map.
func (rc *ReplayCache) sweepLocked(now time.Time) {
	for len(rc.byExp) > 0 && now.After(rc.byExp[0].expiry) {
		it := heap.Pop(&rc.byExp).(expiryItem)
		if exp, ok := rc.entries[it.key]; ok && exp.Equal(it.expiry) {
			delete(rc.entries, it.key)
		}
	}
}

// expiryItem is one heap element.
type expiryItem struct {
	key    replayKey
	expiry time.Time
}

// expiryHeap is a min-heap of entries by expiry (container/heap).
type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expiry.Before(h[j].expiry) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	n := len(old)
	it := old[n-1]
	*h = old[:n-1]
	return it
}
