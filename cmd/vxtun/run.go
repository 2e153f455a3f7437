package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/node"
	"github.com/vxtun/vxtun/registry"
)

// runMain is "vxtun run". It returns the exit code.
func runMain(args []string, getenv func(string) string, stderr io.Writer) int {
	o, err := parseRunFlags(args, getenv, io.Discard)
	if errors.Is(err, flag.ErrHelp) {
		newRunFlags(&runOptions{}, stderr).Usage()
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "vxtun run: %s (see vxtun run -h)\n", oneLine(err.Error()))
		return 2
	}
	level, _ := parseLevel(o.LogLevel)
	// Until the daemon runs, info and debug lines are held back: a startup
	// error is then the only line printed. Warnings pass at once (e.g.
	// etcd not reachable yet).
	startup := newStartupHandler(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	log := slog.New(startup)

	// Signals are caught from the start: SIGTERM during startup aborts it
	// and undoes what was done.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigc)
	hup := make(chan struct{}, 1)
	go func() {
		for s := range sigc {
			if s == syscall.SIGHUP {
				select {
				case hup <- struct{}{}:
				default:
				}
				continue
			}
			log.Info("shutting down", "signal", s.String())
			cancel()
		}
	}()

	if err := o.pickUnderlay(hostIfaces{}); err != nil {
		fmt.Fprintf(stderr, "vxtun: %s\n", oneLine(err.Error()))
		return 1
	}
	cfg := o.nodeConfig()
	if o.EtcdPassFile != "" && cfg.Registry.Etcd != nil {
		pw, err := readPassword(o.EtcdPassFile)
		if err != nil {
			fmt.Fprintf(stderr, "vxtun: %s\n", oneLine(err.Error()))
			return 1
		}
		cfg.Registry.Etcd.Password = pw
	}
	cfg.Logger = log
	cfg.Version = versionString()
	cfg.Reload = hup
	cfg.Started = startup.flush
	n, err := node.New(cfg)
	if err == nil {
		err = n.Run(ctx)
	}
	if err != nil && !(errors.Is(err, context.Canceled) && ctx.Err() != nil) {
		fmt.Fprintf(stderr, "vxtun: %s\n", oneLine(err.Error()))
		return 1
	}
	return 0
}

// nodeConfig turns the flags into the node's settings (logger, version,
// reload channel and start hook are set by the caller).
func (o *runOptions) nodeConfig() node.Config {
	c := node.Config{
		NetConfFile: o.NetConf,
		NodeFile:    o.Node,
		Iface:       o.Iface,
		TunName:     o.Tun,
		Workers:     o.Workers,
		SubnetFile:  o.SubnetFile,
		ListenPort:  uint16(o.ListenPort),
		VtepMACFile: o.VtepMACFile,
		DebugAddr:   o.DebugAddr,
		HealthzAddr: o.healthzAddr(),
		Dataplane:   o.Dataplane,
		DebugPprof:  o.DebugPprof,

		SkipForwardRules: !o.ForwardRules,
		SkipPeerFilter:   !o.PeerFilter,
		BusyPoll:         o.BusyPoll,
		BusyPollIdle:     o.BusyPollIdle,
		BusyPollAhead:    o.BusyPollAhead,
		CPULocal:         o.CPULocal,
		IPMasq:           o.IPMasq,
	}
	if o.PublicIPv6 != "" {
		c.PublicIPv6, _ = config.ParsePublicIPv6(o.PublicIPv6) // checked by parseRunFlags
	}
	if o.PublicIP != "" {
		c.PublicIP, _ = netip.ParseAddr(o.PublicIP) // checked by parseRunFlags
	}
	if o.etcdMode() {
		c.Registry.Etcd = &registry.EtcdOptions{
			Endpoints: o.endpoints(),
			Prefix:    o.EtcdPrefix,
			CertFile:  o.EtcdCertFile, KeyFile: o.EtcdKeyFile, CAFile: o.EtcdCAFile,
			Username: o.EtcdUsername, Password: o.EtcdPassword,
			LeaseTTL: o.EtcdLeaseTTL,
		}
	} else if o.KubeSubnetMgr {
		c.Registry.Kube = &registry.KubeOptions{
			APIURL: o.KubeAPIURL, Kubeconfig: o.KubeconfigFile,
			AnnotationPrefix:      o.KubeAnnotationPrefix,
			SetNetworkUnavailable: o.SetNetworkUnavailable,
			NodeName:              o.NodeName, PodName: o.PodName, PodNamespace: o.PodNamespace,
		}
	} else {
		c.Registry.PeersFile = o.Peers
	}
	return c
}

// healthzAddr is --healthz-ip and --healthz-port as host:port, or "" when
// the port is 0.
func (o *runOptions) healthzAddr() string {
	if o.HealthzPort == 0 {
		return ""
	}
	return net.JoinHostPort(o.HealthzIP, strconv.Itoa(o.HealthzPort))
}

// maxPasswordFile bounds --etcd-password-file.
const maxPasswordFile = 4 << 10

// readPassword reads the etcd password from path: a regular file that is
// not world-writable (config.ReadFile), without its trailing line break.
func readPassword(path string) (string, error) {
	b, err := config.ReadFile(path, maxPasswordFile)
	if err != nil {
		return "", fmt.Errorf("--etcd-password-file: %w", err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("--etcd-password-file %s: empty", path)
	}
	return pw, nil
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
