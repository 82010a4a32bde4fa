// Package supervisor runs the acceptor's worker processes (ARCHITECTURE.md
// §7): it starts each gss-worker with its end of a handoff channel, sends
// it HELLO (identity, seal key, limits) and waits for READY; it respawns a
// worker that exits, with an exponential backoff, unless the worker exited
// with handoff.ExitFatal; it recycles workers after a number of sessions
// or a lifetime, resizes the pool and drains it on shutdown.
//
// Its Pool is also the dispatcher of established sessions: it implements
// listener.Dispatcher, handing each connection's descriptor and sealed
// context token to the least-loaded worker and waiting for the ACK, and it
// keeps the per-worker load the workers report (ACK, SESSION_END) for the
// accept loop's backpressure.
//
// The package knows the handoff protocol and the workers' process
// lifecycle, not the client wire protocol or context establishment: the
// context token is opaque bytes to it, and the seal key is only passed on
// in HELLO.
package supervisor
