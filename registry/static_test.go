package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vxtun/vxtun/config"
)

// logRecorder is a slog.Handler that forwards each record's message and
// attributes as one line to a channel, so tests can wait for log lines.
type logRecorder struct{ lines chan string }

func (h logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h logRecorder) WithGroup(string) slog.Handler            { return h }
func (h logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	select {
	case h.lines <- b.String():
	default: // never block the source
	}
	return nil
}

type staticHarness struct {
	t      *testing.T
	path   string
	src    *StaticSource
	out    chan Update
	logs   chan string
	done   chan error
	cancel context.CancelFunc
}

var staticNetConf = func() *config.NetConf {
	nc, err := config.ParseNetConf("net-conf.json", []byte(`{"Network": "198.19.0.0/16", "Backend": {"Type": "vxlan"}}`))
	if err != nil {
		panic(err)
	}
	return nc
}()

func peerJSON(n int) string {
	return fmt.Sprintf(`{"Name": "node%d", "PublicIP": "198.18.0.%d", "Subnets": ["198.19.%d.0/24"], "VtepMAC": "0e:00:00:00:00:%02x"}`, n, n, n, n)
}

func peersFile(nodes ...int) string {
	var parts []string
	for _, n := range nodes {
		parts = append(parts, peerJSON(n))
	}
	return `{"Peers": [` + strings.Join(parts, ",\n") + "]}\n"
}

// startStatic writes content to a peers file and runs a StaticSource on it.
func startStatic(t *testing.T, content string, poll time.Duration) *staticHarness {
	t.Helper()
	h := &staticHarness{
		t:    t,
		path: filepath.Join(t.TempDir(), "peers.json"),
		out:  make(chan Update),
		logs: make(chan string, 100),
		done: make(chan error, 1),
	}
	h.write(content)
	h.src = NewStaticSource(h.path, staticNetConf, []netip.Prefix{netip.MustParsePrefix("198.19.1.0/24")},
		StaticOptions{PollInterval: poll, Logger: slog.New(logRecorder{h.logs})})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- h.src.Run(ctx, h.out) }()
	t.Cleanup(h.stop)
	return h
}

func (h *staticHarness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; !errors.Is(err, context.Canceled) {
		h.t.Errorf("Run returned %v, want context.Canceled", err)
	}
}

// write replaces the file in place (same inode).
func (h *staticHarness) write(content string) {
	h.t.Helper()
	if err := os.WriteFile(h.path, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// replace writes content to a temporary file and renames it over the file.
func (h *staticHarness) replace(content string) {
	h.t.Helper()
	tmp := h.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.path); err != nil {
		h.t.Fatal(err)
	}
}

// next waits for the next update and checks it is a Full snapshot of the
// named peers. Rejected updates before it are skipped: a poll may read a
// file that write is rewriting in place (truncated, half written).
func (h *staticHarness) next(wantNames ...string) Update {
	h.t.Helper()
	u, ok := Update{}, false
	for !ok {
		select {
		case u = <-h.out:
			ok = u.Rejected == nil
			continue
		case err := <-h.done:
			h.t.Fatalf("Run returned %v while waiting for an update", err)
		case <-time.After(10 * time.Second):
			h.t.Fatalf("no update within 10s, want peers %v", wantNames)
		}
	}
	var got []string
	for _, p := range u.Peers {
		got = append(got, p.Name)
	}
	if !u.Full || len(u.Events) != 0 || strings.Join(got, ",") != strings.Join(wantNames, ",") {
		h.t.Fatalf("got update Full=%t peers %v events %v, want Full snapshot of %v", u.Full, got, u.Events, wantNames)
	}
	return u
}

// rejected waits for the Rejected update of a refused file, whose error
// contains want.
func (h *staticHarness) rejected(want string) {
	h.t.Helper()
	select {
	case u := <-h.out:
		if u.Rejected == nil || u.Full || len(u.Peers)+len(u.Events) != 0 || !strings.Contains(u.Rejected.Error(), want) {
			h.t.Fatalf("got update %+v, want only Rejected with an error containing %q", u, want)
		}
	case err := <-h.done:
		h.t.Fatalf("Run returned %v while waiting for a Rejected update", err)
	case <-time.After(10 * time.Second):
		h.t.Fatalf("no Rejected update within 10s")
	}
}

// waitLog waits for a log line containing all of parts.
func (h *staticHarness) waitLog(parts ...string) string {
	h.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line := <-h.logs:
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return line
			}
		case u := <-h.out:
			h.t.Fatalf("got unexpected update %+v while waiting for log %q", u, parts)
		case <-timeout:
			h.t.Fatalf("no log line with %q within 10s", parts)
		}
	}
}

