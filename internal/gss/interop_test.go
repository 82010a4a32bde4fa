package gss

// Interoperability with MIT krb5's GSS-API library, in a real throwaway
// realm (internal/testrealm). MIT's side is testdata/interop/peer.py, run
// with Debian's /usr/bin/python3 and its python3-gssapi module; the test
// and the script exchange base64 tokens line by line.
//
// For every AES session-key enctype (forced through the client's
// krb5.conf), with and without mutual authentication, and always with
// REPLAY|SEQUENCE:
//
//   - MIT initiator -> our Acceptor
//   - our Initiator (service ticket from a gokrb5 client) -> MIT acceptor
//
// and then, on the established context: sealed and integrity-only Wrap
// both ways, MIC both ways, over several messages so that both sequence
// windows are exercised, an Export/Import of our side in the middle (the
// listener-to-worker handoff), replays, tampering and reordering.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"

	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
)

// pythonPath is Debian's interpreter: python3-gssapi is installed for it,
// and a python3 earlier on PATH may be another interpreter without it.
const pythonPath = "/usr/bin/python3"

// Bounds on the MIT peer process.
const (
	peerLifetime    = 2 * time.Minute  // whole process
	peerCallTimeout = 20 * time.Second // one request/reply
)

// requirePythonGSSAPI skips (or, with CI set, fails) when MIT's GSS-API
// library is not reachable from Python.
func requirePythonGSSAPI(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, pythonPath, "-c", "import gssapi, gssapi.raw").CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("%s with the gssapi module is not available (install python3-gssapi): %v: %s", pythonPath, err, out)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip("skipping: " + msg)
}

// mitPeer is one running testdata/interop/peer.py.
type mitPeer struct {
	t      *testing.T
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdin  io.WriteCloser
	lines  chan string // reply lines; closed at EOF
	stderr *lockedBuffer
	once   sync.Once
}

// lockedBuffer collects the peer's stderr for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startMITPeer runs peer.py with env and args and stops it when t ends.
func startMITPeer(t *testing.T, env []string, args ...string) *mitPeer {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "interop", "peer.py"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), peerLifetime)
	cmd := exec.CommandContext(ctx, pythonPath, append([]string{script}, args...)...)
	cmd.Env = env
	cmd.WaitDelay = 2 * time.Second
	p := &mitPeer{t: t, cmd: cmd, cancel: cancel, lines: make(chan string, 1), stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(p.stop)
	return p
}

// stop asks the peer to quit, then waits for it (the context kills it if
// it hangs).
func (p *mitPeer) stop() {
	p.once.Do(func() {
		io.WriteString(p.stdin, "QUIT\n")
		p.stdin.Close()
		done := make(chan error, 1)
		go func() { done <- p.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				p.t.Errorf("MIT peer exited: %v\n%s", err, p.stderr.String())
			}
		case <-time.After(10 * time.Second):
			p.cancel()
			<-done
			p.t.Error("MIT peer did not quit; killed")
		}
		p.cancel()
	})
}

// peerError is an ERR reply: MIT's GSS-API call failed.
type peerError string

func (e peerError) Error() string { return "MIT: " + string(e) }

// call sends one request and returns the reply's fields after "OK", or a
// peerError for an ERR reply. A dead or silent peer fails the test.
func (p *mitPeer) call(format string, args ...any) ([]string, error) {
	p.t.Helper()
	req := fmt.Sprintf(format, args...)
	if _, err := io.WriteString(p.stdin, req+"\n"); err != nil {
		p.t.Fatalf("writing to MIT peer: %v\n%s", err, p.stderr.String())
	}
	select {
	case line, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("MIT peer closed its output after %.40q\n%s", req, p.stderr.String())
		}
		if rest, isErr := strings.CutPrefix(line, "ERR "); isErr {
			return nil, peerError(rest)
		}
		rest, isOK := strings.CutPrefix(line, "OK")
		if !isOK {
			p.t.Fatalf("MIT peer: unexpected reply %q", line)
		}
		return strings.Fields(rest), nil
	case <-time.After(peerCallTimeout):
		p.t.Fatalf("MIT peer: no reply to %.40q within %v\n%s", req, peerCallTimeout, p.stderr.String())
	}
	return nil, nil
}

