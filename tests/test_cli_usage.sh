#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cluster-test's command line: -h, and every bad input rejected with the
# right exit code (1: the library refused the value, 2: usage) and a
# message naming the field. No registry is needed.

. "${top_srcdir:-.}/tests/test_cli_lib.sh"

# expect_reject CODE REGEX ARGS...: cluster-test ARGS exits with CODE, never
# joins, prints nothing on stdout, and stderr has a line matching REGEX.
expect_reject()
{
	code=$1
	regex=$2
	shift 2
	run_ct bad "$@"
	[ "$rc" -eq "$code" ] || fail "exit code $rc, expected $code" || return
	has "$WORK/bad.err" "$regex" || fail "no line matching /$regex/" || return
	[ ! -s "$WORK/bad.out" ] || fail "stdout is not empty" || return
	! has "$WORK/bad.err" 'cluster joined' || fail "it joined anyway" || return
	if [ "$code" -eq 1 ]; then
		has "$WORK/bad.err" '^cluster-test: failed to [A-Za-z ]+: Invalid argument$' ||
			fail "no 'cluster-test: failed to ...: Invalid argument' line" || return
	else
		has "$WORK/bad.err" "^Try 'cluster-test -h' for more information\.$" ||
			fail "no usage hint" || return
	fi
}

# --- -h -------------------------------------------------------------------

case_help()
{
	run_ct help -h
	[ "$rc" -eq 0 ] || fail "exit code $rc, expected 0" || return
	has "$WORK/help.out" '^Usage: cluster-test \[OPTIONS\]$' || fail "no usage on stdout" || return
	[ ! -s "$WORK/help.err" ] || fail "stderr is not empty" || return
	for opt in h V v F k e p i n r t P I T A L C S a J s; do
		has "$WORK/help.out" "^  -$opt(,| |$)" || fail "-$opt is not documented" || return
	done
	for opt in help version cacert cert key user password-file hold-down slow-start; do
		has "$WORK/help.out" "--$opt( |$)" || fail "--$opt is not documented" || return
	done
	has "$WORK/help.out" '^Exit status:' || fail "exit codes are not documented" || return
}

case_version()
{
	run_ct version --version
	[ "$rc" -eq 0 ] || fail "exit code $rc, expected 0" || return
	has "$WORK/version.out" '^cluster-test \(libcluster [0-9]+\.[0-9]+\.[0-9]+\)$' || fail "no version on stdout" || return
	run_ct version -V
	[ "$rc" -eq 0 ] || fail "-V: exit code $rc, expected 0" || return
	has "$WORK/version.out" '^cluster-test \(libcluster [0-9]+\.[0-9]+\.[0-9]+\)$' || fail "-V: no version on stdout"
}

# --- usage errors (exit 2) ---------------------------------------------------

case_unknown_option()   { expect_reject 2 '^cluster-test: option -x: unknown option$' -x; }
case_unknown_long()     { expect_reject 2 "^cluster-test: unknown option '--anything'$" --anything; }
case_long_missing_arg() { expect_reject 2 '^cluster-test: option --cacert: missing argument$' --cacert; }
case_missing_argument() { expect_reject 2 '^cluster-test: option -n: missing argument$' -n; }
case_stray_argument()   { expect_reject 2 "^cluster-test: unexpected argument 'node1'" node1; }
case_workers_not_num()  { expect_reject 2 "worker count must be a whole number.*'abc'" -n abc; }
case_workers_trailing() { expect_reject 2 "worker count must be a whole number.*'2x'" -n 2x; }
case_workers_huge()     { expect_reject 2 "worker count must be a whole number.*'99999999999'" -n 99999999999; }
case_index_not_num()    { expect_reject 2 "static index must be a whole number.*''" -I ''; }
case_total_not_num()    { expect_reject 2 "static total must be a whole number.*'7.5'" -T 7.5; }
case_ttl_not_num()      { expect_reject 2 "lease TTL must be a whole number.*'5s'" -t 5s; }
case_load_not_num()     { expect_reject 2 "load must be a whole number.*'lots'" -L lots; }
case_capacity_not_num() { expect_reject 2 "capacity must be a whole number.*'1.5'" -C 1.5; }
case_hold_down_not_num(){ expect_reject 2 "option --hold-down: the hold-down must be a whole number.*'2s'" --hold-down 2s; }
case_slow_start_empty() { expect_reject 2 "option --slow-start: the slow start must be a whole number.*''" --slow-start ''; }

