# SPDX-License-Identifier: Apache-2.0
# Helpers shared by the tests/test_cli_*.sh scripts (sourced, not a test).
#
# Each test script defines one small function per case and calls
# `run_case NAME FUNCTION`; `finish` prints the summary and exits 0 when
# every case passed, 1 otherwise. A case fails by returning non-zero after
# saying why with `fail`; it may call `skip` to be counted as skipped.

: "${top_builddir:=.}"
CT="$top_builddir/cluster-test/cluster-test"
MULT="${CLUSTER_TEST_TIMEOUT_MULTIPLIER:-1}"

passed=0
failed=0
skipped=0
pids=""

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cli-test.XXXXXX") || exit 99

cleanup()
{
	# only the processes this script started, by PID
	for p in $pids; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

if [ ! -x "$CT" ]; then
	echo "cluster-test not built: $CT"
	exit 99
fi

# seconds BASE scaled by CLUSTER_TEST_TIMEOUT_MULTIPLIER (may be fractional)
scaled()
{
	awk -v b="$1" -v m="$MULT" 'BEGIN { v = b * m; if (v < 1) v = 1; printf "%d\n", v + 0.999 }'
}

fail()
{
	echo "    FAIL: $*"
	return 1
}

skip()
{
	echo "    SKIP: $*"
	return 77
}

run_case()
{
	name=$1
	shift
	echo "--- $name"
	"$@"
	rc=$?
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		echo "    ok"
	elif [ $rc -eq 77 ]; then
		skipped=$((skipped + 1))
	else
		failed=$((failed + 1))
		for f in "$WORK"/*.err; do
			[ -f "$f" ] || continue
			echo "    --- $(basename "$f"):"
			sed 's/^/    | /' "$f"
		done
	fi
	rm -f "$WORK"/*.out "$WORK"/*.err
}

finish()
{
	echo "$(basename "$0"): $passed passed, $failed failed, $skipped skipped"
	[ $failed -eq 0 ] || exit 1
	# a skipped case is not a pass: the script is reported as skipped
	[ $skipped -eq 0 ] || exit 77
	exit 0
}

# run_ct TAG ARGS...: run cluster-test in the foreground, bounded by a
# deadline (a wrongly accepted option would otherwise join and sleep for
# ever). stdout/stderr land in $WORK/TAG.out and $WORK/TAG.err; the exit
# code is in $rc (124/137 = killed by the deadline).
run_ct()
{
	tag=$1
	shift
	timeout -s KILL "$(scaled 10)" "$CT" "$@" >"$WORK/$tag.out" 2>"$WORK/$tag.err" </dev/null
	rc=$?
}

# start_ct TAG ARGS...: run cluster-test in the background; its PID is in
# $pid (and remembered for cleanup).
start_ct()
{
	tag=$1
	shift
	"$CT" "$@" >"$WORK/$tag.out" 2>"$WORK/$tag.err" </dev/null &
	pid=$!
	pids="$pids $pid"
}

# wait_for FILE REGEX [SECONDS]: poll FILE until a line matches REGEX or
# the (scaled) deadline passes.
wait_for()
{
	deadline=$(( $(date +%s) + $(scaled "${3:-10}") ))
	while ! grep -q -E -e "$2" "$1" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			return 1
		fi
		sleep 0.1
	done
	return 0
}

# proc_state PID: the process's state letter (Z = zombie), empty when it
# is gone. /proc on Linux, ps elsewhere.
proc_state()
{
	if [ -d /proc/self ]; then
		sed -n 's/^.*) \(.\).*$/\1/p' "/proc/$1/stat" 2>/dev/null
	else
		ps -o stat= -p "$1" 2>/dev/null
	fi
}

# wait_exit PID [SECONDS]: wait for a background child, killing it if it
# outlives the (scaled) deadline; its exit code is in $rc. Polls the
# process state rather than arming a sleeping watchdog.
wait_exit()
{
	deadline=$(( $(date +%s) + $(scaled "${2:-10}") ))
	while :; do
		st=$(proc_state "$1")
		case "$st" in
		''|Z*) break ;;
		esac
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "    (pid $1 outlived its deadline; killed)"
			kill -KILL "$1" 2>/dev/null
			break
		fi
		sleep 0.1
	done
	wait "$1"
	rc=$?
}

# joined TAG: wait until the instance says it is sleeping.
joined()
{
	wait_for "$WORK/$1.err" '^cluster-test: cluster joined; sleeping until terminated$' ||
		fail "$1 did not report joining in time"
}

# exact TAG LINE: stderr of TAG has exactly LINE.
exact()
{
	grep -q -x -F -e "$2" "$WORK/$1.err" || fail "$1: no line '$2'"
}

# has FILE REGEX: FILE has a line matching the extended REGEX.
has()
{
	grep -q -E -e "$2" "$1"
}