// mustCall is call for requests that must succeed, with n reply fields.
func (p *mitPeer) mustCall(n int, format string, args ...any) []string {
	p.t.Helper()
	f, err := p.call(format, args...)
	if err != nil {
		p.t.Fatalf("%.40q: %v", fmt.Sprintf(format, args...), err)
	}
	if len(f) != n {
		p.t.Fatalf("%.40q: reply %q, want %d fields", fmt.Sprintf(format, args...), f, n)
	}
	return f
}

// step passes a context token (nil for none) and returns MIT's output
// token and whether its side is complete.
func (p *mitPeer) step(tok []byte) ([]byte, bool) {
	p.t.Helper()
	f := p.mustCall(2, "STEP %s", b64(tok))
	return unb64(p.t, f[0]), f[1] == "1"
}

// peerInfo is MIT's view of the established context.
type peerInfo struct {
	flags     Flags
	enctype   int32
	initiator string
	acceptor  string
	local     bool
}

func (p *mitPeer) info() peerInfo {
	p.t.Helper()
	var pi peerInfo
	for _, kv := range p.mustCall(5, "INFO") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "flags":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				p.t.Fatalf("INFO flags %q", v)
			}
			pi.flags = Flags(n)
		case "enctype":
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				p.t.Fatalf("INFO enctype %q", v)
			}
			pi.enctype = int32(n)
		case "initiator":
			pi.initiator = v
		case "acceptor":
			pi.acceptor = v
		case "local":
			pi.local = v == "1"
		}
	}
	return pi
}

// wrap has MIT wrap msg and returns the token.
func (p *mitPeer) wrap(msg []byte, conf bool) []byte {
	p.t.Helper()
	f := p.mustCall(2, "WRAP %s %s", bit(conf), b64(msg))
	if f[1] != bit(conf) {
		p.t.Fatalf("MIT wrap applied conf=%s, asked %s", f[1], bit(conf))
	}
	return unb64(p.t, f[0])
}

// unwrap has MIT unwrap tok.
func (p *mitPeer) unwrap(tok []byte) (msg []byte, conf bool, err error) {
	p.t.Helper()
	f, err := p.call("UNWRAP %s", b64(tok))
	if err != nil {
		return nil, false, err
	}
	if len(f) != 2 {
		p.t.Fatalf("UNWRAP reply %q", f)
	}
	return unb64(p.t, f[0]), f[1] == "1", nil
}

// mic has MIT compute a MIC of msg.
func (p *mitPeer) mic(msg []byte) []byte {
	p.t.Helper()
	return unb64(p.t, p.mustCall(1, "MIC %s", b64(msg))[0])
}

// verify has MIT verify a MIC.
func (p *mitPeer) verify(msg, tok []byte) error {
	p.t.Helper()
	_, err := p.call("VERIFY %s %s", b64(msg), b64(tok))
	return err
}

func b64(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return base64.StdEncoding.EncodeToString(b)
}

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	if s == "-" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("bad base64 from MIT peer: %v", err)
	}
	return b
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// interopMessages are the payloads of successive rounds: empty, shorter
// than, equal to and just over one AES block, and large.
var interopMessages = [][]byte{
	[]byte("first message"),
	{},
	[]byte("x"),
	bytes.Repeat([]byte{0xa5}, 16),
	[]byte("seventeen bytes!!"),
	bytes.Repeat([]byte("0123456789abcdef"), 4096+1), // 64 KiB + 16
}

