package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
)

func TestWorkerArgs(t *testing.T) {
	c := config.Default()
	if got := workerArgs(c); !slices.Equal(got, []string{"-log-level", "info", "-log-format", "json"}) {
		t.Fatalf("sample backend: %q", got)
	}
	c.Backend, c.BackendProxyProtocol, c.BackendConnectTimeout, c.StreamIntegrityAllowed = "tcp:127.0.0.1:6379", "v2", 2*time.Second, true
	want := []string{"-log-level", "info", "-log-format", "json", "-backend", "tcp:127.0.0.1:6379",
		"-backend-connect-timeout", "2s", "-backend-proxy-protocol", "v2", "-stream-confidentiality=false"}
	if got := workerArgs(c); !slices.Equal(got, want) {
		t.Fatalf("proxy backend: %q\nwant %q", got, want)
	}
}

func TestBackendFlags(t *testing.T) {
	o, err := parseFlags([]string{"-keytab", "/etc/krb5.keytab", "-backend", "unix:/run/app.sock", "-backend-proxy-protocol", "v2"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if c.Backend != "unix:/run/app.sock" || c.BackendProxyProtocol != "v2" {
		t.Fatalf("config %q %q", c.Backend, c.BackendProxyProtocol)
	}
	o, _ = parseFlags([]string{"-keytab", "/etc/krb5.keytab", "-backend", "redis"})
	if _, err := loadConfig(o); err == nil {
		t.Fatal("-backend redis accepted")
	}
}

// TestExecFlag: -exec selects backend exec; combined with a -backend other
// than exec it is refused, not silently preferred.
func TestExecFlag(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"-exec", "/usr/libexec/app"}},
		{args: []string{"-backend", "exec", "-exec", "/usr/libexec/app"}},
		{args: []string{"-backend", "tcp:127.0.0.1:6379", "-exec", "/usr/libexec/app"},
			wantErr: "-exec selects backend exec; it cannot be combined with -backend tcp:127.0.0.1:6379"},
		{args: []string{"-exec", "/usr/libexec/app", "-backend", "sample"},
			wantErr: "-exec selects backend exec; it cannot be combined with -backend sample"},
	} {
		o, err := parseFlags(append([]string{"-keytab", "/etc/krb5.keytab"}, tc.args...))
		if err != nil {
			t.Fatal(err)
		}
		c, err := loadConfig(o)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
		} else if c.Backend != config.BackendExec || c.ExecPath != "/usr/libexec/app" {
			t.Errorf("%q: backend %q exec_path %q", tc.args, c.Backend, c.ExecPath)
		}
	}
}

