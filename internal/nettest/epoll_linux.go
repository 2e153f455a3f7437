package nettest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// EpollTargets returns the descriptors registered in this process's epoll
// instances (the Go runtime poller's), from /proc/self/fdinfo: a test that
// a descriptor is, or is not, in the poller.
func EpollTargets(t testing.TB) map[int]bool { return EpollTargetsOf(t, "self") }

// EpollTargetsOf is EpollTargets for the process pid ("self" or a number),
// e.g. a daemon a test started.
func EpollTargetsOf(t testing.TB, pid string) map[int]bool {
	t.Helper()
	dir := "/proc/" + pid
	ents, err := os.ReadDir(dir + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	set := map[int]bool{}
	for _, e := range ents {
		if l, _ := os.Readlink(dir + "/fd/" + e.Name()); l != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile(dir + "/fdinfo/" + e.Name())
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(info), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "tfd:" {
				if n, err := strconv.Atoi(f[1]); err == nil {
					set[n] = true
				}
			}
		}
	}
	return set
}

// DataplaneFds returns the descriptors of process pid that are TUN queues
// (/dev/net/tun) and those that are UDP sockets (their inodes listed in the
// process's /proc/<pid>/net/udp and udp6, i.e. its network namespace).
func DataplaneFds(t testing.TB, pid int) (tun, udp []int) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d", pid)
	inodes := map[string]bool{}
	for _, f := range []string{"udp", "udp6"} {
		b, err := os.ReadFile(dir + "/net/" + f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(line); len(f) > 9 {
				inodes[f[9]] = true
			}
		}
	}
	ents, err := os.ReadDir(dir + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		l, _ := os.Readlink(dir + "/fd/" + e.Name())
		switch {
		case l == "/dev/net/tun":
			tun = append(tun, n)
		case strings.HasPrefix(l, "socket:[") && inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")]:
			udp = append(udp, n)
		}
	}
	return tun, udp
}

// RawFd returns the descriptor behind rc.
func RawFd(t testing.TB, rc syscall.RawConn) int {
	t.Helper()
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// NamedTest is a test function and the subtest name to run it under.
type NamedTest struct {
	Name string
	Fn   func(*testing.T)
}

// RerunWith runs each test again as a subtest of t with *flag true (a
// package's test switch, e.g. "open descriptors outside the runtime
// poller"), setting it back to false after each. The tests must not run in
// parallel with others that read the flag.
func RerunWith(t *testing.T, flag *bool, tests ...NamedTest) {
	for _, tc := range tests {
		t.Run(tc.Name, func(t *testing.T) {
			*flag = true
			defer func() { *flag = false }()
			tc.Fn(t)
		})
	}
}
