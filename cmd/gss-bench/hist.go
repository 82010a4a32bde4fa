package main

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout: values below 2*histSub nanoseconds have a bucket each;
// above, every power of two is split into histSub buckets, so a bucket is
// at most 1/histSub (1.6 %) of its values wide. The array is fixed (30 KiB),
// so recording costs no allocation and memory stays bounded however long a
// run lasts, unlike keeping every sample.
const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	// histBuckets covers every uint64: shifts run from 1 to
	// 64-histSubBits-1 (57), each with histSub buckets.
	histBuckets = 2*histSub + (64-histSubBits-1)*histSub
)

// histogram records latencies with bounded relative error. The zero value
// is empty and ready; it is not safe for concurrent use (each load
// goroutine owns one and they are merged at the end).
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    float64 // nanoseconds, for the mean
	min    uint64
	max    uint64
}

// histIndex returns the bucket holding v.
func histIndex(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	shift := bits.Len64(v) - (histSubBits + 1) // ≥ 1
	top := v >> shift                          // in [histSub, 2*histSub)
	return 2*histSub + (shift-1)*histSub + int(top-histSub)
}

// histBounds returns the smallest and largest value bucket i holds.
func histBounds(i int) (lo, hi uint64) {
	if i < 2*histSub {
		return uint64(i), uint64(i)
	}
	shift := (i-2*histSub)/histSub + 1
	top := uint64((i-2*histSub)%histSub + histSub)
	lo = top << shift
	return lo, lo + (uint64(1) << shift) - 1
}

// Record adds one duration; negative durations count as zero.
func (h *histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[histIndex(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds o's samples to h.
func (h *histogram) Merge(o *histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of samples.
func (h *histogram) Count() uint64 { return h.n }

// Quantile returns the q-quantile (0 < q ≤ 1): the midpoint of the bucket
// holding the sample of rank ⌈q·n⌉, clamped to the exact minimum and
// maximum. It is 0 for an empty histogram.
func (h *histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := histBounds(i)
			mid := lo + (hi-lo)/2
			return time.Duration(min(max(mid, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Percentiles is the latency summary printed and written as JSON, in
// milliseconds.
type Percentiles struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Summary returns h's percentiles in milliseconds.
func (h *histogram) Summary() Percentiles {
	if h.n == 0 {
		return Percentiles{}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Percentiles{
		Count: h.n,
		Mean:  h.sum / float64(h.n) / float64(time.Millisecond),
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P99:   ms(h.Quantile(0.99)),
		Max:   ms(time.Duration(h.max)),
	}
}
