#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The live demo (`make demo`): a private etcd on free loopback ports in a
# temporary directory, three cluster-test instances (node1 -n 2, node2,
# node3 -n 4 -> bases 0, 2, 3, total 7), node1 stopped with SIGTERM, the
# others re-balancing (node2 0, node3 1, total 5). Then the connection
# advisor after a rolling deploy: three full WebSocket-style servers and a
# new empty one; new clients are sent to the new one and each full server
# is advised to redirect its surplus there; cluster-gateway sends HTTP
# clients there too. Last, cluster-gateway's TCP proxy in front of two
# echo servers of capacities 100 and 300. Everything it starts is
# stopped by PID at the end, whatever happens. Exits non-zero if the
# expected figures do not appear.

here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$here/..}"
H="$top_builddir/tests/etcd-harness"
CT="$top_builddir/cluster-test/cluster-test"
GWB="$top_builddir/cluster-gateway/cluster-gateway"
TH="$top_builddir/tests/tcp-helper"
KEY=demo
TIMEOUT=10

for p in "$H" "$CT" "$GWB" "$TH"; do
	if [ ! -x "$p" ]; then
		echo "demo: $p is not built; run 'make demo'" >&2
		exit 1
	fi
done
"$H" available
case $? in
0) ;;
*) echo "demo: etcd is not installed (Debian: apt-get install etcd-server)" >&2; exit 1 ;;
esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/libcluster-demo.XXXXXX") || exit 1
pids=""
cleanup()
{
	for p in $pids; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $pids; do
		wait "$p" 2>/dev/null
	done
	"$H" stop "$WORK/etcd" >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say()
{
	printf '\n== %s\n' "$*"
}

die()
{
	echo "demo: FAILED: $*" >&2
	for f in "$WORK"/node*.err "$WORK"/ws*.err "$WORK"/m[12].err "$WORK"/gateway.err; do
		[ -f "$f" ] || continue
		echo "--- $(basename "$f" .err), last lines:" >&2
		tail -n 15 "$f" >&2
	done
	exit 1
}

# Print the interesting new lines of an instance's stderr since last time.
show()
{
	f="$WORK/$1.err"
	eval "seen=\${seen_$1:-0}"
	total=$(wc -l <"$f")
	sed -n "$((seen + 1)),${total}p" "$f" |
		grep -E 're-balancing cluster|cluster has re-balanced:|first worker index:|worker count:|total cluster worker count:|joined a cluster|signal received|successfully left|libcluster<7>: [ *] [^ ]+ \[|has re-balanced: new base|no longer a member' |
		sed "s/^/  [$1] /"
	eval "seen_$1=$total"
}

# index and total of the last re-balance an instance printed
last_state()
{
	awk '/cluster has re-balanced:/ { i = ""; t = "" }
		/first worker index:/ { i = $NF }
		/total cluster worker count:/ { t = $NF }
		END { print i " " t }' "$WORK/$1.err"
}

expect()
{
	n=$((TIMEOUT * 10))
	while [ "$n" -gt 0 ]; do
		[ "$(last_state "$1")" = "$2 $3" ] && return 0
		sleep 0.1
		n=$((n - 1))
	done
	die "$1 reports '$(last_state "$1")', expected first worker index $2 and total $3"
}

start()
{
	name=$1
	shift
	echo "\$ cluster-test -r $ENDPOINT -v $*"
	"$CT" -k "$KEY" -r "$ENDPOINT" -v "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	eval "pid_$name=$!"
	pids="$pids $!"
}

stop()
{
	eval "p=\$pid_$1"
	kill -TERM "$p"
	n=$((TIMEOUT * 10))
	while kill -0 "$p" 2>/dev/null && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	kill -0 "$p" 2>/dev/null && die "$1 did not exit after SIGTERM"
	wait "$p" || die "$1 exited with status $?"
}

# gateway ARGS...: cluster-gateway in the background on the current KEY;
# once it has printed every "listening" line its options ask for, its
# HTTP address is in $GW and its TCP address (with --tcp) in $TCP
gateway()
{
	echo "\$ cluster-gateway -r $ENDPOINT $*"
	"$GWB" -k "$KEY" -r "$ENDPOINT" "$@" >"$WORK/gateway.out" 2>"$WORK/gateway.err" &
	pid_gateway=$!
	pids="$pids $pid_gateway"
	want=$(echo "$*" | grep -o -e '--http' -e '--tcp' | wc -l)
	n=$((TIMEOUT * 10))
	while [ "$(grep -c '^listening ' "$WORK/gateway.out")" -lt "$want" ] && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	GW=$(sed -n 's/^listening http //p' "$WORK/gateway.out")
	TCP=$(sed -n 's/^listening tcp //p' "$WORK/gateway.out")
	[ -n "$GW" ] || die "the gateway did not start"
}

ENDPOINT=$("$H" start "$WORK/etcd") || die "cannot start etcd"
say "A private etcd is running at $ENDPOINT (PID $(cat "$WORK/etcd/etcd.pid"), data in $WORK)"

say "node1 joins with 2 workers"
start node1 -i node1 -n 2
expect node1 0 2
show node1

say "node2 joins with 1 worker: it sorts after node1, so its base is 2"
start node2 -i node2
expect node2 2 3
expect node1 0 3
show node2
show node1

say "node3 joins with 4 workers: base 3, total 7 on every member"
start node3 -i node3 -n 4
expect node3 3 7
expect node1 0 7
expect node2 2 7
show node3
show node1
show node2

say "Every member agrees: node1 owns workers 0-1, node2 worker 2, node3 workers 3-6 of 7"

say "Stopping node1 (SIGTERM): it leaves cleanly and the others re-balance at once"
stop node1
show node1
expect node2 0 5
expect node3 1 5
show node2
show node3

say "node2 now has base 0 and node3 base 1, total 5. Stopping them."
stop node2
stop node3

# --- the connection advisor after a rolling deploy ----------------------
KEY=demo-ws
# wait until an instance printed a line matching an extended regex
expect_line()
{
	n=$((TIMEOUT * 10))
	while [ "$n" -gt 0 ]; do
		grep -q -E "$2" "$WORK/$1.err" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	die "$1 never printed a line matching '$2'"
}

say "A rolling deploy: ws1-ws3 hold 1000 connections each, ws4 has just started with none"
# A member that just joined is held down (no plan, no pick sends it
# anything) and then slowly filled: 15 s and 30 s by default, so that a
# server that flaps is never filled; 2 s and at once here, to keep the
# demo short.
TUNING="--hold-down 2000 --slow-start 0"
for i in 1 2 3; do
	start ws$i -i ws$i -A ws://127.0.0.1:900$i -L 1000 -S -a $TUNING
done
start ws4 -i ws4 -A ws://127.0.0.1:9004 -L 0 -S -a $TUNING
expect_line ws4 'cluster members \(4\)'
expect_line ws4 'a new client would be sent to ws4 '
grep -A4 -E 'cluster members \(4\)' "$WORK/ws4.err" | tail -n 5 | sed 's/^/  [ws4] /'
grep -E 'a new client would be sent' "$WORK/ws4.err" | tail -n 1 | sed 's/^/  [ws4] /'

say "After ws4's 2 s hold-down, each full server computes the same global plan (fair share 750 each) and acts on its own row"
# The four started within moments of each other and every member holds
# each one down by the age its status publishes, so for a moment the first
# to pass 2 s may take part alone (all four agree on that); the round shown
# is each one's first with all four counted: the library's debug line says
# "fair share 750", the row follows it.
row750()
{
	awk '/advice at revision .*fair share 750,/ { armed = 1; next }
		armed && /advice: redirect [0-9]+ connections to ws4 / { print; exit }' "$WORK/$1.err"
}
moved=0
for i in 1 2 3; do
	n=$((TIMEOUT * 10))
	while [ -z "$(row750 ws$i)" ] && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	line=$(row750 ws$i)
	[ -n "$line" ] || die "ws$i never advised a redirect to ws4 in a round with all four members counted"
	echo "  [ws$i] $line"
	count=$(echo "$line" | sed -E 's/.*redirect ([0-9]+) connections.*/\1/')
	moved=$((moved + count))
done
# the plan every member computed (the library's debug line of that round)
wants=$(grep -E 'fair share 750,.*plan wants [0-9]+.*redirect [0-9]+ -> ws4' "$WORK/ws1.err" | head -n 1 | sed -E 's/.*plan wants ([0-9]+).*/\1/')
minimum=$(grep -E 'fair share 750,.*plan wants [0-9]+.*redirect [0-9]+ -> ws4' "$WORK/ws1.err" | head -n 1 | sed -E 's/.*minimum moves ([0-9]+).*/\1/')
[ -n "$wants" ] && [ "$moved" -eq "$wants" ] ||
	die "the advice moves $moved connections to ws4, but the plan wants '$wants'"
[ "$moved" -ge "$minimum" ] && [ "$moved" -le 750 ] ||
	die "the advice moves $moved connections to ws4: not between the minimum ($minimum) and its fair share (750)"
say "Together they redirect $moved connections to ws4, what the shared plan wants: enough to bring every server within its band around the fair share of 750 (at least $minimum), never more than 750 (no herd, no overshoot)"

say "cluster-gateway joins passively and sends HTTP clients (GET /) to members by their deficit"
gateway --http 127.0.0.1:0
echo "  [gateway] listening on $GW"
echo "\$ curl -s http://$GW/workers"
echo "  $(curl -s "http://$GW/workers")"
: >"$WORK/locations"
i=0
while [ $i -lt 20 ]; do
	curl -s -o /dev/null -D - "http://$GW/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p' >>"$WORK/locations"
	i=$((i + 1))
done
echo "\$ 20 x curl http://$GW/  (307 Location, counted)"
sort "$WORK/locations" | uniq -c | sed 's/^ */  /'
[ "$(grep -c -x -F 'ws://127.0.0.1:9004' "$WORK/locations")" -eq 20 ] ||
	die "the gateway did not send all 20 clients to ws4, the only member below its fair share"
say "All 20 go to ws4: the only member below its fair share (ws1-ws3 are above theirs)"
stop gateway
for i in 1 2 3 4; do
	stop ws$i
done

# --- the TCP proxy ---------------------------------------------------------
KEY=demo-tcp
say "cluster-gateway --tcp in front of two echo servers: echo1 (capacity 100) and echo2 (capacity 300)"
for b in echo1 echo2; do
	"$TH" serve $b >"$WORK/$b.port" 2>"$WORK/$b.err" &
	pids="$pids $!"
done
n=$((TIMEOUT * 10))
while ! { grep -q '^port ' "$WORK/echo1.port" && grep -q '^port ' "$WORK/echo2.port"; } && [ "$n" -gt 0 ]; do
	sleep 0.1
	n=$((n - 1))
done
p1=$(sed -n 's/^port //p' "$WORK/echo1.port")
p2=$(sed -n 's/^port //p' "$WORK/echo2.port")
[ -n "$p1" ] && [ -n "$p2" ] || die "the echo servers did not start"
start m1 -i m1 -A "tcp://127.0.0.1:$p1" -L 0 -C 100
start m2 -i m2 -A "tcp://127.0.0.1:$p2" -L 0 -C 300
gateway --http 127.0.0.1:0 --tcp 127.0.0.1:0
[ -n "$TCP" ] || die "the gateway did not start its TCP proxy"
echo "  [gateway] proxying TCP on $TCP"
# both members listed with their capacities before the clients come
n=$((TIMEOUT * 10))
while [ "$(curl -s "http://$GW/members" | grep -o '"capacity":[13]00' | wc -l)" -lt 2 ] && [ "$n" -gt 0 ]; do
	sleep 0.1
	n=$((n - 1))
done
echo "\$ 40 clients through $TCP (each reads the name of the echo server that answers, then checks an echo)"
"$TH" connect 127.0.0.1 "${TCP##*:}" 40 >"$WORK/tcp.out" 2>"$WORK/tcp.err" || die "TCP clients: $(cat "$WORK/tcp.err")"
sort "$WORK/tcp.out" | uniq -c | sed 's/^ */  /'
c1=$(grep -c -x echo1 "$WORK/tcp.out")
c2=$(grep -c -x echo2 "$WORK/tcp.out")
[ "$c1" -eq 10 ] && [ "$c2" -eq 30 ] || die "the proxy sent $c1 and $c2 clients, expected 10 and 30 (capacities 100:300)"
say "10 and 30: the proxy weighs members by their capacity (smooth weighted round robin), and every echo came back intact"
stop gateway
stop m1
stop m2

"$H" stop "$WORK/etcd" || die "cannot stop etcd"
say "Demo finished: bases 0, 2, 3 / total 7, then 0, 1 / total 5, then the planned redirects to the new server, the gateway's clients to it too, and TCP clients proxied 1:3 by capacity, as expected."
exit 0
