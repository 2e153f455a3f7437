package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/nettest"
)

// VxtunFlags names the flags of "vxtun run" the harness passes; the
// defaults are the expected names. Change them here if cmd/vxtun differs.
var VxtunFlags = struct {
	NetConf, Node, Peers string
}{NetConf: "-net-conf", Node: "-node", Peers: "-peers"}

// VxtunCommand is one "vxtun run" invocation.
type VxtunCommand struct {
	Binary  string   // path to the vxtun binary
	NetConf string   // flannel net-conf.json
	Node    string   // node settings file
	Peers   string   // static peers file
	Extra   []string // further flags, appended as given
}

// Argv returns the command line: binary, "run", the config flags, Extra.
func (c VxtunCommand) Argv() []string {
	argv := []string{c.Binary, "run",
		VxtunFlags.NetConf, c.NetConf,
		VxtunFlags.Node, c.Node,
		VxtunFlags.Peers, c.Peers,
	}
	return append(argv, c.Extra...)
}

// CheckVxtunBinary reports, as an error wrapping ErrUnavailable, why the
// vxtun binary at path cannot run the harness's command line: missing,
// not executable, or "run -h" not documenting the flags.
func CheckVxtunBinary(ctx context.Context, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return unavailable("vxtun binary %s: %v (run `make build`)", path, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return unavailable("vxtun binary %s is not executable", path)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, path, "run", "-h").CombinedOutput() // -h may exit non-zero
	var missing []string
	for _, f := range []string{VxtunFlags.NetConf, VxtunFlags.Node, VxtunFlags.Peers} {
		name := strings.TrimLeft(f, "-")
		if !regexp.MustCompile(`(^|[\s,])--?` + regexp.QuoteMeta(name) + `\b`).Match(out) {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return unavailable("%s run -h does not document %s (it said: %q)", path, strings.Join(missing, ", "), first)
	}
	return nil
}

// VxtunMode runs one vxtun daemon per node ("vxtun run" in the node's
// namespace through "ip netns exec"), with configuration files written by
// the harness, and waits until pod-to-pod ping works.
type VxtunMode struct {
	Backend config.Backend // vxlan or udp
	Binary  string
	Ready   time.Duration // how long to wait for the overlay (default 20 s)
	Extra   []string      // extra "vxtun run" flags
	// DirectRouting sets Backend.DirectRouting in net-conf.json (vxlan;
	// mode_hostgw_linux.go).
	DirectRouting bool
	// Label, when set, is the mode's name (e.g. ModeVxtunBusyPoll).
	Label string
	// Optional names flags of Extra the daemon may not have: when it
	// exits refusing one, the mode is unavailable, not failed.
	Optional []string
	// Exclusive daemons run only during the mode's own measurements and
	// the idle window: the harness stops them (SIGSTOP) otherwise, so a
	// polling daemon never takes the CPU of another mode's measurement.
	Exclusive bool

	daemons []*nettest.Daemon
	h       *Harness
	paused  bool
}

// Name implements Mode.
func (m *VxtunMode) Name() string {
	if m.Label != "" {
		return m.Label
	}
	if m.DirectRouting {
		return ModeVxtunDirectRouting
	}
	return "vxtun-" + string(m.Backend)
}

// WriteVxtunConfig writes net-conf.json, node.json and peers.json for node
// n of tb into dir and checks them with the config package's parsers.
func WriteVxtunConfig(tb *Testbed, n *Node, backend config.Backend, dir string) (nettest.ConfigFiles, error) {
	return writeVxtunConfig(tb, n, nettest.Backend{Type: string(backend)}, dir)
}

func writeVxtunConfig(tb *Testbed, n *Node, be nettest.Backend, dir string) (nettest.ConfigFiles, error) {
	backend := config.Backend(be.Type)
	f := nettest.FilesIn(dir)
	p := tb.peer(n)
	node := nettest.NodeConf{
		PublicIP:    n.Underlay.String(),
		Iface:       nettest.UnderlayIface,
		Subnet:      n.Subnet.String(),
		TunName:     "vxtun0",
		SubnetFile:  f.SubnetEnv,
		UnderlayMTU: UnderlayMTU,
	}
	vxlan := backend == config.BackendVXLAN
	if vxlan {
		node.VtepMAC = n.VtepMAC.String()
	} else {
		// Keep any generated MAC in the run's directory, never in the
		// host's /var/lib.
		node.VtepMACFile = filepath.Join(dir, "vtep-mac")
	}
	netConf := nettest.NetConf{Network: nettest.OverlayNetwork, Backend: be}
	if err := f.Write(netConf, node, nettest.PeersOf(vxlan, p.Node)); err != nil {
		return f, fmt.Errorf("vxtun config: %w", err)
	}
	// The config package is the reference for these formats.
	nc, err := config.LoadNetConf(f.NetConf)
	if err != nil {
		return f, fmt.Errorf("vxtun config: %w", err)
	}
	nd, err := config.LoadNode(f.Node)
	if err != nil {
		return f, fmt.Errorf("vxtun config: %w", err)
	}
	if err := nd.Validate(nc); err != nil {
		return f, fmt.Errorf("vxtun config: %w", err)
	}
	if _, err := config.LoadPeers(f.Peers, nc, []netip.Prefix{n.Subnet}); err != nil {
		return f, fmt.Errorf("vxtun config: %w", err)
	}
	return f, nil
}

// Setup implements Mode.
func (m *VxtunMode) Setup(ctx context.Context, tb *Testbed) error {
	if m.h == nil {
		return errors.New("vxtun mode: not attached to a harness")
	}
	if err := CheckVxtunBinary(ctx, m.Binary); err != nil {
		return err
	}
	for _, n := range tb.Nodes {
		be := nettest.Backend{Type: string(m.Backend), DirectRouting: m.DirectRouting}
		files, err := writeVxtunConfig(tb, n, be, filepath.Join(tb.Dir, fmt.Sprintf("node%d", n.Index)))
		if err != nil {
			return err
		}
		cmd := VxtunCommand{Binary: m.Binary, NetConf: files.NetConf, Node: files.Node, Peers: files.Peers, Extra: m.Extra}
		d := &nettest.Daemon{Name: "vxtun " + n.Name(), NS: n.NS, Argv: cmd.Argv(),
			Log: filepath.Join(tb.Dir, fmt.Sprintf("vxtun-%s.log", n.Name()))}
		if err := m.h.startDaemon(d); err != nil {
			return err
		}
		m.daemons = append(m.daemons, d)
	}
	ready := m.Ready
	if ready == 0 {
		ready = 20 * time.Second
	}
	err := waitOverlay(ctx, tb, ready, m.Check)
	if err != nil {
		if f := m.refusedFlag(); f != "" {
			return fmt.Errorf("%w (%w): daemon has no %s (it exited refusing the flag)", ErrUnavailable, ErrNotInDaemon, f)
		}
	}
	return err
}

// refusedFlag returns the flag of m.Optional a daemon exited refusing
// (Go's flag package: "flag provided but not defined: -name"), or "".
func (m *VxtunMode) refusedFlag() string {
	for _, d := range m.daemons {
		if exited, _ := d.Exited(); !exited {
			continue
		}
		out := d.Output()
		for _, f := range m.Optional {
			if strings.Contains(out, "flag provided but not defined: -"+strings.TrimLeft(f, "-")) {
				return f
			}
		}
	}
	return ""
}

// pause stops an Exclusive mode's daemons (SIGSTOP); resume continues
// them. Both are no-ops for other modes.
func (m *VxtunMode) pause() error { return m.signalAll(true) }

func (m *VxtunMode) resume() error { return m.signalAll(false) }

func (m *VxtunMode) signalAll(stop bool) error {
	if !m.Exclusive || m.paused == stop {
		return nil
	}
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
	}
	var errs []error
	for _, d := range m.daemons {
		if err := d.Signal(sig); err != nil {
			errs = append(errs, err)
		}
	}
	m.paused = stop
	return errors.Join(errs...)
}

// daemonPIDs returns every daemon of the mode, also those PIDs leaves out
// (vxtun-kernel's): their idle cost is the mode's.
func (m *VxtunMode) daemonPIDs() []int {
	var pids []int
	for _, d := range m.daemons {
		pids = append(pids, d.PID())
	}
	return pids
}

// waitOverlay pings pod to pod until it works, alive reports an error,
// or timeout passes.
func waitOverlay(ctx context.Context, tb *Testbed, timeout time.Duration, alive func() error) error {
	a, b := tb.Nodes[0], tb.Nodes[1]
	if err := nettest.WaitPing(ctx, a.NS, a.Pod, b.Pod, timeout, alive); err != nil {
		return fmt.Errorf("%s: %w", tb.Mode, err)
	}
	return nil
}

// PIDs implements Mode.
func (m *VxtunMode) PIDs() []int { return m.daemonPIDs() }

// Check implements Mode.
func (m *VxtunMode) Check() error {
	return nettest.CheckRunning(m.daemons...)
}

// Stop implements Mode.
func (m *VxtunMode) Stop() error {
	errs := []error{m.resume()} // a stopped daemon would not see SIGTERM
	for _, d := range m.daemons {
		if err := d.Stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
