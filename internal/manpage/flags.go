package manpage

import (
	"fmt"
	"strings"
)

// A flag is one option as a program's -help prints it (flag.PrintDefaults).
type flagHelp struct {
	name  string // without the dash
	arg   string // the value's placeholder ("string", "duration"), "" for a boolean
	usage string // usage text, with "(default ...)" as printed
}

// parseHelp reads the flags from the output of a program's -help: lines
// "  -name arg" followed by "    \tusage" lines, or "  -x\tusage" for a
// one-letter flag without a value. Other lines (the usage line) are skipped.
func parseHelp(out string) ([]flagHelp, error) {
	var flags []flagHelp
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "    \t"):
			if len(flags) == 0 {
				return nil, fmt.Errorf("usage text %q before any flag", line)
			}
			f := &flags[len(flags)-1]
			f.usage = strings.TrimSpace(f.usage + " " + strings.TrimPrefix(line, "    \t"))
		case strings.HasPrefix(line, "  -"):
			head, usage, _ := strings.Cut(strings.TrimPrefix(line, "  -"), "\t")
			name, arg, _ := strings.Cut(head, " ")
			flags = append(flags, flagHelp{name: name, arg: arg, usage: usage})
		}
	}
	if len(flags) == 0 {
		return nil, fmt.Errorf("no flags in the -help output %q", out)
	}
	return flags, nil
}

// options writes the OPTIONS section.
func (w *writer) options(flags []flagHelp) {
	w.line(".SH OPTIONS")
	for _, f := range flags {
		w.line(".TP")
		tag := `\fB\-` + escape(f.name) + `\fP`
		if f.arg != "" {
			tag += ` \fI` + escape(f.arg) + `\fP`
		}
		w.line(tag)
		w.text(escape(f.usage))
	}
}
