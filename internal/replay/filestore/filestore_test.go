package filestore

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func key(i int) gss.ReplayKey {
	var k gss.ReplayKey
	k[0], k[1], k[2], k[31] = byte(i), byte(i>>8), byte(i>>16), 0x5A
	return k
}

func open(t *testing.T, path string, o Options) *Store {
	t.Helper()
	s, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func insert(t *testing.T, s *Store, k gss.ReplayKey, now, exp time.Time) bool {
	t.Helper()
	fresh, err := s.Insert(context.Background(), k, now, exp)
	if err != nil {
		t.Fatal(err)
	}
	return fresh
}

// TestSurvivesReopen: entries inserted before the store is closed (or its
// process dies: nothing is buffered in the process) are replays after
// reopening; expired ones are dropped and the file holds live entries only.
func TestSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rcache")
	now := time.Now()
	s := open(t, path, Options{})
	for i := range 10 {
		exp := now.Add(time.Minute)
		if i >= 5 {
			exp = now.Add(time.Second) // expired at the reopen below
		}
		if !insert(t, s, key(i), now, exp) {
			t.Fatalf("key %d not fresh", i)
		}
		if insert(t, s, key(i), now, exp) {
			t.Fatalf("key %d fresh twice", i)
		}
	}
	// No Close: the descriptor is dropped as a killed process's would be,
	// after releasing the lock so the reopen can take it.
	s.f.Close()
	later := now.Add(2 * time.Second)
	s2 := open(t, path, Options{Now: func() time.Time { return later }})
	for i := range 10 {
		fresh := insert(t, s2, key(i), later, later.Add(time.Minute))
		if want := i >= 5; fresh != want {
			t.Errorf("key %d after reopen: fresh %v, want %v", i, fresh, want)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// 5 live from before, compacted at Open, plus 5 appended since.
	if st.Size() != 10*recordSize {
		t.Errorf("file of %d bytes, want %d", st.Size(), 10*recordSize)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

// TestTornRecord: a crash in the middle of a write leaves a partial last
// record; Open drops it and keeps the whole ones.
func TestTornRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rcache")
	now := time.Now()
	s := open(t, path, Options{})
	insert(t, s, key(1), now, now.Add(time.Minute))
	s.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 17))
	f.Close()
	s2 := open(t, path, Options{})
	if insert(t, s2, key(1), now, now.Add(time.Minute)) {
		t.Error("whole record lost")
	}
	if st, _ := os.Stat(path); st.Size() != 1*recordSize {
		t.Errorf("file of %d bytes after reopen, want %d", st.Size(), recordSize)
	}
}

// TestLocked: a second Open of a file in use fails.
func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rcache")
	open(t, path, Options{})
	if s, err := Open(path, Options{}); err == nil {
		s.Close()
		t.Fatal("second Open of a file in use succeeded")
	}
}

// TestCompaction: past CompactMin records with most expired, the file is
// rewritten with the live ones, which stay replays, and stays locked.
func TestCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rcache")
	s := open(t, path, Options{})
	now := time.Now()
	const live = 100
	for i := range live {
		insert(t, s, key(i), now, now.Add(time.Hour))
	}
	// Short-lived entries, expiring as time moves on.
	at := now
	for i := live; i < live+CompactMin+10; i++ {
		at = at.Add(time.Microsecond)
		insert(t, s, key(i), at, at.Add(time.Microsecond))
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() >= int64(CompactMin)*recordSize {
		t.Errorf("file of %d records after %d inserts: not compacted", st.Size()/recordSize, live+CompactMin+10)
	}
	for i := range live {
		if insert(t, s, key(i), at, at.Add(time.Hour)) {
			t.Fatalf("live key %d lost in compaction", i)
		}
	}
	if s2, err := Open(path, Options{}); err == nil {
		s2.Close()
		t.Fatal("compacted file not locked")
	}
	s.Close()
	s3 := open(t, path, Options{Now: func() time.Time { return at }})
	for i := range live {
		if insert(t, s3, key(i), at, at.Add(time.Hour)) {
			t.Fatalf("live key %d lost after compaction and reopen", i)
		}
	}
}

// TestConcurrent: of concurrent insertions of one key exactly one is fresh.
func TestConcurrent(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rcache"), Options{})
	now := time.Now()
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if f, err := s.Insert(context.Background(), key(7), now, now.Add(time.Minute)); err == nil && f {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Errorf("%d fresh, want 1", fresh.Load())
	}
}

