package nettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Daemon is a long-running command inside a namespace (vxtun, an iperf3
// server). Fill in the exported fields and call Start; the daemon is not
// tied to a context: end it with Stop or Kill.
type Daemon struct {
	Name string   // for messages, e.g. "vxtun node1"
	NS   *NS      // where it runs
	Argv []string // program and arguments
	Env  []string // added to this process's environment
	Log  string   // file that receives stdout and stderr; "" keeps them in memory

	cmd  *exec.Cmd
	mem  *syncBuffer
	done chan struct{}
	err  error // valid after done is closed
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start starts the daemon in its own process group (so a terminal's
// Ctrl-C reaches the caller, which stops daemons in order).
func (d *Daemon) Start() error {
	if d.cmd != nil {
		return fmt.Errorf("start %s: already started", d.Name)
	}
	if len(d.Argv) == 0 || d.NS == nil {
		return fmt.Errorf("start %s: no command or namespace", d.Name)
	}
	cmd := d.NS.Command(context.Background(), d.Argv...)
	if d.Env != nil {
		cmd.Env = append(os.Environ(), d.Env...)
	}
	var logf *os.File
	var out io.Writer
	if d.Log != "" {
		f, err := os.OpenFile(d.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("start %s: log: %w", d.Name, err)
		}
		logf, out = f, f
	} else {
		d.mem = &syncBuffer{}
		out = d.mem
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A child left behind that holds the output pipe must not keep Wait
	// (and so Kill and Stop) from returning.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		if logf != nil {
			logf.Close()
		}
		return fmt.Errorf("start %s in %s: %w", d.Name, d.NS.Name, err)
	}
	d.cmd, d.done = cmd, make(chan struct{})
	go func() {
		d.err = cmd.Wait()
		if logf != nil {
			logf.Close()
		}
		close(d.done)
	}()
	return nil
}

// PID returns the daemon's process ID.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Done is closed when the daemon has exited.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Exited reports whether the daemon has exited, and with what.
func (d *Daemon) Exited() (bool, error) {
	select {
	case <-d.done:
		return true, d.err
	default:
		return false, nil
	}
}

// ExitCode is the daemon's exit status, -1 if it still runs or was
// killed by a signal.
func (d *Daemon) ExitCode() int {
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig os.Signal) error {
	if err := d.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %s: %w", d.Name, err)
	}
	return nil
}

// Wait waits up to timeout for the daemon to exit and returns its exit
// code.
func (d *Daemon) Wait(timeout time.Duration) (int, error) {
	select {
	case <-d.done:
		return d.cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		return -1, fmt.Errorf("%s did not exit within %v", d.Name, timeout)
	}
}

// Kill kills the daemon and its process group if it still runs and
// waits for it.
func (d *Daemon) Kill() {
	select {
	case <-d.done:
	default:
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// Stop sends SIGTERM, waits up to grace, then SIGKILLs. It returns the
// daemon's exit error unless it ended by our signal, or an error if it
// had to be killed.
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
		d.Kill()
		return fmt.Errorf("stop %s: killed after %v", d.Name, grace)
	}
}

// Output returns everything the daemon has printed so far.
func (d *Daemon) Output() string {
	if d.mem != nil {
		return d.mem.String()
	}
	if d.Log == "" {
		return ""
	}
	b, err := os.ReadFile(d.Log)
	if err != nil {
		return ""
	}
	return string(b)
}

// LogTail returns the last n bytes of the daemon's output.
func (d *Daemon) LogTail(n int) string {
	s := d.Output()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}

// StartDaemon starts d for t: it fails t if d cannot start, kills d in
// t.Cleanup if it still runs, and logs its output if t failed.
func StartDaemon(t testing.TB, d *Daemon) *Daemon {
	t.Helper()
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Kill()
		if t.Failed() {
			t.Logf("%s (%s) output:\n%s", d.Name, strings.Join(d.Argv, " "), d.Output())
		}
	})
	return d
}

// WaitExit waits up to timeout for d to exit and returns its exit code;
// it fails t (with d's output) if d is still running.
func WaitExit(t testing.TB, d *Daemon, timeout time.Duration) int {
	t.Helper()
	code, err := d.Wait(timeout)
	if err != nil {
		t.Fatalf("%v; output:\n%s", err, d.Output())
	}
	return code
}

// CheckRunning returns an error naming the first of ds that has exited,
// with its exit status and the end of its output; nil if all run.
func CheckRunning(ds ...*Daemon) error {
	for _, d := range ds {
		if exited, err := d.Exited(); exited {
			return fmt.Errorf("%s exited (%v): %s", d.Name, err, d.LogTail(400))
		}
	}
	return nil
}
