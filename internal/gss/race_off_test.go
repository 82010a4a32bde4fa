//go:build !race

package gss

// raceEnabled: see race_on_test.go.
const raceEnabled = false
