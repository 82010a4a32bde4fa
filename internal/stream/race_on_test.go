//go:build race

package stream

// raceEnabled: the race detector makes sync.Pool drop items at random and
// instruments allocations, so allocation counts are not asserted under it.
const raceEnabled = true
