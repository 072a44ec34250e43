/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-memory: resident memory and threads per joined instance.
 *
 * For each N, N handles join one cluster in this process; VmRSS and the
 * thread count from /proc/self/status are read before and after the
 * joins (and after everyone left), and the growth is divided by N. Beside
 * it, the heap bytes in use (glibc's mallinfo2: what the library and
 * libcurl hold allocated, without thread stacks and without free memory
 * the allocator keeps), so that RSS can be told from fragmentation; and
 * the RSS growth split into thread stacks and anonymous memory (arenas).
 *
 * With -a every member is an advisor user: it reports a load and sets
 * the advisor configuration, so it publishes a status and keeps everyone
 * else's; the figures are read once the last member sees every status.
 * With -p every member is an advisor user that also picks, as a
 * WebSocket server that places clients does: once every status is seen,
 * each member makes one pick (cluster_pick_target(), whose cache it then
 * holds) and one round of advice (cluster_advice(), which fills its table
 * of arrivals for the hold-down) before the figures are read.
 *
 *   bench-memory [-a | -p] [N ...]   (default: 1 10 50 200)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "benchlib.h"
#include "etcdharness.h"

static int advisor_users; /* 1: -a, 2: -p (they pick too) */

/* Resident kB of thread stacks and of everything else anonymous (the
 * malloc arenas and [heap]), from /proc/self/smaps: the heap column says
 * what is allocated; this says which of it, and how much stack, the
 * kernel holds in memory. A thread stack is told by the inaccessible
 * guard page mapped just below it, whatever its size. */
static void
rss_split(long *stacks, long *anon)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	unsigned long guard_end = 0;
	int cls = 0; /* 1: a stack, 2: other anonymous memory or [heap] */

	*stacks = *anon = 0;
	if(!f)
	{
		return;
	}
	while(fgets(line, sizeof(line), f))
	{
		unsigned long lo, hi;
		char perm[8], name[256] = "";
		long kb;

		if(sscanf(line, "%lx-%lx %7s %*s %*s %*s %255s", &lo, &hi, perm, name) >= 3)
		{
			int blank = !name[0];

			cls = blank && lo == guard_end && perm[0] == 'r' ? 1 : blank || !strcmp(name, "[heap]") ? 2 :
																									  0;
			guard_end = blank && !strncmp(perm, "---", 3) && hi - lo == 4096 ? hi : 0;
		}
		else if(cls && sscanf(line, "Rss: %ld kB", &kb) == 1)
		{
			*(cls == 1 ? stacks : anon) += kb;
		}
	}
	fclose(f);
}

/* Wait until member m's view holds n statuses (s seconds at most). */
static int
wait_statuses(CLUSTER *c, size_t n, int s)
{
	int k;

	for(k = 0; k < s * 100; k++)
	{
		CLUSTERMEMBER *v = NULL;
		size_t count = 0, i, seen = 0;

		if(cluster_members(c, &v, &count) == 0)
		{
			for(i = 0; i < count; i++)
			{
				seen += v[i].has_status != 0;
			}
			cluster_members_free(v);
			if(seen >= n)
			{
				return 0;
			}
		}
		usleep(10000);
	}
	fprintf(stderr, "bench: statuses did not all arrive within %d s\n", s);
	return -1;
}

