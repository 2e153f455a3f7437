#!/usr/bin/env bash
# Installs what vxtun's build, tests, demo and benchmarks need on a fresh
# Debian machine: iproute2, iperf3, ping, tcpdump, ethtool, iptables (nft
# backend), nftables, wireguard-tools (wg, for the benchmark's wireguard-go
# peer) (apt-get), staticcheck and the CNI reference plugins
# bridge and host-local (Go module proxy; the plugins go to CNI_BIN_DIR,
# outside the repository, where internal/nettest looks for them), and
# mounts tracefs when it is missing (the benchmark's wake-up rows). Installs
# only what is missing; safe to run repeatedly.
set -euo pipefail

STATICCHECK_VERSION=v0.8.2
CNI_PLUGINS_VERSION=v1.10.0 # keep in step with nettest.CNIPluginsVersion
CNI_BIN_DIR=${VXTUN_CNI_PATH:-/var/cache/vxtun-test/cni/bin}

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
command -v make >/dev/null 2>&1 || need+=(make)
command -v ethtool >/dev/null 2>&1 || need+=(ethtool)
# hostnet's forward-accept tests: iptables-nft (a FORWARD policy of DROP as
# Docker leaves it) and nft (to read the ruleset). vxtun itself needs neither.
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v nft >/dev/null 2>&1 || need+=(nftables)
# The end-to-end benchmark's wireguard-go row configures its devices with wg.
command -v wg >/dev/null 2>&1 || need+=(wireguard-tools)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing ${need[*]}; run as root or apt-get install them" >&2
	else
		echo "deps: apt-get install ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
fi

# The benchmark's wake-up rows and their test read the scheduler through
# tracefs; some machines boot without it mounted.
if [ "$(id -u)" -eq 0 ] && [ ! -d /sys/kernel/tracing/instances ] && [ ! -d /sys/kernel/debug/tracing/instances ]; then
	echo "deps: mount tracefs on /sys/kernel/tracing"
	mount -t tracefs nodev /sys/kernel/tracing || echo "deps: cannot mount tracefs: the wake-up rows will be n/a" >&2
fi

gobin="$(go env GOPATH)/bin"
if [ ! -x "$gobin/staticcheck" ]; then
	echo "deps: go install staticcheck@$STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
if [ ! -x "$CNI_BIN_DIR/bridge" ] || [ ! -x "$CNI_BIN_DIR/host-local" ]; then
	echo "deps: go install containernetworking/plugins bridge, host-local@$CNI_PLUGINS_VERSION into $CNI_BIN_DIR"
	mkdir -p "$CNI_BIN_DIR"
	# Outside this module, so its go.mod does not take part.
	(cd / && GOBIN="$CNI_BIN_DIR" GOFLAGS=-buildvcs=false go install \
		"github.com/containernetworking/plugins/plugins/main/bridge@$CNI_PLUGINS_VERSION" \
		"github.com/containernetworking/plugins/plugins/ipam/host-local@$CNI_PLUGINS_VERSION")
fi
go mod download
