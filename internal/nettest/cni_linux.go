package nettest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vxtun/vxtun/config"
)

// Pods the way clusters have them: a namespace per pod, attached to a cni0
// bridge on its node by the CNI reference plugins bridge and host-local,
// with the configuration the flannel CNI plugin delegates to them (built
// from the node's subnet.env, see FlannelDelegate).

// CNIPluginsVersion is the version of github.com/containernetworking/plugins
// that scripts/deps.sh installs.
const CNIPluginsVersion = "v1.10.0"

// CNIBinDir is where scripts/deps.sh installs the plugins (outside the
// repository); the environment variable CNIPathEnv overrides it.
const CNIBinDir = "/var/cache/vxtun-test/cni/bin"

// CNIPathEnv names a directory holding the CNI plugins, overriding CNIBinDir.
const CNIPathEnv = "VXTUN_CNI_PATH"

// cniPlugins are the plugins a pod needs: bridge delegates to host-local.
var cniPlugins = []string{"bridge", "host-local"}

// CNIPath returns the directory of the CNI plugins, or an error that says
// which plugin is missing and how to install it.
func CNIPath() (string, error) {
	dir := CNIBinDir
	if d := os.Getenv(CNIPathEnv); d != "" {
		dir = d
	}
	for _, p := range cniPlugins {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("CNI plugin %s not in %s (scripts/deps.sh installs containernetworking/plugins %s there)",
				p, dir, CNIPluginsVersion)
		}
	}
	return dir, nil
}

// RequireCNI skips t when the CNI plugins are missing (a failure under
// VXTUN_REQUIRE_PRIV=1) and returns their directory.
func RequireCNI(t testing.TB) string {
	t.Helper()
	dir, err := CNIPath()
	if err != nil {
		if os.Getenv(RequirePrivEnv) == "1" {
			t.Fatalf("needs %v (and %s=1 forbids skipping)", err, RequirePrivEnv)
		}
		t.Skipf("needs %v", err)
	}
	return dir
}

// CNIName is the network name of kube-flannel's CNI configuration.
const CNIName = "cbr0"

// cniVersion is the CNI version of kube-flannel's CNI configuration.
const cniVersion = "0.3.1"

// FlannelDelegate returns the network configuration that the flannel CNI
// plugin hands to the bridge plugin on a node whose subnet.env is env, as
// kube-flannel configures it (name "cbr0", cniVersion 0.3.1, delegate
// {"hairpinMode": true, "isDefaultGateway": true}). flannel adds: type
// bridge (its default bridge name is cni0), "ipMasq" = !FLANNEL_IPMASQ (the
// bridge masquerades only when flanneld does not), "mtu" = FLANNEL_MTU,
// "isGateway": true, and IPAM host-local with one range per family (the
// node's subnet) and a route to each overlay network. dataDir, if not
// empty, is host-local's state directory (default /var/lib/cni/networks):
// the only key flannel does not write.
func FlannelDelegate(env config.SubnetEnv, dataDir string) ([]byte, error) {
	if !env.Subnet.IsValid() && !env.IPv6Subnet.IsValid() {
		return nil, errors.New("flannel delegate: subnet.env has neither FLANNEL_SUBNET nor FLANNEL_IPV6_SUBNET")
	}
	if env.MTU == 0 {
		return nil, errors.New("flannel delegate: subnet.env has no FLANNEL_MTU")
	}
	type rng struct {
		Subnet string `json:"subnet"`
	}
	type route struct {
		Dst string `json:"dst"`
	}
	type ipam struct {
		Type    string  `json:"type"`
		Ranges  [][]rng `json:"ranges"`
		Routes  []route `json:"routes"`
		DataDir string  `json:"dataDir,omitempty"`
	}
	conf := struct {
		CNIVersion       string `json:"cniVersion"`
		Name             string `json:"name"`
		Type             string `json:"type"`
		HairpinMode      bool   `json:"hairpinMode"`
		IsDefaultGateway bool   `json:"isDefaultGateway"`
		IsGateway        bool   `json:"isGateway"`
		IPMasq           bool   `json:"ipMasq"`
		MTU              int    `json:"mtu"`
		IPAM             ipam   `json:"ipam"`
	}{
		CNIVersion: cniVersion, Name: CNIName, Type: "bridge",
		HairpinMode: true, IsDefaultGateway: true, IsGateway: true,
		IPMasq: !env.IPMasq, MTU: int(env.MTU),
		IPAM: ipam{Type: "host-local", Ranges: [][]rng{}, Routes: []route{}, DataDir: dataDir},
	}
	// flannel parses FLANNEL_SUBNET (10.244.1.1/24) with net.ParseCIDR and
	// passes the network (10.244.1.0/24); SubnetEnv holds it masked.
	for _, p := range []struct{ subnet, network netip.Prefix }{
		{env.Subnet, env.Network}, {env.IPv6Subnet, env.IPv6Network},
	} {
		if p.subnet.IsValid() {
			conf.IPAM.Ranges = append(conf.IPAM.Ranges, []rng{{Subnet: p.subnet.Masked().String()}})
		}
	}
	for _, n := range []netip.Prefix{env.Network, env.IPv6Network} {
		if n.IsValid() {
			conf.IPAM.Routes = append(conf.IPAM.Routes, route{Dst: n.String()})
		}
	}
	b, err := json.Marshal(conf)
	if err != nil {
		return nil, fmt.Errorf("flannel delegate: %w", err)
	}
	return b, nil
}

