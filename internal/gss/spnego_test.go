package gss

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// oidIAKERB is 1.3.6.1.5.2.5, a mechanism the acceptor does not speak.
var oidIAKERB = []byte{0x2b, 0x06, 0x01, 0x05, 0x02, 0x05}

// oidNTLM is 1.3.6.1.4.1.311.2.2.10.
var oidNTLM = []byte{0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a}

func TestSPNEGOCodecRoundTrip(t *testing.T) {
	initTests := []struct {
		name       string
		mechs      [][]byte
		tok, mic   []byte
		wantTok    bool
		wantMIC    bool
		wantListDE string // hex of the MechTypeList
	}{
		{"krb5 with token", [][]byte{oidKRB5}, []byte("ap-req"), nil, true, false, "300b06092a864886f712010202"},
		{"three mechs, token and MIC", [][]byte{oidKRB5MS, oidKRB5, oidNTLM}, []byte("t"), []byte("m"), true, true,
			"302206092a864882f71201020206092a864886f712010202060a2b06010401823702020a"},
		{"no token", [][]byte{oidNTLM}, nil, nil, false, false, "300c060a2b06010401823702020a"},
		{"empty token", [][]byte{oidKRB5}, []byte{}, nil, true, false, "300b06092a864886f712010202"},
	}
	for _, tt := range initTests {
		t.Run("init/"+tt.name, func(t *testing.T) {
			b := marshalSPNEGOInit(tt.mechs, tt.tok, tt.mic)
			if !isSPNEGOToken(b) {
				t.Fatalf("%x is not recognised as an SPNEGO token", b)
			}
			got, err := parseSPNEGOInit(b)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.mechTypes) != len(tt.mechs) {
				t.Fatalf("%d mechs, want %d", len(got.mechTypes), len(tt.mechs))
			}
			for i := range tt.mechs {
				if !bytes.Equal(got.mechTypes[i], tt.mechs[i]) {
					t.Errorf("mech %d = %x, want %x", i, got.mechTypes[i], tt.mechs[i])
				}
			}
			if h := hex.EncodeToString(got.mechTypesDER); h != tt.wantListDE {
				t.Errorf("MechTypeList = %s, want %s", h, tt.wantListDE)
			}
			if got.hasMechToken != tt.wantTok || !bytes.Equal(got.mechToken, tt.tok) {
				t.Errorf("mechToken = %v %q, want %v %q", got.hasMechToken, got.mechToken, tt.wantTok, tt.tok)
			}
			if got.hasMIC != tt.wantMIC || !bytes.Equal(got.mechListMIC, tt.mic) {
				t.Errorf("mechListMIC = %v %q, want %v %q", got.hasMIC, got.mechListMIC, tt.wantMIC, tt.mic)
			}
		})
	}

	respTests := []struct {
		name string
		resp negTokenResp
		hex  string
	}{
		{"accept-completed with AP-REP", negTokenResp{negState: negStateAcceptCompleted, supportedMech: oidKRB5, responseToken: []byte{1, 2}, hasResponseToken: true},
			"a11a3018a0030a0100a10b06092a864886f712010202a2040402" + "0102"},
		{"reject only", negTokenResp{negState: negStateReject}, "a1073005a0030a0102"},
		{"MIC only", negTokenResp{negState: negStateAbsent, mechListMIC: []byte{9}, hasMIC: true}, "a1073005a3030401" + "09"},
		{"request-mic MS OID", negTokenResp{negState: negStateRequestMIC, supportedMech: oidKRB5MS}, "a1143012a0030a0103a10b06092a864882f712010202"},
	}
	for _, tt := range respTests {
		t.Run("resp/"+tt.name, func(t *testing.T) {
			b := marshalNegTokenResp(&tt.resp)
			if h := hex.EncodeToString(b); h != tt.hex {
				t.Errorf("encoding = %s, want %s", h, tt.hex)
			}
			got, err := parseNegTokenResp(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.negState != tt.resp.negState || !bytes.Equal(got.supportedMech, tt.resp.supportedMech) ||
				got.hasResponseToken != tt.resp.hasResponseToken || !bytes.Equal(got.responseToken, tt.resp.responseToken) ||
				got.hasMIC != tt.resp.hasMIC || !bytes.Equal(got.mechListMIC, tt.resp.mechListMIC) {
				t.Errorf("round trip: got %+v, want %+v", got, tt.resp)
			}
		})
	}
}

