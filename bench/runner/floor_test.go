package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseListening(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr bool
	}{
		{"plain", "listening 127.0.0.1:43025", 43025, false},
		{"trailing newline", "listening 127.0.0.1:1\n", 1, false},
		{"ipv6", "listening [::1]:65535", 65535, false},
		{"other line", "floor: 3 connections served", 0, true},
		{"no port", "listening 127.0.0.1", 0, true},
		{"port 0", "listening 127.0.0.1:0", 0, true},
		{"port too big", "listening 127.0.0.1:65536", 0, true},
		{"port not a number", "listening 127.0.0.1:http", 0, true},
		{"empty", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseListening(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseListening(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestFloorSection(t *testing.T) {
	mk := func(cpu time.Duration, ops int64, rate float64) *row {
		return &row{CPU: cpu, Ops: ops, OpsPerSec: rate}
	}
	tests := []struct {
		name                     string
		inline, handoff, ours, m *row
		want, notWant            []string
	}{
		{
			name:    "all rows",
			inline:  mk(600*time.Millisecond, 10_000, 5000),  // 60 µs
			handoff: mk(1500*time.Millisecond, 10_000, 4000), // 150 µs
			ours:    mk(4*time.Second, 10_000, 2500),         // 400 µs
			m:       mk(3600*time.Millisecond, 10_000, 1900), // 360 µs
			want: []string{
				"## Architecture floor",
				"just ahead of its next ACK",
				"TCP_DEFER_ACCEPT",
				"| floor, inline (no handoff) | 5000/s | 60 µs |",
				"| floor, handoff to 2 workers | 4000/s | 150 µs |",
				"| gss-acceptor (2 workers), handshake -mcount 0 | 2500/s | 400 µs |",
				"| MIT gss-server rcache=none, handshake -mcount 0 | 1900/s | 360 µs |",
				"server CPU per connection: 2.67× (the floor is 38 % of gss-acceptor's CPU per handshake).",
				"costs 90 µs per connection.",
			},
		},
		{
			name: "rows missing",
			ours: mk(4*time.Second, 10_000, 2500),
			want: []string{
				"| floor, inline (no handoff) | — | — |",
				"server CPU per connection: —.",
			},
			notWant: []string{"the floor is", "costs"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := floorSection(tt.inline, tt.handoff, tt.ours, tt.m, 16)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("section lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("section has %q:\n%s", w, got)
				}
			}
		})
	}
}
