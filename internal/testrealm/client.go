package testrealm

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// ClientKrb5Conf returns the path of a krb5.conf for this realm whose
// default_tkt_enctypes and default_tgs_enctypes name only enctype. A client
// using it asks for that enctype for both its TGT and its service tickets,
// which forces the session key's enctype. (Restricting only the TGS list
// is not enough: MIT's client then refuses its own TGT.)
func (r *Realm) ClientKrb5Conf(enctype int32) (string, error) {
	name, ok := enctypeNames[enctype]
	if !ok {
		return "", fmt.Errorf("testrealm: enctype %d is not an AES enctype (17, 18, 19, 20)", enctype)
	}
	path := filepath.Join(r.Dir, "krb5-"+strconv.Itoa(int(enctype))+".conf")
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := writeFileAtomic(path, krb5Conf(r.Name, r.KDCAddr, name)); err != nil {
		return "", err
	}
	return path, nil
}

// KinitWith gets a fresh TGT for UserPrincipal, with the keys in
// UserKeytab, into ccache ("FILE:/path", or a plain path) using the given
// krb5.conf.
func (r *Realm) KinitWith(krb5conf, ccache string) error {
	if !strings.Contains(ccache, ":") {
		ccache = "FILE:" + ccache
	}
	cmd := exec.Command(kinitName, "-k", "-t", r.UserKeytab, r.UserPrincipal)
	cmd.Env = append(r.Env(), "KRB5_CONFIG="+krb5conf, "KRB5CCNAME="+ccache)
	if _, err := r.runCmd(cmd, nil); err != nil {
		return fmt.Errorf("%w (KDC log:\n%s)", err, r.kdcOutput.String())
	}
	return nil
}

// GoClient returns a gokrb5 client for UserPrincipal, logged in with the
// keys in UserKeytab, using the given krb5.conf (r.Krb5Conf, or one from
// ClientKrb5Conf to force the session key enctype).
//
// gokrb5 reports directives it does not know (such as qualify_shortname)
// as config.UnsupportedDirective; that is not fatal. PA-FX-FAST is
// disabled because an MIT KDC without armor keys does not offer FAST.
func (r *Realm) GoClient(krb5conf string) (*client.Client, error) {
	cfg, err := config.Load(krb5conf)
	if err != nil {
		var unsupported config.UnsupportedDirective
		if !errors.As(err, &unsupported) || cfg == nil {
			return nil, fmt.Errorf("testrealm: loading %s: %w", krb5conf, err)
		}
	}
	kt, err := keytab.Load(r.UserKeytab)
	if err != nil {
		return nil, fmt.Errorf("testrealm: loading %s: %w", r.UserKeytab, err)
	}
	cl := client.NewWithKeytab("alice", r.Name, kt, cfg, client.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		cl.Destroy()
		return nil, fmt.Errorf("testrealm: gokrb5 login as %s: %w", r.UserPrincipal, err)
	}
	return cl, nil
}
