package gss

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
)

// ReplayStore remembers accepted authenticators by key (see ReplayCache
// for what the key is made of: authenticated fields only). The Acceptor
// calls Insert once per AP-REQ that passed every other check; it is the
// one place a replay is detected, so every implementation must make the
// check and the insertion one atomic step: of two concurrent Inserts of
// one key, in this process or (for a shared store) on another host,
// exactly one reports fresh.
//
// Implementations: *ReplayCache (in memory, one process; the default) and
// internal/replay/redisstore (Redis or Valkey, shared by every host).
// internal/gss does no I/O itself: a store that does takes its deadline
// from ctx or its own timeout.
type ReplayStore interface {
	// Insert records key until expiry unless it is already present and
	// unexpired at now. fresh reports that it was absent (the
	// authenticator is accepted); !fresh with a nil error is a replay. A
	// non-nil error means the store could not tell: the Acceptor refuses
	// the handshake (GSS_S_UNAVAILABLE, KRB_ERR_GENERIC) rather than risk
	// accepting a replay; an *Error is passed through as it is.
	Insert(ctx context.Context, key ReplayKey, now, expiry time.Time) (fresh bool, err error)
}

// DefaultReplayCacheEntries is the capacity of a ReplayCache made with
// NewReplayCache(0). At about 120 bytes an entry it bounds the cache near
// 120 MiB, and it allows a sustained 3,000 handshakes a second with the
// default five-minute skew (entries live at most twice the skew).
const DefaultReplayCacheEntries = 1 << 20

// ReplayCache remembers the authenticators an Acceptor has accepted, so that
// a captured AP-REQ cannot be presented a second time while its
// authenticator is still within the clock skew (RFC 4120 §3.2.3).
//
// An entry is keyed only on what an attacker without the session key
// cannot change without the AP-REQ failing: the authenticator's ciphertext
// (the session key's integrity check covers it; a confounder makes every
// encryption distinct, so a replay is a byte-for-byte copy of it), and the
// client realm and name, ctime and cusec read from the authenticator once
// it has decrypted. Nothing outside an encryption is in the key: not the
// ticket's sname or realm, its kvno or enctype labels, nor the ap-options.
// The ticket's sname in particular is bound to nothing but the key that
// decrypts the ticket, and keytabs commonly give several principals one key
// (host/x and HTTP/x in an AD or msktutil keytab): a key that included the
// sname would let a captured AP-REQ be replayed once per such principal, by
// rewriting the label. The service is therefore not part of the key: one
// authenticator is accepted once per cache, whichever principal its ticket
// names. MIT's rcache2 keys on a hash of the authenticator ciphertext for
// the same reasons.
//
// The ciphertext is in the key because the client and time alone are not
// unique: processes sharing one ticket (16 MIT gss-client processes in
// parallel, say) can stamp two different authenticators with the same
// microsecond, and refusing the second would be a false replay. The whole
// key is hashed with SHA-256 so every entry has the same small size
// whatever the principal names.
//
// A cache lives in memory, in one process. It does not survive a restart
// of that process, and it is not shared with another process, instance or
// host accepting for the same principals: each of those accepts an AP-REQ
// another has already seen.
//
// An entry expires when its authenticator can no longer pass the skew
// check: at ctime + skew. An authenticator may be up to one skew in the
// future, so an entry lives at most 2×skew after insertion. Expired
// entries are swept lazily, oldest first, by the insertions that follow.
//
// A ReplayCache is safe for concurrent use, and one may be shared by the
// Acceptors built on successive reloads of a keytab, which is what keeps a
// replay from slipping through a reload.
//
// Expiries are kept as Unix nanoseconds, not time.Time: with no pointer in
// them, neither the map nor the heap is scanned by the garbage collector,
// which at a few thousand handshakes a second (a million live entries)
// would otherwise re-read tens of megabytes on every cycle.
type ReplayCache struct {
	mu      sync.Mutex
	max     int
	entries map[ReplayKey]int64   // key → expiry, Unix ns
	byExp   expiryHeap[ReplayKey] // the same keys, soonest expiry first
}

var _ ReplayStore = (*ReplayCache)(nil)

