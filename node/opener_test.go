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
	tests := []struct {
		backend     string
		open, check any
	}{
		{`{"Type": "vxlan"}`, dataplane.OpenUserspace, dataplane.CheckUserspace},
		{`{"Type": "udp"}`, dataplane.OpenUserspace, dataplane.CheckUserspace},
		{`{"Type": "host-gw"}`, dataplane.OpenHostGW, dataplane.CheckHostGW},
		{`{"Type": "vxlan", "DirectRouting": true}`, dataplane.OpenDirectRouting, dataplane.CheckUserspace},
	}
	for _, tt := range tests {
		nc, err := config.ParseNetConf("n", []byte(`{"Network": "198.19.0.0/16", "Backend": `+tt.backend+`}`))
		if err != nil {
			t.Fatal(err)
		}
		open, check := Config{}.withDefaults().opener(nc)
		if fn(open) != fn(tt.open) || fn(check) != fn(tt.check) {
			t.Errorf("backend %s: got a different opener or check than wanted", tt.backend)
		}
		// An explicit Check replaces the backend's; an explicit Opener wins.
		mine := func(dataplane.Config) error { return errors.New("mine") }
		if _, check := (Config{Check: mine}).opener(nc); check == nil || check(dataplane.Config{}).Error() != "mine" {
			t.Errorf("backend %s: Config.Check was not used", tt.backend)
		}
		myOpen := func(dataplane.Config) (dataplane.Dataplane, error) { return nil, errors.New("my opener") }
		if open, _ := (Config{Opener: myOpen}).opener(nc); fn(open) != fn(myOpen) {
			t.Errorf("backend %s: Config.Opener was not used", tt.backend)
		}
	}
}
