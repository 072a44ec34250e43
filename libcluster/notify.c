/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one path through which every engine's view reaches the application:
 * engines publish member sets here, the newest one waits as "pending"
 * (for the settle window, or while a join still holds the control lock),
 * and cluster__deliver() makes it the stored view and calls the balancer
 * callback. Callbacks run with no library lock held, outside libcurl, one
 * at a time per handle and in order, and are bracketed per handle so that
 * a control call on the same handle from inside one fails with EDEADLK.
 */
#include "cluster-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A burst of changes is delivered once it has been quiet for the settle
 * window, but never later than this many windows after its first change. */
#define SETTLE_MAX_WINDOWS 5

/* The handles whose callbacks are running on this thread, innermost last.
 * Deeper nesting than this is not tracked by handle: every handle then
 * counts as busy (a refusal, never a deadlock). */
#define CALLBACK_NEST_MAX 8
static __thread CLUSTER *callback_handles[CALLBACK_NEST_MAX];
static __thread unsigned callback_depth;

void
cluster__callback_enter(CLUSTER *cluster)
{
	if(callback_depth < CALLBACK_NEST_MAX)
	{
		callback_handles[callback_depth] = cluster;
	}
	callback_depth++;
}

void
cluster__callback_leave(CLUSTER *cluster)
{
	(void) cluster;
	if(callback_depth)
	{
		callback_depth--;
	}
}

int
cluster__in_callback(CLUSTER *cluster)
{
	unsigned i;

	if(callback_depth > CALLBACK_NEST_MAX)
	{
		return 1;
	}
	for(i = 0; i < callback_depth; i++)
	{
		if(callback_handles[i] == cluster)
		{
			return 1;
		}
	}
	return 0;
}

/* Log the listing and the re-balance line for a delivered change. The
 * listing walks a shared copy of the stored view (O(1) to take), so the
 * lock is held only while taking it. */
static void
log_change(CLUSTER *cluster, const CLUSTERSTATE *st, int old_base, int old_total)
{
	const char *tag = cluster->engine->name;
	const char *part = cluster->partition;

	if(cluster__verbose(cluster))
	{
		cluster__view view;
		cluster__view_iter it;
		cluster__view_entry e;

		cluster__log(cluster, LOG_DEBUG, "libcluster: %s: re-balancing cluster %s%s%s%s/%s:\n", tag, cluster->key,
			part ? "[" : "", part ? part : "", part ? "]" : "", cluster->env);
		pthread_mutex_lock(&cluster->lock);
		cluster__view_copy(&view, &cluster->view);
		pthread_mutex_unlock(&cluster->lock);
		cluster__view_iter_init(&it, &view);
		while(cluster__view_next(&it, &e))
		{
			char mark = e.self ? '*' : ' ';

			if(e.node->passive)
			{
				cluster__log(cluster, LOG_DEBUG, "%c %s [passive]\n", mark, e.node->id);
			}
			else
			{
				cluster__log(cluster, LOG_DEBUG, "%c %s [%d]\n", mark, e.node->id, e.base);
			}
		}
		cluster__view_free(&view);
	}
	if(old_base >= 0 && st->index < 0 && !st->passive)
	{
		cluster__log(cluster, LOG_NOTICE, "libcluster: %s: this instance is no longer a member of %s/%s\n", tag, cluster->key, cluster->env);
	}
	else
	{
		cluster__log(cluster, LOG_NOTICE, "libcluster: %s: cluster %s%s%s%s/%s has re-balanced: new base is %d (was %d), new total is %d (was %d)\n",
			tag, cluster->key, part ? "[" : "", part ? part : "", part ? "]" : "", cluster->env, st->index, old_base, st->total, old_total);
	}
	cluster__log(cluster, LOG_DEBUG, "libcluster: re-balanced; this instance has base index %d (%d %s) from a total of %d\n",
		st->index, st->workers, st->workers == 1 ? "worker" : "workers", st->total);
}

/* Become the handle's only deliverer (callbacks never overlap and never
 * run out of order). Called and returns with cluster->lock held. */
static void
delivery_begin(CLUSTER *cluster)
{
	while(cluster->delivering)
	{
		pthread_cond_wait(&cluster->delivered, &cluster->lock);
	}
	cluster->delivering = 1;
}

