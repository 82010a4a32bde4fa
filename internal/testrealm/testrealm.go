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
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// enctypeNames maps the four AES enctype numbers (RFC 3962, RFC 8009) to
// the names MIT's configuration and kadmin understand. The realm offers
// nothing else: RC4 and DES3 stay out of every test.
var enctypeNames = map[int32]string{
	17: "aes128-cts-hmac-sha1-96",
	18: "aes256-cts-hmac-sha1-96",
	19: "aes128-cts-hmac-sha256-128",
	20: "aes256-cts-hmac-sha384-192",
}

// allEnctypes lists the AES enctypes strongest first, the order MIT
// prefers when it picks a session key.
var allEnctypes = []int32{20, 19, 18, 17}

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

// startKDC runs krb5kdc in the foreground (-n) as a child process and waits
// until it accepts TCP connections. If another process grabbed the port
// between freePort and krb5kdc's bind, it retries on a new port.
func (r *Realm) startKDC() error {
	var lastErr error
	for attempt := 0; attempt < portAttempts; attempt++ {
		if attempt > 0 {
			port, err := freePort()
			if err != nil {
				return err
			}
			r.mu.Lock()
			err = r.writeConf(port)
			r.mu.Unlock()
			if err != nil {
				return err
			}
		}
		err := r.tryStartKDC()
		if err == nil {
			return nil
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			return err
		}
	}
	return fmt.Errorf("testrealm: no free KDC port after %d attempts: %w", portAttempts, lastErr)
}

// kdcReadyLine is what krb5kdc logs after binding every listener.
const kdcReadyLine = "commencing operation"

// errAddrInUse marks a KDC start that failed because its port was taken.
var errAddrInUse = errors.New("testrealm: KDC port in use")

// tryStartKDC makes one attempt at starting krb5kdc on r.KDCAddr.
func (r *Realm) tryStartKDC() error {
	out := &tailBuffer{max: logTail, watch: []byte(kdcReadyLine)}
	cmd := exec.Command(krb5kdcPath, "-n", "-r", r.Name)
	cmd.Dir = r.Dir
	cmd.Env = r.Env()
	cmd.Stdout = io.MultiWriter(out, r.log)
	cmd.Stderr = cmd.Stdout
	// Pdeathsig kills the KDC if the test binary dies without Close, so a
	// crashed or timed-out test run cannot leave a KDC behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testrealm: starting krb5kdc: %w", err)
	}
	done := make(chan struct{})
	r.procMu.Lock()
	r.kdc, r.kdcDone, r.kdcOutput = cmd, done, out
	r.procMu.Unlock()
	go func() {
		r.kdcErr = cmd.Wait()
		close(done)
	}()

	deadline := time.Now().Add(readyTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		select {
		case <-done:
			// krb5kdc exits at once when it cannot bind its sockets.
			msg := out.String()
			r.procMu.Lock()
			r.kdc = nil
			r.procMu.Unlock()
			if strings.Contains(msg, "Address already in use") {
				return fmt.Errorf("%w: %s", errAddrInUse, r.KDCAddr)
			}
			return fmt.Errorf("testrealm: krb5kdc exited during startup (%v); log:\n%s", r.kdcErr, msg)
		default:
		}
		// krb5kdc logs "commencing operation" once all its sockets are
		// bound. The TCP dial alone could be answered by whoever holds
		// the port when krb5kdc lost a bind race.
		if out.Seen(kdcReadyLine) {
			c, err := net.DialTimeout("tcp", r.KDCAddr, time.Second)
			if err == nil {
				c.Close()
				return nil
			}
		}
		if time.Now().After(deadline) {
			stopErr := r.stopKDC()
			return errors.Join(fmt.Errorf("testrealm: krb5kdc not answering on tcp %s after %v; log:\n%s",
				r.KDCAddr, readyTimeout, out.String()), stopErr)
		}
		time.Sleep(delay)
	}
}

// Close stops the KDC (SIGTERM, then SIGKILL after a bounded wait) and
// waits for it to exit. The realm directory is left in place. Close is
// idempotent and safe for concurrent use; every call returns the first
// call's result.
func (r *Realm) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.stopKDC() })
	return r.closeErr
}

