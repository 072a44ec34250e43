/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Members and their separate status records as one node per member
 * (status-fold.h says why). Pure: no I/O, no locks, no globals.
 */
#include <errno.h>
#include <string.h>

#include "status-fold.h"

/* Put the status of s (a status record) on the member record m, as its
 * separate status; m's revision becomes the later of the two, so that a
 * change of either is a change of the node. */
static void
with_status(cluster__member *m, const cluster__member *s)
{
	m->has_status = 1;
	m->status_apart = 1;
	memcpy(m->address, s->address, sizeof(m->address));
	m->load = s->load;
	m->capacity = s->capacity;
	m->has_up = s->has_up;
	m->up_ms = s->up_ms;
	m->joined_ms = s->joined_ms;
	if(s->mod_revision > m->mod_revision)
	{
		m->mod_revision = s->mod_revision;
	}
}

/* The operations below work on the shared copies m and o, which replace
 * the caller's tables only when the whole operation succeeded. */

static int
member_put(cluster__table *m, cluster__table *o, const cluster__member *rec, int64_t now_ms)
{
	const cluster__node *old = cluster__table_find(m, rec->id), *orphan = NULL;
	cluster__member want = *rec, s;
	int r;

	want.status_apart = 0;
	if(old && old->status_apart)
	{
		cluster__node_record(old, &s);
		with_status(&want, &s);
	}
	else if((orphan = cluster__table_find(o, rec->id)))
	{
		cluster__node_record(orphan, &s);
		with_status(&want, &s);
	}
	r = cluster__table_put(m, &want, now_ms, NULL);
	if(!r && orphan && cluster__table_del(o, rec->id) < 0)
	{
		r = ENOMEM;
	}
	return r;
}

static int
member_del(cluster__table *m, cluster__table *o, const char *id)
{
	const cluster__node *old = cluster__table_find(m, id);
	cluster__member s;
	int r;

	if(!old)
	{
		return 0;
	}
	if(old->status_apart)
	{
		/* the status key may outlive the member key (or come back
		 * with it): keep it as an orphan */
		cluster__node_record(old, &s);
		s.status_apart = 0;
		s.create_revision = 0;
		r = cluster__table_put_status(o, &s, old->received_ms, NULL);
		if(r && r != E2BIG)
		{
			/* E2BIG: as many orphans as members can be; this one is
			 * dropped, as a status of a member past the limit is */
			return r;
		}
	}
	return cluster__table_del(m, id) < 0 ? ENOMEM : 0;
}

static int
status_put(cluster__table *m, cluster__table *o, const cluster__member *rec, int64_t now_ms)
{
	const cluster__node *old;
	cluster__member want;
	int r;

	if(!rec->has_status)
	{
		return EINVAL;
	}
	old = cluster__table_find(m, rec->id);
	if(!old)
	{
		want = *rec;
		want.status_apart = 0;
		return cluster__table_put_status(o, &want, now_ms, NULL);
	}
	cluster__node_record(old, &want);
	with_status(&want, rec);
	r = cluster__table_put(m, &want, now_ms, NULL);
	if(!r && cluster__table_del(o, rec->id) < 0)
	{
		r = ENOMEM;
	}
	return r;
}

static int
status_del(cluster__table *m, cluster__table *o, const char *id, int64_t now_ms)
{
	const cluster__node *old = cluster__table_find(m, id);
	cluster__member want;
	int r;

	if(old && old->status_apart)
	{
		cluster__node_record(old, &want);
		want.has_status = 0;
		want.status_apart = 0;
		want.has_up = 0;
		want.joined_ms = 0;
		want.load = want.capacity = 0;
		want.address[0] = 0;
		r = cluster__table_put(m, &want, now_ms, NULL);
		if(r)
		{
			return r;
		}
	}
	return cluster__table_del(o, id) < 0 ? ENOMEM : 0;
}

