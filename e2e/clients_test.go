package e2e

// The client interoperability matrix: real clients of three GSS-API
// stacks (MIT's gss-client, a Python client on MIT's library, a C client
// on Heimdal's library) against the real daemon, with raw krb5 and SPNEGO,
// the old v1 framing, delegated credentials and channel bindings.
// docs/clients.md, "Interoperability", tabulates it.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
)

// pythonPath is Debian's interpreter, which has python3-gssapi.
const pythonPath = "/usr/bin/python3"

// Mechanism OIDs for --neg-mechs.
const (
	oidKRB5   = "1.2.840.113554.1.2.2"
	oidKRB5MS = "1.2.840.48018.1.2.2"
	oidIAKERB = "1.3.6.1.5.2.5"
)

// requireTool skips the test when a client is missing, or fails it when
// the CI environment variable is set: CI must run the whole matrix.
func requireTool(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s is not available: %v", what, err)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + "; CI is set, so this is fatal")
	}
	t.Skip("skipping: " + msg)
}

// pyClient runs testdata/gss_sample_client.py against the acceptor.
func pyClient(t testing.TB, r *testrealm.Realm, port int, env []string, args ...string) (string, error) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "gss_sample_client.py"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{script}, args...)
	full = append(full, "127.0.0.1", strconv.Itoa(port), service, "hello from python")
	cmd := exec.CommandContext(ctx, pythonPath, full...)
	cmd.Env = append(r.Env(), env...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func requirePython(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, pythonPath, "-c", "import gssapi, gssapi.raw").CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%w: %s (install python3-gssapi)", err, strings.TrimSpace(string(out)))
	}
	requireTool(t, pythonPath+" with the gssapi module", err)
}

// heimdalClient is the Heimdal-linked client, built once per test binary.
var heimdalClient struct {
	once sync.Once
	path string
	err  error
}

// buildHeimdalClient compiles testdata/heimdal/gss_sample_client.c against
// Heimdal's libgssapi (Debian heimdal-multidev), into binDir.
func buildHeimdalClient() (string, error) {
	heimdalClient.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		flags := func(arg string) ([]string, error) {
			out, err := exec.CommandContext(ctx, "krb5-config.heimdal", arg, "gssapi").Output()
			if err != nil {
				return nil, fmt.Errorf("krb5-config.heimdal %s gssapi: %w (install heimdal-multidev)", arg, err)
			}
			return strings.Fields(string(out)), nil
		}
		cflags, err := flags("--cflags")
		if err != nil {
			heimdalClient.err = err
			return
		}
		libs, err := flags("--libs")
		if err != nil {
			heimdalClient.err = err
			return
		}
		path := filepath.Join(binDir, "heimdal-gss-client")
		args := append(append(cflags, "-o", path, filepath.Join("testdata", "heimdal", "gss_sample_client.c")), libs...)
		// The -L directory is not on the loader's path; -rpath keeps the
		// binary on Heimdal's library wherever it runs.
		for _, l := range libs {
			if dir, ok := strings.CutPrefix(l, "-L"); ok {
				args = append(args, "-Wl,-rpath,"+dir)
			}
		}
		if out, err := exec.CommandContext(ctx, "cc", args...).CombinedOutput(); err != nil {
			heimdalClient.err = fmt.Errorf("cc %s: %w\n%s", strings.Join(args, " "), err, out)
			return
		}
		heimdalClient.path = path
	})
	return heimdalClient.path, heimdalClient.err
}

// clientCase is one cell of the matrix.
type clientCase struct {
	name     string
	client   string // "mit", "python" or "heimdal"
	args     []string
	verified int  // "Signature verified." lines expected
	fails    bool // the client must fail
}