// PodNetwork attaches pods to one node the way the flannel CNI plugin
// does. Its methods may be called from several goroutines.
type PodNetwork struct {
	NodeNS    string           // the node's namespace: the plugins run there and make cni0 there
	PluginDir string           // CNI_PATH
	Env       config.SubnetEnv // the node's subnet.env
	Conf      []byte           // the delegate configuration (FlannelDelegate)
	seq       atomic.Uint64
}

// NewPodNetwork reads the node's subnet.env (written by vxtun, or by a test
// as flanneld would), builds the delegate configuration with host-local's
// state in dir, and sets ip_forward=1 in the node namespace nodeNS.
func NewPodNetwork(nodeNS, subnetEnv, dir string) (*PodNetwork, error) {
	pluginDir, err := CNIPath()
	if err != nil {
		return nil, err
	}
	env, err := config.ReadSubnetEnv(subnetEnv)
	if err != nil {
		return nil, fmt.Errorf("pod network: %w", err)
	}
	conf, err := FlannelDelegate(env, filepath.Join(dir, "host-local"))
	if err != nil {
		return nil, err
	}
	node := &NS{Name: nodeNS}
	if err := node.Do(func() error { return SetSysctl("net/ipv4/ip_forward", "1") }); err != nil {
		return nil, fmt.Errorf("pod network: ip_forward in %s: %w", nodeNS, err)
	}
	return &PodNetwork{NodeNS: nodeNS, PluginDir: pluginDir, Env: env, Conf: conf}, nil
}

// PodIfName is the pod side of its veth (CNI_IFNAME).
const PodIfName = "eth0"

// PodAttachment is what the CNI ADD result says about a pod.
type PodAttachment struct {
	ContainerID string
	Addr        netip.Prefix // the pod's address on eth0, e.g. 198.19.1.2/24
	Gateway     netip.Addr   // cni0's address
}

// cniResult is the part of a CNI result (0.3.x and 1.x) that is read here.
type cniResult struct {
	IPs []struct {
		Address string `json:"address"`
		Gateway string `json:"gateway"`
	} `json:"ips"`
}

// cniError is the error a plugin prints on stdout when it fails.
type cniError struct {
	Code    int    `json:"code"`
	Msg     string `json:"msg"`
	Details string `json:"details"`
}

// ContainerID returns a new container ID for a pod of this network.
func (n *PodNetwork) ContainerID(podNS string) string {
	return fmt.Sprintf("%s-%d", podNS, n.seq.Add(1))
}

