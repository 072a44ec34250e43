#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cluster-gateway against a private etcd and four cluster-test members
# that publish http:// addresses (one of them draining): the redirect goes
# to a serving member and spreads over all of them, /target, /workers,
# /members, /plan, /healthz and /metrics agree with the membership, the
# /status page rendered by headless Chromium shows every member, the draining
# member gets no client, bad requests get 404/405/4xx, a member killed
# with SIGKILL leaves the rotation within TTL + 1 s, no serving member
# gives 503, POST /register-worker registers a member that stays while
# it posts again and expires when it stops (bad bodies: 400 naming the
# field, nothing registered), a lost registry makes /healthz 503, and SIGTERM ends the
# gateway with exit 0. Also: usage errors (exit 2), a query with a control
# byte (400), a port already in use (exit 1), and a join that waits for a
# dead registry (503 meanwhile, SIGTERM cancels it: exit 0).
# Exit 0 pass, 1 fail, 77 skip (etcd not installed, CLUSTER_REQUIRE_ETCD unset).

NAME=cli-gateway
NEEDS="CT GWB curl jq chromium"
. "${top_srcdir:-.}/tests/etcd-script-lib.sh"
KEY="gwtest$$"
TTL=2
CURL_MAX=$(awk -v m="$MULT" 'BEGIN { printf "%d\n", 5 * m + 0.999 }')

# start NAME ARGS...: cluster-test in the background, output to NAME.*
start()
{
	name=$1
	shift
	"$CT" -k "$KEY" -r "$ENDPOINT" -t "$TTL" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" </dev/null &
	eval "pid_$name=$!"
	pids="$pids $!"
}

# req PATH [CURL-ARGS...]: one request to the gateway; the status is in
# $code, the body in $WORK/body, the headers in $WORK/hdr.
req()
{
	path=$1
	shift
	code=$(curl -s -m "$CURL_MAX" "$@" -o "$WORK/body" -D "$WORK/hdr" -w '%{http_code}' "http://$GW$path")
}

# header NAME: that header of the last answer (case-insensitive name)
header()
{
	awk -v n="$1" 'BEGIN { n = tolower(n) } { sub(/\r$/, "") } tolower(substr($0, 1, length(n) + 1)) == n ":" { sub(/^[^:]*:[ \t]*/, ""); print; exit }' "$WORK/hdr"
}

# wait_json PATH JQ-EXPR SECONDS: poll until the answer's JSON makes the
# expression true.
wait_json()
{
	n=$(tenths "$3")
	while [ "$n" -gt 0 ]; do
		req "$1"
		[ "$code" = 200 ] && jq -e "$2" "$WORK/body" >/dev/null 2>&1 && return 0
		sleep 0.1
		n=$((n - 1))
	done
	fail "GET $1: '$2' still false after $3 s (x$MULT); last answer $code: $(cat "$WORK/body")"
}

# the serving members' addresses (m4, draining, is not one)
ADDRS="http://127.0.0.1:10001 http://127.0.0.1:10002 http://127.0.0.1:10003"
is_member_address()
{
	for a in $ADDRS; do
		[ "$1" = "$a" ] && return 0
	done
	return 1
}

# --- usage: exit 2 with the reason, before anything is joined
usage_case()
{
	want=$1
	shift
	timeout -s KILL "$(tenths 1)" "$GWB" "$@" >"$WORK/usage.out" 2>"$WORK/usage.err" </dev/null
	rc=$?
	[ $rc -eq 2 ] || fail "cluster-gateway $*: exit $rc, expected 2"
	grep -qF -- "$want" "$WORK/usage.err" || fail "cluster-gateway $*: no '$want' in: $(cat "$WORK/usage.err")"
}
usage_case "--http ADDR:PORT is required"
usage_case "expected ADDR:PORT" --http 127.0.0.1
usage_case "the port must be a whole number from 0 to 65535" --http 127.0.0.1:65536
usage_case "an IPv6 address is written [ADDR]:PORT" --http ::1:80
usage_case "unknown option '--bogus'" --http 127.0.0.1:0 --bogus
usage_case "--cert and --key go together" --http 127.0.0.1:0 --cert x.pem
"$GWB" --version | grep -q '^cluster-gateway (libcluster [0-9]' || fail "--version: $("$GWB" --version)"
rm -f "$WORK/usage.out" "$WORK/usage.err"
echo "ok: usage errors exit 2, --version"

