# SPDX-License-Identifier: Apache-2.0
# etcd v3 engine: the HTTP seam (libcurl), the pure protocol module and the
# engine itself, with their unit tests (no etcd needed).
LIBCLUSTER_SOURCES += \
	libcluster/http.h \
	libcluster/http-curl.c \
	libcluster/http1-reader.h \
	libcluster/http1-reader.c \
	libcluster/linesplit.c \
	libcluster/endpoints.c \
	libcluster/etcd3-proto.h \
	libcluster/etcd3-proto.c \
	libcluster/engine-etcd3.c

CMOCKA_TESTS += tests/test_http tests/test_http1_reader tests/test_etcd3_proto tests/test_engine_hostile
EXTRA_DIST += tests/data/etcd3

tests_test_http_SOURCES = tests/test_http.c tests/fakehttp.c tests/fakehttp.h
tests_test_http_CFLAGS = $(TEST_CFLAGS)
tests_test_http_LDADD = $(TEST_LDADD)
tests_test_http1_reader_SOURCES = tests/test_http1_reader.c
tests_test_http1_reader_CFLAGS = $(TEST_CFLAGS)
tests_test_http1_reader_LDADD = $(TEST_LDADD)
tests_test_etcd3_proto_SOURCES = tests/test_etcd3_proto.c
tests_test_etcd3_proto_CFLAGS = $(TEST_CFLAGS)
tests_test_etcd3_proto_LDADD = $(TEST_LDADD)
# The engines (v3 and v2) through the public API against a server that
# answers badly (tests/fakehttp.c feeds the malformed and hostile replies).
tests_test_engine_hostile_SOURCES = tests/test_engine_hostile.c tests/fakehttp.c tests/fakehttp.h tests/testutil.h
tests_test_engine_hostile_CFLAGS = $(TEST_CFLAGS)
tests_test_engine_hostile_LDADD = $(TEST_LDADD)
