//go:build !race

package fastpath

const raceEnabled = false

const raceTransferSize = 16 << 20
