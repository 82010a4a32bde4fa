package testrealm

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
