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
/* Fenwick trees: prefix sums over positions 0..n-1, 1-based inside     */
/* ------------------------------------------------------------------ */

/* Add delta (modulo 2^64: a decrease is a wrapped negative) at position i. */
static void
fen_add(uint64_t *tree, size_t n, size_t i, uint64_t delta)
{
	for(i++; i <= n; i += i & (~i + 1))
	{
		tree[i] += delta;
	}
}

/* The first position whose prefix sum exceeds x (x < the total). The
 * linear scan of cluster__adv_pick() picks the same one: it subtracts the
 * weights in position order until x falls inside one. */
static size_t
fen_find(const uint64_t *tree, size_t n, size_t top, uint64_t x)
{
	size_t pos = 0, step;

	for(step = top; step; step >>= 1)
	{
		if(pos + step <= n && tree[pos + step] <= x)
		{
			pos += step;
			x -= tree[pos];
		}
	}
	return pos;
}

/* Set position i of a tree to v (its current value in *cur). */
static void
fen_set(uint64_t *tree, size_t n, long long *cur, size_t i, long long v, uint64_t *total)
{
	uint64_t delta = (uint64_t) v - (uint64_t) *cur;

	if(delta)
	{
		fen_add(tree, n, i, delta);
		*total += delta;
		*cur = v;
	}
}

/* ------------------------------------------------------------------ */
/* the rules of cluster__adv_pick(), one target at a time               */
/* ------------------------------------------------------------------ */

/* Stale at the picker's time: the record is older than stale_ms. */
static int
is_stale(const cluster__adv_picker *pk, const cluster__adv_pick_slot *t)
{
	return pk->cfg.stale_ms > 0 && t->received_ms && pk->now_ms - t->received_ms > pk->cfg.stale_ms;
}

/* pick_candidates(), for one target. */
static int
eligible(const cluster__adv_picker *pk, const cluster__adv_pick_slot *t)
{
	if(!t->member || is_stale(pk, t))
	{
		return 0;
	}
	return !(t->capacity > 0 && t->load + t->prov >= t->capacity);
}

/* Bring one target's eligibility and tier weights (own_row_weights(),
 * deficit_weights(); only positive weights count) up to date. */
