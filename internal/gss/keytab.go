package gss

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// servicePrincipal is one principal of the keytab with its keys.
type servicePrincipal struct {
	name  []string
	realm string
	keys  []*serviceKey
}

// serviceKey is one keytab key. usage caches the derived ticket key (key
// usage 2): deriving it is most of the cost of decrypting a ticket, and
// it is the same for every handshake.
type serviceKey struct {
	kvno  uint32
	etype int32
	ts    time.Time
	usage *krb5crypto.Usage // nil for enctypes other than AES
}

// loadKeytab indexes the keytab by principal and derives the ticket key of
// every AES entry. For duplicate (principal, kvno, etype) entries the most
// recent timestamp wins, as in gokrb5 and MIT.
func (a *Acceptor) loadKeytab(kt *keytab.Keytab) error {
	for _, e := range kt.Entries {
		var sp *servicePrincipal
		for _, p := range a.allPrincs {
			if p.realm == e.Principal.Realm && slices.Equal(p.name, e.Principal.Components) {
				sp = p
				break
			}
		}
		if sp == nil {
			sp = &servicePrincipal{name: slices.Clone(e.Principal.Components), realm: e.Principal.Realm}
			a.allPrincs = append(a.allPrincs, sp)
		}
		k := &serviceKey{kvno: e.KVNO, etype: e.Key.KeyType, ts: e.Timestamp}
		if krb5crypto.Supported(k.etype) {
			u, err := krb5crypto.DeriveUsage(k.etype, e.Key.KeyValue, keyusage.KDC_REP_TICKET)
			if err != nil {
				return fmt.Errorf("gss: keytab key for %s kvno %d etype %d: %w",
					PrincipalString(sp.name, sp.realm), k.kvno, k.etype, err)
			}
			k.usage = u
		}
		if i := slices.IndexFunc(sp.keys, func(o *serviceKey) bool { return o.kvno == k.kvno && o.etype == k.etype }); i >= 0 {
			if !k.ts.After(sp.keys[i].ts) {
				continue
			}
			sp.keys[i] = k
			continue
		}
		sp.keys = append(sp.keys, k)
	}
	return nil
}

func (sp *servicePrincipal) hasAES() bool {
	return slices.ContainsFunc(sp.keys, func(k *serviceKey) bool { return k.usage != nil })
}

// describeKeys lists a principal's keys for error messages, e.g.
// "kvno 2 etype 17,18; kvno 3 etype 18". It names enctypes and versions,
// never key bytes.
func (sp *servicePrincipal) describeKeys() string {
	ks := slices.Clone(sp.keys)
	slices.SortFunc(ks, func(x, y *serviceKey) int {
		if x.kvno != y.kvno {
			return int(int64(x.kvno) - int64(y.kvno))
		}
		return int(x.etype - y.etype)
	})
	var b strings.Builder
	for i, k := range ks {
		if i == 0 || ks[i-1].kvno != k.kvno {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "kvno %d etype %d", k.kvno, k.etype)
		} else {
			fmt.Fprintf(&b, ",%d", k.etype)
		}
	}
	return b.String()
}

// selectKey applies the service policy and finds the ticket's key.
func (hs *acceptState) selectKey() error {
	t := &hs.req.Ticket
	sname := PrincipalString(t.SName.NameString, t.Realm)
	for _, sp := range hs.a.principals {
		if sp.realm == t.Realm && slices.Equal(sp.name, t.SName.NameString) {
			hs.sp = sp
			break
		}
	}
	if hs.sp == nil {
		if slices.ContainsFunc(hs.a.allPrincs, func(sp *servicePrincipal) bool {
			return sp.realm == t.Realm && slices.Equal(sp.name, t.SName.NameString)
		}) {
			return krbError(StatusUnauthorized, errorcode.KRB_AP_ERR_NOT_US,
				fmt.Sprintf("ticket is for %s, which is not an allowed service", sname), nil)
		}
		return krbError(StatusNoCred, errorcode.KRB_AP_ERR_NOKEY,
			fmt.Sprintf("ticket is for %s, which has no key in the keytab", sname), nil)
	}
	etype := t.EncPart.EType
	kvno := uint32(t.EncPart.KVNO)
	if !krb5crypto.Supported(etype) {
		return krbError(StatusUnavailable, errorcode.KDC_ERR_ETYPE_NOSUPP,
			fmt.Sprintf("ticket for %s is encrypted with etype %d; only AES enctypes 17, 18, 19 and 20 are accepted", sname, etype), nil)
	}
	var best *serviceKey
	kvnoSeen := false
	for _, k := range hs.sp.keys {
		// RFC 4120 §5.3: the kvno is optional; without one, use the
		// newest key version as MIT does.
		match := t.EncPart.KVNO == 0 || k.kvno == kvno || (k.kvno < 256 && k.kvno == kvno&0xff)
		if !match {
			continue
		}
		kvnoSeen = true
		if k.etype == etype && (best == nil || k.kvno > best.kvno) {
			best = k
		}
	}
	if best == nil || best.usage == nil {
		code, major := errorcode.KRB_AP_ERR_NOKEY, StatusNoCred
		if !kvnoSeen {
			code = errorcode.KRB_AP_ERR_BADKEYVER
		}
		return krbError(major, code, fmt.Sprintf("no key for %s kvno %d etype %d in keytab (have %s)",
			sname, t.EncPart.KVNO, etype, hs.sp.describeKeys()), nil)
	}
	hs.key = best
	return nil
}