ENDPOINT=$("$H" start "$WORK/etcd") || fail "cannot start etcd"
echo "etcd at $ENDPOINT"
start m1 -i m1 -A http://127.0.0.1:10001 -L 0
start m2 -i m2 -A http://127.0.0.1:10002 -L 0
start m3 -i m3 -A http://127.0.0.1:10003 -L 0
# draining (capacity 0): listed in /members, never in /workers or a Location
start m4 -i m4 -A http://127.0.0.1:10004 -L 0 -C 0

"$GWB" -k "$KEY" -r "$ENDPOINT" -t "$TTL" --http 127.0.0.1:0 >"$WORK/gw.out" 2>"$WORK/gw.err" </dev/null &
gwpid=$!
pids="$pids $gwpid"
n=$(tenths 10)
while ! grep -q '^listening http ' "$WORK/gw.out" && [ "$n" -gt 0 ]; do
	kill -0 "$gwpid" 2>/dev/null || fail "the gateway exited before listening"
	sleep 0.1
	n=$((n - 1))
done
GW=$(sed -n 's/^listening http //p' "$WORK/gw.out")
[ -n "$GW" ] || fail "the gateway did not print 'listening http ADDR:PORT'"
echo "gateway at $GW"

# --- every member is listed once its status has been read
wait_json /workers 'sort == ["http://127.0.0.1:10001","http://127.0.0.1:10002","http://127.0.0.1:10003"]' 10
echo "ok: /workers lists the three serving members (not the draining m4)"

# --- GET / redirects to a member, and 40 redirects reach every member
req /
[ "$code" = 307 ] || fail "GET /: $code, expected 307"
is_member_address "$(header Location)" || fail "GET /: Location '$(header Location)' is no member's address"
: >"$WORK/locations"
i=0
while [ $i -lt 40 ]; do
	req /
	[ "$code" = 307 ] || fail "GET / #$i: $code, expected 307"
	loc=$(header Location)
	is_member_address "$loc" || fail "GET / #$i: Location '$loc' is not a serving member's address"
	echo "$loc" >>"$WORK/locations"
	i=$((i + 1))
done
for a in $ADDRS; do
	c=$(grep -c -x -F "$a" "$WORK/locations")
	[ "$c" -ge 1 ] || fail "40 redirects: none to $a ($(sort "$WORK/locations" | uniq -c | tr '\n' ' '))"
done
echo "ok: 40 redirects spread: $(sort "$WORK/locations" | uniq -c | awk '{ printf "%s%s x%s", s, $2, $1; s = ", " }')"

# --- the query string follows an http:// address
req '/?room=7&x=%20'
[ "$code" = 307 ] || fail "GET /?room=7: $code"
case "$(header Location)" in
http://127.0.0.1:1000[123]/\?room=7\&x=%20) ;;
*) fail "GET /?room=7&x=%20: Location '$(header Location)', expected ADDRESS/?room=7&x=%20" ;;
esac
echo "ok: query carried over ($(header Location))"
req / --request-target "$(printf '/?a=\001b')"
[ "$code" = 400 ] || fail "GET /?a=<control byte>: $code, expected 400"
jq -e '.error | test("query")' "$WORK/body" >/dev/null || fail "GET /?a=<control byte>: no JSON error naming the query"
echo "ok: a query with a control byte -> 400"

# --- a second gateway on the same port: exit 1, saying why
timeout -s KILL "$(tenths 10)" "$GWB" -k "$KEY" -r "$ENDPOINT" --http "$GW" >"$WORK/gw2.out" 2>"$WORK/gw2.err" </dev/null
rc=$?
[ $rc -eq 1 ] || fail "a second gateway on $GW: exit $rc, expected 1"
grep -q "cannot listen for HTTP on" "$WORK/gw2.err" || fail "a second gateway on $GW: no reason given"
rm -f "$WORK/gw2.out" "$WORK/gw2.err"
echo "ok: port in use -> exit 1"

# --- /target, /members, /healthz, /metrics
req /target
[ "$code" = 200 ] || fail "GET /target: $code"
jq -e '(.id | test("^m[123]$")) and (.address | startswith("http://127.0.0.1:1000"))' "$WORK/body" >/dev/null ||
	fail "GET /target: $(cat "$WORK/body")"