// ReplayKey is the SHA-256 of an authenticator's identifying tuple (see
// ReplayCache): what a ReplayStore remembers.
type ReplayKey [sha256.Size]byte

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
	return &ReplayCache{max: maxEntries, entries: make(map[ReplayKey]int64)}
}

// Len returns the number of entries held, including expired ones not yet
// swept.
func (rc *ReplayCache) Len() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.entries)
}

// replayTuple identifies one authenticator. Every field must be
// authenticated (see ReplayCache): the client names and times come from the
// decrypted authenticator, and the ciphertext is the one the session key
// verified.
type replayTuple struct {
	crealm string
	cname  []string
	ctime  time.Time
	cusec  int
	cipher []byte // the authenticator's ciphertext (EncryptedData cipher)
}

// key hashes the tuple with every variable-length field length-prefixed,
// so no two distinct tuples share an encoding.
func (t *replayTuple) key() ReplayKey {
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
	binary.BigEndian.PutUint64(buf[:], uint64(t.ctime.Unix()))
	h.Write(buf[:])
	binary.BigEndian.PutUint32(buf[:4], uint32(t.cusec))
	h.Write(buf[:4])
	binary.BigEndian.PutUint32(buf[:4], uint32(len(t.cipher)))
	h.Write(buf[:4])
	h.Write(t.cipher)
	var k ReplayKey
	h.Sum(k[:0])
	return k
}

// Insert implements ReplayStore: it records key, to be remembered until
// expiry, unless it is already present and unexpired at now. The check
// and the insertion happen under one lock, so of two concurrent
// presentations of one authenticator exactly one is fresh. A full cache
// is an *Error (GSS_S_UNAVAILABLE, KRB_ERR_GENERIC): see NewReplayCache.
func (rc *ReplayCache) Insert(_ context.Context, k ReplayKey, now, expiry time.Time) (bool, error) {
	exp, at := expiry.UnixNano(), now.UnixNano()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if e, ok := rc.entries[k]; ok && at <= e {
		return false, nil
	}
	rc.sweepLocked(at)
	if _, ok := rc.entries[k]; !ok && len(rc.entries) >= rc.max {
		next := time.Unix(0, rc.byExp[0].at)
		return false, krbError(StatusUnavailable, errorcode.KRB_ERR_GENERIC,
			fmt.Sprintf("replay cache full (%d live entries); refusing handshakes until the oldest expires at %s",
				len(rc.entries), next.UTC().Format(time.RFC3339)), nil)
	}
	rc.entries[k] = exp
	rc.byExp.push(expiryItem[ReplayKey]{key: k, at: exp})
	return true, nil
}

// checkAndInsert asks store about the authenticator t, to be remembered
// until expiry, and turns its answer into the Acceptor's error: a replay is
// KRB_AP_ERR_REPEAT, a store that cannot answer is GSS_S_UNAVAILABLE.
func checkAndInsert(store ReplayStore, t *replayTuple, expiry, now time.Time) error {
	fresh, err := store.Insert(context.Background(), t.key(), now, expiry)
	if err != nil {
		if e, ok := errors.AsType[*Error](err); ok {
			return e
		}
		return krbError(StatusUnavailable, errorcode.KRB_ERR_GENERIC,
			"replay cache unavailable; refusing the handshake rather than risk accepting a replay", err)
	}
	if !fresh {
		return krbError(StatusDuplicateToken, errorcode.KRB_AP_ERR_REPEAT,
			fmt.Sprintf("authenticator of %s with time %s.%06d was already presented (replay)",
				PrincipalString(t.cname, t.crealm), t.ctime.UTC().Format(time.RFC3339), t.cusec), nil)
	}
	return nil
}

// sweepLocked drops every entry whose expiry is before now. A heap item
// whose key has since been re-inserted with a later expiry (possible only
// after the clock went backwards) is discarded without touching the map.
func (rc *ReplayCache) sweepLocked(now int64) {
	for len(rc.byExp) > 0 && now > rc.byExp[0].at {
		it := rc.byExp.pop()
		if exp, ok := rc.entries[it.key]; ok && exp == it.at {
			delete(rc.entries, it.key)
		}
	}
}
