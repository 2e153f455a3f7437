package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

// TestMain lets the test binary serve as the demo's helper: the demo runs
// "<itself> __serve|__send ..." inside namespaces.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "__") {
		os.Exit(helperMain(os.Args[1:]))
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binDir holds the vxtun binary built by buildVxtun.
var binDir string

// lockedBuffer is written by Run and read by the test.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	onText func(string)
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	n, err := l.b.Write(p)
	s := l.b.String()
	f := l.onText
	l.mu.Unlock()
	if f != nil {
		f(s)
	}
	return n, err
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// buildVxtun builds the daemon once per test binary.
var buildVxtun = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "vxtun-demo-test-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "vxtun")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/vxtun/vxtun/cmd/vxtun").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// leftovers lists namespaces and processes of a demo run that still exist.
func leftovers(t *testing.T, out string) []string {
	t.Helper()
	m := regexp.MustCompile(`vxdemo-([0-9a-f]{6})-sw`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no namespace name in the output:\n%s", out)
	}
	list, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, l := range strings.Split(string(list), "\n") {
		if strings.HasPrefix(l, "vxdemo-"+m[1]) {
			left = append(left, strings.Fields(l)[0])
		}
	}
	return left
}

func testConfig(t *testing.T) Config {
	bin, err := buildVxtun()
	if err != nil {
		t.Fatal(err)
	}
	return Config{Quick: true, Vxtun: bin, Tool: "go", Size: 2 << 20, Pings: 2}
}

// TestDemoQuick runs the demo as "make demo" would, in quick mode: every
// pair of nodes pings and transfers, and nothing is left behind.
func TestDemoQuick(t *testing.T) {
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "ping", "bridge")
	nettest.RequireCNI(t)
	cfg := testConfig(t)
	var out lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := Run(ctx, cfg, &out)
	text := out.String()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, text)
	}
	pairs := []string{
		"node1 (vxtun) → node2 (vxtun)", "node1 (vxtun) → node3 (kernel)",
		"node2 (vxtun) → node1 (vxtun)", "node2 (vxtun) → node3 (kernel)",
		"node3 (kernel) → node1 (vxtun)", "node3 (kernel) → node2 (vxtun)",
	}
	for _, p := range pairs {
		ping := regexp.MustCompile(regexp.QuoteMeta(p) + `\s+2/2 received\s+rtt min/avg/max [\d.]+/[\d.]+/[\d.]+ ms`)
		if !ping.MatchString(text) {
			t.Errorf("no successful ping line for %s", p)
		}
		tcp := regexp.MustCompile(regexp.QuoteMeta(p) + `\s+2 MiB in [\d.]+ s = +[\d.]+ Gbit/s, SHA-256 ok`)
		if !tcp.MatchString(text) {
			t.Errorf("no successful TCP line for %s", p)
		}
	}
	for _, want := range []string{
		"flannel.1 address 0e:76:78:00:00:03 type vxlan id 1 local 198.18.0.3 dev ul0 dstport 8472 nolearning",
		"fdb replace 0e:76:78:00:00:01 dev flannel.1 dst 198.18.0.1 self permanent",
		"route replace 198.19.1.0/24 via 198.19.1.0 dev flannel.1 onlink",
		"FLANNEL_SUBNET=198.19.1.1/24",
		"vxtun on node1 stopped cleanly",
		"vxtun on node2 stopped cleanly",
		"all pairs reachable",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Every pod sits behind its node's cni0 with an address host-local gave
	// it from the node's subnet, and the MTU of the node's subnet.env.
	for _, n := range []string{"node1 (vxtun)", "node2 (vxtun)", "node3 (kernel)"} {
		i := n[4:5]
		pod := regexp.MustCompile(regexp.QuoteMeta(n) + `\s+pod vxdemo-[0-9a-f]{6}-n` + i + `-pod: eth0 198\.19\.` + i +
			`\.\d+/24 mtu 1450, gateway 198\.19\.` + i + `\.1 on cni0`)
		if !pod.MatchString(text) {
			t.Errorf("no pod line for %s behind cni0", n)
		}
	}
	for _, want := range []string{
		`"type":"bridge"`, `"isGateway":true`, `"hairpinMode":true`, `"mtu":1450`,
		`"ranges":[[{"subnet":"198.19.1.0/24"}]]`, `"routes":[{"dst":"198.19.0.0/16"}]`,
		"node3 subnet.env (as flanneld writes it): FLANNEL_NETWORK=198.19.0.0/16 FLANNEL_SUBNET=198.19.3.1/24",
		"pods detached (CNI DEL) on node1, node2, node3",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// vxtun stats ran on both vxtun nodes and counted the traffic.
	if n := len(regexp.MustCompile(`(?m)^\s+tx\s+[1-9]\d* packets`).FindAllString(text, -1)); n != 2 {
		t.Errorf("got %d vxtun stats blocks with traffic, want 2", n)
	}
	if left := leftovers(t, text); len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
}

// TestDemoInterrupted: Ctrl-C (context cancelled) in the middle of the run
// still stops vxtun and removes every namespace.
func TestDemoInterrupted(t *testing.T) {
	nettest.RequirePrivileged(t)
	nettest.RequireCommand(t, "ping", "bridge")
	nettest.RequireCNI(t)
	cfg := testConfig(t)
	cfg.Pings = 50 // long enough to be interrupted
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := &lockedBuffer{}
	var once sync.Once
	out.onText = func(s string) {
		if strings.Contains(s, "== ping") {
			once.Do(func() { time.AfterFunc(300*time.Millisecond, cancel) })
		}
	}
	err := Run(ctx, cfg, out)
	text := out.String()
	if err == nil {
		t.Fatalf("interrupted demo returned no error\n%s", text)
	}
	if !strings.Contains(text, "vxtun on node1 stopped cleanly") || !strings.Contains(text, "deleted namespaces") {
		t.Errorf("no cleanup after the interruption:\n%s", text)
	}
	if left := leftovers(t, text); len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
	if strings.Contains(text, "all pairs reachable") {
		t.Errorf("an interrupted run claims success")
	}
}