static void
delivery_end(CLUSTER *cluster)
{
	cluster->delivering = 0;
	pthread_cond_broadcast(&cluster->delivered);
}

/*
 * Deliver what is pending. If another thread is delivering, leave it to
 * that thread: it looks for a pending view again (under the lock) before
 * it stops, so nothing is lost, and nobody waits for somebody else's
 * callback to return (which could be waiting for us).
 */
void
cluster__deliver(CLUSTER *cluster)
{
	pthread_mutex_lock(&cluster->lock);
	if(cluster->delivering)
	{
		pthread_mutex_unlock(&cluster->lock);
		return;
	}
	cluster->delivering = 1;
	while(cluster->has_pending)
	{
		CLUSTERBALANCE cb;
		CLUSTERSTATE st;
		cluster__view anchor;
		int old_base, old_total, notify, advised;

		cluster->has_pending = 0;
		cluster->pending_first_ms = 0;
		if(!cluster->joined || cluster->joining)
		{
			/* a late publish racing with leave, or a join still under way:
			 * the join delivers its own first view once it is done */
			if(!cluster->joined)
			{
				cluster__view_free(&cluster->pending);
			}
			else
			{
				cluster->has_pending = 1;
			}
			break;
		}
		old_base = cluster->index;
		old_total = cluster->total;
		notify = !cluster->announced || old_base != cluster->pending.base || old_total != cluster->pending.total;
		cluster__view_free(&cluster->view);
		cluster->view = cluster->pending;
		cluster->view_gen++;
		memset(&cluster->pending, 0, sizeof(cluster->pending));
		cluster->index = cluster->view.base;
		cluster->total = cluster->view.total;
		cluster->announced = 1;
		advised = cluster->advisor != NULL;
		if(advised)
		{
			cluster__view_copy(&anchor, &cluster->view);
		}
		cb = cluster->balancer;
		st.index = cluster->index;
		st.workers = cluster->workers;
		st.total = cluster->total;
		st.passive = cluster->passive;
		pthread_mutex_unlock(&cluster->lock);
		if(advised)
		{
			cluster__advisor_view(cluster, &anchor);
			cluster__view_free(&anchor);
		}
		if(notify)
		{
			log_change(cluster, &st, old_base, old_total);
			if(cb)
			{
				cluster__callback_enter(cluster);
				cb(cluster, &st);
				cluster__callback_leave(cluster);
			}
		}
		pthread_mutex_lock(&cluster->lock);
	}
	delivery_end(cluster);
	pthread_mutex_unlock(&cluster->lock);
}

void
cluster__deliver_state(CLUSTER *cluster, CLUSTERBALANCE cb, CLUSTERSTATE *st)
{
	pthread_mutex_lock(&cluster->lock);
	delivery_begin(cluster);
	pthread_mutex_unlock(&cluster->lock);
	cluster__log(cluster, LOG_DEBUG, "libcluster: re-balanced; this instance has base index %d (%d %s) from a total of %d\n",
		st->index, st->workers, st->workers == 1 ? "worker" : "workers", st->total);
	if(cb)
	{
		cluster__callback_enter(cluster);
		cb(cluster, st);
		cluster__callback_leave(cluster);
	}
	pthread_mutex_lock(&cluster->lock);
	delivery_end(cluster);
	pthread_mutex_unlock(&cluster->lock);
}

/*
 * Make view the pending one (replacing an older pending view) and
 * deliver it now unless it should settle first: an engine that ticks
 * (cluster__settle_tick) gets the settle window, and a join still in
 * progress delivers its first view itself once it has released the
 * control lock.
 */
static int
queue_view(CLUSTER *cluster, cluster__view *view)
{
	int64_t now = cluster__now_ms();
	int now_please;

	pthread_mutex_lock(&cluster->lock);
	if(!cluster->joined)
	{
		pthread_mutex_unlock(&cluster->lock);
		cluster__view_free(view);
		return 0;
	}
	cluster__view_free(&cluster->pending);
	cluster->pending = *view;
	memset(view, 0, sizeof(*view));
	if(!cluster->has_pending || !cluster->pending_first_ms)
	{
		cluster->pending_first_ms = now;
	}
	cluster->has_pending = 1;
	cluster->pending_last_ms = now;
	now_please = !cluster->joining && !cluster->holding && (!cluster->engine->settles || cluster->settle_ms <= 0 || !cluster->announced);
	pthread_mutex_unlock(&cluster->lock);
	if(now_please)
	{
		cluster__deliver(cluster);
	}
	return 0;
}

