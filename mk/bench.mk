# SPDX-License-Identifier: Apache-2.0
# Benchmarks against a private etcd (each starts its own through the test
# harness). Built by `make check` so that they cannot rot (plain `make`
# builds only what gets installed); run with `make bench`
# (all four) or `make bench-convergence`, `bench-steady`, `bench-memory`,
# `bench-view`. They print figures and assert nothing, except bench-view
# (no etcd: the view's CPU per event against the old copy-and-sort
# approach), whose verdict fails when the per-event cost is not
# logarithmic in N. bench-scale (issue 13: N = 10 50 200 1000, ~10
# minutes) is not part of `make bench`: run it with `make bench-scale`, or
# old against new library with bench/compare-scale.sh. BENCH_ARGS passes
# options, e.g.
#   make bench-steady BENCH_ARGS='-d 60 10 50 200'
# bench-pick needs no registry (pure pick code and a static handle): it
# prints the pick's cost at N = 1000 and 4000 and an O(1) verdict, and
# exits 1 when the verdict fails (`make bench-pick BENCH_ARGS=--no-cache`
# shows it failing with the cache disabled).
# bench-shards (shard ownership beside sorted-index ranges: moves against
# the minimum and balance from the pure planner, with a PASS/FAIL verdict
# and exit 1 on FAIL; then join/leave -> every shard at its new owner
# against a private etcd, several minutes at the default N = 3 10 50 200)
# is not part of `make bench` either: `make bench-shards`, e.g. a quick
# look with BENCH_ARGS='-S 1024 -N 3,10 -M 3,10 -k 5 -r 2'.
BENCH_SOURCES = bench/benchlib.c bench/benchlib.h $(ETCD_HARNESS_SOURCES)
BENCH_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir)/tests $(CURL_CFLAGS) $(CJSON_CFLAGS)
BENCH_LDADD = libcluster/libcluster-core.la $(CURL_LIBS) $(CJSON_LIBS) $(PTHREAD_LIBS)

check_PROGRAMS += bench/bench-convergence bench/bench-steady bench/bench-memory bench/bench-scale
bench_bench_convergence_SOURCES = bench/bench-convergence.c $(BENCH_SOURCES)
bench_bench_convergence_CFLAGS = $(BENCH_CFLAGS)
bench_bench_convergence_LDADD = $(BENCH_LDADD)
bench_bench_steady_SOURCES = bench/bench-steady.c $(BENCH_SOURCES)
bench_bench_steady_CFLAGS = $(BENCH_CFLAGS)
bench_bench_steady_LDADD = $(BENCH_LDADD)
bench_bench_memory_SOURCES = bench/bench-memory.c $(BENCH_SOURCES)
bench_bench_memory_CFLAGS = $(BENCH_CFLAGS)
bench_bench_memory_LDADD = $(BENCH_LDADD)
check_PROGRAMS += bench/bench-view
bench_bench_view_SOURCES = bench/bench-view.c
bench_bench_view_CFLAGS = $(AM_CFLAGS)
bench_bench_view_LDADD = libcluster/libcluster-core.la $(CURL_LIBS) $(CJSON_LIBS) $(PTHREAD_LIBS)
bench_bench_scale_SOURCES = bench/bench-scale.c $(BENCH_SOURCES)
bench_bench_scale_CFLAGS = $(BENCH_CFLAGS)
bench_bench_scale_LDADD = $(BENCH_LDADD) -lm
EXTRA_DIST += bench/compare-scale.sh bench/pprof-split.py

check_PROGRAMS += bench/bench-pick
bench_bench_pick_SOURCES = bench/bench-pick.c
bench_bench_pick_CFLAGS = $(AM_CFLAGS)
bench_bench_pick_LDADD = libcluster/libcluster-core.la $(CURL_LIBS) $(CJSON_LIBS) $(PTHREAD_LIBS)

check_PROGRAMS += bench/bench-shards
bench_bench_shards_SOURCES = bench/bench-shards.c $(BENCH_SOURCES)
bench_bench_shards_CFLAGS = $(BENCH_CFLAGS)
bench_bench_shards_LDADD = $(BENCH_LDADD)

bench-convergence: bench/bench-convergence$(EXEEXT)
	ETCD='$(ETCD)' ./bench/bench-convergence$(EXEEXT) $(BENCH_ARGS)
bench-steady: bench/bench-steady$(EXEEXT)
	ETCD='$(ETCD)' ./bench/bench-steady$(EXEEXT) $(BENCH_ARGS)
bench-memory: bench/bench-memory$(EXEEXT)
	ETCD='$(ETCD)' ./bench/bench-memory$(EXEEXT) $(BENCH_ARGS)
bench-view: bench/bench-view$(EXEEXT)
	./bench/bench-view$(EXEEXT) $(BENCH_ARGS)
bench-scale: bench/bench-scale$(EXEEXT)
	ETCD='$(ETCD)' ./bench/bench-scale$(EXEEXT) $(BENCH_ARGS)
bench-pick: bench/bench-pick$(EXEEXT)
	./bench/bench-pick$(EXEEXT) $(BENCH_ARGS)
bench-shards: bench/bench-shards$(EXEEXT)
	ETCD='$(ETCD)' ./bench/bench-shards$(EXEEXT) $(BENCH_ARGS)
bench: bench/bench-convergence$(EXEEXT) bench/bench-steady$(EXEEXT) bench/bench-memory$(EXEEXT) bench/bench-view$(EXEEXT) bench/bench-pick$(EXEEXT)
	ETCD='$(ETCD)' ./bench/bench-convergence$(EXEEXT)
	ETCD='$(ETCD)' ./bench/bench-steady$(EXEEXT)
	ETCD='$(ETCD)' ./bench/bench-memory$(EXEEXT)
	./bench/bench-view$(EXEEXT)
	./bench/bench-pick$(EXEEXT)
.PHONY: bench bench-convergence bench-steady bench-memory bench-view bench-scale bench-pick bench-shards bench-gateway

# cluster-gateway beside HAProxy (issue 8): HTTP redirects, the TCP proxy
# and 10,000 idle connections; needs Debian's haproxy and wrk. Not part
# of `make bench`: make bench-gateway [BENCH_ARGS='-d 10'].
check_PROGRAMS += bench/tcp-load
bench_tcp_load_SOURCES = bench/tcp-load.c
EXTRA_DIST += bench/bench-gateway.sh
bench-gateway: bench/tcp-load$(EXEEXT) tests/etcd-harness$(EXEEXT) cluster-test/cluster-test$(EXEEXT) cluster-gateway/cluster-gateway$(EXEEXT)
	top_builddir=. $(SHELL) $(srcdir)/bench/bench-gateway.sh $(BENCH_ARGS)
