/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shard-worker: divide a fixed set of work units ("shards") among every
 * running instance, each shard owned by exactly one live instance, with
 * a fencing token; stop cleanly on SIGINT/SIGTERM.
 *
 *   shard-worker [REGISTRY [SHARDS]]
 *
 * REGISTRY is an etcd URI such as http://127.0.0.1:2379/ (default: the
 * environment variable CLUSTER_REGISTRY; "-" or neither: the static
 * engine, which makes this instance the only one). SHARDS defaults to 8;
 * every instance must use the same count. Start two or three and stop
 * them one by one: the shards of the one that left move to the others.
 *
 * Build: cc shard-worker.c $(pkg-config --cflags --libs libcluster)
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <libcluster.h>

#define MAX_SHARDS   1024
#define WORK_SECONDS 3 /* one round of "work" on every owned shard */

/* The shards this process owns: token, or 0 if not ours. The lock is held
 * by the worker for a whole round of work, and by the shard callback while
 * it changes the table, so when the callback returns a released shard is
 * no longer being worked on. That is the library's one demand: after the
 * callback has returned for a release, the shard may go to another
 * instance at once. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake;
static long long owned[MAX_SHARDS];
static int n_shards = 8, stopping;

/* The shard callback runs on a library thread (and during cluster_leave()
 * on ours). It may read state, but must not call setters, join or leave on
 * this handle: they would wait for this very thread, so they fail with
 * EDEADLK. Releases first, so work stops before new work starts. */
static void
on_shards(CLUSTER *c, const CLUSTERSHARD *acq, size_t n_acq, const CLUSTERSHARD *rel, size_t n_rel)
{
	size_t i;

	(void) c;
	pthread_mutex_lock(&lock);
	for(i = 0; i < n_rel; i++)
	{
		owned[rel[i].shard] = 0;
		printf("release shard %u token %lld\n", rel[i].shard, rel[i].token);
	}
	for(i = 0; i < n_acq; i++)
	{
		/* Hand the token to whatever the shard's work writes to, so that
		 * it can refuse late writes from an earlier owner (a lower token). */
		owned[acq[i].shard] = acq[i].token;
		printf("acquire shard %u token %lld\n", acq[i].shard, acq[i].token);
	}
	if(n_acq)
	{
		pthread_cond_signal(&wake); /* start on them now */
	}
	pthread_mutex_unlock(&lock);
}

/* The work: one line per owned shard every WORK_SECONDS, until stopped. */
static void *
worker(void *arg)
{
	struct timespec until;
	int s;

	(void) arg;
	pthread_mutex_lock(&lock);
	while(!stopping)
	{
		for(s = 0; s < n_shards; s++)
		{
			if(owned[s])
			{
				printf("work shard %d token %lld\n", s, owned[s]);
			}
		}
		/* The wait releases the lock: the callback can take shards away
		 * between two rounds, never during one. It ends early when
		 * shards arrive or the program stops. */
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += WORK_SECONDS;
		pthread_cond_timedwait(&wake, &lock, &until);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

/* The library prints only critical messages by itself; show warnings too
 * (a registry that cannot be reached, a lost lease). It runs on library
 * threads and must not call back into libcluster. */
static void
logger(int priority, const char *format, va_list ap)
{
	if(priority <= LOG_WARNING)
	{
		vfprintf(stderr, format, ap);
	}
}

static void
on_signal(int sig)
{
	(void) sig;
}

int
main(int argc, char **argv)
{
	const char *registry = argc > 1 ? argv[1] : getenv("CLUSTER_REGISTRY");
	pthread_condattr_t attr;
	struct sigaction sa;
	pthread_t thread;
	sigset_t signals;
	CLUSTER *c;
	int sig, rc = 1;

	if(argc > 2)
	{
		n_shards = atoi(argv[2]);
	}
	if(argc > 3 || n_shards < 1 || n_shards > MAX_SHARDS)
	{
		fprintf(stderr, "usage: shard-worker [REGISTRY|- [SHARDS (1..%d)]]\n", MAX_SHARDS);
		return 2;
	}
	if(registry && (!*registry || !strcmp(registry, "-")))
	{
		registry = NULL; /* the static engine */
	}
	/* Lines, not blocks, even into a file or a pipe. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* Block SIGINT and SIGTERM before any thread exists: threads inherit
	 * the mask, so the library's threads and ours never take them, and
	 * sigwait() below receives them on the main thread, outside any
	 * callback, where cluster_leave() is allowed. The handler never runs;
	 * it replaces an inherited "ignore" (a background job of a script
	 * starts with SIGINT ignored), which could discard the signal. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&wake, &attr);

	c = cluster_create("shard-example");
	if(!c)
	{
		fprintf(stderr, "shard-worker: cluster_create: %s\n", cluster_errmsg(NULL));
		return 1;
	}
	/* Shards and their callback must be set before joining (EPERM after). */
	cluster_set_logger(c, logger);
	if(cluster_set_registry(c, registry) ||
		cluster_set_shards(c, n_shards) ||
		cluster_set_shard_callback(c, on_shards))
	{
		fprintf(stderr, "shard-worker: %s\n", cluster_errmsg(c));
		cluster_destroy(c);
		return 1;
	}
	if(pthread_create(&thread, NULL, worker, NULL))
	{
		fprintf(stderr, "shard-worker: cannot start the worker thread\n");
		cluster_destroy(c);
		return 1;
	}
	/* The first shards may arrive before cluster_join() returns. */
	if(cluster_join(c))
	{
		fprintf(stderr, "shard-worker: cluster_join: %s\n", cluster_errmsg(c));
	}
	else
	{
		printf("joined as %s (index %d of %d), %d shards\n", cluster_instance(c),
			cluster_index(c, 0), cluster_total(c), n_shards);
		sigwait(&signals, &sig);
		printf("signal %d: leaving\n", sig);
		/* Releases every shard through the callback (on this thread)
		 * before it returns, then hands them back to the others at once:
		 * they need not wait for this instance's lease to run out. */
		if(cluster_leave(c))
		{
			fprintf(stderr, "shard-worker: cluster_leave: %s\n", cluster_errmsg(c));
		}
		else
		{
			printf("left the cluster\n");
			rc = 0;
		}
	}
	pthread_mutex_lock(&lock);
	stopping = 1;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	/* Last call on the handle (it would also leave, had we not). */
	cluster_destroy(c);
	pthread_cond_destroy(&wake);
	pthread_condattr_destroy(&attr);
	return rc;
}