func TestInteropMIT(t *testing.T) {
	requirePythonGSSAPI(t)
	r := testrealm.New(t)
	kt, err := keytab.Load(r.ServiceKeytab)
	if err != nil {
		t.Fatal(err)
	}
	for _, etype := range []int32{17, 18, 19, 20} {
		conf, err := r.ClientKrb5Conf(etype)
		if err != nil {
			t.Fatal(err)
		}
		ccache := "FILE:" + filepath.Join(r.Dir, fmt.Sprintf("alice-%d.ccache", etype))
		if err := r.KinitWith(conf, ccache); err != nil {
			t.Fatal(err)
		}
		cl, err := r.GoClient(conf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Destroy)

		for _, mutual := range []bool{true, false} {
			flags := FlagReplay | FlagSequence
			if mutual {
				flags |= FlagMutual
			}
			name := fmt.Sprintf("etype=%d/mutual=%v", etype, mutual)

			t.Run("mit-initiator/"+name, func(t *testing.T) {
				peer := startMITPeer(t, append(r.Env(), "KRB5_CONFIG="+conf, "KRB5CCNAME="+ccache),
					"initiate", "--target", "host@localhost", "--flags", strconv.Itoa(int(flags)))
				tok, complete := peer.step(nil)
				if complete == mutual {
					t.Fatalf("MIT initiator complete=%v after its first token, want %v", complete, !mutual)
				}
				acc, err := NewAcceptor(AcceptorConfig{Keytab: kt, Services: []string{r.ServicePrincipal}})
				if err != nil {
					t.Fatal(err)
				}
				ctx, reply, err := acc.Accept(tok)
				if err != nil {
					t.Fatalf("Accept of MIT's AP-REQ: %v", err)
				}
				t.Cleanup(ctx.Delete)
				if mutual {
					if len(reply) == 0 {
						t.Fatal("no AP-REP for a mutual request")
					}
					out, complete := peer.step(reply)
					if !complete || len(out) != 0 {
						t.Fatalf("MIT initiator after our AP-REP: complete=%v, output %d bytes", complete, len(out))
					}
				} else if len(reply) != 0 {
					// MIT's gss-client would not read it: the stream
					// would desynchronise.
					t.Fatalf("acceptor sent %d bytes without mutual authentication", len(reply))
				}

				checkContext(t, ctx, false, flags, etype, r)
				pi := peer.info()
				checkPeerInfo(t, pi, true, flags, etype, r)
				exchange(t, ctx, peer)
			})

			t.Run("mit-acceptor/"+name, func(t *testing.T) {
				tkt, key, err := cl.GetServiceTicket("host/localhost")
				if err != nil {
					t.Fatal(err)
				}
				if key.KeyType != etype {
					t.Fatalf("session key enctype %d, want %d", key.KeyType, etype)
				}
				// A client learns the ticket's end time from the KDC reply,
				// which gokrb5 keeps to itself; the service key reads it
				// from the ticket. Without it the context's expiry is
				// unknown and it cannot be exported.
				endTime := ticketEndTime(t, tkt, kt)
				in, err := NewInitiator(cl.Credentials.CName(), cl.Credentials.Domain(), tkt, key,
					InitiatorConfig{Flags: flags, TicketEndTime: endTime})
				if err != nil {
					t.Fatal(err)
				}
				peer := startMITPeer(t, append(r.Env(), "KRB5RCACHETYPE=none"), "accept", "--keytab", r.ServiceKeytab)
				tok, err := in.InitialToken()
				if err != nil {
					t.Fatal(err)
				}
				reply, complete := peer.step(tok)
				if !complete {
					t.Fatal("MIT acceptor not complete after the AP-REQ")
				}
				var ctx *Context
				if mutual {
					if len(reply) == 0 {
						t.Fatal("MIT sent no AP-REP for a mutual request")
					}
					ctx, err = in.Complete(reply)
				} else {
					if len(reply) != 0 {
						t.Fatalf("MIT replied %d bytes without mutual authentication", len(reply))
					}
					ctx, err = in.Context()
				}
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(ctx.Delete)

				checkContext(t, ctx, true, flags, etype, r)
				if !ctx.Expiry().Equal(endTime) {
					t.Errorf("Expiry %v, want the ticket's end time %v", ctx.Expiry(), endTime)
				}
				pi := peer.info()
				checkPeerInfo(t, pi, false, flags, etype, r)
				exchange(t, ctx, peer)
			})
		}
	}
}

// ticketEndTime decrypts a copy of tkt with the service keytab and returns
// its end time.
func ticketEndTime(t *testing.T, tkt messages.Ticket, kt *keytab.Keytab) time.Time {
	t.Helper()
	if err := tkt.DecryptEncPart(kt, nil); err != nil {
		t.Fatalf("decrypting the service ticket: %v", err)
	}
	end := tkt.DecryptedEncPart.EndTime
	if !end.After(time.Now()) {
		t.Fatalf("service ticket end time %v is not in the future", end)
	}
	return end
}