int64_t
cluster__settle_tick(CLUSTER *cluster)
{
	int64_t now, due, cap;

	pthread_mutex_lock(&cluster->lock);
	if(!cluster->has_pending || cluster->joining || !cluster->joined)
	{
		pthread_mutex_unlock(&cluster->lock);
		return -1;
	}
	due = cluster->pending_last_ms + cluster->settle_ms;
	cap = cluster->pending_first_ms + (int64_t) cluster->settle_ms * SETTLE_MAX_WINDOWS;
	due = due < cap ? due : cap;
	now = cluster__now_ms();
	pthread_mutex_unlock(&cluster->lock);
	if(now < due)
	{
		return due - now;
	}
	cluster__deliver(cluster);
	return -1;
}

int
cluster__publish_tables(CLUSTER *cluster, const cluster__table *members, const cluster__table *statuses, int64_t revision, uint64_t members_gen)
{
	cluster__view view;

	cluster__view_make(&view, members, statuses, cluster->instance, revision);
	view.members_gen = members_gen;
	if(view.self >= 0 && cluster->passive)
	{
		/* an observer is never counted, even if a record with its id exists */
		view.base = -1;
	}
	return queue_view(cluster, &view);
}

/* Builds a table from the records, each keeping its own receipt time
 * (now when it has none), then publishes it. */
int
cluster__publish_view(CLUSTER *cluster, const cluster__member *members, size_t n, int64_t revision)
{
	cluster__table t;
	int64_t now = cluster__now_ms();
	size_t i;
	int r = 0;

	memset(&t, 0, sizeof(t));
	if(n > CLUSTER_MEMBERS_MAX)
	{
		r = E2BIG;
	}
	for(i = 0; i < n && !r; i++)
	{
		r = cluster__table_put(&t, &members[i], members[i].received_ms ? members[i].received_ms : now, NULL);
		if(!r && cluster__table_count(&t) != i + 1)
		{
			r = EINVAL; /* a duplicate id */
		}
	}
	if(r)
	{
		cluster__table_free(&t);
		if(r == E2BIG)
		{
			cluster__log(cluster, LOG_ERR, "libcluster: %s: rejected a member set of %zu records at revision %lld: more than CLUSTER_MEMBERS_MAX (%d)\n",
				cluster->engine->name, n, (long long) revision, CLUSTER_MEMBERS_MAX);
		}
		else
		{
			cluster__log(cluster, LOG_ERR, "libcluster: %s: rejected a member set of %zu records at revision %lld: %s\n", cluster->engine->name, n, (long long) revision, strerror(r));
		}
		return r;
	}
	r = cluster__publish_tables(cluster, &t, NULL, revision, 0);
	cluster__table_free(&t);
	return r;
}

/* The static engine's view: this instance alone, its base and the total
 * fixed by configuration rather than computed (offset shifts the base). */
int
cluster__publish_static(CLUSTER *cluster, int base, int total)
{
	cluster__table t;
	cluster__member self;
	cluster__view view;
	int r;

	memset(&t, 0, sizeof(t));
	memset(&self, 0, sizeof(self));
	snprintf(self.id, sizeof(self.id), "%s", cluster->instance);
	pthread_mutex_lock(&cluster->lock);
	self.workers = cluster->workers;
	pthread_mutex_unlock(&cluster->lock);
	self.passive = base < 0;
	r = cluster__table_put(&t, &self, cluster__now_ms(), NULL);
	if(r)
	{
		return r;
	}
	cluster__view_make(&view, &t, NULL, cluster->instance, 0);
	cluster__table_free(&t);
	view.offset = base < 0 ? 0 : base;
	view.base = base;
	view.total = total;
	return queue_view(cluster, &view);
}

int
cluster__first_view_delivered(CLUSTER *cluster)
{
	int done;

	pthread_mutex_lock(&cluster->lock);
	done = !cluster->joined || (cluster->announced && !cluster->joining && !cluster->delivering);
	pthread_mutex_unlock(&cluster->lock);
	return done;
}
