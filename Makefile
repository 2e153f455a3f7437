# vxtun — see README.md. Targets that touch the network (test, demo,
# bench-e2e) need root, /dev/net/tun and netns; they build their own
# namespaces and remove them.

GO       ?= go
GOBIN    := $(shell $(GO) env GOPATH)/bin
PKGS     := ./...
FUZZTIME ?= 10s
BENCHTIME ?= 1s

.PHONY: all build deps test vet lint fmt-check unit bench fuzz attack demo bench-e2e bench-e2e-smoke test-kube image test-image clean

all: build

deps:
	@./scripts/deps.sh

VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/vxtun ./cmd/vxtun

# The container image (README, "Container image"), built without a
# container daemon by the nested module deploy/image: a static binary
# (CGO_ENABLED=0, -trimpath, stripped, version stamped as by build) in
# $(IMAGE_DIR)/vxtun, then an OCI image layout $(IMAGE_DIR)/oci, a
# docker-archive tarball $(IMAGE_DIR)/vxtun.tar and the digest in
# $(IMAGE_DIR)/digest. Every timestamp is the commit's time, so the same
# commit gives the same digest.
IMAGE_DIR  ?= bin/image
IMAGE_REPO ?= ghcr.io/vxtun/vxtun
REVISION   ?= $(shell git rev-parse HEAD 2>/dev/null)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

image:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(IMAGE_DIR)/vxtun ./cmd/vxtun
	cd deploy/image && GOWORK=off $(GO) run ./cmd/vxtun-image -binary $(abspath $(IMAGE_DIR))/vxtun \
		-out $(abspath $(IMAGE_DIR)) -repo $(IMAGE_REPO) -version $(VERSION) -revision "$(REVISION)" \
		-created $(SOURCE_DATE_EPOCH)

# The image's test (nested module deploy/image, GOWORK=off): builds it twice
# with make image and compares digests, reads it back, checks its
# configuration, unpacks it and runs the unpacked binary chrooted: version,
# and a two-node overlay with pods pinging across it (as root).
test-image: deps
	cd deploy/image && gofmt -l . | (! grep .) && GOWORK=off $(GO) vet ./... && \
		GOWORK=off $(GOBIN)/staticcheck ./... && \
		GOWORK=off $(GO) test -count=1 -timeout 15m ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# vxtun runs on Linux only; every package still builds and vets on another
# system (stubs fail clearly at run time), which this keeps true.
vet:
	$(GO) vet $(PKGS)
	GOOS=darwin $(GO) vet $(PKGS)

lint: deps
	$(GOBIN)/staticcheck $(PKGS)

# The full test suite: formatting, vet, staticcheck, and every test with the
# race detector, privileged ones included (run as root).
test: deps fmt-check vet lint
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# Kubernetes mode against a real kube-apiserver (in process, RBAC, over an
# embedded etcd): the nested module test/kube, so that the daemon's go.mod
# does not carry k8s.io/kubernetes. GOWORK=off; never -trimpath (the test
# server finds its fixtures by source path). A cold build takes ~10 min and
# ~3 GB. Runs as root (network namespaces, TUN, kernel vxlan, CNI plugins).
test-kube: deps
	cd test/kube && gofmt -l . | (! grep .) && GOWORK=off $(GO) vet ./... && \
		GOWORK=off $(GOBIN)/staticcheck ./... && \
		GOWORK=off $(GO) test -count=1 -timeout 30m ./...

# Tests without the race detector (faster while developing).
unit:
	$(GO) test -count=1 $(PKGS)

# Micro-benchmarks, benchstat-friendly.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

# A bounded run of every fuzz target (FUZZTIME each). A target that made no
# progress (0 execs, stuck minimising) fails it; the self-test first checks
# that verdict on the sample logs in scripts/testdata/fuzz/.
fuzz:
	@./scripts/fuzz.sh --self-test
	@./scripts/fuzz.sh $(FUZZTIME)

# The attack suite alone (as root; also part of `make test`): crafted
# datagrams from an attacker on the underlay's L2 and from a peer, an ICMP
# flood; asserts what reached the TUN, the drop counters, and that traffic
# kept flowing.
attack:
	$(GO) test -race -count=1 -run 'TestAttack' -v ./fastpath/

# The demo: three node namespaces (two vxtun, one kernel vxlan) behind a
# bridge in a fourth, a pod behind cni0 on each (CNI bridge + host-local),
# ping and TCP across every pair of pods, then teardown.
demo: deps build
	$(GO) run ./cmd/vxdemo -vxtun $(CURDIR)/bin/vxtun

# End-to-end benchmark: veth, kernel vxlan, vxtun VXLAN, vxtun legacy UDP,
# alternating, ratios to kernel vxlan; writes bench/RESULTS.md.
bench-e2e: deps build
	$(GO) run ./cmd/vxbench

# A short bounded run of the harness (checks it works, not the speed).
bench-e2e-smoke: deps build
	$(GO) run ./cmd/vxbench -quick -strict

clean:
	rm -rf bin
