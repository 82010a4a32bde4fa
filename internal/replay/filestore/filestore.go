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
// or a panic of the process loses nothing. There is no fsync per insert
// (a power loss or kernel crash may lose the last seconds of entries:
// after such an outage every client's clock skew window has usually
// passed anyway; Options.Sync makes each insert fsync for those who want
// it, at a few ms per handshake on most disks). The file is compacted the
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
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
)

const recordSize = 32 + 8

// CompactMin is the least number of records before a compaction.
const CompactMin = 1 << 16

// Options configures Open.
type Options struct {
	// MaxEntries bounds the live entries, as gss.NewReplayCache.
	MaxEntries int
	// Sync fsyncs the file after every appended record.
	Sync bool
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
	records int // records in the file
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
	return s, nil
}

// Len returns the entries in the memory cache.
func (s *Store) Len() int { return s.mem.Len() }

// Close closes the file (and releases its lock).
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
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
	if s.opts.Sync {
		if err := s.f.Sync(); err != nil {
			return false, fmt.Errorf("syncing replay cache file %s: %w", s.path, err)
		}
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
	return nil
}
