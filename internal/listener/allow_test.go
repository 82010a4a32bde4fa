package listener

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/stream"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

func TestAllowListMatching(t *testing.T) {
	a, err := NewAllowList([]string{"alice@EXAMPLE.TEST", "*@PARTNER.TEST", `a\@b@ESC.TEST`})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		principal string
		want      bool
	}{
		{"alice@EXAMPLE.TEST", true},
		{"bob@EXAMPLE.TEST", false},
		{"alice@example.test", false},      // realms are case-sensitive
		{"Alice@EXAMPLE.TEST", false},      // so are names
		{"alice@EXAMPLE.TEST.EVIL", false}, // exact, no prefix match
		{"alice", false},                   // no realm
		{"bob@PARTNER.TEST", true},         // *@REALM
		{"host/h.partner.test@PARTNER.TEST", true},
		{"bob@EVIL.PARTNER.TEST", false}, // not a subrealm match
		{"bob@PARTNER.TESTX", false},
		{"x@PARTNER.TEST@OTHER", false}, // the realm is after the last @
		{`a\@b@ESC.TEST`, true},
		{`x\@PARTNER.TEST@OTHER`, false}, // an escaped @ is no realm
		{"@PARTNER.TEST", false},         // empty name
		{"", false},
	}
	for _, tt := range tests {
		if got := a.Allows(tt.principal); got != tt.want {
			t.Errorf("Allows(%q) = %v, want %v", tt.principal, got, tt.want)
		}
	}
	var none *AllowList
	if !none.Allows("anyone@ANY") {
		t.Error("a nil allow-list must admit everyone")
	}
	empty, err := NewAllowList(nil)
	if err != nil || empty.Allows("alice@EXAMPLE.TEST") {
		t.Errorf("an empty (non-nil) allow-list must admit no one: %v", err)
	}
}

func TestAllowListBadEntries(t *testing.T) {
	for _, e := range []string{"", "alice", "*", "*@", "a*@R", "*@R*", "*@A@B", "alice@", "@R", "al ice@R", "a\x00@R"} {
		if _, err := NewAllowList([]string{e}); err == nil {
			t.Errorf("NewAllowList(%q) accepted a bad entry", e)
		}
	}
}

func TestReadAllowFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "clients")
	os.WriteFile(p, []byte("# admins\nalice@EXAMPLE.TEST\n\n  *@PARTNER.TEST  \n# bob@EXAMPLE.TEST\n"), 0o600)
	got, err := ReadAllowFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "alice@EXAMPLE.TEST,*@PARTNER.TEST" {
		t.Fatalf("entries %q", got)
	}
	os.WriteFile(p, []byte("alice@EXAMPLE.TEST\nbroken\n"), 0o600)
	if _, err := ReadAllowFile(p); err == nil || !strings.Contains(err.Error(), ":2:") {
		t.Fatalf("bad line: %v, want an error naming line 2", err)
	}
	if _, err := LoadAllowList(nil, filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	a, err := LoadAllowList([]string{"carol@EXAMPLE.TEST"}, "")
	if err != nil || !a.Allows("carol@EXAMPLE.TEST") || a.Allows("alice@EXAMPLE.TEST") {
		t.Fatalf("LoadAllowList: %v", err)
	}
	if a, err := LoadAllowList(nil, ""); a != nil || err != nil {
		t.Fatalf("no list: %v %v, want nil (admit all)", a, err)
	}
}

// A client the allow-list does not admit is closed after establishment,
// never handed off, with result client_not_allowed and one warn line; a
// stream client first reads an ERROR record naming its principal.
func TestServerRefusesClientNotAllowed(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	deny, err := NewAllowList([]string{"bob@" + k.Realm})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, k, Config{AllowClients: deny, StreamRefusal: true}, nil)

	init, err := gss.NewInitiator(k.CName, k.Realm, k.Ticket, k.SessionKey, gss.InitiatorConfig{Flags: gss.FlagMutual | gss.FlagReplay | gss.FlagSequence | gss.FlagConf | gss.FlagInteg})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := init.InitialToken()
	if err != nil {
		t.Fatal(err)
	}
	c := ts.dial(t)
	c.Write(wire.AppendFrame(wire.AppendFrame(nil, wire.FlagNoop|wire.FlagContextNext, nil), wire.FlagContext, tok))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := wire.NewReader(c, 1<<16)
	rep, err := r.ReadFrame(1 << 16)
	if err != nil {
		t.Fatalf("reading AP-REP: %v", err)
	}
	ictx, err := init.Complete(rep.Body)
	if err != nil {
		t.Fatal(err)
	}
	defer ictx.Delete()
	st, err := stream.New(c, r, ictx, stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Read(make([]byte, 16))
	var pe *stream.PeerError
	if !errors.As(err, &pe) || pe.Reason != "client principal alice@"+k.Realm+" is not allowed" {
		t.Fatalf("read %v, want the ERROR record naming the client", err)
	}
	if o := ts.outcome(t); o.Result != ResultClientNotAllowed {
		t.Fatalf("outcome %q", o.Result)
	}
	readUntilClosed(t, c, 5*time.Second)
	if n := ts.disp.count(); n != 0 {
		t.Fatalf("%d handoffs, want none", n)
	}
	lines := ts.logs.FilterMessage("client not allowed; connection closed").All()
	if len(lines) != 1 || lines[0].ContextMap()["client"] != "alice@"+k.Realm ||
		lines[0].ContextMap()["result"] != "client_not_allowed" {
		t.Fatalf("log lines %+v", lines)
	}

	// Admitted after SetAllowList: the next handshake is handed off.
	allow, _ := NewAllowList([]string{"*@" + k.Realm})
	ts.s.SetAllowList(allow)
	c2 := ts.dial(t)
	c2.Write(k.handshake(t))
	if o := ts.outcome(t); o.Result != ResultOK {
		t.Fatalf("allowed client: outcome %q", o.Result)
	}
	if n := ts.disp.count(); n != 1 {
		t.Fatalf("%d handoffs, want 1", n)
	}
}

// A gss-sample (StreamRefusal false) client gets no record, only the
// close, and is still refused.
func TestServerRefusesSampleClientSilently(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	deny, _ := NewAllowList([]string{"*@OTHER.TEST"})
	ts := startServer(t, k, Config{AllowClients: deny}, nil)
	c := ts.dial(t)
	c.Write(k.handshake(t))
	if o := ts.outcome(t); o.Result != ResultClientNotAllowed {
		t.Fatalf("outcome %q", o.Result)
	}
	got := readUntilClosed(t, c, 5*time.Second)
	r := wire.NewReader(bytesReader(got), 1<<16)
	if _, err := r.ReadFrame(1 << 16); err != nil { // the AP-REP
		t.Fatal(err)
	}
	if f, err := r.ReadFrame(1 << 16); err == nil {
		t.Fatalf("a sample client got a frame after the AP-REP: %#x", f.Flags)
	}
	if ts.disp.count() != 0 {
		t.Fatal("refused client handed off")
	}
}

func bytesReader(b []byte) *strings.Reader { return strings.NewReader(string(b)) }
