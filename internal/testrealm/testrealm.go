// Package testrealm stands up a throwaway MIT Kerberos realm on 127.0.0.1
// for tests.
//
// Start creates a KDC database, a service principal, a user and their
// keytabs in one directory, runs MIT's krb5kdc on a free loopback port, and
// fetches a TGT for the user. Everything is configured through files in that
// directory and through environment variables handed to the MIT programs
// (Env); nothing under /etc is read or written and no network other than
// loopback is used.
//
// Tests normally call New (one realm per test) or Shared (one realm per test
// binary, closed by Main from TestMain). Both skip the test when the MIT
// binaries are missing, except when the CI environment variable is set:
// continuous integration must never skip.
package testrealm

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// DefaultRealm is the realm name Start uses when Options.Realm is empty.
const DefaultRealm = "GSSACC.TEST"

// Limits that keep a broken KDC from hanging a test run.
const (
	// commandTimeout bounds every MIT admin or client program Start runs.
	commandTimeout = 30 * time.Second
	// readyTimeout bounds the wait for krb5kdc to accept TCP connections.
	readyTimeout = 10 * time.Second
	// stopTimeout bounds the wait for krb5kdc to exit after SIGTERM
	// before Close escalates to SIGKILL.
	stopTimeout = 5 * time.Second
	// portAttempts is how many ports Start tries when another process
	// takes the one it picked before krb5kdc binds it.
	portAttempts = 8
	// logTail is how much KDC output is kept for error messages.
	logTail = 8 << 10
)

// Paths of the MIT programs. The admin tools live in /usr/sbin on Debian,
// which is often not on a non-root PATH.
var (
	krb5kdcPath    = "/usr/sbin/krb5kdc"
	kdb5UtilPath   = "/usr/sbin/kdb5_util"
	kadminLocalBin = "/usr/sbin/kadmin.local"
	kinitName      = "kinit"
)

// Options configures Start.
type Options struct {
	// Dir holds the whole realm: configuration, database, keytabs and
	// credential caches. It is created if missing and should be empty.
	// Required. Its path must
	// not contain whitespace or quotes, because it appears inside kadmin
	// queries and profile lines.
	Dir string
	// Realm is the realm name; empty means DefaultRealm.
	Realm string
	// Log, if set, receives the KDC's log and the output of the MIT admin
	// programs, for debugging. It must stay usable until Close returns.
	Log io.Writer
}

// Realm is a running MIT realm. Its fields are set by Start and must not be
// changed.
type Realm struct {
	// Name is the realm name, e.g. "GSSACC.TEST".
	Name string
	// Dir is the directory holding the realm.
	Dir string
	// KDCAddr is the KDC's "127.0.0.1:port", served on both UDP and TCP.
	KDCAddr string
	// Krb5Conf is the path of the realm's krb5.conf (AES enctypes only,
	// no DNS, no hostname canonicalisation).
	Krb5Conf string
	// KDCConf is the path of the KDC's kdc.conf.
	KDCConf string

	// ServiceKeytab holds ServicePrincipal's keys for all four AES
	// enctypes (17, 18, 19, 20).
	ServiceKeytab string
	// ServicePrincipal is "host/localhost@" + Name.
	ServicePrincipal string
	// UserPrincipal is "alice@" + Name.
	UserPrincipal string
	// UserPassword is UserPrincipal's random password. The keys in
	// UserKeytab derive from it, so both stay valid.
	UserPassword string
	// UserKeytab holds UserPrincipal's keys for all four AES enctypes.
	UserKeytab string
	// CCache is a "FILE:" credential cache holding a TGT for
	// UserPrincipal, obtained with kinit from UserKeytab.
	CCache string

	log io.Writer // Options.Log, or io.Discard

	mu sync.Mutex // serialises kadmin.local runs and conf file writes

	// The KDC process; set by Start, cleared by Close.
	procMu    sync.Mutex // guards kdc
	kdc       *exec.Cmd
	kdcDone   chan struct{} // closed when kdc has been waited for
	kdcErr    error         // kdc.Wait result, valid after kdcDone
	kdcOutput *tailBuffer   // last logTail bytes of KDC output
	closeOnce sync.Once
	closeErr  error
}

