package nettest

import (
	"os"
	"strconv"
	"strings"
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
