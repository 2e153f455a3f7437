package nettest

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// EpollTargets returns the descriptors registered in this process's epoll
// instances (the Go runtime poller's), from /proc/self/fdinfo: a test that
// a descriptor is, or is not, in the poller.
func EpollTargets(t testing.TB) map[int]bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	set := map[int]bool{}
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + e.Name())
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
