//go:build !race

package stream

// raceEnabled: see race_on_test.go.
const raceEnabled = false
