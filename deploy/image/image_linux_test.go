package image

// The image end to end: built twice by make image, read back with
// go-containerregistry, unpacked, and the unpacked binary run chrooted into
// the image's root file system (nothing from the host but the kernel):
// version, and a two-node overlay with pods on cni0 pinging across it.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/vxtun/vxtun/internal/nettest"
)

// imageBuilds are two make image runs of this checkout.
type imageBuilds struct {
	once     sync.Once
	tmp      string    // holds both
	dirs     [2]string // IMAGE_DIR of each run
	printed  [2]string // the digest each run printed
	duration [2]time.Duration
	git      gitFacts
	err      error
}

// builds is made once for all tests of the binary.
var builds imageBuilds

// gitFacts is what the Makefile reads from git for the image.
type gitFacts struct {
	version, revision string
	created           time.Time
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builds.tmp != "" {
		os.RemoveAll(builds.tmp)
	}
	os.Exit(code)
}

// repoRoot is the main module's directory, two levels up.
func repoRoot() (string, error) {
	root, err := filepath.Abs("../..")
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(b, []byte("module github.com/vxtun/vxtun\n")) {
		return "", fmt.Errorf("%s is not vxtun's main module (go.mod: %v)", root, err)
	}
	return root, nil
}

var digestLine = regexp.MustCompile(`(?m)^digest\s+(sha256:[0-9a-f]{64})$`)

// built runs make image twice (once per test binary) and returns the
// result; it fails t if the builds failed.
func built(t *testing.T) *imageBuilds {
	t.Helper()
	builds.once.Do(func() { builds.err = makeImages() })
	if builds.err != nil {
		t.Fatal(builds.err)
	}
	return &builds
}

func makeImages() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	gitOut := func(args ...string) (string, error) {
		out, err := exec.Command("git", append([]string{"-C", root}, args...)...).Output()
		if err != nil {
			return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	g := &builds.git
	if g.version, err = gitOut("describe", "--always", "--dirty"); err != nil {
		return err
	}
	if g.revision, err = gitOut("rev-parse", "HEAD"); err != nil {
		return err
	}
	ct, err := gitOut("log", "-1", "--format=%ct")
	if err != nil {
		return err
	}
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return fmt.Errorf("commit time %q: %w", ct, err)
	}
	g.created = time.Unix(sec, 0).UTC()
	if builds.tmp, err = os.MkdirTemp("", "vxtun-image-"); err != nil {
		return err
	}
	for i := range builds.dirs {
		dir := filepath.Join(builds.tmp, fmt.Sprintf("build%d", i+1))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		start := time.Now()
		out, err := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", root, "image", "IMAGE_DIR="+dir).CombinedOutput()
		cancel()
		builds.duration[i] = time.Since(start)
		if err != nil {
			return fmt.Errorf("make image (build %d): %w\n%s", i+1, err, out)
		}
		m := digestLine.FindSubmatch(out)
		if m == nil {
			return fmt.Errorf("make image (build %d) printed no digest line:\n%s", i+1, out)
		}
		builds.dirs[i], builds.printed[i] = dir, string(m[1])
	}
	return nil
}

