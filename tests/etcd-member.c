/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd-member: one cluster member in its own process, for the tests that
 * must kill a member with SIGKILL. Joins, prints "joined INDEX TOTAL" (or
 * "failed ERRNO") on stdout, then waits for SIGTERM or SIGINT and leaves.
 *
 *   etcd-member -r URI -k KEY -i ID [-n WORKERS] [-t TTL] [-P] [-v]
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libcluster.h>

static int verbose;

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
	const char *key = "cluster-test", *id = NULL, *uri = NULL;
	int workers = 1, ttl = 0, passive = 0, opt, sig, rc;
	CLUSTER *c;
	CLUSTERSTATE st;
	sigset_t set;

	while((opt = getopt(argc, argv, "r:k:i:n:t:Pv")) != -1)
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
	sigwait(&set, &sig);
	cluster_leave(c);
	cluster_destroy(c);
	printf("left\n");
	return 0;
}
