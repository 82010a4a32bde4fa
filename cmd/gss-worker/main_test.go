package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// The exec backend's flags are refused with another backend, as the
// acceptor's configuration refuses exec_path, exec_args and
// exec_max_per_worker.
func TestExecFlagsOnlyWithExec(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		backend string
		wantErr string
	}{
		{[]string{"-exec", "/bin/cat"}, "exec", ""},
		{[]string{"-exec", "/bin/cat", "-exec-arg=-u", "-exec-max-per-worker", "3"}, "exec", ""},
		{nil, "sample", ""},
		{nil, "tcp:127.0.0.1:1", ""},
		{[]string{"-exec", "/bin/cat"}, "sample", "-exec: only with -backend exec (backend is sample)"},
		{[]string{"-exec-arg=x", "-exec-max-per-worker", "2"}, "tcp:127.0.0.1:1", "-exec-arg, -exec-max-per-worker: only with -backend exec"},
	} {
		fs := flag.NewFlagSet("gss-worker", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.String("exec", "", "")
		fs.Func("exec-arg", "", func(string) error { return nil })
		fs.Int("exec-max-per-worker", 0, "")
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		err := execFlagsOnlyWithExec(fs, tt.backend)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q with backend %s: %v, want no error", tt.args, tt.backend, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q with backend %s: %v, want %q", tt.args, tt.backend, err, tt.wantErr)
		}
	}
}
