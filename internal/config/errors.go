package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem with a configuration. Load, Parse and Validate return
// one *Error, or several joined with errors.Join; errors.As finds the first.
type Error struct {
	// File is the name given to Parse (the path, for Load); empty when
	// unknown.
	File string
	// Line is the 1-based line of the offending value, or 0 when the
	// value did not come from a line of the file (a default, or a field
	// changed after parsing).
	Line int
	// Key is the configuration key the problem is about; empty for a
	// problem with the document itself, such as an unknown key.
	Key string
	// Msg says what is wrong and, where it helps, what is expected.
	Msg string
}

// Error formats e as "config: FILE: line N: KEY: MSG", leaving out the parts
// that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// joinSorted joins errs sorted by line; problems without a line (Line 0) go
// last, in the order they were found, which follows the order of keys in the
// file format. It returns nil for no errors.
func joinSorted(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		switch {
		case a.Line == b.Line:
			return 0
		case a.Line == 0:
			return 1
		case b.Line == 0:
			return -1
		case a.Line < b.Line:
			return -1
		default:
			return 1
		}
	})
	if len(errs) == 1 {
		return errs[0]
	}
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}

// origin records where the values of a parsed file came from.
type origin struct {
	name string
	// lines maps a key to the line of its value.
	lines map[string]int
	// itemLines maps a list key to the line of each item.
	itemLines map[string][]int
	// values maps a key to its value as parsed (as returned by the key's
	// get function), to tell whether a field still holds it.
	values map[string]any
}

// suggest returns the known word closest to name, or "" when none is close
// enough to be a likely typo: at most one edit for short words and a third
// of the word's length for longer ones, or a word that name starts with
// ("warning" for "warn"), ignoring case.
func suggest(name string, known []string) string {
	best, bestDist := "", -1
	lname := strings.ToLower(name)
	for _, k := range known {
		d := editDistance(lname, k)
		if limit := max(1, len(k)/3); d > limit && !strings.HasPrefix(lname, k) {
			continue
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of adjacent bytes
// each cost 1, so "wrokers" is one edit from "workers". Keys are ASCII, so
// bytes are characters. Inputs are bounded by the caller (keys of at most
// maxKeyLen bytes), keeping the quadratic table small.
func editDistance(a, b string) int {
	// Three rows suffice: the transposition step looks two rows back.
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
