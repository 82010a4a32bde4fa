package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// maxQuoted is how many bytes of a user's value an error message repeats;
// the rest is elided so that a runaway value cannot flood the log.
const maxQuoted = 64

// parser turns one file into a Config, collecting every problem it finds
// instead of stopping at the first.
type parser struct {
	name   string
	cfg    *Config // starts as Default(); keys in the file overwrite fields
	origin *origin
	errs   []*Error
}

// fail records a problem at line with key (either may be zero).
func (p *parser) fail(line int, key, msg string) {
	p.errs = append(p.errs, &Error{File: p.name, Line: line, Key: key, Msg: msg})
}

// parse decodes data into p.cfg and p.origin.
func (p *parser) parse(data []byte) {
	// yaml.v3 turns its own failures into errors, but it is a large parser
	// fed with operator input; should it ever panic, report a broken file
	// instead of crashing the daemon (or `-check-config`).
	defer func() {
		if r := recover(); r != nil {
			p.fail(0, "", fmt.Sprintf("yaml parser failed: %v", r))
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return // an empty file: every default
		}
		p.syntaxError(err)
		return
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.syntaxError(err)
		return
	default:
		p.fail(extra.Line, "", "the file holds more than one YAML document (\"---\"); write a single mapping of keys")
		return
	}

	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return // "~" or only comments: every default
	}
	if root.Kind != yaml.MappingNode {
		p.fail(root.Line, "", fmt.Sprintf("the file must be a mapping of keys to values, got %s", describe(root)))
		return
	}
	p.mapping(root)
}

// syntaxError records a YAML syntax error. yaml.v3 formats them as
// "yaml: line N: message"; the line is moved into the Error so that syntax
// errors sort with the others and read the same way.
func (p *parser) syntaxError(err error) {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil && n > 0 {
				line, msg = n, tail
			}
		}
	}
	p.fail(line, "", "invalid YAML: "+msg)
}

// mapping decodes the top-level mapping, key by key.
func (p *parser) mapping(m *yaml.Node) {
	seen := make(map[string]int)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			if k.ShortTag() == "!!merge" {
				p.fail(k.Line, "", "merge keys (<<) are not supported; write each key out")
			} else {
				p.fail(k.Line, "", fmt.Sprintf("keys must be plain names, got %s", describe(k)))
			}
			continue
		}
		name := k.Value
		def := lookupKey(name)
		if def == nil {
			msg := "unknown key " + quote(name)
			if len(name) <= maxQuoted {
				if s := suggest(name, keyNames); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
			}
			p.fail(k.Line, "", msg)
			continue
		}
		if first, dup := seen[name]; dup {
			p.fail(k.Line, name, fmt.Sprintf("set more than once (first on line %d)", first))
			continue
		}
		seen[name] = k.Line
		if v.Kind == yaml.AliasNode {
			p.fail(v.Line, name, "aliases (*name) are not supported; write the value out")
			continue
		}
		if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!null" {
			// "key:" with no value, or "~": the key keeps its default,
			// as if it were absent.
			continue
		}
		msg, set := p.value(def, v)
		if msg != "" {
			p.fail(v.Line, name, msg)
		}
		if !set {
			continue
		}
		p.origin.lines[name] = v.Line
		p.origin.values[name] = def.get(p.cfg)
	}
}

