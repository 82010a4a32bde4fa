package gss

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
)

// expT0 is the fixed "now" of the export tests.
var expT0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

func expClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// expEtypes are the AES enctypes (RFC 3962, RFC 8009) with their key sizes.
var expEtypes = []struct {
	etype  int32
	keyLen int
}{
	{17, 16}, // aes128-cts-hmac-sha1-96
	{18, 32}, // aes256-cts-hmac-sha1-96
	{19, 16}, // aes128-cts-hmac-sha256-128
	{20, 32}, // aes256-cts-hmac-sha384-192
}

func expRandBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// expParams returns exportable acceptor-side parameters with fresh random
// keys of the given enctype.
func expParams(tb testing.TB, etype int32, keyLen int, acceptorSubkey bool) contextParams {
	tb.Helper()
	p := contextParams{
		flags:      FlagMutual | FlagReplay | FlagSequence | FlagConf | FlagInteg | FlagTrans,
		mech:       oidKRB5,
		initName:   "alice@EXAMPLE.COM",
		acceptName: "host/h.example.com@EXAMPLE.COM",
		expiry:     expT0.Add(10 * time.Hour),
		sessionKey: Key{Etype: etype, Value: expRandBytes(tb, keyLen)},
		subkey:     Key{Etype: etype, Value: expRandBytes(tb, keyLen)},
		sendSeq:    0x1234_5678,
		recvSeq:    0x0abc_def0,
	}
	if acceptorSubkey {
		p.acceptorSubkey = Key{Etype: etype, Value: expRandBytes(tb, keyLen)}
	}
	return p
}

func expContext(tb testing.TB, p contextParams) *Context {
	tb.Helper()
	c, err := newContext(p)
	if err != nil {
		tb.Fatalf("newContext: %v", err)
	}
	return c
}

func expSealKey(tb testing.TB, id uint8) *SealKey {
	tb.Helper()
	k, err := GenerateSealKey(id)
	if err != nil {
		tb.Fatalf("GenerateSealKey: %v", err)
	}
	return k
}

// expSnapshot is what a context holds, deep-copied, to compare before and after.
type expSnapshot struct {
	initiator, viaSPNEGO                    bool
	flags                                   Flags
	mech                                    []byte
	initName, acceptName                    string
	expiry                                  time.Time
	sessionKey, subkey, acceptorSubkey      Key
	delegated                               []byte
	sendSeq, recvBase, recvNext, recvMap    uint64
	doReplay, doSequence                    bool
	err                                     error
	sessionKeyBytes, subkeyBytes, askBytes  []byte // aliases of the live key bytes
	delegatedAlias                          []byte
	mechIsStaticKRB5, mechIsStaticKRB5MS    bool
	haveAcceptorSubkey, microsoftOID, isIni bool
}

func expSnap(c *Context) expSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return expSnapshot{
		initiator:          c.initiator,
		viaSPNEGO:          c.viaSPNEGO,
		flags:              c.flags,
		mech:               bytes.Clone(c.mech),
		initName:           c.initName,
		acceptName:         c.acceptName,
		expiry:             c.expiry,
		sessionKey:         c.sessionKey.Clone(),
		subkey:             c.subkey.Clone(),
		acceptorSubkey:     c.acceptorSubkey.Clone(),
		delegated:          bytes.Clone(c.delegated),
		sendSeq:            c.sendSeq,
		recvBase:           c.recv.base,
		recvNext:           c.recv.next,
		recvMap:            c.recv.recvmap,
		doReplay:           c.recv.doReplay,
		doSequence:         c.recv.doSequence,
		err:                c.err,
		sessionKeyBytes:    c.sessionKey.Value,
		subkeyBytes:        c.subkey.Value,
		askBytes:           c.acceptorSubkey.Value,
		delegatedAlias:     c.delegated,
		mechIsStaticKRB5:   len(c.mech) > 0 && &c.mech[0] == &oidKRB5[0],
		mechIsStaticKRB5MS: len(c.mech) > 0 && &c.mech[0] == &oidKRB5MS[0],
		haveAcceptorSubkey: c.HaveAcceptorSubkey(),
		microsoftOID:       c.MicrosoftOID(),
		isIni:              c.IsInitiator(),
	}
}

func expKeysEqual(a, b Key) bool { return a.Etype == b.Etype && bytes.Equal(a.Value, b.Value) }

// expCompareState fails unless got carries the same context state as want.
func expCompareState(t *testing.T, want, got expSnapshot) {
	t.Helper()
	checks := []struct {
		name string
		ok   bool
	}{
		{"initiator", want.initiator == got.initiator && want.isIni == got.isIni},
		{"via SPNEGO", want.viaSPNEGO == got.viaSPNEGO},
		{"flags", want.flags == got.flags},
		{"mech", bytes.Equal(want.mech, got.mech) && want.microsoftOID == got.microsoftOID},
		{"mech is a static OID", got.mechIsStaticKRB5 || got.mechIsStaticKRB5MS},
		{"initiator name", want.initName == got.initName},
		{"acceptor name", want.acceptName == got.acceptName},
		{"expiry", want.expiry.Equal(got.expiry)},
		{"session key", expKeysEqual(want.sessionKey, got.sessionKey)},
		{"subkey", expKeysEqual(want.subkey, got.subkey)},
		{"acceptor subkey", expKeysEqual(want.acceptorSubkey, got.acceptorSubkey) && want.haveAcceptorSubkey == got.haveAcceptorSubkey},
		{"delegated", bytes.Equal(want.delegated, got.delegated)},
		{"send seq", want.sendSeq == got.sendSeq},
		{"recv base", want.recvBase == got.recvBase},
		{"recv next", want.recvNext == got.recvNext},
		{"recv map", want.recvMap == got.recvMap},
		{"recv replay", want.doReplay == got.doReplay},
		{"recv sequence", want.doSequence == got.doSequence},
		{"usable", got.err == nil},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s differs after import:\nwant %+v\ngot  %+v", c.name, want, got)
		}
	}
}

