package redisstore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate, as PEM files in a temporary directory.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
}

func newTestPKI(t *testing.T, dir, name string) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, der []byte) string {
		p := filepath.Join(dir, name+"-"+file)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) (cert, key []byte) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name + " leaf " + strconv.FormatInt(serial, 10)},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return der, kder
	}
	var p testPKI
	p.ca = write("ca.pem", "CERTIFICATE", caDER)
	sc, sk := leaf(2, x509.ExtKeyUsageServerAuth, []net.IP{net.IPv4(127, 0, 0, 1)})
	p.serverCert, p.serverKey = write("server.pem", "CERTIFICATE", sc), write("server.key", "PRIVATE KEY", sk)
	cc, ck := leaf(3, x509.ExtKeyUsageClientAuth, nil)
	p.clientCert, p.clientKey = write("client.pem", "CERTIFICATE", cc), write("client.key", "PRIVATE KEY", ck)
	return p
}

// TestTLSAndAuth: a real redis-server with only a TLS port, client
// certificates required (tls-auth-clients yes) and a password
// (requirepass). rediss:// with the CA, the client certificate and the
// password works (fresh, then a replay); a wrong password, no client
// certificate, the system roots instead of the CA, another CA, and plain
// redis:// all fail, and the error never shows the password.
func TestTLSAndAuth(t *testing.T) {
	dir := t.TempDir()
	pki := newTestPKI(t, dir, "good")
	other := newTestPKI(t, dir, "other")
	const password = "s3cret-pw"
	r := startRedisWith(t, true, "--tls-cert-file", pki.serverCert, "--tls-key-file", pki.serverKey,
		"--tls-ca-cert-file", pki.ca, "--tls-auth-clients", "yes", "--requirepass", password)
	url := "rediss://:" + password + "@" + r.addr() + "/0"
	ok := Options{URL: url, TLSCAFile: pki.ca, TLSCertFile: pki.clientCert, TLSKeyFile: pki.clientKey, Timeout: 2 * time.Second}
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
	bad("another CA", func(o *Options) { o.TLSCAFile = other.ca }, "certificate")
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
		{"CA with redis://", Options{URL: "redis://127.0.0.1:1/0", TLSCAFile: pki.ca}, "not rediss://"},
		{"missing CA file", Options{URL: url, TLSCAFile: filepath.Join(dir, "none.pem")}, "no such file"},
		{"CA file of a key", Options{URL: url, TLSCAFile: pki.clientKey}, "no PEM certificate"},
		{"certificate without key", Options{URL: url, TLSCertFile: pki.clientCert}, "both or neither"},
		{"key not matching", Options{URL: url, TLSCertFile: pki.clientCert, TLSKeyFile: other.clientKey}, "client certificate"},
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