// value decodes v into the field of def. It returns a message describing
// the problem, or "", and whether the field was set. Range and relation
// checks are left to Validate, which sees the field the same way whether it
// came from the file or from the caller.
func (p *parser) value(def *keyDef, v *yaml.Node) (string, bool) {
	var msg string
	switch def.kind {
	case kindString:
		var s string
		if s, msg = decodeString(v); msg == "" {
			*def.str(p.cfg) = s
		}
	case kindID:
		var s string
		if s, msg = decodeID(v); msg == "" {
			*def.str(p.cfg) = s
		}
	case kindInt:
		var n int
		if n, msg = decodeInt(v); msg == "" {
			*def.num(p.cfg) = n
		}
	case kindSize:
		var n int
		if n, msg = decodeSize(v); msg == "" {
			*def.num(p.cfg) = n
		}
	case kindDuration, kindIdle:
		var d time.Duration
		if d, msg = decodeDuration(v); msg == "" {
			if d == 0 && def.kind == kindIdle {
				d = NoIdleTimeout
			}
			*def.dur(p.cfg) = d
		}
	case kindBool, kindNotBool:
		var b bool
		if b, msg = decodeBool(v); msg == "" {
			*def.flag(p.cfg) = b != (def.kind == kindNotBool)
		}
	case kindList:
		list, lines, listMsg := p.decodeList(def.name, v)
		if listMsg != "" || list == nil {
			// A wrong item was already reported at its own line.
			return listMsg, false
		}
		*def.list(p.cfg) = list
		p.origin.itemLines[def.name] = lines
	}
	return msg, msg == ""
}

// decodeList decodes a sequence of strings, reporting a wrong item at the
// item's own line. It returns a nil list when an item was wrong, so the
// field keeps its default, and an empty non-nil list for "[]".
func (p *parser) decodeList(key string, v *yaml.Node) ([]string, []int, string) {
	if v.Kind != yaml.SequenceNode {
		return nil, nil, fmt.Sprintf(`must be a list such as ["a", "b"], got %s`, describe(v))
	}
	list := make([]string, 0, len(v.Content))
	lines := make([]int, 0, len(v.Content))
	ok := true
	for _, item := range v.Content {
		s, msg := decodeString(item)
		if item.Kind == yaml.AliasNode {
			msg = "aliases (*name) are not supported; write the value out"
		}
		if msg != "" {
			p.fail(item.Line, key, "list item "+msg)
			ok = false
			continue
		}
		list = append(list, s)
		lines = append(lines, item.Line)
	}
	if !ok {
		return nil, nil, ""
	}
	return list, lines, ""
}

// describe names the type of a node for "got ..." in messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case "!!str":
			return "the string " + quote(n.Value)
		case "!!int":
			return "the integer " + quote(n.Value)
		case "!!float":
			return "the number " + quote(n.Value)
		case "!!bool":
			return "the boolean " + n.Value
		case "!!null":
			return "null"
		case "!!timestamp":
			return "the timestamp " + quote(n.Value)
		default:
			return "a value tagged " + quote(tag)
		}
	}
	return "an empty node"
}

// decodeString accepts a YAML string. Numbers and booleans are refused
// rather than converted, so that "log_level: 1" or "keytab: yes" do not pass
// as strings by accident; the message says to quote them when meant.
func decodeString(v *yaml.Node) (string, string) {
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
		return v.Value, ""
	}
	msg := "must be a string, got " + describe(v)
	if v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null" {
		msg += " (quote it if it is meant as a string)"
	}
	return "", msg
}

// decodeID accepts a user or group: a name (string) or a numeric id.
func decodeID(v *yaml.Node) (string, string) {
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!int" {
		var n int64
		if err := v.Decode(&n); err != nil || n < 0 {
			return "", "must be a name or a numeric id from 0 to 4294967294, got " + describe(v)
		}
		return strconv.FormatInt(n, 10), ""
	}
	if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
		return v.Value, ""
	}
	return "", "must be a name or a numeric id, got " + describe(v)
}

// decodeInt accepts a YAML integer (which allows 1_000_000 and 0x10) that
// fits an int.
func decodeInt(v *yaml.Node) (int, string) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
		return 0, "must be an integer, got " + describe(v)
	}
	var n int64
	if err := v.Decode(&n); err != nil || n > math.MaxInt || n < math.MinInt {
		return 0, "integer out of range: " + quote(v.Value)
	}
	return int(n), ""
}

// decodeBool accepts true or false. YAML 1.1's yes/no/on/off are strings in
// YAML 1.2 and are refused, not guessed at.
func decodeBool(v *yaml.Node) (bool, string) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
		return false, "must be true or false, got " + describe(v)
	}
	var b bool
	if err := v.Decode(&b); err != nil {
		return false, "must be true or false, got " + describe(v)
	}
	return b, ""
}

