#!/usr/bin/env bash
# Runs every Fuzz* target in the module for a bounded time each.
#
#   scripts/fuzz.sh [FUZZTIME [PACKAGES]]
#                                fuzz every target (default 10s each) of
#                                PACKAGES (default ./...)
#   scripts/fuzz.sh --self-test  check the log classifier on the sample logs
#                                in scripts/testdata/fuzz/ (make fuzz runs it
#                                first)
#
# Go 1.26's fuzz coordinator can end a -fuzztime run with a bare "context
# deadline exceeded" failure and no failing input (golang/go#75804, fixed in
# Go 1.27). Such a run found nothing: it is retried once, and if it flakes
# again it is reported as a flake, not a failure. Any run that writes a
# failing input, panics or fails otherwise fails this script.
#
# A run only counts (as passed or as flaked) if the fuzzer made progress
# (see no_progress): its progress lines ("fuzz: elapsed: …, execs: N
# (R/sec), …") must end with N > 0 executions that were still rising in the
# second half of the run, not while gathering the baseline or minimising
# ("fuzz: elapsed: …, minimizing"). go test reports PASS for a run whose
# only worker spent it minimising at 0 execs/s
# (scripts/testdata/fuzz/stalled-zero-rate.log). To keep minimising new
# inputs from eating a bounded run, it is capped at FUZZMINIMIZETIME
# (default 1000x, i.e. 1000 executions; a failing input is still written,
# perhaps less minimal). (The seed corpus itself is replayed
# deterministically by plain `go test`.)
set -uo pipefail

# is_deadline_flake LOG: the run failed only with the coordinator's deadline race.
is_deadline_flake() {
	grep -q 'context deadline exceeded' "$1" &&
		! grep -q -e 'Failing input written' -e 'panic:' -e '_test.go:[0-9]*:' "$1"
}

# no_progress LOG: prints why the run made no progress and succeeds, or
# fails (prints nothing) if its progress lines show executions that kept
# rising. No progress: no progress line; the last one still gathering the
# baseline or minimising; a final execs count of 0; or a count that stopped
# rising for the second half of the run (a worker stuck, e.g. minimising an
# input, at 0 execs/s until the deadline).
no_progress() {
	awk '
	function secs(d, t, n, u) {
		t = 0
		while (match(d, /^[0-9]+[hms]/)) {
			n = substr(d, 1, RLENGTH - 1) + 0
			u = substr(d, RLENGTH, 1)
			t += n * (u == "h" ? 3600 : u == "m" ? 60 : 1)
			d = substr(d, RLENGTH + 1)
		}
		return t
	}
	/^fuzz: elapsed: / {
		last = $0
		e = $3
		sub(/,$/, "", e)
		el = secs(e)
		if (match($0, /, execs: [0-9]+ /)) {
			n = substr($0, RSTART + 9, RLENGTH - 10) + 0
			if (!seen || n != execs)
				since = el
			execs = n
			seen = 1
		}
	}
	END {
		if (last == "") {
			print "no fuzzer progress line in the output"
			exit 0
		}
		msg = last
		sub(/^fuzz: /, "", msg)
		if (last ~ /, minimizing$/)
			print "still minimising when the run ended (" msg ")"
		else if (last ~ /gathering baseline coverage|testing seed corpus/)
			print "never got past the seed corpus (" msg ")"
		else if (!seen || last !~ /, execs: /)
			print "unrecognised last progress line (" msg ")"
		else if (execs == 0)
			print "0 executions (" msg ")"
		else if (el - since >= 3 && el - since >= el / 2)
			printf "stuck at %d execs from %ds to %ds, at 0 execs/s (%s)\n", execs, since, el, msg
		else
			exit 1
	}' "$1"
}

# classify RC LOG: prints the outcome of one run that exited with RC:
# "pass", "flake" (the deadline race, progress made: retry), or
# "fail: REASON".
classify() {
	local rc=$1 log=$2 why
	if [ "$rc" -ne 0 ] && ! is_deadline_flake "$log"; then
		echo "fail: go test failed (exit $rc)"
		return
	fi
	if why=$(no_progress "$log"); then
		echo "fail: no progress: $why"
		return
	fi
	if [ "$rc" -eq 0 ]; then
		echo pass
	else
		echo flake
	fi
}

# self_test: classify each sample log of scripts/testdata/fuzz/cases and
# compare with the outcome it lists.
self_test() {
	local dir bad=0 n=0 file rc want got
	dir=$(dirname "$0")/testdata/fuzz
	while read -r file rc want; do
		case $file in '' | '#'*) continue ;; esac
		n=$((n + 1))
		got=$(classify "$rc" "$dir/$file")
		if [ "${got%%:*}" != "$want" ]; then
			echo "fuzz self-test: $file (exit $rc): got \"$got\", want $want"
			bad=$((bad + 1))
		fi
	done <"$dir/cases"
	if [ "$n" -eq 0 ]; then
		echo "fuzz self-test: no cases in $dir/cases"
		return 1
	fi
	echo "fuzz self-test: $((n - bad)) of $n sample logs classified as expected"
	[ "$bad" -eq 0 ]
}

if [ "${1:-}" = --self-test ]; then
	self_test
	exit
fi

fuzztime=${1:-10s}
minimizetime=${FUZZMINIMIZETIME:-1000x}
passed=0 failed=0 flaked=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

for dir in $(go list -f '{{.Dir}}' "${2:-./...}"); do
	pkg=$(go list "$dir")
	for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		result=fail
		for try in 1 2; do
			echo "== $pkg $f ($fuzztime, try $try)"
			go test -run '^$' -fuzz "^$f\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimizetime" "$pkg" >"$log" 2>&1
			outcome=$(classify $? "$log")
			case $outcome in
			pass)
				result=pass
				tail -n 3 "$log"
				break
				;;
			flake)
				cat "$log"
				echo "-- $f: Go fuzz coordinator deadline race (golang/go#75804), no failing input"
				result=flake
				;;
			*)
				cat "$log"
				echo "-- $f: FAIL: ${outcome#fail: }"
				result=fail
				break
				;;
			esac
		done
		case $result in
		pass) passed=$((passed + 1)) ;;
		flake) flaked=$((flaked + 1)) ;;
		*) failed=$((failed + 1)) ;;
		esac
	done
done
echo "fuzz: $passed passed, $failed failed, $flaked flaked (deadline race only)"
[ "$failed" -eq 0 ]
