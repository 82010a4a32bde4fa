package worker

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gss-acceptor/gss-acceptor/internal/gss/gsstest/forge"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// testCred builds a delegated KRB-CRED for pname@prealm with infos ticket
// infos, whose enc-part is in the clear for etype 0 and else encrypted in a
// key of etype.
func testCred(t *testing.T, pname, prealm string, etype int32, infos int) []byte {
	t.Helper()
	sname := types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "krbtgt/EXAMPLE.COM")
	tkt := messages.Ticket{TktVNO: 5, Realm: "EXAMPLE.COM", SName: sname,
		EncPart: types.EncryptedData{EType: 18, KVNO: 1, Cipher: bytes.Repeat([]byte{7}, 40)}}
	var part messages.EncKrbCredPart
	for range infos {
		part.TicketInfo = append(part.TicketInfo, messages.KrbCredInfo{
			Key:    types.EncryptionKey{KeyType: 18, KeyValue: bytes.Repeat([]byte{0x42}, 32)},
			PRealm: prealm,
			PName:  types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, pname),
			SRealm: "EXAMPLE.COM",
			SName:  sname,
		})
	}
	var key *types.EncryptionKey
	if etype != 0 {
		key = &types.EncryptionKey{KeyType: etype, KeyValue: bytes.Repeat([]byte{0x17}, 32)}
	}
	cred, err := forge.KRBCred(tkt, part, key)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func TestDelegatedClient(t *testing.T) {
	good := testCred(t, "alice", "EXAMPLE.COM", 0, 1)
	tests := []struct {
		name    string
		cred    []byte
		want    string
		wantErr string
	}{
		{name: "clear credential", cred: good, want: "alice@EXAMPLE.COM"},
		{name: "two-component client", cred: testCred(t, "bob/admin", "EXAMPLE.COM", 0, 1), want: "bob/admin@EXAMPLE.COM"},
		{name: "first of two infos", cred: testCred(t, "carol", "OTHER.ORG", 0, 2), want: "carol@OTHER.ORG"},
		{name: "encrypted enc-part", cred: testCred(t, "alice", "EXAMPLE.COM", 18, 1), wantErr: "encrypted (etype 18)"},
		{name: "no ticket info", cred: testCred(t, "alice", "EXAMPLE.COM", 0, 0), wantErr: "holds no ticket"},
		{name: "empty realm", cred: testCred(t, "alice", "", 0, 1), wantErr: "does not name its client"},
		{name: "empty first component", cred: testCred(t, "/admin", "EXAMPLE.COM", 0, 1), wantErr: "does not name its client"},
		// Found by FuzzDelegatedClient: a realm holding "@" must not make
		// the name end in a bare "@" or split as another principal.
		{name: "realm with @", cred: testCred(t, "alice", "EXAMPLE.@O@", 0, 1), want: `alice@EXAMPLE.\@O\@`},
		{name: "component with @ and newline", cred: testCred(t, "a@b\nc", "EXAMPLE.COM", 0, 1), want: `a\@b\nc@EXAMPLE.COM`},
		{name: "garbage", cred: []byte("not a credential"), wantErr: "worker: delegated credential"},
		{name: "truncated", cred: good[:len(good)/2], wantErr: "worker:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := delegatedClient(tt.cred)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("delegatedClient = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("delegatedClient = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestLogDelegation(t *testing.T) {
	tests := []struct {
		name  string
		cred  []byte
		level zapcore.Level
		msg   string
	}{
		{"readable", testCred(t, "alice", "EXAMPLE.COM", 0, 1), zapcore.InfoLevel, "delegated credential for alice@EXAMPLE.COM arrived"},
		{"unreadable", []byte{0x76, 0x01}, zapcore.WarnLevel, "delegated credential arrived but cannot be read"},
		{"control characters quoted", testCred(t, "alice", "EXAMPLE.COM\r\nfake line", 0, 1), zapcore.InfoLevel,
			`delegated credential for "alice@EXAMPLE.COM\r\\nfake line" arrived`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.DebugLevel)
			logDelegation(zap.New(core), tt.cred)
			entries := logs.All()
			if len(entries) != 1 {
				t.Fatalf("%d log entries, want 1", len(entries))
			}
			e := entries[0]
			if e.Level != tt.level || e.Message != tt.msg {
				t.Errorf("logged %v %q, want %v %q", e.Level, e.Message, tt.level, tt.msg)
			}
			// The session key inside the credential (0x42 bytes) must not
			// appear in any field.
			for k, v := range e.ContextMap() {
				if s, ok := v.(string); ok && strings.Contains(s, "BBBB") {
					t.Errorf("field %s leaks key bytes: %q", k, s)
				}
			}
		})
	}
}

// FuzzDelegatedClient checks that every input gives either a name of the
// form user@REALM or a "worker: " error, never both: a panic inside
// gokrb5's decoders must come back as an error from the recover.
func FuzzDelegatedClient(f *testing.F) {
	f.Add([]byte{0x76, 0x00})
	f.Add([]byte{0x76, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := delegatedClient(b)
		if err != nil {
			if name != "" {
				t.Fatalf("name %q with error %v", name, err)
			}
			if !strings.HasPrefix(err.Error(), "worker: ") {
				t.Fatalf("unprefixed error %v", err)
			}
			return
		}
		if i := realmSeparator(name); i <= 0 || i == len(name)-1 {
			t.Fatalf("name %q is not user@REALM", name)
		}
	})
}

// realmSeparator returns the index of the last "@" not escaped by a
// backslash, or -1.
func realmSeparator(name string) int {
	sep := -1
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++
		case '@':
			sep = i
		}
	}
	return sep
}

