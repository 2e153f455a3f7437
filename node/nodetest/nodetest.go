package nodetest

import (
	"testing"

	"github.com/vxtun/vxtun/dataplane"
	"github.com/vxtun/vxtun/node"
)

// DropReasons are the userspace dataplane's drop reasons (README); Sample
// reports every one, most as zero.
var DropReasons = []string{"no_route", "too_big", "bad_header", "no_i_bit", "unknown_vni", "wrong_mac",
	"unknown_source", "short", "bad_inner", "arp", "send_error"}

// Sample returns a snapshot with every counter set to a distinct value, a
// drop reason /metrics does not know yet, a per-peer drop, skipped leases
// and a version that needs quoting.
func Sample() node.Metrics {
	drops := map[string]uint64{"no_route": 3, "wrong_mac": 2, "future_reason": 1}
	for _, r := range DropReasons {
		drops[r] += 0 // the userspace dataplane reports every reason
	}
	return node.Metrics{
		Version: `v1 "quoted"`,
		Backend: "vxlan",
		Tun:     "vxtun0",
		Stats: dataplane.Stats{
			TxPackets: 10, TxBytes: 15000, RxPackets: 7, RxBytes: 9000,
			Drops:     drops,
			PeerDrops: map[string]map[string]uint64{"node2": {"wrong_mac": 2}},
			// DeviceBadFrames/WriteErrors are the TUN queues' counters.
			DeviceBadFrames: 4, DeviceWriteErrors: 5,
			DeviceOversizeGSO: 6, DeviceGROBadChecksum: 8,
			UDPRxQueueOverflows: 11, TunTxDropped: 12, TunRxDropped: 13,
			Waits: 15, PollAheadWakes: 16, PollAheadHits: 17,
		},
		Peers:            2,
		PeerUpdates:      5,
		PeerUpdateErrors: 1,
		Restarts:         3,
		PeerFilterDrops:  14,
		SkippedLeases:    map[string]uint64{"loop": 2, "malformed": 1, "other_backend": 0},
	}
}

// Values returns what /metrics shows for Sample, by "name/peer/reason".
func Values() map[string]float64 {
	return map[string]float64{
		"vxtun_tx_packets_total":                        10,
		"vxtun_tx_bytes_total":                          15000,
		"vxtun_rx_packets_total":                        7,
		"vxtun_rx_bytes_total":                          9000,
		"vxtun_drops_total/no_route":                    3,
		"vxtun_drops_total/wrong_mac":                   2,
		"vxtun_drops_total/future_reason":               1,
		"vxtun_drops_total/unknown_vni":                 0, // listed although zero
		"vxtun_peer_drops_total/node2/wrong_mac":        2,
		"vxtun_peers":                                   2,
		"vxtun_peer_updates_total":                      5,
		"vxtun_peer_update_errors_total":                1,
		"vxtun_peer_filter_drops_total":                 14,
		"vxtun_tun_bad_frames_total":                    4,
		"vxtun_tun_write_errors_total":                  5,
		"vxtun_dataplane_restarts_total":                3,
		"vxtun_tun_oversize_gso_total":                  6,
		"vxtun_tun_gro_bad_checksum_total":              8,
		"vxtun_udp_rx_queue_overflows_total":            11,
		"vxtun_tun_tx_dropped_total":                    12,
		"vxtun_tun_rx_dropped_total":                    13,
		"vxtun_waits_total":                             15,
		"vxtun_busy_poll_ahead_wakes_total":             16,
		"vxtun_busy_poll_ahead_hits_total":              17,
		"vxtun_etcd_skipped_leases_total/loop":          2,
		"vxtun_etcd_skipped_leases_total/malformed":     1,
		"vxtun_etcd_skipped_leases_total/other_backend": 0,
		"vxtun_info":                                    1,
	}
}

// CheckValues reports every sample of Values that got lacks or has with
// another value, and every drop reason of DropReasons not exported.
func CheckValues(t testing.TB, got map[string]float64) {
	t.Helper()
	for k, v := range Values() {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: missing", k)
		} else if g != v {
			t.Errorf("%s: got %v, want %v", k, g, v)
		}
	}
	for _, r := range DropReasons {
		if _, ok := got["vxtun_drops_total/"+r]; !ok {
			t.Errorf("drop reason %s not exported", r)
		}
	}
}
