// Package filestore is a gss.ReplayStore that survives a restart or a
// crash of the acceptor, like MIT's rcache2: an append-only file of
// fixed-size records (key, expiry) in front of the in-memory cache.
//
// Record: the 32-byte key, then the expiry as 8 bytes big-endian Unix
// nanoseconds. At Open the file is read, a torn last record (a crash in
// the middle of a write) is dropped, the live entries are loaded into the
// memory cache and the file is rewritten with them only (temporary file,
// fsync, rename). While serving, an Insert that is fresh in memory appends
// its record with one write(2) on an O_APPEND descriptor before it returns:
// once the handshake is accepted the record is in the kernel, so a SIGKILL
// or a panic of the process loses nothing. What a power loss or kernel
// crash may lose depends on Options.Fsync: FsyncAlways fsyncs before each
// fresh Insert returns (nothing is lost; one disk flush per handshake),
// FsyncInterval fsyncs in the background every FsyncInterval when records
// were appended since the last one (at most that much is lost), FsyncNever
// leaves it to the kernel's writeback (about 30 s on Linux). Close fsyncs.
// The file is compacted the
// same way as at Open when it holds more than twice the live entries and
// at least CompactMin records (2.5 MiB).
//
// One process uses a file at a time: Open takes an exclusive flock and
// fails if another process holds it. Hosts do not share a file (use
// Redis for that).
package filestore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
)

const recordSize = 32 + 8

// CompactMin is the least number of records before a compaction.
const CompactMin = 1 << 16

// Fsync is when appended records are flushed to the disk.
type Fsync int

const (
	// FsyncNever leaves appended records to the kernel's writeback.
	FsyncNever Fsync = iota
	// FsyncInterval fsyncs every Options.FsyncInterval, in the
	// background, when records were appended since the last fsync.
	FsyncInterval
	// FsyncAlways fsyncs after each appended record, before Insert
	// returns.
	FsyncAlways
)

// DefaultFsyncInterval is FsyncInterval's period when Options.FsyncInterval
// is 0.
const DefaultFsyncInterval = time.Second

// ParseFsync reads the replay_cache_fsync value: "never", "interval" or
// "always".
func ParseFsync(s string) (Fsync, error) {
	switch s {
	case "never":
		return FsyncNever, nil
	case "interval":
		return FsyncInterval, nil
	case "always":
		return FsyncAlways, nil
	}
	return FsyncNever, fmt.Errorf("replay cache fsync policy %q: want never, interval or always", s)
}

// String is the policy's configuration spelling.
func (f Fsync) String() string {
	switch f {
	case FsyncInterval:
		return "interval"
	case FsyncAlways:
		return "always"
	}
	return "never"
}

// Options configures Open.
type Options struct {
	// MaxEntries bounds the live entries, as gss.NewReplayCache.
	MaxEntries int
	// Fsync is when appended records reach the disk (default FsyncNever).
	Fsync Fsync
	// FsyncInterval is FsyncInterval's period. 0: DefaultFsyncInterval.
	FsyncInterval time.Duration
	// OnSyncError, when set, is called when a background fsync
	// (FsyncInterval) fails; the next interval tries again.
	OnSyncError func(error)
	// ObserveSync, when set, is called after every fsync of appended
	// records (FsyncInterval, FsyncAlways) with its duration and error.
	ObserveSync func(d time.Duration, err error)
	// Now is the clock used at Open to drop expired records. nil: time.Now.
	Now func() time.Time
}

// Store is a file-backed gss.ReplayStore. Safe for concurrent use.
type Store struct {
	path string
	opts Options

	mu      sync.Mutex // serialises check-and-append, and compaction
	mem     *gss.ReplayCache
	live    map[gss.ReplayKey]int64 // what the file must keep: key → expiry
	f       *os.File
	records int  // records in the file
	dirty   bool // records appended since the last fsync
	closed  bool

	syncs    atomic.Int64 // fsyncs of appended records done
	stopOnce sync.Once
	stop     chan struct{} // closed by Close: ends the FsyncInterval loop
	syncDone chan struct{} // closed when that loop has returned
}

var _ gss.ReplayStore = (*Store)(nil)

// Open opens (creating it, mode 0600) the replay cache file at path,
// loads its live entries and compacts it.
func Open(path string, o Options) (*Store, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replay cache file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("replay cache file %s is in use by another process: %w", path, err)
	}
	s := &Store{path: path, opts: o, mem: gss.NewReplayCache(o.MaxEntries), live: make(map[gss.ReplayKey]int64), f: f}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading replay cache file %s: %w", path, err)
	}
	now := o.Now()
	for len(data) >= recordSize {
		var k gss.ReplayKey
		copy(k[:], data[:32])
		exp := int64(binary.BigEndian.Uint64(data[32:40]))
		data = data[recordSize:]
		if exp < now.UnixNano() {
			continue
		}
		if fresh, err := s.mem.Insert(context.Background(), k, now, time.Unix(0, exp)); err == nil && fresh {
			s.live[k] = exp
		}
	}
	// A torn last record (len(data) > 0) is dropped by the rewrite.
	if err := s.compactLocked(now); err != nil {
		s.f.Close()
		return nil, err
	}
	if o.Fsync == FsyncInterval {
		if o.FsyncInterval <= 0 {
			s.opts.FsyncInterval = DefaultFsyncInterval
		}
		s.stop, s.syncDone = make(chan struct{}), make(chan struct{})
		go s.syncLoop()
	}
	return s, nil
}

