#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cluster-test -s (shard ownership) with the static engine, which gives a
# fixed assignment: with -I INDEX -T TOTAL an instance owns the shards s
# with floor(s * TOTAL / S) in its worker range, token 1. Checks the -J
# lines (one per shard, read live from a file and from a pipe, mono_ns
# comparable between two processes), the releases of a clean leave, and
# the compact text ranges without -J.

. "${top_srcdir:-.}/tests/test_cli_lib.sh"

# The -J lines these runs can print, whole lines with the documented key
# order. Shards and tokens are checked apart; this only proves the shape.
RE_SHARD='^\{"event":"(acquire|release)","shard":[0-9]+,"token":[0-9]+,"mono_ns":[0-9]+\}$'
RE_REBALANCE='^\{"event":"rebalance","index":-?[0-9]+,"workers":[0-9]+,"total":[0-9]+,"passive":(true|false),"mono_ns":[0-9]+\}$'

# json_only FILE: every line of FILE is a complete shard or rebalance event.
json_only()
{
	bad=$(grep -v -E -e "$RE_SHARD" -e "$RE_REBALANCE" "$1")
	[ -z "$bad" ] || fail "$(basename "$1"): not an expected JSON event line: $bad" || return
	# the last line is complete (ends in a newline)
	[ ! -s "$1" ] || [ "$(tail -c 1 "$1" | od -An -c | tr -d ' ')" = '\n' ] ||
		fail "$(basename "$1"): the last line has no newline"
}

# shards FILE EVENT: FILE's EVENT shards, ascending, on one line.
shards()
{
	sed -n "s/^{\"event\":\"$2\",\"shard\":\([0-9]*\),.*/\1/p" "$1" | sort -n | tr '\n' ' '
}

# expect_shards FILE EVENT FIRST LAST: FILE has exactly one EVENT line for
# each of the shards FIRST..LAST and no other, each with token 1.
expect_shards()
{
	got=$(shards "$1" "$2")
	want=$(seq "$3" "$4" | tr '\n' ' ')
	[ "$got" = "$want" ] || fail "$(basename "$1"): $2 shards '$got', expected '$want'" || return
	other=$(grep -E "^\{\"event\":\"$2\"," "$1" | grep -v -E '"token":1,"mono_ns":[0-9]+\}$')
	[ -z "$other" ] || fail "$(basename "$1"): $2 without token 1: $other"
}

# mono FILE EVENT min|max: the smallest or largest mono_ns of EVENT lines.
mono()
{
	sed -n "s/^{\"event\":\"$2\",.*\"mono_ns\":\([0-9]*\)}$/\1/p" "$1" | sort -n | {
		if [ "$3" = min ]; then head -n 1; else tail -n 1; fi
	}
}

# stop_json TAG PID SIGNAL: send SIGNAL and expect a clean leave (exit 0).
stop_json()
{
	kill "-$3" "$2"
	wait_exit "$2"
	[ "$rc" -eq 0 ] || fail "$1 exited with $rc after SIG$3" || return
	exact "$1" 'cluster-test: successfully left the cluster'
}

