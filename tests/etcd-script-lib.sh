# SPDX-License-Identifier: Apache-2.0
# Helpers shared by the linear shell tests that run a private etcd
# (test_cli_etcd.sh, test_cli_gateway.sh, test_cli_gateway_tcp.sh):
# sourced, not a test. Unlike test_cli_lib.sh (independent cases that
# each return a verdict), these scripts are one story and stop at the
# first failure. Before sourcing, a script sets NAME (its work directory's
# prefix) and may set NEEDS: what it requires besides etcd and the
# harness, as the names of the program variables below (CT GWB TH) and
# of tools on PATH (curl jq chromium). Afterwards it has:
#   H, CT, GWB, TH, MULT    the harness, the programs, the multiplier
#   WORK, pids              a scratch directory and the PIDs to kill at exit
#   fail MSG                print MSG, each WORK/*.err (and WORK/body) and
#                           etcd's log tail, then exit 1
#   tenths SECONDS          SECONDS x the multiplier in tenths (polling)
#   wait_gone PID SECONDS   0 once PID has exited, 1 if still running
# The exit trap kills what the script started, by PID, stops its etcd
# (WORK/etcd) and removes WORK. Skips (77) when etcd is not installed and
# CLUSTER_REQUIRE_ETCD is unset.

: "${top_builddir:=.}"
H="$top_builddir/tests/etcd-harness"
CT="$top_builddir/cluster-test/cluster-test"
GWB="$top_builddir/cluster-gateway/cluster-gateway"
TH="$top_builddir/tests/tcp-helper"
MULT="${CLUSTER_TEST_TIMEOUT_MULTIPLIER:-1}"

"$H" available
case $? in
0) ;;
77) echo "SKIP: etcd is not installed (Debian package etcd-server)"; exit 77 ;;
*) echo "FAIL: etcd is required (CLUSTER_REQUIRE_ETCD) but not installed"; exit 1 ;;
esac
for need in $NEEDS; do
	case $need in
	CT | GWB | TH)
		eval "prog=\$$need"
		[ -x "$prog" ] || { echo "FAIL: not built: $prog"; exit 1; }
		;;
	*) command -v "$need" >/dev/null 2>&1 || { echo "FAIL: $need is required (./bootstrap installs it)"; exit 1; } ;;
	esac
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/$NAME.XXXXXX") || exit 1
pids=""

cleanup()
{
	# only what this script started, by PID
	for p in $pids; do
		kill -KILL "$p" 2>/dev/null
	done
	"$H" stop "$WORK/etcd" >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail()
{
	echo "FAIL: $*"
	for f in "$WORK"/*.err "$WORK/body"; do
		[ -s "$f" ] || continue
		echo "--- $(basename "$f"):"
		sed 's/^/  | /' "$f" | tail -30
	done
	"$H" log "$WORK/etcd" 10
	exit 1
}

# Tenths of a second in BASE seconds x the multiplier (polling loops).
tenths()
{
	awk -v b="$1" -v m="$MULT" 'BEGIN { v = b * m * 10 + 0.5; if (v < 1) v = 1; printf "%d\n", v }'
}

wait_gone()
{
	n=$(tenths "$2")
	while kill -0 "$1" 2>/dev/null && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	! kill -0 "$1" 2>/dev/null
}
