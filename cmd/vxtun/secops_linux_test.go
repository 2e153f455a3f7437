package main

// Tests of the debug server's exposure, secrets on the command line and the
// daemon's log lines on the failure path (issue 11, items 2 and 10).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vxtun/vxtun/internal/nettest"
)

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		want    string
		wantErr string
	}{
		{"plain", file("plain", "s3cret", 0o600), "s3cret", ""},
		{"trailing newline", file("nl", "s3cret\n", 0o600), "s3cret", ""},
		{"trailing CRLF", file("crlf", "s3 cret\r\n", 0o400), "s3 cret", ""},
		{"empty", file("empty", "\n", 0o600), "", "empty"},
		{"world-writable", file("ww", "s3cret", 0o666), "", "world-writable"},
		{"too large", file("big", strings.Repeat("x", maxPasswordFile+1), 0o600), "", "too large"},
		{"a FIFO", fifo, "", "a FIFO"},
		{"missing", filepath.Join(dir, "nope"), "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readPassword(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "--etcd-password-file") {
					t.Fatalf("got %q, %v; want an --etcd-password-file error mentioning %q", got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("the error quotes the password: %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// httpGet fetches path from the server at addr, dialling inside ns.
func httpGet(t *testing.T, ns *nettest.NS, addr, path string) (int, string) {
	t.Helper()
	var conn net.Conn
	if err := ns.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	}); err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("get %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitHealthy waits until /healthz on addr answers 200.
func waitHealthy(t *testing.T, ns *nettest.NS, addr string, p *nettest.Daemon) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := nettest.CheckRunning(p); err != nil {
			t.Fatal(err)
		}
		var c net.Conn
		err := ns.Do(func() error {
			var err error
			c, err = net.DialTimeout("tcp", addr, time.Second)
			return err
		})
		if err == nil {
			c.Close()
			if code, _ := httpGet(t, ns, addr, "/healthz"); code == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz on %s not 200 within 15 s; log:\n%s", addr, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func stopDaemon(t *testing.T, p *nettest.Daemon) {
	t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := nettest.WaitExit(t, p, 10*time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM: got %d, want 0\n%s", code, p.Output())
	}
}

// TestDebugServerExposure: pprof is served only with --debug-pprof, a
// public debug address only with --debug-addr-public and a warning.
func TestDebugServerExposure(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	n1 := newTestNode(t, h.A, 1, 2)
	tests := []struct {
		name  string
		extra []string
		from  *nettest.NS // where the scraper runs
		addr  string
		codes map[string]int
		warn  bool
	}{
		{"default", nil, h.A, n1.debug, map[string]int{
			"/metrics": 200, "/healthz": 200, "/debug/pprof/": 404, "/debug/pprof/cmdline": 404, "/debug/pprof/goroutine": 404}, false},
		{"pprof asked for", []string{"--debug-pprof"}, h.A, n1.debug, map[string]int{
			"/metrics": 200, "/debug/pprof/": 200, "/debug/pprof/cmdline": 200}, false},
		{"public", []string{"--debug-addr", "198.18.0.1:9091", "--debug-addr-public"}, h.B, "198.18.0.1:9091", map[string]int{
			"/metrics": 200, "/healthz": 200, "/debug/pprof/": 404}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startVxtun(t, h.A, n1.args(tt.extra...)...)
			waitHealthy(t, tt.from, tt.addr, p)
			for path, want := range tt.codes {
				if got, body := httpGet(t, tt.from, tt.addr, path); got != want {
					t.Errorf("%s: got %d, want %d\n%.200s", path, got, want, body)
				}
			}
			_, m := httpGet(t, tt.from, tt.addr, "/metrics")
			if !strings.Contains(m, "vxtun_peer_filter_drops_total ") {
				t.Errorf("/metrics has no vxtun_peer_filter_drops_total:\n%s", m)
			}
			const warning = "THE DEBUG SERVER IS REACHABLE FROM OTHER HOSTS"
			if got := strings.Contains(p.Output(), "level=WARN msg=\""+warning); got != tt.warn {
				t.Errorf("warning %q logged: got %v, want %v\n%s", warning, got, tt.warn, p.Output())
			}
			stopDaemon(t, p)
		})
	}
}

// TestEtcdPasswordNotOnCommandLine: the password reaches a running daemon
// through a file or the environment (etcd has authentication on: the node
// takes its lease only with it), and its command line (what ps and pprof's
// cmdline show) does not hold it.
func TestEtcdPasswordNotOnCommandLine(t *testing.T) {
	const password = "s3cret-pw"
	e := newE2EEtcd(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`)
	e.srv.EnableAuth(t, "vxtun", password, e2eEtcdPrefix)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "etcd-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, tt := range []struct {
		name string
		args []string
		env  []string
	}{
		{"file", []string{"--etcd-password-file", pwFile}, nil},
		{"file from the environment", nil, []string{"VXTUN_ETCD_PASSWORD_FILE=" + pwFile}},
		{"environment", nil, []string{"VXTUN_ETCD_PASSWORD=" + password}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := filepath.Join(dir, fmt.Sprintf("subnet%d.env", i))
			args := append([]string{vxtunBin, "run", "--etcd-endpoints", e.srv.Endpoints()[0], "--iface", "ul0",
				"--etcd-username", "vxtun", "--vtep-mac-file", filepath.Join(dir, "mac"), "--subnet-file", env}, tt.args...)
			p := nettest.StartDaemon(t, &nettest.Daemon{Name: "vxtun", NS: e.h.A, Argv: args, Env: tt.env})
			envSubnet(t, env, -1, p) // the lease is held: etcd took the password
			cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID()))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(cmdline, []byte("--etcd-username")) {
				t.Fatalf("/proc/%d/cmdline is not vxtun's: %q", p.PID(), cmdline)
			}
			if bytes.Contains(cmdline, []byte(password)) {
				t.Errorf("/proc/%d/cmdline holds the password: %q", p.PID(), cmdline)
			}
			if strings.Contains(p.Output(), password) {
				t.Errorf("the log holds the password:\n%s", p.Output())
			}
			stopDaemon(t, p)
		})
	}
}

// TestEtcdAuthAtStart: with authentication configured, a daemon started
// while etcd is down waits for it as one without does (the same retry log
// line) and takes its lease once etcd is back; a password etcd refuses
// stops it at start with one clear line and exit status 1. (Each attempt
// while etcd is down waits the client's dial timeout, 5 s.)
func TestEtcdAuthAtStart(t *testing.T) {
	const password = "s3cret-pw"
	e := newE2EEtcd(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}`)
	e.srv.EnableAuth(t, "vxtun", password, e2eEtcdPrefix)
	dir := t.TempDir()
	start := func(t *testing.T, pw, env string) *nettest.Daemon {
		t.Helper()
		pwFile := filepath.Join(t.TempDir(), "etcd-password")
		if err := os.WriteFile(pwFile, []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
		return nettest.StartDaemon(t, &nettest.Daemon{Name: "vxtun", NS: e.h.A, Argv: []string{vxtunBin, "run",
			"--etcd-endpoints", e.srv.Endpoints()[0], "--iface", "ul0", "--etcd-username", "vxtun",
			"--etcd-password-file", pwFile, "--vtep-mac-file", filepath.Join(dir, "mac"), "--subnet-file", env}})
	}

	t.Run("wrong password", func(t *testing.T) {
		p := start(t, "not-the-password", filepath.Join(dir, "wrong.env"))
		if code := nettest.WaitExit(t, p, 30*time.Second); code != 1 {
			t.Fatalf("exit code with a wrong password: got %d, want 1\n%s", code, p.Output())
		}
		out := p.Output()
		const want = `authenticate to etcd as "vxtun": etcdserver: authentication failed, invalid user ID or password`
		if !strings.Contains(out, "vxtun: ") || !strings.Contains(out, want) {
			t.Errorf("output with a wrong password: got\n%s\nwant a \"vxtun: …\" line with %q", out, want)
		}
		if strings.Contains(out, "retrying") || strings.Contains(out, "not-the-password") {
			t.Errorf("a wrong password was retried or logged:\n%s", out)
		}
	})

	t.Run("etcd down", func(t *testing.T) {
		e.srv.Stop()
		env := filepath.Join(dir, "outage.env")
		p := start(t, password, env)
		waitOutput(t, p, 1, "level=WARN", `msg="read network config from etcd (retrying)"`, "context deadline exceeded")
		if _, err := os.Stat(env); err == nil {
			t.Fatalf("subnet.env written while etcd is down")
		}
		e.srv.Restart()
		envSubnet(t, env, -1, p)
		stopDaemon(t, p)
	})
}

// infoLines returns the daemon's info lines that contain s.
func infoLines(out, s string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "level=INFO") && strings.Contains(l, s) {
			lines = append(lines, l)
		}
	}
	return lines
}

// waitOutput waits until the daemon's output holds n lines that contain all
// of parts.
func waitOutput(t *testing.T, p *nettest.Daemon, n int, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		count := 0
		for _, l := range strings.Split(p.Output(), "\n") {
			ok := true
			for _, s := range parts {
				ok = ok && strings.Contains(l, s)
			}
			if ok {
				count++
			}
		}
		if count >= n {
			return
		}
		if err := nettest.CheckRunning(p); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %d log lines with %q within 10 s; log:\n%s", n, parts, p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPeerChangeLogsAndMetrics: peer joins and leaves are info lines, a
// SIGHUP is one info line, a rejected peers file moves
// vxtun_peer_update_errors_total.
func TestPeerChangeLogsAndMetrics(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	n1 := newTestNode(t, h.A, 1, 2)
	p := startVxtun(t, h.A, n1.args()...)
	waitHealthy(t, h.A, n1.debug, p)
	if got := infoLines(p.Output(), `msg="peer joined" peer=node2 public-ip=198.18.0.2 subnets=198.19.2.0/24`); len(got) != 1 {
		t.Errorf("start: got %d info lines for node2 joining, want 1; log:\n%s", len(got), p.Output())
	}

	// SIGHUP with an unchanged file: one info line.
	before := len(infoLines(p.Output(), ""))
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, p, 1, "level=INFO", "static peers file re-read; no change", "trigger=reload")
	time.Sleep(300 * time.Millisecond) // a second line would come now
	if got := infoLines(p.Output(), ""); len(got)-before != 1 {
		t.Errorf("SIGHUP: got %d info lines, want 1:\n%s", len(got)-before, strings.Join(got[before:], "\n"))
	}

	// A bad file (noticed by the poll): logged, counted, peers kept.
	writeAtomic(t, n1.Peers, []byte(`{"Peers": [{"Name": "node2"`))
	waitOutput(t, p, 1, "static peers file rejected")
	if m := metrics(t, h.A, n1.debug); m["vxtun_peer_update_errors_total"] != 1 || m["vxtun_peers"] != 1 {
		t.Errorf("after a bad file: vxtun_peer_update_errors_total %v, vxtun_peers %v; want 1 and 1",
			m["vxtun_peer_update_errors_total"], m["vxtun_peers"])
	}

	n1.writePeers(t, 2, 3)
	waitOutput(t, p, 1, "level=INFO", `msg="peer joined" peer=node3 public-ip=198.18.0.3 subnets=198.19.3.0/24`)
	n1.writePeers(t, 2)
	waitOutput(t, p, 1, "level=INFO", `msg="peer left" peer=node3 public-ip=198.18.0.3 subnets=198.19.3.0/24`)
	if m := metrics(t, h.A, n1.debug); m["vxtun_peer_update_errors_total"] != 1 || m["vxtun_peers"] != 1 {
		t.Errorf("at the end: vxtun_peer_update_errors_total %v, vxtun_peers %v; want 1 and 1",
			m["vxtun_peer_update_errors_total"], m["vxtun_peers"])
	}
	stopDaemon(t, p)
}
