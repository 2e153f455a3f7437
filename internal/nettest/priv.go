package nettest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// RequirePrivEnv is the environment variable that turns privileged skips into failures.
const RequirePrivEnv = "VXTUN_REQUIRE_PRIV"

// toolPackages names the Debian package of each external program the
// testbed may run, for the "apt-get install" hint.
var toolPackages = map[string]string{
	"ip": "iproute2", "bridge": "iproute2", "ss": "iproute2",
	"iperf3": "iperf3", "ping": "iputils-ping", "tcpdump": "tcpdump",
}

// ErrUnprivileged is wrapped by CheckPrivileged when the process cannot
// build test hosts.
var ErrUnprivileged = errors.New("not privileged")

// CheckPrivileged returns an error wrapping ErrUnprivileged that names what
// is missing to create namespaces, veth pairs and TUN devices: root,
// /dev/net/tun, iproute2.
func CheckPrivileged() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		missing = append(missing, "/dev/net/tun")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing = append(missing, "iproute2 (ip)")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: needs %s", ErrUnprivileged, strings.Join(missing, ", "))
}

// CheckTools returns an error naming every program of names that is not
// installed, each with the package that provides it.
func CheckTools(names ...string) error {
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			pkg := toolPackages[n]
			if pkg == "" {
				pkg = n
			}
			missing = append(missing, fmt.Sprintf("%s (apt-get install -y %s)", n, pkg))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing tools: %s", strings.Join(missing, ", "))
	}
	return nil
}

// RequirePrivileged skips t unless the process can create namespaces, veth
// pairs and TUN devices. With VXTUN_REQUIRE_PRIV=1 a missing privilege fails t.
func RequirePrivileged(t testing.TB) {
	t.Helper()
	if err := CheckPrivileged(); err != nil {
		skip(t, strings.TrimPrefix(err.Error(), ErrUnprivileged.Error()+": "))
	}
}

// RequireCPUs skips (or, under VXTUN_REQUIRE_PRIV=1, fails) t on a machine
// with fewer than n CPUs (tests that pin threads to CPUs).
func RequireCPUs(t testing.TB, n int) {
	t.Helper()
	if got := runtime.NumCPU(); got < n {
		skip(t, fmt.Sprintf("needs %d CPUs, the machine has %d", n, got))
	}
}

// RequireCommand skips (or, under VXTUN_REQUIRE_PRIV=1, fails) t when an
// external program the test needs is not installed.
func RequireCommand(t testing.TB, names ...string) {
	t.Helper()
	if err := CheckTools(names...); err != nil {
		skip(t, "needs "+strings.TrimPrefix(err.Error(), "missing tools: "))
	}
}

func skip(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(RequirePrivEnv) == "1" {
		t.Fatalf("%s (and %s=1 forbids skipping)", msg, RequirePrivEnv)
	}
	t.Skip(msg)
}
