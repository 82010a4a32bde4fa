package listener

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
)

// maxAllowFileSize bounds allow_clients_file: a .k5login-style list is a
// few lines; a huge file is a mistake, not a list.
const maxAllowFileSize = 4 << 20

// AllowList is the client allow-list (allow_clients, allow_clients_file;
// ARCHITECTURE.md §9): which authenticated client principals may reach a
// worker. Entries are exact principals (alice@EXAMPLE.TEST) or realm
// patterns (*@EXAMPLE.TEST, every principal of that realm, no other).
// Matching is exact and case-sensitive, like Kerberos names. A nil
// *AllowList admits every client.
type AllowList struct {
	exact  map[string]struct{}
	realms map[string]struct{}
}

// NewAllowList parses entries. An entry must be a principal with a realm
// (NAME@REALM) or *@REALM; any other use of * is refused rather than
// guessed at.
func NewAllowList(entries []string) (*AllowList, error) {
	a := &AllowList{exact: map[string]struct{}{}, realms: map[string]struct{}{}}
	for _, e := range entries {
		if err := checkAllowEntry(e); err != nil {
			return nil, err
		}
		if realm, ok := strings.CutPrefix(e, "*@"); ok {
			a.realms[realm] = struct{}{}
			continue
		}
		a.exact[e] = struct{}{}
	}
	return a, nil
}

// checkAllowEntry reports why e is not a valid allow-list entry, or nil.
func checkAllowEntry(e string) error {
	switch {
	case e == "":
		return errors.New("allow-list: empty entry")
	case strings.ContainsFunc(e, func(r rune) bool { return r < 0x20 || r == 0x7f || r == ' ' || r == '\t' }):
		return fmt.Errorf("allow-list: %q contains a space or control character", e)
	}
	at := realmAt(e)
	if at <= 0 || at == len(e)-1 {
		return fmt.Errorf("allow-list: %q: want NAME@REALM or *@REALM", e)
	}
	if realm, ok := strings.CutPrefix(e, "*@"); ok {
		if strings.ContainsAny(realm, "*@") {
			return fmt.Errorf("allow-list: %q: want *@REALM", e)
		}
		return nil
	}
	if strings.Contains(e, "*") {
		return fmt.Errorf("allow-list: %q: * is only allowed as the whole name, *@REALM", e)
	}
	return nil
}

// realmAt is the index of the '@' before the realm: the last one not
// escaped by a backslash; -1 if none.
func realmAt(p string) int {
	at := -1
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '@':
			at = i
		}
	}
	return at
}

// Allows reports whether principal may reach a worker.
func (a *AllowList) Allows(principal string) bool {
	if a == nil {
		return true
	}
	if _, ok := a.exact[principal]; ok {
		return true
	}
	at := realmAt(principal)
	if at <= 0 || at == len(principal)-1 {
		return false
	}
	_, ok := a.realms[principal[at+1:]]
	return ok
}

// Len is the number of entries.
func (a *AllowList) Len() int {
	if a == nil {
		return 0
	}
	return len(a.exact) + len(a.realms)
}

// ReadAllowFile reads allow_clients_file: one principal or *@REALM per
// line, .k5login style; blank lines and lines starting with # are
// skipped, surrounding spaces trimmed. Entries are checked by
// NewAllowList; errors name the line.
func ReadAllowFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("allow_clients_file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxAllowFileSize {
		return nil, fmt.Errorf("allow_clients_file %s: %d bytes, more than %d", path, fi.Size(), maxAllowFileSize)
	}
	var out []string
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if err := checkAllowEntry(s); err != nil {
			return nil, fmt.Errorf("allow_clients_file %s:%d: %w", path, line, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("allow_clients_file %s: %w", path, err)
	}
	return out, nil
}

// LoadAllowList builds the allow-list from allow_clients and the file
// allow_clients_file (read now). Neither set: nil, every client admitted.
func LoadAllowList(entries []string, file string) (*AllowList, error) {
	if len(entries) == 0 && file == "" {
		return nil, nil
	}
	all := append([]string(nil), entries...)
	if file != "" {
		fromFile, err := ReadAllowFile(file)
		if err != nil {
			return nil, err
		}
		all = append(all, fromFile...)
	}
	return NewAllowList(all)
}
