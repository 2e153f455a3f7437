package nettest

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseNetstat parses /proc/net/netstat (or /proc/net/snmp): pairs of lines
// "Prefix: Name1 Name2 …" and "Prefix: v1 v2 …". Keys are Prefix+Name, as
// nstat prints them ("TcpExtTCPDSACKRecvSegs").
func ParseNetstat(b []byte) (map[string]int64, error) {
	out := map[string]int64{}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		hp, names, ok1 := strings.Cut(lines[i], ":")
		vp, vals, ok2 := strings.Cut(lines[i+1], ":")
		if !ok1 || !ok2 || hp != vp {
			return nil, fmt.Errorf("parse netstat: lines %d and %d are no header/value pair", i+1, i+2)
		}
		n, v := strings.Fields(names), strings.Fields(vals)
		if len(n) != len(v) {
			return nil, fmt.Errorf("parse netstat: %s: %d names, %d values", hp, len(n), len(v))
		}
		for k := range n {
			x, err := strconv.ParseInt(v[k], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parse netstat: %s%s: %w", hp, n[k], err)
			}
			out[hp+n[k]] = x
		}
	}
	return out, nil
}
