package fastpath

import (
	"golang.org/x/sys/unix"

	"github.com/vxtun/vxtun/tun"
)

var _ pollTUN = (*tun.Queue)(nil)

// yieldCPU gives the CPU to any other runnable thread (sched_yield): a
// spinner costs nothing when someone else has work. RawSyscall: it does not
// block, and telling the runtime would wake its sysmon thread.
func yieldCPU() { unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
