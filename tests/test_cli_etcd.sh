#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cluster-test against a private etcd: the README's three-node cluster
# (node1 -n 2, node2, node3 -n 4 -> bases 0, 2, 3, total 7) with the
# member listing (`*` marks self, bases in brackets), SIGTERM and SIGINT
# leaves and the re-balancing they cause, a passive watcher, a duplicate
# id, a bad registry URI, a dead endpoint and a name that does not
# resolve; the one-shot listing -l (table and JSON lines); leaving while
# etcd is frozen; no debug lines without -v.
# Exit 0 pass, 1 fail, 77 skip (etcd not installed, CLUSTER_REQUIRE_ETCD unset).

NAME=cli-etcd
NEEDS="CT jq"
. "${top_srcdir:-.}/tests/etcd-script-lib.sh"
KEY="clitest$$"
TTL=3

# index and total of the last "cluster has re-balanced:" block in FILE
last_state()
{
	awk '/cluster has re-balanced:/ { i = ""; t = "" }
		/first worker index:/ { i = $NF }
		/total cluster worker count:/ { t = $NF }
		END { print i " " t }' "$1"
}

# wait_state NAME INDEX TOTAL SECONDS: NAME's last callback says so
wait_state()
{
	n=$(tenths "$4")
	while [ "$n" -gt 0 ]; do
		[ "$(last_state "$WORK/$1.err")" = "$2 $3" ] && return 0
		sleep 0.1
		n=$((n - 1))
	done
	fail "$1: last re-balance is '$(last_state "$WORK/$1.err")', expected '$2 $3'"
}

# wait_line NAME FIXED-STRING SECONDS
wait_line()
{
	n=$(tenths "$3")
	while [ "$n" -gt 0 ]; do
		grep -qF -- "$2" "$WORK/$1.err" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	fail "$1: no line '$2'"
}

# start NAME ARGS...: cluster-test in the background, stderr to NAME.err
start()
{
	name=$1
	shift
	"$CT" -k "$KEY" -r "$ENDPOINT" -t "$TTL" -v "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	eval "pid_$name=$!"
	pids="$pids $!"
}

# stop NAME SIGNAL: send it, wait (bounded) for a clean exit 0
stop()
{
	eval "p=\$pid_$1"
	kill -"$2" "$p"
	wait_gone "$p" 5 || fail "$1 did not exit after SIG$2"
	wait "$p"
	rc=$?
	[ $rc -eq 0 ] || fail "$1 exited with $rc after SIG$2"
	grep -qF "successfully left the cluster" "$WORK/$1.err" || fail "$1 did not report leaving"
}

# run_fg NAME EXPECTED-RC ARGS...: a cluster-test that must exit by itself
run_fg()
{
	name=$1
	want=$2
	shift 2
	"$CT" -k "$KEY" -t "$TTL" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	p=$!
	pids="$pids $p"
	wait_gone "$p" 15 || fail "$name did not exit"
	wait "$p"
	rc=$?
	[ $rc -eq "$want" ] || fail "$name exited with $rc, expected $want"
}

ENDPOINT=$("$H" start "$WORK/etcd") || fail "cannot start etcd"
echo "etcd at $ENDPOINT"

# --- the README's cluster
start node1 -i node1 -n 2
wait_state node1 0 2 5
start node2 -i node2
wait_state node2 2 3 5
start node3 -i node3 -n 4
wait_state node3 3 7 5
wait_line node3 "actively-joined a cluster of 7 workers (our node is workers #3-6)" 5
wait_state node1 0 7 5
wait_state node2 2 7 5
for line in "* node1 [0]" "  node2 [2]" "  node3 [3]"; do
	wait_line node1 "libcluster<7>: $line" 5
done
for line in "  node1 [0]" "* node2 [2]" "  node3 [3]"; do
	wait_line node2 "libcluster<7>: $line" 5
done
echo "ok: node1 -n 2, node2, node3 -n 4 -> bases 0, 2, 3, total 7"
# one worker is "worker #2", not "workers #2-2"; the library's own
# "libcluster: " opening is not printed twice
wait_line node2 "actively-joined a cluster of 3 workers (our node is worker #2)" 0
grep -q "libcluster<[0-9]>: libcluster:" "$WORK/node1.err" && fail "node1: a log line repeats its prefix"
echo "ok: '(our node is worker #2)', log lines without a doubled prefix"

