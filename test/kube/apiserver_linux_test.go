package kube

// The real kube-apiserver of these tests: in process
// (cmd/kube-apiserver/app/testing over vxtun's embedded etcd, with RBAC),
// listening on 127.0.0.1 of the test's own namespace only. vxtun daemons
// run in node namespaces, where that loopback is not reachable: each node
// namespace gets a forwarder listening on its own 127.0.0.1:6443 that
// carries connections to the server. The server can be stopped and
// started again over the same etcd (the state, the service-account
// signing key and the serving certificate survive; the port changes, which
// the forwarders hide).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	kubeapiservertesting "k8s.io/kubernetes/cmd/kube-apiserver/app/testing"

	"github.com/vxtun/vxtun/internal/etcdtest"
	"github.com/vxtun/vxtun/internal/nettest"
)

// apiPort is where a forwarder listens inside a node namespace.
const apiPort = 6443

type apiServer struct {
	t       *testing.T
	storage *storagebackend.Config
	caPEM   []byte // the serving certificate (self-signed fixture; the same after a restart)

	mu    sync.Mutex
	ts    *kubeapiservertesting.TestServer // nil while stopped
	host  string                           // host:port of the running server
	admin *kubernetes.Clientset
	cfg   *rest.Config
	fwds  []*forwarder
}

// startAPIServer starts etcd and the API server with RBAC; both stop in
// t.Cleanup.
func startAPIServer(t *testing.T) *apiServer {
	t.Helper()
	etcd := etcdtest.Start(t)
	cfg := storagebackend.NewDefaultConfig("/registry-"+nettest.RandSuffix(), nil)
	cfg.Transport.ServerList = etcd.Endpoints()
	s := &apiServer{t: t, storage: cfg}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start starts the API server (again).
func (s *apiServer) start() {
	s.t.Helper()
	ts, err := kubeapiservertesting.StartTestServer(s.t,
		&kubeapiservertesting.TestServerInstanceOptions{EnableCertAuth: true, DisableInvariantChecks: true},
		[]string{"--authorization-mode=RBAC", "--disable-admission-plugins=ServiceAccount"}, s.storage)
	if err != nil {
		s.t.Fatalf("start kube-apiserver: %v", err)
	}
	cfg := rest.CopyConfig(ts.ClientConfig)
	// The loopback client's certificate is issued for this name.
	cfg.TLSClientConfig.ServerName = "apiserver-loopback-client"
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	ca, err := os.ReadFile(ts.ServerOpts.SecureServing.ServerCert.CertKey.CertFile)
	if err != nil {
		s.t.Fatalf("serving certificate: %v", err)
	}
	u, err := urlHost(ts.ClientConfig.Host)
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.ts, s.admin, s.cfg, s.host, s.caPEM = &ts, admin, cfg, u, ca
	s.mu.Unlock()
}

// stop tears the API server down (etcd keeps running).
func (s *apiServer) stop() {
	s.mu.Lock()
	ts := s.ts
	s.ts, s.host = nil, ""
	fwds := s.fwds
	s.mu.Unlock()
	if ts == nil {
		return
	}
	for _, f := range fwds {
		f.drop()
	}
	ts.TearDownFn()
}

func (s *apiServer) Admin() *kubernetes.Clientset {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admin
}

func (s *apiServer) adminConfig() *rest.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return rest.CopyConfig(s.cfg)
}

func (s *apiServer) addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.host
}

func urlHost(raw string) (string, error) {
	for _, p := range []string{"https://", "http://"} {
		if len(raw) > len(p) && raw[:len(p)] == p {
			return raw[len(p):], nil
		}
	}
	return "", fmt.Errorf("api server url %q: no scheme", raw)
}

// token returns a token of the service account ns/name.
func (s *apiServer) token(t *testing.T, ns, name string) string {
	t.Helper()
	exp := int64(24 * 3600)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := s.Admin().CoreV1().ServiceAccounts(ns).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s/%s: %v", ns, name, err)
	}
	return tr.Status.Token
}

// saConfig is a client config of the service account, for this
// namespace's 127.0.0.1 (the test's own: the server itself).
func (s *apiServer) saConfig(t *testing.T, ns, name string) *rest.Config {
	t.Helper()
	return &rest.Config{
		Host:            "https://" + s.addr(),
		BearerToken:     s.token(t, ns, name),
		TLSClientConfig: rest.TLSClientConfig{CAData: s.caPEM},
	}
}

// writeKubeconfig writes a kubeconfig for a daemon in a node namespace:
// the forwarder's https://127.0.0.1:6443, the serving certificate as CA
// and the service account's token.
func (s *apiServer) writeKubeconfig(t *testing.T, path, ns, name string) {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: fmt.Sprintf("https://127.0.0.1:%d", apiPort), CertificateAuthorityData: s.caPEM}
	cfg.AuthInfos["vxtun"] = &clientcmdapi.AuthInfo{Token: s.token(t, ns, name)}
	cfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: "vxtun"}
	cfg.CurrentContext = "test"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
}

// forwarder listens on 127.0.0.1:6443 inside a node namespace and carries
// each connection to the API server on this namespace's loopback.
type forwarder struct {
	s  *apiServer
	ln net.Listener
	// blocked refuses connections, as if the server were down.
	blocked atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// forwardInto starts a forwarder in ns; it stops in t.Cleanup.
func (s *apiServer) forwardInto(t *testing.T, ns *nettest.NS) {
	t.Helper()
	f := &forwarder{s: s, conns: map[net.Conn]struct{}{}}
	err := ns.Do(func() error {
		var err error
		f.ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", apiPort))
		return err
	})
	if err != nil {
		t.Fatalf("forwarder in %s: %v", ns.Name, err)
	}
	s.mu.Lock()
	s.fwds = append(s.fwds, f)
	s.mu.Unlock()
	go f.serve()
	t.Cleanup(func() {
		f.ln.Close()
		f.drop()
	})
}

func (f *forwarder) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		go f.carry(c)
	}
}

// carry connects c to the server (this goroutine's thread is in the
// test's namespace, where the server listens).
func (f *forwarder) carry(c net.Conn) {
	addr := f.s.addr()
	if addr == "" || f.blocked.Load() {
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	f.mu.Lock()
	f.conns[c], f.conns[up] = struct{}{}, struct{}{}
	f.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	c.Close()
	up.Close()
	<-done
	f.mu.Lock()
	delete(f.conns, c)
	delete(f.conns, up)
	f.mu.Unlock()
}

// drop closes every carried connection.
func (f *forwarder) drop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		c.Close()
	}
}

// waitFor polls cond every 50 ms until it returns nil or timeout passes;
// it returns the last error.
func waitFor(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var errNotYet = errors.New("not yet")
