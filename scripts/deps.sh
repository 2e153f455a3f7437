#!/usr/bin/env bash
# Installs what vxtun's build, tests, demo and benchmarks need on a fresh
# Debian machine: iproute2, iperf3, ping, tcpdump, iptables, nftables (apt-get) and staticcheck
# (Go module proxy). Installs only what is missing; safe to run repeatedly.
set -euo pipefail

STATICCHECK_VERSION=v0.8.2

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
command -v make >/dev/null 2>&1 || need+=(make)
# hostnet's forward-accept tests: iptables-nft (a FORWARD policy of DROP as
# Docker leaves it) and nft (to read the ruleset). vxtun itself needs neither.
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v nft >/dev/null 2>&1 || need+=(nftables)
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

gobin="$(go env GOPATH)/bin"
if [ ! -x "$gobin/staticcheck" ]; then
	echo "deps: go install staticcheck@$STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
go mod download
