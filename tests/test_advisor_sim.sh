#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The connection-advisor simulator (bench/advisor-sim) meets every goal
# with the library as built, and its verdicts can fail: with the plan
# deliberately broken (10% more moves than advised), the pick herding
# (everyone on the least-loaded member) or each picker claiming every
# room as if it were the only one, it reports FAIL and exits 1.
# Under ThreadSanitizer (check-tsan sets CLUSTER_TEST_SANITIZER=thread) the
# simulator, which runs no threads, is 40 times slower for nothing TSan
# could find: it runs --quick and without the --break runs, which the
# plain and ASan suites run in full.
set -u
sim=./bench/advisor-sim
quick=
[ "${CLUSTER_TEST_SANITIZER:-}" = thread ] && quick=--quick
out=${TMPDIR:-/tmp}/advisor-sim.$$
trap 'rm -f "$out"' EXIT
fail=0

if ! "$sim" $quick > "$out" 2>&1; then
	echo "FAIL: advisor-sim reports a failed goal:"
	grep -E 'FAIL|^###' "$out"
	fail=1
else
	grep -E '^overall' "$out"
fi
if [ -n "$quick" ]; then
	echo "ok: ThreadSanitizer build: --quick, no --break runs"
	exit $fail
fi
for b in moves herd claim; do
	only=
	[ "$b" = claim ] && only=--only=arrivals # the scenario it shows in
	if "$sim" --break="$b" $only > "$out" 2>&1; then
		echo "FAIL: advisor-sim --break=$b passed every goal: a verdict that cannot fail"
		fail=1
	elif ! grep -q 'FAIL' "$out"; then
		echo "FAIL: advisor-sim --break=$b exited non-zero without a FAIL verdict"
		fail=1
	else
		echo "ok: --break=$b fails $(grep -c FAIL "$out") verdict line(s)"
	fi
done
exit $fail
