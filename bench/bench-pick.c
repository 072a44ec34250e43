/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-pick: what one herd-safe pick costs at N = 1000 and 4000 members.
 *
 * Three figures per N, measured in the same run:
 * - uncached (the yardstick: what every cluster_pick_target() did before
 *   the cache): a fresh copy of the node array and cluster__adv_pick(),
 *   which computes the whole plan, per pick. It leaves out the copy of the
 *   member records the library also made, so the old path was slower;
 * - cached: the picker (advisor-picker.h) built once for the snapshot, then
 *   cluster__adv_picker_pick() per pick; its build time is printed too;
 * - API: cluster_pick_target() on a joined handle whose view holds the N
 *   members (injected as an engine publishes them), i.e. the cached path
 *   with its locks, clock and copy-out.
 * Then the verdict: the cached pick is O(1) amortised if its cost at 4000
 * is at most 1.5x its cost at 1000. --no-cache measures the "cached"
 * figure through the uncached path instead, to show the verdict failing.
 * Each figure is the best of a few repetitions, in this thread's CPU time
 * (the machine may be shared: time spent descheduled does not count).
 * No registry needed; a few seconds.
 *
 *   bench-pick [--no-cache]
 */
#ifdef HAVE_CONFIG_H
# include "config.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "advisor.h"
#include "advisor-picker.h"
#include "engine.h"
#include "util.h"
#include "view.h"

#define REPS 7

static char (*ids)[16];

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: a busy machine does not count */
	return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}

/* N members after a rolling deploy: loads spread 0..2000 (so about half
 * are below their share and new clients have somewhere to go), a few
 * bounded, one draining, all fresh. */
static void
make_nodes(cluster__adv_node *v, size_t n)
{
	uint64_t rng = 20240601 ^ n;
	size_t i;

	for(i = 0; i < n; i++)
	{
		memset(&v[i], 0, sizeof(v[i]));
		v[i].id = ids[i];
		v[i].workers = 1;
		v[i].has_status = 1;
		v[i].load = (long long) cluster__adv_random_below(&rng, 2000);
		v[i].capacity = i % 10 == 3 ? v[i].load + 500 : i == 7 ? 0 :
																 CLUSTER_CAPACITY_UNBOUNDED;
		v[i].mod_revision = 1 + (int64_t) i;
		v[i].received_ms = 1;
	}
}

/* The old path: snapshot copy + full plan per pick. ns per pick. */
static double
run_uncached(const cluster__adv_node *v, size_t n, const CLUSTERADVISORCONFIG *cfg, int picks)
{
	cluster__adv_prov prov = { NULL, 0, 0 };
	uint64_t rng = 7;
	double t0 = now_ns(), t1;
	int k;

	for(k = 0; k < picks; k++)
	{
		cluster__adv_node *snap = malloc(n * sizeof(*snap));
		size_t at = 0;

		if(!snap)
		{
			break;
		}
		memcpy(snap, v, n * sizeof(*snap));
		if(cluster__adv_pick(snap, n, CLUSTER__ADV_NO_SELF, cfg, &prov, 1000 + k / 100, &rng, &at) == ENOMEM)
		{
			fprintf(stderr, "bench-pick: out of memory\n");
		}
		free(snap);
	}
	t1 = now_ns();
	cluster__adv_prov_free(&prov);
	return (t1 - t0) / picks;
}

/* The cached path: one build, then picks. ns per pick; the build's time
 * through *build_ns. */
static double
run_cached(const cluster__adv_node *v, size_t n, const CLUSTERADVISORCONFIG *cfg, int picks, double *build_ns)
{
	cluster__adv_prov prov = { NULL, 0, 0 };
	cluster__adv_picker pk;
	uint64_t rng = 7;
	double t0 = now_ns(), t1, t1b, t2;
	int k;

	if(cluster__adv_picker_build(&pk, v, n, CLUSTER__ADV_NO_SELF, cfg, &prov, 1000))
	{
		fprintf(stderr, "bench-pick: out of memory\n");
		return 0;
	}
	t1 = now_ns();
	for(k = 0; k < picks / 10; k++)
	{
		size_t at = 0;

		cluster__adv_picker_pick(&pk, &prov, 1000, &rng, &at); /* warm-up, untimed */
	}
	t1b = now_ns();
	for(k = 0; k < picks; k++)
	{
		size_t at = 0;

		cluster__adv_picker_pick(&pk, &prov, 1000 + k / 100, &rng, &at);
	}
	t2 = now_ns();
	cluster__adv_picker_free(&pk);
	cluster__adv_prov_free(&prov);
	*build_ns = t1 - t0;
	return (t2 - t1b) / picks;
}

/* The public API on a joined handle holding the N members: ns per pick,
 * or -1 when the handle cannot be set up. */
