package etcdtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// startTimeout bounds how long a server may take to become ready.
const startTimeout = 60 * time.Second

// Server is one single-member etcd cluster running in this process.
type Server struct {
	t         testing.TB
	dir       string
	clientURL url.URL
	peerURL   url.URL

	tls *TLSFiles // nil: plain http
	do  func(fn func() error) error

	mu sync.Mutex
	e  *embed.Etcd // nil while stopped
}

// TLSFiles are the PEM files of a TLS server: the CA that signed both
// certificates, and a client certificate and key the server accepts.
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
	// serverCert, serverKey are the server's own.
	serverCert, serverKey string
}

// Start starts an etcd server on 127.0.0.1 with random client and peer ports
// and a temporary data directory. It fails the test if the server does not
// become ready; the server is stopped in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, Options{}, nil)
}

// Options place a server somewhere other than 127.0.0.1 of the test's own
// network namespace.
type Options struct {
	// Host is the IP address to listen on (default 127.0.0.1).
	Host string
	// Do runs fn where the server's sockets (and those of clients made by
	// Client) are to be created, e.g. nettest's NS.Do to put etcd inside a
	// test namespace. nil runs fn directly.
	Do func(fn func() error) error
}

// StartWith is Start with the server listening on opts.Host, its sockets
// made through opts.Do.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	return start(t, opts, nil)
}

// StartTLS is Start with an https client URL that requires a client
// certificate; the returned files hold a fresh CA and a client certificate
// signed by it.
func StartTLS(t testing.TB) (*Server, TLSFiles) {
	t.Helper()
	files := makeCerts(t, t.TempDir())
	return start(t, Options{}, &files), files
}

func start(t testing.TB, opts Options, files *TLSFiles) *Server {
	t.Helper()
	scheme := "http"
	if files != nil {
		scheme = "https"
	}
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Do == nil {
		opts.Do = func(fn func() error) error { return fn() }
	}
	s := &Server{
		t:         t,
		dir:       t.TempDir(),
		clientURL: url.URL{Scheme: scheme, Host: freeAddr(t, opts)},
		peerURL:   url.URL{Scheme: "http", Host: freeAddr(t, opts)},
		tls:       files,
		do:        opts.Do,
	}
	if err := s.start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// freeAddr returns an address on opts.Host with a port that was free a
// moment ago. (embed takes URLs, not listeners; the window in which another
// process could take the port is tiny.)
func freeAddr(t testing.TB, opts Options) string {
	t.Helper()
	var addr string
	err := opts.Do(func() error {
		l, err := net.Listen("tcp", net.JoinHostPort(opts.Host, "0"))
		if err != nil {
			return err
		}
		addr = l.Addr().String()
		return l.Close()
	})
	if err != nil {
		t.Fatalf("pick a free port: %v", err)
	}
	return addr
}

func (s *Server) start() error {
	cfg := embed.NewConfig()
	cfg.Name = "etcdtest"
	cfg.Dir = s.dir
	cfg.ListenClientUrls = []url.URL{s.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{s.clientURL}
	cfg.ListenPeerUrls = []url.URL{s.peerURL}
	cfg.AdvertisePeerUrls = []url.URL{s.peerURL}
	cfg.InitialCluster = fmt.Sprintf("%s=%s", cfg.Name, s.peerURL.String())
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true // test data; fsync only slows the tests down
	cfg.EnableGRPCGateway = false
	// bcrypt's cheapest cost: at the default (10) one authentication takes
	// seconds under the race detector on a busy machine, longer than a
	// client's dial timeout.
	cfg.BcryptCost = 4
	if s.tls != nil {
		cfg.ClientTLSInfo = transport.TLSInfo{
			CertFile:       s.tls.serverCert,
			KeyFile:        s.tls.serverKey,
			TrustedCAFile:  s.tls.CAFile,
			ClientCertAuth: true,
		}
	}

	var e *embed.Etcd
	err := s.do(func() error {
		var err error
		e, err = embed.StartEtcd(cfg)
		return err
	})
	if err != nil {
		return err
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("server failed: %w", err)
	case <-time.After(startTimeout):
		e.Close()
		return fmt.Errorf("server not ready after %v", startTimeout)
	}
	s.mu.Lock()
	s.e = e
	s.mu.Unlock()
	return nil
}

// Endpoints returns the client URL(s), e.g. ["http://127.0.0.1:40123"].
// They stay the same across Stop and Restart.
func (s *Server) Endpoints() []string {
	return []string{s.clientURL.String()}
}

// Stop stops the server and keeps its data; clients see it as gone. Stop is
// idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	e := s.e
	s.e = nil
	s.mu.Unlock()
	if e != nil {
		e.Close()
	}
}

// Restart starts a stopped server again on the same ports with the same
// data. It fails the test if the server does not come back.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := s.e != nil
	s.mu.Unlock()
	if running {
		s.t.Fatalf("restart etcd: server is running")
	}
	// The old listeners are closed, but the kernel may need a moment
	// before the port can be bound again; retry briefly.
	var err error
	for i := 0; i < 50; i++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("restart etcd: %v", err)
}

// Client returns a client connected to the server, closed in t.Cleanup.
func (s *Server) Client(t testing.TB) *clientv3.Client {
	t.Helper()
	return s.client(t, clientv3.Config{})
}

// client makes a client with cfg's credentials (if any) that reaches the
// server as Client's do.
func (s *Server) client(t testing.TB, cfg clientv3.Config) *clientv3.Client {
	t.Helper()
	cfg.Endpoints = s.Endpoints()
	cfg.DialTimeout = 5 * time.Second
	cfg.Logger = zap.NewNop()
	if s.tls != nil {
		info := transport.TLSInfo{CertFile: s.tls.CertFile, KeyFile: s.tls.KeyFile, TrustedCAFile: s.tls.CAFile}
		tc, err := info.ClientConfig()
		if err != nil {
			t.Fatalf("etcd client TLS: %v", err)
		}
		cfg.TLS = tc
	}
	cfg.DialOptions = []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		var c net.Conn
		err := s.do(func() error {
			var err error
			c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			return err
		})
		return c, err
	})}
	c, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Put writes key=value with opts (e.g. clientv3.WithLease), failing the
// test on error.
func Put(t testing.TB, c *clientv3.Client, key, value string, opts ...clientv3.OpOption) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Put(ctx, key, value, opts...); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}