static int
run_n(etcdh *h, int n)
{
	bl_member **m = calloc((size_t) n, sizeof(*m));
	char key[64], id[64];
	long rss0, rss1, rss2, st0, st1, an0, an1;
	double heap0, heap1;
	int th0, th1, th2, i, joined = 0, rc = 0;

	snprintf(key, sizeof(key), "mem%d", n);
	rss0 = bl_rss_kb();
	rss_split(&st0, &an0);
	heap0 = bl_heap_kb();
	th0 = bl_threads();
	for(i = 0; i < n; i++)
	{
		snprintf(id, sizeof(id), "m%05d", i);
		m[i] = bl_member_new(key, id, 1, etcdh_endpoint(h), 0);
		if(!m[i] || cluster_join(m[i]->c))
		{
			fprintf(stderr, "bench: member %d could not join: %s\n", i, strerror(errno));
			joined = i + (m[i] != NULL);
			rc = -1;
			goto out;
		}
	}
	joined = n;
	bl_set_target(m, (size_t) n, n);
	if(bl_wait_target(60) < 0)
	{
		rc = -1;
		goto out;
	}
	for(i = 0; i < n && advisor_users; i++)
	{
		CLUSTERADVISORCONFIG cfg;

		cluster_advisor_config_init(&cfg);
		if(cluster_set_advisor_config(m[i]->c, &cfg) || cluster_report(m[i]->c, 100 + i, -1))
		{
			fprintf(stderr, "bench: member %d could not report: %s\n", i, strerror(errno));
			rc = -1;
			goto out;
		}
	}
	if(advisor_users && wait_statuses(m[n - 1]->c, (size_t) n, 120))
	{
		rc = -1;
		goto out;
	}
	for(i = 0; i < n && advisor_users > 1; i++)
	{
		CLUSTERMEMBER target;
		CLUSTERREDIRECT *rows;
		size_t nrows;

		if(cluster_pick_target(m[i]->c, &target) || cluster_advice(m[i]->c, &rows, &nrows))
		{
			fprintf(stderr, "bench: member %d could not pick: %s\n", i, strerror(errno));
			rc = -1;
			goto out;
		}
		cluster_redirects_free(rows);
	}
	rss1 = bl_rss_kb();
	rss_split(&st1, &an1);
	heap1 = bl_heap_kb();
	th1 = bl_threads();
	for(i = 0; i < n; i++)
	{
		bl_member_free(m[i]);
	}
	joined = 0;
	rss2 = bl_rss_kb();
	th2 = bl_threads();
	printf("%6d %10ld %10ld %12.1f %14.1f %14.1f %14.1f %10d %10d %12.2f %14ld\n", n, rss0, rss1, (double) (rss1 - rss0) / n, (heap1 - heap0) / n,
		(double) (st1 - st0) / n, (double) (an1 - an0) / n, th0, th1, (double) (th1 - th0) / n, rss2);
	(void) th2;
out:
	for(i = 0; i < joined; i++)
	{
		bl_member_free(m[i]);
	}
	free(m);
	return rc;
}

int
main(int argc, char **argv)
{
	int ns[16], nn = 0, i;
	const char *who = "";
	etcdh *h;

	if(argc > 1 && (!strcmp(argv[1], "-a") || !strcmp(argv[1], "-p")))
	{
		advisor_users = argv[1][1] == 'p' ? 2 : 1;
		argv++;
		argc--;
	}
	nn = bl_sizes(argv + 1, argc - 1, ns, 16, (const int[]) { 1, 10, 50, 200, 0 });
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if(etcdh_start(&h))
	{
		fprintf(stderr, "bench-memory: cannot start etcd\n");
		return 1;
	}
	if(advisor_users > 1)
	{
		who = ", every one an advisor user that picks (status published, everyone's kept, one pick and one round of advice made)";
	}
	else if(advisor_users)
	{
		who = ", every one an advisor user (status published and everyone's kept)";
	}
	printf("bench-memory: handles joined in one process against %s%s\n\n", etcdh_endpoint(h), who);
	printf("%6s %10s %10s %12s %14s %14s %14s %10s %10s %12s %14s\n", "N", "RSS0 kB", "RSS kB", "kB/instance", "heap kB/inst.", "stack RSS/inst", "anon RSS/inst", "threads0", "threads",
		"thr/instance", "RSS after kB");
	for(i = 0; i < nn; i++)
	{
		if(run_n(h, ns[i]))
		{
			printf("%6d  failed (see stderr)\n", ns[i]);
		}
		fflush(stdout);
	}
	etcdh_destroy(h);
	curl_global_cleanup();
	return 0;
}
