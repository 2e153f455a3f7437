package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image holds and how it starts.
const (
	// Entrypoint is the binary's path in the image.
	Entrypoint = "/vxtun"
	// FlanneldLink is flanneld's path in flannel's image, a link to
	// Entrypoint here; its target is relative, so it also resolves in an
	// unpacked root file system.
	FlanneldLink   = "/opt/bin/flanneld"
	flanneldTarget = "../../vxtun"
	// PathEnv is the image's PATH: "flanneld" and "vxtun" resolve.
	PathEnv = "PATH=/opt/bin:/"
	// MainPackage is the package a vxtun binary is built from.
	MainPackage = "github.com/vxtun/vxtun/cmd/vxtun"
	// RefNameAnnotation names the image in the layout's index.json (the
	// tag that skopeo's oci:DIR:TAG and oras's --oci-layout DIR:TAG select).
	RefNameAnnotation = "org.opencontainers.image.ref.name"
)

// OCI label keys of the image configuration.
const (
	LabelTitle       = "org.opencontainers.image.title"
	LabelDescription = "org.opencontainers.image.description"
	LabelSource      = "org.opencontainers.image.source"
	LabelVersion     = "org.opencontainers.image.version"
	LabelRevision    = "org.opencontainers.image.revision"
	LabelCreated     = "org.opencontainers.image.created"
)

// Binary is what the image is made of: a static vxtun binary and what its
// build information says about it.
type Binary struct {
	Path     string
	OS, Arch string    // GOOS, GOARCH
	Version  string    // -X main.version (as make build stamps it), else the module version; see Stamp
	Revision string    // vcs.revision; "" when built outside a checkout
	Created  time.Time // vcs.time, the commit's time; Unix 0 without one
	Source   string    // https:// and the main module's path
}

// elfMachines maps GOARCH to the ELF machine of its binaries.
var elfMachines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM, "386": elf.EM_386,
	"ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390, "riscv64": elf.EM_RISCV,
}

// ReadBinary reads path's build information and checks that it is a vxtun
// binary that needs nothing from a base image: a statically linked Linux
// ELF executable (no interpreter, no shared libraries) built with
// CGO_ENABLED=0.
func ReadBinary(path string) (Binary, error) {
	machine, err := checkStatic(path)
	if err != nil {
		return Binary{}, fmt.Errorf("read binary %s: %w", path, err)
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return Binary{}, fmt.Errorf("read binary %s: build info: %w", path, err)
	}
	if bi.Path != MainPackage {
		return Binary{}, fmt.Errorf("read binary %s: built from %s, want %s", path, bi.Path, MainPackage)
	}
	b := Binary{Path: path, Source: "https://" + bi.Main.Path, Created: time.Unix(0, 0).UTC()}
	s := map[string]string{}
	for _, kv := range bi.Settings {
		s[kv.Key] = kv.Value
	}
	if s["CGO_ENABLED"] != "0" {
		return Binary{}, fmt.Errorf("read binary %s: CGO_ENABLED=%q, want 0", path, s["CGO_ENABLED"])
	}
	b.OS, b.Arch = s["GOOS"], s["GOARCH"]
	if b.OS != "linux" {
		return Binary{}, fmt.Errorf("read binary %s: GOOS %q, want linux", path, b.OS)
	}
	if m, ok := elfMachines[b.Arch]; !ok || m != machine {
		return Binary{}, fmt.Errorf("read binary %s: GOARCH %q and ELF machine %s do not match", path, b.Arch, machine)
	}
	b.Revision = s["vcs.revision"]
	if v := s["vcs.time"]; v != "" {
		if b.Created, err = time.Parse(time.RFC3339, v); err != nil {
			return Binary{}, fmt.Errorf("read binary %s: vcs.time: %w", path, err)
		}
		b.Created = b.Created.UTC()
	}
	b.Version = stampedVersion(s["-ldflags"])
	if b.Version == "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	return b, nil
}