// runClient runs one client case and returns its output and error.
func runClient(t *testing.T, r *testrealm.Realm, port int, env []string, tc clientCase) (string, error) {
	t.Helper()
	switch tc.client {
	case "mit":
		args := append(append([]string{}, tc.args...), "127.0.0.1", service, "hello from MIT")
		return mitClient(t, r, port, env, args...)
	case "python":
		return pyClient(t, r, port, env, tc.args...)
	case "heimdal":
		path, err := buildHeimdalClient()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		args := append(append([]string{}, tc.args...), "127.0.0.1", strconv.Itoa(port), service, "hello from Heimdal")
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Env = append(r.Env(), env...)
		cmd.WaitDelay = time.Second
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Fatalf("unknown client %q", tc.client)
	return "", nil
}

// checkClient runs tc and checks its outcome.
func checkClient(t *testing.T, r *testrealm.Realm, a *acceptor, env []string, tc clientCase) string {
	t.Helper()
	out, err := runClient(t, r, a.port, env, tc)
	if tc.fails {
		if err == nil {
			t.Fatalf("%s client %v succeeded, want a failure\n%s", tc.client, tc.args, out)
		}
		return out
	}
	if err != nil {
		t.Fatalf("%s client %v: %v\n%s\nacceptor log:\n%s", tc.client, tc.args, err, out, a.logs)
	}
	if got := strings.Count(out, "Signature verified."); got != tc.verified {
		t.Errorf("%d \"Signature verified.\" lines, want %d\n%s", got, tc.verified, out)
	}
	return out
}

// TestClientMatrix runs every client with every mechanism and framing it
// supports against one acceptor.
func TestClientMatrix(t *testing.T) {
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, nil)
	cases := []clientCase{
		{name: "mit/krb5", client: "mit", args: []string{"-krb5", "-seq", "-mcount", "3"}, verified: 3},
		{name: "mit/spnego", client: "mit", args: []string{"-spnego", "-mcount", "3"}, verified: 3},
		{name: "mit/spnego seq", client: "mit", args: []string{"-spnego", "-seq", "-mcount", "20"}, verified: 20},
		{name: "mit/spnego nomutual", client: "mit", args: []string{"-spnego", "-nomutual", "-seq", "-mcount", "3"}, verified: 3},
		{name: "mit/spnego ccount", client: "mit", args: []string{"-spnego", "-ccount", "5"}, verified: 5},
		{name: "mit/spnego restricted to krb5", client: "mit", args: []string{"-spnego", "-mech", oidKRB5, "-mcount", "2"}, verified: 2},
		{name: "mit/v1", client: "mit", args: []string{"-v1", "-mcount", "5"}, verified: 5},
		{name: "mit/v1 seq", client: "mit", args: []string{"-v1", "-seq", "-mcount", "5"}, verified: 5},
		{name: "mit/v1 spnego", client: "mit", args: []string{"-v1", "-spnego", "-mcount", "5"}, verified: 5},
		{name: "python/krb5", client: "python", args: []string{"--mech", "krb5", "--seq", "--mcount", "3"}, verified: 3},
		{name: "python/krb5 nomutual", client: "python", args: []string{"--mech", "krb5", "--nomutual", "--mcount", "3"}, verified: 3},
		{name: "python/krb5 v1", client: "python", args: []string{"--mech", "krb5", "--v1", "--mcount", "3"}, verified: 3},
		{name: "python/spnego", client: "python", args: []string{"--mech", "spnego", "--seq", "--mcount", "3"}, verified: 3},
		{name: "python/spnego nomutual", client: "python", args: []string{"--mech", "spnego", "--nomutual", "--mcount", "3"}, verified: 3},
		{name: "heimdal/krb5", client: "heimdal", args: []string{"-seq", "-mcount", "3"}, verified: 3},
		{name: "heimdal/krb5 nomutual", client: "heimdal", args: []string{"-nomutual", "-mcount", "3"}, verified: 3},
		{name: "heimdal/spnego", client: "heimdal", args: []string{"-spnego", "-seq", "-mcount", "3"}, verified: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			switch tc.client {
			case "python":
				requirePython(t)
			case "heimdal":
				_, err := buildHeimdalClient()
				requireTool(t, "a Heimdal GSS-API build environment", err)
			}
			checkClient(t, r, a, nil, tc)
		})
	}
}

