package nettest

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestTwoHostsPing(t *testing.T) {
	RequirePrivileged(t)
	h := NewTwoHosts(t)
	out := h.A.Run("ip", "-br", "addr", "show", "ul0")
	if !strings.Contains(out, "198.18.0.1/24") {
		t.Fatalf("got addr %q, want 198.18.0.1/24", out)
	}
	// A UDP socket bound inside B sees B's address.
	if err := h.B.Do(func() error { return LinkUp("lo", "198.19.2.1/32") }); err != nil {
		t.Fatal(err)
	}
	out = h.B.Run("ip", "-br", "addr", "show", "lo")
	if !strings.Contains(out, "198.19.2.1/32") {
		t.Fatalf("got %q, want 198.19.2.1/32 on lo in B", out)
	}
}

// netnsList returns the output of "ip netns list".
func netnsList(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

// A switched underlay of three nodes: every node reaches every other
// across the bridge, pings parse, and Close removes every namespace.
func TestUnderlaySwitch(t *testing.T) {
	RequirePrivileged(t)
	RequireCommand(t, "ping")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := RandSuffix()
	names := []string{"vxt-s1-" + id, "vxt-s2-" + id, "vxt-s3-" + id}
	u, err := NewUnderlay(ctx, UnderlayConfig{Names: names, Switch: "vxt-sw-" + id, MTU: 1400, Pods: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() })
	for _, a := range u.Hosts {
		out, err := a.NS.Exec(ctx, "ip", "-o", "link", "show", UnderlayIface)
		if err != nil || !strings.Contains(out, "mtu 1400") {
			t.Errorf("%s: ul0 %q (%v), want mtu 1400", a.Name(), out, err)
		}
		out, err = a.NS.Exec(ctx, "ip", "-br", "addr", "show", "lo")
		if err != nil || !strings.Contains(out, a.Pod.String()+"/32") {
			t.Errorf("%s: lo %q (%v), want pod %s/32", a.Name(), out, err, a.Pod)
		}
		for _, b := range u.Hosts {
			if a == b {
				continue
			}
			r, err := Ping(ctx, a.NS, a.Underlay, b.Underlay, "-c", "2", "-i", "0.05", "-W", "2")
			if err != nil {
				t.Errorf("%s → %s: %v", a.Name(), b.Name(), err)
				continue
			}
			if r.Transmitted != 2 || r.Received != 2 || len(r.RTTs) != 2 || r.Max <= 0 {
				t.Errorf("%s → %s: got %+v, want 2 of 2 replies with RTTs", a.Name(), b.Name(), r)
			}
		}
	}
	// An address nobody has: the result counts the loss, the error says so.
	r, err := Ping(ctx, u.Hosts[0].NS, u.Hosts[0].Underlay, UnderlayAddr(200), "-c", "1", "-W", "1")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || r.Transmitted != 1 || r.Received != 0 {
		t.Errorf("ping to nobody: got %+v, %v; want 1 sent, 0 received and an exit error", r, err)
	}
	if err := WaitPing(ctx, u.Hosts[0].NS, u.Hosts[0].Underlay, UnderlayAddr(200), 500*time.Millisecond, nil); err == nil {
		t.Errorf("WaitPing to nobody: got nil error, want one")
	}
	stop := errors.New("daemon died")
	if err := WaitPing(ctx, u.Hosts[0].NS, u.Hosts[0].Underlay, UnderlayAddr(2), time.Second, func() error { return stop }); !errors.Is(err, stop) {
		t.Errorf("WaitPing with a dead daemon: got %v, want the alive error", err)
	}
	if err := u.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if l := netnsList(t); strings.Contains(l, id) {
		t.Errorf("namespaces left after Close:\n%s", l)
	}
}

// Transfers and echoes cross the underlay with their content checked,
// paced ones take as long as the rate says, and a cancelled context ends
// one early with an error.
func TestTransferEcho(t *testing.T) {
	h := NewTwoHosts(t)
	ctx := context.Background()
	a, b := h.Hosts[0], h.Hosts[1]
	tests := []struct {
		name    string
		x       Transfer
		echo    bool
		minTime time.Duration
	}{
		{"send", Transfer{Src: a.Underlay, Dst: b.Underlay, Port: 5001, Size: 8 << 20, Seed: 1}, false, 0},
		{"send, odd size, any port", Transfer{Dst: b.Underlay, Size: 1<<20 + 13, Seed: 2}, false, 0},
		{"send paced", Transfer{Src: a.Underlay, Dst: b.Underlay, Port: 5002, Size: 2 << 20, Rate: 4 << 20}, false, 450 * time.Millisecond},
		{"echo", Transfer{Src: a.Underlay, Dst: b.Underlay, Port: 5003, Size: 8 << 20, Seed: 3}, true, 0},
		{"echo, any port", Transfer{Dst: b.Underlay, Size: 3<<20 + 1}, true, 0},
	}
	for _, tt := range tests {
		do := tt.x.Send
		if tt.echo {
			do = tt.x.Echo
		}
		r, err := do(ctx, a.NS, b.NS)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if r.Bytes != tt.x.Size || r.Elapsed < tt.minTime || !(r.Gbps() > 0) {
			t.Errorf("%s: got %d bytes in %v (%.2f Gbit/s), want %d bytes in ≥ %v", tt.name, r.Bytes, r.Elapsed, r.Gbps(), tt.x.Size, tt.minTime)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	slow := Transfer{Src: a.Underlay, Dst: b.Underlay, Size: 64 << 20, Rate: 1 << 20}
	if _, err := slow.Send(cctx, a.NS, b.NS); err == nil {
		t.Errorf("cancelled transfer: got nil error, want one")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled transfer took %v, want it to end with its context", d)
	}
	if _, err := (Transfer{Dst: UnderlayAddr(77), Size: 1}).Send(ctx, a.NS, b.NS); err == nil {
		t.Errorf("listen on an address B lacks: got nil error, want one")
	}
}

// A daemon reports its exit code and output, Stop ends it by SIGTERM,
// and StartDaemon's cleanup kills one left running.
func TestDaemon(t *testing.T) {
	RequirePrivileged(t)
	ns := NewNS(t, "dmn")
	d := StartDaemon(t, &Daemon{Name: "sh", NS: ns, Env: []string{"VXT_X=42"}, Argv: []string{"sh", "-c", "echo out $VXT_X; echo err >&2; exit 3"}})
	if code := WaitExit(t, d, 10*time.Second); code != 3 {
		t.Errorf("exit code: got %d, want 3", code)
	}
	if out := d.Output(); !strings.Contains(out, "out 42") || !strings.Contains(out, "err") {
		t.Errorf("output: got %q, want stdout and stderr with the environment", out)
	}
	log := t.TempDir() + "/sleep.log"
	s := &Daemon{Name: "sleep", NS: ns, Log: log, Argv: []string{"sh", "-c", "echo started; exec sleep 60"}}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if exited, _ := s.Exited(); exited || s.ExitCode() != -1 {
		t.Errorf("sleep exited at once (code %d)", s.ExitCode())
	}
	if _, err := s.Wait(100 * time.Millisecond); err == nil {
		t.Errorf("Wait on a running daemon: got nil error, want a timeout")
	}
	if err := s.Stop(5 * time.Second); err != nil {
		t.Errorf("stop: got %v, want nil (ended by our SIGTERM)", err)
	}
	if got := s.LogTail(100); got != "started" {
		t.Errorf("log tail: got %q, want %q", got, "started")
	}
	if err := s.Start(); err == nil {
		t.Errorf("second Start: got nil error, want one")
	}
	stubborn := &Daemon{Name: "stubborn", NS: ns, Argv: []string{"sh", "-c", "trap '' TERM; echo ready; sleep 60 & wait"}}
	if err := stubborn.Start(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(stubborn.Output(), "ready") {
		time.Sleep(10 * time.Millisecond)
	}
	if err := stubborn.Stop(200 * time.Millisecond); err == nil {
		t.Errorf("stop of a daemon ignoring SIGTERM: got nil, want a killed error")
	}
}

// An iperf3 server and client across the underlay give a parsed report.
func TestIperf3(t *testing.T) {
	RequireCommand(t, "iperf3", "ss")
	h := NewTwoHosts(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := h.Hosts[0], h.Hosts[1]
	srv := IperfServer(b.NS, b.Underlay, 5201, "")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	if err := WaitListen(ctx, srv, 5201); err != nil {
		t.Fatal(err)
	}
	r, err := RunIperf3(ctx, a.NS, a.Underlay, b.Underlay, 5201, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Protocol != "TCP" || r.RecvBytes <= 0 || !(r.RecvBps > 0) {
		t.Errorf("got %+v, want a TCP report with bytes received", r)
	}
	u, err := RunIperf3(ctx, a.NS, a.Underlay, b.Underlay, 5201, 1, "-u", "-b", "10M", "-l", "1000")
	if err != nil {
		t.Fatal(err)
	}
	if u.Protocol != "UDP" || u.Packets <= 0 {
		t.Errorf("got %+v, want a UDP report with packets", u)
	}
	if _, err := RunIperf3(ctx, a.NS, a.Underlay, b.Underlay, 5299, 1); !errors.Is(err, ErrIperf) {
		t.Errorf("no server: got %v, want ErrIperf", err)
	}
}
