package main

import (
	"math"
	"testing"
	"time"
)

func TestHistIndexBounds(t *testing.T) {
	// Every bucket's bounds map back to the bucket, buckets are contiguous
	// and the last one ends at the largest uint64.
	var prevHi uint64
	for i := range histBuckets {
		lo, hi := histBounds(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if histIndex(lo) != i || histIndex(hi) != i {
			t.Fatalf("bucket %d [%d, %d]: index(lo)=%d index(hi)=%d", i, lo, hi, histIndex(lo), histIndex(hi))
		}
		if i >= 2*histSub && float64(hi-lo+1)/float64(lo) > 1.0/histSub+1e-12 {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its values", i, lo, hi, histSub)
		}
		prevHi = hi
	}
	if prevHi != math.MaxUint64 {
		t.Fatalf("last bucket ends at %d, want MaxUint64", prevHi)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{"single", []time.Duration{5 * time.Millisecond}, 0.5, 5 * time.Millisecond},
		{"small exact", []time.Duration{10, 20, 30, 40}, 0.5, 20},
		{"max quantile is max", []time.Duration{10, 20, 30, 40}, 1, 40},
		{"negative counts as zero", []time.Duration{-5}, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h histogram
			for _, d := range tt.samples {
				h.Record(d)
			}
			if got := h.Quantile(tt.q); got != tt.want {
				t.Fatalf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
			}
		})
	}
}

func TestHistogramRelativeError(t *testing.T) {
	// 1..10000 µs uniformly: every percentile within 1.6 % of the exact one.
	var h histogram
	for i := 1; i <= 10000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := float64(time.Duration(math.Ceil(q*10000)) * time.Microsecond)
		got := float64(h.Quantile(q))
		if math.Abs(got-exact)/exact > 1.0/histSub {
			t.Errorf("q=%v: got %v, exact %v", q, time.Duration(got), time.Duration(exact))
		}
	}
	s := h.Summary()
	if s.Count != 10000 || s.Max != 10 {
		t.Fatalf("summary count %d max %v ms, want 10000 and 10 ms", s.Count, s.Max)
	}
	if math.Abs(s.Mean-5.0005) > 1e-9 {
		t.Fatalf("mean %v ms, want 5.0005", s.Mean)
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, empty histogram
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	b.Record(2 * time.Millisecond)
	a.Merge(&b)
	a.Merge(&empty)
	if a.Count() != 3 || a.min != uint64(time.Millisecond) || a.max != uint64(3*time.Millisecond) {
		t.Fatalf("merged count %d min %d max %d", a.Count(), a.min, a.max)
	}
	if got := a.Quantile(0.5); got < 1980*time.Microsecond || got > 2020*time.Microsecond {
		t.Fatalf("median %v, want about 2ms", got)
	}
	var c histogram
	c.Merge(&b) // into an empty histogram: min comes from b
	if c.min != uint64(2*time.Millisecond) {
		t.Fatalf("min after merge into empty = %d", c.min)
	}
	if (&histogram{}).Summary() != (Percentiles{}) {
		t.Fatal("empty summary is not zero")
	}
}