// spnegoFrame wraps an inner NegotiationToken in the RFC 2743 framing with
// the SPNEGO OID.
func spnegoFrame(inner []byte) []byte {
	out := []byte{0x60}
	out = appendDERLength(out, 2+len(oidSPNEGO)+len(inner))
	out = append(out, 0x06, byte(len(oidSPNEGO)))
	out = append(out, oidSPNEGO...)
	return append(out, inner...)
}

func TestSPNEGOParseMalformed(t *testing.T) {
	krb5List := "300b06092a864886f712010202"
	tooMany := bytes.Repeat([]byte{0x06, 0x01, 0x2a}, maxSPNEGOMechs+1)
	tooManyList := append([]byte{0x30, 0x81, byte(len(tooMany))}, tooMany...)
	tests := []struct {
		name  string
		token []byte
		init  bool // parse with parseSPNEGOInit, else parseNegTokenResp
		major Major
	}{
		{"init: empty", nil, true, StatusDefectiveToken},
		{"init: wrong OID", appendInitialToken(nil, oidKRB5, tokIDAPReq, []byte{0xa0, 0x00}), true, StatusBadMech},
		{"init: NegTokenResp instead", spnegoFrame(mustHex(t, "a1073005a0030a0100")), true, StatusDefectiveToken},
		{"init: no SEQUENCE", spnegoFrame(mustHex(t, "a0020400")), true, StatusDefectiveToken},
		{"init: no mechTypes", spnegoFrame(mustHex(t, "a0083006a2040402aabb")), true, StatusDefectiveToken},
		{"init: empty mech list", spnegoFrame(mustHex(t, "a0063004a0023000")), true, StatusDefectiveToken},
		{"init: mech list holds an INTEGER", spnegoFrame(mustHex(t, "a0093007a0053003020101")), true, StatusDefectiveToken},
		{"init: too many mechs", spnegoFrame(buildInit(t, tooManyList, "")), true, StatusDefectiveToken},
		{"init: mechToken not OCTET STRING", spnegoFrame(buildInit(t, mustHex(t, krb5List), "a2030c0161")), true, StatusDefectiveToken},
		{"init: bad reqFlags", spnegoFrame(buildInit(t, mustHex(t, krb5List), "a103030108")), true, StatusDefectiveToken},
		{"init: fields out of order", spnegoFrame(buildInit(t, mustHex(t, krb5List), "a3030401aaa2030401bb")), true, StatusDefectiveToken},
		{"init: trailing garbage in extension", spnegoFrame(buildInit(t, mustHex(t, krb5List), "a503")), true, StatusDefectiveToken},
		{"init: non-minimal length", spnegoFrame(mustHex(t, "a0810f300da00b"+"06092a864886f712010202")), true, StatusDefectiveToken},
		{"init: trailing bytes after NegTokenInit", spnegoFrame(append(buildInit(t, mustHex(t, krb5List), ""), 0)), true, StatusDefectiveToken},
		{"resp: empty", nil, false, StatusDefectiveToken},
		{"resp: framed", spnegoFrame(mustHex(t, "a1073005a0030a0100")), false, StatusDefectiveToken},
		{"resp: negState 4", mustHex(t, "a1073005a0030a0104"), false, StatusDefectiveToken},
		{"resp: negState INTEGER", mustHex(t, "a1073005a003020100"), false, StatusDefectiveToken},
		{"resp: supportedMech not OID", mustHex(t, "a1073005a1030401aa"), false, StatusDefectiveToken},
		{"resp: indefinite length", mustHex(t, "a180300080000000"), false, StatusDefectiveToken},
		{"resp: trailing byte", mustHex(t, "a1073005a0030a010000"), false, StatusDefectiveToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.init {
				_, err = parseSPNEGOInit(tt.token)
			} else {
				_, err = parseNegTokenResp(tt.token)
			}
			if err == nil {
				t.Fatalf("%x parsed", tt.token)
			}
			if !errors.Is(err, tt.major) {
				t.Errorf("error %v, want major %v", err, tt.major)
			}
		})
	}

	t.Run("extensions skipped", func(t *testing.T) {
		b := spnegoFrame(buildInit(t, mustHex(t, krb5List), "a2030401aaa4020500"))
		got, err := parseSPNEGOInit(b)
		if err != nil {
			t.Fatal(err)
		}
		if !got.hasMechToken || !bytes.Equal(got.mechToken, []byte{0xaa}) {
			t.Errorf("mechToken %x", got.mechToken)
		}
	})
}