// decodeDuration accepts a Go duration string with units ("30s", "1m30s",
// "500ms"), or a bare 0. Any other bare number is refused: "timeout: 30"
// could mean seconds or milliseconds, and guessing wrong is silent.
func decodeDuration(v *yaml.Node) (time.Duration, string) {
	const want = `must be a duration with a unit such as "30s" or "1m30s"`
	if v.Kind != yaml.ScalarNode {
		return 0, want + ", got " + describe(v)
	}
	switch v.ShortTag() {
	case "!!int", "!!float", "!!str":
	default:
		return 0, want + ", got " + describe(v)
	}
	s := strings.TrimSpace(v.Value)
	if isBareNumber(s) {
		if strings.Trim(s, "+-0._") == "" {
			return 0, ""
		}
		return 0, fmt.Sprintf("duration %s has no unit; write e.g. %q", quote(s), s+"s")
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Sprintf("%s, got %s", want, quote(s))
	}
	if d < 0 {
		return 0, "must not be negative, got " + quote(s)
	}
	return d, ""
}

// isBareNumber reports whether s is a number without a unit: digits with
// optional sign, point and underscores.
func isBareNumber(s string) bool {
	digit := false
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digit = true
		case r == '+' || r == '-' || r == '.' || r == '_':
		default:
			return false
		}
	}
	return digit
}

// sizeUnits are the accepted size suffixes. Only binary (IEC) units are
// accepted: "1MB" could mean 10^6 or 2^20, and limits are compared with
// buffer lengths that are powers of two.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"GiB", 1 << 30},
	{"MiB", 1 << 20},
	{"KiB", 1 << 10},
	{"B", 1},
}

// decodeSize accepts a number of bytes (an integer) or a count with a unit:
// "64KiB", "1MiB", "1GiB", "512B".
func decodeSize(v *yaml.Node) (int, string) {
	const want = `must be a size such as "64KiB", "1MiB" or a number of bytes`
	if v.Kind != yaml.ScalarNode {
		return 0, want + ", got " + describe(v)
	}
	switch v.ShortTag() {
	case "!!int":
		return decodeInt(v)
	case "!!str":
	default:
		return 0, want + ", got " + describe(v)
	}
	n, msg := parseSize(v.Value)
	if msg != "" {
		return 0, msg
	}
	return n, ""
}

// parseSize parses "<digits><unit>" with an optional unit.
func parseSize(s string) (int, string) {
	digits := len(s) - len(strings.TrimLeft(s, "0123456789"))
	if digits == 0 {
		return 0, fmt.Sprintf(`must be a size such as "64KiB", "1MiB" or a number of bytes, got %s`, quote(s))
	}
	num, unit := s[:digits], s[digits:]
	mult := int64(0)
	if unit == "" {
		mult = 1
	}
	for _, u := range sizeUnits {
		if unit == u.suffix {
			mult = u.mult
		}
	}
	if mult == 0 {
		return 0, fmt.Sprintf("unknown size unit %s in %s; use B, KiB, MiB or GiB", quote(unit), quote(s))
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt/mult {
		return 0, "size out of range: " + quote(s)
	}
	return int(n * mult), ""
}

// formatSize writes n bytes in the file's syntax, with the largest unit that
// divides it exactly: 65536 is "64KiB", 1000 is "1000B".
func formatSize(n int) string {
	for _, u := range sizeUnits {
		if n != 0 && int64(n)%u.mult == 0 {
			return strconv.FormatInt(int64(n)/u.mult, 10) + u.suffix
		}
	}
	return strconv.Itoa(n) + "B"
}

// formatDuration writes d in the file's syntax: "0" for zero, else Go's
// duration string, which time.ParseDuration reads back.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	return d.String()
}

// quote quotes a user-supplied value for a message, cut to maxQuoted bytes
// (on a rune boundary) so that a huge value does not flood the log.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
