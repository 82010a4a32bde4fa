package manpage

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
)

const root = "../.."

// sources builds the programs once for the tests that read their -help.
var sources = func() func(t *testing.T) (map[string]string, string) {
	var (
		once sync.Once
		help map[string]string
		doc  string
		err  error
	)
	return func(t *testing.T) (map[string]string, string) {
		t.Helper()
		once.Do(func() {
			dir, derr := os.MkdirTemp("", "manpage-test-")
			if derr != nil {
				err = derr
				return
			}
			defer os.RemoveAll(dir)
			help, doc, err = Sources(root, dir)
		})
		if err != nil {
			t.Fatal(err)
		}
		return help, doc
	}
}()

// The committed pages are what the generator writes from the programs'
// -help and docs/configuration.md now: a flag, a key or the pages' prose
// that changed without a regeneration fails here.
func TestPagesUpToDate(t *testing.T) {
	help, doc := sources(t)
	want, err := Generate(help, doc, config.Keys())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Committed(root)
	if err != nil {
		t.Fatalf("%v (run %q and commit man/)", err, RegenerateCommand)
	}
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("man/%s is missing: run %q and commit man/", name, RegenerateCommand)
		case !bytes.Equal(g, w):
			t.Errorf("man/%s differs from the generator's output (first difference: %s): run %q and commit man/",
				name, firstDiff(g, w), RegenerateCommand)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("man/%s is not generated any more: run %q and commit man/", name, RegenerateCommand)
		}
	}
	if len(want) != 6 {
		t.Errorf("%d pages generated, want 6", len(want))
	}
}

// firstDiff describes the first line where committed and generated differ.
func firstDiff(committed, generated []byte) string {
	c := strings.Split(string(committed), "\n")
	g := strings.Split(string(generated), "\n")
	for i := 0; i < len(c) || i < len(g); i++ {
		var cl, gl string
		if i < len(c) {
			cl = c[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if cl != gl {
			return fmt.Sprintf("line %d: committed %q, generated %q", i+1, cut(cl), cut(gl))
		}
	}
	return "none"
}

// cut shortens a line for a message.
func cut(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

// Every committed page formats without a warning from groff, from man(1)
// run the way lintian's manpage check runs it (UTF-8, 80 columns), or from
// mandoc's linter (at warning level; its style notes, such as long input
// lines, are allowed).
func TestPagesLint(t *testing.T) {
	pages, err := Committed(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatal("no pages in man/")
	}
	for _, tool := range []string{"groff", "mandoc", "man"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (scripts/install-deps installs it): %v", tool, err)
		}
	}
	for name := range pages {
		path := filepath.Join(root, "man", name)
		for _, argv := range [][]string{
			{"groff", "-man", "-ww", "-z", path},
			{"mandoc", "-T", "lint", "-W", "warning", path},
			{"man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path},
		} {
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "MANROFFSEQ=", "MANWIDTH=80")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run() // man -Z writes the troff output to stdout
			out := stderr.Bytes()
			if err != nil || len(out) > 0 {
				t.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
			}
		}
	}
}

// The generator refuses a docs/configuration.md whose key tables disagree
// with internal/config: a key missing, one listed twice, one that does not
// exist, or a default that is not the real one.
func TestCheckConfigDoc(t *testing.T) {
	doc, err := readDoc()
	if err != nil {
		t.Fatal(err)
	}
	keys := config.Keys()
	if err := checkConfigDoc(doc, keys); err != nil {
		t.Fatalf("the real docs: %v", err)
	}
	row := func(key string) string {
		for _, l := range strings.Split(doc, "\n") {
			if strings.HasPrefix(l, "| `"+key+"` |") {
				return l
			}
		}
		t.Fatalf("no row for %s", key)
		return ""
	}
	tokenRow := row("max_token_size")
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"missing", strings.Replace(doc, tokenRow+"\n", "", 1), "key max_token_size is missing"},
		{"twice", strings.Replace(doc, tokenRow, tokenRow+"\n"+tokenRow, 1), "key max_token_size is listed 2 times"},
		{"unknown", strings.Replace(doc, tokenRow, tokenRow+"\n"+strings.Replace(tokenRow, "max_token_size", "max_tokn_size", 1), 1), `key "max_tokn_size" is not a key`},
		{"default", strings.Replace(doc, "| `max_token_size` | `64KiB` |", "| `max_token_size` | `32KiB` |", 1), "max_token_size: default cell \"`32KiB`\" does not start with `64KiB`"},
		{"no fixed default", strings.Replace(doc, "| `workers` | the CPUs", "| `workers` | `4` the CPUs", 1), "workers: default `4` the CPUs"},
	} {
		if tc.doc == doc {
			t.Fatalf("%s: the edit did not apply", tc.name)
		}
		err := checkConfigDoc(tc.doc, keys)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.name, err, tc.want)
		}
		if _, err := Generate(map[string]string{}, tc.doc, keys); err == nil {
			t.Errorf("%s: Generate accepted the doc", tc.name)
		}
	}
}

