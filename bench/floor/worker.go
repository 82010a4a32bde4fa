package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// workerChannelFD is where a worker finds its channel (ExtraFiles[0]).
const workerChannelFD = 3

// endFlushDelay bounds how long a session's end report waits for the next
// ACK to ride ahead of, as gss-worker's (ARCHITECTURE.md §11).
const endFlushDelay = 20 * time.Millisecond

// recvFDRoom is how many descriptors one receive takes in, so that a
// faulty message's extra descriptors arrive and are closed rather than
// dropped by the kernel unseen.
const recvFDRoom = 4

// worker is the worker role: it takes handoffs from the channel and
// serves each connection in its own goroutine.
type worker struct {
	uc         *net.UnixConn
	flushDelay time.Duration
	wg         sync.WaitGroup
	mu         sync.Mutex
	live       map[*os.File]struct{}

	sendMu sync.Mutex // serializes writes on uc
	// SESSION_ENDs waiting for the next ACK or for flushDelay; under
	// sendMu.
	ends *handoff.Deferred[[]byte]
}

// runWorker serves handoffs from the channel on fd until the acceptor
// shuts the channel or ctx ends, then closes the sessions still open and
// returns once each has reported its end. A session's end report waits
// up to flushDelay to go out just ahead of the next ACK.
func runWorker(ctx context.Context, fd uintptr, flushDelay time.Duration) error {
	f := os.NewFile(fd, "floor-channel")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("floor: worker channel: %w", err)
	}
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		nc.Close()
		return fmt.Errorf("floor: worker channel is a %T", nc)
	}
	w := &worker{uc: uc, flushDelay: flushDelay, live: make(map[*os.File]struct{})}
	// A failed write means the acceptor is gone; there is nobody to tell.
	w.ends = handoff.NewDeferred(&w.sendMu, flushDelay, func(end []byte) { w.uc.Write(end) })
	defer uc.Close()
	release := context.AfterFunc(ctx, func() { uc.CloseRead() })
	defer release()

	ready := binary.BigEndian.AppendUint32(nil, uint32(os.Getpid()))
	if _, err := uc.Write(ready); err != nil {
		return fmt.Errorf("floor: sending READY: %w", err)
	}
	err = w.loop()
	w.mu.Lock()
	for c := range w.live {
		c.Close()
	}
	w.mu.Unlock()
	w.wg.Wait()
	w.flushEnds()
	return err
}

// loop receives handoffs until end of file on the channel.
func (w *worker) loop() error {
	buf := make([]byte, maxToken+1)
	oob := make([]byte, unix.CmsgSpace(recvFDRoom*4))
	for {
		n, oobn, flags, _, err := w.uc.ReadMsgUnix(buf, oob)
		fds, perr := parseRights(oob[:oobn])
		switch {
		case err != nil || n == 0:
			closeFDs(fds)
			if err == nil || errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("floor: receiving a handoff: %w", err)
		case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0:
			closeFDs(fds)
			return fmt.Errorf("floor: handoff truncated (flags %#x)", flags)
		case perr != nil || len(fds) != 1 || n < idLen:
			closeFDs(fds)
			return fmt.Errorf("floor: malformed handoff: %d bytes, %d descriptors: %w", n, len(fds), perr)
		}
		if err := w.take(binary.BigEndian.Uint64(buf), fds[0]); err != nil {
			return err
		}
	}
}

// take turns a received descriptor into a connection, ACKs the handoff and
// starts the session. Like gss-worker, it serves the received descriptor
// as the *os.File: the socket is already non-blocking, so os.NewFile
// registers it with the poller and deadlines work, without net.FileConn's
// dup and socket-option calls.
func (w *worker) take(id uint64, fd int) error {
	conn := os.NewFile(uintptr(fd), "floor-client")
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return fmt.Errorf("floor: handoff %d: descriptor not pollable: %w", id, err)
	}
	if err := w.send(binary.BigEndian.AppendUint64(nil, id)); err != nil {
		conn.Close()
		return fmt.Errorf("floor: sending ACK %d: %w", id, err)
	}
	w.mu.Lock()
	w.live[conn] = struct{}{}
	w.mu.Unlock()
	w.wg.Go(func() { w.session(id, conn) })
	return nil
}

// session serves one connection and reports its end on the channel.
func (w *worker) session(id uint64, conn *os.File) {
	start := time.Now()
	frames, err := serveSession(conn, wire.NewReader(conn, workerReadBuffer))
	conn.Close()
	w.mu.Lock()
	delete(w.live, conn)
	w.mu.Unlock()
	var result uint32
	if err != nil {
		result = 1
	}
	end := make([]byte, 0, endLen)
	end = binary.BigEndian.AppendUint64(end, id)
	end = binary.BigEndian.AppendUint32(end, result)
	end = binary.BigEndian.AppendUint32(end, 0) // load: unused here
	end = binary.BigEndian.AppendUint64(end, uint64(time.Since(start).Microseconds()))
	end = binary.BigEndian.AppendUint64(end, uint64(frames))
	end = end[:endLen] // the other counters stay zero
	w.endSession(end)
}

// endSession queues a SESSION_END to go out just ahead of the next ACK or
// after flushDelay, whichever comes first: one client at a time, the next
// handoff's ACK carries it, so the acceptor wakes once per connection for
// both, as with gss-worker.
func (w *worker) endSession(end []byte) { w.ends.Add(end, false) }

// flushEnds sends the queued SESSION_ENDs (at exit).
func (w *worker) flushEnds() { w.ends.Flush() }

// send writes msg to the acceptor after the queued SESSION_ENDs.
func (w *worker) send(msg []byte) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	w.ends.FlushLocked()
	_, err := w.uc.Write(msg)
	return err
}

// parseRights returns the descriptors in the SCM_RIGHTS messages of oob.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("floor: control data: %w", err)
	}
	var fds []int
	for i := range msgs {
		// ParseUnixRights indexes past the end of data whose length is
		// not a multiple of four.
		if len(msgs[i].Data)%4 != 0 {
			return fds, fmt.Errorf("floor: control data: %d-byte SCM_RIGHTS payload", len(msgs[i].Data))
		}
		r, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return fds, fmt.Errorf("floor: control data: %w", err)
		}
		fds = append(fds, r...)
	}
	return fds, nil
}

// closeFDs closes received descriptors that will not be used.
func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