// TestSPNEGONegotiation drives the SPNEGO cases no packaged client
// produces: MIT's and Heimdal's SPNEGO offer Kerberos alone, so the Python
// client builds the negotiation tokens itself around MIT's krb5 mechanism
// (--mech spnego-raw). It checks the negotiation's shape as the client saw
// it: the supportedMech answered, the number of initiator tokens, and which
// mechListMICs were exchanged (both verified by MIT's krb5 with the
// context's sequence numbers, which the messages that follow then
// continue).
func TestSPNEGONegotiation(t *testing.T) {
	requirePython(t)
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, nil)
	const ntlm = "1.3.6.1.4.1.311.2.2.10"
	for _, tc := range []struct {
		name  string
		args  []string
		want  string // the client's "spnego ..." line
		fails bool
	}{
		{"krb5 alone", []string{"--offer", oidKRB5},
			"spnego supportedMech=" + oidKRB5 + " legs=1 acceptor-mic=0 initiator-mic=0", false},
		{"krb5 then NTLM", []string{"--offer", oidKRB5 + "," + ntlm},
			"spnego supportedMech=" + oidKRB5 + " legs=2 acceptor-mic=1 initiator-mic=1", false},
		{"krb5 then NTLM nomutual", []string{"--offer", oidKRB5 + "," + ntlm, "--nomutual"},
			"spnego supportedMech=" + oidKRB5 + " legs=2 acceptor-mic=1 initiator-mic=1", false},
		{"MS OID alone", []string{"--offer", oidKRB5MS},
			"spnego supportedMech=" + oidKRB5MS + " legs=1 acceptor-mic=0 initiator-mic=0", false},
		{"MS OID then krb5", []string{"--offer", oidKRB5MS + "," + oidKRB5},
			"spnego supportedMech=" + oidKRB5MS + " legs=2 acceptor-mic=1 initiator-mic=1", false},
		{"NTLM first: counter-proposal", []string{"--offer", ntlm + "," + oidKRB5},
			"spnego supportedMech=" + oidKRB5 + " legs=3 acceptor-mic=1 initiator-mic=1", false},
		{"no optimistic token", []string{"--offer", oidKRB5, "--no-optimistic"},
			"spnego supportedMech=" + oidKRB5 + " legs=2 acceptor-mic=0 initiator-mic=0", false},
		{"IAKERB then NTLM: nothing in common", []string{"--offer", oidIAKERB + "," + ntlm}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--mech", "spnego-raw", "--seq", "--mcount", "3"}, tc.args...)
			out := checkClient(t, r, a, nil, clientCase{client: "python", args: args, verified: 3, fails: tc.fails})
			if tc.fails {
				a.logs.wait(t, 10*time.Second, 1, "no common mechanism", func(m map[string]any) bool {
					s, _ := m["error"].(string)
					return m["msg"] == "handshake failed; connection closed" && strings.Contains(s, "none of them Kerberos 5")
				})
				return
			}
			if !strings.Contains(out, tc.want+"\n") {
				t.Errorf("negotiation: want %q in\n%s", tc.want, out)
			}
		})
	}
}

// handedOffFlags returns the flags logged for the handoff of the n-th
// session (counting from 1) once it is logged.
func handedOffFlags(t *testing.T, a *acceptor, n int) string {
	t.Helper()
	lines := a.logs.wait(t, 10*time.Second, n, "session handed off", msgIs("session handed off"))
	f, _ := lines[n-1]["flags"].(string)
	return f
}

