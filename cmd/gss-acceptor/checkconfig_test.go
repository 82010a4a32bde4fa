package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
)

// keytabEntry is one key for writeKeytab: principal "name" in realm
// EXAMPLE.COM, of enctype etype.
type keytabEntry struct {
	name  string
	etype int32
}

// writeKeytab writes a keytab holding entries (kvno 1, keys from a fixed
// password) into dir and returns its path.
func writeKeytab(t *testing.T, dir, file string, entries ...keytabEntry) string {
	t.Helper()
	kt := keytab.New()
	for _, e := range entries {
		if err := kt.AddEntry(e.name, "EXAMPLE.COM", "password", time.Unix(1700000000, 0), 1, e.etype); err != nil {
			t.Fatal(err)
		}
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCheckConfig runs -check-config's check on keytabs built in memory:
// it accepts what the daemon would start with and refuses, naming the
// keytab, each thing gss.NewAcceptor or the keytab loader refuses.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable() // any executable stands in for gss-worker
	if err != nil {
		t.Fatal(err)
	}
	good := writeKeytab(t, dir, "good.keytab", keytabEntry{"host/a.example", 18}, keytabEntry{"host/a.example", 17})
	mixed := writeKeytab(t, dir, "mixed.keytab", keytabEntry{"host/a.example", 18}, keytabEntry{"host/rc4.example", 23})
	rc4 := writeKeytab(t, dir, "rc4.keytab", keytabEntry{"host/a.example", 23})
	empty := filepath.Join(dir, "empty.keytab")
	if err := os.WriteFile(empty, []byte{0x05, 0x02, 0, 0, 0, 0}, 0o600); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(dir, "corrupt.keytab")
	if err := os.WriteFile(corrupt, []byte{0x05}, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		keytab   string
		services []string
		worker   string // "" means self
		status   int
		stdout   []string
		stderr   []string
	}{
		{name: "good", keytab: good, status: exitOK,
			stdout: []string{"configuration c.yaml is ok", "keytab principal host/a.example@EXAMPLE.COM"}},
		{name: "listed service", keytab: good, services: []string{"host/a.example"}, status: exitOK,
			stdout: []string{"is ok"}},
		{name: "listed service with realm", keytab: good, services: []string{"host/a.example@EXAMPLE.COM"}, status: exitOK,
			stdout: []string{"is ok"}},
		{name: "non-AES entry is a warning", keytab: mixed, status: exitOK,
			stdout: []string{"is ok", "keytab principal host/rc4.example@EXAMPLE.COM"},
			stderr: []string{"warning: host/rc4.example@EXAMPLE.COM kvno 1: enctype 23 is not served"}},
		{name: "service not in keytab", keytab: good, services: []string{"nosuch/a.example"}, status: exitFailure,
			stderr: []string{"keytab " + good + ": ", `service "nosuch/a.example" has no AES key in the keytab`}},
		{name: "service with a non-AES key only", keytab: mixed, services: []string{"host/rc4.example"}, status: exitFailure,
			stderr: []string{"enctype 23 is not served", "keytab " + mixed + ": ", `service "host/rc4.example" has no AES key in the keytab`}},
		{name: "service in another realm", keytab: good, services: []string{"host/a.example@OTHER.ORG"}, status: exitFailure,
			stderr: []string{`service "host/a.example@OTHER.ORG" has no AES key`}},
		{name: "no AES key at all", keytab: rc4, status: exitFailure,
			stderr: []string{"keytab " + rc4 + ": ", "keytab holds no AES key"}},
		{name: "empty keytab", keytab: empty, status: exitFailure,
			stderr: []string{"keytab " + empty + ": keytab holds no keys"}},
		{name: "corrupt keytab", keytab: corrupt, status: exitFailure,
			stderr: []string{"reading keytab " + corrupt}},
		{name: "missing keytab", keytab: filepath.Join(dir, "nonexistent.keytab"), status: exitFailure,
			stderr: []string{"reading keytab " + filepath.Join(dir, "nonexistent.keytab")}},
		{name: "no keytab configured", status: exitFailure,
			stderr: []string{"no keytab configured"}},
		{name: "missing worker", keytab: good, worker: filepath.Join(dir, "gss-worker"), status: exitFailure,
			stderr: []string{"worker executable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Keytab = tt.keytab
			cfg.Services = tt.services
			cfg.WorkerPath = self
			if tt.worker != "" {
				cfg.WorkerPath = tt.worker
			}
			var stdout, stderr bytes.Buffer
			status := checkConfig(cfg, "c.yaml", &stdout, &stderr)
			if status != tt.status {
				t.Errorf("exit status %d, want %d", status, tt.status)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q", want)
				}
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q", want)
				}
			}
			if tt.status != exitOK && stdout.Len() > 0 {
				t.Errorf("a refused configuration printed on stdout")
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
			}
		})
	}
}
