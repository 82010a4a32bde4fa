package gss

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
)

func tuple(cname string, sec int) *replayTuple {
	return &replayTuple{
		crealm: testRealm, cname: []string{cname},
		ctime: testNow.Truncate(time.Second).Add(time.Duration(sec) * time.Second), cusec: 42,
		cipher: []byte("authenticator ciphertext"),
	}
}

// TestReplayCacheKey: every field of the tuple is part of the key, and
// length prefixes keep ("ab","c") apart from ("a","bc").
func TestReplayCacheKey(t *testing.T) {
	base := tuple("alice", 0)
	variants := []struct {
		name string
		mod  func(*replayTuple)
	}{
		{"crealm", func(r *replayTuple) { r.crealm = "OTHER.ORG" }},
		{"cname", func(r *replayTuple) { r.cname = []string{"bob"} }},
		{"cname components", func(r *replayTuple) { r.cname = []string{"ali", "ce"} }},
		{"ctime", func(r *replayTuple) { r.ctime = r.ctime.Add(time.Second) }},
		{"cusec", func(r *replayTuple) { r.cusec++ }},
		{"ciphertext", func(r *replayTuple) { r.cipher = []byte("another encryption") }},
		{"realm into name", func(r *replayTuple) { r.crealm = testRealm + "a"; r.cname = []string{"lice"} }},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			o := *base
			o.cname = append([]string(nil), base.cname...)
			v.mod(&o)
			if o.key() == base.key() {
				t.Error("different tuples share a key")
			}
		})
	}
	c := *base
	if c.key() != base.key() {
		t.Error("equal tuples have different keys")
	}
}

// TestReplayCacheExpiry: an entry blocks its tuple until its expiry, and
// expired entries are swept by later insertions.
func TestReplayCacheExpiry(t *testing.T) {
	rc := NewReplayCache(0)
	skew := 5 * time.Minute
	tu := tuple("alice", 0)
	exp := tu.ctime.Add(skew)
	if err := checkAndInsert(rc, tu, exp, testNow); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		now  time.Time
		ok   bool
	}{
		{"immediately", testNow, false},
		{"at expiry", exp, false},
		{"after expiry", exp.Add(time.Microsecond), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkAndInsert(rc, tuple("alice", 0), exp, tc.now)
			if tc.ok != (err == nil) {
				t.Fatalf("err %v, want success %v", err, tc.ok)
			}
			if err != nil {
				wantErr(t, err, StatusDuplicateToken, errorcode.KRB_AP_ERR_REPEAT)
			}
		})
	}

	// Sweep: many entries with staggered expiries; inserting later
	// removes those that expired.
	rc = NewReplayCache(0)
	for i := range 100 {
		tu := tuple(fmt.Sprintf("u%d", i), i)
		if err := checkAndInsert(rc, tu, tu.ctime.Add(skew), testNow); err != nil {
			t.Fatal(err)
		}
	}
	if rc.Len() != 100 {
		t.Fatalf("Len %d, want 100", rc.Len())
	}
	later := tuple("u0", 0).ctime.Add(skew).Add(49*time.Second + time.Millisecond)
	if err := checkAndInsert(rc, tuple("late", 1000), later.Add(time.Hour), later); err != nil {
		t.Fatal(err)
	}
	// Entries 0..49 expired (expiry ctime+skew < later), 50..99 live, plus one.
	if rc.Len() != 51 {
		t.Errorf("Len after sweep %d, want 51", rc.Len())
	}
}

// TestReplayCacheBound: a full cache refuses new entries rather than
// evicting live ones, and accepts again once entries expire.
func TestReplayCacheBound(t *testing.T) {
	rc := NewReplayCache(3)
	exp := testNow.Add(time.Minute)
	for i := range 3 {
		if err := checkAndInsert(rc, tuple(fmt.Sprintf("u%d", i), 0), exp, testNow); err != nil {
			t.Fatal(err)
		}
	}
	err := checkAndInsert(rc, tuple("u3", 0), exp, testNow)
	wantErr(t, err, StatusUnavailable, errorcode.KRB_ERR_GENERIC)
	if rc.Len() != 3 {
		t.Errorf("Len %d after refusal, want 3", rc.Len())
	}
	// Live entries still detect replays while full.
	wantErr(t, checkAndInsert(rc, tuple("u1", 0), exp, testNow), StatusDuplicateToken, errorcode.KRB_AP_ERR_REPEAT)
	// After expiry the cache drains and accepts.
	if err := checkAndInsert(rc, tuple("u3", 0), exp.Add(time.Hour), exp.Add(time.Second)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if rc.Len() != 1 {
		t.Errorf("Len %d, want 1", rc.Len())
	}
}

// TestReplayCacheClockBack: re-inserting an expired key after the clock
// went back keeps exactly one entry, and the stale heap item does not
// delete the new one.
func TestReplayCacheClockBack(t *testing.T) {
	rc := NewReplayCache(0)
	tu := tuple("alice", 0)
	if err := checkAndInsert(rc, tu, testNow.Add(time.Minute), testNow); err != nil {
		t.Fatal(err)
	}
	// Time passes: expired, re-inserted with a later expiry.
	now2 := testNow.Add(2 * time.Minute)
	if err := checkAndInsert(rc, tu, now2.Add(time.Hour), now2); err != nil {
		t.Fatal(err)
	}
	if rc.Len() != 1 {
		t.Fatalf("Len %d, want 1", rc.Len())
	}
	if err := checkAndInsert(rc, tu, now2.Add(time.Hour), now2.Add(time.Minute)); err == nil {
		t.Error("replay accepted after re-insertion")
	}
}

// TestReplayCacheConcurrent: of concurrent insertions of one tuple exactly
// one succeeds; distinct tuples all succeed.
func TestReplayCacheConcurrent(t *testing.T) {
	rc := NewReplayCache(0)
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if checkAndInsert(rc, tuple("same", 0), testNow.Add(time.Minute), testNow) == nil {
				ok.Add(1)
			}
		}()
		go func() {
			defer wg.Done()
			if err := checkAndInsert(rc, tuple(fmt.Sprintf("u%d", i), 0), testNow.Add(time.Minute), testNow); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d insertions of one tuple succeeded, want 1", ok.Load())
	}
	if rc.Len() != 65 {
		t.Errorf("Len %d, want 65", rc.Len())
	}
}

