// Command gen writes the man pages in man/ from the programs' -help and
// docs/configuration.md (package manpage). Run it from anywhere in the
// module after changing a flag, a key or the pages' prose:
//
//	go run ./internal/manpage/gen
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
	"github.com/gss-acceptor/gss-acceptor/internal/manpage"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "manpage-gen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	help, doc, err := manpage.Sources(root, dir)
	if err != nil {
		return err
	}
	pages, err := manpage.Generate(help, doc, config.Keys())
	if err != nil {
		return err
	}
	if err := manpage.Write(root, pages); err != nil {
		return err
	}
	fmt.Printf("gen: wrote %d pages in %s\n", len(pages), filepath.Join(root, "man"))
	return nil
}

// moduleRoot is the nearest directory upwards with a go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod in this directory or above")
		}
		dir = parent
	}
}