// syncLoop fsyncs the file every FsyncInterval when records were appended
// since the last fsync, until Close.
func (s *Store) syncLoop() {
	defer close(s.syncDone)
	t := time.NewTicker(s.opts.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if err := s.syncIfDirty(); err != nil && s.opts.OnSyncError != nil {
			s.opts.OnSyncError(err)
		}
	}
}

// syncIfDirty fsyncs the file if records were appended since the last
// fsync. The lock is held only to look: inserts go on during the fsync
// (what they append after the look waits for the next round).
func (s *Store) syncIfDirty() error {
	s.mu.Lock()
	f, dirty := s.f, s.dirty
	s.dirty = false
	s.mu.Unlock()
	if !dirty {
		return nil
	}
	if err := s.timedSync(f); err != nil {
		if errors.Is(err, os.ErrClosed) {
			// Compaction replaced the file (it fsyncs the new one),
			// or Close ran (it fsyncs before closing).
			return nil
		}
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return fmt.Errorf("syncing replay cache file %s: %w", s.path, err)
	}
	s.syncs.Add(1)
	return nil
}

// timedSync fsyncs f and reports it to Options.ObserveSync. A file closed
// under a background fsync (compaction, Close) is not an fsync.
func (s *Store) timedSync(f *os.File) error {
	start := time.Now()
	err := f.Sync()
	if s.opts.ObserveSync != nil && !errors.Is(err, os.ErrClosed) {
		s.opts.ObserveSync(time.Since(start), err)
	}
	return err
}

// Syncs returns how many fsyncs of appended records the store has done
// (compactions not counted).
func (s *Store) Syncs() int64 { return s.syncs.Load() }

// Len returns the entries in the memory cache.
func (s *Store) Len() int { return s.mem.Len() }

// Close stops the background fsync, fsyncs records appended since the
// last fsync and closes the file (releasing its lock). It is idempotent.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stopOnce.Do(func() { close(s.stop) })
		<-s.syncDone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var serr error
	if s.dirty {
		if serr = s.f.Sync(); serr == nil {
			s.syncs.Add(1)
			s.dirty = false
		}
	}
	if err := s.f.Close(); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("syncing replay cache file %s: %w", s.path, serr)
	}
	return nil
}

// Insert implements gss.ReplayStore: the memory cache decides, and a fresh
// key's record is appended before Insert returns. A failed write is an
// error (the handshake is refused): an entry that would not survive a
// restart is not given out as remembered.
func (s *Store) Insert(ctx context.Context, key gss.ReplayKey, now, expiry time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh, err := s.mem.Insert(ctx, key, now, expiry)
	if err != nil || !fresh {
		return fresh, err
	}
	var rec [recordSize]byte
	copy(rec[:32], key[:])
	binary.BigEndian.PutUint64(rec[32:], uint64(expiry.UnixNano()))
	if _, err := s.f.Write(rec[:]); err != nil {
		return false, fmt.Errorf("appending to replay cache file %s: %w", s.path, err)
	}
	if s.opts.Fsync == FsyncAlways {
		if err := s.timedSync(s.f); err != nil {
			return false, fmt.Errorf("syncing replay cache file %s: %w", s.path, err)
		}
		s.syncs.Add(1)
	} else {
		s.dirty = true
	}
	s.records++
	s.live[key] = expiry.UnixNano()
	// The memory cache sweeps expired entries as it goes, so its length
	// is about the live count; s.live and the file are trimmed to it when
	// they hold twice as much (amortised: each trim at least halves them).
	if s.records >= CompactMin && s.records > 2*s.mem.Len() {
		// A failed compaction leaves the old file in place; a later
		// insert retries it.
		_ = s.compactLocked(now)
	} else if len(s.live) > 2*s.mem.Len()+1024 {
		s.pruneLocked(now)
	}
	return true, nil
}

// pruneLocked forgets expired keys in s.live.
func (s *Store) pruneLocked(now time.Time) {
	at := now.UnixNano()
	for k, exp := range s.live {
		if exp < at {
			delete(s.live, k)
		}
	}
}

// compactLocked rewrites the file with the live entries only: a
// temporary file in the same directory, fsync, rename over the old one,
// fsync of the directory; the store then appends to the new file, whose
// lock it takes first.
func (s *Store) compactLocked(now time.Time) error {
	s.pruneLocked(now)
	buf := make([]byte, 0, len(s.live)*recordSize)
	for k, exp := range s.live {
		buf = append(buf, k[:]...)
		buf = binary.BigEndian.AppendUint64(buf, uint64(exp))
	}
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(s.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("compacting replay cache file: %w", err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("compacting replay cache file %s: %w", s.path, err)
	}
	if err := unix.Flock(int(tmp.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(buf); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fail(err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	// Reopen for appending: the temporary descriptor is not O_APPEND.
	nf, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		tmp.Close()
		return fmt.Errorf("reopening replay cache file %s: %w", s.path, err)
	}
	s.f.Close()
	tmp.Close() // its lock goes with it; nf takes the lock at once
	if err := unix.Flock(int(nf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		nf.Close()
		return fmt.Errorf("locking replay cache file %s: %w", s.path, err)
	}
	s.f = nf
	s.records = len(s.live)
	s.dirty = false // the rewrite was fsynced
	return nil
}
