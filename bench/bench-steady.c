/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-steady: what N idle members cost etcd, beside what N leases kept
 * alive the old way (one POST per keepalive) cost it, in the same run.
 *
 * N members join and settle; then etcd's /metrics and CPU are read, the
 * members sit idle for the window, and they are read again (the scrapes
 * are outside the counted window and are not gRPC calls). The members
 * leave, and the same window is counted while N raw leases are renewed by
 * one POST /v3/lease/keepalive each per TTL/3 (issue 13's yardstick).
 * Both are printed per member per second. Goal: one keepalive per member
 * per TTL/3, no reads, no watch events; etcd CPU per member-second is
 * issue 13's "at least 3x lower" goal, with its verdict.
 *
 * With -p DIR, etcd runs with --enable-pprof and each window's CPU
 * profile is saved in DIR (bench/pprof-split.py reads it without Go).
 *
 *   bench-steady [-d SECONDS] [-p DIR] [-t TTL] [N ...]   (default: -d 30, N: 10 50)
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

/* A counted window of etcd's life: its /metrics and CPU before and after. */
struct window
{
	char *before, *after;
	double t0, t1, cpu0, cpu1;
	long calls0, calls1;
	long goroutines; /* etcd's, at the start (-1: not profiled) */
};

/* etcd's goroutine count (pprof's "goroutine profile: total K"), -1 if
 * none: every open stream parks some, and each garbage collection scans
 * their stacks. */
static long
goroutines(etcdh *h)
{
	char url[256], *out = NULL, *p;
	long k = -1;

	snprintf(url, sizeof(url), "%sdebug/pprof/goroutine?debug=1", etcdh_endpoint(h));
	if(etcdh_request(NULL, url, NULL, 10000, &out) == 200 && out && (p = strstr(out, "total ")))
	{
		k = strtol(p + 6, NULL, 10);
	}
	free(out);
	return k;
}

/* Fetch etcd's CPU profile for the next seconds into path (the fetch is
 * the wait); 0, or -1 printed (the caller then sleeps instead). */
static int
profile_into(etcdh *h, const char *path, int seconds)
{
	char query[64], url[256];
	FILE *f = fopen(path, "wb");
	CURL *curl;
	long code = 0;
	int rc = -1;

	/* the benches' one raw-request set-up, made a GET that writes to f */
	snprintf(query, sizeof(query), "debug/pprof/profile?seconds=%d", seconds);
	snprintf(url, sizeof(url), "%s%s", etcdh_endpoint(h), query);
	curl = bl_curl_post(etcdh_endpoint(h), query, NULL, ((long) seconds + 30L) * 1000L);
	if(f && curl)
	{
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, NULL); /* libcurl's own: fwrite() */
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, f);
		if(curl_easy_perform(curl) == CURLE_OK && curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK &&
			code == 200)
		{
			rc = 0;
		}
	}
	if(rc)
	{
		fprintf(stderr, "bench-steady: no CPU profile from %s (HTTP %ld)\n", url, code);
	}
	if(curl)
	{
		curl_easy_cleanup(curl);
	}
	if(f && fclose(f) == 0 && rc == 0)
	{
		printf("  etcd's CPU profile of this window: %s (bench/pprof-split.py %s)\n", path, path);
	}
	return rc;
}

/* Let the set-up's own traffic finish, then count seconds of etcd's life
 * (profiled into profile when not NULL); 0 or -1. */
static int
window_run(etcdh *h, struct window *w, int seconds, const char *profile)
{
	memset(w, 0, sizeof(*w));
	sleep(2);
	w->goroutines = profile ? goroutines(h) : -1;
	w->calls0 = bl_total_calls();
	if(etcdh_metrics(h, &w->before))
	{
		return -1;
	}
	w->t0 = bl_now();
	w->cpu0 = bl_pid_cpu(etcdh_pid(h));
	if(!profile || profile_into(h, profile, seconds))
	{
		sleep((unsigned) seconds);
	}
	w->cpu1 = bl_pid_cpu(etcdh_pid(h));
	w->t1 = bl_now();
	w->calls1 = bl_total_calls();
	return etcdh_metrics(h, &w->after) ? -1 : 0;
}

/* The window's counters per member per second, and etcd's CPU per
 * member-second (returned, in microseconds). */
static double
window_print(const struct window *w, int n, const char *title)
{
	double d, secs = w->t1 - w->t0, us = (w->cpu1 - w->cpu0) / n / secs * 1e6;
	size_t c;

	printf("  %s: window %.1f s\n", title, secs);
	printf("    %-32s %10s %16s\n", "counter", "delta", "per member per s");
	for(c = 0; c < NCOUNTERS; c++)
	{
		d = etcdh_metric(w->after, counters[c].metric, counters[c].labels) -
			etcdh_metric(w->before, counters[c].metric, counters[c].labels);
		printf("    %-32s %10.0f %16.4f\n", counters[c].label, d, d / n / secs);
	}
	printf("    %-32s %10.2f %16.1f us\n", "etcd CPU (s; per member-s)", w->cpu1 - w->cpu0, us);
	if(w->goroutines >= 0)
	{
		printf("    %-32s %10ld %16.2f (per member)\n", "etcd goroutines", w->goroutines, (double) w->goroutines / n);
	}
	return us;
}

