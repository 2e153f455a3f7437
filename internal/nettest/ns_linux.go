package nettest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NS is a named network namespace. CreateNS makes one for a program (the
// caller calls Close); NewNS makes one owned by a test (removed in
// t.Cleanup, and Run and Handle fail that test).
type NS struct {
	Name string
	t    testing.TB // nil unless made by NewNS or a test topology
}

// RandSuffix returns 8 random hex characters for unique names.
func RandSuffix() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// CreateNS creates the namespace name with lo up. The caller owns it and
// removes it with Close.
func CreateNS(ctx context.Context, name string) (*NS, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	if err := sharedNetnsDir(); err != nil {
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("get netns: %w", err)
			return
		}
		defer orig.Close()
		h, err := netns.NewNamed(name)
		if err != nil {
			// NewNamed may have switched before failing: go back or
			// leave the thread locked so the runtime discards it.
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			errc <- err
			return
		}
		h.Close()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("leave netns %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("create netns %s: %w", name, err)
	}
	ns := &NS{Name: name}
	if err := ns.Do(func() error { return LinkUp("lo", "") }); err != nil {
		_ = ns.Close()
		return nil, fmt.Errorf("netns %s: %w", name, err)
	}
	return ns, nil
}

// NewNS creates a namespace named "vxt-<prefix>-<random>" with lo up and
// deletes it in t.Cleanup. prefix should be short.
func NewNS(t testing.TB, prefix string) *NS {
	t.Helper()
	ns, err := CreateNS(context.Background(), fmt.Sprintf("vxt-%s-%s", prefix, RandSuffix()))
	if err != nil {
		t.Fatal(err)
	}
	ns.own(t)
	return ns
}

// own makes t the owner of ns: Close runs in t.Cleanup.
func (ns *NS) own(t testing.TB) {
	ns.t = t
	t.Cleanup(func() {
		if err := ns.Close(); err != nil {
			t.Logf("%v", err)
		}
	})
}

// sharedNetnsDir makes netnsDir a shared mount point of its own before the
// first namespace is bound there, as ip netns add does: netns.NewNamed
// binds without it, and when ip netns later turns the directory into a
// mount point (a bind mount over it), the namespaces bound before are
// hidden beneath: they can neither be unmounted nor removed (EBUSY) and
// outlive the test. Once per process; a failure is returned each time.
func sharedNetnsDir() error {
	netnsDirOnce.Do(func() {
		if err := os.MkdirAll(netnsDir, 0o755); err != nil {
			netnsDirErr = err
			return
		}
		err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == unix.EINVAL { // not a mount point yet
			if err = unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err == nil {
				err = unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
			}
		}
		if err != nil {
			netnsDirErr = fmt.Errorf("make %s a shared mount: %w", netnsDir, err)
		}
	})
	return netnsDirErr
}

var (
	netnsDirOnce sync.Once
	netnsDirErr  error
)

// netnsDir is where named namespaces are bound (netns.NewNamed, ip netns).
const netnsDir = "/var/run/netns"

// Close kills every process left in the namespace and deletes it. It
// needs no context: it must also work after a run was cancelled.
func (ns *NS) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns.Name).Output(); err == nil {
		self := os.Getpid()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != self && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	// As ip netns delete does: unmount, ignoring a failure (e.g. not a
	// mount point in this mount namespace), and remove the name anyway.
	// netns.DeleteNamed gives up when the unmount fails and leaves the
	// name behind.
	path := filepath.Join(netnsDir, ns.Name)
	var err error
	for range 20 {
		_ = syscall.Unmount(path, syscall.MNT_DETACH)
		if err = os.Remove(path); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("delete netns %s: %w", ns.Name, err)
}

// Do runs fn on an OS thread switched into the namespace and switches back.
// Sockets, TUN devices and netlink calls made in fn belong to the namespace.
func (ns *NS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("get netns: %w", err)
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(ns.Name)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", ns.Name, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", ns.Name, err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked so the runtime discards it.
			errc <- fmt.Errorf("leave netns %s: %w (fn: %v)", ns.Name, err, ferr)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// NetlinkHandle returns a netlink handle bound to the namespace; the
// caller closes it.
func (ns *NS) NetlinkHandle() (*netlink.Handle, error) {
	h, err := netns.GetFromName(ns.Name)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", ns.Name, err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", ns.Name, err)
	}
	return nh, nil
}

// Command returns a command running argv inside the namespace through
// "ip netns exec", which execs argv in place: the command's PID is argv's.
func (ns *NS) Command(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"netns", "exec", ns.Name}, argv...)
	return exec.CommandContext(ctx, "ip", args...)
}

// Exec runs argv in the namespace and returns its combined output; the
// error quotes the output.
func (ns *NS) Exec(ctx context.Context, argv ...string) (string, error) {
	var buf bytes.Buffer
	cmd := ns.Command(ctx, argv...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return buf.String(), fmt.Errorf("in %s: %s: %w: %s", ns.Name, strings.Join(argv, " "), err, strings.TrimSpace(buf.String()))
	}
	return buf.String(), nil
}

// ExecAll runs each command in turn and stops at the first error.
func (ns *NS) ExecAll(ctx context.Context, cmds [][]string) error {
	for _, c := range cmds {
		if _, err := ns.Exec(ctx, c...); err != nil {
			return err
		}
	}
	return nil
}

// testTB returns the test owning ns; a namespace made by CreateNS has none.
func (ns *NS) testTB() testing.TB {
	if ns.t == nil {
		panic("nettest: " + ns.Name + " has no test: Run, Try and Handle are for namespaces made by NewNS or a test topology")
	}
	return ns.t
}

// Run runs argv in the namespace (2 minute limit) and fails the owning
// test on error; it returns combined output.
func (ns *NS) Run(argv ...string) string {
	t := ns.testTB()
	t.Helper()
	out, err := ns.Try(argv...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// Try runs argv in the namespace (2 minute limit) and returns combined
// output and error.
func (ns *NS) Try(argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return ns.Exec(ctx, argv...)
}

// Handle returns a netlink handle bound to the namespace, closed in the
// owning test's cleanup; it fails the test on error.
func (ns *NS) Handle() *netlink.Handle {
	t := ns.testTB()
	t.Helper()
	nh, err := ns.NetlinkHandle()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nh.Close)
	return nh
}