func readDoc() (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	return string(b), err
}

// The -help parser reads both layouts of flag.PrintDefaults: a flag with a
// value and its usage on the next lines, and a one-letter boolean with the
// usage after a tab.
func TestParseHelp(t *testing.T) {
	out := "usage: x [options] host\n" +
		"  -ccount int\n    \tconnections, one after another (default 1)\n" +
		"  -f\tthe message argument names a file\n" +
		"  -nm\n    \tdo not ask the server for a MIC\n"
	got, err := parseHelp(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []flagHelp{
		{"ccount", "int", "connections, one after another (default 1)"},
		{"f", "", "the message argument names a file"},
		{"nm", "", "do not ask the server for a MIC"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseHelp: %+v, want %+v", got, want)
	}
	if _, err := parseHelp("no flags here\n"); err == nil {
		t.Error("parseHelp accepted output without flags")
	}
}

// Text is escaped for roff: backslashes, minus signs of options, non-ASCII
// characters, and a period or apostrophe that would start a request.
func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		`a\b`:                 `a\eb`,
		"-config and --x":     `\-config and \-\-x`,
		"gss-acceptor":        "gss-acceptor",
		"2×duration":          `2\[u00D7]duration`,
		"(-1)":                `(\-1)`,
		"**-keytab** *file*":  `**\-keytab** *file*`,
		"[user:pass@]HOST":    "[user:pass@]HOST",
		`say "-v" once`:       `say "\-v" once`,
		"µs":                  `\[u00B5]s`,
		"plain text, no more": "plain text, no more",
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"`-keytab` and **bold** and *it*": `\fB\-keytab\fP and \fBbold\fP and \fIit\fP`,
		"[text `x`](other.md#anchor)":     `text \fBx\fP`,
		"`[\":4444\"]`":                   `\fB[":4444"]\fP`,
	} {
		if got := inline(in); got != want {
			t.Errorf("inline(%q) = %q, want %q", in, got, want)
		}
	}
	if got := textLine(".starts a request"); got != `\&.starts a request` {
		t.Errorf("textLine: %q", got)
	}
	if got := textLine("'so does this"); got != `\&'so does this` {
		t.Errorf("textLine: %q", got)
	}
}

// The hand-written flag table of docs/operations.md ("Command line") lists
// exactly the flags gss-acceptor's -help has.
func TestOperationsCommandLine(t *testing.T) {
	help, _ := sources(t)
	flags, err := parseHelp(help["gss-acceptor"])
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Command line\n")
	if !ok {
		t.Fatal(`docs/operations.md has no "## Command line" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	flagRE := regexp.MustCompile("`-([a-z][a-z-]*)")
	documented := map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		if cells := splitRow(line); strings.HasPrefix(line, "|") && len(cells) > 1 {
			for _, m := range flagRE.FindAllStringSubmatch(cells[0], -1) {
				documented[m[1]] = true
			}
		}
	}
	real := map[string]bool{}
	for _, f := range flags {
		real[f.name] = true
		if !documented[f.name] {
			t.Errorf("docs/operations.md, Command line: no row for -%s", f.name)
		}
	}
	for name := range documented {
		if !real[name] {
			t.Errorf("docs/operations.md, Command line: -%s is not a flag of gss-acceptor", name)
		}
	}
}

// Every page has the sections a reader looks for; a program's page also
// OPTIONS (from its -help) and EXIT STATUS.
func TestPagesSections(t *testing.T) {
	help, doc := sources(t)
	out, err := Generate(help, doc, config.Keys())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		text := string(out[p.File()])
		want := []string{".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH FILES", `.SH "SEE ALSO"`}
		if p.program != "" {
			want = append(want, ".SH OPTIONS", `.SH "EXIT STATUS"`)
		}
		for _, w := range want {
			if !strings.Contains(text, "\n"+w+"\n") {
				t.Errorf("%s has no %s", p.File(), w)
			}
		}
	}
}