// expRequireUnchanged fails unless c still holds exactly the state in before,
// with the same (not zeroed) key buffers.
func expRequireUnchanged(t *testing.T, c *Context, before expSnapshot) {
	t.Helper()
	now := expSnap(c)
	expCompareState(t, before, now)
	if &now.sessionKeyBytes[0] != &before.sessionKeyBytes[0] {
		t.Error("session key buffer replaced")
	}
}

// expRequireExported fails unless c is deactivated with GSS_S_NO_CONTEXT and
// every key buffer it held (aliased in before) is zeroed.
func expRequireExported(t *testing.T, c *Context, before expSnapshot) {
	t.Helper()
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if !errors.Is(err, StatusNoContext) {
		t.Fatalf("exporter error = %v, want GSS_S_NO_CONTEXT", err)
	}
	var gerr *Error
	if !errors.As(err, &gerr) || gerr.Minor != MinorExported {
		t.Errorf("exporter minor = %v, want MinorExported", err)
	}
	for name, b := range map[string][]byte{
		"session key": before.sessionKeyBytes, "subkey": before.subkeyBytes,
		"acceptor subkey": before.askBytes, "delegated": before.delegatedAlias,
	} {
		if !bytes.Equal(b, make([]byte, len(b))) {
			t.Errorf("%s not zeroed after export", name)
		}
	}
	after := expSnap(c)
	if after.sessionKeyBytes != nil || after.subkeyBytes != nil || after.askBytes != nil || after.delegatedAlias != nil {
		t.Error("exporter still references key material")
	}
	if _, err := c.Export(expSealKey(t, 1)); !errors.Is(err, StatusNoContext) {
		t.Errorf("re-export error = %v, want GSS_S_NO_CONTEXT", err)
	}
}

// expRequireStatus fails unless err carries major (routine and supplementary
// bits exactly) and minor.
func expRequireStatus(t *testing.T, err error, major Major, minor uint32) *Error {
	t.Helper()
	var gerr *Error
	if !errors.As(err, &gerr) {
		t.Fatalf("error = %v (%T), want *Error %v", err, err, major)
	}
	if gerr.Major != major || gerr.Minor != minor {
		t.Fatalf("error = %v (major %v minor %d), want major %v minor %d", err, gerr.Major, gerr.Minor, major, minor)
	}
	if !errors.Is(err, major) {
		t.Fatalf("errors.Is(%v, %v) = false", err, major)
	}
	return gerr
}

func expExportAt(t *testing.T, c *Context, key *SealKey, now time.Time) []byte {
	t.Helper()
	tok, err := c.ExportWith(key, ExportOptions{Now: expClock(now)})
	if err != nil {
		t.Fatalf("ExportWith: %v", err)
	}
	return tok
}

func expImporterAt(now time.Time, keys ...*SealKey) *Importer {
	im := NewImporter(keys...)
	im.SetNow(expClock(now))
	return im
}

func TestExportImportRoundTrip(t *testing.T) {
	type variant struct {
		name      string
		ask       bool
		initiator bool
		spnego    bool
		msOID     bool
		delegated bool
		flags     Flags
	}
	variants := []variant{
		{name: "plain"},
		{name: "acceptor subkey", ask: true},
		{name: "initiator spnego ms-oid", ask: true, initiator: true, spnego: true, msOID: true},
		{name: "delegated no-sequence", delegated: true, flags: FlagDeleg | FlagReplay | FlagConf | FlagInteg | FlagTrans},
	}
	key := expSealKey(t, 7)
	for _, et := range expEtypes {
		for _, v := range variants {
			t.Run(fmt.Sprintf("etype%d/%s", et.etype, v.name), func(t *testing.T) {
				p := expParams(t, et.etype, et.keyLen, v.ask)
				p.initiator = v.initiator
				p.viaSPNEGO = v.spnego
				if v.msOID {
					p.mech = oidKRB5MS
				}
				if v.delegated {
					p.delegated = expRandBytes(t, 1500)
				}
				if v.flags != 0 {
					p.flags = v.flags
				}
				c := expContext(t, p)
				// A window with history: numbers base..base+4 seen except base+2.
				c.recv.next = 5
				c.recv.recvmap = 0b11011
				c.sendSeq = 1<<40 + 3
				before := expSnap(c)

				tok := expExportAt(t, c, key, expT0)
				expRequireExported(t, c, before)

				got, err := expImporterAt(expT0.Add(time.Second), key).Import(tok)
				if err != nil {
					t.Fatalf("Import: %v", err)
				}
				expCompareState(t, before, expSnap(got))
				if got.Enctype() != et.etype {
					t.Errorf("Enctype = %d, want %d", got.Enctype(), et.etype)
				}
			})
		}
	}
}

