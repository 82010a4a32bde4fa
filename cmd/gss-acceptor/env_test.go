package main

import (
	"slices"
	"testing"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
)

func TestWorkerEnv(t *testing.T) {
	t.Setenv("GOMAXPROCS", "7")
	t.Setenv("GOGC", "200")
	t.Setenv("KRB5_KTNAME", "/etc/secret.keytab")
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	env := workerEnv(3)
	for _, want := range []string{"GOMAXPROCS=3", "GOGC=200", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"} {
		if !slices.Contains(env, want) {
			t.Errorf("workerEnv(3) = %q, lacks %s", env, want)
		}
	}
	for _, e := range env {
		switch e {
		case "GOMAXPROCS=7":
			t.Errorf("the acceptor's GOMAXPROCS reached the workers: %q", env)
		case "KRB5_KTNAME=/etc/secret.keytab", "NOTIFY_SOCKET=/run/systemd/notify":
			t.Errorf("workerEnv passed %s", e)
		}
	}
}

// The acceptor's GOMAXPROCS: acceptor_cpus wins, then the operator's
// GOMAXPROCS, then half the CPUs (at least one).
func TestAcceptorCPUs(t *testing.T) {
	for _, tt := range []struct {
		name string
		key  int
		env  string
		want int
	}{
		{"acceptor_cpus", 3, "5", 3},
		{"GOMAXPROCS", 0, "5", 5},
		{"GOMAXPROCS unusable", 0, "x", config.DefaultAcceptorCPUs()},
		{"default", 0, "", config.DefaultAcceptorCPUs()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", tt.env)
			if got := acceptorCPUs(&config.Config{AcceptorCPUs: tt.key}); got != tt.want {
				t.Errorf("acceptorCPUs = %d, want %d", got, tt.want)
			}
		})
	}
	if d, w := config.DefaultAcceptorCPUs(), config.DefaultWorkers(); d < 1 || d > max(w/2, 1) {
		t.Errorf("DefaultAcceptorCPUs() = %d with %d CPUs, want half, at least 1", d, w)
	}
}