// TestReplayCacheFlag: -replay-cache sets replay_cache; a bad value is
// refused naming the key; memory keeps the process's own cache.
func TestReplayCacheFlag(t *testing.T) {
	o, err := parseFlags([]string{"-keytab", "/etc/krb5.keytab", "-replay-cache", "redis://127.0.0.1:6379/3"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if c.ReplayCache != "redis://127.0.0.1:6379/3" {
		t.Fatalf("replay_cache %q", c.ReplayCache)
	}
	local := gss.NewReplayCache(10)
	store, rs, err := newReplayStore(c, local, nil, nil)
	if err != nil || rs == nil || store != gss.ReplayStore(rs) {
		t.Fatalf("redis store: %v %v %v", store, rs, err)
	}
	rs.Close()
	c.ReplayCache = "memory"
	if store, rs, err = newReplayStore(c, local, nil, nil); err != nil || rs != nil || store != gss.ReplayStore(local) {
		t.Fatalf("memory store: %v %v %v", store, rs, err)
	}
	o, _ = parseFlags([]string{"-keytab", "/etc/krb5.keytab", "-replay-cache", "memcached://x:1"})
	if _, err := loadConfig(o); err == nil || !strings.Contains(err.Error(), "replay_cache") {
		t.Fatalf("bad -replay-cache: %v", err)
	}
}

// TestReplayCacheTLSFiles: the replay_cache_tls_* keys reach the Redis
// store, which reads them at once: a missing CA file fails the start (and
// -check-config) naming the file, not the first handshake.
func TestReplayCacheTLSFiles(t *testing.T) {
	c := config.Default()
	c.ReplayCache = "rediss://127.0.0.1:6380/0"
	c.ReplayCacheTLSCA = filepath.Join(t.TempDir(), "missing-ca.pem")
	_, _, err := newReplayStore(c, gss.NewReplayCache(10), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "missing-ca.pem") {
		t.Fatalf("missing CA file: %v", err)
	}
	c.ReplayCacheTLSCA = ""
	c.ReplayCacheTLSCert = filepath.Join(t.TempDir(), "client.pem")
	c.ReplayCacheTLSKey = filepath.Join(t.TempDir(), "client.key")
	if _, _, err = newReplayStore(c, gss.NewReplayCache(10), nil, nil); err == nil || !strings.Contains(err.Error(), "client certificate") {
		t.Fatalf("missing client certificate: %v", err)
	}
}

// TestProxyProtocolFlag: -proxy-protocol-from takes a comma list of CIDR
// networks; a host address without a prefix length is refused.
func TestProxyProtocolFlag(t *testing.T) {
	o, err := parseFlags([]string{"-keytab", "/etc/krb5.keytab", "-proxy-protocol-from", "10.0.0.0/24,2001:db8::/64"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ProxyNetworks(); len(got) != 2 || got[0].String() != "10.0.0.0/24" || got[1].String() != "2001:db8::/64" {
		t.Fatalf("networks %v", got)
	}
	o, _ = parseFlags([]string{"-keytab", "/etc/krb5.keytab", "-proxy-protocol-from", "10.0.0.1"})
	if _, err := loadConfig(o); err == nil || !strings.Contains(err.Error(), "proxy_protocol_from") {
		t.Fatalf("bad -proxy-protocol-from: %v", err)
	}
}

// TestFindWorker: with worker_path empty the worker is found beside the
// acceptor (a source install) or, failing that, in
// ../libexec/gss-acceptor/ (the Debian package: /usr/sbin/gss-acceptor and
// /usr/libexec/gss-acceptor/gss-worker); a configured path is used as is.
func TestFindWorker(t *testing.T) {
	prefix := t.TempDir()
	exe := filepath.Join(prefix, "sbin", "gss-acceptor")
	mkexe := func(p string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	mkexe(exe, 0o755)
	beside := filepath.Join(prefix, "sbin", "gss-worker")
	libexec := filepath.Join(prefix, "libexec", "gss-acceptor", "gss-worker")

	if _, err := findWorker("", exe); err == nil || !strings.Contains(err.Error(), beside) || !strings.Contains(err.Error(), libexec) {
		t.Fatalf("no worker installed: error %v must name %s and %s", err, beside, libexec)
	}
	mkexe(libexec, 0o755)
	if got, err := findWorker("", exe); err != nil || got != libexec {
		t.Fatalf("packaged layout: %q, %v; want %s", got, err, libexec)
	}
	mkexe(beside, 0o755)
	if got, err := findWorker("", exe); err != nil || got != beside {
		t.Fatalf("worker beside the acceptor: %q, %v; want %s (it comes first)", got, err, beside)
	}
	if err := os.Chmod(beside, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := findWorker("", exe); err == nil || !strings.Contains(err.Error(), "not executable") {
		t.Fatalf("non-executable worker beside the acceptor: %v", err)
	}
	other := filepath.Join(prefix, "opt", "w")
	mkexe(other, 0o755)
	if got, err := findWorker(other, exe); err != nil || got != other {
		t.Fatalf("worker_path: %q, %v", got, err)
	}
	if _, err := findWorker(filepath.Join(prefix, "missing"), exe); err == nil || !strings.Contains(err.Error(), "worker executable") {
		t.Fatalf("missing worker_path: %v", err)
	}
}