// readLayout reads the one image of dir/oci and its ref name.
func readLayout(t *testing.T, dir string) (v1.Image, v1.Descriptor) {
	t.Helper()
	p, err := layout.FromPath(filepath.Join(dir, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("%s: index.json lists %d manifests, want 1", dir, len(im.Manifests))
	}
	desc := im.Manifests[0]
	img, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img, desc
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// Two make image runs of one commit give the same image, byte for byte.
func TestImageReproducible(t *testing.T) {
	b := built(t)
	t.Logf("make image: %v, then %v", b.duration[0].Round(time.Second), b.duration[1].Round(time.Second))
	var digests [2]string
	for i, dir := range b.dirs {
		img, desc := readLayout(t, dir)
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests[i] = d.String()
		if desc.Digest != d {
			t.Errorf("build %d: index.json names %s, the manifest's digest is %s", i+1, desc.Digest, d)
		}
		if got := b.printed[i]; got != d.String() {
			t.Errorf("build %d: printed digest %s, layout's %s", i+1, got, d)
		}
		file, err := os.ReadFile(filepath.Join(dir, "digest"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(file)); got != d.String() {
			t.Errorf("build %d: digest file says %s, layout's %s", i+1, got, d)
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("image digest: got %s and %s from two builds, want one", digests[0], digests[1])
	}
	for _, f := range []string{"vxtun", "vxtun.tar", "oci/index.json"} {
		h1, h2 := sha256File(t, filepath.Join(b.dirs[0], f)), sha256File(t, filepath.Join(b.dirs[1], f))
		if h1 != h2 {
			t.Errorf("%s: sha256 %s and %s from two builds, want one", f, h1, h2)
		}
	}
	t.Logf("digest %s", digests[0])
}

// The image's manifest, configuration and docker archive say what the
// README says.
func TestImageConfig(t *testing.T) {
	b := built(t)
	dir := b.dirs[0]
	img, desc := readLayout(t, dir)
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if got, want := desc.Annotations[RefNameAnnotation], Tag(b.git.version); got != want {
		t.Errorf("index.json %s: got %q, want %q", RefNameAnnotation, got, want)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types: got manifest %s, config %s, want %s, %s", m.MediaType, m.Config.MediaType, types.OCIManifestSchema1, types.OCIConfigJSON)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("layers: got %+v, want one %s", m.Layers, types.OCILayer)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	created := b.git.created.Format(time.RFC3339)
	checks := []struct {
		what      string
		got, want any
	}{
		{"os", cf.OS, "linux"},
		{"architecture", cf.Architecture, runtime.GOARCH},
		{"entrypoint", cf.Config.Entrypoint, []string{"/vxtun"}},
		{"cmd", cf.Config.Cmd, []string{"run"}},
		{"env", cf.Config.Env, []string{"PATH=/opt/bin:/"}},
		{"created", cf.Created.UTC().Format(time.RFC3339), created},
		{"history", len(cf.History), 1},
		{"label source", cf.Config.Labels[LabelSource], "https://github.com/vxtun/vxtun"},
		{"label version", cf.Config.Labels[LabelVersion], b.git.version},
		{"label revision", cf.Config.Labels[LabelRevision], b.git.revision},
		{"label created", cf.Config.Labels[LabelCreated], created},
		{"label title", cf.Config.Labels[LabelTitle], "vxtun"},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}

	// The docker archive holds the same configuration and layer, tagged
	// repository:version.
	arch := filepath.Join(dir, "vxtun.tar")
	tm, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(arch) })
	if err != nil {
		t.Fatal(err)
	}
	if want := "ghcr.io/vxtun/vxtun:" + Tag(b.git.version); len(tm) != 1 || !slices.Equal(tm[0].RepoTags, []string{want}) {
		t.Errorf("docker archive manifest: got %+v, want one image tagged %s", tm, want)
	}
	dimg, err := tarball.ImageFromPath(arch, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(dimg); err != nil {
		t.Fatalf("validate docker archive: %v", err)
	}
	for _, f := range []func(v1.Image) (v1.Hash, error){v1.Image.ConfigName, layerDigest} {
		h1, err1 := f(img)
		h2, err2 := f(dimg)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if h1 != h2 {
			t.Errorf("docker archive: got %s, OCI layout %s", h2, h1)
		}
	}
}

func layerDigest(img v1.Image) (v1.Hash, error) {
	ls, err := img.Layers()
	if err != nil || len(ls) != 1 {
		return v1.Hash{}, fmt.Errorf("layers: %d, %v", len(ls), err)
	}
	return ls[0].Digest()
}

// unpack writes the image's flattened file system (mutate.Extract) into a
// new directory and checks that it holds exactly /vxtun, the same bytes as
// the binary make image built, and the link /opt/bin/flanneld to it.
func unpack(t *testing.T, img v1.Image, binary string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Clean(h.Name)
		if !filepath.IsLocal(name) {
			t.Fatalf("unpack: entry %q leaves the root", h.Name)
		}
		names = append(names, name)
		p := filepath.Join(root, name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, os.FileMode(h.Mode).Perm())
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, os.FileMode(h.Mode).Perm()); err == nil {
				_, err = io.Copy(f, tr)
				err = errors.Join(err, f.Close())
			}
		default:
			err = fmt.Errorf("type %q", h.Typeflag)
		}
		if err != nil {
			t.Fatalf("unpack %s: %v", h.Name, err)
		}
	}
	slices.Sort(names)
	if want := []string{"opt", "opt/bin", "opt/bin/flanneld", "vxtun"}; !slices.Equal(names, want) {
		t.Errorf("root file system: got %q, want %q", names, want)
	}
	if got, want := sha256File(t, filepath.Join(root, "vxtun")), sha256File(t, binary); got != want {
		t.Errorf("/vxtun: sha256 %s, the built binary's %s", got, want)
	}
	if fi, err := os.Stat(filepath.Join(root, "vxtun")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("/vxtun: mode %v (%v), want 0755", fi.Mode(), err)
	}
	if dst, err := filepath.EvalSymlinks(filepath.Join(root, "opt/bin/flanneld")); err != nil || dst != filepath.Join(root, "vxtun") {
		t.Errorf("/opt/bin/flanneld resolves to %q (%v), want %s/vxtun", dst, err, root)
	}
	return root
}

// chroot runs argv chrooted into root with exactly env, and returns its
// combined output.
func chroot(t *testing.T, root string, env []string, argv ...string) string {
	t.Helper()
	chrootBin, err := exec.LookPath("chroot")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(chrootBin, append([]string{root}, argv...)...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chroot %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// The unpacked binary runs with nothing of the host's root file system:
// no libc, no /etc, no /proc.
func TestImageVersion(t *testing.T) {
	nettest.RequirePrivileged(t)
	b := built(t)
	img, _ := readLayout(t, b.dirs[0])
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	root := unpack(t, img, filepath.Join(b.dirs[0], "vxtun"))
	want := fmt.Sprintf("vxtun %s (%s", b.git.version, runtime.Version())
	for _, argv := range [][]string{
		append(slices.Clone(cf.Config.Entrypoint), "version"),
		{FlanneldLink, "--version"},
	} {
		out := chroot(t, root, cf.Config.Env, argv...)
		if !strings.HasPrefix(out, want) || !strings.HasSuffix(strings.TrimSpace(out), "linux/"+runtime.GOARCH+")") {
			t.Errorf("%s: got %q, want %q… linux/%s)", strings.Join(argv, " "), out, want, runtime.GOARCH)
		}
	}
}

// containerScript prepares what a container runtime gives a container —
// /proc, /sys and the /dev/net/tun the DaemonSet mounts — in a private
// mount namespace, then runs the rest of its arguments chrooted into $1
// with the image's environment only.
const containerScript = `set -e
root=$1; shift
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev/net/tun "$root/dev/net/tun"
exec "$@"`

// imageNode is one node of the overlay, run from its own unpacked root.
type imageNode struct {
	plan nettest.Node
	ns   *nettest.NS
	root string
	d    *nettest.Daemon
}

// The unpacked image is a dataplane: two nodes, each vxtun chrooted into
// its own copy of the image's root file system (node 1 as the image's
// entrypoint and command, node 2 as /opt/bin/flanneld, a flannel
// DaemonSet's command), static peers, the userspace dataplane, pods behind
// cni0 pinging each other across the overlay.
func TestImageOverlay(t *testing.T) {
	h := nettest.NewTwoHosts(t)
	nettest.RequireCommand(t, "ping", "unshare", "chroot", "mount", "env")
	nettest.RequireCNI(t)
	b := built(t)
	img, _ := readLayout(t, b.dirs[0])
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(b.dirs[0], "vxtun")
	tools := map[string]string{}
	for _, c := range []string{"unshare", "chroot", "env"} {
		if tools[c], err = exec.LookPath(c); err != nil {
			t.Fatal(err)
		}
	}

	nodes := make([]*imageNode, 2)
	for i, host := range h.Hosts {
		n := &imageNode{plan: host.Node, ns: host.NS, root: unpack(t, img, binary)}
		for _, d := range []string{"proc", "sys", "dev/net", "etc/vxtun", "run/flannel"} {
			if err := os.MkdirAll(filepath.Join(n.root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(n.root, "dev/net/tun"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		other := h.Hosts[1-i].Node
		files := nettest.FilesIn(filepath.Join(n.root, "etc/vxtun"))
		if err := files.Write(
			nettest.NetConf{Network: nettest.OverlayNetwork, Backend: nettest.Backend{Type: "vxlan"}},
			nettest.NodeConf{PublicIP: n.plan.Underlay.String(), Iface: nettest.UnderlayIface, Subnet: n.plan.Subnet.String(),
				VtepMAC: n.plan.VtepMAC.String(), SubnetFile: "/run/flannel/subnet.env", Workers: 2, IPMasq: true},
			nettest.PeersOf(true, other),
		); err != nil {
			t.Fatal(err)
		}
		flags := []string{"--net-conf", "/etc/vxtun/net-conf.json", "--node", "/etc/vxtun/node.json",
			"--peers", "/etc/vxtun/peers.json", "--dataplane", "userspace"}
		argv := append(slices.Clone(cf.Config.Entrypoint), cf.Config.Cmd...)
		if i == 1 {
			argv = []string{FlanneldLink}
		}
		cmd := []string{tools["unshare"], "--mount", "--propagation", "private", "sh", "-c", containerScript, "sh", n.root,
			tools["env"], "-i"}
		cmd = append(append(append(cmd, cf.Config.Env...), tools["chroot"], n.root), append(argv, flags...)...)
		n.d = nettest.StartDaemon(t, &nettest.Daemon{Name: "vxtun " + n.plan.Name() + " (image)", NS: n.ns, Argv: cmd})
		nodes[i] = n
	}

	var pods []*nettest.Pod
	for _, n := range nodes {
		env := filepath.Join(n.root, "run/flannel/subnet.env")
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := os.Stat(env); err == nil {
				break
			}
			if err := nettest.CheckRunning(n.d); err != nil {
				t.Fatal(err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s wrote no subnet.env within 30 s:\n%s", n.d.Name, n.d.Output())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if out := n.ns.Run("ip", "-d", "link", "show", "vxtun0"); !strings.Contains(out, "tun") {
			t.Errorf("%s: vxtun0 is not a TUN device: %s", n.plan.Name(), out)
		}
		pn := nettest.NodePods(t, n.ns, env)
		pods = append(pods, pn.NewPod(t, fmt.Sprintf("ip%d", n.plan.Index)))
	}

	alive := func() error { return nettest.CheckRunning(nodes[0].d, nodes[1].d) }
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, pair := range [][2]*nettest.Pod{{pods[0], pods[1]}, {pods[1], pods[0]}} {
		from, to := pair[0], pair[1]
		if err := nettest.WaitPing(ctx, from.NS, from.Addr.Addr(), to.Addr.Addr(), 20*time.Second, alive); err != nil {
			t.Fatal(err)
		}
		r, err := nettest.Ping(ctx, from.NS, from.Addr.Addr(), to.Addr.Addr(), "-c", "5", "-i", "0.2", "-W", "2")
		if err != nil {
			t.Fatal(err)
		}
		if r.Received != 5 {
			t.Errorf("ping %s → %s: got %d of %d replies, want 5", from.IP(), to.IP(), r.Received, r.Transmitted)
		}
	}

	// SIGTERM: a clean shutdown that removes the TUN device, as outside
	// the image.
	for _, n := range nodes {
		if err := n.d.Stop(10 * time.Second); err != nil {
			t.Errorf("%s: stop: %v\n%s", n.d.Name, err, n.d.Output())
		}
		if code := n.d.ExitCode(); code != 0 {
			t.Errorf("%s: exit status %d, want 0\n%s", n.d.Name, code, n.d.Output())
		}
		if out, err := n.ns.Try("ip", "link", "show", "vxtun0"); err == nil {
			t.Errorf("%s: vxtun0 still there after shutdown: %s", n.plan.Name(), out)
		}
	}
}
