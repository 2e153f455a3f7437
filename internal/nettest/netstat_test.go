package nettest

import "testing"

func TestParseNetstat(t *testing.T) {
	good := "TcpExt: SyncookiesSent TCPDSACKRecvSegs\nTcpExt: 0 923\nIpExt: InNoRoutes InOctets\nIpExt: 3 -1\n"
	m, err := ParseNetstat([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]int64{"TcpExtSyncookiesSent": 0, "TcpExtTCPDSACKRecvSegs": 923, "IpExtInNoRoutes": 3, "IpExtInOctets": -1} {
		if got, ok := m[k]; !ok || got != want {
			t.Errorf("%s: got %d (present %v), want %d", k, got, ok, want)
		}
	}
	for _, bad := range []string{
		"TcpExt: A B\nIpExt: 1 2\n", // prefixes differ
		"TcpExt: A B\nTcpExt: 1\n",  // counts differ
		"TcpExt: A\nTcpExt: x\n",    // not a number
		"TcpExt A\nTcpExt 1\n",      // no colon
	} {
		if _, err := ParseNetstat([]byte(bad)); err == nil {
			t.Errorf("ParseNetstat(%q): got no error, want one", bad)
		}
	}
}
