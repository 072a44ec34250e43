#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cluster-gateway's TCP proxy (--tcp) against a private etcd, cluster-test
# members and real echo servers on loopback (tests/tcp-helper): clients
# are spread by capacity (1:3), a draining member gets none, a member
# whose port is closed costs its clients nothing (re-queued, passed
# over), so does one whose server never answers (--connect-timeout),
# 1 MB goes through both ways intact, a client that sends without reading
# is paused without the gateway keeping its bytes, --sticky keeps every client
# address on one member and a member's death moves only its own clients,
# SIGTERM lets a proxied connection finish (new clients refused) and
# --drain-time closes one that does not. Also the proxy's usage errors.
# Exit 0 pass, 1 fail, 77 skip (etcd not installed, CLUSTER_REQUIRE_ETCD unset).

NAME=cli-gateway-tcp
NEEDS="CT GWB TH curl jq"
. "${top_srcdir:-.}/tests/etcd-script-lib.sh"
KEY="gwtcp$$"
TTL=2
CURL_MAX=$(awk -v m="$MULT" 'BEGIN { printf "%d\n", 5 * m + 0.999 }')

# member NAME ARGS...: cluster-test in the background
member()
{
	name=$1
	shift
	"$CT" -k "$KEY" -r "$ENDPOINT" -t "$TTL" -i "$name" -L 0 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
	eval "pid_$name=$!"
	pids="$pids $!"
}

# backend NAME: an echo server answering "NAME"; its port in $port
backend()
{
	"$TH" serve "$1" >"$WORK/$1.port" 2>"$WORK/$1.err" </dev/null &
	pids="$pids $!"
	eval "bpid_$1=$!"
	n=$(tenths 5)
	while ! grep -q '^port ' "$WORK/$1.port" && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	port=$(sed -n 's/^port //p' "$WORK/$1.port")
	[ -n "$port" ] || fail "backend $1 did not start"
}

# paused_client MODE PATTERN SECONDS: tcp-helper MODE (hold or flood)
# through the gateway's $tcp, which then waits for a line on its stdin (a
# fifo held open on fd 3); returns once its output matches PATTERN, it
# ended, or SECONDS passed. Its pid in $cpid, output in $WORK/MODE.out.
paused_client()
{
	mkfifo "$WORK/$1.go"
	"$TH" "$1" 127.0.0.1 "${tcp#*:}" <"$WORK/$1.go" >"$WORK/$1.out" 2>"$WORK/$1.err" &
	cpid=$!
	pids="$pids $cpid"
	exec 3>"$WORK/$1.go"
	n=$(tenths "$3")
	while ! grep -q "$2" "$WORK/$1.out" && kill -0 "$cpid" 2>/dev/null && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
}

# release_client: let the paused client go on
release_client()
{
	echo go >&3
	exec 3>&-
}

# gateway NAME ARGS...: a gateway; its HTTP address in $http, TCP in $tcp
gateway()
{
	name=$1
	shift
	"$GWB" -k "$KEY" -r "$ENDPOINT" -t "$TTL" --http 127.0.0.1:0 --tcp 127.0.0.1:0 "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
	eval "gpid_$name=$!"
	pids="$pids $!"
	n=$(tenths 10)
	while ! grep -q '^listening tcp ' "$WORK/$name.out" && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	http=$(sed -n 's/^listening http //p' "$WORK/$name.out")
	tcp=$(sed -n 's/^listening tcp //p' "$WORK/$name.out")
	[ -n "$tcp" ] && [ -n "$http" ] || fail "gateway $name did not print its addresses: $(cat "$WORK/$name.out")"
}

# wait_json HTTP PATH JQ-EXPR SECONDS
wait_json()
{
	n=$(tenths "$4")
	while [ "$n" -gt 0 ]; do
		curl -s -m "$CURL_MAX" -o "$WORK/body" "http://$1$2" && jq -e "$3" "$WORK/body" >/dev/null 2>&1 && return 0
		sleep 0.1
		n=$((n - 1))
	done
	fail "GET $2: '$3' still false after $4 s (x$MULT): $(cat "$WORK/body")"
}

