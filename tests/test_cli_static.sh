#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cluster-test in static mode (no registry): the README's 2/1/4 cluster
# run as three background processes, clean leave on SIGTERM and SIGINT,
# passive join, -F, the advisor options, and -J's rebalance and status
# lines (the shard lines: tests/test_cli_shards.sh).

. "${top_srcdir:-.}/tests/test_cli_lib.sh"

# rebalanced TAG INDEX WORKERS TOTAL: the callback's four lines, with the
# values starting at column 32 as the original printed them.
rebalanced()
{
	exact "$1" 'cluster-test: cluster has re-balanced:' &&
	exact "$1" "   first worker index:         $2" &&
	exact "$1" "   worker count:               $3" &&
	exact "$1" "   total cluster worker count: $4"
}

# stop TAG PID SIGNAL: send SIGNAL, expect exit 0 and the leave lines in order.
stop()
{
	kill "-$3" "$2"
	wait_exit "$2"
	[ "$rc" -eq 0 ] || fail "$1 exited with $rc after SIG$3" || return
	# line numbers of the three leave messages must increase
	order=$(grep -n -x -e 'cluster-test: signal received, will terminate' \
		-e 'cluster-test: will now leave the cluster' \
		-e 'cluster-test: successfully left the cluster' "$WORK/$1.err" | cut -d: -f2- | tr '\n' '|')
	[ "$order" = "cluster-test: signal received, will terminate|cluster-test: will now leave the cluster|cluster-test: successfully left the cluster|" ] ||
		fail "$1: leave messages missing or out of order: $order" || return
	[ ! -s "$WORK/$1.out" ] || fail "$1 wrote to stdout"
}

case_three_nodes()
{
	start_ct node1 -i node1 -n 2 -I 0 -T 7; p1=$pid
	start_ct node2 -i node2 -I 2 -T 7; p2=$pid
	start_ct node3 -i node3 -n 4 -I 3 -T 7; p3=$pid
	joined node1 && joined node2 && joined node3 || return
	rebalanced node1 0 2 7 && rebalanced node2 2 1 7 && rebalanced node3 3 4 7 || return
	exact node1 'cluster-test: actively-joined a cluster of 7 workers (our node is workers #0-1)' &&
	exact node2 'cluster-test: actively-joined a cluster of 7 workers (our node is worker #2)' &&
	exact node3 'cluster-test: actively-joined a cluster of 7 workers (our node is workers #3-6)' || return
	stop node1 "$p1" TERM && stop node2 "$p2" INT && stop node3 "$p3" TERM || return
	# the final callback of a leave reports index -1
	rebalanced node1 -1 2 7
}

case_logger_format()
{
	start_ct log -v -i logger -I 1 -T 2
	joined log || return
	# every line is either ours, a callback value line, or the logger's
	bad=$(grep -v -E -e '^(cluster-test: |   [a-z ]+: +-?[0-9]+$|libcluster<[0-7]>: )' "$WORK/log.err")
	[ -z "$bad" ] || fail "unexpected lines: $bad" || return
	has "$WORK/log.err" '^libcluster<7>: ' || fail "no debug line with -v" || return
	stop log "$pid" INT
}

case_passive()
{
	start_ct passive -P -i watcher -I 0 -T 3
	joined passive || return
	exact passive 'cluster-test: passively-joined a cluster of 3 workers' || return
	! has "$WORK/passive.err" 'actively-joined' || fail "passive instance claims to be active" || return
	stop passive "$pid" INT
}

case_longest_id()
{
	id=$(printf '%0128d' 7)
	start_ct long -i "$id" -n 3 -I 4 -T 7
	joined long || return
	exact long 'cluster-test: actively-joined a cluster of 7 workers (our node is workers #4-6)' || return
	stop long "$pid" TERM
}

case_fork()
{
	run_ct fork -F -i forked -n 2 -I 1 -T 3
	[ "$rc" -eq 0 ] || fail "parent exited with $rc" || return
	child=$(sed -n 's/^cluster-test: forked child process \([0-9][0-9]*\)$/\1/p' "$WORK/fork.err")
	[ -n "$child" ] || fail "parent did not print the child's PID" || return
	pids="$pids $child"
	joined fork || return
	exact fork 'cluster-test: actively-joined a cluster of 3 workers (our node is workers #1-2)' || return
	# the child is not ours to wait for: watch its output instead
	kill -TERM "$child"
	wait_for "$WORK/fork.err" '^cluster-test: successfully left the cluster$' ||
		fail "forked child did not leave after SIGTERM" || return
	# gone: forget its PID so cleanup can never hit a recycled one
	pids=$(printf '%s\n' $pids | grep -v -x -e "$child" | tr '\n' ' ')
}