func (h *staticHarness) noUpdate(d time.Duration) {
	h.t.Helper()
	select {
	case u := <-h.out:
		h.t.Fatalf("got update %+v, want none", u)
	case <-time.After(d):
	}
}

func TestStaticReload(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// Polling effectively off: only Reload can notice changes.
	h := startStatic(t, peersFile(2, 3), time.Hour)
	u := h.next("node2", "node3")
	if p := u.Peers[0]; p.PublicIP != netip.MustParseAddr("198.18.0.2") || p.Port != 8472 || p.VNI != 1 ||
		p.Backend != config.BackendVXLAN || p.VtepMAC.String() != "0e:00:00:00:00:02" ||
		len(p.Subnets) != 1 || p.Subnets[0] != netip.MustParsePrefix("198.19.2.0/24") {
		t.Errorf("got peer %+v", p)
	}

	h.write(peersFile(2, 4))
	h.src.Reload()
	h.next("node2", "node4")
	h.waitLog("static peers reloaded", "added=1", "removed=1", "updated=0")

	// Same content again: Reload re-reads but sends nothing.
	h.src.Reload()
	h.waitLog("no change")
	h.noUpdate(50 * time.Millisecond)

	// A changed peer counts as updated.
	h.write(strings.Replace(peersFile(2, 4), "198.18.0.4", "198.18.0.44", 1))
	h.src.Reload()
	u = h.next("node2", "node4")
	if u.Peers[1].PublicIP != netip.MustParseAddr("198.18.0.44") {
		t.Errorf("got %v, want node4 at 198.18.0.44", u.Peers[1].PublicIP)
	}
	h.waitLog("static peers reloaded", "updated=1")
	h.stop()
}

func TestStaticBadFileKeepsPeers(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := startStatic(t, peersFile(2), time.Hour)
	h.next("node2")

	tests := []struct {
		name    string
		content string
		log     []string
	}{
		{"syntax error", "{\"Peers\": [\n" + peerJSON(3) + ",\n]}",
			[]string{"ERROR static peers file rejected", "peers=1", h.path + ":3:1: JSON syntax error"}},
		{"overlap", peersFile(2, 3)[:len(peersFile(2, 3))-3] + `, {"Name": "x", "PublicIP": "198.18.0.9", "Subnets": ["198.19.3.128/25"], "VtepMAC": "0e:00:00:00:00:99"}]}`,
			[]string{"static peers file rejected", `Peers[2].Subnets[0]: 198.19.3.128/25 overlaps 198.19.3.0/24 of peer "node3"`}},
		{"own subnet", peersFile(1),
			[]string{"static peers file rejected", "overlaps this node's own subnet 198.19.1.0/24"}},
		{"empty", "", []string{"static peers file rejected", "unexpected end of JSON input"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			h.write(tt.content)
			h.src.Reload()
			h.rejected(tt.log[len(tt.log)-1])
			h.waitLog(append(tt.log, "trigger=reload")...)
			h.noUpdate(20 * time.Millisecond)
		})
	}
	h.t = t

	// A missing file is logged and the peers stay too.
	if err := os.Remove(h.path); err != nil {
		t.Fatal(err)
	}
	h.src.Reload()
	h.waitLog("WARN static peers file unreadable", "no such file")
	h.noUpdate(20 * time.Millisecond)

	// The next good file goes through: the bad ones never did.
	h.write(peersFile(2, 5))
	h.src.Reload()
	h.next("node2", "node5")
	h.waitLog("static peers reloaded", "added=1", "removed=0")
	h.stop()
}

// TestStaticHostileFiles: a peers path that turns into a FIFO without a
// writer or a device such as /dev/zero is refused at once (no hang, no
// unbounded read), the peers stay, and the source still stops on cancel.
func TestStaticHostileFiles(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := startStatic(t, peersFile(2), time.Hour)
	h.next("node2")
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, target, log string }{
		{"fifo", fifo, "a FIFO"},
		{"dev zero", "/dev/zero", "a character device"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h.t = t
			if err := os.Remove(h.path); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tt.target, h.path); err != nil {
				t.Fatal(err)
			}
			h.src.Reload()
			h.waitLog("static peers file unreadable", config.ErrNotRegular.Error(), tt.log)
			h.noUpdate(20 * time.Millisecond)
		})
	}
	h.t = t
	h.stop() // returns although the path is still a FIFO
}

func TestStaticNoticesAtomicReplace(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h := startStatic(t, peersFile(2), 10*time.Millisecond)
	h.next("node2")

	h.replace(peersFile(2, 3))
	h.next("node2", "node3")

	// A rejected replacement is logged once and keeps the peers.
	h.replace(`{"Peers": [{"Name": "bad", "PublicIP": "198.18.0.7", "Subnets": ["198.19.7.0/24"], "VtepMAC": "01:00:00:00:00:07"}]}`)
	h.rejected("multicast")
	h.waitLog("rejected", "Peers[0].VtepMAC", "multicast", "trigger=file changed")
	h.noUpdate(100 * time.Millisecond)

	// In-place rewrite with a different size is noticed too.
	h.write(peersFile(3))
	h.next("node3")

	// Deleted, then re-created by rename.
	if err := os.Remove(h.path); err != nil {
		t.Fatal(err)
	}
	h.waitLog("unreadable", "no such file")
	h.replace(peersFile(4))
	h.next("node4")
	h.stop()
}