static void
refresh(cluster__adv_picker *pk, size_t i)
{
	cluster__adv_pick_slot *t = &pk->slot[i];
	int c = eligible(pk, t);
	long long a = c ? t->own - t->prov : 0;
	long long b = c ? t->room - t->prov : 0;

	fen_set(pk->f1, pk->n, &t->w1, i, a > 0 ? a : 0, &pk->t1);
	fen_set(pk->f2, pk->n, &t->w2, i, b > 0 ? b : 0, &pk->t2);
	if(c != t->cand)
	{
		fen_add(pk->fc, pk->n, i, c ? 1 : (uint64_t) -1);
		pk->nc += c ? 1 : (uint64_t) -1;
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

/* Queue a target's expiry. A pick sets its target's expiry to now + a
 * constant, so the queue is in expiry order; an item is outdated once its
 * target was picked again (its expiry moved on) and is then skipped. A
 * full queue is compacted to its current items first: at most one per
 * target, so at least half the room comes back and the cost stays O(1)
 * per pick, amortised, in sequential memory (a linked list by target
 * would touch two more targets' cache lines per pick). */
static void
due_push(cluster__adv_picker *pk, size_t i)
{
	if(pk->due_len == pk->due_size)
	{
		size_t k, j = 0;

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
	}
	pk->due[pk->due_len].key = pk->slot[i].expires;
	pk->due[pk->due_len++].pos = i;
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
	while(pk->next_stale < pk->nstale && is_stale(pk, &pk->slot[pk->stale[pk->next_stale]]))
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
	int64_t expires = pk->now_ms + cluster__adv_prov_timeout(&pk->cfg);

	if(t->entry == NONE)
	{
		cluster__adv_prov_entry *e;

		if(prov->count == prov->size)
		{
			size_t ns = prov->size ? prov->size * 2 : 8;
			cluster__adv_prov_entry *ne = realloc(prov->entries, ns * sizeof(*ne));

			if(!ne)
			{
				return ENOMEM;
			}
			prov->entries = ne;
			prov->size = ns;
		}
		e = &prov->entries[prov->count];
		memset(e, 0, sizeof(*e));
		strncpy(e->id, pk->nodes[i].id, CLUSTER_NAME_MAX);
		e->mod_revision = pk->nodes[i].mod_revision;
		e->received_ms = pk->nodes[i].received_ms;
		t->entry = prov->count++;
	}
	if(!(t->prov > 0 && t->expires == expires))
	{
		t->expires = expires;
		due_push(pk, i); /* not twice for one expiry */
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

/* Position of id in the id-sorted nodes, or NONE. */
static size_t
find_pos(const cluster__adv_node *nodes, size_t n, const char *id)
{
	size_t lo = 0, hi = n;

	while(lo < hi)
	{
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(nodes[mid].id, id);

		if(!c)
		{
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
	return NONE;
}

/* prov_refresh(): drop the entries whose target changed record, vanished
 * or expired; count the rest per target, remember where each is, and
 * queue the expiries of those with a positive count, earliest first.
 * Returns 0 or ENOMEM. */
static int
build_prov(cluster__adv_picker *pk, cluster__adv_prov *prov)
{
	keyed *order;
	size_t i, j, k = 0;

	order = calloc(prov->count ? prov->count : 1, sizeof(*order));
	if(!order)
	{
		return ENOMEM;
	}
	for(i = 0, j = 0; i < prov->count; i++)
	{
		cluster__adv_prov_entry *e = &prov->entries[i];
		size_t at = find_pos(pk->nodes, pk->n, e->id);

		if(at == NONE || pk->nodes[at].mod_revision != e->mod_revision || pk->nodes[at].received_ms != e->received_ms || pk->now_ms >= e->expires_ms)
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
	for(i = 0; i < k; i++)
	{
		pk->due[pk->due_len++] = order[i];
	}
	free(order);
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
		if(pk->slot[i].member && pk->slot[i].received_ms && !is_stale(pk, &pk->slot[i]))
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

/* Fill a Fenwick tree in O(n), once tree[i + 1] holds the value of
 * position i. */
static void
fen_build(uint64_t *tree, size_t n, uint64_t *total)
{
	size_t i, j;

	*total = 0;
	for(i = 1; i <= n; i++)
	{
		*total += tree[i]; /* the values, before any is propagated */
	}
	for(i = 1; i <= n; i++)
	{
		j = i + (i & (~i + 1));
		if(j <= n)
		{
			tree[j] += tree[i];
		}
	}
}

int
cluster__adv_picker_build(cluster__adv_picker *pk, const cluster__adv_node *nodes, size_t n, size_t self, const CLUSTERADVISORCONFIG *cfg,
	cluster__adv_prov *prov, int64_t now_ms)
{
	size_t m = n ? n : 1, i;

	memset(pk, 0, sizeof(*pk));
	pk->nodes = nodes;
	pk->n = n;
	pk->self = self;
	pk->cfg = *cfg;
	pk->now_ms = now_ms;
	pk->slot = calloc(m, sizeof(*pk->slot));
	pk->due_size = 2 * m + 8;
	pk->due = calloc(pk->due_size, sizeof(*pk->due));
	pk->f1 = calloc(m + 1, sizeof(*pk->f1));
	pk->f2 = calloc(m + 1, sizeof(*pk->f2));
	pk->fc = calloc(m + 1, sizeof(*pk->fc));
	if(!pk->slot || !pk->due || !pk->f1 || !pk->f2 || !pk->fc)
	{
		goto fail;
	}
	/* the same plan every member computes from this snapshot */
	if(cluster__adv_plan_compute(&pk->plan, nodes, n, cfg))
	{
		goto fail;
	}
	for(i = 0; i < n; i++)
	{
		cluster__adv_pick_slot *t = &pk->slot[i];

		t->load = nodes[i].load;
		t->capacity = nodes[i].capacity;
		t->received_ms = nodes[i].received_ms;
		t->room = pk->plan.share[i] - nodes[i].load;
		t->member = pk->plan.role[i] == CLUSTER__ADV_MEMBER;
		t->entry = NONE;
	}
	for(i = 0; i < pk->plan.nrows; i++)
	{
		if(pk->plan.rows[i].from == self)
		{
			pk->slot[pk->plan.rows[i].to].own += pk->plan.rows[i].count;
		}
	}
	if(build_prov(pk, prov) || build_stale(pk))
	{
		goto fail;
	}
	for(i = 0; i < n; i++)
	{
		cluster__adv_pick_slot *t = &pk->slot[i];

		t->cand = (signed char) eligible(pk, t);
		if(t->cand)
		{
			t->w1 = t->own - t->prov > 0 ? t->own - t->prov : 0;
			t->w2 = t->room - t->prov > 0 ? t->room - t->prov : 0;
			pk->f1[i + 1] = (uint64_t) t->w1;
			pk->f2[i + 1] = (uint64_t) t->w2;
			pk->fc[i + 1] = 1;
		}
	}
	fen_build(pk->f1, n, &pk->t1);
	fen_build(pk->f2, n, &pk->t2);
	fen_build(pk->fc, n, &pk->nc);
	for(pk->top = n ? 1 : 0; pk->top && pk->top <= n / 2; pk->top *= 2)
	{
	}
	pk->built = 1;
	return 0;
fail:
	cluster__adv_picker_free(pk);
	return ENOMEM;
}

/* ------------------------------------------------------------------ */
/* pick                                                                 */
/* ------------------------------------------------------------------ */

/* Tier 3, pick_two_choices(): the candidates are counted in fc, so the
 * x-th of them is found in the tree instead of a list. */
static size_t
two_choices(const cluster__adv_picker *pk, uint64_t *rng)
{
	size_t x = (size_t) cluster__adv_random_below(rng, pk->nc), y, pick, j;

	pick = fen_find(pk->fc, pk->n, pk->top, x);
	if(pk->nc > 1)
	{
		y = (size_t) cluster__adv_random_below(rng, pk->nc - 1);
		if(y >= x)
		{
			y++;
		}
		j = fen_find(pk->fc, pk->n, pk->top, y);
		if(cluster__adv_u128_cmp(cluster__adv_u128_mul((uint64_t) (pk->slot[j].load + pk->slot[j].prov + 1), (uint64_t) pk->plan.weight[pick]),
			   cluster__adv_u128_mul((uint64_t) (pk->slot[pick].load + pk->slot[pick].prov + 1), (uint64_t) pk->plan.weight[j])) < 0)
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
	if(!pk->nc)
	{
		return ENOENT;
	}
	if(pk->t1)
	{
		pick = fen_find(pk->f1, pk->n, pk->top, cluster__adv_random_below(rng, pk->t1));
	}
	else if(pk->t2)
	{
		pick = fen_find(pk->f2, pk->n, pk->top, cluster__adv_random_below(rng, pk->t2));
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
	cluster__adv_plan_free(&pk->plan);
	free(pk->slot);
	free(pk->due);
	free(pk->f1);
	free(pk->f2);
	free(pk->fc);
	free(pk->stale);
	memset(pk, 0, sizeof(*pk));
}