func TestExportTokenHeader(t *testing.T) {
	key := expSealKey(t, 0xa5)
	p := expParams(t, 18, 32, true)
	p.delegated = bytes.Repeat([]byte("CRED"), 16)
	secrets := map[string][]byte{
		"session key": bytes.Clone(p.sessionKey.Value), "subkey": bytes.Clone(p.subkey.Value),
		"acceptor subkey": bytes.Clone(p.acceptorSubkey.Value), "initiator name": []byte(p.initName),
		"delegated": bytes.Clone(p.delegated),
	}
	c := expContext(t, p)
	tok := expExportAt(t, c, key, expT0)
	if string(tok[:4]) != "GSXC" || tok[4] != 1 || tok[5] != 0xa5 {
		t.Fatalf("header = % x, want GSXC 01 a5", tok[:6])
	}
	if want := iptHeaderLen + len(expOpenRaw(t, key, tok)) + iptTagLen; len(tok) != want {
		t.Errorf("token is %d bytes, want header + plaintext + tag = %d", len(tok), want)
	}
	// The token is encrypted: no field is visible in it.
	for name, s := range secrets {
		if bytes.Contains(tok, s) {
			t.Errorf("token contains the %s in the clear", name)
		}
	}
	c2 := expContext(t, expParams(t, 18, 32, true))
	tok2 := expExportAt(t, c2, key, expT0)
	if bytes.Equal(tok[6:18], tok2[6:18]) {
		t.Error("two exports used the same nonce")
	}
}

// expV1Fields is an independent encoder of the version 1 plaintext layout
// documented in export.go, used to check the format and to make tokens the
// exporter would never produce.
type expV1Fields struct {
	id                                 []byte
	exportedAt, deadline               int64
	mech                               []byte
	viaSPNEGO, initiator               uint8
	flags                              uint32
	initName, acceptName               string
	expirySec                          int64
	expiryNsec                         uint32
	sessionKey, subkey, acceptorSubkey Key
	sendSeq                            uint64
	recvBase, recvNext, recvMap        uint64
	doReplay, doSequence               uint8
	delegated                          []byte
	trailing                           []byte
}

func (f expV1Fields) encode() []byte {
	b := cryptobyte.NewBuilder(nil)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f.id) })
	b.AddUint64(uint64(f.exportedAt))
	b.AddUint64(uint64(f.deadline))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f.mech) })
	b.AddUint8(f.viaSPNEGO)
	b.AddUint8(f.initiator)
	b.AddUint32(f.flags)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(f.initName)) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(f.acceptName)) })
	b.AddUint64(uint64(f.expirySec))
	b.AddUint32(f.expiryNsec)
	for _, k := range []Key{f.sessionKey, f.subkey, f.acceptorSubkey} {
		b.AddUint32(uint32(k.Etype))
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(k.Value) })
	}
	b.AddUint64(f.sendSeq)
	b.AddUint64(f.recvBase)
	b.AddUint64(f.recvNext)
	b.AddUint64(f.recvMap)
	b.AddUint8(f.doReplay)
	b.AddUint8(f.doSequence)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(f.delegated) })
	b.AddBytes(f.trailing)
	return b.BytesOrPanic()
}

// expValidFields returns fields that import at expT0+1s.
func expValidFields(tb testing.TB) expV1Fields {
	return expV1Fields{
		id:         expRandBytes(tb, 16),
		exportedAt: expT0.UnixNano(),
		deadline:   expT0.Add(DefaultImportDeadline).UnixNano(),
		mech:       oidKRB5,
		flags:      uint32(FlagMutual | FlagReplay | FlagSequence | FlagConf | FlagInteg | FlagTrans),
		initName:   "alice@EXAMPLE.COM",
		acceptName: "host/h.example.com@EXAMPLE.COM",
		expirySec:  expT0.Add(time.Hour).Unix(),
		sessionKey: Key{Etype: 18, Value: expRandBytes(tb, 32)},
		subkey:     Key{Etype: 18, Value: expRandBytes(tb, 32)},
		sendSeq:    9,
		recvBase:   100,
		recvNext:   3,
		recvMap:    0b101,
		doReplay:   1,
		doSequence: 1,
	}
}

// expSealRaw seals pt under key with the given header fields, as ExportWith
// does but with any version, key id and plaintext.
func expSealRaw(key *SealKey, version, keyID uint8, pt []byte) []byte {
	hdr := make([]byte, iptHeaderLen, iptHeaderLen+len(pt)+iptTagLen)
	copy(hdr, iptMagic)
	hdr[4] = version
	hdr[5] = keyID
	if _, err := rand.Read(hdr[6:iptHeaderLen]); err != nil {
		panic(err)
	}
	key.mu.RLock()
	defer key.mu.RUnlock()
	return key.aead.Seal(hdr, hdr[6:iptHeaderLen], pt, hdr[:iptHeaderLen])
}

func expOpenRaw(t *testing.T, key *SealKey, tok []byte) []byte {
	t.Helper()
	pt, err := key.open(tok)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return pt
}

