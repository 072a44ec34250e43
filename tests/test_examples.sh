#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The programs in examples/, run for real so that they never rot:
# static-cluster alone (its output, and its refusals); shard-worker with
# the static engine, then two of them against a private etcd sharing 8
# shards (each shard owned once, all 8 owned, the survivor takes the
# leaver's shards with higher fencing tokens, clean exits on SIGTERM);
# ws-server against the same etcd (its load reported as clients come, a
# SIGTERM drains it: the advisor sends its clients to the other server,
# each told "redirect ADDRESS", and it exits 0).
# The etcd cases are skipped when etcd is not installed (and
# CLUSTER_REQUIRE_ETCD is unset).

. "${top_srcdir:-.}/tests/test_cli_lib.sh"

H="$top_builddir/tests/etcd-harness"
EX="$top_builddir/examples"
ALL8="0 1 2 3 4 5 6 7 "

for p in "$EX/static-cluster" "$EX/shard-worker" "$EX/ws-server" "$H"; do
	[ -x "$p" ] || { echo "not built: $p"; exit 99; }
done

"$H" available
etcd=$?
ENDPOINT=""
if [ $etcd -eq 0 ]; then
	ENDPOINT=$("$H" start "$WORK/etcd") || { echo "FAIL: cannot start etcd"; exit 1; }
	echo "etcd at $ENDPOINT"
	trap '"$H" stop "$WORK/etcd" >/dev/null 2>&1; cleanup' EXIT
fi

# need_etcd: skip (etcd missing) or fail (missing but required).
need_etcd()
{
	case $etcd in
	0) return 0 ;;
	77) skip "etcd is not installed (Debian package etcd-server)" ;;
	*) fail "etcd is required (CLUSTER_REQUIRE_ETCD) but not installed" ;;
	esac
}

# start_ex TAG PROGRAM ARGS...: an example in the background, stdout and
# stderr together in $WORK/TAG.err (what run_case shows when a case
# fails); its PID in $pid.
start_ex()
{
	tag=$1
	prog=$2
	shift 2
	"$EX/$prog" "$@" >"$WORK/$tag.err" 2>&1 </dev/null &
	pid=$!
	pids="$pids $pid"
}

# stop_ex TAG PID: SIGTERM, and expect exit 0 after "left the cluster".
stop_ex()
{
	kill -TERM "$2"
	wait_exit "$2" 30
	[ "$rc" -eq 0 ] || fail "$1 exited with $rc after SIGTERM" || return
	exact "$1" 'left the cluster'
}

