#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cluster-test against the etcd production runs: https:// with mutual TLS
# and auth, a throw-away PKI made by openssl, a user whose role covers only
# the test cluster's keys. The options are named as etcdctl names them
# (--cacert, --cert, --key, --user); the password comes from a file or
# $CLUSTER_PASSWORD, never from argv, and never shows in a message or in
# ps. Each wrong setting exits 1 with its cause.

. "${top_srcdir:-.}/tests/test_cli_lib.sh"

H="$top_builddir/tests/etcd-harness"
PASSWORD='cli-Secret-4d2a'
"$H" available
case $? in
0) ;;
77) echo "SKIP: etcd is not installed (Debian package etcd-server)"; exit 77 ;;
*) echo "FAIL: etcd is required (CLUSTER_REQUIRE_ETCD) but not installed"; exit 1 ;;
esac
PKI="$WORK/pki"
"$H" pki "$PKI" || { echo "FAIL: cannot make a PKI (openssl)"; exit 1; }
export ETCDH_PKI="$PKI"
ENDPOINT=$("$H" start "$WORK/etcd" --cert-file "$PKI/server.crt" --key-file "$PKI/server.key" \
	--client-cert-auth --trusted-ca-file "$PKI/ca.crt") || { echo "FAIL: cannot start a TLS etcd"; exit 1; }
trap '"$H" stop "$WORK/etcd" >/dev/null 2>&1; cleanup' EXIT
"$H" auth "$WORK/etcd" root-pw && "$H" user "$WORK/etcd" root-pw app "$PASSWORD" /clitls/ ||
	{ echo "FAIL: cannot turn auth on"; exit 1; }
printf '%s\n' "$PASSWORD" >"$WORK/app.pw"
TLS="--cacert $PKI/ca.crt --cert $PKI/client.crt --key $PKI/client.key"

# no_password TAG: the password is in none of TAG's output
no_password()
{
	! grep -q -F -e "$PASSWORD" "$WORK/$1.err" "$WORK/$1.out" || fail "$1: the password appears in its output"
}

case_join_with_password_file()
{
	# shellcheck disable=SC2086
	start_ct a -v -k clitls -i a -r "$ENDPOINT" -t 3 $TLS --user app --password-file "$WORK/app.pw"
	joined a || return
	# what ps shows: the command line, from /proc
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -F -e "--password-file" || fail "cannot read a's command line" || return
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -F -e "$PASSWORD" && { fail "the password is on a's command line"; return; }
	# a second member with the password in the environment
	# shellcheck disable=SC2086
	CLUSTER_PASSWORD="$PASSWORD" "$CT" -v -k clitls -i b -r "$ENDPOINT" -t 3 $TLS --user app \
		>"$WORK/b.out" 2>"$WORK/b.err" </dev/null &
	pid=$!
	pids="$pids $pid"
	joined b || return
	wait_for "$WORK/a.err" 'total cluster worker count: 2' || fail "a did not see b join" || return
	kill -TERM "$pid"
	wait_exit "$pid"
	[ "$rc" -eq 0 ] || fail "b exited with $rc after SIGTERM" || return
	# a's second "total 1": b's leave revoked its lease (TTL 3 s; seen well before)
	n=$(scaled 2)0
	while [ "$(grep -c 'total cluster worker count: 1$' "$WORK/a.err")" -lt 2 ] && [ "$n" -gt 0 ]; do
		sleep 0.1
		n=$((n - 1))
	done
	[ "$n" -gt 0 ] || fail "a did not see b leave within $(scaled 2) s" || return
	no_password a && no_password b
}

case_wrong_password()
{
	printf 'not-%s\n' "$PASSWORD" >"$WORK/wrong.pw"
	# shellcheck disable=SC2086
	run_ct wrong -v -k clitls -i w -r "$ENDPOINT" $TLS --user app --password-file "$WORK/wrong.pw"
	[ "$rc" -eq 1 ] || fail "exit $rc, expected 1" || return
	has "$WORK/wrong.err" 'invalid user ID or password' || fail "the reason is not named" || return
	has "$WORK/wrong.err" '^cluster-test: failed to join cluster: the registry refused the credentials$' ||
		fail "the final line does not say the credentials were refused" || return
	! grep -q -F -e "not-$PASSWORD" "$WORK/wrong.err" || fail "the wrong password appears in the output"
}

case_no_ca()
{
	run_ct noca -k clitls -i n -r "$ENDPOINT" --cert "$PKI/client.crt" --key "$PKI/client.key" --user app \
		--password-file "$WORK/app.pw"
	[ "$rc" -eq 1 ] || fail "exit $rc, expected 1" || return
	has "$WORK/noca.err" 'TLS: SSL certificate problem' || fail "the reason is not named" || return
	# a TLS failure once ended with "Permission denied", like bad credentials
	has "$WORK/noca.err" '^cluster-test: failed to join cluster: TLS failure' ||
		fail "the final line does not say TLS"
}

case_expired_client_certificate()
{
	run_ct expired -k clitls -i x -r "$ENDPOINT" --cacert "$PKI/ca.crt" --cert "$PKI/expired-client.crt" \
		--key "$PKI/expired-client.key" --user app --password-file "$WORK/app.pw"
	[ "$rc" -eq 1 ] || fail "exit $rc, expected 1" || return
	has "$WORK/expired.err" "client certificate .*expired-client.crt' expired on" || fail "the reason is not named"
}

case_usage_errors()
{
	run_ct nopw -k clitls -r "$ENDPOINT" --user app
	[ "$rc" -eq 2 ] || fail "--user without a password: exit $rc, expected 2" || return
	has "$WORK/nopw.err" 'needs a password' || fail "--user without a password: not said" || return
	run_ct nokey -k clitls -r "$ENDPOINT" --cert "$PKI/client.crt"
	[ "$rc" -eq 2 ] || fail "--cert without --key: exit $rc, expected 2" || return
	run_ct nofile -k clitls -r "$ENDPOINT" --user app --password-file "$WORK/none.pw"
	[ "$rc" -eq 1 ] || fail "a missing password file: exit $rc, expected 1" || return
	has "$WORK/nofile.err" "cannot read the password file .*none.pw" || fail "a missing password file: not said"
}

run_case "join over mutual TLS with a password file and with CLUSTER_PASSWORD" case_join_with_password_file
run_case "a wrong password is named and never shown" case_wrong_password
run_case "no CA: the server's certificate is not trusted" case_no_ca
run_case "an expired client certificate is named" case_expired_client_certificate
run_case "--user without a password, --cert without --key, a missing password file" case_usage_errors
finish
