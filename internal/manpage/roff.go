package manpage

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// This file turns the small subset of Markdown that docs/configuration.md
// and the pages' prose use into man(7) roff: headings, paragraphs, "- "
// lists, fenced code blocks and tables; inline `code`, **bold**, *italic*
// and [links](target), whose target is dropped.

var (
	linkRE   = regexp.MustCompile(`\[([^\]]*)\]\([^)\s]*\)`)
	boldRE   = regexp.MustCompile(`\*\*(.+?)\*\*`)
	italicRE = regexp.MustCompile(`\*([^*\s](?:[^*]*[^*\s])?)\*`)
)

// escape makes plain text safe for roff: a backslash is \e, a hyphen that
// starts a word (an option, "-1") is a minus sign \- and a character
// outside ASCII is written \[uXXXX], which groff and mandoc both know.
func escape(s string) string {
	var b strings.Builder
	boundary := true // at the start of a word
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-' && boundary:
			b.WriteString(`\-`)
			continue // a run of hyphens ("--x") is all minus signs
		case r > unicode.MaxASCII:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
		boundary = strings.ContainsRune(" \t([{\"'=,/|*", r)
	}
	return b.String()
}

// inline renders one line of Markdown text as roff text.
func inline(s string) string {
	s = linkRE.ReplaceAllString(s, "$1")
	parts := strings.Split(s, "`")
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 1 && i < len(parts)-1 { // a code span
			b.WriteString(`\fB` + escape(p) + `\fP`)
			continue
		}
		if i%2 == 1 { // an unmatched backtick
			p = "`" + p
		}
		p = escape(p)
		p = boldRE.ReplaceAllString(p, `\fB$1\fP`)
		p = italicRE.ReplaceAllString(p, `\fI$1\fP`)
		b.WriteString(p)
	}
	return b.String()
}

// textLine makes a rendered line safe to start a roff input line: a
// leading period or apostrophe would be read as a request.
func textLine(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		return `\&` + s
	}
	return s
}

// macroArg quotes s as a macro argument.
func macroArg(s string) string {
	return `"` + strings.ReplaceAll(escape(s), `"`, `\(dq`) + `"`
}

// writer accumulates roff lines.
type writer struct {
	b    strings.Builder
	last string // the last line written
}

func (w *writer) line(s string) {
	w.b.WriteString(s + "\n")
	w.last = s
}

// para starts a paragraph, unless a heading just did.
func (w *writer) para() {
	if !strings.HasPrefix(w.last, ".SH ") && !strings.HasPrefix(w.last, ".SS ") {
		w.line(".PP")
	}
}

// text writes a paragraph's rendered text.
func (w *writer) text(s string) {
	if s = textLine(s); s != "" {
		w.line(s)
	}
}

// markdown renders a Markdown document. Level-1 headings are dropped
// (the page has its own title), level 2 become sections (.SH) and level 3
// subsections (.SS).
func (w *writer) markdown(md string) {
	w.blocks(strings.Split(md, "\n"), false)
}

// blocks renders lines; inList says they are the body of a list item
// (already dedented), whose paragraphs continue the item's indentation.
func (w *writer) blocks(lines []string, inList bool) {
	first := true
	for i := 0; i < len(lines); {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			i++
			continue
		case strings.HasPrefix(trimmed, "```"):
			indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
			i++
			var code []string
			for i < len(lines) && strings.TrimSpace(lines[i]) != "```" {
				code = append(code, strings.TrimPrefix(lines[i], indent))
				i++
			}
			i++ // the closing fence
			if inList {
				w.line(".IP")
			} else {
				w.para()
				w.line(".RS 4")
			}
			w.line(".nf")
			for _, c := range code {
				w.line(textLine(escape(c)))
			}
			w.line(".fi")
			if !inList {
				w.line(".RE")
			}
		case strings.HasPrefix(line, "#"):
			level := len(line) - len(strings.TrimLeft(line, "#"))
			title := strings.TrimSpace(line[level:])
			title = strings.ReplaceAll(linkRE.ReplaceAllString(title, "$1"), "`", "")
			switch level {
			case 1:
			case 2:
				w.line(".SH " + sectionTitle(strings.ToUpper(title)))
			default:
				w.line(".SS " + macroArg(title))
			}
			i++
		case strings.HasPrefix(line, "|"):
			var rows []string
			for i < len(lines) && strings.HasPrefix(lines[i], "|") {
				rows = append(rows, lines[i])
				i++
			}
			w.table(rows)
		case strings.HasPrefix(line, "- "):
			item := []string{strings.TrimPrefix(line, "- ")}
			i++
			// The item runs on over indented lines and the blank lines
			// between them.
			for i < len(lines) {
				if strings.HasPrefix(lines[i], "  ") {
					item = append(item, strings.TrimPrefix(lines[i], "  "))
					i++
					continue
				}
				if strings.TrimSpace(lines[i]) == "" && i+1 < len(lines) && strings.HasPrefix(lines[i+1], "  ") {
					item = append(item, "")
					i++
					continue
				}
				break
			}
			w.line(`.IP \(bu 2`)
			w.blocks(item, true)
		default:
			var para []string
			for i < len(lines) && !blockStart(lines[i]) {
				para = append(para, strings.TrimSpace(lines[i]))
				i++
			}
			switch {
			case inList && first:
				// the list item's own .IP
			case inList:
				w.line(".IP")
			default:
				w.para()
			}
			w.text(inline(strings.Join(para, " ")))
		}
		first = false
	}
}

// blockStart reports whether line ends a paragraph.
func blockStart(line string) bool {
	t := strings.TrimSpace(line)
	return t == "" || strings.HasPrefix(t, "```") || strings.HasPrefix(line, "#") ||
		strings.HasPrefix(line, "|") || strings.HasPrefix(line, "- ")
}

// splitRow splits a table row into its cells; "\|" is a literal bar.
func splitRow(row string) []string {
	row = strings.TrimSpace(row)
	row = strings.TrimPrefix(strings.TrimSuffix(row, "|"), "|")
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row) && row[i+1] == '|':
			cur.WriteByte('|')
			i++
		case row[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(row[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

// table renders a Markdown table as a tagged list: the first column is the
// tag, the last the paragraph, and the columns between follow it as
// "Header: value" lines.
func (w *writer) table(rows []string) {
	if len(rows) < 2 {
		return
	}
	header := splitRow(rows[0])
	for _, row := range rows[2:] {
		cells := splitRow(row)
		if len(cells) != len(header) {
			continue
		}
		w.line(".TP")
		w.text(inline(cells[0]))
		w.text(inline(cells[len(cells)-1]))
		for j := 1; j < len(cells)-1; j++ {
			w.line(".br")
			h := header[j]
			if h != "" {
				h = strings.ToUpper(h[:1]) + h[1:]
			}
			w.text(inline(h + ": " + cells[j]))
		}
	}
}
