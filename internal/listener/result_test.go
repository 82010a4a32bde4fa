package listener

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Results lists every Result constant declared in result.go, once each:
// a result added without being listed would be missing from the metrics
// exported at zero and from the documented set.
func TestResultsListsEveryConstant(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "result.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := map[Result]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Result" {
				continue
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Fatalf("%s: value is not a string literal", name.Name)
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				declared[Result(v)] = name.Name
			}
		}
	}
	listed := map[Result]bool{}
	for _, r := range Results() {
		if listed[r] {
			t.Errorf("Results lists %q twice", r)
		}
		listed[r] = true
		if _, ok := declared[r]; !ok {
			t.Errorf("Results lists %q, which result.go does not declare", r)
		}
	}
	for r, name := range declared {
		if !listed[r] {
			t.Errorf("%s (%q) is missing from Results", name, r)
		}
	}
	if len(declared) == 0 || Results()[0] != ResultOK {
		t.Errorf("Results() = %q: want every result, ResultOK first", Results())
	}
}

// TestResultsDocumented fails when a result is added without a row in the
// operators' table (docs/metrics.md, "Handshake results") or a mention in
// ARCHITECTURE.md §9: both promise that the set they list is closed.
func TestResultsDocumented(t *testing.T) {
	metricsDoc, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(metricsDoc), "## Handshake results")
	if !ok {
		t.Fatal(`docs/metrics.md has no "## Handshake results" section`)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	arch, err := os.ReadFile(filepath.Join("..", "..", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, s9, ok := strings.Cut(string(arch), "## §9 ")
	if !ok {
		t.Fatal("ARCHITECTURE.md has no §9")
	}
	s9, _, _ = strings.Cut(s9, "\n## ")
	for _, r := range Results() {
		if !strings.Contains(table, "| `"+string(r)+"` |") {
			t.Errorf("docs/metrics.md: no row for result %q in the handshake results table", r)
		}
		if !strings.Contains(s9, "`"+string(r)+"`") {
			t.Errorf("ARCHITECTURE.md §9 does not name result %q", r)
		}
	}
}