// stopKDC signals the KDC by the pid of the child it started, never by name.
func (r *Realm) stopKDC() error {
	r.procMu.Lock()
	cmd, done := r.kdc, r.kdcDone
	r.kdc = nil
	r.procMu.Unlock()
	if cmd == nil {
		return nil
	}
	// Signal errors only mean the process is already gone; the Wait in
	// the goroutine reports what happened.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
		return fmt.Errorf("testrealm: krb5kdc (pid %d) ignored SIGTERM for %v and was killed", cmd.Process.Pid, stopTimeout)
	case <-time.After(stopTimeout):
		return fmt.Errorf("testrealm: krb5kdc (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// KDCPid returns the process id of the running KDC, or 0 once it is closed.
func (r *Realm) KDCPid() int {
	r.procMu.Lock()
	defer r.procMu.Unlock()
	if cmd := r.kdc; cmd != nil {
		return cmd.Process.Pid
	}
	return 0
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

// Kadmin runs one kadmin.local query against the realm's database and
// returns its standard output. kadmin.local exits 0 even when the query's
// command fails, so any diagnostic on standard error other than the
// "No policy specified" notice is reported as an error.
func (r *Realm) Kadmin(query string) (string, error) {
	if strings.ContainsAny(query, "\x00\r\n") {
		return "", errors.New("testrealm: kadmin query must be a single line")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var stderr bytes.Buffer
	out, err := r.run(kadminLocalBin, &stderr, "-r", r.Name, "-q", query)
	if err != nil {
		return out, err
	}
	for line := range strings.Lines(stderr.String()) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "No policy specified for ") {
			continue
		}
		return out, fmt.Errorf("testrealm: kadmin.local %q: %s", redactQuery(query), line)
	}
	return out, nil
}

// AddService creates principal with random keys of exactly the given
// enctypes (17, 18, 19 or 20) and appends them to keytab. A principal
// without "@" is taken in this realm. Tickets for a principal with a single
// enctype are encrypted with that enctype, which makes enctype matrices
// easy.
func (r *Realm) AddService(principal string, enctypes []int32, keytab string) error {
	if err := checkWord("principal", principal); err != nil {
		return err
	}
	if err := checkWord("keytab path", keytab); err != nil {
		return err
	}
	if len(enctypes) == 0 {
		return errors.New("testrealm: AddService needs at least one enctype")
	}
	for _, e := range enctypes {
		if _, ok := enctypeNames[e]; !ok {
			return fmt.Errorf("testrealm: enctype %d is not an AES enctype (17, 18, 19, 20)", e)
		}
	}
	if !strings.Contains(principal, "@") {
		principal += "@" + r.Name
	}
	if _, err := r.Kadmin("addprinc -randkey -e " + keysaltList(enctypes) + " " + principal); err != nil {
		return err
	}
	_, err := r.Kadmin("ktadd -k FILE:" + keytab + " -norandkey " + principal)
	return err
}

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

// run runs an MIT program with the realm's environment and returns its
// standard output. Standard error goes to stderr if non-nil, and always
// into the error message on failure.
func (r *Realm) run(path string, stderr *bytes.Buffer, args ...string) (string, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = r.Env()
	return r.runCmd(cmd, stderr)
}

// runCmd runs cmd with a bounded time, in the realm directory.
func (r *Realm) runCmd(cmd *exec.Cmd, stderr *bytes.Buffer) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Env, c.Dir = cmd.Env, r.Dir
	c.WaitDelay = time.Second
	if stderr == nil {
		stderr = &bytes.Buffer{}
	}
	var stdout bytes.Buffer
	c.Stdout = io.MultiWriter(&stdout, r.log)
	c.Stderr = io.MultiWriter(stderr, r.log)
	if err := c.Run(); err != nil {
		return stdout.String(), fmt.Errorf("testrealm: %s %s: %w: %s", filepath.Base(cmd.Path),
			redactArgs(cmd.Args[1:]), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// writeConf writes krb5.conf and kdc.conf for a KDC on 127.0.0.1:port.
func (r *Realm) writeConf(port int) error {
	r.KDCAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := writeFileAtomic(r.Krb5Conf, krb5Conf(r.Name, r.KDCAddr, "")); err != nil {
		return err
	}
	return writeFileAtomic(r.KDCConf, kdcConf(r.Name, r.Dir, r.KDCAddr))
}

// krb5Conf renders a client krb5.conf. An empty only means all four AES
// enctypes; otherwise the default ticket enctype lists hold just that name.
//
// dns_canonicalize_hostname and rdns are off because MIT 1.20 defaults to
// canonicalising "localhost" through the resolver; qualify_shortname is
// empty so a bare name is not suffixed with the host's domain.
func krb5Conf(realm, kdcAddr, only string) []byte {
	all := enctypeList(allEnctypes)
	tkt := all
	if only != "" {
		tkt = only
	}
	return fmt.Appendf(nil, `[libdefaults]
	default_realm = %[1]s
	dns_lookup_realm = false
	dns_lookup_kdc = false
	dns_canonicalize_hostname = false
	rdns = false
	qualify_shortname = ""
	forwardable = true
	permitted_enctypes = %[3]s
	default_tkt_enctypes = %[4]s
	default_tgs_enctypes = %[4]s

[realms]
	%[1]s = {
		kdc = %[2]s
	}

[domain_realm]
	localhost = %[1]s
`, realm, kdcAddr, all, tkt)
}

// kdcConf renders the KDC profile: loopback only, database, stash and logs
// inside dir, AES only.
func kdcConf(realm, dir, kdcAddr string) []byte {
	return fmt.Appendf(nil, `[kdcdefaults]
	kdc_listen = %[3]s
	kdc_tcp_listen = %[3]s

[realms]
	%[1]s = {
		database_name = %[2]s/principal
		key_stash_file = %[2]s/stash
		acl_file = %[2]s/kadm5.acl
		master_key_type = aes256-cts-hmac-sha1-96
		supported_enctypes = %[4]s
		kdc_listen = %[3]s
		kdc_tcp_listen = %[3]s
	}

[logging]
	kdc = STDERR
	admin_server = FILE:%[2]s/kadmin.log
	default = FILE:%[2]s/krb5lib.log
`, realm, dir, kdcAddr, keysaltListSpace(allEnctypes))
}

// enctypeList renders enctypes as a space-separated list of MIT names.
func enctypeList(es []int32) string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = enctypeNames[e]
	}
	return strings.Join(names, " ")
}

// keysaltList renders enctypes as kadmin's comma-separated -e argument.
func keysaltList(es []int32) string {
	return strings.ReplaceAll(keysaltListSpace(es), " ", ",")
}

// keysaltListSpace renders enctypes as "name:normal" pairs, space separated.
func keysaltListSpace(es []int32) string {
	names := make([]string, len(es))
	for i, e := range es {
		names[i] = enctypeNames[e] + ":normal"
	}
	return strings.Join(names, " ")
}

// freePort returns a port number that is free on 127.0.0.1 for both UDP
// and TCP at the time of the call. Another process can still take it before
// krb5kdc binds; startKDC retries in that case.
func freePort() (int, error) {
	var lastErr error
	for range 32 {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("testrealm: %w", err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		pc.Close()
		if err != nil {
			lastErr = err
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("testrealm: no port free for both udp and tcp: %w", lastErr)
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

// redactQuery hides a password given to kadmin with -pw.
func redactQuery(q string) string {
	return redactArgs(strings.Fields(q))
}

// redactArgs hides the values of -pw and -P (passwords) in an argument list
// shown in an error message.
func redactArgs(args []string) string {
	out := make([]string, len(args))
	copy(out, args)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == "-pw" || out[i] == "-P" {
			out[i+1] = "<redacted>"
		}
		if out[i] == "-q" {
			out[i+1] = strconv.Quote(redactQuery(out[i+1]))
		}
	}
	return strings.Join(out, " ")
}

// writeFileAtomic replaces path with data so that a concurrently starting
// MIT program never reads a half-written profile.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("testrealm: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("testrealm: %w", err)
	}
	return nil
}

// tailBuffer is an io.Writer keeping the last max bytes written, safe for
// concurrent use. It also remembers whether watch was ever written.
type tailBuffer struct {
	max   int
	watch []byte

	mu   sync.Mutex
	buf  []byte
	seen bool
}

// Write implements io.Writer; it never fails.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if !b.seen && len(b.watch) > 0 && bytes.Contains(b.buf, b.watch) {
		b.seen = true
	}
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

// Seen reports whether s, which must be the watched string, was written.
func (b *tailBuffer) Seen(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen && string(b.watch) == s
}

// String returns the retained bytes.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
