package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/vxtun/vxtun/config"
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

	daemons []*Daemon
	h       *Harness
}

// Name implements Mode.
func (m *VxtunMode) Name() string { return "vxtun-" + string(m.Backend) }

// VxtunFiles are the configuration files of one node.
type VxtunFiles struct {
	NetConf, Node, Peers, SubnetEnv string
}

// WriteVxtunConfig writes net-conf.json, node.json and peers.json for node
// n of tb into dir and checks them with the config package's parsers.
func WriteVxtunConfig(tb *Testbed, n *Node, backend config.Backend, dir string) (VxtunFiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return VxtunFiles{}, fmt.Errorf("vxtun config: %w", err)
	}
	f := VxtunFiles{
		NetConf:   filepath.Join(dir, "net-conf.json"),
		Node:      filepath.Join(dir, "node.json"),
		Peers:     filepath.Join(dir, "peers.json"),
		SubnetEnv: filepath.Join(dir, "subnet.env"),
	}
	p := tb.peer(n)
	netConf := map[string]any{
		"Network": "198.19.0.0/16",
		"Backend": map[string]any{"Type": string(backend)},
	}
	node := map[string]any{
		"PublicIP":    n.Underlay.String(),
		"Iface":       "ul0",
		"Subnet":      n.Subnet.String(),
		"TunName":     "vxtun0",
		"SubnetFile":  f.SubnetEnv,
		"UnderlayMTU": UnderlayMTU,
	}
	peer := map[string]any{
		"Name":     fmt.Sprintf("node%d", p.Index),
		"PublicIP": p.Underlay.String(),
		"Subnets":  []string{p.Subnet.String()},
	}
	if backend == config.BackendVXLAN {
		node["VtepMAC"] = n.VtepMAC.String()
		peer["VtepMAC"] = p.VtepMAC.String()
	} else {
		// Keep any generated MAC in the run's directory, never in the
		// host's /var/lib.
		node["VtepMACFile"] = filepath.Join(dir, "vtep-mac")
	}
	peers := map[string]any{"Peers": []any{peer}}
	for _, w := range []struct {
		path string
		v    any
	}{{f.NetConf, netConf}, {f.Node, node}, {f.Peers, peers}} {
		b, err := json.MarshalIndent(w.v, "", "  ")
		if err != nil {
			return VxtunFiles{}, fmt.Errorf("vxtun config: %w", err)
		}
		if err := os.WriteFile(w.path, append(b, '\n'), 0o644); err != nil {
			return VxtunFiles{}, fmt.Errorf("vxtun config: %w", err)
		}
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
		files, err := WriteVxtunConfig(tb, n, m.Backend, filepath.Join(tb.Dir, fmt.Sprintf("node%d", n.Index)))
		if err != nil {
			return err
		}
		cmd := VxtunCommand{Binary: m.Binary, NetConf: files.NetConf, Node: files.Node, Peers: files.Peers, Extra: m.Extra}
		d, err := m.h.startDaemon(n.NS, fmt.Sprintf("vxtun node%d", n.Index),
			filepath.Join(tb.Dir, fmt.Sprintf("vxtun-node%d.log", n.Index)), cmd.Argv()...)
		if err != nil {
			return err
		}
		m.daemons = append(m.daemons, d)
	}
	ready := m.Ready
	if ready == 0 {
		ready = 20 * time.Second
	}
	return waitOverlay(ctx, tb, ready, m.Check)
}

// waitOverlay pings pod to pod until it works, alive reports an error,
// or timeout passes.
func waitOverlay(ctx context.Context, tb *Testbed, timeout time.Duration, alive func() error) error {
	a, b := tb.Nodes[0], tb.Nodes[1]
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if err := alive(); err != nil {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, last = a.NS.Run(pctx, "ping", "-n", "-c", "1", "-W", "1", "-I", a.Pod.String(), b.Pod.String())
		cancel()
		if last == nil {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: pod %s cannot reach %s after %v: %w", tb.Mode, a.Pod, b.Pod, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// PIDs implements Mode.
func (m *VxtunMode) PIDs() []int {
	var pids []int
	for _, d := range m.daemons {
		pids = append(pids, d.PID())
	}
	return pids
}

// Check implements Mode.
func (m *VxtunMode) Check() error {
	for _, d := range m.daemons {
		if exited, err := d.Exited(); exited {
			return fmt.Errorf("%s exited (%v): %s", d.Name, err, d.LogTail(400))
		}
	}
	return nil
}

// Stop implements Mode.
func (m *VxtunMode) Stop() error {
	var errs []error
	for _, d := range m.daemons {
		if err := d.Stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
