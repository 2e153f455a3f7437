// Package bench owns vxtun's end-to-end benchmark harness: a two-node
// network-namespace testbed that measures plain veth, kernel vxlan, vxtun
// VXLAN, vxtun legacy UDP and the overlays users would pick instead
// (wireguard-go, nebula: built by the harness with go install into a cache
// directory outside the repository, unavailable when they cannot be) in one
// run, alternating, and reports ratios to kernel vxlan.
//
// UDP rates come from the package's own generator (udpgen*.go: RunGen, a
// paced sendmmsg thread per CPU and a receiver counting by sequence number),
// TCP from iperf3 with 1, 2, 4 and 8 streams; machine CPU per GB and per
// Mpps from /proc/stat (cpustat*.go), the daemons' own from /proc/<pid>.
//
// The ping rows come with a scheduler trace of the probes (waketrace*.go:
// a tracefs instance of the harness's own, sched_waking and sched_switch):
// wake-ups of ping and the daemons' threads per round trip, those across
// CPUs, and the p50 from such a wake-up to the task running.
//
// Beyond one measurement per mode (rows_linux.go): the scaling rows (UDP
// 64 and 1400 B with 1…4 generator threads, on Config.SweepModes: kernel
// vxlan and vxtun by default; the count of one thread per CPU is the main
// row, copied, not run twice); the one-CPU-per-node rows (split_linux.go,
// on Config.SplitModes: TCP 1 stream and ping with node i's processes on
// CPU i and its underlay's receive there by RPS); an idle window at the start of every round,
// shared by all modes (each daemon's CPU from its threads' schedstat, ns;
// a mode's machine figure is the machine's busy time less every other
// process the harness started); the PROJECTION rows, a model
// (projection.go: usable cores / CPU-s per unit, usable cores capped by
// how many outer flows one peer's traffic uses), labelled as such; and the
// control-plane section (RunControlPlane, below; Config.ControlPlane) after
// the traffic modes, with the run's vxtun binary. vxtun-busy-poll runs "vxtun run --busy-poll",
// vxtun-busy-poll-idle "--busy-poll --busy-poll-idle 5ms" (polling stops 5 ms after the last packet),
// vxtun-busy-poll-ahead "--busy-poll --busy-poll-idle 200us --busy-poll-ahead" (then one wait for all
// descriptors, ended ahead of steady-rate packets):
// when the daemon exits refusing the flag the mode is unavailable
// (ErrNotInDaemon), detected at run time; its daemons are Exclusive, i.e.
// stopped (SIGSTOP) except during its own measurements and the idle
// window, so a polling daemon never takes another mode's CPU.
// vxtun-cpu-local runs "--cpu-local" (workers pinned one per CPU; not
// Exclusive: it does not poll), unavailable likewise.
//
// The control plane at scale (controlplane*.go: RunControlPlane,
// BenchmarkControlPlane) is measured apart from the modes, in two
// namespaces of its own: a full 5 000-peer set and one-peer updates applied
// to the real userspace dataplane and the nftables peer filter in process,
// then a vxtun daemon with a static peers file of one peer and of 5 000
// (reload time, VmRSS, VmHWM, RssAnon from /proc). Its peers' public IPs
// are in 198.18.1.0–198.18.120.255 and are never sent to.
//
// Layout: the pure parts (the RFC 2544 rate search, median/percentile/ratio
// math, the table, JSON and SVG writers) are portable and unit-tested
// without privileges. The modes (veth, kernel vxlan, vxtun daemons) live in
// _linux.go files on top of internal/nettest, which owns the namespaces,
// the underlay, daemons, config writers, and running and parsing iperf3
// and ping.
//
// Ownership: a Harness owns every namespace and process it starts. Its Close
// kills what still runs in its namespaces and deletes them; cmd/vxbench calls
// Close on return and on SIGINT/SIGTERM, so an interrupted run leaves
// nothing behind. Namespaces are named "vxb-<random>-<mode>-<node>";
// RunControlPlane makes and removes its own ("vxcp-<random>-node", "-ul")
// before it returns, also when its context is cancelled.
//
// Network safety: the testbed uses only 198.18.0.0/24 (underlay) and
// 198.19.0.0/16 (overlay) inside its own namespaces and creates nothing in
// the host's namespace; the control plane's peers have public IPs in
// 198.18.1.0–198.18.120.255 that nothing is ever sent to.
//
// Concurrency: a Harness is used by one goroutine; Close may be called from
// another goroutine (a signal handler) at any time and is idempotent. The
// modes, the idle window and the control plane run one after another,
// never at once.
package bench
