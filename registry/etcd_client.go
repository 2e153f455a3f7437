package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/vxtun/vxtun/internal/backoff"
)

// etcdClient is an EtcdSource's etcd client, made on first use.
//
// clientv3.New connects lazily, but with a user name and password it also
// authenticates before it returns, within DialTimeout: made in
// NewEtcdSource, it would make a node started during an etcd outage exit
// instead of waiting for etcd as it does without authentication. So with
// credentials the client is made by the first request (NetConf, which
// Acquire and every re-list call first) and, when etcd cannot be reached,
// again by the next attempt, which the callers' backoff paces as any other
// failed request. Without credentials New contacts nobody, and the client
// is made at once, as before.
//
// A password etcd refuses is not retried: client returns it marked
// backoff.Permanent, so the node's startup retries and Run end with it. Once
// the client exists, the etcd client renews its token itself; a refusal then
// (the password changed under a running node) fails requests as an outage
// would, and they are retried.
type etcdClient struct {
	cfg clientv3.Config
	// life ends on Close; the client's own context derives from it.
	life      context.Context
	closeLife context.CancelFunc

	cliMu     sync.Mutex
	cliCancel context.CancelFunc
	// cli is set once, by client, under cliMu, and never changes after.
	// Code that runs only once a request went through (acquire after
	// NetConf, and everything Run starts after the lease is held) reads it
	// without cliMu.
	cli *clientv3.Client
}

// initClient prepares the client config and, without credentials, makes
// the client.
func (c *etcdClient) initClient(o EtcdOptions, tlsCfg *tls.Config) error {
	c.cfg = clientv3.Config{
		Endpoints:            o.Endpoints,
		DialTimeout:          o.DialTimeout,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		TLS:                  tlsCfg,
		Username:             o.Username,
		Password:             o.Password,
		Logger:               zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: minBackoff, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxBackoff},
			MinConnectTimeout: o.DialTimeout,
		})},
	}
	c.life, c.closeLife = context.WithCancel(context.Background())
	if c.authenticates() {
		return nil
	}
	_, err := c.client(context.Background())
	return err
}

// authenticates reports whether the client authenticates (clientv3 does
// only with both a user name and a password).
func (c *etcdClient) authenticates() bool {
	return c.cfg.Username != "" && c.cfg.Password != ""
}

// client returns the client, making it first if need be. Making it
// authenticates (with credentials), bounded by DialTimeout, by ctx and by
// Close.
func (c *etcdClient) client(ctx context.Context) (*clientv3.Client, error) {
	c.cliMu.Lock()
	defer c.cliMu.Unlock()
	if c.cli != nil {
		return c.cli, nil
	}
	if c.life.Err() != nil {
		return nil, ErrSourceClosed
	}
	cctx, cancel := context.WithCancel(c.life)
	stop := context.AfterFunc(ctx, cancel)
	cfg := c.cfg
	cfg.Context = cctx
	cli, err := clientv3.New(cfg)
	interrupted := !stop() // ctx ended while New was authenticating
	switch {
	case err == nil && !interrupted:
		c.cli, c.cliCancel = cli, cancel
		return cli, nil
	case err == nil:
		cli.Close()
	}
	cancel()
	switch {
	case c.life.Err() != nil:
		return nil, ErrSourceClosed
	case interrupted:
		return nil, ctx.Err()
	case !c.authenticates():
		return nil, err
	case errors.Is(err, rpctypes.ErrAuthFailed):
		return nil, backoff.Permanent(fmt.Errorf("authenticate to etcd as %q: %w", c.cfg.Username, err))
	}
	return nil, fmt.Errorf("authenticate to etcd as %q: %w", c.cfg.Username, err)
}

// Close ends the source: Run returns ErrSourceClosed, a client being made
// gives up, and the client, if made, is closed. It does not revoke the
// lease.
func (c *etcdClient) Close() error {
	c.closeLife()
	c.cliMu.Lock()
	cli, cancel := c.cli, c.cliCancel
	c.cliMu.Unlock()
	if cli == nil {
		return nil
	}
	defer cancel()
	return cli.Close()
}