# --- -l: a one-shot listing on stdout (a table, or JSON lines with -J),
# nothing else printed, nothing registered
run_fg list 0 -r "$ENDPOINT" -l
exact_list=$(awk 'NR > 1 && !/^\(/ { print $1, $2, $3 }' "$WORK/list.out" | tr '\n' ';')
[ "$exact_list" = "node1 2 0;node2 1 2;node3 4 3;" ] || fail "-l listed '$exact_list'"
head -1 "$WORK/list.out" | grep -q "^ID *WORKERS *BASE *ADDRESS *LOAD *CAPACITY" || fail "-l: no header"
grep -qxF "(3 members)" "$WORK/list.out" || fail "-l: no '(3 members)' line"
[ -s "$WORK/list.err" ] && fail "-l printed on stderr"
run_fg listj 0 -r "$ENDPOINT" -l -J
ids=$(jq -r '"\(.id):\(.base):\(.workers)"' "$WORK/listj.out" | tr '\n' ' ') || fail "-l -J: not JSON lines"
[ "$ids" = "node1:0:2 node2:2:1 node3:3:4 " ] || fail "-l -J listed '$ids'"
[ "$("$H" count "$WORK/etcd" "/$KEY/")" = 3 ] || fail "-l left a key behind"
echo "ok: -l table and -l -J JSON lines: node1 0 2, node2 2 1, node3 3 4"

# --- without -v no debug line, even while the cluster changes
"$CT" -k "$KEY" -r "$ENDPOINT" -t "$TTL" -i quiet -P >"$WORK/quiet.out" 2>"$WORK/quiet.err" &
pid_quiet=$!
pids="$pids $pid_quiet"
wait_line quiet "passively-joined a cluster of 7 workers" 5

# --- a passive watcher knows the total and changes nobody's numbers
start watcher -i watcher -P
wait_line watcher "passively-joined a cluster of 7 workers" 5
wait_state node1 0 7 0
stop watcher TERM
echo "ok: passive watcher"

# --- a second live node2 is refused
run_fg dup 1 -r "$ENDPOINT" -i node2
grep -qF "failed to join cluster" "$WORK/dup.err" || fail "duplicate: no 'failed to join cluster' line"
wait_state node2 2 7 0
echo "ok: duplicate id refused"

# --- SIGTERM: node1 leaves, the others re-balance
stop node1 TERM
[ "$(last_state "$WORK/node1.err" | cut -d' ' -f1)" = "-1" ] || fail "node1: last callback index is not -1"
wait_state node2 0 5 5
wait_state node3 1 5 5
wait_line node2 "libcluster<7>: * node2 [0]" 5
wait_line node2 "libcluster<7>:   node3 [1]" 5
echo "ok: SIGTERM on node1 -> node2 0, node3 1, total 5"

# --- SIGINT: node2 leaves
stop node2 INT
wait_state node3 0 4 5
echo "ok: SIGINT on node2 -> node3 0, total 4"
wait_state quiet -1 4 5
stop quiet TERM
grep -q "libcluster<7>" "$WORK/quiet.err" && fail "without -v: debug lines printed"
echo "ok: without -v, $(grep -c 'libcluster<' "$WORK/quiet.err") library lines and none of them debug"
stop node3 TERM
[ "$("$H" count "$WORK/etcd" "/$KEY/")" = 0 ] || fail "keys left in etcd after everyone left"

# --- leaving while etcd is frozen says so (it once said "successfully
# left"), within the one-second leave budget, and exits 0
start lonely -i lonely
wait_state lonely 0 1 5
"$H" pause "$WORK/etcd" || fail "cannot pause etcd"
kill -TERM "$pid_lonely"
wait_gone "$pid_lonely" 5 || fail "lonely did not exit while etcd was frozen"
wait "$pid_lonely" || fail "lonely exited with $? while etcd was frozen"
"$H" resume "$WORK/etcd" || fail "cannot resume etcd"
grep -qF "left; the registry was unreachable (the registry did not answer in time), the registration expires within $TTL s" \
	"$WORK/lonely.err" || fail "lonely: no 'left; the registry was unreachable' line"
grep -qF "successfully left" "$WORK/lonely.err" && fail "lonely: 'successfully left' with etcd frozen"
echo "ok: leave with etcd frozen: 'left; the registry was unreachable (...), the registration expires within $TTL s'"

# --- bad registry URI and a dead endpoint: exit 1 with the reason
run_fg baduri 1 -r "ftp://127.0.0.1/" -i bad
grep -qi "registry" "$WORK/baduri.err" || fail "bad URI: the reason does not name the registry"
"$H" stop "$WORK/etcd" || fail "cannot stop etcd"
run_fg dead 1 -r "$ENDPOINT" -i dead
grep -qF "failed to join cluster" "$WORK/dead.err" || fail "dead endpoint: no 'failed to join cluster' line"
grep -qF "failed to join cluster: the registry refused the connection" "$WORK/dead.err" || fail "dead endpoint: cause not named"
echo "ok: bad URI and dead endpoint refused"

# --- a name that does not resolve is named as such (it once said
# "Connection refused"): .invalid never resolves (RFC 6761)
run_fg nores 1 -r "http://nosuchhost.invalid:2379/" -i nores
grep -qF "failed to join cluster: the registry's host name could not be resolved" "$WORK/nores.err" ||
	fail "unresolvable name: cause not named"
grep -qF "Could not resolve host: nosuchhost.invalid" "$WORK/nores.err" || fail "unresolvable name: curl's message missing"
echo "ok: unresolvable registry name: 'the registry's host name could not be resolved'"

echo "test_cli_etcd: all passed"
exit 0
