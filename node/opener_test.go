package node

import (
	"errors"
	"reflect"
	"testing"

	"github.com/vxtun/vxtun/config"
	"github.com/vxtun/vxtun/dataplane"
)

func TestOpenerByBackend(t *testing.T) {
	fn := func(f any) uintptr { return reflect.ValueOf(f).Pointer() }
	auto := dataplane.Auto{}
	tests := []struct {
		backend     string
		kind        string // Config.Dataplane
		open, check any
	}{
		{`{"Type": "vxlan"}`, dataplane.KindUserspace, dataplane.OpenUserspace, dataplane.CheckUserspace},
		{`{"Type": "udp"}`, dataplane.KindUserspace, dataplane.OpenUserspace, dataplane.CheckUserspace},
		{`{"Type": "vxlan"}`, dataplane.KindKernel, dataplane.OpenKernel, dataplane.CheckKernel},
		{`{"Type": "vxlan"}`, "", auto.Open, auto.Check},
		{`{"Type": "host-gw"}`, "", dataplane.OpenHostGW, dataplane.CheckHostGW},
		{`{"Type": "host-gw"}`, dataplane.KindKernel, dataplane.OpenHostGW, dataplane.CheckHostGW},
		{`{"Type": "vxlan", "DirectRouting": true}`, "", dataplane.OpenDirectRouting, dataplane.CheckUserspace},
		{`{"Type": "vxlan", "DirectRouting": true}`, dataplane.KindUserspace, dataplane.OpenDirectRouting, dataplane.CheckUserspace},
	}
	for _, tt := range tests {
		nc, err := config.ParseNetConf("n", []byte(`{"Network": "198.19.0.0/16", "Backend": `+tt.backend+`}`))
		if err != nil {
			t.Fatal(err)
		}
		open, check := Config{Dataplane: tt.kind}.withDefaults().opener(nc)
		if fn(open) != fn(tt.open) || fn(check) != fn(tt.check) {
			t.Errorf("backend %s, dataplane %q: got a different opener or check than wanted", tt.backend, tt.kind)
		}
		// An explicit Check replaces the backend's; an explicit Opener wins.
		mine := func(dataplane.Config) error { return errors.New("mine") }
		if _, check := (Config{Check: mine}).opener(nc); check == nil || check(dataplane.Config{}).Error() != "mine" {
			t.Errorf("backend %s: Config.Check was not used", tt.backend)
		}
		if tt.kind == "" && nc.Backend.DirectRouting {
			// DirectRouting over the kernel dataplane is refused at the start check.
			_, check := (Config{Dataplane: dataplane.KindKernel}).opener(nc)
			if err := check(dataplane.Config{}); !errors.Is(err, errDirectRoutingKernel) {
				t.Errorf("DirectRouting with --dataplane kernel: check got %v, want %v", err, errDirectRoutingKernel)
			}
		}
		myOpen := func(dataplane.Config) (dataplane.Dataplane, error) { return nil, errors.New("my opener") }
		if open, _ := (Config{Opener: myOpen}).opener(nc); fn(open) != fn(myOpen) {
			t.Errorf("backend %s: Config.Opener was not used", tt.backend)
		}
	}
}