static int
fold_members(cluster__table *m, cluster__table *o, const cluster__table *raw, int64_t now_ms)
{
	cluster__table old;
	cluster__table_iter it;
	const cluster__node *n;
	cluster__member rec;
	int r = 0;

	/* deletions first: the table never holds more than either set */
	cluster__table_share(&old, m);
	cluster__table_iter_init(&it, &old);
	while(!r && (n = cluster__table_iter_next(&it)))
	{
		if(!cluster__table_find(raw, n->id))
		{
			r = member_del(m, o, n->id);
		}
	}
	cluster__table_free(&old);
	cluster__table_iter_init(&it, raw);
	while(!r && (n = cluster__table_iter_next(&it)))
	{
		cluster__node_record(n, &rec);
		r = member_put(m, o, &rec, now_ms);
	}
	return r;
}

static int
fold_statuses(cluster__table *m, cluster__table *o, const cluster__table *raw, int64_t now_ms)
{
	cluster__table old;
	cluster__table_iter it;
	const cluster__node *n;
	cluster__member rec;
	int r = 0;

	cluster__table_share(&old, m);
	cluster__table_iter_init(&it, &old);
	while(!r && (n = cluster__table_iter_next(&it)))
	{
		if(n->status_apart && !cluster__table_find(raw, n->id))
		{
			r = status_del(m, o, n->id, now_ms);
		}
	}
	cluster__table_free(&old);
	cluster__table_share(&old, o);
	cluster__table_iter_init(&it, &old);
	while(!r && (n = cluster__table_iter_next(&it)))
	{
		if(!cluster__table_find(raw, n->id) && cluster__table_del(o, n->id) < 0)
		{
			r = ENOMEM;
		}
	}
	cluster__table_free(&old);
	cluster__table_iter_init(&it, raw);
	while(!r && (n = cluster__table_iter_next(&it)))
	{
		cluster__node_record(n, &rec);
		r = status_put(m, o, &rec, now_ms);
		if(r == E2BIG)
		{
			r = 0; /* an orphan past the limit: dropped (member_del) */
		}
	}
	return r;
}

/* Shared copies of both tables to work on. */
static void
begin(cluster__table *m, cluster__table *o, const cluster__table *members, const cluster__table *orphans)
{
	cluster__table_share(m, members);
	cluster__table_share(o, orphans);
}

/* The copies replace the tables if r is 0, else they are dropped.
 * Returns r. */
static int
end(int r, cluster__table *m, cluster__table *o, cluster__table *members, cluster__table *orphans)
{
	if(r)
	{
		cluster__table_free(m);
		cluster__table_free(o);
		return r;
	}
	cluster__table_free(members);
	cluster__table_free(orphans);
	*members = *m;
	*orphans = *o;
	return 0;
}

int
cluster__fold_member_put(cluster__table *members, cluster__table *orphans, const cluster__member *rec, int64_t now_ms)
{
	cluster__table m, o;

	begin(&m, &o, members, orphans);
	return end(member_put(&m, &o, rec, now_ms), &m, &o, members, orphans);
}

int
cluster__fold_member_del(cluster__table *members, cluster__table *orphans, const char *id)
{
	cluster__table m, o;

	begin(&m, &o, members, orphans);
	return end(member_del(&m, &o, id), &m, &o, members, orphans);
}

int
cluster__fold_status_put(cluster__table *members, cluster__table *orphans, const cluster__member *rec, int64_t now_ms)
{
	cluster__table m, o;

	begin(&m, &o, members, orphans);
	return end(status_put(&m, &o, rec, now_ms), &m, &o, members, orphans);
}

int
cluster__fold_status_del(cluster__table *members, cluster__table *orphans, const char *id, int64_t now_ms)
{
	cluster__table m, o;

	begin(&m, &o, members, orphans);
	return end(status_del(&m, &o, id, now_ms), &m, &o, members, orphans);
}

int
cluster__fold_prefixes(cluster__table *members, cluster__table *orphans, const cluster__table *raw_members, const cluster__table *raw_statuses, int64_t now_ms)
{
	cluster__table m, o;
	int r = 0;

	begin(&m, &o, members, orphans);
	if(raw_members)
	{
		r = fold_members(&m, &o, raw_members, now_ms);
	}
	if(!r && raw_statuses)
	{
		r = fold_statuses(&m, &o, raw_statuses, now_ms);
	}
	return end(r, &m, &o, members, orphans);
}
