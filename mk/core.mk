# SPDX-License-Identifier: Apache-2.0
# Core: public API, logging, pure view math, static engine.
LIBCLUSTER_SOURCES += \
	libcluster/cluster-int.h \
	libcluster/cluster.c \
	libcluster/log.c \
	libcluster/escape.c \
	libcluster/cert.h \
	libcluster/cert.c \
	libcluster/json.h \
	libcluster/json.c \
	libcluster/notify.c \
	libcluster/util.h \
	libcluster/util.c \
	libcluster/waker.h \
	libcluster/waker.c \
	libcluster/engine.h \
	libcluster/view.h \
	libcluster/view.c \
	libcluster/member-table.h \
	libcluster/member-table.c \
	libcluster/status-fold.h \
	libcluster/status-fold.c \
	libcluster/engine-static.c \
	libcluster/engine-etcd2.c \
	libcluster/etcd2-proto.h \
	libcluster/etcd2-proto.c

# Test programs that use cmocka go in CMOCKA_TESTS, never straight into
# check_PROGRAMS/TESTS: Makefile.am adds them only when configure found it.
CMOCKA_TESTS += tests/test_view tests/test_member_table tests/test_status_fold tests/test_escape tests/test_cert tests/test_api tests/test_static tests/test_etcd2_proto
check_PROGRAMS += tests/headertest
TESTS += tests/headertest tests/check-exports.sh
EXTRA_DIST += tests/check-exports.sh tests/exports.txt tests/tsan.supp

tests_test_view_SOURCES = tests/test_view.c
tests_test_view_CFLAGS = $(TEST_CFLAGS)
tests_test_view_LDADD = $(TEST_LDADD)
tests_test_member_table_SOURCES = tests/test_member_table.c tests/failmalloc.h tests/testrng.h
tests_test_member_table_CFLAGS = $(TEST_CFLAGS)
tests_test_member_table_LDADD = $(TEST_LDADD)
# malloc fails on demand (the test's __wrap_malloc): GNU ld, as on the CI
tests_test_member_table_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=malloc
tests_test_status_fold_SOURCES = tests/test_status_fold.c tests/failmalloc.h tests/testrng.h
tests_test_status_fold_CFLAGS = $(TEST_CFLAGS)
tests_test_status_fold_LDADD = $(TEST_LDADD)
# malloc fails on demand, as for test_member_table
tests_test_status_fold_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=malloc
tests_test_cert_SOURCES = tests/test_cert.c
tests_test_cert_CFLAGS = $(TEST_CFLAGS)
tests_test_cert_LDADD = $(TEST_LDADD)
tests_test_escape_SOURCES = tests/test_escape.c
tests_test_escape_CFLAGS = $(TEST_CFLAGS)
tests_test_escape_LDADD = $(TEST_LDADD)
tests_test_etcd2_proto_SOURCES = tests/test_etcd2_proto.c
tests_test_etcd2_proto_CFLAGS = $(TEST_CFLAGS)
tests_test_etcd2_proto_LDADD = $(TEST_LDADD)
tests_test_api_SOURCES = tests/test_api.c tests/testutil.h
tests_test_api_CFLAGS = $(TEST_CFLAGS)
tests_test_api_LDADD = $(TEST_LDADD)
tests_test_static_SOURCES = tests/test_static.c tests/testutil.h
tests_test_static_CFLAGS = $(TEST_CFLAGS)
tests_test_static_LDADD = $(TEST_LDADD)

# The public header alone, strict C99 and C++. Its own warning flags (not
# WARN_CFLAGS, which are C-only); -Werror only with --enable-werror, so a
# newer compiler's new warning cannot break a user's `make check`.
tests_headertest_SOURCES = tests/headertest.c
tests_headertest_CFLAGS = -std=c99 -pedantic -Wall -Wextra $(WERROR_CFLAGS)
tests_headertest_LDADD = libcluster/libcluster.la
# Only where a C++ compiler really works (configure checks; see Makefile.am's
# check-local for the note when it does not).
if HAVE_CXX
check_PROGRAMS += tests/headertest-cxx
TESTS += tests/headertest-cxx
else
NOT_BUILT_CXX = tests/headertest-cxx
endif
tests_headertest_cxx_SOURCES = tests/headertest-cxx.cc
tests_headertest_cxx_CXXFLAGS = -pedantic -Wall -Wextra $(WERROR_CFLAGS)
tests_headertest_cxx_LDADD = libcluster/libcluster.la

# The etcd v2 engine against a real etcd (--enable-v2); harness in mk/integration.mk.
CMOCKA_TESTS += tests/test_etcd2
tests_test_etcd2_SOURCES = tests/test_etcd2.c $(ETCD_TEST_SOURCES)
tests_test_etcd2_CFLAGS = $(TEST_CFLAGS)
tests_test_etcd2_LDADD = $(TEST_LDADD)
