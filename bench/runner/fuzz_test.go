package main

import (
	"testing"
)

// The parsers read /proc files and the acceptor's log: neither should be
// able to crash the harness, and accepted values must be in range.

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1234 (gss-worker) S 1200 1234 1234 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 100 0 0"))
	f.Add([]byte("1 ((x)) R 0 0 0 0 0 0 0 0 0 0 18446744073709551615 0 0"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseStat(b); err != nil {
			return
		}
	})
}

func FuzzParseRSS(f *testing.F) {
	f.Add([]byte("VmRSS:\t  2048 kB\n"))
	f.Add([]byte("VmRSS: 99999999999999999999 kB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := parseRSS(b)
		if err == nil && (v < 0 || v > 1<<50) {
			t.Fatalf("accepted RSS %d", v)
		}
	})
}

func FuzzParseHandoff(f *testing.F) {
	f.Add([]byte(`{"msg":"session handed off","handshake":"1.5ms","handoff":"250µs"}`))
	f.Add([]byte(`{"msg":"session handed off","handshake":1e300,"handoff":-1}`))
	f.Add([]byte(`{"msg":"ready"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok, err := parseHandoff(b)
		if err != nil && ok {
			t.Fatal("ok with an error")
		}
		if ok && (h.Handshake < 0 || h.Handoff < 0) {
			t.Fatalf("negative durations accepted: %+v", h)
		}
	})
}

func FuzzParseListening(f *testing.F) {
	f.Add("listening 127.0.0.1:4444")
	f.Add("listening [::1]:65535\n")
	f.Add("listening 127.0.0.1:0")
	f.Add("listening 127.0.0.1:+80")
	f.Fuzz(func(t *testing.T, line string) {
		port, err := parseListening(line)
		if err == nil && (port < 1 || port > 65535) {
			t.Fatalf("parseListening(%q) accepted port %d", line, port)
		}
	})
}
