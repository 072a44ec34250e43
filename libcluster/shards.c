/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shard ownership, the core's side: the public calls, the set of shards
 * this instance holds, the assignment the getters read, and the one path
 * through which the shard callback runs. Which shards to acquire or
 * release is decided elsewhere: by the etcd v3 engine's shard thread
 * (shard-sync.c) and, for the static engine, by the fixed split below.
 */
#include "cluster-int.h"
#include "shard-map.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* the held set                                                         */
/* ------------------------------------------------------------------ */

/* held minus rel plus acq (all ascending), as a new array. */
static int
merge(const CLUSTERSHARD *held, size_t nh, const CLUSTERSHARD *acq, size_t na, const CLUSTERSHARD *rel, size_t nr, CLUSTERSHARD **out, size_t *nout)
{
	CLUSTERSHARD *o;
	size_t i = 0, j = 0, k = 0, n = 0;

	*out = NULL;
	*nout = 0;
	if(nh + na == 0)
	{
		return 0;
	}
	o = malloc((nh + na) * sizeof(*o));
	if(!o)
	{
		return ENOMEM;
	}
	while(i < nh || j < na)
	{
		const CLUSTERSHARD *s;

		if(j >= na || (i < nh && held[i].shard < acq[j].shard))
		{
			s = &held[i++];
			while(k < nr && rel[k].shard < s->shard)
			{
				k++;
			}
			if(k < nr && rel[k].shard == s->shard)
			{
				continue;
			}
		}
		else
		{
			if(i < nh && held[i].shard == acq[j].shard)
			{
				i++; /* re-acquired: the new token wins */
			}
			s = &acq[j++];
		}
		o[n++] = *s;
	}
	if(!n)
	{
		free(o);
		o = NULL;
	}
	*out = o;
	*nout = n;
	return 0;
}

/* Apply a change to the held set; call with cluster->lock held. Returns
 * ENOMEM (the set unchanged: for an acquisition the owned list is then
 * short until the next one; a pure release never grows it) or 0. */
static int
update_held(CLUSTER *cluster, const CLUSTERSHARD *acq, size_t na, const CLUSTERSHARD *rel, size_t nr)
{
	CLUSTERSHARD *o;
	size_t n;

	if(merge(cluster->held, cluster->n_held, acq, na, rel, nr, &o, &n))
	{
		return ENOMEM;
	}
	free(cluster->held);
	cluster->held = o;
	cluster->n_held = n;
	return 0;
}

/*
 * One shard callback at a time per handle, as notify.c does for the
 * balancer: a delivering flag waited on with the delivered condition, so
 * that no library lock is held while the application's callback runs.
 */
void
cluster__shards_deliver(CLUSTER *core, const CLUSTERSHARD *acquired, size_t n_acquired, const CLUSTERSHARD *released, size_t n_released)
{
	/* the callback gets arrays, never NULL, even when one is empty */
	static const CLUSTERSHARD none[1];
	CLUSTERSHARDS cb;
	int oom;

	if(!n_acquired && !n_released)
	{
		return;
	}
	acquired = n_acquired ? acquired : none;
	released = n_released ? released : none;
	pthread_mutex_lock(&core->lock);
	while(core->shard_delivering)
	{
		pthread_cond_wait(&core->delivered, &core->lock);
	}
	core->shard_delivering = 1;
	oom = n_acquired && update_held(core, acquired, n_acquired, NULL, 0);
	cb = core->shard_cb;
	pthread_mutex_unlock(&core->lock);
	if(oom)
	{
		cluster__log(core, LOG_ERR, "libcluster: shards: out of memory recording owned shards\n");
	}
	if(cluster__verbose(core))
	{
		cluster__log(core, LOG_DEBUG, "libcluster: shards: acquiring %zu, releasing %zu\n", n_acquired, n_released);
	}
	if(cb)
	{
		cluster__callback_enter(core);
		cb(core, acquired, n_acquired, released, n_released);
		cluster__callback_leave(core);
	}
	pthread_mutex_lock(&core->lock);
	if(n_released)
	{
		update_held(core, NULL, 0, released, n_released);
	}
	core->shard_delivering = 0;
	pthread_cond_broadcast(&core->delivered);
	pthread_mutex_unlock(&core->lock);
}

int
cluster__shards_held(CLUSTER *core, CLUSTERSHARD **held, size_t *n)
{
	int r = 0;

	pthread_mutex_lock(&core->lock);
	*held = NULL;
	*n = core->n_held;
	if(core->n_held)
	{
		*held = malloc(core->n_held * sizeof(**held));
		if(*held)
		{
			memcpy(*held, core->held, core->n_held * sizeof(**held));
		}
		else
		{
			*n = 0;
			r = ENOMEM;
		}
	}
	pthread_mutex_unlock(&core->lock);
	return r;
}

