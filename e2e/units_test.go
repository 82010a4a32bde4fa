package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestInstanceUnit checks the template systemd/gss-acceptor@.service: it
// is gss-acceptor.service with the instance's configuration file
// /etc/gss-acceptor/%i.yaml, its own runtime directory and description,
// and nothing else changed below its header comment (so that a hardening
// or notify change to one unit cannot miss the other), and it passes
// systemd-analyze verify.
func TestInstanceUnit(t *testing.T) {
	read := func(name string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("..", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		i := strings.Index(s, "[Unit]")
		if i < 0 {
			t.Fatalf("%s has no [Unit] section", name)
		}
		return s[i:]
	}
	want := strings.NewReplacer(
		"Description=Kerberos GSS-API acceptor (prefork)\n", "Description=Kerberos GSS-API acceptor (prefork), instance %i\n",
		"/etc/gss-acceptor/gss-acceptor.yaml", "/etc/gss-acceptor/%i.yaml",
		"RuntimeDirectory=gss-acceptor\n", "RuntimeDirectory=gss-acceptor-%i\n",
		"`systemctl edit gss-acceptor`", "`systemctl edit gss-acceptor@INSTANCE`",
		"# Binding a port below 1024 needs CAP_NET_BIND_SERVICE, or use\n# gss-acceptor.socket.\n",
		"# Binding a port below 1024 needs CAP_NET_BIND_SERVICE (there is no\n# socket unit per instance).\n",
	).Replace(read("gss-acceptor.service"))
	got := read("gss-acceptor@.service")
	if got != want {
		wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
		for i := 0; i < max(len(wl), len(gl)); i++ {
			var w, g string
			if i < len(wl) {
				w = wl[i]
			}
			if i < len(gl) {
				g = gl[i]
			}
			if w != g {
				t.Fatalf("gss-acceptor@.service differs from gss-acceptor.service with the instance's substitutions, from [Unit] line %d:\n got %q\nwant %q", i+1, g, w)
			}
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if strings.Contains(l, "gss-acceptor.yaml") {
			t.Errorf("the template names the main configuration file: %q", l)
		}
	}

	analyze := systemdTool(t, "systemd-analyze")
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("..", "systemd", "gss-acceptor@.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(dir, "gss-acceptor@.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(data), "/usr/sbin/gss-acceptor", bin("gss-acceptor"))), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, analyze, "verify", "--man=no", unit).CombinedOutput()
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("systemd-analyze verify complains about gss-acceptor@.service:\n%s", s)
	}
}