func TestExportPlaintextLayout(t *testing.T) {
	key := expSealKey(t, 1)
	p := expParams(t, 20, 32, true)
	p.initiator = true
	p.viaSPNEGO = true
	p.mech = oidKRB5MS
	p.delegated = []byte("krb-cred")
	p.expiry = time.Unix(1900000000, 987654321)
	want := expV1Fields{
		exportedAt: expT0.UnixNano(), deadline: expT0.Add(5 * time.Second).UnixNano(),
		mech: oidKRB5MS, viaSPNEGO: 1, initiator: 1, flags: uint32(p.flags),
		initName: p.initName, acceptName: p.acceptName,
		expirySec: 1900000000, expiryNsec: 987654321,
		sessionKey: p.sessionKey.Clone(), subkey: p.subkey.Clone(), acceptorSubkey: p.acceptorSubkey.Clone(),
		sendSeq: p.sendSeq, recvBase: p.recvSeq, recvNext: 2, recvMap: 3,
		doReplay: 1, doSequence: 1, delegated: []byte("krb-cred"),
	}
	c := expContext(t, p)
	c.recv.next, c.recv.recvmap = 2, 3
	rnd := bytes.NewReader(bytes.Repeat([]byte{0x42}, 64))
	tok, err := c.ExportWith(key, ExportOptions{Now: expClock(expT0), ImportDeadline: 5 * time.Second, Rand: rnd})
	if err != nil {
		t.Fatal(err)
	}
	want.id = bytes.Repeat([]byte{0x42}, 16)
	if got := tok[6:18]; !bytes.Equal(got, bytes.Repeat([]byte{0x42}, 12)) {
		t.Errorf("nonce = % x, want the 12 random bytes after the context id", got)
	}
	if got, w := expOpenRaw(t, key, tok), want.encode(); !bytes.Equal(got, w) {
		t.Errorf("plaintext\n got %x\nwant %x", got, w)
	}

	// Without an acceptor subkey the field is etype 0 and no bytes.
	p2 := expParams(t, 17, 16, false)
	c2 := expContext(t, p2)
	want2 := expV1Fields{
		id: bytes.Repeat([]byte{0x42}, 16), exportedAt: expT0.UnixNano(), deadline: expT0.Add(DefaultImportDeadline).UnixNano(),
		mech: oidKRB5, flags: uint32(p2.flags), initName: p2.initName, acceptName: p2.acceptName,
		expirySec: p2.expiry.Unix(), expiryNsec: uint32(p2.expiry.Nanosecond()),
		sessionKey: p2.sessionKey.Clone(), subkey: p2.subkey.Clone(),
		sendSeq: p2.sendSeq, recvBase: p2.recvSeq, doReplay: 1, doSequence: 1,
	}
	tok2, err := c2.ExportWith(key, ExportOptions{Now: expClock(expT0), Rand: bytes.NewReader(bytes.Repeat([]byte{0x42}, 64))})
	if err != nil {
		t.Fatal(err)
	}
	if got, w := expOpenRaw(t, key, tok2), want2.encode(); !bytes.Equal(got, w) {
		t.Errorf("plaintext without acceptor subkey\n got %x\nwant %x", got, w)
	}
}

func TestExportRefusals(t *testing.T) {
	failingRand := expReaderFunc(func([]byte) (int, error) { return 0, errors.New("entropy gone") })
	zeroed := expSealKey(t, 1)
	zeroed.Zero()
	tests := []struct {
		name   string
		mutate func(*contextParams)
		key    func(t *testing.T) *SealKey
		opts   ExportOptions
		major  Major
		minor  uint32
		// permanent: the same export keeps failing (the context itself is
		// the reason), so there is no retry with good options.
		permanent bool
	}{
		{name: "no TRANS flag", mutate: func(p *contextParams) { p.flags &^= FlagTrans },
			major: StatusUnavailable, permanent: true},
		{name: "expired context", opts: ExportOptions{Now: expClock(expT0.Add(11 * time.Hour))},
			major: StatusContextExpired, minor: MinorContextExpired},
		{name: "nil key", key: func(*testing.T) *SealKey { return nil }, major: StatusFailure},
		{name: "zeroed key", key: func(*testing.T) *SealKey { return zeroed }, major: StatusFailure, minor: MinorBadSealKey},
		{name: "negative deadline", opts: ExportOptions{ImportDeadline: -time.Second}, major: StatusFailure},
		{name: "deadline overflow", opts: ExportOptions{ImportDeadline: 1<<63 - 1}, major: StatusFailure},
		{name: "randomness failure", opts: ExportOptions{Rand: failingRand}, major: StatusFailure},
		{name: "name too long", mutate: func(p *contextParams) { p.initName = strings.Repeat("a", 1<<16) + "@R" },
			major: StatusFailure, minor: MinorBadLength, permanent: true},
		{name: "expiry after year 9999", mutate: func(p *contextParams) { p.expiry = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
			major: StatusFailure, permanent: true},
		{name: "delegated too long", mutate: func(p *contextParams) { p.delegated = make([]byte, 1<<24) },
			major: StatusFailure, minor: MinorBadLength, permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := expParams(t, 18, 32, true)
			if tt.mutate != nil {
				tt.mutate(&p)
			}
			c := expContext(t, p)
			before := expSnap(c)
			key := expSealKey(t, 1)
			if tt.key != nil {
				key = tt.key(t)
			}
			opts := tt.opts
			if opts.Now == nil {
				opts.Now = expClock(expT0)
			}
			tok, err := c.ExportWith(key, opts)
			if tok != nil {
				t.Errorf("token returned with error %v", err)
			}
			expRequireStatus(t, err, tt.major, tt.minor)
			expRequireUnchanged(t, c, before)
			// The failed export left a working context behind, which
			// exports once the transient cause is gone.
			if !tt.permanent {
				good := expSealKey(t, 2)
				tok := expExportAt(t, c, good, expT0)
				if _, err := expImporterAt(expT0, good).Import(tok); err != nil {
					t.Errorf("export after a failed export: import: %v", err)
				}
			}
		})
	}
}

// imported returns how many context ids the Importer remembers.
func (im *Importer) imported() int {
	im.mu.Lock()
	defer im.mu.Unlock()
	return len(im.seen)
}

type expReaderFunc func([]byte) (int, error)

func (f expReaderFunc) Read(b []byte) (int, error) { return f(b) }

