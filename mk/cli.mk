# SPDX-License-Identifier: Apache-2.0
# cluster-test: the demo CLI, an ordinary client of the public header only
# (its include path deliberately lacks libcluster/).
bin_PROGRAMS += cluster-test/cluster-test
cluster_test_cluster_test_SOURCES = \
	cluster-test/cluster-test.h \
	cluster-test/cluster-test.c \
	cluster-test/options.c \
	cluster-test/output.c \
	cli-common/cli-common.h \
	cli-common/cli-common.c
cluster_test_cluster_test_CPPFLAGS = -I$(top_srcdir)/include -I$(top_srcdir)/cli-common
cluster_test_cluster_test_LDADD = libcluster/libcluster.la

TESTS += tests/test_cli_static.sh tests/test_cli_usage.sh tests/test_cli_shards.sh
EXTRA_DIST += tests/test_cli_static.sh tests/test_cli_usage.sh tests/test_cli_shards.sh tests/test_cli_lib.sh
