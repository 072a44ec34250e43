/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The member table both registry engines keep: sorted by id, updated one
 * record at a time, bounded by CLUSTER_MEMBERS_MAX. Pure: no I/O, no
 * locks, no globals.
 */
#include "member-table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>


/* Position of id, or where it would be inserted (*found says which). */
static size_t
table_pos(const cluster__table *t, const char *id, int *found)
{
	size_t lo = 0, hi = t->n;

	*found = 0;
	while(lo < hi)
	{
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->m[mid].id, id);

		if(!c)
		{
			*found = 1;
			return mid;
		}
		if(c < 0)
		{
			lo = mid + 1;
		}
		else
		{
			hi = mid;
		}
	}
	return lo;
}

int
cluster__member_same(const cluster__member *a, const cluster__member *b)
{
	return a->workers == b->workers && a->passive == b->passive && a->has_status == b->has_status &&
		   (!a->has_status || (a->load == b->load && a->capacity == b->capacity && !strcmp(a->address, b->address)));
}

int
cluster__table_put(cluster__table *t, const cluster__member *rec, int64_t now_ms, int *changed)
{
	int found, ch = 1;
	size_t pos = table_pos(t, rec->id, &found);
	int64_t received = now_ms;

	if(found)
	{
		if(cluster__member_same(&t->m[pos], rec))
		{
			ch = 0;
			received = t->m[pos].received_ms;
		}
		t->m[pos] = *rec;
		t->m[pos].received_ms = received;
	}
	else
	{
		if(t->n >= CLUSTER_MEMBERS_MAX)
		{
			return E2BIG;
		}
		if(t->n == t->cap)
		{
			size_t cap = t->cap ? t->cap * 2 : 16;
			cluster__member *p;

			if(cap > CLUSTER_MEMBERS_MAX)
			{
				cap = CLUSTER_MEMBERS_MAX;
			}

			if(cap > SIZE_MAX / sizeof(*p))
			{
				return ENOMEM;
			}
			p = realloc(t->m, cap * sizeof(*p));
			if(!p)
			{
				return ENOMEM;
			}
			t->m = p;
			t->cap = cap;
		}
		memmove(&t->m[pos + 1], &t->m[pos], (t->n - pos) * sizeof(*t->m));
		t->m[pos] = *rec;
		t->m[pos].received_ms = received;
		t->n++;
	}
	if(changed)
	{
		*changed = ch;
	}
	return 0;
}

int
cluster__table_del(cluster__table *t, const char *id)
{
	int found;
	size_t pos = table_pos(t, id, &found);

	if(!found)
	{
		return 0;
	}
	memmove(&t->m[pos], &t->m[pos + 1], (t->n - pos - 1) * sizeof(*t->m));
	t->n--;
	return 1;
}

cluster__member *
cluster__table_find(cluster__table *t, const char *id)
{
	int found;
	size_t pos = table_pos(t, id, &found);

	return found ? &t->m[pos] : NULL;
}

void
cluster__table_free(cluster__table *t)
{
	free(t->m);
	memset(t, 0, sizeof(*t));
}
