# SPDX-License-Identifier: Apache-2.0
# Integration: a private etcd per test program (the harness: process
# supervision, HTTP client, TCP proxy), the etcd scenarios, cluster-test
# against etcd, and `make demo`.

# The harness, used by the tests, the etcd-harness command and the benchmarks.
ETCD_HARNESS_SOURCES = tests/etcdharness.c tests/etcdclient.c tests/etcdproxy.c \
	tests/etcdharness.h tests/etcdharness-private.h

# The harness as a command (shell tests, the demo, the benchmarks' docs).
# A test tool, so `make check` and `make demo` build it, not `make`.
check_PROGRAMS += tests/etcd-harness
tests_etcd_harness_SOURCES = tests/etcd-harness-cli.c $(ETCD_HARNESS_SOURCES)
tests_etcd_harness_CFLAGS = $(AM_CFLAGS) $(CURL_CFLAGS) $(CJSON_CFLAGS)
tests_etcd_harness_LDADD = $(CURL_LIBS) $(CJSON_LIBS) $(PTHREAD_LIBS)

# One member in its own process (killed with SIGKILL by the tests).
check_PROGRAMS += tests/etcd-member
tests_etcd_member_SOURCES = tests/etcd-member.c
tests_etcd_member_CFLAGS = $(TEST_CFLAGS)
tests_etcd_member_LDADD = $(TEST_LDADD)

ETCD_TEST_SOURCES = $(ETCD_HARNESS_SOURCES) tests/etcdtest.c tests/etcdtest.h

CMOCKA_TESTS += tests/test_etcd_harness tests/test_etcd_membership tests/test_etcd_outage tests/test_etcd_faults tests/test_etcd_contract tests/test_etcd_shards tests/test_etcd_shards_chaos tests/test_etcd_tls tests/test_etcd_quorum tests/test_etcd_churn
TESTS += tests/test_cli_etcd.sh tests/test_cli_tls.sh
EXTRA_DIST += tests/test_cli_etcd.sh tests/test_cli_tls.sh demo/demo.sh

# The harness alone, without the library.
tests_test_etcd_harness_SOURCES = tests/test_etcd_harness.c $(ETCD_HARNESS_SOURCES)
tests_test_etcd_harness_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CURL_CFLAGS) $(CJSON_CFLAGS)
tests_test_etcd_harness_LDADD = $(CMOCKA_LIBS) $(CURL_LIBS) $(CJSON_LIBS) $(PTHREAD_LIBS)

tests_test_etcd_shards_SOURCES = tests/test_etcd_shards.c tests/shardcheck.c tests/shardcheck.h $(ETCD_TEST_SOURCES)
tests_test_etcd_shards_CFLAGS = $(TEST_CFLAGS)
tests_test_etcd_shards_LDADD = $(TEST_LDADD)
tests_test_etcd_shards_chaos_SOURCES = tests/test_etcd_shards_chaos.c tests/shardcheck.c tests/shardcheck.h $(ETCD_TEST_SOURCES)
tests_test_etcd_shards_chaos_CFLAGS = $(TEST_CFLAGS)
tests_test_etcd_shards_chaos_LDADD = $(TEST_LDADD)
tests_test_etcd_membership_SOURCES = tests/test_etcd_membership.c $(ETCD_TEST_SOURCES)
tests_test_etcd_membership_CFLAGS = $(TEST_CFLAGS)
tests_test_etcd_membership_LDADD = $(TEST_LDADD)
tests_test_etcd_outage_SOURCES = tests/test_etcd_outage.c $(ETCD_TEST_SOURCES)
tests_test_etcd_outage_CFLAGS = $(TEST_CFLAGS)
tests_test_etcd_outage_LDADD = $(TEST_LDADD)
# Reported defects (a hung endpoint, mass lease expiry, auth tokens).
tests_test_etcd_faults_SOURCES = tests/test_etcd_faults.c $(ETCD_TEST_SOURCES)
tests_test_etcd_faults_CFLAGS = $(TEST_CFLAGS)
tests_test_etcd_faults_LDADD = $(TEST_LDADD)
# A 3-member etcd: leader killed, quorum lost for 20 s, rolling restart.
tests_test_etcd_quorum_SOURCES = tests/test_etcd_quorum.c $(ETCD_TEST_SOURCES)
tests_test_etcd_quorum_CFLAGS = $(TEST_CFLAGS)
tests_test_etcd_quorum_LDADD = $(TEST_LDADD)
# Two minutes of member processes joining and leaving at random.
tests_test_etcd_churn_SOURCES = tests/test_etcd_churn.c $(ETCD_TEST_SOURCES)
tests_test_etcd_churn_CFLAGS = $(TEST_CFLAGS)
tests_test_etcd_churn_LDADD = $(TEST_LDADD)
# TLS, mutual TLS and auth against real etcds (certificates made by openssl).
tests_test_etcd_tls_SOURCES = tests/test_etcd_tls.c $(ETCD_TEST_SOURCES)
tests_test_etcd_tls_CFLAGS = $(TEST_CFLAGS)
tests_test_etcd_tls_LDADD = $(TEST_LDADD)
# The header's contract: fork rule, cancellable join, join retries,
# callbacks outside libcurl (backtrace()/dladdr(): glibc, no -ldl needed).
tests_test_etcd_contract_SOURCES = tests/test_etcd_contract.c $(ETCD_TEST_SOURCES)
tests_test_etcd_contract_CFLAGS = $(TEST_CFLAGS)
tests_test_etcd_contract_LDADD = $(TEST_LDADD)

# The shell test needs the harness and the member helper (cluster-test is
# built by `make`).
tests/test_cli_etcd.log: tests/etcd-harness$(EXEEXT) tests/etcd-member$(EXEEXT)
tests/test_cli_tls.log: tests/etcd-harness$(EXEEXT)

# The live demo: a private etcd, three cluster-test instances, one leaves.
# The harness is a check program, so name it here.
demo: all tests/etcd-harness$(EXEEXT) tests/tcp-helper$(EXEEXT)
	@top_builddir='$(abs_top_builddir)' top_srcdir='$(abs_top_srcdir)' ETCD='$(ETCD)' \
		$(SHELL) $(top_srcdir)/demo/demo.sh
