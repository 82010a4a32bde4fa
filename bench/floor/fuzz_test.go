package main

import (
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzParseRights feeds arbitrary control data to the worker's SCM_RIGHTS
// parser: it must not panic, and it cannot find more descriptors than the
// data has room for.
func FuzzParseRights(f *testing.F) {
	f.Add(unix.UnixRights(7))
	f.Add(unix.UnixRights(3, 4, 5))
	f.Add(append(unix.UnixRights(9), 1, 2, 3))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, oob []byte) {
		fds, _ := parseRights(oob)
		if len(fds) > len(oob)/4 {
			t.Fatalf("%d descriptors from %d bytes of control data", len(fds), len(oob))
		}
	})
}
