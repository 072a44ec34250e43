/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure view computation (see view.h). No I/O, no locks, no globals.
 */
#include "view.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static int
member_cmp(const void *a, const void *b)
{
	const cluster__member *ma = a, *mb = b;

	/* strcmp compares as unsigned char: byte order, as the original did */
	return strcmp(ma->id, mb->id);
}

/*
 * Copy, sort by id, reject what cannot be a consistent view (empty or
 * duplicate ids, worker counts out of range, a total that overflows int),
 * then assign each counted member its base as the prefix sum of the
 * workers before it. Every member computes the same result from the same
 * set, whatever order the registry returned it in.
 */
int
cluster__view_compute(cluster__view *out, const cluster__member *in, size_t n, const char *self_id, int64_t revision)
{
	cluster__member *m = NULL;
	long long sum = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	out->self = -1;
	out->base = -1;
	out->revision = revision;
	if(n && !in)
	{
		return EINVAL;
	}
	if(n > CLUSTER_MEMBERS_MAX)
	{
		return E2BIG;
	}
	if(n)
	{
		if(n > SIZE_MAX / sizeof(*m))
		{
			return ENOMEM;
		}
		m = malloc(n * sizeof(*m));
		if(!m)
		{
			return ENOMEM;
		}
		memcpy(m, in, n * sizeof(*m));
	}
	for(i = 0; i < n; i++)
	{
		/* ids come from fixed buffers: force termination before comparing */
		m[i].id[CLUSTER_NAME_MAX] = 0;
		m[i].address[CLUSTER_ADDRESS_MAX] = 0;
		if(!m[i].id[0] || m[i].workers < 1 || m[i].workers > CLUSTER_WORKERS_MAX)
		{
			free(m);
			return EINVAL;
		}
	}
	if(n > 1)
	{
		qsort(m, n, sizeof(*m), member_cmp);
	}
	for(i = 0; i < n; i++)
	{
		if(i && !strcmp(m[i - 1].id, m[i].id))
		{
			free(m);
			return EINVAL;
		}
		if(m[i].passive)
		{
			m[i].base = -1;
		}
		else
		{
			if(sum + m[i].workers > INT_MAX)
			{
				free(m);
				return EOVERFLOW;
			}
			m[i].base = (int) sum;
			sum += m[i].workers;
		}
		if(self_id && !strcmp(m[i].id, self_id))
		{
			out->self = (long) i;
			out->base = m[i].base;
		}
	}
	out->members = m;
	out->count = n;
	out->total = (int) sum;
	return 0;
}

int
cluster__view_copy(cluster__view *out, const cluster__view *in)
{
	*out = *in;
	out->members = NULL;
	if(!in->count)
	{
		out->count = 0;
		return 0;
	}
	out->members = malloc(in->count * sizeof(*out->members));
	if(!out->members)
	{
		out->count = 0;
		return ENOMEM;
	}
	memcpy(out->members, in->members, in->count * sizeof(*out->members));
	return 0;
}

void
cluster__view_free(cluster__view *view)
{
	free(view->members);
	memset(view, 0, sizeof(*view));
	view->self = -1;
	view->base = -1;
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

long
cluster__view_find(const cluster__view *view, const char *id)
{
	size_t lo = 0, hi = view->count;

	while(lo < hi)
	{
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(view->members[mid].id, id);

		if(!r)
		{
			return (long) mid;
		}
		if(r < 0)
		{
			lo = mid + 1;
		}
		else
		{
			hi = mid;
		}
	}
	return -1;
}

static int
status_differs(const cluster__member *a, const cluster__member *b)
{
	return a->has_status != b->has_status || a->load != b->load ||
		   a->capacity != b->capacity || strcmp(a->address, b->address);
}

/*
 * Merge-walk two sorted views. Membership changes (workers, passive) and
 * status-only changes are counted apart, because only the former may move
 * anyone's index.
 */
void
cluster__view_diff_compute(const cluster__view *before, const cluster__view *after, cluster__view_diff *diff)
{
	size_t i = 0, j = 0;

	memset(diff, 0, sizeof(*diff));
	while(i < before->count || j < after->count)
	{
		int r;

		if(i == before->count)
		{
			r = 1;
		}
		else if(j == after->count)
		{
			r = -1;
		}
		else
		{
			r = strcmp(before->members[i].id, after->members[j].id);
		}
		if(r < 0)
		{
			diff->removed++;
			i++;
		}
		else if(r > 0)
		{
			diff->added++;
			j++;
		}
		else
		{
			const cluster__member *a = &before->members[i], *b = &after->members[j];

			if(a->workers != b->workers || a->passive != b->passive)
			{
				diff->changed++;
			}
			else if(status_differs(a, b))
			{
				diff->status_changed++;
			}
			i++;
			j++;
		}
	}
	diff->base_changed = before->base != after->base;
	diff->total_changed = before->total != after->total;
}
