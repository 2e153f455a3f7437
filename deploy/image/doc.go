// Package image builds vxtun's container image without a container
// daemon: from a static vxtun binary it makes an OCI image on an empty base
// (no libc, no shell, no CA bundle: the binary needs none of them) and
// writes it as an OCI image layout directory and as a docker-archive
// tarball (docker load, podman load, ctr images import).
//
// The image holds one layer: /vxtun (the binary, mode 0755) and
// /opt/bin/flanneld, a relative symbolic link to it, under which name vxtun
// runs as "vxtun run", so a flannel DaemonSet's command keeps working. Its
// configuration: entrypoint /vxtun, command run, PATH=/opt/bin:/, the
// org.opencontainers.image.* labels (source, version, revision, created)
// and os/architecture, all read from the binary's own build information
// (ReadBinary). Every timestamp is the commit time the binary was built
// from, so the same binary always gives the same image digest.
//
// It is a Go module of its own (make image, make test-image; run with
// GOWORK=off) so that the daemon's go.mod does not carry
// go-containerregistry. Files: image.go (reading the binary, building the
// image, writing it), cmd/vxtun-image (the builder command), and the test
// that builds the image twice with make, reads it back, unpacks it and runs
// a two-node overlay from the unpacked binary.
//
// Imports: go-containerregistry; the tests also internal/nettest.
// Nothing here keeps state: every function is safe to call concurrently
// on different output paths.
package image
