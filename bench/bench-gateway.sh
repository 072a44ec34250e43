#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cluster-gateway beside HAProxy, the same jobs on the same machine in the
# same run (issue 8): a private etcd, three cluster-test members whose
# published addresses are three ports of one echo server (bench/tcp-load),
# and in front of them cluster-gateway (--http and --tcp) and HAProxy
# (one thread, as the gateway has one loop thread; the config is printed).
#
#   HTTP redirects: wrk, 1 thread, 64 connections, D s per round: GET / ->
#       307 to a member (HAProxy: http-request redirect, a random member).
#   TCP proxy: tcp-load pingpong: 32 connections x 64-byte echoes (rps,
#       p50/p99), and 8 x 64 KiB echoes (MB/s); the echo server alone
#       (direct) as the floor, so the added latency shows.
#   Idle: 10,000 keep-alive HTTP connections each after one redirect,
#       then 10,000 proxied connections (two descriptors each in the
#       proxy: fewer when the limit does not allow it); the proxy's RSS
#       before and after.
#
# Rounds alternate (gateway, HAProxy, gateway, HAProxy); each side's better
# round is kept. Verdicts: gateway rps >= MIN_RATIO x HAProxy's (0.8) and
# p99 <= MAX_P99_RATIO x HAProxy's (1.25), for HTTP and for TCP; idle RSS
# <= 200 MB. Exit 1 when a verdict fails. Options: -d SECONDS (5),
# --min-ratio R, --max-p99-ratio R, --idle N (10000).
: "${top_builddir:=.}"
H="$top_builddir/tests/etcd-harness"
CT="$top_builddir/cluster-test/cluster-test"
GWB="$top_builddir/cluster-gateway/cluster-gateway"
TL="$top_builddir/bench/tcp-load"
D=5
MIN_RATIO=0.8
MAX_P99_RATIO=1.25
IDLE=10000
RSS_LIMIT_KB=204800
while [ $# -gt 0 ]; do
	case "$1" in
	-d) D=$2; shift 2 ;;
	--min-ratio) MIN_RATIO=$2; shift 2 ;;
	--max-p99-ratio) MAX_P99_RATIO=$2; shift 2 ;;
	--idle) IDLE=$2; shift 2 ;;
	*) echo "usage: bench-gateway.sh [-d SECONDS] [--min-ratio R] [--max-p99-ratio R] [--idle N]" >&2; exit 2 ;;
	esac
done
for t in haproxy wrk curl jq; do
	command -v "$t" >/dev/null 2>&1 || { echo "bench-gateway: $t is required (Debian packages haproxy wrk curl jq)" >&2; exit 1; }
done
for p in "$H" "$CT" "$GWB" "$TL"; do
	[ -x "$p" ] || { echo "bench-gateway: not built: $p" >&2; exit 1; }
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
# each idle connection costs a proxy two descriptors: keep within the limit
fit=$((($(ulimit -n) - 2000) / 2))
IDLE_HTTP=$IDLE
if [ "$IDLE" -gt "$fit" ]; then
	echo "bench-gateway: the descriptor limit $(ulimit -n) allows $fit idle connections through a proxy, not $IDLE" >&2
	IDLE=$fit