// TestDelegatedClientCorpus writes the seed corpus of FuzzDelegatedClient
// when -update-corpus is given, and otherwise checks it is there.
func TestDelegatedClientCorpus(t *testing.T) {
	seeds := map[string][]byte{
		"clear":     testCred(t, "alice", "EXAMPLE.COM", 0, 1),
		"encrypted": testCred(t, "alice", "EXAMPLE.COM", 18, 1),
		"no-info":   testCred(t, "alice", "EXAMPLE.COM", 0, 0),
		// The CI run's crash: a realm ending in "@".
		"realm-with-at": testCred(t, "alice", "EXAMPLE.@O@", 0, 1),
	}
	for name, b := range seeds {
		path := filepath.Join("testdata", "fuzz", "FuzzDelegatedClient", name)
		if !*updateCorpus {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("seed corpus file missing: %v (run go test -run TestDelegatedClientCorpus -update-corpus)", err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus under testdata/fuzz/FuzzDelegatedClient")

// writeBuffer is a net.Conn whose writes go to a buffer; nothing else of
// it is used.
type writeBuffer struct {
	net.Conn
	buf bytes.Buffer
}

// Write implements net.Conn.
func (w *writeBuffer) Write(b []byte) (int, error) { return w.buf.Write(b) }

// TestSessionCountsWireBytes: the byte counters of a session are the
// bytes its frames take on the wire, headers included, in both framings:
// a v1 frame (flags 0) has a four-byte header, a flagged one five.
func TestSessionCountsWireBytes(t *testing.T) {
	tests := []struct {
		name  string
		flags byte
	}{
		{"v1", 0},
		{"flagged", wire.FlagData | wire.FlagWrapped | wire.FlagSendMIC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in []byte
			for _, n := range []int{0, 1, 300} {
				in = wire.AppendFrame(in, tt.flags, bytes.Repeat([]byte{'m'}, n))
			}
			conn := &writeBuffer{}
			s := &Session{Conn: conn, Reader: wire.NewReader(bytes.NewReader(in), 64), MaxMessageSize: 1 << 10}
			for range 3 {
				if _, err := s.ReadFrame(); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range []int{0, 28} {
				if err := s.WriteFrame(tt.flags, bytes.Repeat([]byte{'r'}, n)); err != nil {
					t.Fatal(err)
				}
			}
			if s.MessagesIn != 3 || s.BytesIn != int64(len(in)) {
				t.Errorf("in: %d messages, %d bytes; want 3, %d", s.MessagesIn, s.BytesIn, len(in))
			}
			if s.MessagesOut != 2 || s.BytesOut != int64(conn.buf.Len()) {
				t.Errorf("out: %d messages, %d bytes; want 2, %d", s.MessagesOut, s.BytesOut, conn.buf.Len())
			}
		})
	}
}
