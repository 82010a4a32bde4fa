package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// keytabSummary lists, per principal, the kvno/enctype pairs a keytab
// holds. It is what -check-config prints and what the startup and reload
// log lines show, so an operator can match it against "kvno N" errors.
type keytabSummary map[string][]string

func summarizeKeytab(kt *keytab.Keytab) keytabSummary {
	s := keytabSummary{}
	for _, e := range kt.Entries {
		name := strings.Join(e.Principal.Components, "/") + "@" + e.Principal.Realm
		s[name] = append(s[name], fmt.Sprintf("kvno %d etype %d", e.KVNO, e.Key.KeyType))
	}
	for k := range s {
		sort.Strings(s[k])
	}
	return s
}

func (s keytabSummary) principals() []string {
	var ps []string
	for p := range s {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// unservedEntries describes the keytab entries the acceptor ignores: those
// of an enctype other than the four AES ones it serves.
func unservedEntries(kt *keytab.Keytab) []string {
	var out []string
	for _, e := range kt.Entries {
		if krb5crypto.Supported(e.Key.KeyType) {
			continue
		}
		name := strings.Join(e.Principal.Components, "/") + "@" + e.Principal.Realm
		out = append(out, fmt.Sprintf("%s kvno %d: enctype %d is not served (AES only: 17, 18, 19, 20)", name, e.KVNO, e.Key.KeyType))
	}
	return out
}

// loadKeytab reads the keytab file at path and refuses one without keys.
func loadKeytab(path string) (*keytab.Keytab, error) {
	if path == "" {
		return nil, errors.New("no keytab configured (keytab: in the config file, or -keytab)")
	}
	kt, err := keytab.Load(path)
	if err != nil {
		return nil, fmt.Errorf("reading keytab %s: %w", path, err)
	}
	if len(kt.Entries) == 0 {
		return nil, fmt.Errorf("keytab %s: keytab holds no keys", path)
	}
	return kt, nil
}

// buildAcceptor builds the Kerberos acceptor cfg describes, from the keytab
// it names, as the daemon serves with it at start and on reload and as
// -check-config validates it. gss.NewAcceptor decides whether the keytab
// can serve the configured services (an AES key for each, or for some
// principal when none is listed); its refusal is returned naming the
// keytab. warn is called with each keytab entry the acceptor will not use.
func buildAcceptor(cfg *config.Config, replay gss.ReplayStore, warn func(entry string)) (*gss.Acceptor, keytabSummary, error) {
	kt, err := loadKeytab(cfg.Keytab)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range unservedEntries(kt) {
		warn(w)
	}
	var cb []byte
	if cfg.ChannelBindings != "" {
		cb = []byte(cfg.ChannelBindings)
	}
	a, err := gss.NewAcceptor(gss.AcceptorConfig{
		Keytab:          kt,
		Services:        cfg.Services,
		ClockSkew:       cfg.ClockSkew,
		ReplayCache:     replay,
		ChannelBindings: cb,
		AllowDelegation: cfg.AllowDelegation,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("keytab %s: %w", cfg.Keytab, err)
	}
	return a, summarizeKeytab(kt), nil
}

// newAcceptor builds the acceptor for cfg with the daemon's replay cache,
// shared by every acceptor a reload makes so that no replay window opens,
// and logs the keytab entries it will not use.
func (d *daemonState) newAcceptor(cfg *config.Config) (*gss.Acceptor, keytabSummary, error) {
	return buildAcceptor(cfg, d.store, func(entry string) {
		d.log.Warn("keytab entry not served", zap.String("entry", entry))
	})
}
