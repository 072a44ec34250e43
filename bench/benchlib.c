/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared parts of the etcd benchmarks (see benchlib.h).
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "benchlib.h"

#define BL_MAX 4096

static pthread_mutex_t bl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bl_cond = PTHREAD_COND_INITIALIZER;
static bl_member *bl_table[BL_MAX];
static char bl_watched[BL_MAX]; /* members the current target applies to */
static int bl_target = -1;
static size_t bl_missing; /* watched members not yet at the target */
static double bl_done_at; /* when the last one got there */

double
bl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Messages up to LOG_ERR, or up to the level in BENCH_LOG (a number,
 * syslog's: 4 adds warnings, 7 everything). */
void
bl_logger(int priority, const char *format, va_list ap)
{
	static int level = -1;

	if(level < 0)
	{
		const char *env = getenv("BENCH_LOG");

		level = env && *env ? atoi(env) : LOG_ERR;
	}
	if(priority <= level)
	{
		fprintf(stderr, "libcluster<%d>: ", priority);
		vfprintf(stderr, format, ap);
	}
}

/* The callback records the member's total and, when it completes the
 * current target, the time: measured in the callback itself, so the
 * figure is when the application would have learnt the news. */
static int
bl_balancer(CLUSTER *c, CLUSTERSTATE *st)
{
	double now = bl_now();
	bl_member *m;
	int i;

	pthread_mutex_lock(&bl_lock);
	/* the handle's userdata points at its member (set by bl_member_new()):
	 * no search, so the bench's own cost per callback does not grow with
	 * the pool */
	m = cluster_userdata(c);
	if(m && m->c == c && bl_table[m->slot] == m)
	{
		i = m->slot;
		m->calls++;
		m->index = st->index;
		if(bl_watched[i] && bl_target >= 0 && m->total != bl_target && st->total == bl_target)
		{
			if(bl_missing > 0 && --bl_missing == 0)
			{
				bl_done_at = now;
				pthread_cond_broadcast(&bl_cond);
			}
		}
		else if(bl_watched[i] && bl_target >= 0 && m->total == bl_target && st->total != bl_target)
		{
			bl_missing++;
		}
		m->total = st->total;
	}
	pthread_mutex_unlock(&bl_lock);
	return 0;
}

bl_member *
bl_member_new(const char *key, const char *id, int workers, const char *registry, int ttl)
{
	bl_member *m = calloc(1, sizeof(*m));
	int i;

	if(!m)
	{
		return NULL;
	}
	m->total = -1;
	m->index = -1;
	m->c = cluster_create(key);
	if(!m->c || cluster_set_logger(m->c, bl_logger) || cluster_set_balancer(m->c, bl_balancer) ||
		cluster_set_instance(m->c, id) || cluster_set_workers(m->c, workers) ||
		cluster_set_registry(m->c, registry) || (ttl && cluster_set_ttl(m->c, ttl)) ||
		cluster_set_userdata(m->c, m))
	{
		fprintf(stderr, "bench: cannot configure member %s: %s\n", id, strerror(errno));
		cluster_destroy(m->c);
		free(m);
		return NULL;
	}
	pthread_mutex_lock(&bl_lock);
	for(i = 0; i < BL_MAX; i++)
	{
		if(!bl_table[i])
		{
			bl_table[i] = m;
			m->slot = i;
			break;
		}
	}
	pthread_mutex_unlock(&bl_lock);
	if(i == BL_MAX)
	{
		cluster_destroy(m->c);
		free(m);
		return NULL;
	}
	return m;
}

void
bl_member_free(bl_member *m)
{
	if(!m)
	{
		return;
	}
	cluster_destroy(m->c);
	pthread_mutex_lock(&bl_lock);
	bl_table[m->slot] = NULL;
	if(bl_watched[m->slot] && m->total != bl_target && bl_missing > 0)
	{
		bl_missing--;
	}
	bl_watched[m->slot] = 0;
	pthread_mutex_unlock(&bl_lock);
	free(m);
}

void
bl_set_target(bl_member **set, size_t n, int total)
{
	size_t i;

	pthread_mutex_lock(&bl_lock);
	memset(bl_watched, 0, sizeof(bl_watched));
	bl_target = total;
	bl_missing = 0;
	bl_done_at = 0;
	for(i = 0; i < n; i++)
	{
		bl_watched[set[i]->slot] = 1;
		if(set[i]->total != total)
		{
			bl_missing++;
		}
	}
	if(bl_missing == 0)
	{
		bl_done_at = bl_now();
	}
	pthread_mutex_unlock(&bl_lock);
}

double
bl_wait_target(double timeout)
{
	struct timespec ts;
	double deadline, done;

	clock_gettime(CLOCK_REALTIME, &ts);
	deadline = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9 + timeout;
	ts.tv_sec = (time_t) deadline;
	ts.tv_nsec = (long) ((deadline - (double) ts.tv_sec) * 1e9);
	pthread_mutex_lock(&bl_lock);
	while(bl_missing > 0)
	{
		if(pthread_cond_timedwait(&bl_cond, &bl_lock, &ts) == ETIMEDOUT)
		{
			break;
		}
	}
	done = bl_missing == 0 ? bl_done_at : -1;
	pthread_mutex_unlock(&bl_lock);
	return done;
}

long
bl_total_calls(void)
{
	long n = 0;
	int i;

	pthread_mutex_lock(&bl_lock);
	for(i = 0; i < BL_MAX; i++)
	{
		if(bl_table[i])
		{
			n += bl_table[i]->calls;
		}
	}
	pthread_mutex_unlock(&bl_lock);
	return n;
}

static int
bl_cmp(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return x < y ? -1 : x > y;
}

double
bl_quantile(double *v, size_t n, double q)
{
	size_t rank;

	if(n == 0)
	{
		return 0;
	}
	qsort(v, n, sizeof(*v), bl_cmp);
	rank = (size_t) (q * (double) n + 0.999999);
	if(rank < 1)
	{
		rank = 1;
	}
	if(rank > n)
	{
		rank = n;
	}
	return v[rank - 1];
}

/* One numeric field of /proc/self/status. */
static long
bl_status_field(const char *name)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t len = strlen(name);
	long v = -1;

	if(!f)
	{
		return -1;
	}
	while(fgets(line, sizeof(line), f))
	{
		if(strncmp(line, name, len) == 0 && line[len] == ':')
		{
			v = strtol(line + len + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

int
bl_sizes(char **args, int nargs, int *ns, int max, const int *defaults)
{
	int n = 0, i;

	for(i = 0; i < nargs && n < max; i++)
	{
		ns[n++] = atoi(args[i]);
	}
	for(i = 0; !n && defaults[i] && i < max; i++)
	{
		ns[i] = defaults[i];
	}
	return n ? n : i;
}

long
bl_rss_kb(void)
{
	return bl_status_field("VmRSS");
}

double
bl_heap_kb(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	struct mallinfo2 mi = mallinfo2();

	return (double) (mi.uordblks + mi.hblkhd) / 1024.0;
#else
	return 0;
#endif
}

int
bl_threads(void)
{
	return (int) bl_status_field("Threads");
}

/* ---- raw etcd watchers (the yardstick for fan-out) ------------------- */

/* One raw watcher: its own long-lived /v3/watch stream on a thread. */
struct bl_watcher
{
	bl_bare *b;
	pthread_t thread;
	int started;
	long events;       /* (b->lock) */
	double last_event; /* (b->lock) */
	int created;       /* (b->lock) */
	int ended;         /* (b->lock) */
	char line[65536];
	size_t len;
};

struct bl_bare
{
	const char *endpoint;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	int n;
	struct bl_watcher *w;
};

/* Split the stream on '\n' (libcurl hands over arbitrary slices) and
 * timestamp each message that carries events. */
static size_t
bare_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct bl_watcher *w = userdata;
	bl_bare *b = w->b;
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
	struct bl_watcher *w = userdata;
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

static size_t
discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void) ptr;
	(void) userdata;
	return size * nmemb;
}

/* One set-up for every raw request the benches make (benchlib.h). */
CURL *
bl_curl_post(const char *endpoint, const char *path, struct curl_slist *hdr, long timeout_ms)
{
	CURL *curl = curl_easy_init();
	char url[256];

	if(!curl)
	{
		return NULL;
	}
	snprintf(url, sizeof(url), "%s%s", endpoint, path);
	curl_easy_setopt(curl, CURLOPT_URL, url); /* libcurl copies it */
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
	if(timeout_ms)
	{
		curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	}
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
	return curl;
}

static void *
bare_watch(void *arg)
{
	struct bl_watcher *w = arg;
	struct curl_slist *hdr = curl_slist_append(NULL, "Grpc-Metadata-Hasleader: true");
	CURL *curl = bl_curl_post(w->b->endpoint, "v3/watch", hdr, 0);

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
	pthread_mutex_lock(&w->b->lock);
	w->ended = 1;
	pthread_cond_broadcast(&w->b->cond);
	pthread_mutex_unlock(&w->b->lock);
	return NULL;
}

/* Fewest events any watcher has seen, and the latest arrival among them
 * (called with the lock held). */
static long
bare_min_events(bl_bare *b, double *last)
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

/* Threads with small stacks: a thousand watchers must not reserve
 * 8 MiB of address space each. */
static int
bl_thread_small(pthread_t *t, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	int r;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	r = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	return r;
}

bl_bare *
bl_bare_start(const char *endpoint, int watchers)
{
	bl_bare *b = calloc(1, sizeof(*b));
	double deadline = bl_now() + 60;
	int i, ready = 0, ended = 0;

	if(!b)
	{
		return NULL;
	}
	b->endpoint = endpoint;
	b->n = watchers;
	b->w = calloc((size_t) watchers, sizeof(*b->w));
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	for(i = 0; b->w && i < watchers; i++)
	{
		b->w[i].b = b;
		b->w[i].started = bl_thread_small(&b->w[i].thread, bare_watch, &b->w[i]) == 0;
		if(!b->w[i].started)
		{
			fprintf(stderr, "bench: cannot start raw watcher %d\n", i);
			break;
		}
	}
	if(!b->w || i < watchers)
	{
		bl_bare_stop(b);
		return NULL;
	}
	pthread_mutex_lock(&b->lock);
	for(;;)
	{
		for(ready = 0, ended = 0, i = 0; i < watchers; i++)
		{
			ready += b->w[i].created;
			ended += b->w[i].ended;
		}
		if(ready == watchers || ended || bl_now() > deadline)
		{
			break;
		}
		bl_cond_wait_for(&b->cond, &b->lock, 0.2);
	}
	pthread_mutex_unlock(&b->lock);
	if(ready < watchers)
	{
		fprintf(stderr, "bench: only %d of %d raw watch streams opened\n", ready, watchers);
		bl_bare_stop(b);
		return NULL;
	}
	return b;
}

/* Wait until every watcher has seen want events; returns when the last
 * of them had its newest one, or -1 when one has not within 30 s of t1. */
static double
bare_await(bl_bare *b, long want, double t1)
{
	double last;

	pthread_mutex_lock(&b->lock);
	while(bare_min_events(b, &last) < want)
	{
		if(bl_cond_wait_for(&b->cond, &b->lock, 30) && bl_now() - t1 > 29)
		{
			fprintf(stderr, "bench: a raw watcher never got the event\n");
			last = -1;
			break;
		}
	}
	pthread_mutex_unlock(&b->lock);
	return last;
}

size_t
bl_bare_latency(bl_bare *b, int samples, double *out, double *rtt_out)
{
	struct curl_slist *hdr = curl_slist_append(NULL, "Grpc-Metadata-Hasleader: true");
	CURL *put = bl_curl_post(b->endpoint, "v3/kv/put", hdr, 2000L);
	struct timespec pause = { 0, 10 * 1000000L };
	size_t n = 0;
	double t0, t1, last;
	long want;
	int i, lost = 0;

	curl_easy_setopt(put, CURLOPT_POSTFIELDS, "{\"key\":\"L2JlbmNoLWJhcmUvaw==\",\"value\":\"eA==\"}");
	for(i = 0; i < samples + 5 && !lost; i++)
	{
		pthread_mutex_lock(&b->lock);
		want = bare_min_events(b, &last) + 1;
		pthread_mutex_unlock(&b->lock);
		t0 = bl_now();
		if(curl_easy_perform(put) != CURLE_OK)
		{
			fprintf(stderr, "bench: bare put failed\n");
			break;
		}
		t1 = bl_now();
		last = bare_await(b, want, t1);
		lost = last < 0;
		/* the first few warm the connections up and are not counted */
		if(i >= 5 && !lost)
		{
			rtt_out[n] = (t1 - t0) * 1000.0;
			out[n++] = (last - t0) * 1000.0;
		}
		nanosleep(&pause, NULL);
	}
	curl_slist_free_all(hdr);
	curl_easy_cleanup(put);
	return n;
}

/* The start of an answer (NUL-terminated), for the lease ID. */
struct bare_answer
{
	char buf[512];
	size_t len;
};

static size_t
bare_keep(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct bare_answer *a = userdata;
	size_t n = size * nmemb, room = sizeof(a->buf) - 1 - a->len;

	memcpy(a->buf + a->len, ptr, n < room ? n : room);
	a->len += n < room ? n : room;
	a->buf[a->len] = '\0';
	return n;
}

/* One request of the membership yardstick on curl's warm connection:
 * body to path; 0 on HTTP 200, else printed and -1. */
static int
bare_call(CURL *curl, const char *endpoint, const char *path, const char *body, struct bare_answer *a)
{
	char url[256];
	long code = 0;

	snprintf(url, sizeof(url), "%s%s", endpoint, path);
	a->len = 0;
	a->buf[0] = '\0';
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_COPYPOSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, bare_keep);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, a);
	if(curl_easy_perform(curl) != CURLE_OK || curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code != 200)
	{
		fprintf(stderr, "bench: raw %s failed (HTTP %ld)\n", path, code);
		return -1;
	}
	return 0;
}

