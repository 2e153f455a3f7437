#!/usr/bin/env bash
# Runs every Fuzz* target in the module for a bounded time each.
set -euo pipefail
fuzztime=${1:-10s}
status=0
for dir in $(go list -f '{{.Dir}}' ./...); do
	pkg=$(go list "$dir")
	for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "== $pkg $f ($fuzztime)"
		if ! go test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" "$pkg"; then
			status=1
		fi
	done
done
exit $status