void
cluster__shards_set_map(CLUSTER *core, cluster__shard_map *map)
{
	cluster__shard_map *m = NULL, *old;

	if(map)
	{
		m = malloc(sizeof(*m));
		if(!m)
		{
			cluster__log(core, LOG_ERR, "libcluster: shards: out of memory keeping the assignment\n");
			return;
		}
		*m = *map;
		memset(map, 0, sizeof(*map));
	}
	pthread_mutex_lock(&core->lock);
	old = core->shard_map;
	core->shard_map = m;
	pthread_mutex_unlock(&core->lock);
	if(old)
	{
		cluster__shard_map_free(old);
		free(old);
	}
}

/* ------------------------------------------------------------------ */
/* glue for join and leave                                              */
/* ------------------------------------------------------------------ */

int
cluster__shards_check_join(CLUSTER *cluster)
{
	int shards;
	CLUSTERSHARDS cb;

	pthread_mutex_lock(&cluster->lock);
	shards = cluster->shards;
	cb = cluster->shard_cb;
	pthread_mutex_unlock(&cluster->lock);
	if(!shards)
	{
		return 0;
	}
	if(!cb)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: shards are set (%d) but no shard callback is installed: call cluster_set_shard_callback() first\n", shards);
		return EINVAL;
	}
	if(!cluster->engine->shards)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: the %s engine does not support shard ownership: use an etcd v3 registry, the static engine, or cluster_set_shards(c, 0)\n",
			cluster->engine->name);
		return ENOTSUP;
	}
	return 0;
}

/*
 * The static engine's assignment: worker index i of the cluster total T
 * owns the shards s with floor(s * T / S) == i, so each worker has
 * floor(S/T) or one more, in one contiguous range. Token 1: it never
 * changes owner.
 */
void
cluster__shards_static_refresh(CLUSTER *cluster)
{
	CLUSTERSHARD *want = NULL, *acq = NULL, *rel = NULL, *held = NULL;
	size_t nw = 0, na = 0, nr = 0, nh = 0, i, j;
	long long S, T, lo = 0, hi = 0;
	int base, workers;

	pthread_mutex_lock(&cluster->lock);
	S = cluster->joined ? cluster->shards : 0;
	base = cluster->index;
	workers = cluster->workers;
	T = cluster->total;
	pthread_mutex_unlock(&cluster->lock);
	if(cluster->engine != &cluster__engine_static || !S)
	{
		return;
	}
	if(base >= 0 && T > 0)
	{
		/* first s with s*T >= base*S, up to the first with s*T >= (base+w)*S */
		lo = ((long long) base * S + T - 1) / T;
		hi = ((long long) (base + workers) * S + T - 1) / T;
		if(hi > S)
		{
			hi = S;
		}
	}
	if(hi > lo)
	{
		want = malloc((size_t) (hi - lo) * sizeof(*want));
		if(!want)
		{
			cluster__log(cluster, LOG_ERR, "libcluster: shards: out of memory computing the static assignment\n");
			return;
		}
		for(nw = 0; (long long) nw < hi - lo; nw++)
		{
			want[nw].shard = (unsigned) (lo + (long long) nw);
			want[nw].token = 1;
		}
	}
	if(cluster__shards_held(cluster, &held, &nh))
	{
		free(want);
		return;
	}
	acq = nw ? malloc(nw * sizeof(*acq)) : NULL;
	rel = nh ? malloc(nh * sizeof(*rel)) : NULL;
	if((nw && !acq) || (nh && !rel))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: shards: out of memory computing the static assignment\n");
		goto out;
	}
	for(i = j = 0; i < nw || j < nh;)
	{
		if(j >= nh || (i < nw && want[i].shard < held[j].shard))
		{
			acq[na++] = want[i++];
		}
		else if(i >= nw || held[j].shard < want[i].shard)
		{
			rel[nr++] = held[j++];
		}
		else
		{
			i++;
			j++;
		}
	}
	cluster__shards_deliver(cluster, acq, na, rel, nr);
out:
	free(want);
	free(held);
	free(acq);
	free(rel);
}

void
cluster__shards_after_leave(CLUSTER *cluster)
{
	CLUSTERSHARD *held;
	size_t n;

	if(!cluster__shards_held(cluster, &held, &n) && n)
	{
		cluster__shards_deliver(cluster, NULL, 0, held, n);
	}
	free(held);
	cluster__shards_set_map(cluster, NULL);
}

void
cluster__shards_free(CLUSTER *cluster)
{
	free(cluster->held);
	cluster->held = NULL;
	cluster->n_held = 0;
	if(cluster->shard_map)
	{
		cluster__shard_map_free(cluster->shard_map);
		free(cluster->shard_map);
		cluster->shard_map = NULL;
	}
}

/* ------------------------------------------------------------------ */
/* public calls                                                         */
/* ------------------------------------------------------------------ */

int
cluster_set_shards(CLUSTER *cluster, int shards)
{
	int r;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	r = cluster__refuse_if_joined(cluster);
	if(!r && (shards < 0 || shards > CLUSTER_SHARDS_MAX))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: shard count %d is invalid: it must be between 1 and %d (0: off)\n", shards, CLUSTER_SHARDS_MAX);
		r = EINVAL;
	}
	if(!r)
	{
		pthread_mutex_lock(&cluster->lock);
		cluster->shards = shards;
		pthread_mutex_unlock(&cluster->lock);
	}
	cluster__control_end(cluster);
	return r ? cluster__fail(cluster, r) : 0;
}

