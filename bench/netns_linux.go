package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Netns is a network namespace made by the harness (through iproute2, so
// the harness process itself never changes namespace). It is the non-test
// counterpart of internal/nettest.NS.
type Netns struct {
	Name string
}

// newNetns creates the namespace name with lo up.
func newNetns(ctx context.Context, name string) (*Netns, error) {
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("create netns %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	ns := &Netns{Name: name}
	if _, err := ns.Run(ctx, "ip", "link", "set", "lo", "up"); err != nil {
		ns.Delete()
		return nil, err
	}
	return ns, nil
}

// Command returns a command running argv inside the namespace. "ip netns
// exec" execs argv in place, so the command's PID is argv's.
func (ns *Netns) Command(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"netns", "exec", ns.Name}, argv...)
	return exec.CommandContext(ctx, "ip", args...)
}

// Run runs argv in the namespace and returns its combined output; the error
// quotes the output.
func (ns *Netns) Run(ctx context.Context, argv ...string) (string, error) {
	var buf bytes.Buffer
	cmd := ns.Command(ctx, argv...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return buf.String(), fmt.Errorf("in %s: %s: %w: %s", ns.Name, strings.Join(argv, " "), err, strings.TrimSpace(buf.String()))
	}
	return buf.String(), nil
}

// RunAll runs each command in turn and stops at the first error.
func (ns *Netns) RunAll(ctx context.Context, cmds [][]string) error {
	for _, c := range cmds {
		if _, err := ns.Run(ctx, c...); err != nil {
			return err
		}
	}
	return nil
}

// Delete kills every process left in the namespace and removes it. It
// uses its own short timeout so it works after the run was cancelled.
func (ns *Netns) Delete() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns.Name).Output(); err == nil {
		self := os.Getpid()
		for _, f := range strings.Fields(string(out)) {
			pid, err := strconv.Atoi(f)
			if err != nil || pid == self || pid <= 1 {
				continue
			}
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	var err error
	for i := 0; i < 20; i++ {
		var out []byte
		out, err = exec.CommandContext(ctx, "ip", "netns", "del", ns.Name).CombinedOutput()
		if err == nil {
			return nil
		}
		err = fmt.Errorf("delete netns %s: %w: %s", ns.Name, err, bytes.TrimSpace(out))
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

// Daemon is a long-running command inside a namespace (iperf3 server, vxtun).
type Daemon struct {
	Name string
	NS   *Netns
	Argv []string
	Log  string // file receiving stdout and stderr; "" discards

	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid after done is closed
}

// StartDaemon starts argv in ns. The daemon is not tied to ctx: stop it
// with Stop (Harness.Close does it for every daemon it started).
func StartDaemon(ns *Netns, name, logPath string, argv ...string) (*Daemon, error) {
	d := &Daemon{Name: name, NS: ns, Argv: argv, Log: logPath, done: make(chan struct{})}
	d.cmd = ns.Command(context.Background(), argv...)
	var logf *os.File
	if logPath != "" {
		f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("start %s: log: %w", name, err)
		}
		logf = f
		d.cmd.Stdout, d.cmd.Stderr = f, f
	}
	// Own process group: a terminal's Ctrl-C reaches the harness, which
	// then stops daemons in order instead of all dying at once.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		if logf != nil {
			logf.Close()
		}
		return nil, fmt.Errorf("start %s in %s: %w", name, ns.Name, err)
	}
	go func() {
		d.err = d.cmd.Wait()
		if logf != nil {
			logf.Close()
		}
		close(d.done)
	}()
	return d, nil
}

// PID returns the daemon's process ID.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Exited reports whether the daemon has exited, and with what.
func (d *Daemon) Exited() (bool, error) {
	select {
	case <-d.done:
		return true, d.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM, waits up to grace, then SIGKILLs. It returns the
// daemon's exit error unless the daemon had to be killed or ended by our
// signal.
func (d *Daemon) Stop(grace time.Duration) error {
	if exited, _ := d.Exited(); exited {
		return nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		var ee *exec.ExitError
		if errors.As(d.err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return nil
			}
		}
		return d.err
	case <-time.After(grace):
		_ = d.cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("stop %s: killed after %v", d.Name, grace)
	}
}

// LogTail returns the last n bytes of the daemon's log.
func (d *Daemon) LogTail(n int) string {
	if d.Log == "" {
		return ""
	}
	b, err := os.ReadFile(d.Log)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// procCPU returns user+system CPU seconds used so far by process pid (all
// its threads) and its peak RSS in bytes.
func procCPU(pid int) (cpuSec float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu of %d: %w", pid, err)
	}
	return parseProcStat(b)
}

// userHZ is the unit of /proc/<pid>/stat times (USER_HZ, 100 on every
// Linux ABI Go supports).
const userHZ = 100

// parseProcStat returns utime+stime in seconds from a /proc/<pid>/stat line.
func parseProcStat(b []byte) (float64, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("parse /proc stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("parse /proc stat: %d fields after comm, want ≥ 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc stat: %w", err)
	}
	return float64(ut+st) / userHZ, nil
}

// procPeakRSS returns the peak resident set (VmHWM) of pid in bytes.
func procPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM of %d: %w", pid, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM for %d", pid)
}
