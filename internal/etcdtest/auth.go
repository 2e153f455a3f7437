package etcdtest

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// RootPassword is the password of the root user EnableAuth creates.
const RootPassword = "etcdtest-root-pw"

// EnableAuth turns on authentication: it creates the user root (password
// RootPassword, role root) and user with password, whose role of the same
// name may read and write every key under prefix, then enables auth. From
// then on Client's clients are refused; use ClientAs. It fails the test on
// error.
func (s *Server) EnableAuth(t testing.TB, user, password, prefix string) {
	t.Helper()
	cli := s.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"add role", func() error { _, err := cli.RoleAdd(ctx, user); return err }},
		{"grant", func() error {
			_, err := cli.RoleGrantPermission(ctx, user, prefix, clientv3.GetPrefixRangeEnd(prefix),
				clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		}},
		{"add root", func() error { _, err := cli.UserAdd(ctx, "root", RootPassword); return err }},
		{"root role", func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err }},
		{"add user", func() error { _, err := cli.UserAdd(ctx, user, password); return err }},
		{"user role", func() error { _, err := cli.UserGrantRole(ctx, user, user); return err }},
		{"enable auth", func() error { _, err := cli.AuthEnable(ctx); return err }},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("etcd auth: %s: %v", step.what, err)
		}
	}
}

// ClientAs returns a client that authenticates as user, closed in
// t.Cleanup. The server must be running: the client authenticates before
// ClientAs returns.
func (s *Server) ClientAs(t testing.TB, user, password string) *clientv3.Client {
	t.Helper()
	return s.client(t, clientv3.Config{Username: user, Password: password})
}