size_t
bl_bare_membership(bl_bare *b, int ttl, int samples, double *join_out, double *leave_out)
{
	struct curl_slist *hdr = curl_slist_append(NULL, "Grpc-Metadata-Hasleader: true");
	CURL *curl = bl_curl_post(b->endpoint, "v3/lease/grant", hdr, 2000L);
	struct timespec pause = { 0, 10 * 1000000L };
	struct bare_answer a;
	char body[256], lease[32], *p;
	size_t n = 0;
	double t0, last;
	long want;
	int i;

	for(i = 0; curl && i < samples + 5; i++)
	{
		/* join: a lease, then the member key under it */
		pthread_mutex_lock(&b->lock);
		want = bare_min_events(b, &last) + 1;
		pthread_mutex_unlock(&b->lock);
		t0 = bl_now();
		snprintf(body, sizeof(body), "{\"TTL\":%d}", ttl);
		if(bare_call(curl, b->endpoint, "v3/lease/grant", body, &a) || !(p = strstr(a.buf, "\"ID\":\"")) || sscanf(p + 6, "%31[0-9]", lease) != 1)
		{
			break;
		}
		/* key /bench-bare/m, value {"workers":1} */
		snprintf(body, sizeof(body), "{\"key\":\"L2JlbmNoLWJhcmUvbQ==\",\"value\":\"eyJ3b3JrZXJzIjoxfQ==\",\"lease\":\"%s\"}", lease);
		if(bare_call(curl, b->endpoint, "v3/kv/put", body, &a))
		{
			break;
		}
		last = bare_await(b, want++, bl_now());
		if(last < 0)
		{
			break;
		}
		if(i >= 5)
		{
			join_out[n] = (last - t0) * 1000.0;
		}
		nanosleep(&pause, NULL);
		/* leave: revoke the lease, which deletes the key */
		t0 = bl_now();
		snprintf(body, sizeof(body), "{\"ID\":\"%s\"}", lease);
		if(bare_call(curl, b->endpoint, "v3/lease/revoke", body, &a))
		{
			break;
		}
		last = bare_await(b, want, bl_now());
		if(last < 0)
		{
			break;
		}
		/* the first few warm the connections up and are not counted */
		if(i >= 5)
		{
			leave_out[n++] = (last - t0) * 1000.0;
		}
		nanosleep(&pause, NULL);
	}
	curl_slist_free_all(hdr);
	if(curl)
	{
		curl_easy_cleanup(curl);
	}
	return n;
}

