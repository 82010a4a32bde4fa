package main

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
)

// aesEnctypes are the enctypes the acceptor serves (RFC 3962, RFC 8009).
var aesEnctypes = []int32{17, 18, 19, 20}

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

// checkKeytab verifies that the keytab can serve the configured services:
// each allowed principal (or, with none configured, the keytab as a whole)
// has at least one AES key. Non-AES keys are reported as unusable.
func checkKeytab(kt *keytab.Keytab, services []string) (warnings []string, err error) {
	if len(kt.Entries) == 0 {
		return nil, fmt.Errorf("keytab holds no keys")
	}
	hasAES := map[string]bool{}
	for _, e := range kt.Entries {
		name := strings.Join(e.Principal.Components, "/") + "@" + e.Principal.Realm
		if slices.Contains(aesEnctypes, e.Key.KeyType) {
			hasAES[name] = true
			hasAES[strings.Join(e.Principal.Components, "/")] = true
		} else {
			warnings = append(warnings, fmt.Sprintf("%s kvno %d: enctype %d is not served (AES only: 17, 18, 19, 20)", name, e.KVNO, e.Key.KeyType))
		}
	}
	if len(services) == 0 {
		if len(hasAES) == 0 {
			return warnings, fmt.Errorf("keytab holds no AES keys (enctypes 17, 18, 19, 20)")
		}
		return warnings, nil
	}
	var missing []string
	for _, s := range services {
		if !hasAES[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return warnings, fmt.Errorf("keytab has no AES key for %s", strings.Join(missing, ", "))
	}
	return warnings, nil
}

// loadKeytab reads the keytab file at path.
func loadKeytab(path string) (*keytab.Keytab, error) {
	if path == "" {
		return nil, errors.New("no keytab configured (keytab: in the config file, or -keytab)")
	}
	kt, err := keytab.Load(path)
	if err != nil {
		return nil, fmt.Errorf("reading keytab %s: %w", path, err)
	}
	return kt, nil
}

// newAcceptor builds the Kerberos acceptor from the keytab in cfg.
func (d *daemonState) newAcceptor(cfg *config.Config) (*gss.Acceptor, keytabSummary, error) {
	kt, err := loadKeytab(cfg.Keytab)
	if err != nil {
		return nil, nil, err
	}
	warnings, err := checkKeytab(kt, cfg.Services)
	for _, w := range warnings {
		d.log.Warn("keytab entry not served", zap.String("entry", w))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("keytab %s: %w", cfg.Keytab, err)
	}
	var cb []byte
	if cfg.ChannelBindings != "" {
		cb = []byte(cfg.ChannelBindings)
	}
	a, err := gss.NewAcceptor(gss.AcceptorConfig{
		Keytab:          kt,
		Services:        cfg.Services,
		ClockSkew:       cfg.ClockSkew,
		ReplayCache:     d.replay,
		ChannelBindings: cb,
		AllowDelegation: cfg.AllowDelegation,
	})
	if err != nil {
		return nil, nil, err
	}
	return a, summarizeKeytab(kt), nil
}