// TestWriteFailure: when the record cannot be written the insertion is an
// error, not a silently forgotten entry.
func TestWriteFailure(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "rcache"), Options{})
	s.f.Close() // writes now fail with EBADF / ErrClosed
	now := time.Now()
	if _, err := s.Insert(context.Background(), key(1), now, now.Add(time.Minute)); err == nil {
		t.Fatal("insert succeeded without its record")
	}
}

// TestFsyncPolicies: always fsyncs once per fresh insertion before it
// returns (none for a replay); never does not fsync until Close; interval
// fsyncs in the background only after appends, and not when idle; Close
// fsyncs what is left and stops the background loop (goleak in TestMain
// would see it otherwise).
func TestFsyncPolicies(t *testing.T) {
	now := time.Now()
	exp := now.Add(time.Minute)
	dir := t.TempDir()

	var observed atomic.Int64 // ObserveSync sees each fsync, with its duration
	observe := func(d time.Duration, err error) {
		if err != nil || d <= 0 {
			t.Errorf("ObserveSync(%v, %v): want a positive duration, no error", d, err)
		}
		observed.Add(1)
	}
	s := open(t, filepath.Join(dir, "always"), Options{Fsync: FsyncAlways, ObserveSync: observe})
	for i := range 5 {
		insert(t, s, key(i), now, exp)
		if got := s.Syncs(); got != int64(i+1) || observed.Load() != int64(i+1) {
			t.Fatalf("always: %d fsyncs, %d observed after %d insertions", got, observed.Load(), i+1)
		}
	}
	insert(t, s, key(0), now, exp) // a replay: nothing appended
	if got := s.Syncs(); got != 5 {
		t.Errorf("always: %d fsyncs after a replay, want 5", got)
	}

	s = open(t, filepath.Join(dir, "never"), Options{Fsync: FsyncNever})
	for i := range 5 {
		insert(t, s, key(i), now, exp)
	}
	time.Sleep(50 * time.Millisecond)
	if got := s.Syncs(); got != 0 {
		t.Errorf("never: %d fsyncs before Close", got)
	}
	if err := s.Close(); err != nil || s.Syncs() != 1 {
		t.Errorf("never: Close = %v with %d fsyncs, want one", err, s.Syncs())
	}

	observed.Store(0)
	s = open(t, filepath.Join(dir, "interval"), Options{Fsync: FsyncInterval, FsyncInterval: 10 * time.Millisecond, ObserveSync: observe})
	time.Sleep(50 * time.Millisecond)
	if got := s.Syncs(); got != 0 {
		t.Errorf("interval: %d fsyncs with nothing appended", got)
	}
	insert(t, s, key(1), now, exp)
	insert(t, s, key(2), now, exp)
	deadline := time.Now().Add(5 * time.Second)
	for s.Syncs() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	n := s.Syncs()
	if n == 0 {
		t.Fatal("interval: no fsync within 5 s of an insertion")
	}
	time.Sleep(50 * time.Millisecond) // five idle intervals
	if got := s.Syncs(); got != n {
		t.Errorf("interval: %d fsyncs while idle, after %d", got-n, n)
	}
	if observed.Load() != n {
		t.Errorf("interval: %d background fsyncs observed, want %d", observed.Load(), n)
	}
	insert(t, s, key(3), now, exp)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.Syncs(); got < n+1 {
		t.Errorf("interval: Close left an appended record unsynced (%d fsyncs, had %d)", got, n)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// What was appended is there at the next open.
	s = open(t, filepath.Join(dir, "interval"), Options{Fsync: FsyncInterval})
	for i := 1; i <= 3; i++ {
		if insert(t, s, key(i), now, exp) {
			t.Errorf("interval: key %d fresh after reopen", i)
		}
	}
}

func TestParseFsync(t *testing.T) {
	for _, p := range []Fsync{FsyncNever, FsyncInterval, FsyncAlways} {
		if got, err := ParseFsync(p.String()); err != nil || got != p {
			t.Errorf("ParseFsync(%q) = %v, %v", p.String(), got, err)
		}
	}
	if _, err := ParseFsync("sometimes"); err == nil {
		t.Error("ParseFsync accepted sometimes")
	}
}

// BenchmarkInsert: one fresh insertion, its record appended, under each
// fsync policy (interval at its default period).
func BenchmarkInsert(b *testing.B) {
	for _, p := range []Fsync{FsyncNever, FsyncInterval, FsyncAlways} {
		b.Run(p.String(), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "rcache"), Options{Fsync: p})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			now := time.Now()
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.Insert(context.Background(), key(i), now, now.Add(time.Minute)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
