/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd-member: one cluster member in its own process, for the tests that
 * must kill a member with SIGKILL. Joins, prints "joined INDEX TOTAL" (or
 * "failed ERRNO") on stdout, then waits for SIGTERM or SIGINT and leaves.
 *
 *   etcd-member -r URI -k KEY -i ID [-n WORKERS] [-t TTL] [-P] [-v]
 *               [-s SHARDS -E EVENTFILE] [-V VIEWFILE]
 *
 * With -V, on SIGUSR1 it writes its current view to VIEWFILE as "INDEX
 * TOTAL" (what its application holds) and carries on.
 *
 * With -s it owns shards and appends each acquire and release to
 * EVENTFILE as "A|R SHARD TOKEN MONO_NS" lines (one write() per callback,
 * so what was written survives a SIGKILL).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <libcluster.h>

static int verbose;
static int event_fd = -1;

static void
on_shards(CLUSTER *c, const CLUSTERSHARD *acq, size_t na, const CLUSTERSHARD *rel, size_t nr)
{
	struct timespec ts;
	long long ns;
	char *buf;
	size_t i, len = 0, cap = (na + nr) * 64 + 1;

	(void) c;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ns = (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
	buf = malloc(cap);
	if(!buf)
	{
		abort();
	}
	/* releases first: the application stops before it starts */
	for(i = 0; i < nr; i++)
	{
		len += (size_t) snprintf(buf + len, cap - len, "R %u %lld %lld\n", rel[i].shard, rel[i].token, ns);
	}
	for(i = 0; i < na; i++)
	{
		len += (size_t) snprintf(buf + len, cap - len, "A %u %lld %lld\n", acq[i].shard, acq[i].token, ns);
	}
	if(write(event_fd, buf, len) != (ssize_t) len)
	{
		abort();
	}
	free(buf);
}

static void
logger(int priority, const char *format, va_list ap)
{
	if(verbose || priority <= 4)
	{
		fprintf(stderr, "etcd-member[%ld] libcluster<%d>: ", (long) getpid(), priority);
		vfprintf(stderr, format, ap);
	}
}

int
main(int argc, char **argv)
{
	const char *key = "cluster-test", *id = NULL, *uri = NULL, *events = NULL, *viewfile = NULL;
	int workers = 1, ttl = 0, passive = 0, shards = 0, opt, sig, rc;
	CLUSTER *c;
	CLUSTERSTATE st;
	sigset_t set;

	while((opt = getopt(argc, argv, "r:k:i:n:t:Pvs:E:V:")) != -1)
	{
		switch(opt)
		{
		case 'r': uri = optarg; break;
		case 'k': key = optarg; break;
		case 'i': id = optarg; break;
		case 'n': workers = atoi(optarg); break;
		case 't': ttl = atoi(optarg); break;
		case 'P': passive = 1; break;
		case 'v': verbose = 1; break;
		case 's': shards = atoi(optarg); break;
		case 'E': events = optarg; break;
		case 'V': viewfile = optarg; break;
		default:
			fprintf(stderr, "usage: etcd-member -r URI -k KEY -i ID [-n N] [-t TTL] [-P] [-v]\n");
			return 2;
		}
	}
	/* Block the signals before any library thread exists, so that only
	 * sigwait() below ever sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	c = cluster_create(key);
	if(!c || cluster_set_logger(c, logger) || (id && cluster_set_instance(c, id)) ||
		cluster_set_workers(c, workers) || (uri && cluster_set_registry(c, uri)) ||
		(ttl && cluster_set_ttl(c, ttl)))
	{
		printf("failed %d\n", errno);
		return 1;
	}
	cluster_set_verbose(c, verbose);
	if(shards)
	{
		event_fd = events ? open(events, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
		if(event_fd < 0 || cluster_set_shards(c, shards) || cluster_set_shard_callback(c, on_shards))
		{
			printf("failed %d\n", errno);
			return 1;
		}
	}
	rc = passive ? cluster_join_passive(c) : cluster_join(c);
	if(rc)
	{
		printf("failed %d\n", errno);
		cluster_destroy(c);
		return 1;
	}
	cluster_state(c, &st);
	printf("joined %d %d\n", st.index, st.total);
	fflush(stdout);
	while(!sigwait(&set, &sig) && sig == SIGUSR1)
	{
		/* written whole, then renamed: a reader never sees half */
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", viewfile ? viewfile : "");
		f = viewfile ? fopen(tmp, "w") : NULL;
		if(f && !cluster_state(c, &st))
		{
			fprintf(f, "%d %d\n", st.index, st.total);
		}
		if(f && !fclose(f))
		{
			rename(tmp, viewfile);
		}
	}
	cluster_leave(c);
	cluster_destroy(c);
	printf("left\n");
	return 0;
}
