//go:build race

package fastpath

// raceEnabled reports a -race build: the race detector slows the pipeline
// about tenfold, so the real-parts TCP transfers use raceTransferSize.
const raceEnabled = true

// raceTransferSize is the TCP transfer per direction under -race (the
// non-race run moves 64 MiB each way).
const raceTransferSize = 16 << 20
