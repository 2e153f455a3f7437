package config

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// ParseVtepMAC parses a VTEP MAC address: six bytes, unicast (the group bit
// of the first byte clear) and not all zero, because a kernel vxlan receiver
// only accepts frames addressed to its device's unicast MAC.
func ParseVtepMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("invalid MAC address %q", s)
	}
	if err := CheckVtepMAC(mac); err != nil {
		return nil, err
	}
	return mac, nil
}

// CheckVtepMAC reports why mac cannot be a VTEP MAC (see ParseVtepMAC).
func CheckVtepMAC(mac net.HardwareAddr) error {
	switch {
	case len(mac) != 6:
		return fmt.Errorf("MAC address %s is not 6 bytes", mac)
	case mac[0]&1 != 0:
		return fmt.Errorf("MAC address %s is multicast, want unicast", mac)
	case bytes.Equal(mac, make([]byte, 6)):
		return fmt.Errorf("MAC address %s is all zero", mac)
	}
	return nil
}

// NewVtepMAC returns a random unicast, locally administered MAC address.
func NewVtepMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, fmt.Errorf("generate MAC: %w", err)
	}
	mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	if bytes.Equal(mac[1:], make([]byte, 5)) {
		mac[5] = 1 // keep it from looking unset
	}
	return mac, nil
}

// LoadOrCreateVtepMAC returns the VTEP MAC persisted at path. The first call
// (no file yet) generates a unicast, locally administered MAC and stores it
// (one line, "aa:bb:cc:dd:ee:ff\n", parent directories created), so the
// node keeps its MAC across restarts and kernel-vxlan peers' fdb entries stay
// valid. Creation is exclusive: when two processes race, both return the
// MAC that won. A file with anything but a valid MAC is an error, never
// silently replaced.
func LoadOrCreateVtepMAC(path string) (net.HardwareAddr, error) {
	mac, err := readVtepMAC(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return mac, err
	}
	mac, err = NewVtepMAC()
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create VtepMAC dir: %w", err)
	}
	tmp, err := writeTemp(dir, filepath.Base(path), []byte(mac.String()+"\n"))
	if err != nil {
		return nil, fmt.Errorf("write VtepMAC file: %w", err)
	}
	defer os.Remove(tmp)
	// link(2) fails if path exists: whoever links first wins.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readVtepMAC(path)
		}
		return nil, fmt.Errorf("write VtepMAC file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("write VtepMAC file: %w", err)
	}
	return mac, nil
}

func readVtepMAC(path string) (net.HardwareAddr, error) {
	data, err := ReadFile(path, MaxConfigFileSize)
	if err != nil {
		return nil, fmt.Errorf("read VtepMAC file: %w", err)
	}
	mac, err := ParseVtepMAC(string(data))
	if err != nil {
		return nil, &Error{File: path, Err: err}
	}
	return mac, nil
}

// writeTemp writes data to a new temporary file in dir (named after name),
// with mode 0644, and fsyncs it. It returns the temporary file's path.
func writeTemp(dir, name string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// writeFileAtomic replaces path with data: temp file in the same directory,
// fsync, rename, fsync of the directory. Readers see the old or the new
// content, never a mix.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := writeTemp(dir, filepath.Base(path), data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