is_member_address "$(jq -r .address "$WORK/body")" || fail "GET /target: not a member's address"
echo "ok: /target $(cat "$WORK/body")"
req /members
[ "$code" = 200 ] || fail "GET /members: $code"
jq -e 'length == 4 and ([.[].id] == ["m1","m2","m3","m4"]) and all(.[]; .workers == 1 and .has_status) and
	all(.[:3][]; .capacity == -1 and .serving and (.draining | not)) and (.[3] | .capacity == 0 and .draining and (.serving | not))' \
	"$WORK/body" >/dev/null || fail "GET /members: $(cat "$WORK/body")"
echo "ok: /members has m1 m2 m3 serving and m4 draining"
req /healthz
[ "$code" = 200 ] || fail "GET /healthz: $code"
[ "$(cat "$WORK/body")" = ok ] || fail "GET /healthz: body '$(cat "$WORK/body")'"
# and it stays 200 while statuses change (members within their hold-down
# and slow start rewrite theirs every second): a change waiting to be
# delivered is not a stale view
i=0
while [ $i -lt 30 ]; do
	req /healthz
	[ "$code" = 200 ] || fail "GET /healthz flapped to $code while statuses changed (try $i): $(cat "$WORK/body")"
	sleep 0.1
	i=$((i + 1))
done
req /metrics
[ "$code" = 200 ] || fail "GET /metrics: $code"
awk '$1 == "cluster_gateway_redirects_total" { r = $2 } END { exit !(r >= 40) }' "$WORK/body" ||
	fail "/metrics: cluster_gateway_redirects_total below 40"
grep -q '^cluster_gateway_members 4$' "$WORK/body" || fail "/metrics: cluster_gateway_members is not 4"
grep -q '^cluster_gateway_serving_members 3$' "$WORK/body" || fail "/metrics: cluster_gateway_serving_members is not 3"
for id in m1 m2 m3; do
	grep -q "^cluster_gateway_picks_total{id=\"$id\"} [1-9]" "$WORK/body" || fail "/metrics: no picks counted for $id"
done
echo "ok: /healthz 200, /metrics $(grep '^cluster_gateway_redirects_total' "$WORK/body")"

# --- /plan: the library's global plan, every member in it
req /plan
[ "$code" = 200 ] || fail "GET /plan: $code"
jq -e '([.[].id] == ["m1","m2","m3","m4"]) and (.[3].draining) and all(.[]; .member) and ((map(.shed) | add) == (map(.inflow) | add))' \
	"$WORK/body" >/dev/null || fail "GET /plan: $(cat "$WORK/body")"
echo "ok: /plan lists the four members, m4 draining, sheds and inflows balance"

# --- /status in headless Chromium: the page draws every member
timeout -s KILL "$(tenths 60)" chromium --headless --no-sandbox --disable-gpu --user-data-dir="$WORK/chromium" \
	--virtual-time-budget=5000 --dump-dom "http://$GW/status" >"$WORK/status.html" 2>"$WORK/chromium.log" ||
	fail "chromium could not load /status: $(tail -5 "$WORK/chromium.log")"
for id in m1 m2 m3 m4; do
	grep -q "<td class=\"id\">$id<" "$WORK/status.html" || fail "/status as rendered by Chromium does not show $id: $(grep -o '<tbody.*</tbody>' "$WORK/status.html" | head -c 600)"
done
grep -q '<td class="id">m4<span class="tag draining">draining</span>' "$WORK/status.html" || fail "/status does not mark m4 draining"
grep -q 'members: 4' "$WORK/status.html" || fail "/status summary does not count 4 members"
grep -q 'class="bar"' "$WORK/status.html" || fail "/status draws no bars"
echo "ok: /status rendered by headless Chromium shows m1..m4 with bars, m4 marked draining"