// buildInit encodes [0] SEQUENCE { [0] list, rest... } by hand.
func buildInit(t *testing.T, list []byte, restHex string) []byte {
	t.Helper()
	f0 := append([]byte{0xa0}, appendDERLength(nil, len(list))...)
	f0 = append(f0, list...)
	body := append(f0, mustHex(t, restHex)...)
	seq := append([]byte{0x30}, appendDERLength(nil, len(body))...)
	seq = append(seq, body...)
	out := append([]byte{0xa0}, appendDERLength(nil, len(seq))...)
	return append(out, seq...)
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// spnegoPeer is a Go initiator speaking SPNEGO by hand against a
// Handshake.
type spnegoPeer struct {
	t     *testing.T
	in    *Initiator
	mechs [][]byte
	h     *Handshake
}

func newSPNEGOPeer(t *testing.T, a *Acceptor, tkt func() *Initiator, mechs ...[]byte) *spnegoPeer {
	return &spnegoPeer{t: t, in: tkt(), mechs: mechs, h: a.NewHandshake()}
}

// listDER is the MechTypeList both sides MIC.
func (p *spnegoPeer) listDER() []byte { return marshalMechTypeList(p.mechs) }

// resp parses an acceptor reply.
func (p *spnegoPeer) resp(out []byte) *negTokenResp {
	p.t.Helper()
	r, err := parseNegTokenResp(out)
	if err != nil {
		p.t.Fatalf("acceptor reply %x: %v", out, err)
	}
	return r
}

func TestHandshakeSPNEGO(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 2, etype: 18}
	kt := testKeytab(t, svc)
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})
	newInit := func(f Flags, ms bool) func() *Initiator {
		return func() *Initiator {
			return newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: f, UseMicrosoftOID: ms})
		}
	}
	mutual := FlagMutual | FlagReplay | FlagSequence
	plain := FlagReplay | FlagSequence

	tests := []struct {
		name         string
		flags        Flags
		msOID        bool     // inner token framed with the Microsoft OID
		mechs        [][]byte // offered
		optimistic   bool     // send the AP-REQ in NegTokenInit
		initMIC      bool     // initiator MICs in its first token (needs a context, so no mutual)
		wantSupp     []byte
		wantFirst    int // negState of the first reply
		wantFirstMIC bool
		wantLegs     int // initiator tokens in all
	}{
		{name: "krb5 mutual", flags: mutual, mechs: [][]byte{oidKRB5}, optimistic: true,
			wantSupp: oidKRB5, wantFirst: negStateAcceptCompleted, wantLegs: 1},
		{name: "krb5 no mutual", flags: plain, mechs: [][]byte{oidKRB5}, optimistic: true,
			wantSupp: oidKRB5, wantFirst: negStateAcceptCompleted, wantLegs: 1},
		{name: "MS OID first", flags: mutual, msOID: true, mechs: [][]byte{oidKRB5MS, oidKRB5}, optimistic: true,
			wantSupp: oidKRB5MS, wantFirst: negStateAcceptIncomplete, wantFirstMIC: true, wantLegs: 2},
		{name: "MS OID listed, standard inner token", flags: mutual, mechs: [][]byte{oidKRB5MS}, optimistic: true,
			wantSupp: oidKRB5MS, wantFirst: negStateAcceptCompleted, wantLegs: 1},
		{name: "krb5 and NTLM", flags: mutual, mechs: [][]byte{oidKRB5, oidNTLM}, optimistic: true,
			wantSupp: oidKRB5, wantFirst: negStateAcceptIncomplete, wantFirstMIC: true, wantLegs: 2},
		{name: "krb5 and NTLM no mutual", flags: plain, mechs: [][]byte{oidKRB5, oidNTLM}, optimistic: true,
			wantSupp: oidKRB5, wantFirst: negStateAcceptIncomplete, wantFirstMIC: true, wantLegs: 2},
		{name: "initiator MIC up front", flags: plain, mechs: [][]byte{oidKRB5}, optimistic: true, initMIC: true,
			wantSupp: oidKRB5, wantFirst: negStateAcceptCompleted, wantFirstMIC: true, wantLegs: 1},
		{name: "NTLM first: counter-proposal", flags: mutual, mechs: [][]byte{oidNTLM, oidKRB5}, optimistic: true,
			wantSupp: oidKRB5, wantFirst: negStateRequestMIC, wantLegs: 3},
		{name: "no optimistic token", flags: mutual, mechs: [][]byte{oidKRB5}, optimistic: false,
			wantSupp: oidKRB5, wantFirst: negStateAcceptIncomplete, wantLegs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAcceptor(t, kt, nil)
			p := newSPNEGOPeer(t, a, newInit(tt.flags, tt.msOID), tt.mechs...)
			apreq := mustInitialToken(t, p.in)
			var first []byte
			var imic []byte
			switch {
			case tt.initMIC:
				ic, err := p.in.Context()
				if err != nil {
					t.Fatal(err)
				}
				if imic, err = ic.GetMIC(p.listDER()); err != nil {
					t.Fatal(err)
				}
				first = marshalSPNEGOInit(tt.mechs, apreq, imic)
			case tt.optimistic:
				first = marshalSPNEGOInit(tt.mechs, apreq, nil)
			default:
				first = marshalSPNEGOInit(tt.mechs, nil, nil)
			}

			legs := 1
			ctx, out, err := p.h.Step(first)
			if err != nil {
				t.Fatalf("first Step: %v", err)
			}
			r := p.resp(out)
			if r.negState != tt.wantFirst {
				t.Errorf("first negState %d, want %d", r.negState, tt.wantFirst)
			}
			if !bytes.Equal(r.supportedMech, tt.wantSupp) {
				t.Errorf("supportedMech %s, want %s", oidString(r.supportedMech), oidString(tt.wantSupp))
			}
			if r.hasMIC != tt.wantFirstMIC {
				t.Errorf("first reply has MIC %v, want %v", r.hasMIC, tt.wantFirstMIC)
			}
			if tt.wantFirst == negStateRequestMIC || (!tt.optimistic && !tt.initMIC) {
				// Counter-proposal: the AP-REQ comes next, on its own.
				if ctx != nil || r.hasResponseToken {
					t.Fatalf("context or response token before the AP-REQ was sent")
				}
				legs++
				ctx, out, err = p.h.Step(marshalNegTokenResp(&negTokenResp{negState: negStateAbsent, responseToken: apreq, hasResponseToken: true}))
				if err != nil {
					t.Fatalf("AP-REQ Step: %v", err)
				}
				r = p.resp(out)
			}
			// The AP-REP, when mutual, rides in this reply.
			if got := r.hasResponseToken; got != (tt.flags&FlagMutual != 0) {
				t.Fatalf("response token present %v, want %v", got, tt.flags&FlagMutual != 0)
			}
			var ic *Context
			if r.hasResponseToken {
				if ic, err = p.in.Complete(r.responseToken); err != nil {
					t.Fatalf("initiator Complete: %v", err)
				}
			} else if ic, err = p.in.Context(); err != nil {
				t.Fatal(err)
			}
			if r.hasMIC {
				// The acceptor's MIC is its first per-message token.
				if err := ic.VerifyMIC(p.listDER(), r.mechListMIC); err != nil {
					t.Fatalf("acceptor mechListMIC: %v", err)
				}
			}
			if ctx == nil {
				if r.negState != negStateAcceptIncomplete || !r.hasMIC || imic != nil {
					t.Fatalf("no context, reply negState %d MIC %v", r.negState, r.hasMIC)
				}
				legs++
				mic, err := ic.GetMIC(p.listDER())
				if err != nil {
					t.Fatal(err)
				}
				ctx, out, err = p.h.Step(marshalNegTokenResp(&negTokenResp{negState: negStateAcceptCompleted, mechListMIC: mic, hasMIC: true}))
				if err != nil {
					t.Fatalf("MIC Step: %v", err)
				}
				if out != nil || ctx == nil {
					t.Fatalf("final step: out %x ctx %v", out, ctx)
				}
			} else if r.negState != negStateAcceptCompleted {
				t.Errorf("context with negState %d", r.negState)
			}
			if legs != tt.wantLegs {
				t.Errorf("%d initiator tokens, want %d", legs, tt.wantLegs)
			}
			defer ctx.Delete()
			if !ctx.ViaSPNEGO() {
				t.Error("context does not record SPNEGO")
			}
			if got := ctx.MicrosoftOID(); got != tt.msOID {
				t.Errorf("MicrosoftOID %v, want %v", got, tt.msOID)
			}
			// Sequence numbers continue after the MIC exchange in both
			// directions (with SEQUENCE, a reuse or a gap would fail).
			for i := range 3 {
				msg := []byte(fmt.Sprintf("message %d", i))
				w, err := ic.Wrap(msg, true)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := ctx.Unwrap(w); err != nil {
					t.Fatalf("acceptor Unwrap %d: %v", i, err)
				}
				m, err := ctx.GetMIC(msg)
				if err != nil {
					t.Fatal(err)
				}
				if err := ic.VerifyMIC(msg, m); err != nil {
					t.Fatalf("initiator VerifyMIC %d: %v", i, err)
				}
			}
			if _, _, err := p.h.Step(first); err == nil {
				t.Error("Step after the end succeeded")
			}
		})
	}
}

