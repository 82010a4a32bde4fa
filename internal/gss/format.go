package gss

import (
	"strconv"
	"strings"
	"time"
)

// PrincipalString renders a principal the way MIT's krb5_unparse_name
// does: components joined by "/", then "@" and the realm, with "/", "@"
// and "\" escaped by a backslash inside components (and "@", "\" inside
// the realm), and NUL, newline, tab and backspace written as \0 \n \t \b.
func PrincipalString(name []string, realm string) string {
	var b strings.Builder
	for i, c := range name {
		if i > 0 {
			b.WriteByte('/')
		}
		writeEscaped(&b, c, true)
	}
	b.WriteByte('@')
	writeEscaped(&b, realm, false)
	return b.String()
}

func writeEscaped(b *strings.Builder, s string, component bool) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '@':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '/':
			if component {
				b.WriteByte('\\')
			}
			b.WriteByte(c)
		case 0:
			b.WriteString(`\0`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		default:
			b.WriteByte(c)
		}
	}
}

// fmtTime formats a time for messages: UTC, RFC 3339 with microseconds
// when there are any.
func fmtTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.999999Z07:00")
}

// fmtSeconds formats a duration in whole seconds, "412s".
func fmtSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}