# --- bad requests: JSON errors, and the gateway lives on
req /nope
[ "$code" = 404 ] || fail "GET /nope: $code, expected 404"
jq -e '.error | length > 0' "$WORK/body" >/dev/null || fail "GET /nope: no JSON error"
req / -X POST
[ "$code" = 405 ] || fail "POST /: $code, expected 405"
[ "$(header Allow)" = "GET, HEAD" ] || fail "POST /: Allow '$(header Allow)'"
jq -e '.error | test("POST")' "$WORK/body" >/dev/null || fail "POST /: no JSON error naming the method"
req /workers -X DELETE
[ "$code" = 405 ] || fail "DELETE /workers: $code, expected 405"
big=$(head -c 12000 /dev/zero | tr '\0' a)
req /workers -H "X-Big: $big"
case "$code" in
4??) ;;
*) fail "12 kB of headers: $code, expected a 4xx refusal" ;;
esac
bigcode=$code
req /workers -I
[ "$code" = 200 ] || fail "HEAD /workers: $code"
echo "ok: 404, 405 with Allow, oversized headers $bigcode, HEAD 200"

# --- POST /register-worker: a worker that cannot link the library
W9='{"id":"w9","address":"http://127.0.0.1:10009","workers":2,"capacity":50,"load":1}'
req /register-worker -d "$W9"
[ "$code" = 202 ] || fail "POST /register-worker: $code, expected 202: $(cat "$WORK/body")"
jq -e '.status == "registering" and .id == "w9" and .ttl == '"$TTL" "$WORK/body" >/dev/null || fail "POST /register-worker: $(cat "$WORK/body")"
wait_json /members 'any(.[]; .id == "w9" and .address == "http://127.0.0.1:10009" and .workers == 2 and .capacity == 50 and .load == 1)' 5
# renewed every 0.5 s for two TTLs: still a member, and the new load shows
end=$(($(date +%s) + 2 * TTL))
while [ "$(date +%s)" -lt $end ]; do
	req /register-worker -d '{"id":"w9","address":"http://127.0.0.1:10009","workers":2,"capacity":50,"load":7}'
	[ "$code" = 200 ] || fail "POST /register-worker (renewal): $code: $(cat "$WORK/body")"
	sleep 0.5
done
jq -e '.status == "renewed"' "$WORK/body" >/dev/null || fail "renewal answer: $(cat "$WORK/body")"
wait_json /members 'any(.[]; .id == "w9" and .load == 7)' 2
echo "ok: register-worker: 202, listed with its fields, renewed for $((2 * TTL)) s (200) and kept"
stopped=$(date +%s.%N)
wait_json /members 'all(.[]; .id != "w9")' $((TTL + 2))
echo "ok: register-worker expired $(awk -v a="$stopped" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s after its last POST (TTL $TTL s)"
reg_bad()
{
	req /register-worker -d "$2"
	[ "$code" = 400 ] || fail "POST /register-worker $2: $code, expected 400"
	jq -e --arg w "$1" '.error | contains($w)' "$WORK/body" >/dev/null || fail "POST /register-worker $2: the error does not name '$1': $(cat "$WORK/body")"
}
reg_bad "not a JSON object" 'nope'
reg_bad '"id" and "address" are required' '{"address":"a"}'
reg_bad '"id"' '{"id":"w 8","address":"a"}'
reg_bad '"address"' '{"id":"w8","address":"a b"}'
reg_bad '"workers"' '{"id":"w8","address":"a","workers":0}'
reg_bad '"load/capacity"' '{"id":"w8","address":"a","capacity":1,"load":5}'
reg_bad '"ttl"' '{"id":"w8","address":"a","ttl":1}'
req /register-worker
[ "$code" = 405 ] && [ "$(header Allow)" = POST ] || fail "GET /register-worker: $code, Allow '$(header Allow)'"
sleep 1
req /members
jq -e 'all(.[]; .id != "w8")' "$WORK/body" >/dev/null || fail "a refused registration reached the cluster: $(cat "$WORK/body")"
req /metrics
grep -q '^cluster_gateway_registrations_expired_total 1$' "$WORK/body" || fail "/metrics: no expired registration counted"
grep -q '^cluster_gateway_registrations_refused_total 7$' "$WORK/body" || fail "/metrics: refused registrations not 7"
echo "ok: register-worker: 7 bad bodies -> 400 naming the field, nothing registered; GET -> 405"

