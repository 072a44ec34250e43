/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Redirects in flight (advisor-inflight.h): what a source keeps in its
 * published load until the targets confirm, and how much of its plan it
 * may still send. Pure: no I/O, no locks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "advisor-inflight.h"

long long
cluster__adv_inflight_refresh(cluster__adv_inflight *f, const cluster__adv_node *nodes, size_t n, int64_t now_ms, int64_t settle_ms)
{
	size_t i, k = 0;

	for(i = 0; i < f->sent.count; i++)
	{
		cluster__adv_prov_entry *e = &f->sent.entries[i];
		long at = cluster__adv_find_node(nodes, n, e->id);
		int64_t since = now_ms - e->received_ms;

		if(since >= 4 * settle_ms)
		{
			continue; /* forgotten */
		}
		if(!e->expires_ms && (at < 0 || (since >= settle_ms && nodes[at].mod_revision != e->mod_revision)))
		{
			e->expires_ms = now_ms > 0 ? now_ms : 1; /* confirmed */
		}
		f->sent.entries[k++] = *e;
	}
	f->sent.count = k;
	return cluster__adv_inflight_total(f);
}

int64_t
cluster__adv_inflight_settle(const CLUSTERADVISORCONFIG *cfg, size_t n)
{
	return cluster__adv_round_interval(cfg, n) / 2;
}

/* One entry per target: a later send to the same target restarts its
 * wait (the earlier clients are confirmed with the later ones). */
int
cluster__adv_inflight_add(cluster__adv_inflight *f, const cluster__adv_node *target, long long count, long long load_before, int64_t now_ms)
{
	cluster__adv_prov_entry *e = NULL;
	size_t i;

	if(count <= 0)
	{
		return 0;
	}
	for(i = 0; i < f->sent.count && !e; i++)
	{
		e = !strcmp(f->sent.entries[i].id, target->id) ? &f->sent.entries[i] : NULL;
	}
	if(!cluster__adv_inflight_total(f))
	{
		f->base = load_before;
	}
	if(e && e->expires_ms)
	{
		e->count = 0; /* the confirmed ones are accounted for */
		e->expires_ms = 0;
	}
	if(!e)
	{
		e = cluster__adv_prov_append(&f->sent, target);
		if(!e)
		{
			return ENOMEM;
		}
	}
	e->count += count;
	e->mod_revision = target->mod_revision;
	e->received_ms = now_ms;
	return 0;
}

long long
cluster__adv_inflight_total(const cluster__adv_inflight *f)
{
	long long sum = 0;
	size_t i;

	for(i = 0; i < f->sent.count; i++)
	{
		sum += f->sent.entries[i].expires_ms ? 0 : f->sent.entries[i].count;
	}
	return sum;
}

long long
cluster__adv_published_load(long long load, long long capacity, long long u, long long base)
{
	long long p = load;

	if(u > 0 && base > load)
	{
		p = load + u < base ? load + u : base;
	}
	if(capacity > 0 && p > capacity)
	{
		p = capacity > load ? capacity : load;
	}
	return p;
}

long long
cluster__adv_inflight_published(const cluster__adv_inflight *f, long long load, long long capacity)
{
	return cluster__adv_published_load(load, capacity, cluster__adv_inflight_total(f), f->base);
}

long long
cluster__adv_inflight_allowance(const cluster__adv_inflight *f, const cluster__adv_plan *plan, size_t self, int64_t record_ms)
{
	long long shed, gone = 0;
	size_t i;

	if(self >= plan->n)
	{
		return 0;
	}
	shed = plan->shed[self];
	for(i = 0; i < f->sent.count; i++)
	{
		if(f->sent.entries[i].received_ms >= record_ms)
		{
			gone += f->sent.entries[i].count;
		}
	}
	return shed > gone ? shed - gone : 0;
}

void
cluster__adv_inflight_free(cluster__adv_inflight *f)
{
	cluster__adv_prov_free(&f->sent);
	memset(f, 0, sizeof(*f));
}