# -s is range-checked by cluster-test itself (the library reads 0 as "off"),
# so every bad shard count is a usage error.
shards_msg='^cluster-test: option -s: the shard count must be a whole number from 1 to 1000000, not'
case_shards_missing()   { expect_reject 2 '^cluster-test: option -s: missing argument$' -s; }
case_shards_zero()      { expect_reject 2 "$shards_msg '0'\$" -s 0; }
case_shards_negative()  { expect_reject 2 "$shards_msg '-1'\$" -s -1; }
case_shards_too_many()  { expect_reject 2 "$shards_msg '1000001'\$" -s 1000001; }
case_shards_huge()      { expect_reject 2 "$shards_msg '99999999999999999999'\$" -s 99999999999999999999; }
case_shards_not_num()   { expect_reject 2 "$shards_msg 'ten'\$" -s ten; }
case_shards_empty()     { expect_reject 2 "$shards_msg ''\$" -s ''; }
case_shards_trailing()  { expect_reject 2 "$shards_msg '10 '\$" -s '10 '; }

# --- values the library refuses (exit 1) --------------------------------------

long_id=$(printf '%0129d' 0)

case_workers_zero()     { expect_reject 1 '^libcluster<3>: .*worker count 0 ' -n 0; }
case_workers_negative() { expect_reject 1 '^libcluster<3>: .*worker count -3 ' -n -3; }
case_workers_too_many() { expect_reject 1 '^libcluster<3>: .*worker count 70000 ' -n 70000; }
case_key_empty()        { expect_reject 1 "^cluster-test: invalid cluster key ''" -k ''; }
case_key_slash()        { expect_reject 1 "^cluster-test: invalid cluster key 'a/b'" -k 'a/b'; }
case_key_dotdot()       { expect_reject 1 "^cluster-test: invalid cluster key '\.\.'" -k '..'; }
case_instance_too_long(){ expect_reject 1 "^libcluster<3>: .*instance id '0+(\.\.\.)?' is invalid" -i "$long_id"; }
case_instance_empty()   { expect_reject 1 "^libcluster<3>: .*instance id '' is invalid" -i ''; }
case_env_space()        { expect_reject 1 "^libcluster<3>: .*environment 'x y' is invalid" -e 'x y'; }
case_env_empty()        { expect_reject 1 "^libcluster<3>: .*environment '' is invalid" -e ''; }
case_partition_dot()    { expect_reject 1 "^libcluster<3>: .*partition '\.' is invalid" -p '.'; }
case_registry_ftp()     { expect_reject 1 '^libcluster<3>: .*registry URI <ftp://x>' -r 'ftp://x'; }
case_registry_broken()  { expect_reject 1 '^libcluster<3>: .*registry URI <https//broken>' -r 'https//broken'; }
case_registry_empty()   { expect_reject 1 '^libcluster<3>: .*registry URI <>' -r ''; }
case_registry_userinfo(){
	expect_reject 1 '^libcluster<3>: .*registry URI <http://\*\*\*@h:1/>: a user name or password' -r 'http://u:s3cret@h:1/' || return
	! grep -q s3cret "$WORK/bad.err" || fail "the password was printed"
}
case_list_with_shards() { expect_reject 2 '^cluster-test: -l lists the members once and exits' -l -s 4; }
case_list_with_fork()   { expect_reject 2 '^cluster-test: -l lists the members once and exits' -l -F; }
case_ttl_too_short()    { expect_reject 1 '^libcluster<3>: .*TTL 1 is invalid' -t 1; }
case_ttl_too_long()     { expect_reject 1 '^libcluster<3>: .*TTL 3601 is invalid' -t 3601; }
case_index_negative()   { expect_reject 1 '^libcluster<3>: .*index -1 is invalid' -I -1; }
case_total_zero()       { expect_reject 1 '^libcluster<3>: .*total 0 is invalid' -T 0; }
case_index_not_below()  { expect_reject 1 '^libcluster<3>: .*instance index \(7\) is not less than' -I 7 -T 7; }
case_highest_index()    { expect_reject 1 '^libcluster<3>: .*highest worker index \(5\) is not less than' -I 4 -T 5 -n 2; }
case_fork_bad_option()  { expect_reject 1 '^libcluster<3>: .*worker count 0 ' -F -n 0; }
case_load_negative()    { expect_reject 1 '^libcluster<3>: .*load' -L -1; }
case_capacity_bad()     { expect_reject 1 '^libcluster<3>: .*capacity' -C -2; }
case_capacity_below()   { expect_reject 1 '^libcluster<3>: .*capacity' -L 10 -C 5; }
case_address_space()    { expect_reject 1 '^libcluster<3>: .*address' -A 'ws://a b'; }
case_hold_down_negative(){ expect_reject 1 '^libcluster<3>: .*field hold_down_ms is invalid' --hold-down -1; }
case_slow_start_too_long(){ expect_reject 1 '^libcluster<3>: .*field slow_start_ms is invalid' --slow-start 3600001; }

