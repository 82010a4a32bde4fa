package redisstore

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/testpki"
)

// TestTLSAndAuth: a real redis-server with only a TLS port, client
// certificates required (tls-auth-clients yes) and a password
// (requirepass). rediss:// with the CA, the client certificate and the
// password works (fresh, then a replay); a wrong password, no client
// certificate, the system roots instead of the CA, another CA, and plain
// redis:// all fail, and the error never shows the password.
func TestTLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	pki := testpki.New(t, dir, "good")
	other := testpki.New(t, dir, "other")
	const password = "s3cret-pw"
	r := startRedisWith(t, true, "--tls-cert-file", pki.ServerCert, "--tls-key-file", pki.ServerKey,
		"--tls-ca-cert-file", pki.CA, "--tls-auth-clients", "yes", "--requirepass", password)
	url := "rediss://:" + password + "@" + r.addr() + "/0"
	ok := Options{URL: url, TLSCAFile: pki.CA, TLSCertFile: pki.ClientCert, TLSKeyFile: pki.ClientKey, Timeout: 2 * time.Second}
	s := newStore(t, ok)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("rediss:// with CA, client certificate and password: %v", err)
	}
	now := time.Now()
	for i, want := range []bool{true, false} {
		fresh, err := s.Insert(t.Context(), key(7), now, now.Add(time.Minute))
		if err != nil || fresh != want {
			t.Fatalf("insert %d over TLS: fresh %v err %v, want %v", i, fresh, err, want)
		}
	}

	bad := func(name string, mod func(o *Options), wantIn string) {
		t.Run(name, func(t *testing.T) {
			o := ok
			mod(&o)
			s := newStore(t, o)
			_, err := s.Insert(t.Context(), key(8), now, now.Add(time.Minute))
			if err == nil {
				t.Fatal("insert succeeded")
			}
			if !strings.Contains(err.Error(), wantIn) {
				t.Errorf("error %q does not mention %q", err, wantIn)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
	bad("wrong password", func(o *Options) { o.URL = "rediss://:nope@" + r.addr() + "/0" }, "WRONGPASS")
	bad("no password", func(o *Options) { o.URL = "rediss://" + r.addr() + "/0" }, "NOAUTH")
	bad("no client certificate", func(o *Options) { o.TLSCertFile, o.TLSKeyFile = "", "" }, "")
	bad("system roots", func(o *Options) { o.TLSCAFile = "" }, "certificate")
	bad("another CA", func(o *Options) { o.TLSCAFile = other.CA }, "certificate")
	bad("plain redis:// to the TLS port", func(o *Options) {
		o.URL = "redis://:" + password + "@" + r.addr() + "/0"
		o.TLSCAFile, o.TLSCertFile, o.TLSKeyFile = "", "", ""
	}, "")

	// Options that cannot work are refused by New, before any connection.
	for _, tt := range []struct {
		name string
		o    Options
		want string
	}{
		{"CA with redis://", Options{URL: "redis://127.0.0.1:1/0", TLSCAFile: pki.CA}, "not rediss://"},
		{"missing CA file", Options{URL: url, TLSCAFile: filepath.Join(dir, "none.pem")}, "no such file"},
		{"CA file of a key", Options{URL: url, TLSCAFile: pki.ClientKey}, "no PEM certificate"},
		{"certificate without key", Options{URL: url, TLSCertFile: pki.ClientCert}, "both or neither"},
		{"key not matching", Options{URL: url, TLSCertFile: pki.ClientCert, TLSKeyFile: other.ClientKey}, "client certificate"},
	} {
		s, err := New(tt.o)
		if err == nil {
			s.Close()
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), password) {
			t.Errorf("%s: error %q, want it to mention %q and not the password", tt.name, err, tt.want)
		}
		if tt.name == "CA with redis://" && !errors.Is(err, errNoTLS) {
			t.Errorf("%s: error %v is not errNoTLS", tt.name, err)
		}
	}
}