fi
# an idle HTTP connection costs one
fit=$(($(ulimit -n) - 2000))
if [ "$IDLE_HTTP" -gt "$fit" ]; then
	echo "bench-gateway: the descriptor limit $(ulimit -n) allows $fit idle HTTP connections, not $IDLE_HTTP" >&2
	IDLE_HTTP=$fit
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-gateway.XXXXXX") || exit 1
pids=""
cleanup()
{
	for p in $pids; do
		kill -KILL "$p" 2>/dev/null
	done
	"$H" stop "$WORK/etcd" >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
die()
{
	echo "bench-gateway: $*" >&2
	exit 1
}
# wait_for FILE PATTERN: until FILE has a line matching PATTERN (10 s)
wait_for()
{
	n=100
	while ! grep -q "$2" "$1" 2>/dev/null && [ $n -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	grep -q "$2" "$1" || die "no '$2' in $1: $(cat "$1")"
}
free_port()
{
	"$TL" echo 1 >"$WORK/fp" &
	fp=$!
	wait_for "$WORK/fp" '^ports '
	kill -KILL $fp
	wait $fp 2>/dev/null
	sed -n 's/^ports //p' "$WORK/fp"
}
rss_kb()
{
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"
}

ENDPOINT=$("$H" start "$WORK/etcd") || die "cannot start etcd"
"$TL" echo 3 >"$WORK/echo.out" 2>"$WORK/echo.err" &
pids="$pids $!"
wait_for "$WORK/echo.out" '^ports '
set -- $(sed -n 's/^ports //p' "$WORK/echo.out")
P1=$1 P2=$2 P3=$3
KEY="benchgw$$"
i=1
for p in $P1 $P2 $P3; do
	"$CT" -k "$KEY" -r "$ENDPOINT" -i "m$i" -A "http://127.0.0.1:$p/" -L 0 >/dev/null 2>"$WORK/m$i.err" </dev/null &
	pids="$pids $!"
	i=$((i + 1))
done
"$GWB" -k "$KEY" -r "$ENDPOINT" --http 127.0.0.1:0 --tcp 127.0.0.1:0 --max-connections $((IDLE + 1000)) >"$WORK/gw.out" 2>"$WORK/gw.err" </dev/null &
gwpid=$!
pids="$pids $gwpid"
wait_for "$WORK/gw.out" '^listening tcp '
GWH=$(sed -n 's/^listening http //p' "$WORK/gw.out")
GWT=$(sed -n 's/^listening tcp 127.0.0.1://p' "$WORK/gw.out")
GWH_PORT=${GWH##*:}
n=100
until curl -s "http://$GWH/workers" | jq -e 'length == 3' >/dev/null 2>&1; do
	n=$((n - 1))
	[ $n -gt 0 ] || die "the gateway never listed the three members"
	sleep 0.1
done

HPH=$(free_port)
HPT=$(free_port)
cat >"$WORK/haproxy.cfg" <<CFG
global
    nbthread 1
    maxconn $((IDLE + 500))
defaults
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
frontend redirect
    mode http
    bind 127.0.0.1:$HPH
    http-request redirect code 307 location http://127.0.0.1:$P1/ if { rand(3) -m int 0 }
    http-request redirect code 307 location http://127.0.0.1:$P2/ if { rand(2) -m int 0 }
    http-request redirect code 307 location http://127.0.0.1:$P3/
frontend proxy
    mode tcp
    bind 127.0.0.1:$HPT
    default_backend members
backend members
    mode tcp
    balance roundrobin
    server m1 127.0.0.1:$P1 weight 1
    server m2 127.0.0.1:$P2 weight 1
    server m3 127.0.0.1:$P3 weight 1
CFG
haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.out" 2>&1 &
hppid=$!
pids="$pids $hppid"
n=100
until curl -s -o /dev/null "http://127.0.0.1:$HPH/"; do
	kill -0 $hppid 2>/dev/null || die "HAProxy exited: $(cat "$WORK/haproxy.out")"
	n=$((n - 1))
	[ $n -gt 0 ] || die "HAProxy does not answer: $(cat "$WORK/haproxy.out")"
	sleep 0.1
done
curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HPH/" | grep -q 307 || die "HAProxy does not redirect: $(cat "$WORK/haproxy.out")"
curl -s -o /dev/null -w '%{http_code}' "http://$GWH/" | grep -q 307 || die "the gateway does not redirect"

echo "bench-gateway: $(nproc) cores, $(haproxy -v | head -1), wrk $(wrk -v 2>&1 | head -1 | awk '{ print $2 }'), $D s per round"
echo "HAProxy configuration (nbthread 1: the gateway serves on one loop thread):"
sed 's/^/  | /' "$WORK/haproxy.cfg"

# wrk URL -> "rps p50_us p99_us"
wrk_run()
{
	wrk -t1 -c64 -d"${D}s" --latency "$1" >"$WORK/wrk.out" 2>&1 || die "wrk failed: $(cat "$WORK/wrk.out")"
	awk 'function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1000000; return v }
		$1 == "Requests/sec:" { rps = $2 }
		$1 == "50%" { p50 = us($2) } $1 == "99%" { p99 = us($2) }
		END { printf "%.0f %.0f %.0f\n", rps, p50, p99 }' "$WORK/wrk.out"
}
# keep the better round: the higher rps (with its own p99)
better()
{
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); print (x[1] + 0 >= y[1] + 0 ? a : b) }'
}
h_gw=""
h_hp=""
t_gw=""
t_hp=""
b_gw=""
b_hp=""
for round in 1 2; do
	r=$(wrk_run "http://$GWH/")
	echo "  round $round HTTP gateway: $r"
	h_gw=$(better "$r" "${h_gw:-0 0 0}")
	r=$(wrk_run "http://127.0.0.1:$HPH/")
	echo "  round $round HTTP HAProxy: $r"
	h_hp=$(better "$r" "${h_hp:-0 0 0}")
done
pp()
{
	"$TL" pingpong 127.0.0.1 "$1" "$2" "$D" "$3" | awk '{ print $4, $6, $8, $10 }'
}
direct=$(pp "$P1" 32 64)
for round in 1 2; do
	r=$(pp "$GWT" 32 64)
	echo "  round $round TCP 64 B gateway: $r"
	t_gw=$(better "$r" "${t_gw:-0 0 0 0}")
	r=$(pp "$HPT" 32 64)
	echo "  round $round TCP 64 B HAProxy: $r"
	t_hp=$(better "$r" "${t_hp:-0 0 0 0}")
done
b_gw=$(pp "$GWT" 8 65536)
b_hp=$(pp "$HPT" 8 65536)

# idle: N connections through each proxy, RSS before and after
idle_rss()
{
	pid=$1
	port=$2
	mode=${3:-idle}
	count=${4:-$IDLE}
	before=$(rss_kb "$pid")
	rm -f "$WORK/hold"
	mkfifo "$WORK/hold"
	"$TL" "$mode" 127.0.0.1 "$port" "$count" <"$WORK/hold" >"$WORK/idle.out" 2>"$WORK/idle.err" &
	ipid=$!
	exec 5>"$WORK/hold"
	n=1200
	while ! grep -q '^ready' "$WORK/idle.out" && kill -0 $ipid 2>/dev/null && [ $n -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	grep -q '^ready' "$WORK/idle.out" || die "idle connections through port $port: $(cat "$WORK/idle.err")"
	after=$(rss_kb "$pid")
	exec 5>&-
	wait $ipid
	echo "$before $after"
}
# N idle keep-alive HTTP connections, each after one redirect (one
# descriptor each, so the full 10,000 fit the limit), then the proxied
# ones (two each); the second round's RSS includes the first's high-water
# mark
ih_gw=$(idle_rss "$gwpid" "$GWH_PORT" http-idle "$IDLE_HTTP")
sleep 1
ih_hp=$(idle_rss "$hppid" "$HPH" http-idle "$IDLE_HTTP")
sleep 1
i_gw=$(idle_rss "$gwpid" "$GWT")
sleep 1
i_hp=$(idle_rss "$hppid" "$HPT")

echo
echo "                          cluster-gateway      HAProxy     ratio"
row()
{
	awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%-24s %12s %12s %9.2f\n", n, a, b, (b + 0 ? a / b : 0) }'
}
set -- $h_gw
hg_rps=$1 hg_p50=$2 hg_p99=$3
set -- $h_hp
hh_rps=$1 hh_p50=$2 hh_p99=$3
row "HTTP 307 requests/s" "$hg_rps" "$hh_rps"
row "HTTP p50 (us)" "$hg_p50" "$hh_p50"
row "HTTP p99 (us)" "$hg_p99" "$hh_p99"
set -- $t_gw
tg_rps=$1 tg_p50=$2 tg_p99=$3
set -- $t_hp
th_rps=$1 th_p50=$2 th_p99=$3
set -- $direct
row "TCP 64 B echoes/s" "$tg_rps" "$th_rps"
row "TCP p50 (us)" "$tg_p50" "$th_p50"
row "TCP p99 (us)" "$tg_p99" "$th_p99"
echo "  (echo server direct, no proxy: $1 echoes/s, p50 $2 us, p99 $3 us; added p50: gateway $((tg_p50 - $2)) us, HAProxy $((th_p50 - $2)) us)"
row "TCP 64 KiB MB/s" "$(echo "$b_gw" | awk '{ print $4 }')" "$(echo "$b_hp" | awk '{ print $4 }')"
set -- $ih_gw
ihg_b=$1 ihg_a=$2
set -- $ih_hp
row "RSS idle, start (kB)" "$ihg_b" "$1"
row "RSS $IDLE_HTTP idle HTTP (kB)" "$ihg_a" "$2"
set -- $i_gw
ig_a=$2
set -- $i_hp
row "RSS then $IDLE proxied (kB)" "$ig_a" "$2"

fails=0
verdict()
{
	if awk -v a="$2" -v b="$3" 'BEGIN { exit !(a + 0 <= b + 0) }'; then
		echo "PASS: $1 ($2 <= $3)"
	else
		echo "FAIL: $1 ($2 > $3)"
		fails=$((fails + 1))
	fi
}
echo
verdict "HTTP rps >= $MIN_RATIO x HAProxy's" "$(awk -v r="$MIN_RATIO" -v h="$hh_rps" 'BEGIN { printf "%.0f", r * h }')" "$hg_rps"
verdict "HTTP p99 <= $MAX_P99_RATIO x HAProxy's" "$hg_p99" "$(awk -v r="$MAX_P99_RATIO" -v h="$hh_p99" 'BEGIN { printf "%.0f", r * h }')"
verdict "TCP rps >= $MIN_RATIO x HAProxy's" "$(awk -v r="$MIN_RATIO" -v h="$th_rps" 'BEGIN { printf "%.0f", r * h }')" "$tg_rps"
verdict "TCP p99 <= $MAX_P99_RATIO x HAProxy's" "$tg_p99" "$(awk -v r="$MAX_P99_RATIO" -v h="$th_p99" 'BEGIN { printf "%.0f", r * h }')"
verdict "RSS with $IDLE idle proxied connections <= 200 MB (kB)" "$ig_a" "$RSS_LIMIT_KB"
verdict "RSS with $IDLE_HTTP idle HTTP connections <= 200 MB (kB)" "$ihg_a" "$RSS_LIMIT_KB"
[ $fails -eq 0 ]
