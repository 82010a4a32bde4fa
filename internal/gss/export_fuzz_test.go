package gss

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// -export-corpus rewrites testdata/fuzz/FuzzImport and
// testdata/fuzz/FuzzImportPlaintext from expFuzzSeeds.
var expCorpusFlag = flag.Bool("export-corpus", false, "rewrite the FuzzImport and FuzzImportPlaintext seed corpora")

// expFuzzNow is the clock of the fuzz Importers; the seed tokens are exported
// one second earlier and stay importable forever at this fixed time.
var expFuzzNow = expT0.Add(time.Second)

// expFuzzKey is a fixed seal key, so the corpus files stay valid tokens.
func expFuzzKey(tb testing.TB) *SealKey {
	tb.Helper()
	raw := make([]byte, sealKeyLen)
	for i := range raw {
		raw[i] = byte(i)
	}
	k, err := NewSealKey(1, raw)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

type expFuzzSeed struct {
	name  string
	token []byte
}

// expFuzzSeeds exports deterministic contexts (fixed keys, clock and
// randomness) covering every enctype and the optional fields.
func expFuzzSeeds(tb testing.TB, key *SealKey) []expFuzzSeed {
	tb.Helper()
	var seeds []expFuzzSeed
	i := 0
	for _, et := range expEtypes {
		for _, variant := range []string{"plain", "subkey", "all"} {
			i++
			fill := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
			p := contextParams{
				flags:      FlagMutual | FlagReplay | FlagSequence | FlagConf | FlagInteg | FlagTrans,
				mech:       oidKRB5,
				initName:   "alice@EXAMPLE.COM",
				acceptName: "host/h.example.com@EXAMPLE.COM",
				expiry:     expT0.Add(10 * time.Hour),
				sessionKey: Key{Etype: et.etype, Value: fill(et.keyLen, byte(i))},
				subkey:     Key{Etype: et.etype, Value: fill(et.keyLen, byte(i+64))},
				sendSeq:    uint64(i) << 20,
				recvSeq:    uint64(i) << 10,
			}
			if variant != "plain" {
				p.acceptorSubkey = Key{Etype: et.etype, Value: fill(et.keyLen, byte(i+128))}
			}
			if variant == "all" {
				p.initiator, p.viaSPNEGO, p.mech = true, true, oidKRB5MS
				p.flags |= FlagDeleg
				p.delegated = fill(100, 0xde)
			}
			c, err := newContext(p)
			if err != nil {
				tb.Fatal(err)
			}
			c.recv.next, c.recv.recvmap = 3, 0b101
			tok, err := c.ExportWith(key, ExportOptions{Now: expClock(expT0), Rand: bytes.NewReader(fill(64, byte(i)))})
			if err != nil {
				tb.Fatal(err)
			}
			seeds = append(seeds, expFuzzSeed{fmt.Sprintf("etype%d-%s", et.etype, variant), tok})
		}
	}
	return seeds
}

func expWriteCorpus(t *testing.T, dir string, seeds []expFuzzSeed) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.token)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestExportFuzzCorpus keeps the checked-in seed corpora in sync with
// expFuzzSeeds (run with -export-corpus to rewrite them).
func TestExportFuzzCorpus(t *testing.T) {
	key := expFuzzKey(t)
	seeds := expFuzzSeeds(t, key)
	var plain []expFuzzSeed
	for _, s := range seeds {
		plain = append(plain, expFuzzSeed{s.name, expOpenRaw(t, key, s.token)})
	}
	plain = append(plain, expFuzzSeed{"empty", nil})
	dirs := map[string][]expFuzzSeed{
		filepath.Join("testdata", "fuzz", "FuzzImport"):          seeds,
		filepath.Join("testdata", "fuzz", "FuzzImportPlaintext"): plain,
	}
	for dir, ss := range dirs {
		if *expCorpusFlag {
			expWriteCorpus(t, dir, ss)
		}
		for _, s := range ss {
			got, err := os.ReadFile(filepath.Join(dir, "seed-"+s.name))
			if err != nil {
				t.Fatalf("%v (run go test -run TestExportFuzzCorpus -export-corpus)", err)
			}
			if want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.token); string(got) != want {
				t.Errorf("%s/seed-%s is stale (run go test -run TestExportFuzzCorpus -export-corpus)", dir, s.name)
			}
		}
	}
	// The token seeds are valid: each imports at expFuzzNow.
	for _, s := range seeds {
		if _, err := expImporterAt(expFuzzNow, key).Import(s.token); err != nil {
			t.Errorf("seed %s: %v", s.name, err)
		}
	}
}