// checkContext checks our side of an established context.
func checkContext(t *testing.T, ctx *Context, initiator bool, req Flags, etype int32, r *testrealm.Realm) {
	t.Helper()
	if ctx.IsInitiator() != initiator {
		t.Errorf("IsInitiator = %v", ctx.IsInitiator())
	}
	if got := ctx.Flags() & (FlagMutual | FlagReplay | FlagSequence); got != req {
		t.Errorf("flags %v, want %v", got, req)
	}
	if ctx.Flags()&(FlagConf|FlagInteg) != FlagConf|FlagInteg {
		t.Errorf("flags %v lack CONF|INTEG", ctx.Flags())
	}
	if ctx.InitiatorName() != r.UserPrincipal || ctx.AcceptorName() != r.ServicePrincipal {
		t.Errorf("names %q -> %q, want %q -> %q", ctx.InitiatorName(), ctx.AcceptorName(), r.UserPrincipal, r.ServicePrincipal)
	}
	if ctx.Enctype() != etype {
		t.Errorf("per-message enctype %d, want %d", ctx.Enctype(), etype)
	}
	// RFC 4121 §4.1: the acceptor subkey travels in the AP-REP, so there
	// is one exactly when mutual authentication was done.
	if mutual := req&FlagMutual != 0; ctx.HaveAcceptorSubkey() != mutual {
		t.Errorf("HaveAcceptorSubkey = %v with mutual = %v", ctx.HaveAcceptorSubkey(), mutual)
	}
}

// checkPeerInfo checks MIT's side of the same context.
func checkPeerInfo(t *testing.T, pi peerInfo, initiator bool, req Flags, etype int32, r *testrealm.Realm) {
	t.Helper()
	if pi.local != initiator {
		t.Errorf("MIT locally_initiated = %v", pi.local)
	}
	if got := pi.flags & (FlagMutual | FlagReplay | FlagSequence); got != req {
		t.Errorf("MIT flags %v, want %v", got, req)
	}
	if pi.enctype != etype {
		t.Errorf("MIT per-message enctype %d, want %d", pi.enctype, etype)
	}
	if pi.initiator != r.UserPrincipal || pi.acceptor != r.ServicePrincipal {
		t.Errorf("MIT names %q -> %q", pi.initiator, pi.acceptor)
	}
}

