package rtune

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestWithSteadySysmon(t *testing.T) {
	for _, tt := range []struct {
		name    string
		env     []string
		want    []string
		changed bool
	}{
		{"no GODEBUG", []string{"PATH=/bin"}, []string{"PATH=/bin", "GODEBUG=" + Schedtrace}, true},
		{"empty GODEBUG", []string{"GODEBUG=", "TZ=UTC"}, []string{"GODEBUG=" + Schedtrace, "TZ=UTC"}, true},
		{"other settings kept", []string{"GODEBUG=madvdontneed=1"}, []string{"GODEBUG=madvdontneed=1," + Schedtrace}, true},
		{"operator's schedtrace wins", []string{"GODEBUG=gctrace=1,schedtrace=0"}, []string{"GODEBUG=gctrace=1,schedtrace=0"}, false},
		{"duplicate GODEBUG dropped", []string{"GODEBUG=a=1", "GODEBUG=b=2"}, []string{"GODEBUG=a=1," + Schedtrace}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := WithSteadySysmon(tt.env)
			if changed != tt.changed || !slices.Equal(got, tt.want) {
				t.Errorf("WithSteadySysmon(%q) = %q, %v; want %q, %v", tt.env, got, changed, tt.want, tt.changed)
			}
		})
	}
}

// TestReexec runs this test binary as a child that calls Reexec and
// prints its GODEBUG and PID before and after: the exec keeps the PID and
// arguments, adds the setting, and does not loop.
func TestReexec(t *testing.T) {
	if os.Getenv("RTUNE_CHILD") == "1" {
		os.Stdout.WriteString("pid " + strconv.Itoa(os.Getpid()) + " godebug " + os.Getenv("GODEBUG") + "\n")
		if err := Reexec(); err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
		}
		os.Stdout.WriteString("done\n")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReexec$")
	cmd.Env = append(os.Environ(), "RTUNE_CHILD=1", "GODEBUG=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 {
		t.Fatalf("child printed %q, want the line before the exec, the line after it, and done", lines)
	}
	first, second := strings.Fields(lines[0]), strings.Fields(lines[1])
	if first[1] != second[1] {
		t.Errorf("PID changed across the exec: %s then %s", first[1], second[1])
	}
	if len(first) != 3 || len(second) != 4 || second[3] != Schedtrace {
		t.Errorf("GODEBUG before and after the exec: %q, %q; want empty, then %s", lines[0], lines[1], Schedtrace)
	}
	if lines[2] != "done" {
		t.Errorf("last line %q, want done", lines[2])
	}
}

func TestSteady(t *testing.T) {
	for _, tt := range []struct {
		godebug string
		want    bool
	}{
		{"", false},
		{Schedtrace, true},
		{"madvdontneed=1," + Schedtrace, true},
		{"schedtrace=0", false},
		{"schedtrace=x", false},
		{"gctrace=1", false},
	} {
		t.Setenv("GODEBUG", tt.godebug)
		if got := Steady(); got != tt.want {
			t.Errorf("GODEBUG=%q: Steady() = %v, want %v", tt.godebug, got, tt.want)
		}
	}
}
