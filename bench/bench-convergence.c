/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-convergence: how long after a change every member knows.
 *
 * For each N, N members join one cluster in this process; then an extra
 * member repeatedly joins and leaves. Each sample is the time from just
 * before cluster_join()/cluster_leave() is called until the last of the
 * members' balancer callbacks reports the new total. Beside it, the bare
 * etcd figure measured by this program over the same transport (libcurl,
 * HTTP/1.1, v3 JSON gateway): time from starting a put until a
 * long-lived /v3/watch stream delivers its event, and the same with N raw
 * watch streams (time until the last of them has it: etcd's own fan-out
 * cost on this machine, which the library cannot beat).
 *
 *   bench-convergence [-r ROUNDS] [-b BARE_SAMPLES] [N ...]   (default N: 10 50 200)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "benchlib.h"
#include "etcdharness.h"

#define MAX_SAMPLES 4096

/* Bare etcd fan-out (see bl_bare_start()): put -> the last of watchers
 * raw watch streams. Returns the sample count. */
static size_t
bare_latency(const char *endpoint, int watchers, int samples, double *out, double *rtt_out)
{
	bl_bare *b = bl_bare_start(endpoint, watchers);
	size_t n;

	if(!b)
	{
		return 0;
	}
	n = bl_bare_latency(b, samples, out, rtt_out);
	bl_bare_stop(b);
	return n;
}

/* ---- the library ------------------------------------------------------ */

struct result
{
	int n;
	size_t samples;
	double p50, p99, max;
	double join_p50, leave_p50;
	double setup_s;
	double fan_p50, fan_p99;
};

static int
run_n(const char *endpoint, int n, int rounds, struct result *res)
{
	bl_member **m = calloc((size_t) n + 1, sizeof(*m));
	static double all[MAX_SAMPLES], joins[MAX_SAMPLES], leaves[MAX_SAMPLES];
	char key[64], id[64];
	size_t nall = 0, nj = 0, nl = 0;
	double t0, done;
	int i, r, rc = 0;
	struct timespec gap = { 0, 20 * 1000000L };

	snprintf(key, sizeof(key), "conv%d", n);
	t0 = bl_now();
	for(i = 0; i < n; i++)
	{
		snprintf(id, sizeof(id), "m%05d", i);
		m[i] = bl_member_new(key, id, 1, endpoint, 0);
		if(!m[i] || cluster_join(m[i]->c))
		{
			fprintf(stderr, "bench: member %d could not join: %s\n", i, strerror(errno));
			n = i + (m[i] != NULL);
			rc = -1;
			goto out;
		}
	}
	bl_set_target(m, (size_t) n, n);
	if(bl_wait_target(60) < 0)
	{
		fprintf(stderr, "bench: %d members never agreed on total %d\n", n, n);
		rc = -1;
		goto out;
	}
	res->setup_s = bl_now() - t0;
	/* the extra member sorts last: only the total changes */
	m[n] = bl_member_new(key, "zz-extra", 1, endpoint, 0);
	if(!m[n])
	{
		rc = -1;
		goto out;
	}
	for(r = 0; r < rounds; r++)
	{
		/* join: all N + the newcomer must report N + 1 */
		bl_set_target(m, (size_t) n + 1, n + 1);
		t0 = bl_now();
		if(cluster_join(m[n]->c))
		{
			fprintf(stderr, "bench: extra join failed: %s\n", strerror(errno));
			rc = -1;
			break;
		}
		done = bl_wait_target(30);
		if(done < 0)
		{
			fprintf(stderr, "bench: round %d: join not seen by everyone\n", r);
			rc = -1;
			break;
		}
		joins[nj++] = all[nall++] = (done - t0) * 1000.0;
		nanosleep(&gap, NULL);
		/* leave: the N others must report N */
		bl_set_target(m, (size_t) n, n);
		t0 = bl_now();
		cluster_leave(m[n]->c);
		done = bl_wait_target(30);
		if(done < 0)
		{
			fprintf(stderr, "bench: round %d: leave not seen by everyone\n", r);
			rc = -1;
			break;
		}
		leaves[nl++] = all[nall++] = (done - t0) * 1000.0;
		nanosleep(&gap, NULL);
	}
	res->n = n;
	res->samples = nall;
	res->join_p50 = bl_quantile(joins, nj, 0.5);
	res->leave_p50 = bl_quantile(leaves, nl, 0.5);
	res->p50 = bl_quantile(all, nall, 0.5);
	res->p99 = bl_quantile(all, nall, 0.99);
	res->max = bl_quantile(all, nall, 1.0);
	n++;
out:
	for(i = 0; i < n; i++)
	{
		bl_member_free(m[i]);
	}
	free(m);
	return rc;
}