// FuzzImport feeds arbitrary bytes to Import. It must never panic, never
// modify its input, and fail with a GSS status unless the input is a valid
// token; a token that imports is refused a second time and survives a
// further export/import unchanged.
func FuzzImport(f *testing.F) {
	key := expFuzzKey(f)
	for _, s := range expFuzzSeeds(f, key) {
		f.Add(s.token)
	}
	f.Add([]byte("GSXC"))
	f.Add(append([]byte("GSXC\x01\x01"), make([]byte, 28)...))
	f.Fuzz(func(t *testing.T, tok []byte) {
		orig := bytes.Clone(tok)
		im := expImporterAt(expFuzzNow, key)
		c, err := im.Import(tok)
		if !bytes.Equal(tok, orig) {
			t.Fatal("Import modified its input")
		}
		if err != nil {
			var gerr *Error
			if c != nil || !errors.As(err, &gerr) || !gerr.Major.IsError() {
				t.Fatalf("failure without a GSS error status: %v, %v", c, err)
			}
			return
		}
		if _, err := im.Import(tok); !errors.Is(err, StatusDuplicateToken) {
			t.Fatalf("second import: %v, want GSS_S_DUPLICATE_TOKEN", err)
		}
		expRoundTrip(t, key, c, expFuzzNow)
	})
}

// FuzzImportPlaintext seals arbitrary plaintexts, which exercises the field
// parser behind the GCM check. A plaintext that parses must be canonical:
// exporting the context it describes with the same id, times and nonce
// gives back exactly the same plaintext.
func FuzzImportPlaintext(f *testing.F) {
	key := expFuzzKey(f)
	for _, s := range expFuzzSeeds(f, key) {
		pt, err := key.open(s.token)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pt)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, pt []byte) {
		e, err := parsePlaintext(pt)
		if err != nil {
			var gerr *Error
			if e != nil || !errors.As(err, &gerr) || !gerr.Major.IsError() {
				t.Fatalf("failure without a GSS error status: %v", err)
			}
			// Sealed, the same bytes are refused by Import too.
			if _, err := expImporterAt(expFuzzNow, key).Import(expSealRaw(key, 1, 1, pt)); err == nil {
				t.Fatal("Import accepted a plaintext the parser refuses")
			}
			return
		}
		id, exportedAt, lifetime := e.id, e.exportedAt, time.Duration(e.deadline-e.exportedAt)
		flags, expiry := e.params.flags, e.params.expiry
		if lifetime <= 0 {
			e.zero()
			return // deadline - exported at overflows a Duration
		}
		c, err := e.build()
		if err != nil {
			return // keys the per-message layer refuses (enctype, length)
		}
		now := time.Unix(0, exportedAt)
		nonce := bytes.Repeat([]byte{0x5a}, iptNonceLen)
		tok, err := c.ExportWith(key, ExportOptions{
			Now: expClock(now), ImportDeadline: lifetime,
			Rand: bytes.NewReader(append(id[:], nonce...)),
		})
		switch {
		case flags&FlagTrans == 0:
			if !errors.Is(err, StatusUnavailable) {
				t.Fatalf("export without TRANS: %v", err)
			}
			return
		case now.After(expiry):
			if !errors.Is(err, StatusContextExpired) {
				t.Fatalf("export of an expired context: %v", err)
			}
			return
		case err != nil:
			t.Fatalf("re-export: %v", err)
		}
		got, err := key.open(tok)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("plaintext not canonical:\n in  %x\n out %x", pt, got)
		}
	})
}

// expRoundTrip exports c and imports the result with a fresh Importer, and
// fails unless the state is unchanged.
func expRoundTrip(t *testing.T, key *SealKey, c *Context, now time.Time) {
	t.Helper()
	before := expSnap(c)
	tok, err := c.ExportWith(key, ExportOptions{Now: expClock(now)})
	if err != nil {
		if before.flags&FlagTrans == 0 && errors.Is(err, StatusUnavailable) {
			return
		}
		t.Fatalf("re-export: %v", err)
	}
	c2, err := expImporterAt(now, key).Import(tok)
	if err != nil {
		t.Fatalf("re-import: %v", err)
	}
	expCompareState(t, before, expSnap(c2))
}
