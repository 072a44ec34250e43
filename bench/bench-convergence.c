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

/* ---- bare etcd: put -> watch event over libcurl ---------------------- */

/* One raw watcher: its own long-lived /v3/watch stream on a thread. */
struct watcher
{
	struct bare *b;
	pthread_t thread;
	long events;       /* (b->lock) */
	double last_event; /* (b->lock) */
	int created;       /* (b->lock) */
	char line[65536];
	size_t len;
};

struct bare
{
	const char *endpoint;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	int n;
	struct watcher *w;
};

/* Split the stream on '\n' (libcurl hands over arbitrary slices) and
 * timestamp each message that carries events. */
static size_t
bare_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct watcher *w = userdata;
	struct bare *b = w->b;
	size_t n = size * nmemb, i;
	double now = bl_now();

	for(i = 0; i < n; i++)
	{
		if(ptr[i] != '\n')
		{
			if(w->len < sizeof(w->line) - 1)
			{
				w->line[w->len++] = ptr[i];
			}
			continue;
		}
		w->line[w->len] = '\0';
		pthread_mutex_lock(&b->lock);
		if(strstr(w->line, "\"created\":true"))
		{
			w->created = 1;
		}
		if(strstr(w->line, "\"events\""))
		{
			w->events++;
			w->last_event = now;
		}
		pthread_cond_broadcast(&b->cond);
		pthread_mutex_unlock(&b->lock);
		w->len = 0;
	}
	return n;
}

static int
bare_progress(void *userdata, curl_off_t a, curl_off_t b2, curl_off_t c, curl_off_t d)
{
	struct watcher *w = userdata;
	int stop;

	(void) a;
	(void) b2;
	(void) c;
	(void) d;
	pthread_mutex_lock(&w->b->lock);
	stop = w->b->stop;
	pthread_mutex_unlock(&w->b->lock);
	return stop;
}

static void *
bare_watch(void *arg)
{
	struct watcher *w = arg;
	char url[256];
	CURL *curl = curl_easy_init();
	struct curl_slist *hdr = curl_slist_append(NULL, "Grpc-Metadata-Hasleader: true");

	snprintf(url, sizeof(url), "%sv3/watch", w->b->endpoint);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS,
		"{\"create_request\":{\"key\":\"L2JlbmNoLWJhcmUv\",\"range_end\":\"L2JlbmNoLWJhcmUw\"}}");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, bare_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, bare_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, w);
	curl_easy_perform(curl);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(curl);
	return NULL;
}

static size_t
discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void) ptr;
	(void) userdata;
	return size * nmemb;
}

/* Fewest events any watcher has seen, and the latest arrival among them
 * (called with the lock held). */
static long
bare_min_events(struct bare *b, double *last)
{
	long min = -1;
	int i;

	*last = 0;
	for(i = 0; i < b->n; i++)
	{
		if(min < 0 || b->w[i].events < min)
		{
			min = b->w[i].events;
		}
		if(b->w[i].last_event > *last)
		{
			*last = b->w[i].last_event;
		}
	}
	return min;
}

/*
 * Bare put -> event latencies (ms) into out: with `watchers` raw watch
 * streams, the time from starting a put until the last of them has the
 * event. Put round trips into rtt_out. Returns the sample count.
 */
static size_t
bare_latency(const char *endpoint, int watchers, int samples, double *out, double *rtt_out)
{
	struct bare b;
	CURL *put = curl_easy_init();
	char url[256];
	struct curl_slist *hdr = curl_slist_append(NULL, "Grpc-Metadata-Hasleader: true");
	struct timespec pause = { 0, 10 * 1000000L };
	size_t n = 0;
	double t0, t1, last;
	long want;
	int i, ready;

	memset(&b, 0, sizeof(b));
	b.endpoint = endpoint;
	b.n = watchers;
	b.w = calloc((size_t) watchers, sizeof(*b.w));
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.cond, NULL);
	for(i = 0; i < watchers; i++)
	{
		b.w[i].b = &b;
		pthread_create(&b.w[i].thread, NULL, bare_watch, &b.w[i]);
	}
	pthread_mutex_lock(&b.lock);
	do
	{
		for(ready = 0, i = 0; i < watchers; i++)
		{
			ready += b.w[i].created;
		}
		if(ready < watchers)
		{
			pthread_cond_wait(&b.cond, &b.lock);
		}
	}
	while(ready < watchers);
	pthread_mutex_unlock(&b.lock);

	snprintf(url, sizeof(url), "%sv3/kv/put", endpoint);
	curl_easy_setopt(put, CURLOPT_URL, url);
	curl_easy_setopt(put, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(put, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(put, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(put, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(put, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(put, CURLOPT_POSTFIELDS, "{\"key\":\"L2JlbmNoLWJhcmUvaw==\",\"value\":\"eA==\"}");
	curl_easy_setopt(put, CURLOPT_WRITEFUNCTION, discard);
	for(i = 0; i < samples + 5; i++)
	{
		pthread_mutex_lock(&b.lock);
		want = bare_min_events(&b, &last) + 1;
		pthread_mutex_unlock(&b.lock);
		t0 = bl_now();
		if(curl_easy_perform(put) != CURLE_OK)
		{
			fprintf(stderr, "bench: bare put failed\n");
			break;
		}
		t1 = bl_now();
		pthread_mutex_lock(&b.lock);
		while(bare_min_events(&b, &last) < want)
		{
			pthread_cond_wait(&b.cond, &b.lock);
		}
		/* the first few warm the connections up and are not counted */
		if(i >= 5)
		{
			rtt_out[n] = (t1 - t0) * 1000.0;
			out[n++] = (last - t0) * 1000.0;
		}
		pthread_mutex_unlock(&b.lock);
		nanosleep(&pause, NULL);
	}
	pthread_mutex_lock(&b.lock);
	b.stop = 1;
	pthread_mutex_unlock(&b.lock);
	for(i = 0; i < watchers; i++)
	{
		pthread_join(b.w[i].thread, NULL);
	}
	free(b.w);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(put);
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
