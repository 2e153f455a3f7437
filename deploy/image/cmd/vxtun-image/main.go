// Command vxtun-image builds vxtun's container image from a static vxtun
// binary, without a container daemon (package image, make image):
//
//	vxtun-image -binary bin/image/vxtun -out bin/image
//
// (make image adds -version, -revision and -created from git) writes
// bin/image/oci (an OCI image layout), bin/image/vxtun.tar (a
// docker-archive tarball tagged REPO:VERSION) and bin/image/digest, and
// prints the image's name, size and digest. Exit status 1 on an error, 2 on
// command-line misuse.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/vxtun/vxtun/deploy/image"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vxtun-image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("binary", "", "static vxtun `file` (CGO_ENABLED=0)")
	out := fs.String("out", "", "output `dir`: oci/, vxtun.tar, digest")
	repo := fs.String("repo", "ghcr.io/vxtun/vxtun", "image `repository` of the docker archive's tag")
	tag := fs.String("tag", "", "image `tag` (default: the binary's version)")
	version := fs.String("version", "", "the `version` the binary was stamped with (-X main.version)")
	revision := fs.String("revision", "", "the `commit` the binary was built from")
	created := fs.Int64("created", 0, "the commit's time, Unix `seconds` (SOURCE_DATE_EPOCH); every timestamp of the image")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *bin == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "vxtun-image: -binary and -out are required, no arguments")
		return 2
	}
	b, err := image.ReadBinary(*bin)
	if err == nil {
		var t time.Time
		if *created != 0 {
			t = time.Unix(*created, 0)
		}
		err = b.Stamp(*version, *revision, t)
	}
	if err == nil {
		err = build(b, *out, *repo, *tag, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "vxtun-image: %v\n", err)
		return 1
	}
	return 0
}

func build(b image.Binary, out, repo, tag string, stdout io.Writer) error {
	if tag == "" {
		tag = image.Tag(b.Version)
	}
	ref, err := name.NewTag(repo + ":" + tag)
	if err != nil {
		return fmt.Errorf("image name: %w", err)
	}
	img, err := image.Build(b)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	oci, archive := filepath.Join(out, "oci"), filepath.Join(out, "vxtun.tar")
	if err := image.WriteLayout(oci, img, tag); err != nil {
		return err
	}
	if err := image.WriteDockerArchive(archive, img, ref); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "digest"), []byte(digest.String()+"\n"), 0o644); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("layers: %w", err)
	}
	size, err := layers[0].Size()
	if err != nil {
		return fmt.Errorf("layer size: %w", err)
	}
	fi, err := os.Stat(b.Path)
	if err != nil {
		return err
	}
	rev := b.Revision
	if rev == "" {
		rev = "unknown"
	}
	fmt.Fprintf(stdout, "image   %s (%s/%s, revision %s, created %s)\n", ref, b.OS, b.Arch, rev, b.Created.Format(time.RFC3339))
	fmt.Fprintf(stdout, "layout  %s\narchive %s\n", oci, archive)
	fmt.Fprintf(stdout, "size    %.1f MB compressed (%.1f MB binary)\n", float64(size)/1e6, float64(fi.Size())/1e6)
	fmt.Fprintf(stdout, "digest  %s\n", digest)
	return nil
}
