# SPDX-License-Identifier: Apache-2.0
# Shard ownership: the public calls and the static split (shards.c), the
# pure assignment (record, planner, diff), and the shard thread that keeps
# an instance in step with the record through an engine's store.
LIBCLUSTER_SOURCES += \
	libcluster/shards.c \
	libcluster/shard-map.h \
	libcluster/shard-map.c \
	libcluster/shard-sync.h \
	libcluster/shard-sync.c

CMOCKA_TESTS += tests/test_shard_map tests/test_shards_api
tests_test_shard_map_SOURCES = tests/test_shard_map.c tests/testrng.h
tests_test_shard_map_CFLAGS = $(TEST_CFLAGS)
tests_test_shard_map_LDADD = $(TEST_LDADD)
# malloc and realloc fail on demand (the test's wrappers): GNU ld, as on the CI
tests_test_shard_map_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=malloc -Wl,--wrap=realloc
tests_test_shards_api_SOURCES = tests/test_shards_api.c tests/testutil.h
tests_test_shards_api_CFLAGS = $(TEST_CFLAGS)
tests_test_shards_api_LDADD = $(TEST_LDADD)