func TestHandshakeSPNEGOFailures(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 2, etype: 18}
	kt := testKeytab(t, svc)
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})
	initiator := func() *Initiator {
		return newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual | FlagReplay})
	}
	twoMechs := [][]byte{oidKRB5, oidNTLM}
	// firstLeg runs a two-mechanism negotiation to the point where the
	// acceptor waits for the initiator's MIC.
	firstLeg := func(t *testing.T, h *Handshake) *Context {
		in := initiator()
		_, out, err := h.Step(marshalSPNEGOInit(twoMechs, mustInitialToken(t, in), nil))
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseNegTokenResp(out)
		if err != nil {
			t.Fatal(err)
		}
		ic, err := in.Complete(r.responseToken)
		if err != nil {
			t.Fatal(err)
		}
		return ic
	}
	tests := []struct {
		name    string
		run     func(t *testing.T, a *Acceptor) (out []byte, err error)
		major   Major
		krbCode int32
		errTok  bool // the reject carries a KRB-ERROR token
	}{
		{
			name: "no Kerberos offered",
			run: func(t *testing.T, a *Acceptor) ([]byte, error) {
				_, out, err := a.NewHandshake().Step(marshalSPNEGOInit([][]byte{oidNTLM, oidIAKERB}, []byte("x"), nil))
				return out, err
			},
			major: StatusBadMech,
		},
		{
			name: "malformed NegTokenInit",
			run: func(t *testing.T, a *Acceptor) ([]byte, error) {
				_, out, err := a.NewHandshake().Step(spnegoFrame([]byte{0xa0, 0x00}))
				return out, err
			},
			major: StatusDefectiveToken,
		},
		{
			name: "Kerberos failure carried in the reject",
			run: func(t *testing.T, a *Acceptor) ([]byte, error) {
				tok := mustInitialToken(t, initiator())
				tok[len(tok)-5] ^= 0xff // inside the authenticator ciphertext
				_, out, err := a.NewHandshake().Step(marshalSPNEGOInit([][]byte{oidKRB5}, tok, nil))
				return out, err
			},
			major: StatusBadSig, krbCode: errorcode.KRB_AP_ERR_BAD_INTEGRITY, errTok: true,
		},
		{
			name: "SPNEGO nested in SPNEGO",
			run: func(t *testing.T, a *Acceptor) ([]byte, error) {
				inner := marshalSPNEGOInit([][]byte{oidKRB5}, mustInitialToken(t, initiator()), nil)
				_, out, err := a.NewHandshake().Step(marshalSPNEGOInit([][]byte{oidKRB5}, inner, nil))
				return out, err
			},
			major: StatusBadMech, krbCode: errorcode.KRB_ERR_GENERIC,
		},
		{
			name: "wrong initiator MIC",
			run: func(t *testing.T, a *Acceptor) ([]byte, error) {
				h := a.NewHandshake()
				ic := firstLeg(t, h)
				mic, err := ic.GetMIC(marshalMechTypeList([][]byte{oidKRB5})) // a downgraded list
				if err != nil {
					t.Fatal(err)
				}
				_, out, err := h.Step(marshalNegTokenResp(&negTokenResp{negState: negStateAcceptCompleted, mechListMIC: mic, hasMIC: true}))
				return out, err
			},
			major: StatusBadSig,
		},
		{
			name: "MIC missing",
			run: func(t *testing.T, a *Acceptor) ([]byte, error) {
				h := a.NewHandshake()
				firstLeg(t, h)
				_, out, err := h.Step(marshalNegTokenResp(&negTokenResp{negState: negStateAcceptCompleted}))
				return out, err
			},
			major: StatusDefectiveToken,
		},
		{
			name: "initiator rejects",
			run: func(t *testing.T, a *Acceptor) ([]byte, error) {
				h := a.NewHandshake()
				firstLeg(t, h)
				_, out, err := h.Step(marshalNegTokenResp(&negTokenResp{negState: negStateReject}))
				return out, err
			},
			major: StatusFailure,
		},
		{
			name: "one-shot Accept of a two-leg negotiation",
			run: func(t *testing.T, a *Acceptor) ([]byte, error) {
				_, out, err := a.Accept(marshalSPNEGOInit(twoMechs, mustInitialToken(t, initiator()), nil))
				return out, err
			},
			major: StatusFailure,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAcceptor(t, kt, nil)
			out, err := tt.run(t, a)
			if err == nil {
				t.Fatal("negotiation succeeded")
			}
			if !errors.Is(err, tt.major) {
				t.Errorf("error %v, want major %v", err, tt.major)
			}
			if got := KRBCodeOf(err); got != tt.krbCode {
				t.Errorf("Kerberos code %d, want %d", got, tt.krbCode)
			}
			if tt.major == StatusFailure && strings.Contains(tt.name, "one-shot") {
				if out != nil {
					t.Errorf("one-shot Accept returned a token %x", out)
				}
				return
			}
			if out == nil {
				if tt.name == "initiator rejects" {
					return
				}
				t.Fatal("no reject token")
			}
			r, perr := parseNegTokenResp(out)
			if perr != nil {
				t.Fatalf("reply %x: %v", out, perr)
			}
			if r.negState != negStateReject {
				t.Errorf("negState %d, want reject", r.negState)
			}
			if r.hasResponseToken != tt.errTok {
				t.Fatalf("reject carries a token: %v, want %v", r.hasResponseToken, tt.errTok)
			}
			if tt.errTok {
				if code := errorTokenCode(t, r.responseToken, oidKRB5); code != tt.krbCode {
					t.Errorf("KRB-ERROR code %d, want %d", code, tt.krbCode)
				}
			}
		})
	}

	t.Run("too many tokens", func(t *testing.T) {
		a := newTestAcceptor(t, kt, nil)
		h := a.NewHandshake()
		_, _, err := h.Step(marshalSPNEGOInit([][]byte{oidNTLM, oidKRB5}, []byte("ntlm"), nil))
		if err != nil {
			t.Fatal(err)
		}
		// Counter-proposal answered; now an endless stream of empty
		// responses must end.
		var last error
		for range maxHandshakeTokens + 1 {
			if _, _, last = h.Step(marshalNegTokenResp(&negTokenResp{negState: negStateAcceptIncomplete})); last != nil {
				break
			}
		}
		if last == nil {
			t.Fatal("handshake accepted more than its token limit")
		}
	})

	t.Run("Close deletes a pending context", func(t *testing.T) {
		a := newTestAcceptor(t, kt, nil)
		h := a.NewHandshake()
		firstLeg(t, h)
		pending := h.ctx
		h.Close()
		if _, err := pending.GetMIC([]byte("x")); !errors.Is(err, StatusNoContext) {
			t.Errorf("pending context usable after Close: %v", err)
		}
	})

	t.Run("raw krb5 through a Handshake", func(t *testing.T) {
		a := newTestAcceptor(t, kt, nil)
		ctx, out, err := a.NewHandshake().Step(mustInitialToken(t, initiator()))
		if err != nil {
			t.Fatal(err)
		}
		defer ctx.Delete()
		if ctx.ViaSPNEGO() {
			t.Error("raw krb5 context marked as SPNEGO")
		}
		if _, id, _, err := parseInitialToken(out); err != nil || id != tokIDAPRep {
			t.Errorf("reply is not an AP-REP token: %v", err)
		}
	})
}

