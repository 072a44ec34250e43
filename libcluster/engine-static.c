/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Static engine: every member is given the same fixed configuration (its
 * own base index and the cluster total). No threads, no network.
 */
#include "cluster-int.h"

#include <errno.h>

static int
static_create(CLUSTER *cluster, const char *uri)
{
	(void) cluster;
	(void) uri;
	return 0;
}

static void
static_destroy(CLUSTER *cluster)
{
	(void) cluster;
}

/* The original's rules: index < total and index + workers <= total. */
static int
static_check(CLUSTER *cluster, int index, int workers, int total)
{
	if(index >= total)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: static: cannot join static cluster because the instance index (%d) is not less than the total number of workers in the cluster (%d)\n", index, total);
		return EINVAL;
	}
	if(index + workers > total)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: static: cannot join static cluster because the highest worker index (%d) is not less than the total number of workers in the cluster (%d)\n", index + workers - 1, total);
		return EINVAL;
	}
	return 0;
}

static int
static_total(const CLUSTER *cluster)
{
	/* an unset total means a cluster of one worker, as in the original */
	return cluster->static_total ? cluster->static_total : 1;
}

static int
static_join(CLUSTER *cluster)
{
	int total = static_total(cluster);
	int workers = cluster__get_workers(cluster);
	int r;

	if(!cluster->passive)
	{
		r = static_check(cluster, cluster->static_index, workers, total);
		if(r)
		{
			return r;
		}
	}
	cluster__log(cluster, LOG_DEBUG, "libcluster: static: successfully joined the cluster\n");
	cluster__set_fresh(cluster, 1);
	return cluster__publish_static(cluster, cluster->passive ? -1 : cluster->static_index, total);
}

static void
static_leave(CLUSTER *cluster)
{
	cluster__log(cluster, LOG_DEBUG, "libcluster: static: successfully left the cluster\n");
}

static int
static_workers_changed(CLUSTER *cluster)
{
	int total = static_total(cluster);
	int r = 0;

	if(!cluster->passive)
	{
		r = static_check(cluster, cluster->static_index, cluster__get_workers(cluster), total);
	}
	if(!r)
	{
		r = cluster__publish_static(cluster, cluster->passive ? -1 : cluster->static_index, total);
	}
	return r;
}

const cluster__engine cluster__engine_static = {
	"static",
	static_create,
	static_destroy,
	static_join,
	static_leave,
	static_workers_changed,
	NULL,
	NULL,                        /* joins do not wait on the network for long */
	0
};