func TestExportAfterDeleteAndReexport(t *testing.T) {
	key := expSealKey(t, 1)
	c := expContext(t, expParams(t, 18, 32, false))
	c.Delete()
	_, err := c.Export(key)
	expRequireStatus(t, err, StatusNoContext, MinorNone)

	c2 := expContext(t, expParams(t, 18, 32, false))
	expExportAt(t, c2, key, expT0)
	_, err = c2.Export(key)
	expRequireStatus(t, err, StatusNoContext, MinorExported)
}

func TestImportRejectsEveryAlteredByte(t *testing.T) {
	key := expSealKey(t, 1)
	tok := expExportAt(t, expContext(t, expParams(t, 18, 32, true)), key, expT0)
	for i := range tok {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(tok)
			bad[i] ^= mask
			im := expImporterAt(expT0.Add(time.Second), key)
			c, err := im.Import(bad)
			if err == nil || c != nil {
				t.Fatalf("byte %d ^ %#x: imported", i, mask)
			}
			if !errors.Is(err, StatusDefectiveToken) {
				t.Fatalf("byte %d ^ %#x: error %v, want GSS_S_DEFECTIVE_TOKEN", i, mask, err)
			}
			if im.imported() != 0 {
				t.Fatalf("byte %d: a refused token was remembered", i)
			}
		}
	}
	if _, err := expImporterAt(expT0.Add(time.Second), key).Import(tok); err != nil {
		t.Fatalf("original token: %v", err)
	}
}

func TestImportRejectsTruncation(t *testing.T) {
	key := expSealKey(t, 1)
	tok := expExportAt(t, expContext(t, expParams(t, 19, 16, true)), key, expT0)
	for n := 0; n < len(tok); n++ {
		_, err := expImporterAt(expT0.Add(time.Second), key).Import(tok[:n])
		if !errors.Is(err, StatusDefectiveToken) {
			t.Fatalf("truncated to %d bytes: error %v, want GSS_S_DEFECTIVE_TOKEN", n, err)
		}
		if n < iptHeaderLen+iptTagLen {
			expRequireStatus(t, err, StatusDefectiveToken, MinorBadLength)
		}
	}
	// Extra bytes after the tag are refused too (the tag no longer matches).
	_, err := expImporterAt(expT0.Add(time.Second), key).Import(append(bytes.Clone(tok), 0))
	expRequireStatus(t, err, StatusDefectiveToken, MinorNone)
}

func TestImportStatusTable(t *testing.T) {
	key := expSealKey(t, 1)
	other := expSealKey(t, 1) // same id, different key
	valid := func(t *testing.T) []byte { return expSealRaw(key, 1, 1, expValidFields(t).encode()) }
	fields := func(f func(*expV1Fields)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			v := expValidFields(t)
			f(&v)
			return expSealRaw(key, 1, 1, v.encode())
		}
	}
	tests := []struct {
		name  string
		token func(t *testing.T) []byte
		major Major
		minor uint32
		msg   string
	}{
		{name: "empty", token: func(*testing.T) []byte { return nil },
			major: StatusDefectiveToken, minor: MinorBadLength},
		{name: "bad magic", token: func(t *testing.T) []byte { b := valid(t); b[0] = 'X'; return b },
			major: StatusDefectiveToken, minor: MinorWrongTokenID, msg: "bad magic"},
		{name: "version 2 sealed properly", token: func(t *testing.T) []byte { return expSealRaw(key, 2, 1, expValidFields(t).encode()) },
			major: StatusDefectiveToken, minor: MinorWrongTokenID, msg: "version 2"},
		{name: "version 0", token: func(t *testing.T) []byte { return expSealRaw(key, 0, 1, expValidFields(t).encode()) },
			major: StatusDefectiveToken, minor: MinorWrongTokenID, msg: "version 0"},
		{name: "unknown key id", token: func(t *testing.T) []byte { return expSealRaw(key, 1, 9, expValidFields(t).encode()) },
			major: StatusDefectiveToken, minor: MinorBadSealKey, msg: "key id 9"},
		{name: "wrong key with a known id", token: func(t *testing.T) []byte { return expSealRaw(other, 1, 1, expValidFields(t).encode()) },
			major: StatusDefectiveToken, minor: MinorNone, msg: "authentication"},
		{name: "trailing plaintext byte", token: fields(func(f *expV1Fields) { f.trailing = []byte{0} }),
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "1 trailing bytes"},
		{name: "empty plaintext", token: func(*testing.T) []byte { return expSealRaw(key, 1, 1, nil) },
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "context id"},
		{name: "short context id", token: fields(func(f *expV1Fields) { f.id = f.id[:15] }),
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "context id"},
		{name: "deadline before export", token: fields(func(f *expV1Fields) { f.deadline = f.exportedAt }),
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "deadline"},
		{name: "unknown mech", token: fields(func(f *expV1Fields) { f.mech = oidSPNEGO }),
			major: StatusBadMech, minor: MinorBadMechOID},
		{name: "bool out of range", token: fields(func(f *expV1Fields) { f.viaSPNEGO = 2 }),
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "SPNEGO"},
		{name: "replay flag out of range", token: fields(func(f *expV1Fields) { f.doReplay = 0xff }),
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "receive window"},
		{name: "nanoseconds out of range", token: fields(func(f *expV1Fields) { f.expiryNsec = 1e9 }),
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "expiry"},
		{name: "expiry after year 9999", token: fields(func(f *expV1Fields) { f.expirySec = iptMaxExpiryUnix + 1 }),
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "expiry"},
		{name: "expiry before 1970", token: fields(func(f *expV1Fields) { f.expirySec = -1 }),
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "expiry"},
		{name: "no session key", token: fields(func(f *expV1Fields) { f.sessionKey.Value = nil }),
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "session key"},
		{name: "session key etype 0", token: fields(func(f *expV1Fields) { f.sessionKey.Etype = 0 }),
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "session key"},
		{name: "no subkey", token: fields(func(f *expV1Fields) { f.subkey = Key{} }),
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "subkey"},
		{name: "acceptor subkey etype without bytes", token: fields(func(f *expV1Fields) { f.acceptorSubkey = Key{Etype: 18} }),
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "acceptor subkey"},
		{name: "acceptor subkey bytes without etype", token: fields(func(f *expV1Fields) { f.acceptorSubkey = Key{Value: []byte{1}} }),
			major: StatusDefectiveToken, minor: MinorBadLength, msg: "acceptor subkey"},
		{name: "past the import deadline", token: fields(func(f *expV1Fields) {
			f.exportedAt = expT0.Add(-30 * time.Second).UnixNano()
			f.deadline = expT0.UnixNano()
		}),
			major: StatusDefectiveToken, minor: MinorImportDeadline, msg: "31s old; import deadline 30s"},
		{name: "expired context", token: fields(func(f *expV1Fields) { f.expirySec = expT0.Unix() }),
			major: StatusContextExpired, minor: MinorContextExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token(t)
			orig := bytes.Clone(tok)
			im := expImporterAt(expT0.Add(time.Second), key)
			c, err := im.Import(tok)
			if c != nil {
				t.Fatal("context returned with an error")
			}
			gerr := expRequireStatus(t, err, tt.major, tt.minor)
			if !strings.Contains(gerr.Msg, tt.msg) {
				t.Errorf("message %q does not mention %q", gerr.Msg, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "gss: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if !bytes.Equal(tok, orig) {
				t.Error("Import modified the caller's token")
			}
			if im.imported() != 0 {
				t.Error("a refused token was remembered")
			}
		})
	}
	// The base fields do import, so each refusal above is due to its change.
	if _, err := expImporterAt(expT0.Add(time.Second), key).Import(valid(t)); err != nil {
		t.Fatalf("valid fields: %v", err)
	}
}

