/* SPDX-License-Identifier: Apache-2.0 */
/*
 * static-cluster: the smallest libcluster program. No registry: the
 * instance is told its index and the cluster total on the command line
 * (as a deployment tool or a StatefulSet ordinal would tell it), joins,
 * prints where it stands, and leaves.
 *
 *   static-cluster INDEX TOTAL      e.g. static-cluster 2 5
 *
 * Why bother with a library for two numbers? Because the rest of the
 * program is then written against cluster_index()/cluster_total() and
 * the balancer callback, and moving to etcd later (cluster_set_registry())
 * changes one line, not the program.
 *
 * Build: cc static-cluster.c $(pkg-config --cflags --libs libcluster)
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <libcluster.h>

/* Called with the new place in the cluster: once inside cluster_join()
 * (before it returns) and once more, with index -1, inside
 * cluster_leave(). A real program would (re)start its work here. It must
 * not call setters, join or leave on this handle (they fail with EDEADLK). */
static int
on_balance(CLUSTER *cluster, CLUSTERSTATE *state)
{
	(void) cluster;
	printf("balancer: index %d, workers %d, total %d\n", state->index, state->workers, state->total);
	return 0;
}

/* A whole, non-negative decimal number, or -1. */
static int
parse_count(const char *text)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if(errno || end == text || *end || v < 0 || v > INT_MAX)
	{
		return -1;
	}
	return (int) v;
}

int
main(int argc, char **argv)
{
	CLUSTER *c;
	int index, total, rc = 1;

	if(argc != 3 || (index = parse_count(argv[1])) < 0 || (total = parse_count(argv[2])) < 0)
	{
		fprintf(stderr, "usage: static-cluster INDEX TOTAL (0 <= INDEX < TOTAL)\n");
		return 2;
	}
	/* The cluster key names the service; every instance uses the same. */
	c = cluster_create("static-example");
	if(!c)
	{
		fprintf(stderr, "static-cluster: cluster_create: %s\n", cluster_errmsg(NULL));
		return 1;
	}
	/* No cluster_set_registry(): the static engine is the default. The
	 * setters check their own argument (a negative index, a total of 0);
	 * whether the two fit together (INDEX < TOTAL) is checked by
	 * cluster_join(). cluster_errmsg() says why either failed. */
	if(cluster_set_balancer(c, on_balance) ||
		cluster_static_set_index(c, index) ||
		cluster_static_set_total(c, total))
	{
		fprintf(stderr, "static-cluster: %s\n", cluster_errmsg(c));
		goto out;
	}
	if(cluster_join(c))
	{
		fprintf(stderr, "static-cluster: cluster_join: %s\n", cluster_errmsg(c));
		goto out;
	}
	/* The getters read the view the library holds; they never block. */
	printf("joined: worker %d of %d\n", cluster_index(c, 0), cluster_total(c));
	/* ... the real work would run here, e.g. handle every item whose
	 * hash % total == index ... */
	if(cluster_leave(c))
	{
		fprintf(stderr, "static-cluster: cluster_leave: %s\n", cluster_errmsg(c));
		goto out;
	}
	printf("left the cluster\n");
	rc = 0;
out:
	/* Always the last call on the handle: it leaves if still joined. */
	cluster_destroy(c);
	return rc;
}
