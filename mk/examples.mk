# SPDX-License-Identifier: Apache-2.0
# examples/: complete programs for users to copy (examples/README.md).
# Check programs, never installed: `make check` builds them so that they
# keep compiling against the public header, and tests/test_examples.sh
# runs them. Like any outside program they see include/ only (not
# libcluster/) and link the installed library, not the core.
check_PROGRAMS += examples/shard-worker examples/ws-server examples/static-cluster
examples_shard_worker_SOURCES = examples/shard-worker.c
examples_shard_worker_CPPFLAGS = -I$(top_srcdir)/include
examples_shard_worker_LDADD = libcluster/libcluster.la $(PTHREAD_LIBS)
examples_ws_server_SOURCES = examples/ws-server.c
examples_ws_server_CPPFLAGS = -I$(top_srcdir)/include
examples_ws_server_LDADD = libcluster/libcluster.la $(PTHREAD_LIBS)
examples_static_cluster_SOURCES = examples/static-cluster.c
examples_static_cluster_CPPFLAGS = -I$(top_srcdir)/include
examples_static_cluster_LDADD = libcluster/libcluster.la

# Each example run for real: static-cluster alone, shard-worker and
# ws-server against a private etcd (the harness).
TESTS += tests/test_examples.sh
EXTRA_DIST += tests/test_examples.sh examples/README.md
tests/test_examples.log: tests/etcd-harness$(EXEEXT) examples/shard-worker$(EXEEXT) \
	examples/ws-server$(EXEEXT) examples/static-cluster$(EXEEXT)
