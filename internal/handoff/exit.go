package handoff

// ExitFatal is the exit status of a worker that failed in a way a restart
// cannot fix: it was not started by the acceptor (no channel on fd 3), the
// channel's peer is not its parent, its options or the HELLO are unusable.
// The supervisor does not respawn a worker that exits with it, as nginx's
// master does not respawn a worker that exits with status 2
// (ARCHITECTURE.md §7); a worker that exits in any other way is respawned.
const ExitFatal = 2
