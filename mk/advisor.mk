# SPDX-License-Identifier: Apache-2.0
# Connection advisor: pure plan/pick arithmetic, the public API and its
# thread, the unit and etcd tests, and the deterministic simulator.
LIBCLUSTER_SOURCES += \
	libcluster/advisor.h \
	libcluster/advisor.c \
	libcluster/advisor-picker.h \
	libcluster/advisor-picker.c \
	libcluster/advisor-inflight.h \
	libcluster/advisor-inflight.c \
	libcluster/advisor-api.c \
	libcluster/report-policy.h \
	libcluster/report-policy.c

CMOCKA_TESTS += tests/test_advisor tests/test_advisor_inflight tests/test_advisor_api tests/test_etcd_advisor tests/test_report_policy

tests_test_advisor_SOURCES = tests/test_advisor.c
tests_test_advisor_CFLAGS = $(TEST_CFLAGS)
tests_test_advisor_LDADD = $(TEST_LDADD)
tests_test_advisor_inflight_SOURCES = tests/test_advisor_inflight.c
tests_test_advisor_inflight_CFLAGS = $(TEST_CFLAGS)
tests_test_advisor_inflight_LDADD = $(TEST_LDADD)
tests_test_advisor_api_SOURCES = tests/test_advisor_api.c tests/testutil.h
tests_test_advisor_api_CFLAGS = $(TEST_CFLAGS)
tests_test_advisor_api_LDADD = $(TEST_LDADD)
tests_test_report_policy_SOURCES = tests/test_report_policy.c
tests_test_report_policy_CFLAGS = $(TEST_CFLAGS)
tests_test_report_policy_LDADD = $(TEST_LDADD)
# Against a real etcd (skipped when etcd is absent and CLUSTER_REQUIRE_ETCD unset).
tests_test_etcd_advisor_SOURCES = tests/test_etcd_advisor.c tests/testutil.h $(ETCD_TEST_SOURCES)
tests_test_etcd_advisor_CFLAGS = $(TEST_CFLAGS)
tests_test_etcd_advisor_LDADD = $(TEST_LDADD)

# The simulator: the same pure code the library runs, on a fake clock.
# Built by `make check` (so it cannot rot) and `make bench-advisor`, not by `make`.
check_PROGRAMS += bench/advisor-sim
bench_advisor_sim_SOURCES = bench/advisor-sim.c bench/sim.h bench/sim-judge.c bench/sim-seeds.h bench/sim-seeds.c
bench_advisor_sim_CFLAGS = $(AM_CFLAGS)
bench_advisor_sim_LDADD = libcluster/libcluster-core.la $(CURL_LIBS) $(CJSON_LIBS) $(PTHREAD_LIBS)

# make check runs it too: every goal must pass, and --break must fail.
TESTS += tests/test_advisor_sim.sh
EXTRA_DIST += tests/test_advisor_sim.sh

bench-advisor: bench/advisor-sim$(EXEEXT)
	./bench/advisor-sim$(EXEEXT) $(BENCH_ARGS)
.PHONY: bench-advisor
