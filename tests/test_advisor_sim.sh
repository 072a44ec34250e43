#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The connection-advisor simulator (bench/advisor-sim) meets every goal
# with the library as built, and its verdicts can fail: with the plan
# deliberately broken (10% more moves than advised) or the pick herding
# (everyone on the least-loaded member) it reports FAIL and exits 1.
set -u
sim=./bench/advisor-sim
out=${TMPDIR:-/tmp}/advisor-sim.$$
trap 'rm -f "$out"' EXIT
fail=0

if ! "$sim" > "$out" 2>&1; then
	echo "FAIL: advisor-sim reports a failed goal:"
	grep -E 'FAIL|^###' "$out"
	fail=1
else
	grep -E '^overall' "$out"
fi
for b in moves herd; do
	if "$sim" --break="$b" > "$out" 2>&1; then
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