// Add attaches the pod namespace podNS (a name under /var/run/netns) as
// container id, by running the bridge plugin with CNI_COMMAND=ADD inside the
// node namespace, and returns the pod's address from the result.
func (n *PodNetwork) Add(ctx context.Context, podNS, id string) (PodAttachment, error) {
	out, err := n.exec(ctx, "ADD", podNS, id)
	if err != nil {
		return PodAttachment{}, err
	}
	var r cniResult
	if err := json.Unmarshal(out, &r); err != nil {
		return PodAttachment{}, fmt.Errorf("cni add %s: result %q: %w", podNS, out, err)
	}
	for _, ip := range r.IPs {
		p, err := netip.ParsePrefix(ip.Address)
		if err != nil {
			return PodAttachment{}, fmt.Errorf("cni add %s: result address: %w", podNS, err)
		}
		if !p.Addr().Is4() {
			continue
		}
		pa := PodAttachment{ContainerID: id, Addr: p}
		if ip.Gateway != "" {
			if pa.Gateway, err = netip.ParseAddr(ip.Gateway); err != nil {
				return PodAttachment{}, fmt.Errorf("cni add %s: result gateway: %w", podNS, err)
			}
		}
		return pa, nil
	}
	return PodAttachment{}, fmt.Errorf("cni add %s: no IPv4 address in the result %s", podNS, out)
}

// Del detaches the pod (CNI_COMMAND=DEL): host-local releases its address.
func (n *PodNetwork) Del(ctx context.Context, podNS, id string) error {
	_, err := n.exec(ctx, "DEL", podNS, id)
	return err
}

// exec runs the bridge plugin per the CNI spec: parameters in the
// environment, the network configuration on stdin, the result (or a CNI
// error) on stdout.
func (n *PodNetwork) exec(ctx context.Context, command, podNS, id string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.NodeNS, filepath.Join(n.PluginDir, "bridge"))
	cmd.Env = append(os.Environ(),
		"CNI_COMMAND="+command,
		"CNI_CONTAINERID="+id,
		"CNI_NETNS="+filepath.Join("/var/run/netns", podNS),
		"CNI_IFNAME="+PodIfName,
		"CNI_PATH="+n.PluginDir,
	)
	cmd.Stdin = bytes.NewReader(n.Conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ce cniError
		if jerr := json.Unmarshal(stdout.Bytes(), &ce); jerr == nil && ce.Msg != "" {
			msg := ce.Msg
			if ce.Details != "" {
				msg += ": " + ce.Details
			}
			return nil, fmt.Errorf("cni %s %s in %s: %s (code %d)", strings.ToLower(command), podNS, n.NodeNS, msg, ce.Code)
		}
		return nil, fmt.Errorf("cni %s %s in %s: %w: %s%s", strings.ToLower(command), podNS, n.NodeNS, err,
			strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Pod is a pod namespace of a test, attached to its node's cni0.
type Pod struct {
	*NS
	PodAttachment
}

// IP returns the pod's address as a string, for dialing and ping.
func (p *Pod) IP() string { return p.Addr.Addr().String() }

// NodePods returns a PodNetwork for the node namespace node, whose
// subnet.env is at subnetEnv, with host-local's state in a temporary
// directory of t. It skips t when the plugins are missing.
func NodePods(t testing.TB, node *NS, subnetEnv string) *PodNetwork {
	t.Helper()
	RequireCNI(t)
	n, err := NewPodNetwork(node.Name, subnetEnv, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// NewPod makes a pod namespace "vxt-<prefix>-<random>" and attaches it to
// the node; in t.Cleanup the pod is detached (CNI DEL) before its namespace
// is deleted.
func (n *PodNetwork) NewPod(t testing.TB, prefix string) *Pod {
	t.Helper()
	ns := NewNS(t, prefix)
	id := n.ContainerID(ns.Name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr, err := n.Add(ctx, ns.Name, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := n.Del(ctx, ns.Name, id); err != nil {
			t.Errorf("pod %s: %v", ns.Name, err)
		}
	})
	return &Pod{NS: ns, PodAttachment: addr}
}
