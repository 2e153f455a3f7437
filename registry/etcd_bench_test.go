package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vxtun/vxtun/internal/etcdtest"
)

// BenchmarkEtcdInitialSync measures how long a starting node takes from
// NewEtcdSource to its first Full update when the cluster already has n
// leases in the embedded etcd: read the config, take a lease (list +
// create), list all leases and convert them to peers. Reported as seconds
// per sync ("s/sync").
//
//	go test -run XXX -bench EtcdInitialSync -benchtime 5x ./registry/
func BenchmarkEtcdInitialSync(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("leases=%d", n), func(b *testing.B) {
			srv := etcdtest.Start(b)
			cli := srv.Client(b)
			etcdtest.Put(b, cli, testPrefix+"/config", `{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}`)
			writeLeases(b, cli, n)
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

			b.ReportAllocs()
			b.ResetTimer()
			var total time.Duration
			for i := 0; i < b.N; i++ {
				// Each iteration is a different node (a new public IP), so it
				// takes a new subnet like a node joining the cluster.
				ip := netip.AddrFrom4([4]byte{198, 18, byte(1 + i/250), byte(1 + i%250)})
				start := time.Now()
				src, err := NewEtcdSource(EtcdOptions{
					Endpoints: srv.Endpoints(), Prefix: testPrefix, PublicIP: ip,
					VtepMAC: mustMAC(b, "02:00:00:00:00:01"), Logger: quiet,
				})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				out := make(chan Update)
				done := make(chan error, 1)
				go func() { done <- src.Run(ctx, out) }()
				u := <-out
				total += time.Since(start)
				cancel()
				<-done
				src.Close()
				if !u.Full || len(u.Peers) != n+i {
					b.Fatalf("first update: Full %v with %d peers, want a Full update with %d", u.Full, len(u.Peers), n+i)
				}
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/sync")
		})
	}
}

// writeLeases writes n vxlan leases in flannel's format, in transactions of
// 100 puts.
func writeLeases(b *testing.B, cli *clientv3.Client, n int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var ops []clientv3.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			b.Fatalf("write leases: %v", err)
		}
		ops = ops[:0]
	}
	for i := 0; i < n; i++ {
		// Subnets from 10.1.0.0/24 up; public IPs in the benchmark range
		// 198.19.0.0/16 (nothing is sent to them).
		sn := fmt.Sprintf("10.%d.%d.0-24", 1+i/256, i%256)
		ip := fmt.Sprintf("198.19.%d.%d", i/250, 1+i%250)
		mac := fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff)
		ops = append(ops, clientv3.OpPut(testPrefix+"/subnets/"+sn, kernelLease(ip, mac)))
		if len(ops) == 100 {
			flush()
		}
	}
	flush()
}
