/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The herd-safe pick, built once per snapshot (see advisor-picker.h).
 * Pure. Every rule here restates one of cluster__adv_pick() (advisor.c),
 * event by event instead of from scratch; test_advisor.c runs both side
 * by side and requires the same picks.
 */
#ifdef HAVE_CONFIG_H
# include "config.h"
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "advisor-picker.h"

#define NONE ((size_t) -1)

/* ------------------------------------------------------------------ */
/* sum trees: prefix sums over positions, eight children per node      */
/* ------------------------------------------------------------------ */

#define FAN 8

/* The levels for n leaves, zeroed. Returns 0 or ENOMEM. */
static int
st_init(cluster__adv_sumtree *t, size_t n)
{
	size_t len = n ? n : 1, size = 0;

	memset(t, 0, sizeof(*t));
	for(;;)
	{
		t->off[t->levels++] = size;
		size += (len + FAN - 1) / FAN * FAN;
		if(len <= FAN || t->levels == CLUSTER__ADV_SUMTREE_LEVELS)
		{
			break;
		}
		len = (len + FAN - 1) / FAN;
	}
	t->v = calloc(size, sizeof(*t->v));
	return t->v ? 0 : ENOMEM;
}

/* Once the leaves are set: every inner sum and the total, in O(n). */
static void
st_build(cluster__adv_sumtree *t)
{
	int l;
	size_t j, c;

	for(l = 1; l < t->levels; l++)
	{
		size_t len = (t->off[l] - t->off[l - 1]) / FAN; /* one sum per group below */

		for(j = 0; j < len; j++)
		{
			uint64_t sum = 0;

			for(c = 0; c < FAN; c++)
			{
				sum += t->v[t->off[l - 1] + j * FAN + c];
			}
			t->v[t->off[l] + j] = sum;
		}
	}
	t->total = 0;
	for(c = 0; c < FAN; c++)
	{
		t->total += t->v[t->off[t->levels - 1] + c];
	}
}

/* Add delta (modulo 2^64: a decrease is a wrapped negative) at leaf i. */
static void
st_add(cluster__adv_sumtree *t, size_t i, uint64_t delta)
{
	int l;

	for(l = 0; l < t->levels; l++, i /= FAN)
	{
		t->v[t->off[l] + i] += delta;
	}
	t->total += delta;
}

/* The first position whose prefix sum exceeds x (x < total). The linear
 * scan of cluster__adv_pick() picks the same one: it subtracts the
 * weights in position order until x falls inside one. */
static size_t
st_find(const cluster__adv_sumtree *t, uint64_t x)
{
	size_t idx = 0;
	int l;

	for(l = t->levels - 1; l >= 0; l--)
	{
		const uint64_t *g = t->v + t->off[l] + idx * FAN;
		size_t c;

		/* x is below this group's sum, so the last child takes the rest */
		for(c = 0; c < FAN - 1 && x >= g[c]; c++)
		{
			x -= g[c];
		}
		idx = idx * FAN + c;
	}
	return idx;
}

/* Set leaf i to v (the leaf itself holds its current value). */
static void
st_set(cluster__adv_sumtree *t, size_t i, long long v)
{
	uint64_t delta = (uint64_t) v - t->v[t->off[0] + i];

	if(delta)
	{
		st_add(t, i, delta);
	}
}

