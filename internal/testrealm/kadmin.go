package testrealm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

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
