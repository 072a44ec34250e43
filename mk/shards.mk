# SPDX-License-Identifier: Apache-2.0
# Shard ownership: the pure assignment (record, planner, diff).
LIBCLUSTER_SOURCES += libcluster/shard-map.h libcluster/shard-map.c

CMOCKA_TESTS += tests/test_shard_map
tests_test_shard_map_SOURCES = tests/test_shard_map.c
tests_test_shard_map_CFLAGS = $(TEST_CFLAGS)
tests_test_shard_map_LDADD = $(TEST_LDADD)
# malloc and realloc fail on demand (the test's wrappers): GNU ld, as on the CI
tests_test_shard_map_LDFLAGS = $(AM_LDFLAGS) -Wl,--wrap=malloc -Wl,--wrap=realloc