func TestImportDeadline(t *testing.T) {
	key := expSealKey(t, 1)
	tests := []struct {
		name     string
		deadline time.Duration // 0: default
		age      time.Duration
		ok       bool
		msg      string
	}{
		{name: "fresh", age: 0, ok: true},
		{name: "at the default deadline", age: DefaultImportDeadline, ok: true},
		{name: "one nanosecond late", age: DefaultImportDeadline + 1, msg: "30s old; import deadline 30s"},
		{name: "31s old", age: 31 * time.Second, msg: "31s old; import deadline 30s"},
		{name: "custom deadline met", deadline: 2 * time.Second, age: 2 * time.Second, ok: true},
		{name: "custom deadline missed", deadline: 2 * time.Second, age: 2500 * time.Millisecond, msg: "2.5s old; import deadline 2s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := expContext(t, expParams(t, 18, 32, true))
			tok, err := c.ExportWith(key, ExportOptions{Now: expClock(expT0), ImportDeadline: tt.deadline})
			if err != nil {
				t.Fatal(err)
			}
			_, err = expImporterAt(expT0.Add(tt.age), key).Import(tok)
			if tt.ok {
				if err != nil {
					t.Fatalf("Import: %v", err)
				}
				return
			}
			gerr := expRequireStatus(t, err, StatusDefectiveToken, MinorImportDeadline)
			if !strings.Contains(gerr.Msg, tt.msg) {
				t.Errorf("message %q, want it to contain %q", gerr.Msg, tt.msg)
			}
		})
	}
}

func TestImportExpiredContext(t *testing.T) {
	key := expSealKey(t, 1)
	p := expParams(t, 18, 32, true)
	p.expiry = expT0.Add(10 * time.Second)
	tok := expExportAt(t, expContext(t, p), key, expT0)
	tests := []struct {
		name string
		at   time.Duration
		ok   bool
	}{
		{name: "before expiry", at: 9 * time.Second, ok: true},
		{name: "at expiry", at: 10 * time.Second, ok: true},
		{name: "after expiry", at: 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := expImporterAt(expT0.Add(tt.at), key).Import(tok)
			if tt.ok {
				if err != nil {
					t.Fatalf("Import: %v", err)
				}
				return
			}
			expRequireStatus(t, err, StatusContextExpired, MinorContextExpired)
		})
	}
}

func TestImportOnlyOnce(t *testing.T) {
	key := expSealKey(t, 1)
	tok := expExportAt(t, expContext(t, expParams(t, 18, 32, true)), key, expT0)
	im := expImporterAt(expT0.Add(time.Second), key)
	if _, err := im.Import(tok); err != nil {
		t.Fatal(err)
	}
	c, err := im.Import(tok)
	if c != nil {
		t.Fatal("second import returned a context")
	}
	expRequireStatus(t, err, StatusNoContext|StatusDuplicateToken, MinorImportReplay)
	if !errors.Is(err, StatusNoContext) || !errors.Is(err, StatusDuplicateToken) {
		t.Errorf("errors.Is fails on %v", err)
	}
	// Every export is a new context instance: the same context, imported,
	// re-exported and re-imported, is not a replay.
	c1 := expExportAt(t, expContext(t, expParams(t, 18, 32, true)), key, expT0)
	got, err := im.Import(c1)
	if err != nil {
		t.Fatal(err)
	}
	c2 := expExportAt(t, got, key, expT0.Add(time.Second))
	if _, err := im.Import(c2); err != nil {
		t.Fatalf("re-exported context: %v", err)
	}
}

