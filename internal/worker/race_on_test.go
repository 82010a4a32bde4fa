//go:build race

package worker

// raceEnabled: the race detector doubles goroutine stack guards, so
// stacks grow sooner and idle sessions measure larger.
const raceEnabled = true
