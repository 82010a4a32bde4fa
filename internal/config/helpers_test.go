package config

import (
	"strings"
	"testing"
)

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b string
		want int
	}{
		{"equal", "workers", "workers", 0},
		{"transposition", "wrokers", "workers", 1},
		{"substitution", "workets", "workers", 1},
		{"insertion", "worker", "workers", 1},
		{"deletion", "workerss", "workers", 1},
		{"empty a", "", "abc", 3},
		{"empty b", "abc", "", 3},
		{"unrelated", "colour", "listen", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := editDistance(tc.a, tc.b); got != tc.want {
				t.Fatalf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			if got := editDistance(tc.b, tc.a); got != tc.want {
				t.Fatalf("editDistance(%q, %q) = %d, want %d (symmetry)", tc.b, tc.a, got, tc.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"typo", "handshake_timout", "handshake_timeout"},
		{"case", "LOG_LEVEL", "log_level"},
		{"hyphens", "log-file", "log_file"},
		{"short key one edit", "wrkers", "workers"},
		{"too far", "timeout", ""},
		{"nothing alike", "colour", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := suggest(tc.in, keyNames); got != tc.want {
				t.Fatalf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		want string
	}{
		{"zero", 0, "0B"},
		{"bytes", 1000, "1000B"},
		{"KiB", 65536, "64KiB"},
		{"MiB", 1 << 20, "1MiB"},
		{"GiB", 3 << 30, "3GiB"},
		{"not a multiple", 1<<20 + 1, "1048577B"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := formatSize(tc.n); got != tc.want {
				t.Fatalf("formatSize(%d) = %q, want %q", tc.n, got, tc.want)
			}
			if n, msg := parseSize(tc.want); msg != "" || n != tc.n {
				t.Fatalf("parseSize(%q) = %d, %q; want %d", tc.want, n, msg, tc.n)
			}
		})
	}
}

func TestCheckHostPort(t *testing.T) {
	for _, tc := range []struct {
		name, addr string
		ok         bool
	}{
		{"wildcard", ":4444", true},
		{"ipv4", "192.0.2.1:4444", true},
		{"ipv6", "[2001:db8::1]:4444", true},
		{"ipv6 zone", "[fe80::1%eth0]:4444", true},
		{"hostname", "gss.example.com:4444", true},
		{"hostname trailing dot", "gss.example.com.:4444", true},
		{"port zero", "127.0.0.1:0", true},
		{"unbracketed ipv6", "::1:4444", false},
		{"no port", "gss.example.com", false},
		{"empty port", "gss.example.com:", false},
		{"label with underscore", "a_b.example.com:1", false},
		{"label starting with hyphen", "-a.example.com:1", false},
		{"label too long", strings.Repeat("a", 64) + ".com:1", false},
		{"empty label", "a..b:1", false},
		{"negative port", "h:-1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := checkHostPort(tc.addr)
			if (msg == "") != tc.ok {
				t.Fatalf("checkHostPort(%q) = %q, want ok=%v", tc.addr, msg, tc.ok)
			}
		})
	}
}

func TestCheckPrincipal(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"two components with realm", "host/h.example.com@EXAMPLE.COM", true},
		{"without realm", "host/h.example.com", true},
		{"one component", "gssproxy", true},
		{"one component with realm", "svc@EXAMPLE.COM", true},
		{"lower-case realm without dot", "svc@lab", true},
		{"escaped slash and at", `a\/b\@c/h@R`, true},
		{"slash in realm", "host/h@EX/AMPLE", true},
		{"empty", "", false},
		{"empty realm", "host/h@", false},
		{"empty first component", "/h", false},
		{"host-based form", "HTTP@www.example.com", false},
		{"lone backslash", `host/h\`, false},
		{"two at", "a@B@C", false},
		{"too long", strings.Repeat("a", maxPrincipalLen+1), false},
		{"newline", "a\nb", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := checkPrincipal(tc.in)
			if (msg == "") != tc.ok {
				t.Fatalf("checkPrincipal(%q) = %q, want ok=%v", tc.in, msg, tc.ok)
			}
		})
	}
}

func TestCheckAccount(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"name", "gss-worker", true},
		{"name with dot and underscore", "svc_gss.worker", true},
		{"domain user", "gss@AD.EXAMPLE.COM", true},
		{"root id", "0", true},
		{"largest id", "4294967294", true},
		{"no-change id", "4294967295", false},
		{"id overflow", "99999999999", false},
		{"colon", "a:b", false},
		{"comma", "a,b", false},
		{"tab", "a\tb", false},
		{"leading plus", "+nis", false},
		{"invalid utf8", "a\xffb", false},
		{"too long", strings.Repeat("u", maxAccountLen+1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := checkAccount(tc.in)
			if (msg == "") != tc.ok {
				t.Fatalf("checkAccount(%q) = %q, want ok=%v", tc.in, msg, tc.ok)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.8.9.10", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"localhost", true},
		{"LOCALHOST.", true},
		{"", false},
		{"0.0.0.0", false},
		{"192.0.2.1", false},
		{"localhost.example.com", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			if got := isLoopback(tc.host); got != tc.want {
				t.Fatalf("isLoopback(%q) = %v, want %v", tc.host, got, tc.want)
			}
		})
	}
}
