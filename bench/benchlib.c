/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared parts of the etcd benchmarks (see benchlib.h).
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

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

void
bl_logger(int priority, const char *format, va_list ap)
{
	if(priority <= LOG_ERR)
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
	int i;

	pthread_mutex_lock(&bl_lock);
	for(i = 0; i < BL_MAX; i++)
	{
		bl_member *m = bl_table[i];

		if(!m || m->c != c)
		{
			continue;
		}
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
		break;
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
		cluster_set_registry(m->c, registry) || (ttl && cluster_set_ttl(m->c, ttl)))
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

int
bl_threads(void)
{
	return (int) bl_status_field("Threads");
}
