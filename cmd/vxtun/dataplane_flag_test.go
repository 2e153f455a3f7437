package main

import (
	"errors"
	"io"
	"testing"
)

func TestDataplaneFlag(t *testing.T) {
	static := []string{"--node", "n.json", "--peers", "p.json"}
	tests := []struct {
		name string
		args []string
		env  []string
		want string // "" for a usage error
	}{
		{"default", nil, nil, "auto"},
		{"flag", []string{"--dataplane", "kernel"}, nil, "kernel"},
		{"environment", nil, []string{"VXTUN_DATAPLANE", "userspace"}, "userspace"},
		{"flag wins", []string{"--dataplane", "userspace"}, []string{"VXTUN_DATAPLANE", "kernel"}, "userspace"},
		{"unknown", []string{"--dataplane", "ebpf"}, nil, ""},
		{"unknown in the environment", nil, []string{"VXTUN_DATAPLANE", "Kernel"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseRunFlags(append(static, tt.args...), envMap(tt.env...), io.Discard)
			if tt.want == "" {
				if !errors.Is(err, errUsage) {
					t.Fatalf("got %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := o.nodeConfig().Dataplane; got != tt.want {
				t.Errorf("node dataplane: got %q, want %q", got, tt.want)
			}
		})
	}
}