void
bl_bare_stop(bl_bare *b)
{
	int i;

	if(!b)
	{
		return;
	}
	pthread_mutex_lock(&b->lock);
	b->stop = 1;
	pthread_mutex_unlock(&b->lock);
	for(i = 0; b->w && i < b->n; i++)
	{
		if(b->w[i].started)
		{
			pthread_join(b->w[i].thread, NULL);
		}
	}
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b->w);
	free(b);
}

/* ---- waiting, CPU, sockets --------------------------------------------- */

int
bl_cond_wait_for(pthread_cond_t *cond, pthread_mutex_t *lock, double seconds)
{
	struct timespec ts;
	double deadline;

	clock_gettime(CLOCK_REALTIME, &ts);
	deadline = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9 + seconds;
	ts.tv_sec = (time_t) deadline;
	ts.tv_nsec = (long) ((deadline - (double) ts.tv_sec) * 1e9);
	return pthread_cond_timedwait(cond, lock, &ts) == ETIMEDOUT;
}

void
bl_sleep(double seconds)
{
	struct timespec ts;

	if(seconds <= 0)
	{
		return;
	}
	ts.tv_sec = (time_t) seconds;
	ts.tv_nsec = (long) ((seconds - (double) ts.tv_sec) * 1e9);
	while(nanosleep(&ts, &ts) && errno == EINTR)
	{
	}
}