int
cluster_shards(CLUSTER *cluster)
{
	int s;

	if(cluster__enter(cluster, __func__))
	{
		return 0;
	}
	pthread_mutex_lock(&cluster->lock);
	s = cluster->shards;
	pthread_mutex_unlock(&cluster->lock);
	return s;
}

int
cluster_set_shard_callback(CLUSTER *cluster, CLUSTERSHARDS callback)
{
	int r;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	r = cluster__refuse_if_joined(cluster);
	if(!r)
	{
		pthread_mutex_lock(&cluster->lock);
		cluster->shard_cb = callback;
		pthread_mutex_unlock(&cluster->lock);
	}
	cluster__control_end(cluster);
	return r ? cluster__fail(cluster, r) : 0;
}

int
cluster_set_shard_settle(CLUSTER *cluster, int ms)
{
	int r;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	r = cluster__refuse_if_joined(cluster);
	if(!r && (ms < 0 || ms > 60000))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: shard settle window %d ms is invalid: it must be between 0 and 60000\n", ms);
		r = EINVAL;
	}
	if(!r)
	{
		pthread_mutex_lock(&cluster->lock);
		cluster->shard_settle_ms = ms;
		pthread_mutex_unlock(&cluster->lock);
	}
	cluster__control_end(cluster);
	return r ? cluster__fail(cluster, r) : 0;
}

/* EPERM unless joined with shards set (the message says which). */
static int
shards_active(CLUSTER *cluster)
{
	int joined, shards;

	pthread_mutex_lock(&cluster->lock);
	joined = cluster->joined;
	shards = cluster->shards;
	pthread_mutex_unlock(&cluster->lock);
	if(!shards)
	{
		return cluster__fail_msg(cluster, EPERM, "libcluster: no shards are set (cluster_set_shards())");
	}
	if(!joined)
	{
		return cluster__fail_msg(cluster, EPERM, "libcluster: not joined");
	}
	return 0;
}

int
cluster_owned_shards(CLUSTER *cluster, CLUSTERSHARD **shards, size_t *count)
{
	int r;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	if(!shards || !count)
	{
		return cluster__fail_msg(cluster, EINVAL, "libcluster: cluster_owned_shards(): shards and count must not be NULL");
	}
	*shards = NULL;
	*count = 0;
	if(shards_active(cluster))
	{
		return -1;
	}
	r = cluster__shards_held(cluster, shards, count);
	return r ? cluster__fail(cluster, r) : 0;
}

void
cluster_shards_free(CLUSTERSHARD *shards)
{
	free(shards);
}

int
cluster_shard_owner(CLUSTER *cluster, int shard, char *id, size_t size, long long *token)
{
	const cluster__shard_run *run;
	const char *owner;
	int err = 0;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	if(id && !size)
	{
		return cluster__fail_msg(cluster, EINVAL, "libcluster: cluster_shard_owner(): size is 0");
	}
	if(shards_active(cluster))
	{
		return -1;
	}
	pthread_mutex_lock(&cluster->lock);
	if(shard < 0 || shard >= cluster->shards)
	{
		err = ERANGE;
	}
	else if(cluster->engine == &cluster__engine_static)
	{
		/* the fixed split: only this instance's own shards are known */
		size_t lo = 0, hi = cluster->n_held;

		err = ENOENT;
		while(lo < hi)
		{
			size_t mid = lo + (hi - lo) / 2;

			if(cluster->held[mid].shard < (unsigned) shard)
			{
				lo = mid + 1;
			}
			else
			{
				hi = mid;
			}
		}
		if(lo < cluster->n_held && cluster->held[lo].shard == (unsigned) shard)
		{
			owner = cluster->instance;
			if(id && strlen(owner) >= size)
			{
				err = ENOSPC;
			}
			else
			{
				err = 0;
				if(id)
				{
					strcpy(id, owner);
				}
				if(token)
				{
					*token = 1;
				}
			}
		}
	}
	else if(!cluster->shard_map || !(run = cluster__shard_map_run(cluster->shard_map, (uint32_t) shard)) || run->owner < 0 || run->next >= 0)
	{
		err = ENOENT;
	}
	else
	{
		owner = cluster->shard_map->owners[run->owner].id;
		if(id && strlen(owner) >= size)
		{
			err = ENOSPC;
		}
		else
		{
			if(id)
			{
				strcpy(id, owner);
			}
			if(token)
			{
				*token = run->token;
			}
		}
	}
	pthread_mutex_unlock(&cluster->lock);
	switch(err)
	{
	case 0:
		return 0;
	case ERANGE:
		return cluster__fail_msg(cluster, ERANGE, "libcluster: shard %d is out of range (0 .. shards-1)", shard);
	case ENOSPC:
		return cluster__fail_msg(cluster, ENOSPC, "libcluster: cluster_shard_owner(): the id buffer is too small");
	default:
		return cluster__fail_msg(cluster, ENOENT, "libcluster: shard %d has no owner right now", shard);
	}
}