# metric HTTP NAME: a value from /metrics
metric()
{
	curl -s -m "$CURL_MAX" "http://$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}

# count FILE NAME: lines equal to NAME
count()
{
	grep -c -x -F "$2" "$1"
}

# --- usage
usage_case()
{
	want=$1
	shift
	timeout -s KILL "$(tenths 1)" "$GWB" "$@" >"$WORK/usage.out" 2>"$WORK/usage.err" </dev/null
	rc=$?
	[ $rc -eq 2 ] || fail "cluster-gateway $*: exit $rc, expected 2"
	grep -qF -- "$want" "$WORK/usage.err" || fail "cluster-gateway $*: no '$want' in: $(cat "$WORK/usage.err")"
}
usage_case "option --tcp: expected ADDR:PORT" --http 127.0.0.1:0 --tcp 127.0.0.1
usage_case "--sticky needs --tcp" --http 127.0.0.1:0 --sticky
usage_case "the connect timeout must be a whole number of ms from 1 to 600000" --http 127.0.0.1:0 --tcp 127.0.0.1:0 --connect-timeout 0
usage_case "the connection limit must be" --http 127.0.0.1:0 --tcp 127.0.0.1:0 --max-connections 10x
rm -f "$WORK/usage.out" "$WORK/usage.err"
echo "ok: --tcp usage errors exit 2"

ENDPOINT=$("$H" start "$WORK/etcd") || fail "cannot start etcd"
backend b1
member m1 -A "tcp://127.0.0.1:$port" -C 100
backend b2
# the host:port of a URL is dialled too
member m2 -A "http://127.0.0.1:$port/ws" -C 300
backend b3
member m3 -A "127.0.0.1:$port" -C 0
# m5's server is gone: its port refuses
backend b5
kill -KILL "$bpid_b5"
wait "$bpid_b5" 2>/dev/null
member m5 -A "tcp://127.0.0.1:$port" -C 100
# m6's server never answers a connect (a hung host)
"$TH" blackhole >"$WORK/b6.port" 2>"$WORK/b6.err" </dev/null &
pids="$pids $!"
n=$(tenths 5)
while ! grep -q '^port ' "$WORK/b6.port" && [ "$n" -gt 0 ]; do
	sleep 0.1
	n=$((n - 1))
done
port=$(sed -n 's/^port //p' "$WORK/b6.port")
[ -n "$port" ] || fail "the blackhole server did not start"
member m6 -A "tcp://127.0.0.1:$port" -C 100

gateway g1 --down-time 60000 --connect-timeout 500
wait_json "$http" /members '[.[] | select(.has_status)] | length == 5' 10
echo "etcd at $ENDPOINT, gateway at http $http, tcp $tcp"

# --- 40 clients: none lost to m5, none on draining m3, 1:3 by capacity
"$TH" connect 127.0.0.1 "${tcp#*:}" 40 >"$WORK/names" 2>"$WORK/connect.err" || fail "40 clients through the proxy"
c1=$(count "$WORK/names" b1)
c2=$(count "$WORK/names" b2)
c3=$(count "$WORK/names" b3)
[ "$c3" -eq 0 ] || fail "the draining member got $c3 clients"
[ $((c1 + c2)) -eq 40 ] || fail "40 clients: b1 $c1 + b2 $c2"
[ "$c1" -ge 8 ] && [ "$c1" -le 12 ] || fail "40 clients by capacity 100:300: b1 $c1, b2 $c2 (expected 10 and 30, +-2)"
requeued=$(metric "$http" cluster_gateway_tcp_requeued_total)
down=$(metric "$http" cluster_gateway_tcp_members_down)
[ "${requeued:-0}" -ge 2 ] || fail "the dead and the hung member were not both tried (requeued $requeued)"
[ "$down" = 2 ] || fail "members down: '$down', expected 2 (m5, m6)"
grep -q "member 'm5' at 127.0.0.1:[0-9]* Connection refused: passed over" "$WORK/g1.err" || fail "no log line for m5's refusal"
grep -q "member 'm6' at 127.0.0.1:[0-9]* did not answer within 500 ms: passed over" "$WORK/g1.err" || fail "no log line for m6's timeout"
echo "ok: 40 clients, b1 $c1 b2 $c2 (capacity 100:300), draining m3 none, m5 refused and m6 hung: $requeued re-queued, passed over"

# --- 1 MB both ways, intact (past the proxy's 256 kB high-water mark)
"$TH" connect 127.0.0.1 "${tcp#*:}" 1 "" 1048576 >"$WORK/big" 2>"$WORK/connect.err" || fail "1 MB through the proxy"
echo "ok: 1 MB echoed intact through $(cat "$WORK/big")"

# --- back-pressure: a client that sends without reading fills the
# buffers on the way and is then paused; the gateway keeps little of it
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
rss0=$(rss "$gpid_g1")
paused_client flood '^stalled' 20
fpid=$cpid
sent=$(sed -n 's/^stalled //p' "$WORK/flood.out")
[ -n "$sent" ] || fail "the flood never stalled: $(cat "$WORK/flood.err")"
grown=$(($(rss "$gpid_g1") - rss0))
release_client
wait "$fpid" || fail "the flood's bytes did not come back: $(cat "$WORK/flood.err")"
[ "$grown" -lt 4096 ] || fail "the gateway grew $grown kB holding a flood of $sent bytes"
echo "ok: a client sending $sent bytes without reading was paused (gateway +$grown kB), and got them all back intact"

# --- --sticky: each client address keeps its member; a death moves only its own
gateway g2 --sticky --down-time 60000 --connect-timeout 500
wait_json "$http" /members '[.[] | select(.has_status)] | length == 5' 10
sticky_round()
{
	: >"$WORK/$1"
	i=10
	while [ $i -lt 30 ]; do
		who=$("$TH" connect 127.0.0.1 "${tcp#*:}" 2 "127.0.0.$i" 2>"$WORK/connect.err" | sort -u) || fail "sticky client 127.0.0.$i"
		[ "$(echo "$who" | wc -l)" -eq 1 ] || fail "sticky client 127.0.0.$i went to two members: $who"
		echo "127.0.0.$i $who" >>"$WORK/$1"
		i=$((i + 1))
	done
}
sticky_round before
s1=$(grep -c ' b1$' "$WORK/before")
s2=$(grep -c ' b2$' "$WORK/before")
[ "$s1" -ge 1 ] && [ "$s2" -ge 1 ] || fail "--sticky put 20 addresses on one member: $(cat "$WORK/before" | tr '\n' ' ')"
sticky_round again
cmp -s "$WORK/before" "$WORK/again" || fail "--sticky: a client address changed member between two rounds"
kill -KILL "$pid_m1"
wait "$pid_m1" 2>/dev/null
wait_json "$http" /members '[.[].id] | index("m1") == null' $((TTL + 1))
sticky_round after
moved=$(join "$WORK/before" "$WORK/after" | awk '$2 != $3 && $2 != "b1"' | wc -l)
[ "$moved" -eq 0 ] || fail "--sticky: m1's death moved $moved clients of other members"
grep -q ' b1$' "$WORK/after" && fail "--sticky: a client still reached b1 after m1 left"
echo "ok: --sticky 20 addresses b1 $s1 b2 $s2, the same twice; m1 killed: its $s1 moved, no other"

# --- SIGTERM: a proxied connection finishes, new clients are refused
paused_client hold . 5
hpid=$cpid
[ -s "$WORK/hold.out" ] || fail "the held connection got no member"
kill -TERM "$gpid_g2"
n=$(tenths 5)
while ! grep -q "waiting up to" "$WORK/g2.err" && [ "$n" -gt 0 ]; do
	sleep 0.1
	n=$((n - 1))
done
grep -q "waiting up to 10000 ms for 1 proxied connection to end" "$WORK/g2.err" || fail "SIGTERM: the gateway does not say it waits"
kill -0 "$gpid_g2" 2>/dev/null || fail "SIGTERM: the gateway ended with a proxied connection open"
"$TH" connect 127.0.0.1 "${tcp#*:}" 1 >/dev/null 2>"$WORK/refused.err" && fail "SIGTERM: a new client was still proxied"
release_client
wait "$hpid" || fail "the held connection broke during the drain: $(cat "$WORK/hold.err")"
grep -q '^echo ok$' "$WORK/hold.out" || fail "the held connection's echo"
wait_gone "$gpid_g2" 3 || fail "the gateway did not end once its last proxied connection ended"
wait "$gpid_g2"
rc=$?
[ $rc -eq 0 ] || fail "the gateway exited $rc after SIGTERM"
echo "ok: SIGTERM drained: the open connection finished its echo, a new client was refused, exit 0"

# --- --drain-time: a connection that does not end is closed at the deadline
gateway g3 --drain-time 1000
wait_json "$http" /members '[.[] | select(.has_status)] | length >= 2' 10
mkfifo "$WORK/go3"
"$TH" hold 127.0.0.1 "${tcp#*:}" <"$WORK/go3" >"$WORK/hold3.out" 2>"$WORK/hold3.err" &
pids="$pids $!"
exec 4>"$WORK/go3"
n=$(tenths 5)
while [ ! -s "$WORK/hold3.out" ] && [ "$n" -gt 0 ]; do
	sleep 0.1
	n=$((n - 1))
done
[ -s "$WORK/hold3.out" ] || fail "the second held connection got no member"
start=$(date +%s.%N)
kill -TERM "$gpid_g3"
wait "$gpid_g3"
rc=$?
took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
[ $rc -eq 0 ] || fail "the gateway exited $rc after its drain deadline"
grep -q "closing 1 proxied connection still open at the drain deadline" "$WORK/g3.err" || fail "no log line for the connection cut at the deadline"
awk -v t="$took" -v m="$MULT" 'BEGIN { exit !(t >= 0.9 && t <= 1 + 4 * m) }' || fail "--drain-time 1000: the gateway took $took s"
exec 4>&-
echo "ok: --drain-time 1000: the open connection was closed and the gateway ended after $took s"

echo "test_cli_gateway_tcp: all passed"
exit 0