// TestDelegation checks delegated credentials end to end: with
// allow_delegation the credential travels to the worker, which logs whose
// it is; without it the context has no DELEG flag and nothing is logged.
func TestDelegation(t *testing.T) {
	r := testrealm.Shared(t)
	delegatedMsg := "delegated credential for " + r.UserPrincipal + " arrived"
	isDelegatedLine := func(m map[string]any) bool {
		s, _ := m["msg"].(string)
		return strings.HasPrefix(s, "delegated credential")
	}
	clients := []clientCase{
		{name: "mit krb5", client: "mit", args: []string{"-d", "-mcount", "2"}, verified: 2},
		{name: "mit spnego", client: "mit", args: []string{"-d", "-spnego", "-mcount", "2"}, verified: 2},
		{name: "python spnego", client: "python", args: []string{"--delegate", "--mech", "spnego", "--mcount", "2"}, verified: 2},
	}
	t.Run("allowed", func(t *testing.T) {
		a := startAcceptor(t, r, acceptorOptions{"allow_delegation": "true"})
		for i, tc := range clients {
			t.Run(tc.name, func(t *testing.T) {
				if tc.client == "python" {
					requirePython(t)
				}
				checkClient(t, r, a, nil, tc)
				if f := handedOffFlags(t, a, i+1); !strings.Contains(f, "DELEG") {
					t.Errorf("handoff flags %q lack DELEG", f)
				}
				lines := a.logs.wait(t, 10*time.Second, i+1, delegatedMsg, msgIs(delegatedMsg))
				if got := lines[i]["delegated_client"]; got != r.UserPrincipal {
					t.Errorf("delegated_client = %v, want %s", got, r.UserPrincipal)
				}
			})
		}
	})
	t.Run("not allowed", func(t *testing.T) {
		a := startAcceptor(t, r, nil)
		for i, tc := range clients {
			t.Run(tc.name, func(t *testing.T) {
				if tc.client == "python" {
					requirePython(t)
				}
				checkClient(t, r, a, nil, tc)
				if f := handedOffFlags(t, a, i+1); strings.Contains(f, "DELEG") {
					t.Errorf("handoff flags %q have DELEG with allow_delegation off", f)
				}
				// The session has ended (its MICs verified and the client
				// exited), so the worker would have logged by now.
				a.logs.wait(t, 10*time.Second, i+1, "session ended", msgIs("session ended"))
				if got := a.logs.find(isDelegatedLine); len(got) != 0 {
					t.Errorf("delegation logged with allow_delegation off: %v", got)
				}
			})
		}
	})
}

// TestChannelBindings checks channel_bindings with a client that sends
// bindings (python-gssapi): matching bindings establish a CHANNEL_BOUND
// context with krb5 and SPNEGO; different or missing ones are refused;
// without the setting, a client's bindings are ignored.
func TestChannelBindings(t *testing.T) {
	requirePython(t)
	r := testrealm.Shared(t)
	const binding = "tls-server-end-point:e2e-binding"
	t.Run("configured", func(t *testing.T) {
		a := startAcceptor(t, r, acceptorOptions{"channel_bindings": strconv.Quote(binding)})
		handed, refused := 0, 0
		for _, tc := range []clientCase{
			{name: "python krb5 matching", client: "python", args: []string{"--mech", "krb5", "--cb", binding}, verified: 1},
			{name: "python spnego matching", client: "python", args: []string{"--mech", "spnego", "--cb", binding}, verified: 1},
			{name: "python krb5 mismatching", client: "python", args: []string{"--mech", "krb5", "--cb", binding + "x"}, fails: true},
			{name: "python spnego mismatching", client: "python", args: []string{"--mech", "spnego", "--cb", "other"}, fails: true},
			{name: "python without bindings", client: "python", args: []string{"--mech", "krb5"}, fails: true},
			{name: "mit without bindings", client: "mit", args: []string{"-spnego"}, fails: true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				checkClient(t, r, a, nil, tc)
				if tc.fails {
					refused++
					a.logs.wait(t, 10*time.Second, refused, "bindings refusal", func(m map[string]any) bool {
						s, _ := m["error"].(string)
						return m["msg"] == "handshake failed; connection closed" && strings.Contains(s, "channel bindings")
					})
					return
				}
				handed++
				if f := handedOffFlags(t, a, handed); !strings.Contains(f, "CHANNEL_BOUND") {
					t.Errorf("handoff flags %q lack CHANNEL_BOUND", f)
				}
			})
		}
		if n := len(a.logs.find(msgIs("session handed off"))); n != 2 {
			t.Errorf("%d sessions handed off, want the 2 with matching bindings", n)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		a := startAcceptor(t, r, nil)
		checkClient(t, r, a, nil, clientCase{client: "python", args: []string{"--mech", "spnego", "--cb", binding}, verified: 1})
		if f := handedOffFlags(t, a, 1); strings.Contains(f, "CHANNEL_BOUND") {
			t.Errorf("handoff flags %q have CHANNEL_BOUND without channel_bindings", f)
		}
	})
}