int
main(int argc, char **argv)
{
	static double bare[MAX_SAMPLES], rtt[MAX_SAMPLES], fan[MAX_SAMPLES], frtt[MAX_SAMPLES];
	int ns[16], nn = 0, rounds = 25, bare_samples = 300, opt, i;
	struct result res[16];
	double bare_p50, bare_p99, rtt_p50;
	size_t nb, nf;
	etcdh *h;

	while((opt = getopt(argc, argv, "r:b:")) != -1)
	{
		switch(opt)
		{
		case 'r': rounds = atoi(optarg); break;
		case 'b': bare_samples = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench-convergence [-r ROUNDS] [-b BARE_SAMPLES] [N ...]\n");
			return 2;
		}
	}
	if(rounds < 1 || rounds > MAX_SAMPLES / 2 || bare_samples < 1 || bare_samples > MAX_SAMPLES - 8)
	{
		fprintf(stderr, "bench-convergence: rounds 1..%d, bare samples 1..%d\n", MAX_SAMPLES / 2, MAX_SAMPLES - 8);
		return 2;
	}
	nn = bl_sizes(argv + optind, argc - optind, ns, 16, (const int[]) { 10, 50, 200, 0 });
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if(etcdh_start(&h))
	{
		fprintf(stderr, "bench-convergence: cannot start etcd\n");
		return 1;
	}
	printf("bench-convergence: private etcd at %s (--unsafe-no-fsync), %ld CPUs online\n",
		etcdh_endpoint(h), sysconf(_SC_NPROCESSORS_ONLN));
	nb = bare_latency(etcdh_endpoint(h), 1, bare_samples, bare, rtt);
	bare_p50 = bl_quantile(bare, nb, 0.5);
	bare_p99 = bl_quantile(bare, nb, 0.99);
	rtt_p50 = bl_quantile(rtt, nb, 0.5);
	printf("bare etcd (libcurl HTTP/1.1, v3 gateway): put start -> watch event over %zu puts: "
		   "p50 %.2f ms, p99 %.2f ms (put RTT p50 %.2f ms)\n",
		nb, bare_p50, bare_p99, rtt_p50);
	fflush(stdout);
	printf("\nlibrary: change -> last of N callbacks; fan-out: put -> last of N raw watch streams\n");
	printf("%6s %8s %9s %9s %9s %9s %9s %11s %11s %11s %8s\n",
		"N", "samples", "p50 ms", "p99 ms", "join p50", "leave p50", "p99/bare", "fan-out p50",
		"fan-out p99", "p99/fan-out", "setup s");
	for(i = 0; i < nn; i++)
	{
		memset(&res[i], 0, sizeof(res[i]));
		if(run_n(etcdh_endpoint(h), ns[i], rounds, &res[i]))
		{
			printf("%6d  failed (see stderr)\n", ns[i]);
			continue;
		}
		nf = bare_latency(etcdh_endpoint(h), ns[i], 2 * rounds, fan, frtt);
		res[i].fan_p50 = bl_quantile(fan, nf, 0.5);
		res[i].fan_p99 = bl_quantile(fan, nf, 0.99);
		printf("%6d %8zu %9.2f %9.2f %9.2f %9.2f %8.2fx %11.2f %11.2f %10.2fx %8.2f\n", res[i].n, res[i].samples,
			res[i].p50, res[i].p99, res[i].join_p50, res[i].leave_p50,
			bare_p99 > 0 ? res[i].p99 / bare_p99 : 0.0, res[i].fan_p50, res[i].fan_p99,
			res[i].fan_p99 > 0 ? res[i].p99 / res[i].fan_p99 : 0.0, res[i].setup_s);
		fflush(stdout);
	}
	for(i = 0; i < nn; i++)
	{
		if(res[i].n == 50 && res[i].samples)
		{
			printf("\ngoal: p99 <= 2x bare p99 at N = 50: %.2f ms vs 2 x %.2f ms = %.2f ms -> %s\n",
				res[i].p99, bare_p99, 2 * bare_p99, res[i].p99 <= 2 * bare_p99 ? "MET" : "NOT MET");
			printf("      against bare fan-out to 50 raw watchers: %.2f ms vs 2 x %.2f ms = %.2f ms -> %s\n",
				res[i].p99, res[i].fan_p99, 2 * res[i].fan_p99, res[i].p99 <= 2 * res[i].fan_p99 ? "MET" : "NOT MET");
		}
	}
	etcdh_destroy(h);
	curl_global_cleanup();
	return 0;
}