# -J and -s are accepted: the run gets as far as a later library refusal
# (the shard count is set before the address, so the library took 1000000).
case_json_accepted()    { expect_reject 1 '^libcluster<3>: .*worker count 0 ' -J -n 0; }
case_shards_max_taken() {
	expect_reject 1 '^libcluster<3>: .*address' -J -s 1000000 -A 'ws://a b' || return
	has "$WORK/bad.err" '^cluster-test: failed to set the published address: ' ||
		fail "the run did not get past the shard count to the address"
}

# --- input is quoted escaped: one line per message, no raw control bytes ------

nl=$(printf '\nx'); nl=${nl%x}
esc=$(printf '\033')

# expect_escaped CODE REGEX ARGS...: rejected as expect_reject says, the
# offending value shown escaped (REGEX), and stderr holds only lines that
# start with a known prefix and carry no control or non-ASCII byte.
expect_escaped()
{
	expect_reject "$@" || return
	! grep -q -v -E -e '^(libcluster<[0-9]>|cluster-test): |^Try ' "$WORK/bad.err" ||
		fail "a line of stderr does not start with a message prefix (forged line)" || return
	! LC_ALL=C grep -q -e "$esc" -e "$(printf '\r')" -e "$(printf '\200')" -e "$(printf '\303')" "$WORK/bad.err" ||
		fail "stderr carries a raw control or non-ASCII byte" || return
}

case_instance_newline() { expect_escaped 1 "^libcluster<3>: .*instance id 'x\\\\x0aforged' is invalid" -i "x${nl}forged"; }
case_env_escape()       { expect_escaped 1 "^libcluster<3>: .*environment 'a\\\\x1b\\[31mred' is invalid" -e "a${esc}[31mred"; }
case_registry_newline() { expect_escaped 1 "^libcluster<3>: .*registry URI <ftp://\\\\x0ax>" -r "ftp://${nl}x"; }
case_key_newline()      { expect_escaped 1 "^cluster-test: invalid cluster key 'a\\\\x0aforged'" -k "a${nl}forged"; }
case_workers_escape()   { expect_escaped 2 "worker count must be a whole number.*'1\\\\x1b\\[2J'" -n "1${esc}[2J"; }
case_stray_newline()    { expect_escaped 2 "^cluster-test: unexpected argument 'x\\\\x0aforged'" "x${nl}forged"; }
case_shards_escape()    { expect_escaped 2 "$shards_msg '1\\\\x1b\\[2J'\$" -s "1${esc}[2J"; }
case_shards_newline()   { expect_escaped 2 "$shards_msg '5\\\\x0aforged'\$" -s "5${nl}forged"; }

for c in help version \
	unknown_option unknown_long long_missing_arg missing_argument stray_argument workers_not_num workers_trailing \
	workers_huge index_not_num total_not_num ttl_not_num load_not_num capacity_not_num \
	workers_zero workers_negative workers_too_many key_empty key_slash key_dotdot \
	instance_too_long instance_empty env_space env_empty partition_dot registry_ftp \
	registry_broken registry_empty registry_userinfo list_with_shards list_with_fork ttl_too_short ttl_too_long index_negative total_zero \
	index_not_below highest_index fork_bad_option load_negative capacity_bad \
	capacity_below address_space instance_newline env_escape registry_newline key_newline \
	workers_escape stray_newline \
	shards_missing shards_zero shards_negative shards_too_many shards_huge shards_not_num \
	shards_empty shards_trailing json_accepted shards_max_taken shards_escape shards_newline \
	hold_down_not_num slow_start_empty hold_down_negative slow_start_too_long
do
	run_case "$c" "case_$c"
done
finish