double
bl_self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 + (double) ru.ru_stime.tv_sec +
		   (double) ru.ru_stime.tv_usec / 1e6;
}

/* utime and stime are fields 14 and 15 of /proc/PID/stat; the command
 * name (field 2) may hold spaces, so count from its closing ')'. */
double
bl_pid_cpu(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	size_t len;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long) pid);
	f = fopen(path, "r");
	if(!f)
	{
		return -1;
	}
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	p = strrchr(buf, ')');
	if(!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
	{
		return -1;
	}
	return (double) (ut + st) / (double) sysconf(_SC_CLK_TCK);
}

long
bl_raise_nofile(void)
{
	struct rlimit rl;

	if(getrlimit(RLIMIT_NOFILE, &rl))
	{
		return -1;
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	return (long) rl.rlim_cur;
}

/* Walk /proc/net/tcp and tcp6 and hand every socket of a connection to
 * port to fn with the connection's client port: the client side (remote
 * port is port; client 1) and, since etcd runs on this host, the server
 * side (local port is port; client 0), which is the one left in
 * TIME_WAIT when etcd closed first. */
static void
bl_tcp_walk(int port, void (*fn)(void *arg, unsigned cport, unsigned state, int client), void *arg)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	char line[512], local[64], remote[64], *colon;
	unsigned state, lport, rport;
	size_t i;
	FILE *f;

	for(i = 0; i < 2; i++)
	{
		f = fopen(files[i], "r");
		if(!f)
		{
			continue;
		}
		while(fgets(line, sizeof(line), f))
		{
			if(sscanf(line, " %*d: %63s %63s %x", local, remote, &state) != 3)
			{
				continue;
			}
			colon = strrchr(remote, ':');
			if(!colon || sscanf(colon + 1, "%x", &rport) != 1)
			{
				continue;
			}
			colon = strrchr(local, ':');
			if(!colon || sscanf(colon + 1, "%x", &lport) != 1)
			{
				continue;
			}
			if((int) rport == port)
			{
				fn(arg, lport, state, 1);
			}
			else if((int) lport == port && rport != 0)
			{
				fn(arg, rport, state, 0);
			}
		}
		fclose(f);
	}
}

