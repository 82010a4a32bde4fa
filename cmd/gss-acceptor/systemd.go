package main

// The systemd side: sd_notify states, STATUS= lines and the watchdog
// (ARCHITECTURE.md §7).

import (
	"fmt"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// watchdog sends WATCHDOG=1 at half the systemd interval while the accept
// loop's heartbeat is fresh; a stuck loop stops the pings and systemd
// restarts us.
func (d *daemonState) watchdog() (stop func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if time.Since(d.server.Heartbeat()) < interval/2 {
					d.notify(daemon.SdNotifyWatchdog)
				} else {
					d.log.Warn("accept loop heartbeat is stale; withholding the watchdog ping")
				}
			}
		}
	}()
	return func() { close(done) }
}

func (d *daemonState) statusLine() string {
	if d.server == nil || d.pool == nil {
		return "STATUS=starting"
	}
	acc, est, failed, hs := d.server.Stats()
	ws, restarts := d.pool.Status()
	sessions := 0
	for _, w := range ws {
		sessions += w.Sessions
	}
	return fmt.Sprintf("STATUS=%d workers, %d sessions, %d handshaking; %d accepted, %d handed off, %d failed, %d worker restarts",
		len(ws), sessions, hs, acc, est, failed, restarts)
}

// notify talks to systemd when NOTIFY_SOCKET is set; only the main process
// does (NotifyAccess=main), and the variable is not passed to workers.
func (d *daemonState) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		d.log.Debug("sd_notify failed", zap.Error(err))
	}
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Sec*1e6 + ts.Nsec/1e3
}
