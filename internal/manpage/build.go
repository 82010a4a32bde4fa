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
)

// pageFileRE matches the names of the pages in man/ (what the package
// installs: man/*.[158]).
var pageFileRE = regexp.MustCompile(`^[^.].*\.[158]$`)

// Sources reads what Generate needs from the module at root: it builds
// each of Programs into dir, runs it with -help, and reads
// docs/configuration.md.
func Sources(root, dir string) (help map[string]string, configDoc string, err error) {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, p := range Programs() {
		args = append(args, "./cmd/"+p)
	}
	build := exec.Command("go", args...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("manpage: go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	help = map[string]string{}
	for _, p := range Programs() {
		var out bytes.Buffer
		cmd := exec.Command(filepath.Join(dir, p), "-help")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return nil, "", fmt.Errorf("manpage: %s -help: %w\n%s", p, err, out.String())
		}
		help[p] = out.String()
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		return nil, "", fmt.Errorf("manpage: %w", err)
	}
	return help, string(doc), nil
}

// Committed reads the pages in the man/ directory of the module at root.
func Committed(root string) (map[string][]byte, error) {
	entries, err := os.ReadDir(filepath.Join(root, "man"))
	if err != nil {
		return nil, fmt.Errorf("manpage: %w", err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if e.Type().IsRegular() && pageFileRE.MatchString(e.Name()) {
			b, err := os.ReadFile(filepath.Join(root, "man", e.Name()))
			if err != nil {
				return nil, fmt.Errorf("manpage: %w", err)
			}
			out[e.Name()] = b
		}
	}
	return out, nil
}

// Write writes pages into the man/ directory of the module at root and
// removes the pages there that are not among them.
func Write(root string, pages map[string][]byte) error {
	dir := filepath.Join(root, "man")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("manpage: %w", err)
	}
	old, err := Committed(root)
	if err != nil {
		return err
	}
	for name := range old {
		if _, ok := pages[name]; !ok {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("manpage: %w", err)
			}
		}
	}
	names := make([]string, 0, len(pages))
	for name := range pages {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), pages[name], 0o644); err != nil {
			return fmt.Errorf("manpage: %w", err)
		}
	}
	return nil
}