static void
count_established(void *arg, unsigned cport, unsigned state, int client)
{
	(void) cport;
	if(client && state == 1)
	{
		++*(int *) arg;
	}
}

int
bl_tcp_established(int port)
{
	int n = 0;

	bl_tcp_walk(port, count_established, &n);
	return n;
}

static void
mark_port(void *arg, unsigned cport, unsigned state, int client)
{
	(void) state;
	(void) client;
	((unsigned char *) arg)[cport & 0xffff] = 1;
}

void
bl_tcp_ports(int port, unsigned char *seen)
{
	memset(seen, 0, 65536);
	bl_tcp_walk(port, mark_port, seen);
}

/* ---- the etcd-cost yardstick: one POST per keepalive ------------------------ */

#define YARD_THREADS 8

struct bl_yard
{
	char endpoint[200];
	char (*ids)[32];
	int n, nthreads, stop; /* stop: under lock */
	double period, t0;
	long posts; /* under lock */
	pthread_t threads[YARD_THREADS];
	int started; /* threads to join */
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

struct yard_arg
{
	bl_yard *y;
	int k;
};

/* Thread k renews leases k, k + nthreads, ... each at its own phase of
 * the period, like n members renewing independently. */
static void *
yard_keepalive(void *arg)
{
	struct yard_arg *a = arg;
	bl_yard *y = a->y;
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *curl = bl_curl_post(y->endpoint, "v3/lease/keepalive", hdr, 2000L);
	char body[96];
	double due, now;
	long cycle;
	int j, stop = 0;

	for(cycle = 0; curl && !stop; cycle++)
	{
		for(j = a->k; j < y->n && !stop; j += y->nthreads)
		{
			due = y->t0 + (double) cycle * y->period + y->period * j / y->n;
			pthread_mutex_lock(&y->lock);
			while(!y->stop && (now = bl_now()) < due)
			{
				bl_cond_wait_for(&y->cond, &y->lock, due - now);
			}
			stop = y->stop;
			pthread_mutex_unlock(&y->lock);
			if(stop)
			{
				break;
			}
			snprintf(body, sizeof(body), "{\"ID\":\"%s\"}", y->ids[j]);
			curl_easy_setopt(curl, CURLOPT_COPYPOSTFIELDS, body);
			curl_easy_perform(curl);
			pthread_mutex_lock(&y->lock);
			y->posts++;
			pthread_mutex_unlock(&y->lock);
		}
	}
	curl_slist_free_all(hdr);
	if(curl)
	{
		curl_easy_cleanup(curl);
	}
	free(a);
	return NULL;
}

bl_yard *
bl_yard_start(const char *endpoint, int n, int ttl)
{
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	CURL *curl = bl_curl_post(endpoint, "v3/lease/grant", hdr, 5000L);
	bl_yard *y = calloc(1, sizeof(*y));
	struct bare_answer ans;
	struct yard_arg *a;
	char body[64], *p;
	int i, ok = curl && y && n > 0 && strlen(endpoint) < sizeof(y->endpoint);

	if(ok)
	{
		snprintf(y->endpoint, sizeof(y->endpoint), "%s", endpoint);
		y->n = n;
		y->period = ttl / 3.0;
		y->ids = calloc((size_t) n, sizeof(*y->ids));
		ok = y->ids != NULL;
		pthread_mutex_init(&y->lock, NULL);
		pthread_cond_init(&y->cond, NULL);
	}
	snprintf(body, sizeof(body), "{\"TTL\":%d}", ttl);
	for(i = 0; ok && i < n; i++)
	{
		ok = bare_call(curl, endpoint, "v3/lease/grant", body, &ans) == 0 && (p = strstr(ans.buf, "\"ID\":\"")) != NULL &&
			 sscanf(p + 6, "%31[0-9]", y->ids[i]) == 1;
	}
	if(curl)
	{
		curl_easy_cleanup(curl);
	}
	curl_slist_free_all(hdr);
	if(!ok)
	{
		fprintf(stderr, "bench: yardstick lease grant failed\n");
		if(y && y->n)
		{
			pthread_mutex_destroy(&y->lock);
			pthread_cond_destroy(&y->cond);
		}
		if(y)
		{
			free(y->ids);
		}
		free(y);
		return NULL;
	}
	y->t0 = bl_now();
	y->nthreads = n < YARD_THREADS ? n : YARD_THREADS;
	for(i = 0; i < y->nthreads; i++)
	{
		a = malloc(sizeof(*a));
		if(a)
		{
			a->y = y;
			a->k = i;
		}
		if(!a || pthread_create(&y->threads[i], NULL, yard_keepalive, a))
		{
			fprintf(stderr, "bench: cannot start the yardstick's threads\n");
			free(a);
			bl_yard_stop(y);
			return NULL;
		}
		y->started = i + 1;
	}
	return y;
}

long
bl_yard_stop(bl_yard *y)
{
	long posts;
	int i;

	if(!y)
	{
		return 0;
	}
	pthread_mutex_lock(&y->lock);
	y->stop = 1;
	pthread_cond_broadcast(&y->cond);
	pthread_mutex_unlock(&y->lock);
	for(i = 0; i < y->started; i++)
	{
		pthread_join(y->threads[i], NULL);
	}
	posts = y->posts;
	pthread_mutex_destroy(&y->lock);
	pthread_cond_destroy(&y->cond);
	free(y->ids);
	free(y);
	return posts;
}
