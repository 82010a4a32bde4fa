package main

import (
	"slices"
	"testing"
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