// checkSPNEGOOutcome checks the outcome of Accept or Step on an SPNEGO
// token: a context, or a *Error with a major status whose reply, if any,
// is a NegTokenResp rejecting the negotiation.
func checkSPNEGOOutcome(t *testing.T, ctx *Context, out []byte, err error) {
	t.Helper()
	if err == nil {
		if ctx != nil {
			ctx.Delete()
		}
		return
	}
	if ctx != nil {
		t.Fatal("context with an error")
	}
	var ge *Error
	if !errors.As(err, &ge) || ge.Major == 0 {
		t.Fatalf("error %v lacks a major status", err)
	}
	if errors.Is(err, errDecodePanic) {
		t.Fatalf("panic: %v", err)
	}
	if out != nil {
		r, perr := parseNegTokenResp(out)
		if perr != nil || r.negState != negStateReject {
			t.Fatalf("reply %x to a failed negotiation is not a reject: %v", out, perr)
		}
	}
}

// spnegoFuzzSeeds are valid first tokens of several shapes.
func spnegoFuzzSeeds(t testing.TB, kt *keytab.Keytab) [][]byte {
	tkt, sess := makeTicket(t, ticketSpec{svc: fuzzSvc()})
	tok := func(f Flags) []byte {
		return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: f}))
	}
	return [][]byte{
		marshalSPNEGOInit([][]byte{oidKRB5}, tok(FlagMutual), nil),
		marshalSPNEGOInit([][]byte{oidKRB5MS, oidKRB5}, tok(FlagMutual|FlagSequence), nil),
		marshalSPNEGOInit([][]byte{oidNTLM, oidKRB5}, []byte("NTLMSSP"), nil),
		marshalSPNEGOInit([][]byte{oidKRB5}, nil, []byte("mic")),
		marshalNegTokenResp(&negTokenResp{negState: negStateAcceptCompleted, mechListMIC: []byte("m"), hasMIC: true}),
	}
}

