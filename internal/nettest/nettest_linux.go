package nettest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RequirePrivEnv is the environment variable that turns privileged skips into failures.
const RequirePrivEnv = "VXTUN_REQUIRE_PRIV"

// RequirePrivileged skips t unless the process can create namespaces, veth
// pairs and TUN devices. With VXTUN_REQUIRE_PRIV=1 a missing privilege fails t.
func RequirePrivileged(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		missing = append(missing, "/dev/net/tun")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing = append(missing, "iproute2 (ip)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "needs " + strings.Join(missing, ", ")
	if os.Getenv(RequirePrivEnv) == "1" {
		t.Fatalf("%s (and %s=1 forbids skipping)", msg, RequirePrivEnv)
	}
	t.Skip(msg)
}

// RequireCommand skips (or, under VXTUN_REQUIRE_PRIV=1, fails) t when an
// external program the test needs is not installed.
func RequireCommand(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			msg := fmt.Sprintf("needs %s (apt-get install it)", n)
			if os.Getenv(RequirePrivEnv) == "1" {
				t.Fatalf("%s (and %s=1 forbids skipping)", msg, RequirePrivEnv)
			}
			t.Skip(msg)
		}
	}
}

// NS is a network namespace owned by one test.
type NS struct {
	Name string
	t    testing.TB
}

// RandSuffix returns 8 random hex characters for unique names.
func RandSuffix() string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// NewNS creates a namespace named "vxt-<prefix>-<random>" with lo up and
// deletes it in t.Cleanup. prefix should be short (names are limited in length
// only by the filesystem, but keep them readable).
func NewNS(t testing.TB, prefix string) *NS {
	t.Helper()
	name := fmt.Sprintf("vxt-%s-%s", prefix, RandSuffix())
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
			errc <- err
			return
		}
		h.Close()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the runtime then discards this thread.
			errc <- fmt.Errorf("leave netns %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	ns := &NS{Name: name, t: t}
	t.Cleanup(func() {
		// Kill anything still running in the namespace, then remove it.
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			self := strconv.Itoa(os.Getpid())
			for _, f := range strings.Fields(string(out)) {
				if f == self {
					continue
				}
				_ = exec.Command("kill", "-9", f).Run()
			}
		}
		if err := netns.DeleteNamed(name); err != nil {
			t.Logf("delete netns %s: %v", name, err)
		}
	})
	if err := ns.Do(func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	}); err != nil {
		t.Fatalf("netns %s: lo up: %v", name, err)
	}
	return ns
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

// Handle returns a netlink handle bound to the namespace; closed in t.Cleanup.
func (ns *NS) Handle() *netlink.Handle {
	ns.t.Helper()
	h, err := netns.GetFromName(ns.Name)
	if err != nil {
		ns.t.Fatalf("open netns %s: %v", ns.Name, err)
	}
	defer h.Close()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		ns.t.Fatalf("netlink handle in %s: %v", ns.Name, err)
	}
	ns.t.Cleanup(nh.Close)
	return nh
}

// Command returns an exec.Cmd that runs argv inside the namespace
// (through "ip netns exec").
func (ns *NS) Command(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"netns", "exec", ns.Name}, argv...)
	return exec.CommandContext(ctx, "ip", args...)
}

// Run runs argv in the namespace and fails the test on error; it returns
// combined output.
func (ns *NS) Run(argv ...string) string {
	ns.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := ns.Command(ctx, argv...).CombinedOutput()
	if err != nil {
		ns.t.Fatalf("in %s: %s: %v\n%s", ns.Name, strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// Try runs argv in the namespace and returns combined output and error.
func (ns *NS) Try(argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var buf bytes.Buffer
	cmd := ns.Command(ctx, argv...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// Veth creates a veth pair with one end in a (named nameA, address addrA in
// CIDR form) and the other in b, both up. addrA/addrB may be empty.
func Veth(t testing.TB, a *NS, nameA, addrA string, b *NS, nameB, addrB string) {
	t.Helper()
	// Create the pair inside a with the peer end placed directly into b, so
	// both ends may carry the same name.
	hb, err := netns.GetFromName(b.Name)
	if err != nil {
		t.Fatalf("open netns %s: %v", b.Name, err)
	}
	defer hb.Close()
	err = a.Do(func() error {
		la := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: nameA},
			PeerName:      nameB,
			PeerNamespace: netlink.NsFd(hb),
		}
		if err := netlink.LinkAdd(la); err != nil {
			return fmt.Errorf("add veth %s/%s: %w", nameA, nameB, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("veth: %v", err)
	}
	for _, s := range []struct {
		ns   *NS
		name string
		addr string
	}{{a, nameA, addrA}, {b, nameB, addrB}} {
		if err := s.ns.Do(func() error { return LinkUp(s.name, s.addr) }); err != nil {
			t.Fatalf("veth %s in %s: %v", s.name, s.ns.Name, err)
		}
	}
}

// LinkUp adds addr (CIDR, may be empty) to the link in the current namespace
// and sets it up. Call it inside NS.Do.
func LinkUp(name, addr string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if addr != "" {
		a, err := netlink.ParseAddr(addr)
		if err != nil {
			return fmt.Errorf("parse %s: %w", addr, err)
		}
		if err := netlink.AddrAdd(l, a); err != nil {
			return fmt.Errorf("addr %s on %s: %w", addr, name, err)
		}
	}
	return netlink.LinkSetUp(l)
}

// TwoHosts is the common underlay: two namespaces joined by a veth pair,
// 198.18.0.1/24 on "ul0" in A and 198.18.0.2/24 on "ul0" in B.
type TwoHosts struct {
	A, B         *NS
	AddrA, AddrB net.IP
}

// NewTwoHosts builds the two-host underlay.
func NewTwoHosts(t testing.TB) *TwoHosts {
	t.Helper()
	RequirePrivileged(t)
	a := NewNS(t, "a")
	b := NewNS(t, "b")
	Veth(t, a, "ul0", "198.18.0.1/24", b, "ul0", "198.18.0.2/24")
	return &TwoHosts{A: a, B: b, AddrA: net.IPv4(198, 18, 0, 1), AddrB: net.IPv4(198, 18, 0, 2)}
}

// SetSysctl writes a sysctl inside the current namespace (call inside Do), e.g.
// SetSysctl("net/ipv4/ip_forward", "1").
func SetSysctl(key, val string) error {
	return os.WriteFile("/proc/sys/"+key, []byte(val), 0o644)
}