static void
window_free(struct window *w)
{
	free(w->before);
	free(w->after);
}

/*
 * N members idle for the window, then (after they leave) the yardstick:
 * N leases kept alive by one POST each per TTL/3, as one member cost
 * before the keepalive stream (benchlib.h bl_yard_start()). With pdir,
 * each window's etcd CPU profile is saved there.
 */
static int
run_n(etcdh *h, int n, int seconds, int ttl, const char *pdir)
{
	bl_member **m = calloc((size_t) n, sizeof(*m));
	struct window lw, yw;
	char key[64], id[64], path[512];
	double lib_us, yard_us;
	bl_yard *y;
	int i, rc = 0, joined = 0;

	memset(&lw, 0, sizeof(lw));
	memset(&yw, 0, sizeof(yw));
	snprintf(key, sizeof(key), "steady%d", n);
	for(i = 0; m && i < n; i++)
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
	printf("\nN = %d, TTL %d s\n", n, ttl);
	snprintf(path, sizeof(path), "%s/steady-%d-library.pprof", pdir ? pdir : ".", n);
	if(window_run(h, &lw, seconds, pdir ? path : NULL))
	{
		rc = -1;
		goto out;
	}
	lib_us = window_print(&lw, n, "the library's idle members");
	printf("    %-32s %10ld\n", "balancer callbacks (library)", lw.calls1 - lw.calls0);
	for(i = 0; i < joined; i++)
	{
		bl_member_free(m[i]);
	}
	joined = 0;
	y = bl_yard_start(etcdh_endpoint(h), n, ttl);
	if(!y)
	{
		rc = -1;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/steady-%d-yardstick.pprof", pdir ? pdir : ".", n);
	rc = window_run(h, &yw, seconds, pdir ? path : NULL);
	bl_yard_stop(y);
	etcdh_revoke_all(h);
	if(rc)
	{
		goto out;
	}
	yard_us = window_print(&yw, n, "yardstick: N leases, one POST /v3/lease/keepalive each per TTL/3");
	printf("  expected keepalives per member per s: %.4f (one per TTL/3 = %.2f s)\n", 3.0 / ttl, ttl / 3.0);
	printf("  etcd CPU per member-second, library / yardstick: %.1f / %.1f us = %.2fx (issue 13's goal: <= 1/3) %s\n", lib_us,
		yard_us, yard_us > 0 ? lib_us / yard_us : 0.0, yard_us > 0 && 3.0 * lib_us <= yard_us ? "PASS" : "FAIL");
out:
	window_free(&lw);
	window_free(&yw);
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
	static const char *const pprof_args[] = { "--enable-pprof", NULL };
	int ns[16], nn = 0, seconds = 30, ttl = CLUSTER_TTL_DEFAULT, opt, i;
	const char *pdir = NULL;
	etcdh *h;

	while((opt = getopt(argc, argv, "d:p:t:")) != -1)
	{
		switch(opt)
		{
		case 'd': seconds = atoi(optarg); break;
		case 'p': pdir = optarg; break;
		case 't': ttl = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: bench-steady [-d SECONDS] [-p PROFILE_DIR] [-t TTL] [N ...]\n");
			return 2;
		}
	}
	if(seconds < 1 || ttl < CLUSTER_TTL_MIN || ttl > CLUSTER_TTL_MAX)
	{
		fprintf(stderr, "bench-steady: bad -d or -t\n");
		return 2;
	}
	nn = bl_sizes(argv + optind, argc - optind, ns, 16, (const int[]) { 10, 50, 0 });
	if(etcdh_start_opts(&h, NULL, 0, pdir ? pprof_args : NULL))
	{
		fprintf(stderr, "bench-steady: cannot start etcd\n");
		return 1;
	}
	printf("bench-steady: private etcd at %s; counters from its /metrics\n", etcdh_endpoint(h));
	for(i = 0; i < nn; i++)
	{
		if(run_n(h, ns[i], seconds, ttl, pdir))
		{
			printf("N = %d: failed (see stderr)\n", ns[i]);
		}
		fflush(stdout);
	}
	printf("\ngoal: keepalives per member per s = 3/TTL, Range = 0, Watch messages = 0 (no events, and no heartbeat while the keepalives are answered)\n");
	etcdh_destroy(h);
	return 0;
}