// FuzzSPNEGO feeds arbitrary bytes to the SPNEGO decoders and to a live
// Handshake, twice (the second call takes the NegTokenResp path after a
// counter-proposal): no input may panic, a decoded NegTokenResp must
// re-encode to the same bytes (DER is canonical), and every failure is a
// *Error whose reply, if any, is a reject.
func FuzzSPNEGO(f *testing.F) {
	kt := testKeytab(f, fuzzSvc())
	for _, s := range spnegoFuzzSeeds(f, kt) {
		f.Add(s)
	}
	a := newTestAcceptor(f, kt, func(c *AcceptorConfig) { c.ReplayCache = NewReplayCache(1 << 22) })
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseSPNEGOInit(b)
		if r, err := parseNegTokenResp(b); err == nil {
			if r.hasMIC || r.hasResponseToken || r.supportedMech != nil || r.negState != negStateAbsent {
				// Without extensions the encoding is canonical.
				if re := marshalNegTokenResp(r); len(re) == len(b) && !bytes.Equal(re, b) {
					t.Fatalf("re-encoding %x gives %x", b, re)
				}
			}
		}
		h := a.NewHandshake()
		defer h.Close()
		ctx, out, err := h.Step(b)
		if !isSPNEGOToken(b) {
			if ctx != nil {
				ctx.Delete()
			}
			return
		}
		checkSPNEGOOutcome(t, ctx, out, err)
		if err == nil && ctx == nil {
			ctx, out, err = h.Step(b)
			checkSPNEGOOutcome(t, ctx, out, err)
		}
	})
}

// TestWriteSPNEGOFuzzCorpus writes (with -update-corpus) or checks the
// seed corpus of FuzzSPNEGO.
func TestWriteSPNEGOFuzzCorpus(t *testing.T) {
	kt := testKeytab(t, fuzzSvc())
	for i, s := range spnegoFuzzSeeds(t, kt) {
		path := filepath.Join("testdata", "fuzz", "FuzzSPNEGO", fmt.Sprintf("seed-%d", i))
		if !*updateCorpus {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("seed corpus file missing: %v (run go test -run TestWriteSPNEGOFuzzCorpus -update-corpus)", err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
