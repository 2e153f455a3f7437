//go:build unix

package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		path  string
		limit int64
		want  error // nil: read succeeds
		data  string
	}{
		{"regular", write("ok.json", []byte(`{"a":1}`), 0o644), 100, nil, `{"a":1}`},
		{"at limit", write("at.json", []byte("12345"), 0o600), 5, nil, "12345"},
		{"over limit", write("big.json", []byte("123456"), 0o600), 5, ErrTooLarge, ""},
		{"world-writable", write("ww.json", []byte("{}"), 0o666), 100, ErrWorldWritable, ""},
		{"fifo without writer", fifo, 100, ErrNotRegular, ""},
		{"char device", "/dev/zero", 100, ErrNotRegular, ""},
		{"directory", dir, 100, ErrNotRegular, ""},
		{"missing", filepath.Join(dir, "nope"), 100, os.ErrNotExist, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var data []byte
			var err error
			go func() {
				defer close(done)
				data, err = ReadFile(tt.path, tt.limit)
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("ReadFile(%s) blocked", tt.path)
			}
			if tt.want == nil {
				if err != nil || string(data) != tt.data {
					t.Fatalf("got %q, %v; want %q, nil", data, err, tt.data)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want one wrapping %v", err, tt.want)
			}
		})
	}
}

// TestReadFileBytes: a large file is read into one buffer of its size,
// not through growing copies (a peers file is re-read on every reload).
func TestReadFileBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "peers.json")
	const size = 1 << 20
	if err := os.WriteFile(path, bytes.Repeat([]byte{' '}, size), 0o644); err != nil {
		t.Fatal(err)
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	data, err := ReadFile(path, MaxPeersFileSize)
	runtime.ReadMemStats(&m1)
	if err != nil || len(data) != size {
		t.Fatalf("ReadFile: got %d bytes, %v; want %d", len(data), err, size)
	}
	if got := m1.TotalAlloc - m0.TotalAlloc; got > size+size/8 {
		t.Errorf("got %d bytes allocated to read %d, want ≤ %d", got, size, size+size/8)
	}
}