func TestImportConcurrentSingleWinner(t *testing.T) {
	key := expSealKey(t, 1)
	tok := expExportAt(t, expContext(t, expParams(t, 18, 32, true)), key, expT0)
	im := expImporterAt(expT0.Add(time.Second), key)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = im.Import(tok) })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, StatusDuplicateToken):
			t.Errorf("unexpected error %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d imports succeeded, want exactly 1", wins)
	}
}

func TestImporterForgetsAfterDeadline(t *testing.T) {
	key := expSealKey(t, 1)
	im := NewImporter(key)
	now := expT0
	im.SetNow(func() time.Time { return now })
	// Five tokens with deadlines 1s..5s after expT0.
	var toks [][]byte
	for i := 1; i <= 5; i++ {
		c := expContext(t, expParams(t, 18, 32, false))
		tok, err := c.ExportWith(key, ExportOptions{Now: expClock(expT0), ImportDeadline: time.Duration(6-i) * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		toks = append(toks, tok)
		if _, err := im.Import(tok); err != nil {
			t.Fatal(err)
		}
	}
	if got := im.imported(); got != 5 {
		t.Fatalf("remembered %d, want 5", got)
	}
	steps := []struct {
		at   time.Duration
		want int // remembered after one more import at that time
	}{
		{at: 1 * time.Second, want: 6},                      // deadline expT0+1s not yet passed
		{at: 2*time.Second + 1, want: 5},                    // expT0+1s, expT0+2s dropped
		{at: 4*time.Second + 500*time.Millisecond, want: 4}, // expT0+3s, expT0+4s dropped
		{at: 60 * time.Second, want: 1},                     // everything dropped
	}
	for _, s := range steps {
		now = expT0.Add(s.at)
		c := expContext(t, expParams(t, 18, 32, false))
		if _, err := im.Import(expExportAt(t, c, key, now)); err != nil {
			t.Fatal(err)
		}
		if got := im.imported(); got != s.want {
			t.Fatalf("at expT0+%v: remembered %d, want %d", s.at, got, s.want)
		}
	}
	// A forgotten token is still refused, by its deadline.
	_, err := im.Import(toks[0])
	expRequireStatus(t, err, StatusDefectiveToken, MinorImportDeadline)
}

func TestImporterHeapOrder(t *testing.T) {
	im := NewImporter()
	deadlines := []int64{50, 10, 40, 10, 30, 20, 60, 5}
	for i, d := range deadlines {
		if !im.remember([16]byte{byte(i)}, d, 0) {
			t.Fatal("fresh id reported as seen")
		}
	}
	var got []int64
	for len(im.byDeadline) > 0 {
		got = append(got, im.byDeadline[0].at)
		im.byDeadline.pop()
	}
	want := []int64{5, 10, 10, 20, 30, 40, 50, 60}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("heap order %v, want %v", got, want)
	}
}

func TestImporterKeyRotation(t *testing.T) {
	oldKey, newKey := expSealKey(t, 1), expSealKey(t, 2)
	tokOld := expExportAt(t, expContext(t, expParams(t, 18, 32, true)), oldKey, expT0)
	tokNew := expExportAt(t, expContext(t, expParams(t, 17, 16, true)), newKey, expT0)
	tests := []struct {
		name    string
		keys    []*SealKey
		tok     []byte
		wantErr uint32 // minor; 0 with ok
		ok      bool
	}{
		{name: "both keys, old token", keys: []*SealKey{oldKey, newKey}, tok: tokOld, ok: true},
		{name: "both keys, new token", keys: []*SealKey{oldKey, newKey}, tok: tokNew, ok: true},
		{name: "old key retired", keys: []*SealKey{newKey}, tok: tokOld, wantErr: MinorBadSealKey},
		{name: "nil keys ignored", keys: []*SealKey{nil, newKey, nil}, tok: tokNew, ok: true},
		{name: "no keys", keys: nil, tok: tokNew, wantErr: MinorBadSealKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := expImporterAt(expT0.Add(time.Second), tt.keys...).Import(tt.tok)
			if tt.ok {
				if err != nil {
					t.Fatalf("Import: %v", err)
				}
				return
			}
			expRequireStatus(t, err, StatusDefectiveToken, tt.wantErr)
		})
	}
	// Same id twice: the last key wins.
	dup := expSealKey(t, 1)
	if _, err := expImporterAt(expT0.Add(time.Second), oldKey, dup).Import(tokOld); !errors.Is(err, StatusDefectiveToken) {
		t.Errorf("last key with id 1 should have replaced the first: %v", err)
	}
	// Zeroing a key the Importer holds retires it.
	im := expImporterAt(expT0.Add(time.Second), oldKey, newKey)
	newKey.Zero()
	_, err := im.Import(tokNew)
	expRequireStatus(t, err, StatusDefectiveToken, MinorBadSealKey)
}

