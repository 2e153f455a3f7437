package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

// The overlays users would pick instead of vxtun, run in the same testbed
// and the same run: wireguard-go (configured with wg from wireguard-tools)
// and nebula. Both are built by the harness with "go install" from the Go
// module proxy into Config.ToolCache (outside the repository, never
// committed); a peer that cannot be built or set up is reported as
// unavailable with the reason, never faked. Both encrypt every packet, so
// their figures include the cost of encryption, which VXLAN does not pay.

// GoTool is a program the harness builds from the module proxy.
type GoTool struct {
	Name     string   // cache directory name, e.g. "nebula"
	Version  string   // module version or "latest"
	Packages []string // import paths, installed at Version
}

// Build installs the packages with GOBIN=<cacheDir>/<Name>-<Version>/bin
// unless that directory already holds every binary, and returns the
// directory. Errors wrap ErrUnavailable.
func (g GoTool) Build(ctx context.Context, cacheDir string) (string, error) {
	bin := filepath.Join(cacheDir, g.Name+"-"+g.Version, "bin")
	have := true
	for _, p := range g.Packages {
		if _, err := os.Stat(filepath.Join(bin, filepath.Base(p))); err != nil {
			have = false
		}
	}
	if have {
		return bin, nil
	}
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", unavailable("%s: cache dir: %v", g.Name, err)
	}
	args := []string{"install"}
	for _, p := range g.Packages {
		args = append(args, p+"@"+g.Version)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = cacheDir // outside any module: "go install pkg@version" needs none
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=-buildvcs=false", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", unavailable("%s: go %s: %v: %s", g.Name, strings.Join(args, " "), err, lastLine(out))
	}
	return bin, nil
}

// moduleVersion is the main module version "go version -m" records in a
// binary ("" if unknown).
func moduleVersion(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, "go", "version", "-m", bin).Output()
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "mod" {
			return f[1] + " " + f[2]
		}
	}
	return ""
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// DefaultToolCache is where peers are built unless Config.ToolCache says
// otherwise: the user's cache directory, outside the repository.
func DefaultToolCache() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "vxtun-bench")
	}
	return filepath.Join(os.TempDir(), "vxtun-bench")
}

// Tools the peer modes build.
var (
	WireGuardGoTool = GoTool{Name: "wireguard-go", Version: "latest", Packages: []string{"golang.zx2c4.com/wireguard"}}
	NebulaTool      = GoTool{Name: "nebula", Version: "v1.10.3",
		Packages: []string{"github.com/slackhq/nebula/cmd/nebula", "github.com/slackhq/nebula/cmd/nebula-cert"}}
)

// peerMTU is the tunnel MTU of both peer modes: the 1500-byte underlay less
// their overhead over IPv4 (WireGuard: 20 IP + 8 UDP + 32; nebula: 20 + 8 +
// 16 header + 16 tag), so the 1400-byte UDP test fits as it does VXLAN's
// 1450. (WireGuard's own default, 1420, leaves room for an IPv6 underlay.)
const peerMTU = 1440

// daemonMode is what the two peer modes share: daemons per node, started
// through the harness so Close stops them.
type daemonMode struct {
	h       *Harness
	daemons []*nettest.Daemon
	version string
}

func (m *daemonMode) attach(h *Harness) { m.h = h }

func (m *daemonMode) start(d *nettest.Daemon) error {
	if m.h == nil {
		return errors.New("not attached to a harness")
	}
	if err := m.h.startDaemon(d); err != nil {
		return err
	}
	m.daemons = append(m.daemons, d)
	return nil
}

// PIDs implements Mode.
func (m *daemonMode) PIDs() []int {
	var pids []int
	for _, d := range m.daemons {
		pids = append(pids, d.PID())
	}
	return pids
}

// Check implements Mode.
func (m *daemonMode) Check() error { return nettest.CheckRunning(m.daemons...) }

