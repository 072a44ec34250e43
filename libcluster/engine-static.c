/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Static engine: every member is given the same fixed configuration (its
 * own base index and the cluster total). No threads, no network.
 */
#include "util.h"
#include "engine.h"

#include <errno.h>
#include <stdlib.h>

typedef struct static_engine static_engine;
struct static_engine
{
	CLUSTER *core;
	const cluster__engine_config *cfg; /* while joined */
};

static int
static_create(CLUSTER *core, const char *uri, void **out)
{
	static_engine *se = calloc(1, sizeof(*se));

	(void) uri;
	if(!se)
	{
		return ENOMEM;
	}
	se->core = core;
	*out = se;
	return 0;
}

static void
static_destroy(void *engine)
{
	free(engine);
}

/* The original's rules: index < total and index + workers <= total. */
static int
static_check(static_engine *se, int index, int workers, int total)
{
	if(index >= total)
	{
		cluster__log(se->core, LOG_ERR, "libcluster: static: cannot join static cluster because the instance index (%d) is not less than the total number of workers in the cluster (%d)\n", index, total);
		return EINVAL;
	}
	if(index + workers > total)
	{
		cluster__log(se->core, LOG_ERR, "libcluster: static: cannot join static cluster because the highest worker index (%d) is not less than the total number of workers in the cluster (%d)\n", index + workers - 1, total);
		return EINVAL;
	}
	return 0;
}

static int
static_total(const cluster__engine_config *cfg)
{
	/* an unset total means a cluster of one worker, as in the original */
	return cfg->static_total ? cfg->static_total : 1;
}

static int
static_join(void *engine, const cluster__engine_config *cfg)
{
	static_engine *se = engine;
	int total = static_total(cfg);
	int r;

	if(!cfg->passive)
	{
		r = static_check(se, cfg->static_index, cluster__get_workers(se->core), total);
		if(r)
		{
			return r;
		}
	}
	se->cfg = cfg;
	cluster__log(se->core, LOG_DEBUG, "libcluster: static: successfully joined the cluster\n");
	cluster__set_fresh(se->core, 1);
	return cluster__publish_static(se->core, cfg->passive ? -1 : cfg->static_index, total);
}

static int
static_leave(void *engine)
{
	static_engine *se = engine;

	cluster__log(se->core, LOG_DEBUG, "libcluster: static: successfully left the cluster\n");
	se->cfg = NULL;
	return 0;
}

static int
static_workers_changed(void *engine, int workers)
{
	static_engine *se = engine;
	int total = static_total(se->cfg);
	int r = 0;

	if(!se->cfg->passive)
	{
		r = static_check(se, se->cfg->static_index, workers, total);
	}
	if(!r)
	{
		r = cluster__publish_static(se->core, se->cfg->passive ? -1 : se->cfg->static_index, total);
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
	NULL, /* joins do not wait on the network */
	NULL,
	0,
	1 /* shards */
};