# Two instances share 10 shards: node0 (-I 0 -T 2) writes to a file and
# owns 0-4; node1 (-I 1 -T 2) writes to a pipe read by cat and owns 5-9.
# Both are checked while running (so each callback's lines were flushed
# when it returned), then they leave one after the other and release what
# they owned; the mono_ns values order the two processes' events.
case_json_two_instances()
{
	mkfifo "$WORK/pipe" || fail "mkfifo" || return
	cat "$WORK/pipe" >"$WORK/live.json" &
	reader=$!
	pids="$pids $reader"
	start_ct node0 -J -s 10 -i node0 -I 0 -T 2; p0=$pid
	"$CT" -J -s 10 -i node1 -I 1 -T 2 >"$WORK/pipe" 2>"$WORK/node1.err" </dev/null &
	p1=$!
	pids="$pids $p1"
	joined node0 && joined node1 || return
	wait_for "$WORK/node0.out" '"shard":4,' || fail "node0: no acquire of shard 4 while running" || return
	wait_for "$WORK/live.json" '"shard":9,' || fail "node1: no acquire of shard 9 read from the pipe" || return
	json_only "$WORK/node0.out" && json_only "$WORK/live.json" || return
	expect_shards "$WORK/node0.out" acquire 0 4 && expect_shards "$WORK/live.json" acquire 5 9 || return
	[ -z "$(shards "$WORK/node0.out" release)$(shards "$WORK/live.json" release)" ] ||
		fail "a shard was released before the leave" || return
	has "$WORK/node0.out" '^\{"event":"rebalance","index":0,"workers":1,"total":2,"passive":false,"mono_ns":[0-9]+\}$' ||
		fail "node0: no rebalance event for index 0 of 2" || return
	# -J moves the events off stderr; the messages stay there
	! has "$WORK/node0.err" '^(cluster-test: (acquire|release|cluster has re-balanced:)|   )' ||
		fail "node0: an event was printed as text on stderr" || return

	stop_json node0 "$p0" TERM || return
	stop_json node1 "$p1" INT || return
	wait "$reader"
	json_only "$WORK/node0.out" && json_only "$WORK/live.json" || return
	expect_shards "$WORK/node0.out" release 0 4 && expect_shards "$WORK/live.json" release 5 9 || return
	# one clock for both processes: node1 acquired before node0 was told
	# to leave, and node0 released before node1 was
	a0=$(mono "$WORK/node0.out" acquire max)
	r0=$(mono "$WORK/node0.out" release min)
	a1=$(mono "$WORK/live.json" acquire max)
	r1=$(mono "$WORK/live.json" release min)
	[ "$a0" -le "$r0" ] || fail "node0 released ($r0) before it acquired ($a0)" || return
	[ "$a1" -lt "$r0" ] || fail "node1's acquire ($a1) is not before node0's release ($r0)" || return
	[ "$r0" -lt "$r1" ] || fail "node0's release ($r0) is not before node1's ($r1)" || return
	# every release line comes after every acquire line
	last_acquire=$(grep -n '"event":"acquire"' "$WORK/node0.out" | tail -n 1 | cut -d: -f1)
	first_release=$(grep -n '"event":"release"' "$WORK/node0.out" | head -n 1 | cut -d: -f1)
	[ "$last_acquire" -lt "$first_release" ] || fail "node0: a release line before an acquire line"
}

# One line per shard: 333 acquisitions, then 333 releases on SIGINT.
case_json_one_line_per_shard()
{
	start_ct many -J -s 1000 -i many -I 1 -T 3
	joined many || return
	wait_for "$WORK/many.out" '"shard":666,' || fail "no acquire of shard 666" || return
	expect_shards "$WORK/many.out" acquire 334 666 || return
	stop_json many "$pid" INT || return
	json_only "$WORK/many.out" || return
	expect_shards "$WORK/many.out" release 334 666 || return
	n=$(grep -c -E "$RE_SHARD" "$WORK/many.out")
	[ "$n" -eq 666 ] || fail "$n shard lines, expected 333 + 333"
}

# Without -J: one line per token, consecutive shards as a range, on stderr.
case_text_ranges()
{
	start_ct text -s 1000 -i text -I 1 -T 3
	joined text || return
	exact text 'cluster-test: acquire 334-666 (token 1)' || return
	! grep -q 'release' "$WORK/text.err" || fail "released before the leave" || return
	stop_json text "$pid" TERM || return
	exact text 'cluster-test: release 334-666 (token 1)' || return
	# the release is printed during the leave, before it is reported done
	order=$(grep -n -x -e 'cluster-test: will now leave the cluster' \
		-e 'cluster-test: release 334-666 (token 1)' \
		-e 'cluster-test: successfully left the cluster' "$WORK/text.err" | cut -d: -f2- | tr '\n' '|')
	[ "$order" = "cluster-test: will now leave the cluster|cluster-test: release 334-666 (token 1)|cluster-test: successfully left the cluster|" ] ||
		fail "release not printed during the leave: $order" || return
	[ ! -s "$WORK/text.out" ] || fail "wrote to stdout without -J"
}

# The largest shard count: a thousandth of it each.
case_text_max_shards()
{
	start_ct max -s 1000000 -i max -I 0 -T 1000
	joined max || return
	exact max 'cluster-test: acquire 0-999 (token 1)' || return
	stop_json max "$pid" INT || return
	exact max 'cluster-test: release 0-999 (token 1)'
}

for c in json_two_instances json_one_line_per_shard text_ranges text_max_shards; do
	run_case "$c" "case_$c"
done
finish
