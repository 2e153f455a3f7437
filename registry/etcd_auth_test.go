package registry

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/internal/etcdtest"
)

const (
	authUser     = "vxtun"
	authPassword = "vxtun-pw"
)

// authServer is an etcd with authentication on, the network config
// written, and the user authUser allowed to read and write testPrefix.
func authServer(t *testing.T) *etcdtest.Server {
	t.Helper()
	srv, _ := setup(t, `{"Network":"198.19.0.0/16","Backend":{"Type":"udp"}}`)
	srv.EnableAuth(t, authUser, authPassword, testPrefix)
	return srv
}

func authSource(t *testing.T, srv *etcdtest.Server, password string) (*EtcdSource, *logBuf) {
	t.Helper()
	log, lb := testLogger("auth")
	src, err := NewEtcdSource(EtcdOptions{Endpoints: srv.Endpoints(), Prefix: testPrefix,
		PublicIP: netip.MustParseAddr("198.18.0.1"), Username: authUser, Password: password,
		Logger: log})
	if err != nil {
		t.Fatalf("NewEtcdSource with etcd authentication: got %v, want a source", err)
	}
	t.Cleanup(func() { src.Close() })
	return src, lb
}

// TestEtcdAuthOutageAtStart: with a user name and password configured, a
// source made while etcd is down is made all the same, Run retries with
// backoff (as without authentication), and the lease is taken once etcd is
// back.
func TestEtcdAuthOutageAtStart(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	srv.Stop()

	src, lb := authSource(t, srv, authPassword)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan Update, 10)
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, out) }()

	// Two failed attempts: Run keeps retrying while etcd is down.
	deadline := time.Now().Add(waitTimeout)
	for strings.Count(lb.String(), "acquire lease (retrying)") < 2 {
		select {
		case err := <-done:
			t.Fatalf("Run while etcd is down: returned %v, want it to retry\nlogs:\n%s", err, lb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retries after %v\nlogs:\n%s", waitTimeout, lb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	srv.Restart()
	var l Lease
	select {
	case l = <-src.LeaseChanges():
	case err := <-done:
		t.Fatalf("Run after etcd came back: returned %v, want a lease\nlogs:\n%s", err, lb.String())
	case <-time.After(waitTimeout):
		t.Fatalf("no lease %v after etcd came back\nlogs:\n%s", waitTimeout, lb.String())
	}
	value, _, ok := getKey(t, srv.ClientAs(t, "root", etcdtest.RootPassword), testPrefix+"/subnets/"+l.Name)
	if !ok || !strings.Contains(value, `"PublicIP":"198.18.0.1"`) {
		t.Fatalf("lease %s in etcd: got %q (present %v), want our lease", l.Name, value, ok)
	}
	select {
	case u := <-out:
		if !u.Full {
			t.Fatalf("first update: got %+v, want a full peer set", u)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no peer update after the lease was taken")
	}
	if l.Backend != config.BackendUDP {
		t.Errorf("lease backend: got %s, want udp", l.Backend)
	}
}

// TestEtcdAuthWrongPassword: a password etcd refuses is an error that says
// so, returned at once, not retried: by NetConf, Acquire and Run alike.
func TestEtcdAuthWrongPassword(t *testing.T) {
	t.Parallel()
	srv := authServer(t)
	src, lb := authSource(t, srv, "not-the-password")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, rpctypes.ErrAuthFailed) || !strings.Contains(err.Error(), `authenticate to etcd as "vxtun"`) {
			t.Errorf("%s with a wrong password: got %v, want an authentication error naming the user", what, err)
		}
		if strings.Contains(err.Error(), "not-the-password") {
			t.Errorf("%s: the error quotes the password: %v", what, err)
		}
	}
	_, err := src.NetConf(ctx)
	check("NetConf", err)
	_, err = src.Acquire(ctx)
	check("Acquire", err)
	err = src.Run(ctx, make(chan Update, 1))
	check("Run", err)
	if strings.Contains(lb.String(), "retrying") {
		t.Errorf("a wrong password was retried:\n%s", lb.String())
	}
}
