package stream

import (
	"io"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
)

// ceilBytes is how much plaintext sealCeiling seals and unseals.
const ceilBytes = 64 << 20

// sealCeiling measures the raw ceiling on an established context pair: the
// seal (AppendWrap, initiator) and unseal (AppendUnwrap, acceptor) of
// ceilBytes in records of one type byte and a MaxChunk payload, the record
// a 64 KiB write becomes, with the same crypto and no network. Each call is
// timed alone, sealing into one reused token buffer and unsealing into one
// reused plaintext buffer: pure crypto, no allocation, cache-hot, as fast
// as a record can be sealed or opened. The contexts' sequence numbers
// advance in step, so a stream that follows stays in sequence.
func sealCeiling(b *testing.B, ictx, actx *gss.Context) (wrapT, unwrapT time.Duration) {
	typ := []byte{TypeData}
	payload := make([]byte, MaxChunk)
	tok := make([]byte, 0, MaxRecordBody)
	pt := make([]byte, 0, MaxRecordBody)
	for range ceilBytes / MaxChunk {
		var err error
		start := time.Now()
		tok, err = ictx.AppendWrap(tok[:0], true, typ, payload)
		mid := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		if pt, _, err = actx.AppendUnwrap(pt[:0], tok); err != nil {
			b.Fatal(err)
		}
		end := time.Now()
		wrapT += mid.Sub(start)
		unwrapT += end.Sub(mid)
	}
	return wrapT, unwrapT
}

// BenchmarkSession64K measures one stream session over loopback TCP: the
// initiator writes 64 KiB at a time, the acceptor reads and discards. Before
// and after the timed part it measures the raw ceiling on the same context
// pair (see sealCeiling) and keeps the faster of the two measurements of
// each side, so a burst of load on a shared machine lowers the ratio rather
// than the ceiling. Reported:
//
//   - MB/s: the session's throughput;
//   - ratio/slower-side: throughput / the slower of seal and unseal alone
//     (sender and receiver run in parallel, so the slower side is the
//     ceiling; issue #15 asks for >= 0.70);
//   - ratio/wrap+unwrap: throughput / (seal then unseal in one goroutine).
func BenchmarkSession64K(b *testing.B) {
	client, server := streamPair(b, Config{}, Config{})
	wrapT, unwrapT := sealCeiling(b, client.Context(), server.Context())

	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, server)
		done <- n
	}()
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := client.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	client.CloseWrite()
	got := <-done
	elapsed := time.Since(start)
	b.StopTimer()
	if got != int64(b.N)*int64(len(buf)) {
		b.Fatalf("server read %d bytes, want %d", got, int64(b.N)*int64(len(buf)))
	}
	// Both EOF records are through: the contexts are in step again.
	wrapT2, unwrapT2 := sealCeiling(b, client.Context(), server.Context())
	wrapT, unwrapT = min(wrapT, wrapT2), min(unwrapT, unwrapT2)
	ceilSlower := float64(ceilBytes) / max(wrapT, unwrapT).Seconds()
	ceilSerial := float64(ceilBytes) / (wrapT + unwrapT).Seconds()
	tput := float64(got) / elapsed.Seconds()
	b.ReportMetric(tput/ceilSlower, "ratio/slower-side")
	b.ReportMetric(tput/ceilSerial, "ratio/wrap+unwrap")
	b.ReportMetric(ceilSlower/1e6, "ceiling-MB/s")
}
