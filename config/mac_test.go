package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestNewVtepMAC(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		mac, err := NewVtepMAC()
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckVtepMAC(mac); err != nil {
			t.Fatalf("%s: %v", mac, err)
		}
		if mac[0]&0x02 == 0 {
			t.Fatalf("%s: want the locally administered bit set", mac)
		}
		seen[mac.String()] = true
	}
	if len(seen) < 99 {
		t.Errorf("100 MACs gave only %d distinct values", len(seen))
	}
}

func TestLoadOrCreateVtepMAC(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "vtep-mac")
	m1, err := LoadOrCreateVtepMAC(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != m1.String()+"\n" {
		t.Fatalf("file holds %q (%v), want %q", data, err, m1.String()+"\n")
	}
	m2, err := LoadOrCreateVtepMAC(path)
	if err != nil || m2.String() != m1.String() {
		t.Fatalf("second call: got %v (%v), want %v", m2, err, m1)
	}
	// A MAC written by hand is used as is.
	if err := os.WriteFile(path, []byte(" 0e:00:00:00:00:09 \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, err := LoadOrCreateVtepMAC(path); err != nil || m.String() != "0e:00:00:00:00:09" {
		t.Errorf("hand-written file: got %v, %v", m, err)
	}
	// A corrupt file is an error, not silently replaced.
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadOrCreateVtepMAC(path)
	want := path + `: invalid MAC address "garbage"`
	if err == nil || err.Error() != want {
		t.Errorf("corrupt file: got %v, want %q", err, want)
	}
	if data, _ := os.ReadFile(path); string(data) != "garbage" {
		t.Errorf("corrupt file was changed to %q", data)
	}
	// Unreadable path (a directory) is an error other than not-exist.
	if _, err := LoadOrCreateVtepMAC(filepath.Dir(path)); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("directory: got %v, want a read error", err)
	}
}

func TestLoadOrCreateVtepMACRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vtep-mac")
	const n = 8
	macs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m, err := LoadOrCreateVtepMAC(path)
			if err != nil {
				t.Error(err)
				return
			}
			macs[i] = m.String()
		})
	}
	wg.Wait()
	for i := range macs {
		if macs[i] != macs[0] {
			t.Fatalf("concurrent callers got different MACs: %v", macs)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want 1", len(ents))
	}
}