static double
run_api(const cluster__adv_node *v, size_t n, int picks)
{
	CLUSTER *c = cluster_create("benchpick");
	cluster__member *m = calloc(n, sizeof(*m));
	CLUSTERMEMBER t;
	double t0, t1, best = -1;
	size_t i;
	int k, rep;

	if(!c || !m || cluster_set_instance(c, ids[0]) || cluster_join(c))
	{
		free(m);
		cluster_destroy(c);
		return -1;
	}
	for(i = 0; i < n; i++)
	{
		snprintf(m[i].id, sizeof(m[i].id), "%s", v[i].id);
		snprintf(m[i].address, sizeof(m[i].address), "ws://%s:8080", v[i].id);
		m[i].workers = 1;
		m[i].has_status = 1;
		m[i].load = v[i].load;
		m[i].capacity = v[i].capacity;
		m[i].mod_revision = v[i].mod_revision;
		m[i].received_ms = cluster__now_ms();
	}
	if(cluster__publish_view(c, m, n, 1))
	{
		free(m);
		cluster_destroy(c);
		return -1;
	}
	cluster_pick_target(c, &t); /* the build */
	for(rep = 0; rep < REPS; rep++)
	{
		t0 = now_ns();
		for(k = 0; k < picks; k++)
		{
			cluster_pick_target(c, &t);
		}
		t1 = now_ns();
		if(best < 0 || (t1 - t0) / picks < best)
		{
			best = (t1 - t0) / picks;
		}
	}
	cluster_leave(c);
	cluster_destroy(c);
	free(m);
	return best;
}

int
main(int argc, char **argv)
{
	static const size_t sizes[2] = { 1000, 4000 };
	CLUSTERADVISORCONFIG cfg;
	cluster__adv_node *v[2];
	double cached[2], uncached[2], build[2], api[2];
	int no_cache = 0, s, rep, ok;

	if(argc > 1 && !strcmp(argv[1], "--no-cache"))
	{
		no_cache = 1;
	}
	else if(argc > 1)
	{
		fprintf(stderr, "usage: bench-pick [--no-cache]\n");
		return 2;
	}
	ids = calloc(4000, sizeof(*ids));
	if(!ids)
	{
		return 1;
	}
	for(s = 0; s < 4000; s++)
	{
		snprintf(ids[s], sizeof(ids[s]), "m%06d", s);
	}
	cluster_advisor_config_init(&cfg);
	printf("## bench-pick: cost of one herd-safe pick (new client, not a member)%s\n\n", no_cache ? " -- CACHE DISABLED (--no-cache)" : "");
	printf("| %5s | %-30s | %-22s | %-16s | %-24s |\n", "N", "uncached (copy + plan) ns/pick", "cached ns/pick", "cache build ms", "cluster_pick_target ns");
	printf("|-------|--------------------------------|------------------------|------------------|--------------------------|\n");
	for(s = 0; s < 2; s++)
	{
		v[s] = calloc(sizes[s], sizeof(*v[s]));
		if(!v[s])
		{
			return 1;
		}
		make_nodes(v[s], sizes[s]);
		uncached[s] = cached[s] = build[s] = -1;
	}
	/* the two sizes alternate, so that a busy moment of the machine
	 * does not fall on one of them only; the best of the repetitions */
	for(rep = 0; rep < REPS; rep++)
	{
		for(s = 0; s < 2; s++)
		{
			double u = run_uncached(v[s], sizes[s], &cfg, sizes[s] > 2000 ? 40 : 150);

			uncached[s] = uncached[s] < 0 || u < uncached[s] ? u : uncached[s];
		}
	}
	for(rep = 0; rep < REPS; rep++)
	{
		for(s = 0; s < 2; s++)
		{
			double b = 0, p = no_cache ? run_uncached(v[s], sizes[s], &cfg, sizes[s] > 2000 ? 40 : 150) : run_cached(v[s], sizes[s], &cfg, 100000, &b);

			cached[s] = cached[s] < 0 || p < cached[s] ? p : cached[s];
			build[s] = build[s] < 0 || b < build[s] ? b : build[s];
		}
	}
	for(s = 0; s < 2; s++)
	{
		api[s] = no_cache ? -1 : run_api(v[s], sizes[s], 100000);
		if(api[s] < 0)
		{
			printf("| %5zu | %30.0f | %22.0f | %16s | %24s |\n", sizes[s], uncached[s], cached[s], "-", "-");
		}
		else
		{
			printf("| %5zu | %30.0f | %22.0f | %16.3f | %24.0f |\n", sizes[s], uncached[s], cached[s], build[s] / 1e6, api[s]);
		}
		free(v[s]);
	}
	ok = cached[1] <= 1.5 * cached[0];
	printf("\nyardstick (uncached): cost at 4000 = %.2fx cost at 1000\n", uncached[1] / uncached[0]);
	printf("cached: %.0fx cheaper than uncached at 1000, %.0fx at 4000%s\n", uncached[0] / cached[0], uncached[1] / cached[1],
		no_cache ? " (the same path: the cache is disabled)" : "");
	if(api[0] > 0 && api[1] > 0)
	{
		printf("cluster_pick_target (cached, with locks): cost at 4000 = %.2fx cost at 1000\n", api[1] / api[0]);
	}
	printf("O(1) amortised: cost at 4000 <= 1.5x cost at 1000 -> %s (%.0f ns vs %.0f ns: %.2fx)\n", ok ? "PASS" : "FAIL", cached[1], cached[0], cached[1] / cached[0]);
	free(ids);
	return ok ? 0 : 1;
}
