package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStampedVersion(t *testing.T) {
	tests := []struct{ ldflags, want string }{
		{"", ""},
		{"-s -w", ""},
		{"-X main.version=v1.2.3", "v1.2.3"},
		{"-s -w -X main.version=c7db352-dirty", "c7db352-dirty"},
		{"-X=main.version=v0.1.0 -s", "v0.1.0"},
		{"-X main.other=x -X main.version=v2", "v2"},
		{"-X", ""},
		{"-X other.version=v3", ""},
	}
	for _, tt := range tests {
		if got := stampedVersion(tt.ldflags); got != tt.want {
			t.Errorf("stampedVersion(%q): got %q, want %q", tt.ldflags, got, tt.want)
		}
	}
}

func TestTag(t *testing.T) {
	tests := []struct{ version, want string }{
		{"v1.2.3", "v1.2.3"},
		{"c7db352-dirty", "c7db352-dirty"},
		{"v0.0.0-20261201233231-dced995cf2cb+dirty", "v0.0.0-20261201233231-dced995cf2cb-dirty"},
		{".hidden", "_hidden"},
		{"-x", "_x"},
		{"a/b c", "a-b-c"},
		{strings.Repeat("a", 200), strings.Repeat("a", 128)},
	}
	for _, tt := range tests {
		if got := Tag(tt.version); got != tt.want {
			t.Errorf("Tag(%q): got %q, want %q", tt.version, got, tt.want)
		}
	}
}

func TestStamp(t *testing.T) {
	commit := time.Date(2026, 12, 1, 23, 32, 31, 0, time.UTC)
	tests := []struct {
		name              string
		have              Binary
		version, revision string
		created           time.Time
		want              Binary
		wantErr           string
	}{
		{"fills an empty binary", Binary{Created: time.Unix(0, 0)}, "v1", "abc", commit,
			Binary{Version: "v1", Revision: "abc", Created: commit}, ""},
		{"nothing known: devel", Binary{Created: time.Unix(0, 0)}, "", "", time.Time{},
			Binary{Version: "devel", Created: time.Unix(0, 0)}, ""},
		{"agreeing values", Binary{Version: "v1", Revision: "abc", Created: commit}, "v1", "abc", commit.Local(),
			Binary{Version: "v1", Revision: "abc", Created: commit}, ""},
		{"other version", Binary{Version: "v1"}, "v2", "", time.Time{}, Binary{}, `version "v1", not "v2"`},
		{"other revision", Binary{Revision: "abc"}, "", "def", time.Time{}, Binary{}, `revision "abc", not "def"`},
		{"other commit time", Binary{Created: commit}, "", "", commit.Add(time.Second), Binary{}, "commit time"},
	}
	for _, tt := range tests {
		b := tt.have
		err := b.Stamp(tt.version, tt.revision, tt.created)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: got error %v, want one containing %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if b.Version != tt.want.Version || b.Revision != tt.want.Revision || !b.Created.Equal(tt.want.Created) {
			t.Errorf("%s: got %+v, want %+v", tt.name, b, tt.want)
		}
	}
}

// ReadBinary refuses what would need a base image or is not vxtun.
func TestReadBinaryRefuses(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(text, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A static Go program that is not vxtun.
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/other\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", other, ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tests := []struct{ path, wantErr string }{
		{text, "not an ELF executable"},
		{filepath.Join(dir, "missing"), "not an ELF executable"},
		{other, "built from example.com/other, want " + MainPackage},
	}
	// A dynamically linked system program, where there is one.
	if sh, err := exec.LookPath("sh"); err == nil {
		if real, err := filepath.EvalSymlinks(sh); err == nil && !isStatic(real) {
			tests = append(tests, struct{ path, wantErr string }{real, "dynamically linked (interpreter /"})
		}
	}
	for _, tt := range tests {
		_, err := ReadBinary(tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ReadBinary(%s): got error %v, want one containing %q", filepath.Base(tt.path), err, tt.wantErr)
		}
	}
}

// The layer holds exactly the binary and the flanneld link, owned by root,
// every entry at the given time, and is the same bytes every time.
func TestLayer(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "vxtun")
	content := []byte("\x7fELF not really a binary")
	if err := os.WriteFile(bin, content, 0o700); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2026, 12, 1, 23, 32, 31, 0, time.UTC)
	raw, err := Layer(bin, mtime)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Layer(bin, mtime)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, again) {
		t.Errorf("two layers of one binary differ (%d and %d bytes)", len(raw), len(again))
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		name     string
		typ      byte
		mode     int64
		link     string
		uid, gid int
	}
	want := []entry{
		{"opt/", tar.TypeDir, 0o755, "", 0, 0},
		{"opt/bin/", tar.TypeDir, 0o755, "", 0, 0},
		{"opt/bin/flanneld", tar.TypeSymlink, 0o777, "../../vxtun", 0, 0},
		{"vxtun", tar.TypeReg, 0o755, "", 0, 0},
	}
	var got []entry
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, entry{h.Name, h.Typeflag, h.Mode, h.Linkname, h.Uid, h.Gid})
		if !h.ModTime.Equal(mtime) {
			t.Errorf("%s: mtime: got %v, want %v", h.Name, h.ModTime, mtime)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			if !bytes.Equal(b, content) {
				t.Errorf("%s: content: got %q, want %q", h.Name, b, content)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("entries: got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func isStatic(path string) bool {
	_, err := checkStatic(path)
	return err == nil
}