func TestImportedContextReexports(t *testing.T) {
	// listener → worker A → worker B: state survives two hops.
	key := expSealKey(t, 1)
	c := expContext(t, expParams(t, 20, 32, true))
	c.recv.next, c.recv.recvmap, c.sendSeq = 9, 0x1ff, 77
	before := expSnap(c)
	a, err := expImporterAt(expT0, key).Import(expExportAt(t, c, key, expT0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := expImporterAt(expT0.Add(2*time.Second), key).Import(expExportAt(t, a, key, expT0.Add(time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	expCompareState(t, before, expSnap(b))
	if _, err := a.Export(key); !errors.Is(err, StatusNoContext) {
		t.Errorf("intermediate context still exportable: %v", err)
	}
}

// expPeerPair returns an initiator and an acceptor context sharing keys of the
// given enctype, as a completed establishment leaves them: each side's
// send sequence is the other's expected receive sequence (RFC 4121 §4.2.6).
func expPeerPair(t *testing.T, etype int32, keyLen int, acceptorSubkey bool, flags Flags) (ini, acc *Context) {
	t.Helper()
	p := expParams(t, etype, keyLen, acceptorSubkey)
	p.flags = flags
	const iniSeq, accSeq = 0x3fff_fff0, 0x1000
	pi := p
	pi.initiator = true
	pi.sessionKey, pi.subkey, pi.acceptorSubkey = p.sessionKey.Clone(), p.subkey.Clone(), p.acceptorSubkey.Clone()
	pi.sendSeq, pi.recvSeq = iniSeq, accSeq
	pa := p
	pa.sendSeq, pa.recvSeq = accSeq, iniSeq
	return expContext(t, pi), expContext(t, pa)
}

// expExchange has from send n Wrap tokens and one MIC to to, and fails unless
// every one is accepted with GSS_S_COMPLETE (no GAP, UNSEQ or DUPLICATE).
// It returns the Wrap tokens.
func expExchange(t *testing.T, from, to *Context, n int, label string) [][]byte {
	t.Helper()
	var toks [][]byte
	for i := range n {
		msg := fmt.Appendf(nil, "%s message %d", label, i)
		tok, err := from.Wrap(msg, i%2 == 0)
		if err != nil {
			t.Fatalf("%s: Wrap %d: %v", label, i, err)
		}
		got, conf, err := to.Unwrap(tok)
		if err != nil {
			t.Fatalf("%s: Unwrap %d: %v", label, i, err)
		}
		if !bytes.Equal(got, msg) || conf != (i%2 == 0) {
			t.Fatalf("%s: Unwrap %d = %q conf=%v", label, i, got, conf)
		}
		toks = append(toks, tok)
	}
	mic, err := from.GetMIC([]byte(label))
	if err != nil {
		t.Fatalf("%s: GetMIC: %v", label, err)
	}
	if err := to.VerifyMIC([]byte(label), mic); err != nil {
		t.Fatalf("%s: VerifyMIC: %v", label, err)
	}
	return toks
}

func TestImportContinuesPerMessageState(t *testing.T) {
	const flags = FlagMutual | FlagReplay | FlagSequence | FlagConf | FlagInteg | FlagTrans
	key := expSealKey(t, 1)
	for _, et := range expEtypes {
		for _, ask := range []bool{false, true} {
			t.Run(fmt.Sprintf("etype%d/acceptor-subkey=%v", et.etype, ask), func(t *testing.T) {
				ini, acc := expPeerPair(t, et.etype, et.keyLen, ask, flags)
				before := expExchange(t, ini, acc, 3, "initiator before export")
				expExchange(t, acc, ini, 3, "acceptor before export")

				tok := expExportAt(t, acc, key, expT0)
				// The exporter is dead for every per-message call.
				if _, err := acc.Wrap([]byte("x"), true); !errors.Is(err, StatusNoContext) {
					t.Errorf("Wrap after export: %v", err)
				}
				if _, _, err := acc.Unwrap(before[0]); !errors.Is(err, StatusNoContext) {
					t.Errorf("Unwrap after export: %v", err)
				}
				if _, err := acc.GetMIC([]byte("x")); !errors.Is(err, StatusNoContext) {
					t.Errorf("GetMIC after export: %v", err)
				}
				if err := acc.VerifyMIC([]byte("x"), before[0]); !errors.Is(err, StatusNoContext) {
					t.Errorf("VerifyMIC after export: %v", err)
				}

				worker, err := expImporterAt(expT0.Add(time.Second), key).Import(tok)
				if err != nil {
					t.Fatal(err)
				}
				// The initiator, with SEQUENCE, sees the acceptor's numbers
				// continue exactly; the worker sees the initiator's do too.
				expExchange(t, worker, ini, 3, "acceptor after import")
				expExchange(t, ini, worker, 3, "initiator after import")

				// A token the exporter accepted is a replay for the worker.
				for i, old := range before {
					_, _, err := worker.Unwrap(old)
					if !errors.Is(err, StatusDuplicateToken) {
						t.Errorf("replayed pre-export token %d: %v, want GSS_S_DUPLICATE_TOKEN", i, err)
					}
				}
			})
		}
	}
}

func TestImportWithoutPerMessageHistory(t *testing.T) {
	// A context exported straight after establishment (the listener's
	// case): the first tokens in each direction are accepted as in order.
	const flags = FlagReplay | FlagSequence | FlagConf | FlagInteg | FlagTrans
	key := expSealKey(t, 1)
	ini, acc := expPeerPair(t, 18, 32, true, flags)
	worker, err := expImporterAt(expT0, key).Import(expExportAt(t, acc, key, expT0))
	if err != nil {
		t.Fatal(err)
	}
	expExchange(t, ini, worker, 2, "initiator")
	expExchange(t, worker, ini, 2, "acceptor")
}

func TestExportWithoutTransStillWorks(t *testing.T) {
	const flags = FlagMutual | FlagReplay | FlagSequence | FlagConf | FlagInteg // no TRANS
	ini, acc := expPeerPair(t, 20, 32, true, flags)
	expExchange(t, ini, acc, 2, "before")
	_, err := acc.Export(expSealKey(t, 1))
	expRequireStatus(t, err, StatusUnavailable, MinorNone)
	expExchange(t, ini, acc, 2, "initiator after refused export")
	expExchange(t, acc, ini, 2, "acceptor after refused export")
}