// exchange runs the per-message matrix between our context and MIT's,
// exports and re-imports ours half way, then checks replay, tampering and
// ordering in both directions.
func exchange(t *testing.T, ctx *Context, peer *mitPeer) {
	t.Helper()
	for i, msg := range interopMessages {
		if i == len(interopMessages)/2 {
			ctx = handOff(t, ctx)
		}
		round(t, i, ctx, peer, msg)
	}

	// A token from MIT delivered twice: the second is a duplicate.
	msg := []byte("replayed to us")
	tok := peer.wrap(msg, true)
	if got, _, err := ctx.Unwrap(tok); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Unwrap: %v", err)
	}
	if _, _, err := ctx.Unwrap(tok); !errors.Is(err, StatusDuplicateToken) {
		t.Errorf("replayed MIT token: %v, want GSS_S_DUPLICATE_TOKEN", err)
	}
	// Ours delivered twice to MIT.
	tok, err := ctx.Wrap([]byte("replayed to MIT"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := peer.unwrap(tok); err != nil {
		t.Fatalf("MIT unwrap: %v", err)
	}
	if _, _, err := peer.unwrap(tok); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("MIT accepted our token twice: %v", err)
	}

	// Tampered tokens fail the MAC and do not consume their sequence
	// number: the genuine token is still accepted afterwards.
	msg = []byte("tampered in transit")
	tok = peer.wrap(msg, true)
	bad := bytes.Clone(tok)
	bad[len(bad)-1] ^= 1
	if _, _, err := ctx.Unwrap(bad); !errors.Is(err, StatusBadSig) {
		t.Errorf("tampered MIT token: %v, want GSS_S_BAD_SIG", err)
	}
	if got, _, err := ctx.Unwrap(tok); err != nil || !bytes.Equal(got, msg) {
		t.Errorf("genuine MIT token after a tampered copy: %v", err)
	}
	mic, err := ctx.GetMIC(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := peer.verify(append([]byte("x"), msg...), mic); err == nil {
		t.Error("MIT verified our MIC over a different message")
	}
	if err := peer.verify(msg, mic); err != nil {
		t.Errorf("MIT rejected our genuine MIC after a failed check: %v", err)
	}

	// Reordering, our tokens to MIT: with SEQUENCE, MIT reports the gap
	// and then the late token, which shows our sequence numbers are the
	// consecutive ones it expects.
	first, err := ctx.Wrap([]byte("first"), false)
	if err != nil {
		t.Fatal(err)
	}
	second, err := ctx.Wrap([]byte("second"), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := peer.unwrap(second); err == nil || !strings.Contains(err.Error(), "expected per-message token was not received") {
		t.Errorf("MIT on a skipped token: %v, want a gap", err)
	}
	if _, _, err := peer.unwrap(first); err == nil || !strings.Contains(err.Error(), "later token has already been processed") {
		t.Errorf("MIT on a late token: %v, want unseq", err)
	}
	// And MIT's to us.
	first, second = peer.wrap([]byte("first"), false), peer.wrap([]byte("second"), false)
	if got, _, err := ctx.Unwrap(second); !errors.Is(err, StatusGapToken) || string(got) != "second" {
		t.Errorf("skipped MIT token: %q, %v, want the message with GSS_S_GAP_TOKEN", got, err)
	}
	if got, _, err := ctx.Unwrap(first); !errors.Is(err, StatusUnseqToken) || string(got) != "first" {
		t.Errorf("late MIT token: %q, %v, want the message with GSS_S_UNSEQ_TOKEN", got, err)
	}
}

// round exchanges msg in every form both ways.
func round(t *testing.T, i int, ctx *Context, peer *mitPeer, msg []byte) {
	t.Helper()
	for _, conf := range []bool{true, false} {
		// MIT -> us.
		tok := peer.wrap(msg, conf)
		got, gotConf, err := ctx.Unwrap(tok)
		if err != nil {
			t.Fatalf("round %d: Unwrap of MIT's conf=%v token: %v", i, conf, err)
		}
		if !bytes.Equal(got, msg) || gotConf != conf {
			t.Fatalf("round %d: Unwrap of MIT's conf=%v token: %d bytes conf=%v, want %d bytes", i, conf, len(got), gotConf, len(msg))
		}
		// Us -> MIT.
		tok, err = ctx.Wrap(msg, conf)
		if err != nil {
			t.Fatalf("round %d: Wrap: %v", i, err)
		}
		got, gotConf, err = peer.unwrap(tok)
		if err != nil {
			t.Fatalf("round %d: MIT unwrap of our conf=%v token: %v", i, conf, err)
		}
		if !bytes.Equal(got, msg) || gotConf != conf {
			t.Fatalf("round %d: MIT unwrapped our conf=%v token to %d bytes conf=%v", i, conf, len(got), gotConf)
		}
	}
	if err := ctx.VerifyMIC(msg, peer.mic(msg)); err != nil {
		t.Fatalf("round %d: VerifyMIC of MIT's MIC: %v", i, err)
	}
	mic, err := ctx.GetMIC(msg)
	if err != nil {
		t.Fatalf("round %d: GetMIC: %v", i, err)
	}
	if err := peer.verify(msg, mic); err != nil {
		t.Fatalf("round %d: MIT rejected our MIC: %v", i, err)
	}
}

// handOff exports ctx and imports it again, as the listener and a worker
// do; the old context must be dead and the new one must continue both
// sequence windows.
func handOff(t *testing.T, ctx *Context) *Context {
	t.Helper()
	key, err := GenerateSealKey(1)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Zero()
	tok, err := ctx.Export(key)
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	if _, err := ctx.Wrap([]byte("after export"), true); !errors.Is(err, StatusNoContext) {
		t.Fatalf("exported context still wraps: %v", err)
	}
	imported, err := NewImporter(key).Import(tok)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	t.Cleanup(imported.Delete)
	return imported
}