// TestReplayCacheSharedAcrossReload: two acceptors (a keytab reload)
// sharing one cache both refuse a token the other accepted.
func TestReplayCacheSharedAcrossReload(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 18}
	kt := testKeytab(t, svc)
	rc := NewReplayCache(0)
	a1 := newTestAcceptor(t, kt, func(c *AcceptorConfig) { c.ReplayCache = rc })
	a2 := newTestAcceptor(t, kt, func(c *AcceptorConfig) { c.ReplayCache = rc })
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})
	tok := mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{}))
	if _, _, err := a1.Accept(tok); err != nil {
		t.Fatal(err)
	}
	_, _, err := a2.Accept(tok)
	wantErr(t, err, StatusDuplicateToken, errorcode.KRB_AP_ERR_REPEAT)
}

// TestExpiryHeap checks the heap against a sort: interleaved pushes and
// pops of random expiries (duplicates included) come out soonest first,
// each exactly once, and neither operation allocates once the slice has
// room.
func TestExpiryHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var h expiryHeap[ReplayKey]
	var pushed, popped []int64
	for i := range 5000 {
		if len(h) > 0 && rng.IntN(3) == 0 {
			popped = append(popped, h.pop().at)
			continue
		}
		e := rng.Int64N(1000)
		h.push(expiryItem[ReplayKey]{key: ReplayKey{byte(i)}, at: e})
		pushed = append(pushed, e)
	}
	var rest []int64
	for len(h) > 0 {
		rest = append(rest, h.pop().at)
	}
	if !slices.IsSorted(rest) {
		t.Fatalf("final drain out of order: %v", rest)
	}
	popped = append(popped, rest...)
	slices.Sort(pushed)
	slices.Sort(popped)
	if !slices.Equal(pushed, popped) {
		t.Fatalf("popped a different multiset than was pushed (%d vs %d items)", len(popped), len(pushed))
	}

	h = make(expiryHeap[ReplayKey], 0, 64)
	if n := testing.AllocsPerRun(100, func() {
		h.push(expiryItem[ReplayKey]{at: 3})
		h.push(expiryItem[ReplayKey]{at: 1})
		h.pop()
		h.pop()
	}); n != 0 {
		t.Errorf("push+pop allocates %v times, want 0", n)
	}
}

// failingStore is a ReplayStore that cannot answer, like a shared store
// that is unreachable.
type failingStore struct{ calls atomic.Int32 }

var errStoreDown = errors.New("store down")

func (f *failingStore) Insert(context.Context, ReplayKey, time.Time, time.Time) (bool, error) {
	f.calls.Add(1)
	return false, errStoreDown
}

// TestReplayStoreError: a store that cannot answer refuses the handshake
// with GSS_S_UNAVAILABLE and KRB_ERR_GENERIC, the store's error wrapped,
// and the initiator waiting for a reply gets a KRB-ERROR token. A refused
// handshake is not retried against another store.
func TestReplayStoreError(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 18}
	kt := testKeytab(t, svc)
	fs := &failingStore{}
	a := newTestAcceptor(t, kt, func(c *AcceptorConfig) { c.ReplayCache = fs })
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})
	tok := mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
	ctx, out, err := a.Accept(tok)
	if ctx != nil {
		t.Fatal("context established although the replay store failed")
	}
	wantErr(t, err, StatusUnavailable, errorcode.KRB_ERR_GENERIC)
	if !errors.Is(err, errStoreDown) {
		t.Errorf("error %v does not wrap the store's error", err)
	}
	if !strings.Contains(err.Error(), "replay cache unavailable") {
		t.Errorf("error %q does not say the replay cache is unavailable", err)
	}
	if len(out) == 0 {
		t.Error("no KRB-ERROR token for a mutual-auth initiator")
	}
	if fs.calls.Load() != 1 {
		t.Errorf("store called %d times, want 1", fs.calls.Load())
	}
}

// TestReplayStoreInterface: the memory cache through the interface: fresh
// once, then a replay, and fresh again after expiry.
func TestReplayStoreInterface(t *testing.T) {
	var s ReplayStore = NewReplayCache(0)
	k := tuple("alice", 0).key()
	exp := testNow.Add(time.Minute)
	for i, want := range []bool{true, false} {
		fresh, err := s.Insert(t.Context(), k, testNow, exp)
		if err != nil || fresh != want {
			t.Fatalf("insert %d: fresh %v err %v, want fresh %v", i, fresh, err, want)
		}
	}
	fresh, err := s.Insert(t.Context(), k, exp.Add(time.Nanosecond), exp.Add(time.Hour))
	if err != nil || !fresh {
		t.Fatalf("after expiry: fresh %v err %v", fresh, err)
	}
}