# self_row TAG ROW: the member table shows this instance as ROW, with the
# status it reported (cluster_members() shows our own last report).
self_row()
{
	grep -q -x -F -e "$2" "$WORK/$1.err" || fail "$1: no line '$2'"
}

case_advisor_status()
{
	start_ct adv -i adv1 -A ws://127.0.0.1:9001 -L 5 -C 10 -S -a -I 0 -T 1
	wait_for "$WORK/adv.err" '(sleeping until terminated|^cluster-test: failed to )' || {
		fail "no outcome in time"; return; }
	has "$WORK/adv.err" '^cluster-test: cluster members \(1\):$' || fail "no member table" || return
	self_row adv '   * adv1 [0] workers 1, address ws://127.0.0.1:9001, load 5, capacity 10' || return
	exact adv 'cluster-test: a new client would be sent to adv1 (ws://127.0.0.1:9001)' || return
	stop adv "$pid" TERM
}

case_draining()
{
	start_ct drain -i drain1 -A ws://127.0.0.1:9002 -L 3 -C 0 -S -I 0 -T 1
	wait_for "$WORK/drain.err" '(sleeping until terminated|^cluster-test: failed to )' || {
		fail "no outcome in time"; return; }
	self_row drain '   * drain1 [0] workers 1, address ws://127.0.0.1:9002, load 3, capacity 0 (draining)' || return
	# the same instance with room (-C 10) is picked in case_advisor_status,
	# so this refusal comes from capacity 0
	exact drain 'cluster-test: no member can take a new client (all draining, full or stale)' || return
	stop drain "$pid" INT
}

# -J: the events as JSON lines on stdout (mono_ns replaced by M to compare),
# the messages on stderr. The address holds the two characters a JSON
# string must escape ('"' and '\'); the library accepts both.
case_json_status()
{
	start_ct js -J -S -i js1 -A 'ws://a"b\c' -L 1 -C 5 -I 0 -T 1
	joined js || return
	wait_for "$WORK/js.out" '"event":"status"' || fail "no status line on stdout" || return
	got=$(grep '"event":"status"' "$WORK/js.out" | sed 's/"mono_ns":[0-9][0-9]*}$/"mono_ns":M}/')
	want='{"event":"status","members":[{"id":"js1","self":true,"passive":false,"base":0,"workers":1,"has_status":true,"address":"ws://a\"b\\c","load":1,"capacity":5}],"pick":{"id":"js1","address":"ws://a\"b\\c"},"mono_ns":M}'
	[ "$got" = "$want" ] || fail "status line: $got" || return
	! has "$WORK/js.err" '^(cluster-test: (cluster members|cluster has re-balanced:|a new client|no member)|   )' ||
		fail "an event was printed as text on stderr" || return
	kill -TERM "$pid"
	wait_exit "$pid"
	[ "$rc" -eq 0 ] || fail "exited with $rc after SIGTERM" || return
	exact js 'cluster-test: successfully left the cluster' || return
	# the join's rebalance, the status, the leave's rebalance (index -1)
	got=$(sed 's/"mono_ns":[0-9][0-9]*}$/"mono_ns":M}/' "$WORK/js.out" | grep -v '"event":"status"' | tr '\n' '|')
	want='{"event":"rebalance","index":0,"workers":1,"total":1,"passive":false,"mono_ns":M}|{"event":"rebalance","index":-1,"workers":1,"total":1,"passive":false,"mono_ns":M}|'
	[ "$got" = "$want" ] || fail "rebalance lines: $got" || return
	[ "$(grep -c '"event":"status"' "$WORK/js.out")" -eq 1 ] || fail "the unchanged table was printed again"
}

for c in three_nodes logger_format passive longest_id fork advisor_status draining json_status; do
	run_case "$c" "case_$c"
done
finish
