/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-steady: what N idle members cost etcd.
 *
 * N members join and settle; then etcd's /metrics is scraped, the members
 * sit idle for the window, and /metrics is scraped again (the scrapes are
 * outside the counted window and are not gRPC calls). The deltas are
 * printed per member per second. Goal: one keepalive per member per
 * TTL/3, no reads, no watch events.
 *
 *   bench-steady [-d SECONDS] [-t TTL] [N ...]   (default: -d 30, N: 10 50)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchlib.h"
#include "etcdharness.h"

struct counter
{
	const char *label;
	const char *metric;
	const char *labels;
};

static const struct counter counters[] = {
	{ "keepalive messages", "grpc_server_msg_received_total", "grpc_method=\"LeaseKeepAlive\"" },
	{ "keepalive streams (POSTs)", "grpc_server_started_total", "grpc_method=\"LeaseKeepAlive\"" },
	{ "Range calls (reads)", "grpc_server_started_total", "grpc_method=\"Range\"" },
	{ "Txn calls", "grpc_server_started_total", "grpc_method=\"Txn\"" },
	{ "Put calls", "grpc_server_started_total", "grpc_method=\"Put\"" },
	{ "DeleteRange calls", "grpc_server_started_total", "grpc_method=\"DeleteRange\"" },
	{ "LeaseGrant calls", "grpc_server_started_total", "grpc_method=\"LeaseGrant\"" },
	{ "LeaseRevoke calls", "grpc_server_started_total", "grpc_method=\"LeaseRevoke\"" },
	{ "Watch streams opened", "grpc_server_started_total", "grpc_method=\"Watch\"" },
	{ "Watch messages sent", "grpc_server_msg_sent_total", "grpc_method=\"Watch\"" },
	{ "mvcc puts (any writer)", "etcd_mvcc_put_total", NULL },
	{ "mvcc deletes", "etcd_mvcc_delete_total", NULL },
	{ "leases expired", "etcd_debugging_server_lease_expired_total", NULL },
};
#define NCOUNTERS (sizeof(counters) / sizeof(*counters))

static int
run_n(etcdh *h, int n, int seconds, int ttl)
{
	bl_member **m = calloc((size_t) n, sizeof(*m));
	char key[64], id[64], *before = NULL, *after = NULL;
	double t0, t1, d, per;
	long calls0, calls1;
	int i, rc = 0, joined = 0;
	size_t c;

	snprintf(key, sizeof(key), "steady%d", n);
	for(i = 0; i < n; i++)
	{
		snprintf(id, sizeof(id), "m%05d", i);
		m[i] = bl_member_new(key, id, 1, etcdh_endpoint(h), ttl);
		if(!m[i] || cluster_join(m[i]->c))
		{
			fprintf(stderr, "bench: member %d could not join: %s\n", i, strerror(errno));
			rc = -1;
			joined = i + (m[i] != NULL);
			goto out;
		}
	}
	joined = n;
	bl_set_target(m, (size_t) n, n);
	if(bl_wait_target(60) < 0)
	{
		fprintf(stderr, "bench: members never agreed\n");
		rc = -1;
		goto out;
	}
	/* let the joins' own traffic finish before counting */
	sleep(2);
	calls0 = bl_total_calls();
	if(etcdh_metrics(h, &before))
	{
		rc = -1;
		goto out;
	}
	t0 = bl_now();
	sleep((unsigned) seconds);
	t1 = bl_now();
	if(etcdh_metrics(h, &after))
	{
		rc = -1;
		goto out;
	}
	calls1 = bl_total_calls();
	printf("\nN = %d idle members, TTL %d s, window %.1f s\n", n, ttl, t1 - t0);
	printf("  %-32s %10s %16s\n", "counter", "delta", "per member per s");
	for(c = 0; c < NCOUNTERS; c++)
	{
		d = etcdh_metric(after, counters[c].metric, counters[c].labels) -
			etcdh_metric(before, counters[c].metric, counters[c].labels);
		per = d / n / (t1 - t0);
		printf("  %-32s %10.0f %16.4f\n", counters[c].label, d, per);
	}
	printf("  %-32s %10ld\n", "balancer callbacks (library)", calls1 - calls0);
	printf("  expected keepalives per member per s: %.4f (one per TTL/3 = %.2f s)\n", 3.0 / ttl, ttl / 3.0);
out:
	free(before);
	free(after);
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
	int ns[16], nn = 0, seconds = 30, ttl = CLUSTER_TTL_DEFAULT, opt, i;
	etcdh *h;

	while((opt = getopt(argc, argv, "d:t:")) != -1)
	{
		switch(opt)
		{
		case 'd': seconds = atoi(optarg); break;
		case 't': ttl = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench-steady [-d SECONDS] [-t TTL] [N ...]\n");
			return 2;
		}
	}
	if(seconds < 1 || ttl < CLUSTER_TTL_MIN || ttl > CLUSTER_TTL_MAX)
	{
		fprintf(stderr, "bench-steady: bad -d or -t\n");
		return 2;
	}
	nn = bl_sizes(argv + optind, argc - optind, ns, 16, (const int[]) { 10, 50, 0 });
	if(etcdh_start(&h))
	{
		fprintf(stderr, "bench-steady: cannot start etcd\n");
		return 1;
	}
	printf("bench-steady: private etcd at %s; counters from its /metrics\n", etcdh_endpoint(h));
	for(i = 0; i < nn; i++)
	{
		if(run_n(h, ns[i], seconds, ttl))
		{
			printf("N = %d: failed (see stderr)\n", ns[i]);
		}
		fflush(stdout);
	}
	printf("\ngoal: keepalives per member per s = 3/TTL, Range = 0, Watch messages = 0 (no events, and no heartbeat while the keepalives are answered)\n");
	etcdh_destroy(h);
	return 0;
}
