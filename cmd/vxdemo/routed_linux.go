package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/vxtun/vxtun/config"
)

// setupFlanneldHostGW makes node3 a flanneld host-gw node: a route per
// vxtun node "<subnet> via <public IP> dev ul0" and its subnet.env with
// FLANNEL_MTU = the underlay MTU.
func (d *demo) setupFlanneldHostGW(ctx context.Context, k *node) error {
	d.section("%s: host-gw routes, set as flanneld's host-gw backend sets them", k.name())
	for _, r := range d.nodes[:2] {
		if _, err := d.sh(ctx, true, "ip", "-n", k.ns, "route", "add", r.subnet(), "via", r.ul(), "dev", "ul0"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(k.dir, 0o755); err != nil {
		return fmt.Errorf("config of %s: %w", k.name(), err)
	}
	if err := config.WriteSubnetEnv(k.subnetEnv(), config.SubnetEnv{
		Network: netip.MustParsePrefix(network), Subnet: netip.MustParsePrefix(k.subnet()),
		MTU: 1500, IPMasq: true,
	}); err != nil {
		return fmt.Errorf("subnet.env of %s: %w", k.name(), err)
	}
	fmt.Fprintf(d.out, "  %s subnet.env (as flanneld writes it): %s\n", k.name(), oneLine(k.subnetEnv()))
	return nil
}

// showRoutes prints every node's routes to peers through a gateway: what
// host-gw and DirectRouting install ("<subnet> via <public IP> dev ul0").
func (d *demo) showRoutes(ctx context.Context) {
	if !d.hostGW() && !d.cfg.DirectRouting {
		return
	}
	d.section("direct routes to peers (ip route: <peer subnet> via <peer public IP> dev ul0)")
	for _, n := range d.nodes {
		out, err := d.sh(ctx, false, "ip", "-n", n.ns, "-4", "route", "show")
		if err != nil {
			d.fail("routes of %s: %v", n.name(), err)
			continue
		}
		var rs []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "198.19.") && strings.Contains(l, " via ") && strings.Contains(l, " dev ul0") {
				rs = append(rs, strings.TrimSpace(l))
			}
		}
		if len(rs) == 0 {
			rs = []string{"(none: every peer through the overlay device)"}
		}
		fmt.Fprintf(d.out, "  %s: %s\n", n.name(), strings.Join(rs, "; "))
	}
}

// hostGW reports whether the demo runs flannel's host-gw backend.
func (d *demo) hostGW() bool { return d.cfg.Backend == "host-gw" }

// backendConf is net-conf.json's Backend object for the run.
func (d *demo) backendConf() map[string]any {
	if d.hostGW() {
		return map[string]any{"Type": "host-gw"}
	}
	be := map[string]any{"Type": "vxlan", "VNI": 1, "Port": 8472}
	if d.cfg.DirectRouting {
		be["DirectRouting"] = true
	}
	return be
}

// node3Kind names what node3 runs.
func (d *demo) node3Kind() string {
	if d.hostGW() {
		return "flanneld-style host-gw"
	}
	return "kernel vxlan"
}
