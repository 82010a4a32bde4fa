package handoff

import (
	"errors"
	"fmt"
	"os"
	"slices"
)

// ErrPeer is returned (wrapped) by CheckParent and CheckWorker when the
// peer's credentials do not match the policy.
var ErrPeer = errors.New("handoff: peer credentials rejected")

// CheckParent is the worker's check of the channel it inherited as fd 3:
// the peer must be its parent process (SO_PEERCRED pid == getppid), and
// run as the worker's own effective uid or as root (a root acceptor that
// starts workers under an unprivileged account).
//
// On a socketpair the kernel records the credentials of the process that
// called socketpair(2); Pair is called by the acceptor before it starts the
// worker, so that is the parent. If the parent has died the worker has been
// re-parented and the check fails, which is what a worker should do with a
// channel nobody it trusts holds.
func CheckParent(c *Conn) error {
	cred, err := c.PeerCred()
	if err != nil {
		return err
	}
	if ppid := os.Getppid(); int(cred.Pid) != ppid {
		return fmt.Errorf("%w: peer pid %d is not the parent pid %d", ErrPeer, cred.Pid, ppid)
	}
	if euid := uint32(os.Geteuid()); cred.Uid != euid && cred.Uid != 0 {
		return fmt.Errorf("%w: peer uid %d is neither ours (%d) nor root", ErrPeer, cred.Uid, euid)
	}
	return nil
}

// CheckWorker is the parent's check of a channel: the peer's effective uid
// must be one of allowedUIDs (by default only the parent's own).
//
// On a channel made by Pair the kernel reports the creator, this process,
// for both ends: the worker's identity there is established by
// construction (only the worker was given the other end), and
// CheckWorker accepts a peer whose credentials are exactly this process's.
// The uid policy is what decides for any other channel, such as one
// reached through a named socket.
func CheckWorker(c *Conn, allowedUIDs ...uint32) error {
	cred, err := c.PeerCred()
	if err != nil {
		return err
	}
	euid := uint32(os.Geteuid())
	if int(cred.Pid) == os.Getpid() && cred.Uid == euid {
		return nil // our own socketpair
	}
	if len(allowedUIDs) == 0 {
		allowedUIDs = []uint32{euid}
	}
	if !slices.Contains(allowedUIDs, cred.Uid) {
		return fmt.Errorf("%w: peer pid %d uid %d not in the allowed uids %v", ErrPeer, cred.Pid, cred.Uid, allowedUIDs)
	}
	return nil
}