// Stamp fills in what the build information lacks (go build -trimpath
// records no -ldflags; -buildvcs=false, or a build outside a checkout,
// no vcs.* settings) from the caller: the version the binary was stamped
// with, the commit and its time (make image passes git's). A value the
// binary does carry must agree. Empty arguments change nothing; a version
// still unknown afterwards is "devel".
func (b *Binary) Stamp(version, revision string, created time.Time) error {
	if err := stamp(&b.Version, version, "version"); err != nil {
		return err
	}
	if err := stamp(&b.Revision, revision, "revision"); err != nil {
		return err
	}
	if !created.IsZero() {
		created = created.UTC()
		if b.Created.Unix() != 0 && !b.Created.Equal(created) {
			return fmt.Errorf("binary %s: commit time %s, not %s", b.Path, b.Created.Format(time.RFC3339), created.Format(time.RFC3339))
		}
		b.Created = created
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	return nil
}

// stamp sets *have to want unless one of them is empty; two different
// values are an error.
func stamp(have *string, want, what string) error {
	switch {
	case want == "":
	case *have == "":
		*have = want
	case *have != want:
		return fmt.Errorf("binary has %s %q, not %q", what, *have, want)
	}
	return nil
}

// checkStatic returns path's ELF machine, or an error unless path is an
// ELF executable with no interpreter and no shared libraries.
func checkStatic(path string) (elf.Machine, error) {
	f, err := elf.Open(path)
	if err != nil {
		return 0, fmt.Errorf("not an ELF executable: %w", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(p.Open())
			return 0, fmt.Errorf("dynamically linked (interpreter %s): build with CGO_ENABLED=0", strings.TrimRight(string(interp), "\x00"))
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return 0, fmt.Errorf("dynamic section: %w", err)
	}
	if len(libs) > 0 {
		return 0, fmt.Errorf("needs shared libraries %s: build with CGO_ENABLED=0", strings.Join(libs, ", "))
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return 0, fmt.Errorf("ELF type %s is not an executable", f.Type)
	}
	return f.Machine, nil
}

// stampedVersion returns the value of "-X main.version=V" in a -ldflags
// setting, "" if there is none.
func stampedVersion(ldflags string) string {
	f := strings.Fields(ldflags)
	for i, w := range f {
		var x string
		switch {
		case w == "-X" && i+1 < len(f):
			x = f[i+1]
		case strings.HasPrefix(w, "-X="):
			x = strings.TrimPrefix(w, "-X=")
		}
		if v, ok := strings.CutPrefix(x, "main.version="); ok {
			return v
		}
	}
	return ""
}

// Tag turns a version into an image tag: characters a tag may not hold
// become '-', and it is cut to 128 characters.
func Tag(version string) string {
	t := []byte(version)
	for i, c := range t {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
			i > 0 && (c == '.' || c == '-')
		if !ok {
			t[i] = '-'
			if i == 0 {
				t[i] = '_'
			}
		}
	}
	if len(t) > 128 {
		t = t[:128]
	}
	return string(t)
}

// Build returns b's image: OCI media types, one gzip layer (Layer), the
// configuration described in the package doc, every timestamp b.Created.
func Build(b Binary) (v1.Image, error) {
	raw, err := Layer(b.Path, b.Created)
	if err != nil {
		return nil, err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("build image: layer: %w", err)
	}
	created := v1.Time{Time: b.Created}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: l, History: v1.History{
		Created:   created,
		CreatedBy: "vxtun-image: " + Entrypoint + ", " + FlanneldLink + " -> " + flanneldTarget,
	}})
	if err != nil {
		return nil, fmt.Errorf("build image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("build image: config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = b.OS, b.Arch, created
	cf.Config = v1.Config{
		Entrypoint: []string{Entrypoint},
		Cmd:        []string{"run"},
		Env:        []string{PathEnv},
		WorkingDir: "/",
		Labels: map[string]string{
			LabelTitle:       "vxtun",
			LabelDescription: "userspace VXLAN / flannel-UDP overlay dataplane, a drop-in replacement for flanneld",
			LabelSource:      b.Source,
			LabelVersion:     b.Version,
			LabelRevision:    b.Revision,
			LabelCreated:     b.Created.Format(time.RFC3339),
		},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("build image: config: %w", err)
	}
	return img, nil
}

// Layer returns the image's only layer, gzip-compressed: the directories
// opt/ and opt/bin/, the link opt/bin/flanneld → ../../vxtun and the file
// vxtun (the binary at path), all owned by root, modified at mtime.
func Layer(path string, mtime time.Time) ([]byte, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	tw := tar.NewWriter(zw)
	hdrs := []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "opt/", Mode: 0o755},
		{Typeflag: tar.TypeDir, Name: "opt/bin/", Mode: 0o755},
		{Typeflag: tar.TypeSymlink, Name: strings.TrimPrefix(FlanneldLink, "/"), Linkname: flanneldTarget, Mode: 0o777},
		{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(Entrypoint, "/"), Mode: 0o755, Size: int64(len(bin))},
	}
	for _, h := range hdrs {
		h.ModTime, h.Format = mtime, tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", h.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(bin); err != nil {
				return nil, fmt.Errorf("layer: %s: %w", h.Name, err)
			}
		}
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteLayout writes img as an OCI image layout in dir, its manifest
// named tag (RefNameAnnotation). An existing dir must be an image layout
// (or empty); it is replaced.
func WriteLayout(dir string, img v1.Image, tag string) error {
	if err := clearLayout(dir); err != nil {
		return fmt.Errorf("write layout: %w", err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{RefNameAnnotation: tag})); err != nil {
		return fmt.Errorf("write layout %s: %w", dir, err)
	}
	return nil
}

// clearLayout removes dir if it is an image layout or empty, and refuses
// to touch anything else.
func clearLayout(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			return fmt.Errorf("%s exists and is not an OCI image layout: not replaced", dir)
		}
	}
	return os.RemoveAll(dir)
}

// WriteDockerArchive writes img as a docker-archive tarball (docker save's
// format) tagged ref, replacing path.
func WriteDockerArchive(path string, img v1.Image, ref name.Tag) error {
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		return fmt.Errorf("write docker archive: %w", err)
	}
	return nil
}