func TestStaticSameSizeRewrite(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// Same size, same inode, written quickly: the mtime may not move, the
	// content comparison must catch it.
	h := startStatic(t, peersFile(2), 10*time.Millisecond)
	h.next("node2")
	h.write(strings.Replace(peersFile(2), "198.18.0.2", "198.18.0.8", 1))
	u := h.next("node2")
	if u.Peers[0].PublicIP != netip.MustParseAddr("198.18.0.8") {
		t.Errorf("got %v, want 198.18.0.8", u.Peers[0].PublicIP)
	}
	h.stop()
}

func TestStaticInitialErrors(t *testing.T) {
	dir := t.TempDir()
	nc := staticNetConf
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"Peers": [{"Name": "a"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want string
	}{
		{filepath.Join(dir, "missing.json"), "static peers: stat " + filepath.Join(dir, "missing.json") + ": no such file or directory"},
		{bad, "static peers: " + bad + ": Peers[0].PublicIP: missing"},
	}
	for _, tt := range tests {
		src := NewStaticSource(tt.path, nc, nil, StaticOptions{Logger: slog.New(logRecorder{make(chan string, 10)})})
		err := src.Run(context.Background(), make(chan Update))
		if err == nil || err.Error() != tt.want {
			t.Errorf("got %v, want %q", err, tt.want)
		}
	}
}

func TestStaticCancelWhileSending(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path := filepath.Join(t.TempDir(), "peers.json")
	if err := os.WriteFile(path, []byte(peersFile(2)), 0o644); err != nil {
		t.Fatal(err)
	}
	src := NewStaticSource(path, staticNetConf, nil, StaticOptions{Logger: slog.New(logRecorder{make(chan string, 10)})})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	// Nobody receives: Run must still return when ctx ends.
	if err := src.Run(ctx, make(chan Update)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want context.DeadlineExceeded", err)
	}
}

func TestDiffPeers(t *testing.T) {
	p := func(name, ip string) config.Peer {
		return config.Peer{Name: name, PublicIP: netip.MustParseAddr(ip)}
	}
	a := []config.Peer{p("a", "198.18.0.1"), p("b", "198.18.0.2"), p("c", "198.18.0.3")}
	b := []config.Peer{p("b", "198.18.0.2"), p("c", "198.18.0.33"), p("d", "198.18.0.4"), p("e", "198.18.0.5")}
	added, removed, updated := diffPeers(a, b)
	if added != 2 || removed != 1 || updated != 1 {
		t.Errorf("got added %d removed %d updated %d, want 2 1 1", added, removed, updated)
	}
}

// TestStaticRejectsSelf: a peers file naming this node's own public IP or
// VTEP MAC (StaticOptions.Self, SelfMAC) is rejected at the start, naming
// the key, as is one whose peer sits inside the overlay network.
func TestStaticRejectsSelf(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, peer, want string
	}{
		{"our public IP", `{"Name": "node2", "PublicIP": "198.18.0.1", "Subnets": ["198.19.2.0/24"], "VtepMAC": "0e:00:00:00:00:02"}`,
			`Peers[0].PublicIP: public IP 198.18.0.1 is this node's own`},
		{"our VtepMAC", `{"Name": "node2", "PublicIP": "198.18.0.2", "Subnets": ["198.19.2.0/24"], "VtepMAC": "0e:00:00:00:00:01"}`,
			`Peers[0].VtepMAC: VtepMAC 0e:00:00:00:00:01 is this node's own`},
		{"inside the network", `{"Name": "node2", "PublicIP": "198.19.9.2", "Subnets": ["198.19.2.0/24"], "VtepMAC": "0e:00:00:00:00:02"}`,
			`Peers[0].PublicIP: public IP 198.19.9.2 is inside the overlay network`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".json")
			if err := os.WriteFile(path, []byte(`{"Peers": [`+tt.peer+`]}`), 0o644); err != nil {
				t.Fatal(err)
			}
			src := NewStaticSource(path, staticNetConf, nil, StaticOptions{Logger: slog.New(logRecorder{make(chan string, 10)}),
				Self: netip.MustParseAddr("198.18.0.1"), SelfMAC: net.HardwareAddr{0x0e, 0, 0, 0, 0, 1}})
			err := src.Run(context.Background(), make(chan Update))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