# await SECONDS COMMAND...: poll COMMAND until it succeeds or the (scaled)
# deadline passes.
await()
{
	deadline=$(($(date +%s) + $(scaled "$1")))
	shift
	until "$@"; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# owned TAG: the shards TAG holds now (acquired and not released since),
# ascending, each followed by a space.
owned()
{
	awk '$1 == "acquire" && $2 == "shard" { o[$3] = 1 }
		$1 == "release" && $2 == "shard" { delete o[$3] }
		END { for(s in o) print s }' "$WORK/$1.err" | sort -n | tr '\n' ' '
}

# owns TAG SHARDS: TAG holds exactly SHARDS (as owned prints them).
owns()
{
	[ "$(owned "$1")" = "$2" ]
}

# split4 A B: A and B hold four shards each, together all 8, none twice.
split4()
{
	a=$(owned "$1")
	b=$(owned "$2")
	# shellcheck disable=SC2086
	[ "$(echo $a | wc -w)" -eq 4 ] && [ "$(echo $b | wc -w)" -eq 4 ] &&
		[ "$(printf '%s\n' $a $b | sort -n | tr '\n' ' ')" = "$ALL8" ]
}

# run_static ARGS...: static-cluster in the foreground (bounded), its
# output in $WORK/static.err, its exit code in $rc.
run_static()
{
	timeout -s KILL "$(scaled 10)" "$EX/static-cluster" "$@" >"$WORK/static.err" 2>&1 </dev/null
	rc=$?
}

case_static_cluster()
{
	run_static 2 5
	[ "$rc" -eq 0 ] || fail "static-cluster 2 5: exit $rc" || return
	printf '%s\n' 'balancer: index 2, workers 1, total 5' 'joined: worker 2 of 5' \
		'balancer: index -1, workers 1, total 5' 'left the cluster' >"$WORK/want"
	cmp -s "$WORK/want" "$WORK/static.err" || fail "static-cluster 2 5: not the expected four lines" || return
	# INDEX >= TOTAL: the join refuses it and cluster_errmsg() says why
	run_static 5 5
	[ "$rc" -eq 1 ] || fail "static-cluster 5 5: exit $rc, expected 1" || return
	has "$WORK/static.err" '^static-cluster: cluster_join: .*index \(5\) is not less than .* \(5\)$' ||
		fail "static-cluster 5 5: the reason is not given" || return
	run_static 1 0
	[ "$rc" -eq 1 ] || fail "static-cluster 1 0: exit $rc, expected 1" || return
	has "$WORK/static.err" '^static-cluster: .*total 0 is invalid' || fail "static-cluster 1 0: the reason is not given" || return
	run_static 1
	[ "$rc" -eq 2 ] || fail "static-cluster 1: exit $rc, expected 2 (usage)"
}

# The static engine: the only instance owns every shard, token 1, and
# releases them all when it leaves.
case_shard_worker_static()
{
	start_ex alone shard-worker - 8
	await 10 owns alone "$ALL8" || fail "the static worker did not acquire all 8 shards" || return
	await 10 has "$WORK/alone.err" '^work shard 7 token 1$' || fail "no work on shard 7" || return
	! grep -E '^(acquire|release) ' "$WORK/alone.err" | grep -v -q ' token 1$' || fail "a token other than 1" || return
	stop_ex alone "$pid" || return
	owns alone "" || fail "still owns $(owned alone) after leaving"
}

case_shard_workers_etcd()
{
	need_etcd || return
	start_ex w1 shard-worker "$ENDPOINT" 8
	p1=$pid
	await 10 owns w1 "$ALL8" || fail "w1 alone: owns '$(owned w1)', expected all 8" || return
	# the environment variable names the registry when argv does not
	CLUSTER_REGISTRY="$ENDPOINT" "$EX/shard-worker" >"$WORK/w2.err" 2>&1 </dev/null &
	p2=$!
	pids="$pids $p2"
	await 10 split4 w1 w2 || fail "w1 owns '$(owned w1)', w2 owns '$(owned w2)': not 4 + 4 of 8, each once" || return
	stop_ex w1 "$p1" || return
	owns w1 "" || fail "w1 left still owning $(owned w1)" || return
	await 10 owns w2 "$ALL8" || fail "after w1 left, w2 owns '$(owned w2)', expected all 8" || return
	# fencing: every shard w2 took from w1 came with a higher token
	bad=$(awk 'FNR == 1 { f++ }
		f == 1 && $1 == "release" { t[$3] = $5 }
		f == 2 && $1 == "acquire" && ($3 in t) && $5 + 0 <= t[$3] + 0 { printf " %s", $3 }' \
		"$WORK/w1.err" "$WORK/w2.err")
	[ -z "$bad" ] || fail "w2 acquired shards$bad without a higher token than w1's" || return
	has "$WORK/w2.err" '^work shard [0-9] token [0-9]+$' || fail "w2 did no work" || return
	stop_ex w2 "$p2" || return
	owns w2 "" || fail "w2 left still owning $(owned w2)"
}

# client TAG PORT: a client that holds a connection and records what the
# server sends until it closes the connection (bash's /dev/tcp).
client()
{
	bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && cat <&3' client "$2" >"$WORK/$1.txt" 2>&1 </dev/null &
	pids="$pids $!"
}

# port TAG: the port ws-server TAG listens on.
port()
{
	sed -n 's|^listening on ws://127\.0\.0\.1:\([0-9]*\) as .*|\1|p' "$WORK/$1.err"
}

case_ws_server_etcd()
{
	need_etcd || return
	command -v bash >/dev/null 2>&1 || skip "bash is needed for its /dev/tcp clients" || return
	start_ex wsa ws-server "$ENDPOINT"
	pa=$pid
	start_ex wsb ws-server "$ENDPOINT"
	pb=$pid
	await 10 has "$WORK/wsa.err" '^listening on ' && await 10 has "$WORK/wsb.err" '^listening on ' ||
		fail "the servers did not start" || return
	porta=$(port wsa)
	portb=$(port wsb)
	for k in 1 2 3; do
		client "c$k" "$porta"
	done
	await 10 has "$WORK/wsa.err" '^reported load 3, capacity 64$' || fail "wsa did not report its 3 clients" || return
	for k in 1 2 3; do
		await 10 has "$WORK/c$k.txt" "^hello ws://127\.0\.0\.1:$porta\$" || fail "c$k was not greeted" || return
	done
	# SIGTERM drains wsa (capacity 0): the next advice round (every 5 s)
	# moves its 3 clients to wsb; then it leaves by itself
	kill -TERM "$pa"
	wait_exit "$pa" 20
	[ "$rc" -eq 0 ] || fail "wsa exited with $rc after SIGTERM" || return
	exact wsa 'reported load 3, capacity 0' && exact wsa "advice: move 3 clients to ws://127.0.0.1:$portb" &&
		exact wsa 'leaving with 0 clients' && exact wsa 'left the cluster' || return
	for k in 1 2 3; do
		await 10 has "$WORK/c$k.txt" "^redirect ws://127\.0\.0\.1:$portb\$" || fail "c$k was not redirected to wsb" || return
	done
	# wsb holds no client: it drains at once
	stop_ex wsb "$pb"
}

run_case "static-cluster: index and total from argv, refusals" case_static_cluster
run_case "shard-worker, static engine: all 8 shards, token 1" case_shard_worker_static
run_case "shard-worker x2 on etcd: 8 shards split, handed over on SIGTERM" case_shard_workers_etcd
run_case "ws-server x2 on etcd: load reported, SIGTERM drains through the advisor" case_ws_server_etcd
finish