# --- a member killed with SIGKILL leaves the rotation within TTL + 1 s
kill -KILL "$pid_m3"
wait "$pid_m3" 2>/dev/null
killed=$(date +%s.%N)
wait_json /workers 'sort == ["http://127.0.0.1:10001","http://127.0.0.1:10002"]' $((TTL + 1))
echo "ok: m3 left /workers after $(awk -v a="$killed" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s (TTL $TTL s)"
i=0
while [ $i -lt 10 ]; do
	req /
	[ "$code" = 307 ] || fail "GET / after the kill: $code"
	[ "$(header Location)" != http://127.0.0.1:10003 ] || fail "GET /: sent a client to the killed member"
	i=$((i + 1))
done
echo "ok: no client sent to the killed member"

# --- no member that takes clients (m4 drains): 503 with a JSON error
kill -TERM "$pid_m1" "$pid_m2"
wait_json /workers 'length == 0' 5
req /
[ "$code" = 503 ] || fail "GET / with no member: $code, expected 503"
jq -e '.error | length > 0' "$WORK/body" >/dev/null || fail "GET / with no member: no JSON error"
req /target
[ "$code" = 503 ] || fail "GET /target with no member: $code, expected 503"
echo "ok: only a draining member -> 503 $(cat "$WORK/body")"

# --- the answer's JSON stays valid whatever a member publishes: an
# address with a quote and a backslash (printable, so the library takes it);
# the gateway writes that body itself
odd='ws://q"u\\o/'
start m7 -i m7 -A "$odd" -L 0
# picked once its hold-down (15 s by default) is over
wait_json /target '.id == "m7"' 20
tbody=$(cat "$WORK/body")
[ "$(jq -r .address "$WORK/body")" = "$odd" ] && [ "$(jq -r .id "$WORK/body")" = m7 ] || fail "GET /target with m7's odd address: $(cat "$WORK/body")"
req /
[ "$code" = 307 ] && [ "$(jq -r .address "$WORK/body")" = "$odd" ] || fail "GET / with m7's odd address: $code $(cat "$WORK/body")"
kill -TERM "$pid_m7"
wait "$pid_m7"
wait_json /workers 'length == 0' 5
echo "ok: an address with a quote and a backslash comes back intact in /target and /'s body: $tbody"

# --- the registry gone: /healthz says so
"$H" stop "$WORK/etcd" || fail "cannot stop etcd"
n=$(tenths $((TTL + 3)))
while req /healthz && [ "$code" = 200 ] && [ "$n" -gt 0 ]; do
	sleep 0.1
	n=$((n - 1))
done
[ "$code" = 503 ] || fail "GET /healthz with etcd stopped: $code, expected 503"
echo "ok: etcd stopped -> /healthz 503"

# --- SIGTERM: a prompt, clean exit
kill -TERM "$gwpid"
wait_gone "$gwpid" 5 || fail "the gateway did not exit after SIGTERM"
wait "$gwpid"
rc=$?
[ $rc -eq 0 ] || fail "the gateway exited with $rc after SIGTERM"
grep -qF "successfully left the cluster" "$WORK/gw.err" || fail "the gateway did not report leaving"
echo "ok: SIGTERM -> exit 0"

# --- a join that waits for a registry that is gone: 503 meanwhile, and
# SIGTERM cancels it at once (exit 0), instead of waiting out the join
"$GWB" -k "$KEY" -r "$ENDPOINT" --http 127.0.0.1:0 >"$WORK/gw3.out" 2>"$WORK/gw3.err" </dev/null &
gw3pid=$!
pids="$pids $gw3pid"
n=$(tenths 5)
while ! grep -q '^listening http ' "$WORK/gw3.out" && [ "$n" -gt 0 ]; do
	sleep 0.1
	n=$((n - 1))
done
GW=$(sed -n 's/^listening http //p' "$WORK/gw3.out")
[ -n "$GW" ] || fail "a gateway joining a dead registry did not print 'listening http'"
req /healthz
[ "$code" = 503 ] || fail "GET /healthz while joining: $code, expected 503"
req /
[ "$code" = 503 ] || fail "GET / while joining: $code, expected 503"
jq -e '.error | test("not joined")' "$WORK/body" >/dev/null || fail "GET / while joining: $(cat "$WORK/body")"
kill -TERM "$gw3pid"
wait_gone "$gw3pid" 2 || fail "SIGTERM did not cancel the join within 2 s"
wait "$gw3pid"
rc=$?
[ $rc -eq 0 ] || fail "the gateway exited with $rc after SIGTERM during its join"
echo "ok: joining a dead registry: 503 meanwhile, SIGTERM -> exit 0 at once"

echo "test_cli_gateway: all passed"
exit 0
