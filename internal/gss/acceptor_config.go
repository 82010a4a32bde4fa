package gss

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

// DefaultClockSkew is the clock skew allowed when AcceptorConfig.ClockSkew
// is zero: MIT's and RFC 4120's customary five minutes.
const DefaultClockSkew = 5 * time.Minute

// AcceptorConfig is the policy of an Acceptor. The zero value of every
// field but Keytab means its default.
type AcceptorConfig struct {
	// Keytab holds the service keys. Required. The Acceptor reads it once,
	// in NewAcceptor, and keeps only keys derived from it: a reloaded
	// keytab needs a new Acceptor (pass the same ReplayCache to it).
	Keytab *keytab.Keytab

	// Services lists the acceptor principals clients may authenticate to,
	// as "service/host@REALM"; a name without "@REALM" matches that name in
	// any realm of the keytab. Empty: any principal with an AES key in the
	// keytab. A ticket for any other principal is refused with
	// KRB_AP_ERR_NOT_US even if the keytab could decrypt it.
	//
	// The list is matched against the ticket's sname and realm, which lie
	// outside its encrypted part (RFC 4120 §5.3): anyone can rewrite them,
	// and the only thing binding a ticket to a principal is that it
	// decrypts with that principal's key. The list is therefore a security
	// boundary only when every allowed principal has a key that no other
	// principal of the keytab shares: a ticket issued for another principal
	// and relabelled to an allowed one then fails to decrypt
	// (KRB_AP_ERR_MODIFIED). When an allowed and a disallowed principal
	// share a key, as host/x and HTTP/x do in AD and msktutil keytabs, a
	// ticket for the disallowed one relabelled to the allowed one is
	// accepted, as that principal (Context.AcceptorName is the label), and
	// no acceptor can tell the difference: the list then routes and
	// filters, it does not protect. To keep a principal out for certain,
	// leave its keys out of the keytab.
	Services []string

	// ClockSkew is the largest accepted difference between the
	// authenticator's time and ours, and the grace period on the ticket's
	// start and end times (RFC 4120 §1.6). 0 means DefaultClockSkew.
	ClockSkew time.Duration

	// ReplayCache remembers accepted authenticators. nil: a private cache
	// of DefaultReplayCacheEntries. Share one cache across the Acceptors
	// of successive keytab reloads so that a reload does not open a replay
	// window. Any ReplayStore will do: a shared one (Redis) makes an
	// authenticator accepted by one host a replay on every other.
	ReplayCache ReplayStore

	// ChannelBindings, when non-nil, is the application data of the
	// channel bindings the initiator must have bound the context to: the
	// Bnd field of its checksum must equal channelBindingsHash of it (the
	// MD5 of RFC 2744 gss_channel_bindings_struct with GSS_C_AF_UNSPEC
	// empty addresses and this application data, RFC 4121 §4.1.1.2), and
	// the context then carries FlagChannelBound. An initiator that sent no
	// bindings (an all-zero Bnd) is refused too: MIT accepts it unless the
	// client flagged KERB_AP_OPTIONS_CBT, but bindings that can be left out
	// protect nothing.
	//
	// nil: no bindings are checked. The Bnd field is then ignored whatever
	// it holds, as MIT does: an initiator may bind to a channel the
	// acceptor does not know about.
	ChannelBindings []byte

	// AllowDelegation keeps a delegated credential in the Context
	// (DelegatedCredential, FlagDeleg), its enc-part in the clear: it
	// carries the forwarded tickets' session keys (a TGT's). The Context
	// holds it until Delete or Export zeroes it; Export puts it in the
	// sealed token. Off: a delegated KRB-CRED is still decrypted and
	// checked, as MIT does (a malformed one fails the handshake), then every
	// clear copy of it is zeroed and dropped, and FlagDeleg is not
	// returned.
	AllowDelegation bool

	// Now returns the current time. nil: time.Now.
	Now func() time.Time

	// Rand is the source of acceptor subkeys, sequence numbers and
	// confounders. nil: crypto/rand.
	Rand io.Reader
}

// NewAcceptor checks cfg and prepares the keys. It fails if the keytab
// holds no AES key for any allowed principal, or if a listed service has no
// AES key at all, so that a configuration mistake shows at start (or
// reload) rather than as refused clients.
func NewAcceptor(cfg AcceptorConfig) (*Acceptor, error) {
	if cfg.Keytab == nil {
		return nil, errors.New("gss: acceptor needs a keytab")
	}
	if cfg.ClockSkew < 0 {
		return nil, fmt.Errorf("gss: negative clock skew %v", cfg.ClockSkew)
	}
	a := &Acceptor{
		skew:       cfg.ClockSkew,
		rc:         cfg.ReplayCache,
		allowDeleg: cfg.AllowDelegation,
		now:        cfg.Now,
		rand:       cfg.Rand,
	}
	if a.skew == 0 {
		a.skew = DefaultClockSkew
	}
	if a.rc == nil {
		a.rc = NewReplayCache(0)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.rand == nil {
		a.rand = rand.Reader
	}
	if cfg.ChannelBindings != nil {
		a.haveCB = true
		a.cbHash = channelBindingsHash(cfg.ChannelBindings)
	}

	patterns := make([]servicePattern, 0, len(cfg.Services))
	for _, s := range cfg.Services {
		p, err := parseServicePattern(s)
		if err != nil {
			return nil, err
		}
		patterns = append(patterns, p)
	}

	if err := a.loadKeytab(cfg.Keytab); err != nil {
		return nil, err
	}
	for _, sp := range a.allPrincs {
		if len(patterns) == 0 || slices.ContainsFunc(patterns, func(p servicePattern) bool { return p.matches(sp) }) {
			a.principals = append(a.principals, sp)
		}
	}
	for _, p := range patterns {
		if !slices.ContainsFunc(a.principals, func(sp *servicePrincipal) bool { return p.matches(sp) && sp.hasAES() }) {
			return nil, fmt.Errorf("gss: service %q has no AES key in the keytab", p.String())
		}
	}
	if !slices.ContainsFunc(a.principals, (*servicePrincipal).hasAES) {
		return nil, errors.New("gss: keytab holds no AES key (enctype 17, 18, 19 or 20)")
	}
	return a, nil
}

// servicePattern is a parsed AcceptorConfig.Services entry.
type servicePattern struct {
	name  []string
	realm string // "" = any realm
}

// parseServicePattern parses "a/b@REALM" or "a/b".
func parseServicePattern(s string) (servicePattern, error) {
	var p servicePattern
	name := s
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		name, p.realm = s[:i], s[i+1:]
		if p.realm == "" {
			return p, fmt.Errorf("gss: service %q has an empty realm", s)
		}
	}
	if name == "" {
		return p, fmt.Errorf("gss: service %q has an empty name", s)
	}
	p.name = strings.Split(name, "/")
	if slices.Contains(p.name, "") {
		return p, fmt.Errorf("gss: service %q has an empty name component", s)
	}
	return p, nil
}

func (p servicePattern) matches(sp *servicePrincipal) bool {
	return (p.realm == "" || p.realm == sp.realm) && slices.Equal(p.name, sp.name)
}

func (p servicePattern) String() string {
	if p.realm == "" {
		return strings.Join(p.name, "/")
	}
	return strings.Join(p.name, "/") + "@" + p.realm
}
