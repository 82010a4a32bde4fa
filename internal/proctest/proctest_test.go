package proctest

import (
	"os/exec"
	"syscall"
	"testing"
)

func TestStop(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := cmd.Process.Pid
	if AllThreadsStopped(t, pid) {
		t.Fatal("a running process reported stopped")
	}
	Stop(t, pid)
	if !AllThreadsStopped(t, pid) {
		t.Fatal("not stopped after Stop")
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if !AllThreadsStopped(t, pid) {
			return
		}
	}
	t.Fatal("still stopped after SIGCONT")
}