// Available reports whether the MIT programs the package needs are
// installed: nil if they are, otherwise an error naming what is missing and
// how to install it.
func Available() error {
	var missing []string
	for _, p := range []string{krb5kdcPath, kdb5UtilPath, kadminLocalBin} {
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	if _, err := exec.LookPath(kinitName); err != nil {
		missing = append(missing, kinitName)
	}
	if len(missing) > 0 {
		return fmt.Errorf("testrealm: MIT Kerberos programs not found: %s (run scripts/install-deps: krb5-kdc krb5-admin-server krb5-user)",
			strings.Join(missing, ", "))
	}
	return nil
}

// Start creates a realm in opts.Dir and starts its KDC. On success the KDC
// is running, ServiceKeytab, UserKeytab and CCache exist, and the caller
// must call Close. On failure nothing is left running.
func Start(opts Options) (*Realm, error) {
	if opts.Dir == "" {
		return nil, errors.New("testrealm: Options.Dir is required")
	}
	if err := Available(); err != nil {
		return nil, err
	}
	name := opts.Realm
	if name == "" {
		name = DefaultRealm
	}
	if err := checkRealmName(name); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("testrealm: %w", err)
	}
	if err := checkWord("directory", dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "rcache"), 0o700); err != nil {
		return nil, fmt.Errorf("testrealm: %w", err)
	}
	userPassword, err := randomString(18)
	if err != nil {
		return nil, err
	}
	r := &Realm{
		Name:             name,
		Dir:              dir,
		Krb5Conf:         filepath.Join(dir, "krb5.conf"),
		KDCConf:          filepath.Join(dir, "kdc.conf"),
		ServiceKeytab:    filepath.Join(dir, "service.keytab"),
		ServicePrincipal: "host/localhost@" + name,
		UserPrincipal:    "alice@" + name,
		UserPassword:     userPassword,
		UserKeytab:       filepath.Join(dir, "alice.keytab"),
		CCache:           "FILE:" + filepath.Join(dir, "alice.ccache"),
		log:              opts.Log,
		kdcOutput:        &tailBuffer{max: logTail},
	}
	if r.log == nil {
		r.log = io.Discard
	}
	if err := r.create(); err != nil {
		return nil, err
	}
	if err := r.startKDC(); err != nil {
		return nil, err
	}
	if err := r.KinitWith(r.Krb5Conf, r.CCache); err != nil {
		return nil, errors.Join(err, r.Close())
	}
	return r, nil
}

// create writes the configuration with a provisional port, creates the
// database and the standard principals and keytabs. The KDC is not running
// yet; startKDC picks the final port.
func (r *Realm) create() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	if err := r.writeConf(port); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.Dir, "kadm5.acl"), nil, 0o600); err != nil {
		return fmt.Errorf("testrealm: %w", err)
	}
	master, err := randomString(24)
	if err != nil {
		return err
	}
	// The master password only protects the stash in a throwaway
	// directory; passing it in argv is acceptable here.
	if _, err := r.run(kdb5UtilPath, nil, "-r", r.Name, "create", "-s", "-P", master); err != nil {
		return err
	}
	user := r.UserPrincipal
	steps := []string{
		"addprinc -randkey -e " + keysaltList(allEnctypes) + " " + r.ServicePrincipal,
		"addprinc -pw " + r.UserPassword + " -e " + keysaltList(allEnctypes) + " " + user,
		// -norandkey keeps kvno 1 and, for alice, the password-derived
		// keys: the keytab and the password both stay valid.
		"ktadd -k FILE:" + r.ServiceKeytab + " -norandkey " + r.ServicePrincipal,
		"ktadd -k FILE:" + r.UserKeytab + " -norandkey " + user,
	}
	for _, q := range steps {
		if _, err := r.Kadmin(q); err != nil {
			return err
		}
	}
	return nil
}

// Env returns an environment for MIT programs and libraries using this
// realm: the current process environment with every KRB5* variable removed
// (so nothing from the host, such as KRB5_TRACE or KRB5_KTNAME, leaks in),
// plus KRB5_CONFIG, KRB5_KDC_PROFILE, KRB5CCNAME (CCache) and KRB5RCACHEDIR
// pointing into the realm directory. Callers append their own KRB5_* values
// (for example KRB5RCACHETYPE=none or another KRB5CCNAME; later entries win
// with os/exec).
func (r *Realm) Env() []string {
	env := make([]string, 0, len(os.Environ())+4)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KRB5") {
			env = append(env, kv)
		}
	}
	return append(env,
		"KRB5_CONFIG="+r.Krb5Conf,
		"KRB5_KDC_PROFILE="+r.KDCConf,
		"KRB5CCNAME="+r.CCache,
		"KRB5RCACHEDIR="+filepath.Join(r.Dir, "rcache"),
	)
}

// randomString returns n random bytes, base64url-encoded: safe inside a
// kadmin query and on a command line.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("testrealm: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(b)
	// kadmin's argument parser treats a leading '-' as an option.
	return "p" + s, nil
}

// checkRealmName accepts the conventional upper-case realm names.
func checkRealmName(name string) error {
	for _, c := range name {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("testrealm: realm name %q: only A-Z, 0-9, '.' and '-' are allowed", name)
		}
	}
	if name == "" || name[0] == '-' || name[0] == '.' {
		return fmt.Errorf("testrealm: realm name %q is not valid", name)
	}
	return nil
}

// checkWord rejects values that would split or end a kadmin query or a
// configuration line: whitespace, quotes, control characters, and a leading
// '-' that kadmin would parse as an option.
func checkWord(what, s string) error {
	if s == "" || s[0] == '-' {
		return fmt.Errorf("testrealm: %s %q is not valid", what, s)
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f || c == '"' || c == '\'' || c == '\\' {
			return fmt.Errorf("testrealm: %s %q contains whitespace, quotes or control characters", what, s)
		}
	}
	return nil
}
