package gss

import (
	"testing"
	"time"
)

// BenchmarkExportImport measures one Export and one Import of an aes256
// (etype 18) context with an acceptor subkey: the listener-to-worker
// handoff cost. Each iteration re-exports the context the previous one
// imported, with a clock that advances 1µs per iteration and a 1ms import
// deadline, so the Importer's replay memory stays at its steady-state size
// (about 1000 ids) instead of growing with b.N.
func BenchmarkExportImport(b *testing.B) {
	key, err := GenerateSealKey(1)
	if err != nil {
		b.Fatal(err)
	}
	p := expParams(b, 18, 32, true)
	p.expiry = expT0.Add(1000 * time.Hour)
	c, err := newContext(p)
	if err != nil {
		b.Fatal(err)
	}
	now := expT0
	clock := func() time.Time { return now }
	im := NewImporter(key)
	im.SetNow(clock)
	opts := ExportOptions{Now: clock, ImportDeadline: time.Millisecond}
	size := 0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Microsecond)
		tok, err := c.ExportWith(key, opts)
		if err != nil {
			b.Fatal(err)
		}
		size = len(tok)
		if c, err = im.Import(tok); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "token-bytes")
}

// BenchmarkExport and BenchmarkImport split the pair. Import gets a fresh
// Importer per token so it never sees a replay.
func BenchmarkExport(b *testing.B) {
	key, err := GenerateSealKey(1)
	if err != nil {
		b.Fatal(err)
	}
	ctxs := make([]*Context, 0, 1024)
	opts := ExportOptions{Now: expClock(expT0)}
	b.ReportAllocs()
	for b.Loop() {
		if len(ctxs) == 0 {
			b.StopTimer()
			for range cap(ctxs) {
				ctxs = append(ctxs, expContext(b, expParams(b, 18, 32, true)))
			}
			b.StartTimer()
		}
		c := ctxs[len(ctxs)-1]
		ctxs = ctxs[:len(ctxs)-1]
		if _, err := c.ExportWith(key, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkImport(b *testing.B) {
	key, err := GenerateSealKey(1)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := expContext(b, expParams(b, 18, 32, true)).ExportWith(key, ExportOptions{Now: expClock(expT0)})
	if err != nil {
		b.Fatal(err)
	}
	ims := make([]*Importer, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		if len(ims) == 0 {
			b.StopTimer()
			for range cap(ims) {
				ims = append(ims, expImporterAt(expT0, key))
			}
			b.StartTimer()
		}
		im := ims[len(ims)-1]
		ims = ims[:len(ims)-1]
		if _, err := im.Import(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImportOpenParse is the part of Import this file owns: GCM open
// and the plaintext parser, without newContext's per-message key
// derivation, which dominates BenchmarkImport.
func BenchmarkImportOpenParse(b *testing.B) {
	key, err := GenerateSealKey(1)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := expContext(b, expParams(b, 18, 32, true)).ExportWith(key, ExportOptions{Now: expClock(expT0)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		pt, err := key.open(tok)
		if err != nil {
			b.Fatal(err)
		}
		e, err := parsePlaintext(pt)
		clear(pt)
		if err != nil {
			b.Fatal(err)
		}
		e.zero()
	}
}