static void
st_free(cluster__adv_sumtree *t)
{
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* ------------------------------------------------------------------ */
/* the rules of cluster__adv_pick(), one target at a time               */
/* ------------------------------------------------------------------ */

/* Stale at the picker's time: the record is older than stale_ms. */
static int
is_stale(const cluster__adv_picker *pk, size_t i)
{
	int64_t received = pk->nodes[i].received_ms;

	return pk->cfg.stale_ms > 0 && received && pk->now_ms - received > pk->cfg.stale_ms;
}

/* pick_candidates(), for one target. */
static int
eligible(const cluster__adv_picker *pk, size_t i)
{
	const cluster__adv_node *nd = &pk->nodes[i];
	const cluster__adv_pick_slot *t = &pk->slot[i];

	if(!t->member || is_stale(pk, i))
	{
		return 0;
	}
	return !(nd->capacity > 0 && nd->load + t->prov >= nd->capacity);
}

/* The tier 2 weight of a candidate: its room below the share, as the
 * slow start lets it fill with what the pickers send meanwhile. */
static long long
tier2(const cluster__adv_picker *pk, size_t i)
{
	const cluster__adv_pick_slot *t = &pk->slot[i];
	long long load = pk->nodes[i].load;

	return cluster__adv_ramp_room(t->room + load, load + cluster__adv_prov_seen(t->prov, pk->pickers), t->ramp);
}

/* Bring one target's eligibility and tier weights (own_row_weights(),
 * deficit_weights() with the slow start; only positive weights count)
 * up to date. */
static void
refresh(cluster__adv_picker *pk, size_t i)
{
	cluster__adv_pick_slot *t = &pk->slot[i];
	int c = eligible(pk, i);
	long long a = c ? t->own - t->prov : 0;
	long long b = c ? tier2(pk, i) : 0;

	st_set(&pk->w1, i, a > 0 ? a : 0);
	st_set(&pk->w2, i, b);
	if(c != t->cand)
	{
		st_add(&pk->cands, i, c ? 1 : (uint64_t) -1);
		t->cand = (signed char) c;
	}
}

/* One provisional expiry to apply: at key, for the target at pos. */
typedef struct cluster__adv_pick_due keyed;
struct cluster__adv_pick_due
{
	int64_t key;
	size_t pos;
};

/* Make room to queue one more expiry. A pick sets its target's expiry
 * to now + a constant, so the queue is in expiry order; an item is
 * outdated once its target was picked again (its expiry moved on) and is
 * then skipped. A full queue is compacted to its current items first (at
 * most one per target), and doubled only when that leaves it more than
 * half full: so the cost stays O(1) per pick, amortised, in sequential
 * memory (a linked list by target would touch two more targets' cache
 * lines per pick), and an instance that picks seldom holds a few dozen
 * bytes here instead of 32 per member. Returns 0 or ENOMEM (the queue is
 * then full, and unchanged but for the compaction). */
static int
due_room(cluster__adv_picker *pk)
{
	size_t k, j = 0;

	if(pk->due_len < pk->due_size)
	{
		return 0;
	}
	for(k = pk->due_head; k < pk->due_len; k++)
	{
		const cluster__adv_pick_slot *t = &pk->slot[pk->due[k].pos];

		if(t->prov > 0 && t->expires == pk->due[k].key)
		{
			pk->due[j++] = pk->due[k];
		}
	}
	pk->due_head = 0;
	pk->due_len = j;
	if(2 * j > pk->due_size || !pk->due_size)
	{
		size_t size = pk->due_size ? 2 * pk->due_size : 16;
		keyed *d = realloc(pk->due, size * sizeof(*d));

		if(!d)
		{
			return j < pk->due_size ? 0 : ENOMEM;
		}
		pk->due = d;
		pk->due_size = size;
	}
	return 0;
}

/* Time passes: members whose record got too old leave the candidates,
 * provisional entries that expired stop counting (their table entries
 * get count 0 when synced, and the next build drops them as
 * prov_refresh() would). */
static void
advance(cluster__adv_picker *pk, int64_t now_ms)
{
	if(now_ms > pk->now_ms)
	{
		pk->now_ms = now_ms;
	}
	while(pk->next_stale < pk->nstale && is_stale(pk, pk->stale[pk->next_stale]))
	{
		refresh(pk, pk->stale[pk->next_stale++]);
	}
	while(pk->due_head < pk->due_len && pk->due[pk->due_head].key <= pk->now_ms)
	{
		size_t i = pk->due[pk->due_head].pos;
		cluster__adv_pick_slot *t = &pk->slot[i];

		if(t->prov > 0 && t->expires == pk->due[pk->due_head].key)
		{
			t->prov = 0;
			refresh(pk, i);
		}
		pk->due_head++;
	}
}

/* prov_record(), with the entry found through its target's position;
 * the count and expiry stay in the slot until synced. */
static int
record(cluster__adv_picker *pk, cluster__adv_prov *prov, size_t i)
{
	cluster__adv_pick_slot *t = &pk->slot[i];
	int64_t expires = pk->now_ms + cluster__adv_prov_timeout(&pk->cfg, pk->n);
	int push = !(t->prov > 0 && t->expires == expires); /* not twice for one expiry */

	if(push && due_room(pk))
	{
		return ENOMEM;
	}
	if(t->entry == NONE)
	{
		if(!cluster__adv_prov_append(prov, &pk->nodes[i]))
		{
			return ENOMEM;
		}
		t->entry = prov->count - 1;
	}
	if(push)
	{
		t->expires = expires;
		pk->due[pk->due_len].key = expires;
		pk->due[pk->due_len++].pos = i;
	}
	t->prov++;
	refresh(pk, i);
	return 0;
}

void
cluster__adv_picker_sync(const cluster__adv_picker *pk, cluster__adv_prov *prov)
{
	size_t i;

	for(i = 0; i < pk->n; i++)
	{
		const cluster__adv_pick_slot *t = &pk->slot[i];

		if(t->entry != NONE)
		{
			prov->entries[t->entry].count = t->prov;
			prov->entries[t->entry].expires_ms = t->expires;
		}
	}
}

/* ------------------------------------------------------------------ */
/* build                                                                */
/* ------------------------------------------------------------------ */

static int
cmp_keyed(const void *a, const void *b)
{
	const keyed *x = a, *y = b;

	if(x->key != y->key)
	{
		return x->key < y->key ? -1 : 1;
	}
	return x->pos < y->pos ? -1 : (x->pos > y->pos);
}

/* prov_refresh(): drop the entries whose target changed record, vanished
 * or expired; count the rest per target, remember where each is, and
 * queue the expiries of those with a positive count, earliest first.
 * Returns 0 or ENOMEM. */
static int
build_prov(cluster__adv_picker *pk, cluster__adv_prov *prov)
{
	keyed *order;
	size_t i, j, k = 0, size = prov->count ? prov->count : 1;

	order = calloc(size, sizeof(*order));
	if(!order)
	{
		return ENOMEM;
	}
	for(i = 0, j = 0; i < prov->count; i++)
	{
		cluster__adv_prov_entry *e = &prov->entries[i];
		long at = cluster__adv_find_node(pk->nodes, pk->n, e->id);

		if(at < 0 || pk->now_ms >= e->expires_ms || cluster__adv_prov_stale(e, &pk->nodes[at], &pk->cfg, pk->n))
		{
			continue;
		}
		if(i != j)
		{
			prov->entries[j] = *e;
		}
		pk->slot[at].prov += e->count;
		pk->slot[at].entry = j;
		pk->slot[at].expires = e->expires_ms;
		j++;
	}
	prov->count = j;
	for(i = 0; i < pk->n; i++)
	{
		if(pk->slot[i].prov > 0)
		{
			order[k].key = pk->slot[i].expires;
			order[k++].pos = i;
		}
	}
	qsort(order, k, sizeof(*order), cmp_keyed);
	/* the sorted expiries become the queue (due_room() grows it) */
	pk->due = order;
	pk->due_len = k;
	pk->due_size = size;
	return 0;
}

/* The candidates that may still go stale, by deadline (received_ms
 * orders them: the deadline is received_ms + stale_ms). Returns 0 or
 * ENOMEM. */
static int
build_stale(cluster__adv_picker *pk)
{
	keyed *order;
	size_t i, k = 0;

	if(pk->cfg.stale_ms <= 0)
	{
		return 0;
	}
	order = calloc(pk->n ? pk->n : 1, sizeof(*order));
	pk->stale = calloc(pk->n ? pk->n : 1, sizeof(*pk->stale));
	if(!order || !pk->stale)
	{
		free(order);
		return ENOMEM;
	}
	for(i = 0; i < pk->n; i++)
	{
		if(pk->slot[i].member && pk->nodes[i].received_ms && !is_stale(pk, i))
		{
			order[k].key = pk->nodes[i].received_ms;
			order[k++].pos = i;
		}
	}
	qsort(order, k, sizeof(*order), cmp_keyed);
	for(i = 0; i < k; i++)
	{
		pk->stale[i] = order[i].pos;
	}
	pk->nstale = k;
	free(order);
	return 0;
}

int
cluster__adv_picker_build(cluster__adv_picker *pk, const cluster__adv_node *nodes, size_t n, size_t self, const CLUSTERADVISORCONFIG *cfg,
	cluster__adv_prov *prov, int64_t now_ms)
{
	size_t m = n ? n : 1, i;
	cluster__adv_plan plan;

	memset(pk, 0, sizeof(*pk));
	pk->nodes = nodes;
	pk->n = n;
	pk->pickers = cluster__adv_pickers(cfg, nodes, n);
	pk->self = self;
	pk->cfg = *cfg;
	pk->now_ms = now_ms;
	pk->slot = calloc(m, sizeof(*pk->slot));
	if(!pk->slot || st_init(&pk->w1, n) || st_init(&pk->w2, n) || st_init(&pk->cands, n))
	{
		goto fail;
	}
	/* the same plan every member computes from this snapshot; a pick
	 * reads only what the slots take of it, so it goes after the build */
	if(cluster__adv_plan_compute(&plan, nodes, n, cfg))
	{
		goto fail;
	}
	for(i = 0; i < n; i++)
	{
		cluster__adv_pick_slot *t = &pk->slot[i];

		t->room = plan.share[i] - nodes[i].load;
		t->weight = plan.weight[i];
		t->member = plan.role[i] == CLUSTER__ADV_MEMBER;
		t->ramp = (signed char) cluster__adv_ramp(cfg, nodes[i].since_join_ms);
		t->entry = NONE;
	}
	for(i = 0; i < plan.nrows; i++)
	{
		if(plan.rows[i].from == self)
		{
			pk->slot[plan.rows[i].to].own += plan.rows[i].count;
		}
	}
	cluster__adv_plan_free(&plan);
	if(build_prov(pk, prov) || build_stale(pk))
	{
		goto fail;
	}
	for(i = 0; i < n; i++)
	{
		cluster__adv_pick_slot *t = &pk->slot[i];

		t->cand = (signed char) eligible(pk, i);
		if(t->cand)
		{
			pk->w1.v[i] = (uint64_t) (t->own - t->prov > 0 ? t->own - t->prov : 0);
			pk->w2.v[i] = (uint64_t) tier2(pk, i);
			pk->cands.v[i] = 1;
		}
	}
	st_build(&pk->w1);
	st_build(&pk->w2);
	st_build(&pk->cands);
	pk->built = 1;
	return 0;
fail:
	cluster__adv_picker_free(pk);
	return ENOMEM;
}

/* ------------------------------------------------------------------ */
/* pick                                                                 */
/* ------------------------------------------------------------------ */

/* Tier 3, pick_two_choices(): the candidates are counted in a tree, so the
 * x-th of them is found in the tree instead of a list. */
static size_t
two_choices(const cluster__adv_picker *pk, uint64_t *rng)
{
	size_t x = (size_t) cluster__adv_random_below(rng, pk->cands.total), y, pick, j;

	pick = st_find(&pk->cands, x);
	if(pk->cands.total > 1)
	{
		y = (size_t) cluster__adv_random_below(rng, pk->cands.total - 1);
		if(y >= x)
		{
			y++;
		}
		j = st_find(&pk->cands, y);
		if(cluster__adv_less_used(pk->nodes[j].load + cluster__adv_prov_seen(pk->slot[j].prov, pk->pickers), pk->slot[j].weight,
			   pk->nodes[pick].load + cluster__adv_prov_seen(pk->slot[pick].prov, pk->pickers), pk->slot[pick].weight))
		{
			pick = j;
		}
	}
	return pick;
}

/* The tiers of cluster__adv_pick(): own rows, then deficits, then two
 * choices; a tier without weight draws nothing. */
int
cluster__adv_picker_pick(cluster__adv_picker *pk, cluster__adv_prov *prov, int64_t now_ms, uint64_t *rng, size_t *chosen)
{
	size_t pick;
	int r;

	if(!pk->built)
	{
		return ENOMEM; /* a failed build */
	}
	advance(pk, now_ms);
	if(!pk->cands.total)
	{
		return ENOENT;
	}
	if(pk->w1.total)
	{
		pick = st_find(&pk->w1, cluster__adv_random_below(rng, pk->w1.total));
	}
	else if(pk->w2.total)
	{
		pick = st_find(&pk->w2, cluster__adv_random_below(rng, pk->w2.total));
	}
	else
	{
		pick = two_choices(pk, rng);
	}
	r = record(pk, prov, pick);
	if(!r)
	{
		*chosen = pick;
	}
	return r;
}

void
cluster__adv_picker_free(cluster__adv_picker *pk)
{
	free(pk->slot);
	free(pk->due);
	st_free(&pk->w1);
	st_free(&pk->w2);
	st_free(&pk->cands);
	free(pk->stale);
	memset(pk, 0, sizeof(*pk));
}
