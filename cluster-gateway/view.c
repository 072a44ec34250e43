/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway: the member list the HTTP handlers read.
 *
 * Snapshots are made on any thread (the library's balancer thread when
 * the membership changes, the loop's refresh timer for status changes,
 * which the library announces to no callback) and handed to the loop
 * thread through one mutex-guarded slot: the producer swaps its snapshot
 * in, drops the one it replaced, and activates an event. The mutex is
 * held only for the swap, so a library callback never waits for the loop
 * and the loop never waits for the library. The event was created on a
 * base with libevent's pthreads locking on (main.c), which is what makes
 * event_active() safe from another thread; nothing else of libevent is
 * touched off the loop thread.
 */
#include "gateway.h"

#include <event2/event.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

struct gw_snapshot *
gw_snapshot_take(CLUSTER *cluster)
{
	struct gw_snapshot *snap;

	snap = calloc(1, sizeof(*snap));
	if(!snap)
	{
		return NULL;
	}
	if(cluster_members(cluster, &snap->members, &snap->count))
	{
		free(snap);
		return NULL;
	}
	/* one counter per member, even for an empty list (calloc(0) may be NULL) */
	snap->picks = calloc(snap->count ? snap->count : 1, sizeof(*snap->picks));
	snap->rr = calloc(snap->count ? snap->count : 1, sizeof(*snap->rr));
	if(!snap->picks || !snap->rr)
	{
		free(snap->picks);
		free(snap->rr);
		cluster_members_free(snap->members);
		free(snap);
		return NULL;
	}
	snap->taken_ms = gw_now_ms();
	return snap;
}

void
gw_snapshot_free(struct gw_snapshot *snap)
{
	if(snap)
	{
		cluster_members_free(snap->members);
		free(snap->picks);
		free(snap->rr);
		free(snap);
	}
}

/*
 * Carry the pick counters and round-robin credits of members still
 * present from old to new (a refresh must not restart the round robin). Both
 * lists are sorted by id in byte order (cluster_members() says so, and
 * strcmp() compares bytes as unsigned char), so one merge pass does it.
 * A member that left takes its counter with it.
 */
static void
carry_picks(const struct gw_snapshot *old, struct gw_snapshot *snap)
{
	size_t i = 0, j = 0;

	while(i < old->count && j < snap->count)
	{
		int c = strcmp(old->members[i].id, snap->members[j].id);

		if(c == 0)
		{
			snap->picks[j] = old->picks[i];
			snap->rr[j++] = old->rr[i++];
		}
		else if(c < 0)
		{
			i++;
		}
		else
		{
			j++;
		}
	}
}

/* The wake event: install the newest offered snapshot (loop thread). */
static void
take_pending(evutil_socket_t fd, short what, void *arg)
{
	struct gw_view *view = arg;
	struct gw_snapshot *snap;

	(void) fd;
	(void) what;
	pthread_mutex_lock(&view->lock);
	snap = view->pending;
	view->pending = NULL;
	pthread_mutex_unlock(&view->lock);
	if(!snap)
	{
		return;
	}
	carry_picks(view->current, snap);
	gw_snapshot_free(view->current);
	view->current = snap;
}

int
gw_view_init(struct gw_view *view, struct event_base *base)
{
	memset(view, 0, sizeof(*view));
	view->current = calloc(1, sizeof(*view->current));
	if(!view->current)
	{
		return -1;
	}
	view->wake = event_new(base, -1, 0, take_pending, view);
	if(!view->wake || pthread_mutex_init(&view->lock, NULL))
	{
		if(view->wake)
		{
			event_free(view->wake);
		}
		free(view->current);
		return -1;
	}
	return 0;
}

/* After the library is gone (no thread can offer any more). */
void
gw_view_destroy(struct gw_view *view)
{
	event_free(view->wake);
	pthread_mutex_destroy(&view->lock);
	gw_snapshot_free(view->pending);
	gw_snapshot_free(view->current);
}

void
gw_view_offer(struct gw_view *view, struct gw_snapshot *snap)
{
	struct gw_snapshot *replaced;

	pthread_mutex_lock(&view->lock);
	replaced = view->pending;
	view->pending = snap;
	pthread_mutex_unlock(&view->lock);
	/* a snapshot the loop never took is older than this one */
	gw_snapshot_free(replaced);
	event_active(view->wake, EV_READ, 0);
}

static int
member_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const CLUSTERMEMBER *) elem)->id);
}

void
gw_view_count_pick(struct gw_view *view, const char *id)
{
	const struct gw_snapshot *cur = view->current;
	const CLUSTERMEMBER *m;

	m = cur->count ? bsearch(id, cur->members, cur->count, sizeof(*cur->members), member_cmp) : NULL;
	if(m)
	{
		cur->picks[m - cur->members]++;
	}
	else
	{
		view->picks_unlisted++;
	}
}

/*
 * The balancer callback (library thread, or the caller's thread inside
 * join and leave): the membership changed, so copy it now rather than
 * waiting for the next refresh. Getters are allowed here and do not wait
 * on the network; the hand-off does not wait for the loop.
 */
int
gw_on_balance(CLUSTER *cluster, CLUSTERSTATE *state)
{
	struct gw *gw = cluster_userdata(cluster);
	struct gw_snapshot *snap;

	(void) state;
	if(!gw)
	{
		return 0;
	}
	snap = gw_snapshot_take(cluster);
	if(!snap)
	{
		/* not joined any more (the leave's last call), or no memory: the
		 * refresh timer tries again */
		if(errno != EPERM)
		{
			gw_log(LOG_WARNING, "cannot copy the member list: %s", strerror(errno));
		}
		return 0;
	}
	gw_view_offer(&gw->view, snap);
	return 0;
}