// Stop implements Mode.
func (m *daemonMode) Stop() error {
	var errs []error
	for _, d := range m.daemons {
		if err := d.Stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// waitLink waits until link name exists in n's namespace or d exits.
func waitLink(ctx context.Context, n *Node, name string, d *nettest.Daemon, timeout time.Duration) error {
	return waitUntil(ctx, "link "+name, d, timeout, func() bool {
		_, err := n.NS.Exec(ctx, "ip", "link", "show", "dev", name)
		return err == nil
	})
}

// waitUntil polls ready until it holds, d exits or timeout passes; what
// names the awaited thing in the error.
func waitUntil(ctx context.Context, what string, d *nettest.Daemon, timeout time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for {
		if ready() {
			return nil
		}
		if err := nettest.CheckRunning(d); err != nil {
			return fmt.Errorf("%w: %s", err, d.LogTail(5))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s after %v: %s", what, timeout, d.LogTail(5))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WireGuardGoMode runs wireguard-go on each node (device wg<run>n<N>, UDP
// port 51820, MTU 1440), keyed and peered with wg; the peer's pod subnet is
// routed into wg0 and is the peer's allowed-ips.
type WireGuardGoMode struct {
	daemonMode
	Cache string
}

// Name implements Mode.
func (m *WireGuardGoMode) Name() string { return ModeWireGuardGo }

// Note is shown with the mode's results.
func (m *WireGuardGoMode) Note() string {
	return "encrypts every packet (ChaCha20-Poly1305): its figures include the cost of encryption, which VXLAN does not pay; " + m.version
}

const wgPort = 51820

// Setup implements Mode.
func (m *WireGuardGoMode) Setup(ctx context.Context, tb *Testbed) error {
	if m.h == nil {
		return errors.New("wireguard-go mode: not attached to a harness")
	}
	if _, err := exec.LookPath("wg"); err != nil {
		return unavailable("wireguard-go: no wg (apt-get install wireguard-tools; scripts/deps.sh does)")
	}
	dir, err := WireGuardGoTool.Build(ctx, m.Cache)
	if err != nil {
		return err
	}
	bin := filepath.Join(dir, "wireguard")
	m.version = "wireguard-go " + moduleVersion(ctx, bin)
	pub := map[*Node]string{}
	keys := map[*Node]string{}
	for _, n := range tb.Nodes {
		priv, err := exec.CommandContext(ctx, "wg", "genkey").Output()
		if err != nil {
			return fmt.Errorf("wg genkey: %w", err)
		}
		c := exec.CommandContext(ctx, "wg", "pubkey")
		c.Stdin = strings.NewReader(string(priv))
		p, err := c.Output()
		if err != nil {
			return fmt.Errorf("wg pubkey: %w", err)
		}
		keys[n] = filepath.Join(tb.Dir, fmt.Sprintf("wg-node%d.key", n.Index))
		if err := os.WriteFile(keys[n], priv, 0o600); err != nil {
			return err
		}
		pub[n] = strings.TrimSpace(string(p))
	}
	// The UAPI socket (/var/run/wireguard/<dev>.sock) is in the file
	// system, which every namespace shares: names unique per run and node.
	dev := func(n *Node) string { return fmt.Sprintf("wg%sn%d", m.h.runID, n.Index) }
	for _, n := range tb.Nodes {
		wg0 := dev(n)
		d := &nettest.Daemon{Name: "wireguard-go " + n.Name(), NS: n.NS, Argv: []string{bin, "-f", wg0},
			Env: []string{"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1"},
			Log: filepath.Join(tb.Dir, fmt.Sprintf("wireguard-go-%s.log", n.Name()))}
		if err := m.start(d); err != nil {
			return err
		}
		if err := waitLink(ctx, n, wg0, d, 10*time.Second); err != nil {
			return fmt.Errorf("wireguard-go: %w", err)
		}
		// wireguard-go opens its UAPI socket after the link: wg set before
		// it falls back to netlink (no kernel wireguard: "Protocol not
		// supported").
		sock := filepath.Join("/var/run/wireguard", wg0+".sock")
		if err := waitUntil(ctx, sock, d, 10*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }); err != nil {
			return fmt.Errorf("wireguard-go: %w", err)
		}
		p := tb.peer(n)
		cmds := [][]string{
			{"wg", "set", wg0, "private-key", keys[n], "listen-port", fmt.Sprint(wgPort),
				"peer", pub[p], "endpoint", netip.AddrPortFrom(p.Underlay, wgPort).String(), "allowed-ips", p.Subnet.String()},
			{"ip", "link", "set", wg0, "mtu", fmt.Sprint(peerMTU), "up"},
			{"ip", "route", "add", p.Subnet.String(), "dev", wg0},
		}
		if err := n.NS.ExecAll(ctx, cmds); err != nil {
			return fmt.Errorf("wireguard-go: %w", err)
		}
	}
	return waitOverlay(ctx, tb, 20*time.Second, m.Check)
}

// NebulaMode runs nebula on each node: a CA and one certificate per node
// made with nebula-cert (node N: nebula address 198.19.255.N/24, unsafe
// network = its pod subnet), no lighthouse (static host map), UDP port
// 4242, MTU 1440, a firewall that allows everything (local_cidr any, so
// traffic to the pod subnet, not only to the nebula address, passes), and
// the peer's pod subnet as an unsafe route via the peer's nebula address.
type NebulaMode struct {
	daemonMode
	Cache string
}

// Name implements Mode.
func (m *NebulaMode) Name() string { return ModeNebula }

// Note is shown with the mode's results.
func (m *NebulaMode) Note() string {
	return "encrypts every packet (AES-256-GCM): its figures include the cost of encryption, which VXLAN does not pay; " + m.version
}

const nebulaPort = 4242

// nebulaAddr is node n's nebula address.
func nebulaAddr(n *Node) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, 255, byte(n.Index)}) }

// Setup implements Mode.
func (m *NebulaMode) Setup(ctx context.Context, tb *Testbed) error {
	dir, err := NebulaTool.Build(ctx, m.Cache)
	if err != nil {
		return err
	}
	bin, certBin := filepath.Join(dir, "nebula"), filepath.Join(dir, "nebula-cert")
	m.version = "nebula " + moduleVersion(ctx, bin)
	ca, caKey := filepath.Join(tb.Dir, "ca.crt"), filepath.Join(tb.Dir, "ca.key")
	_ = os.Remove(ca)
	_ = os.Remove(caKey)
	if out, err := exec.CommandContext(ctx, certBin, "ca", "-name", "vxbench", "-duration", "24h",
		"-out-crt", ca, "-out-key", caKey).CombinedOutput(); err != nil {
		return fmt.Errorf("nebula-cert ca: %v: %s", err, lastLine(out))
	}
	for _, n := range tb.Nodes {
		crt := filepath.Join(tb.Dir, fmt.Sprintf("node%d.crt", n.Index))
		key := filepath.Join(tb.Dir, fmt.Sprintf("node%d.key", n.Index))
		_ = os.Remove(crt)
		_ = os.Remove(key)
		if out, err := exec.CommandContext(ctx, certBin, "sign", "-ca-crt", ca, "-ca-key", caKey, "-name", n.Name(),
			"-networks", netip.PrefixFrom(nebulaAddr(n), 24).String(), "-unsafe-networks", n.Subnet.String(),
			"-out-crt", crt, "-out-key", key).CombinedOutput(); err != nil {
			return fmt.Errorf("nebula-cert sign: %v: %s", err, lastLine(out))
		}
		p := tb.peer(n)
		conf := nebulaConfig(ca, crt, key, n, p)
		path := filepath.Join(tb.Dir, fmt.Sprintf("nebula-node%d.yml", n.Index))
		if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
			return err
		}
		d := &nettest.Daemon{Name: "nebula " + n.Name(), NS: n.NS, Argv: []string{bin, "-config", path},
			Log: filepath.Join(tb.Dir, fmt.Sprintf("nebula-%s.log", n.Name()))}
		if err := m.start(d); err != nil {
			return err
		}
		if err := waitLink(ctx, n, "nebula1", d, 10*time.Second); err != nil {
			return fmt.Errorf("nebula: %w", err)
		}
	}
	return waitOverlay(ctx, tb, 30*time.Second, m.Check)
}

// nebulaConfig is node n's nebula configuration with peer p.
func nebulaConfig(ca, crt, key string, n, p *Node) string {
	return fmt.Sprintf(`pki:
  ca: %s
  cert: %s
  key: %s
static_host_map:
  "%s": ["%s"]
lighthouse:
  am_lighthouse: false
  hosts: []
listen:
  host: %s
  port: %d
punchy:
  punch: false
tun:
  dev: nebula1
  mtu: %d
  unsafe_routes:
    - route: %s
      via: %s
logging:
  level: warning
firewall:
  outbound:
    - port: any
      proto: any
      host: any
      local_cidr: any
  inbound:
    - port: any
      proto: any
      host: any
      local_cidr: any
`, ca, crt, key, nebulaAddr(p), netip.AddrPortFrom(p.Underlay, nebulaPort), n.Underlay, nebulaPort, peerMTU,
		p.Subnet, nebulaAddr(p))
}
