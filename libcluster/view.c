/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure views (see view.h). No I/O, no locks, no globals.
 */
#include "view.h"

#include <string.h>

void
cluster__view_init(cluster__view *view)
{
	memset(view, 0, sizeof(*view));
	view->self = -1;
	view->base = -1;
}

/*
 * Everything a delivery compares (this instance's base, the total) comes
 * from the subtree sums in O(log N): the view never walks the members.
 */
void
cluster__view_make(cluster__view *out, const cluster__table *members, const cluster__table *statuses, const char *self_id, int64_t revision)
{
	cluster__view_init(out);
	cluster__table_share(&out->members, members);
	if(statuses)
	{
		cluster__table_share(&out->statuses, statuses);
	}
	out->count = cluster__table_count(members);
	out->total = cluster__table_total(members);
	out->revision = revision;
	if(self_id)
	{
		int base;
		long pos;
		const cluster__node *n = cluster__table_locate(members, self_id, &pos, &base);

		if(n)
		{
			out->self = pos;
			out->base = n->passive ? -1 : base;
		}
	}
}

void
cluster__view_copy(cluster__view *out, const cluster__view *in)
{
	*out = *in;
	cluster__table_share(&out->members, &in->members);
	cluster__table_share(&out->statuses, &in->statuses);
}

void
cluster__view_free(cluster__view *view)
{
	cluster__table_free(&view->members);
	cluster__table_free(&view->statuses);
	cluster__view_init(view);
}

/* Fill an entry; sn is the member's record in the statuses table (NULL:
 * none, the member's own status stands). */
static void
entry(const cluster__view *view, const cluster__node *n, const cluster__node *sn, size_t pos, int sum, cluster__view_entry *out)
{
	out->node = n;
	out->has_status = cluster__node_status(sn ? sn : n, &out->address, &out->load, &out->capacity);
	out->has_joined = out->has_status && (sn ? sn : n)->has_joined;
	out->joined_ms = out->has_joined ? cluster__node_joined_ms(sn ? sn : n) : 0;
	out->mod_revision = n->mod_revision;
	out->received_ms = n->received_ms;
	if(sn)
	{
		out->mod_revision = sn->mod_revision > n->mod_revision ? sn->mod_revision : n->mod_revision;
		out->received_ms = sn->received_ms > n->received_ms ? sn->received_ms : n->received_ms;
	}
	out->pos = pos;
	out->base = n->passive ? -1 : view->offset + sum;
	out->self = (long) pos == view->self;
}

int
cluster__view_at(const cluster__view *view, size_t pos, cluster__view_entry *out)
{
	int sum;
	const cluster__node *n = cluster__table_at(&view->members, pos, &sum);
	const cluster__node *s;

	if(!n)
	{
		return -1;
	}
	s = cluster__table_find(&view->statuses, n->id);
	entry(view, n, s, pos, sum, out);
	return 0;
}

void
cluster__view_iter_init(cluster__view_iter *it, const cluster__view *view)
{
	it->view = view;
	cluster__table_iter_init(&it->members, &view->members);
	cluster__table_iter_init(&it->statuses, &view->statuses);
	it->status_next = cluster__table_iter_next(&it->statuses);
	it->pos = 0;
	it->sum = 0;
}

/* Both tables are in id order: the status cursor only moves forward,
 * skipping statuses of ids that are not members. */
int
cluster__view_next(cluster__view_iter *it, cluster__view_entry *out)
{
	const cluster__node *n = cluster__table_iter_next(&it->members);
	int c = 1;

	if(!n)
	{
		return 0;
	}
	while(it->status_next && (c = strcmp(it->status_next->id, n->id)) < 0)
	{
		it->status_next = cluster__table_iter_next(&it->statuses);
	}
	entry(it->view, n, it->status_next && !c ? it->status_next : NULL, it->pos, it->sum, out);
	it->pos++;
	it->sum += n->passive ? 0 : n->workers;
	return 1;
}

int
cluster__name_check(const char *s, size_t len, size_t *bad)
{
	size_t i;

	if(!len || len > CLUSTER_NAME_MAX)
	{
		return CLUSTER__NAME_LENGTH;
	}
	if((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
	{
		return CLUSTER__NAME_DOTS;
	}
	for(i = 0; i < len; i++)
	{
		unsigned char ch = (unsigned char) s[i];

		if(!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			   ch == '.' || ch == '_' || ch == '-'))
		{
			if(bad)
			{
				*bad = i;
			}
			return CLUSTER__NAME_BYTE;
		}
	}
	return CLUSTER__NAME_OK;
}
