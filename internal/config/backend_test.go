package config

import (
	"strings"
	"testing"
)

func TestBackendKeys(t *testing.T) {
	for _, tc := range []struct {
		yaml    string
		wantErr string
		check   func(c *Config) bool
	}{
		{yaml: "backend: sample", check: func(c *Config) bool { return c.Backend == "sample" && !c.StreamIntegrityAllowed }},
		{yaml: "backend: tcp:127.0.0.1:6379\nbackend_proxy_protocol: v2", check: func(c *Config) bool { return c.BackendProxyProtocol == "v2" }},
		{yaml: "backend: unix:/run/redis.sock", check: func(c *Config) bool { return c.Backend == "unix:/run/redis.sock" }},
		{yaml: "stream_confidentiality: false", check: func(c *Config) bool { return c.StreamIntegrityAllowed }},
		{yaml: "stream_confidentiality: true", check: func(c *Config) bool { return !c.StreamIntegrityAllowed }},
		{yaml: "backend: redis", wantErr: "line 2: backend: must be sample, exec, tcp:HOST:PORT or unix:/PATH"},
		{yaml: "backend: tcp:6379", wantErr: "backend: tcp:HOST:PORT"},
		{yaml: "backend: tcp::6379", wantErr: "needs a host"},
		{yaml: "backend: unix:run/x.sock", wantErr: "absolute path"},
		{yaml: "backend_proxy_protocol: v1", wantErr: "backend_proxy_protocol: must be one of"},
		{yaml: "backend_proxy_protocol: v2", wantErr: "needs a proxy backend"},
		{yaml: "backend_connect_timeout: 1h", wantErr: "backend_connect_timeout"},
	} {
		c, err := Parse([]byte("keytab: /etc/krb5.keytab\n"+tc.yaml+"\n"), "t.yaml")
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !tc.check(c) {
			t.Errorf("%q: %+v, %v", tc.yaml, c, err)
		}
	}
}
