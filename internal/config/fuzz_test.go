package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, that every problem it reports is
// a well-formed *Error in line order, and that whatever it accepts is valid,
// clonable and printable.
func FuzzParse(f *testing.F) {
	for _, path := range []string{
		filepath.Join("testdata", "full.yaml"),
		filepath.Join("testdata", "full-exec.yaml"),
		filepath.Join("..", "..", "configs", "gss-acceptor.yaml"),
	} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"workers: 0\nwrokers: 3\n",
		"listen: [\":1\", \"[::1]:2\"]\nidle_timeout: 0\n",
		"max_token_size: 64KiB\nmax_message_size: 99999999999999GiB\n",
		"a: &x [1, 2]\nlisten: *x\n",
		"<<: {workers: 2}\n",
		"workers: 2\n---\nworkers: 3\n",
		"services:\n  - 'a\\/b@R'\n  - host@h.example.com\n",
		"handshake_timeout: 30\nclock_skew: -1s\n",
		"metrics_address: \":9\"\nworker_user: -1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a Config with an error")
			}
			errs := errorsOf(t, err)
			prev := 0
			for _, e := range errs {
				if e.Msg == "" {
					t.Fatalf("empty message in %v", e)
				}
				if e.Line != 0 && (prev == -1 || e.Line < prev) {
					t.Fatalf("errors out of line order: %v", err)
				}
				if e.Line == 0 {
					prev = -1
				} else {
					prev = e.Line
				}
			}
			return
		}
		if c.Keytab == "" {
			c.Keytab = "/k"
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
		if m := c.Redacted(); len(m) != len(keys) {
			t.Fatalf("Redacted has %d keys", len(m))
		}
		if n := c.Clone(); !reflect.DeepEqual(n, c) {
			t.Fatal("Clone differs")
		}
	})
}
