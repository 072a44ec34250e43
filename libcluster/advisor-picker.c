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
	uint64_t delta = (uint64_t) v - (uint64_t) cur[i];

	if(delta)
	{
		fen_add(tree, n, i, delta);
		*total += delta;
		cur[i] = v;
	}
}

/* ------------------------------------------------------------------ */
/* the rules of cluster__adv_pick(), one target at a time               */
/* ------------------------------------------------------------------ */

/* Stale at the picker's time: the record is older than stale_ms. */
static int
is_stale(const cluster__adv_picker *pk, size_t i)
{
	const cluster__adv_node *m = &pk->nodes[i];

	return pk->cfg.stale_ms > 0 && m->received_ms && pk->now_ms - m->received_ms > pk->cfg.stale_ms;
}

/* pick_candidates(), for one target. */
static int
eligible(const cluster__adv_picker *pk, size_t i)
{
	const cluster__adv_node *m = &pk->nodes[i];

	if(pk->plan.role[i] != CLUSTER__ADV_MEMBER || is_stale(pk, i))
	{
		return 0;
	}
	return !(m->capacity > 0 && m->load + pk->prov[i] >= m->capacity);
}

/* Bring one target's eligibility and tier weights (own_row_weights(),
 * deficit_weights(); only positive weights count) up to date. */
static void
refresh(cluster__adv_picker *pk, size_t i)
{
	int c = eligible(pk, i);
	long long a = c ? pk->own[i] - pk->prov[i] : 0;
	long long b = c ? pk->plan.share[i] - pk->nodes[i].load - pk->prov[i] : 0;

	fen_set(pk->f1, pk->n, pk->w1, i, a > 0 ? a : 0, &pk->t1);
	fen_set(pk->f2, pk->n, pk->w2, i, b > 0 ? b : 0, &pk->t2);
	if(c != pk->cand[i])
	{
		fen_add(pk->fc, pk->n, i, c ? 1 : (uint64_t) -1);
		pk->nc += c ? 1 : (uint64_t) -1;
		pk->cand[i] = (signed char) c;
	}
}

/* The list of live provisional entries, oldest pick first. A pick makes
 * its entry the newest and expiry is now + a constant, so the list is
 * also in expiry order. */
static void
lru_unlink(cluster__adv_picker *pk, size_t i)
{
	if(pk->older[i] != NONE)
	{
		pk->newer[pk->older[i]] = pk->newer[i];
	}
	else
	{
		pk->oldest = pk->newer[i];
	}
	if(pk->newer[i] != NONE)
	{
		pk->older[pk->newer[i]] = pk->older[i];
	}
	else
	{
		pk->newest = pk->older[i];
	}
	pk->older[i] = pk->newer[i] = NONE;
}

static void
lru_append(cluster__adv_picker *pk, size_t i)
{
	pk->older[i] = pk->newest;
	pk->newer[i] = NONE;
	if(pk->newest != NONE)
	{
		pk->newer[pk->newest] = i;
	}
	else
	{
		pk->oldest = i;
	}
	pk->newest = i;
}

/* Time passes: members whose record got too old leave the candidates,
 * provisional entries that expired stop counting (their table entries
 * keep count 0, and the next build drops them as prov_refresh() would). */
static void
advance(cluster__adv_picker *pk, cluster__adv_prov *prov, int64_t now_ms)
{
	if(now_ms > pk->now_ms)
	{
		pk->now_ms = now_ms;
	}
	while(pk->next_stale < pk->nstale && is_stale(pk, pk->stale[pk->next_stale]))
	{
		refresh(pk, pk->stale[pk->next_stale++]);
	}
	while(pk->oldest != NONE && pk->expires[pk->oldest] <= pk->now_ms)
	{
		size_t i = pk->oldest;

		lru_unlink(pk, i);
		pk->prov[i] = 0;
		prov->entries[pk->entry[i]].count = 0;
		refresh(pk, i);
	}
}

/* prov_record(), with the entry found through its target's position. */
static int
record(cluster__adv_picker *pk, cluster__adv_prov *prov, size_t i)
{
	cluster__adv_prov_entry *e;

	if(pk->entry[i] == NONE)
	{
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
		pk->entry[i] = prov->count++;
	}
	else if(pk->prov[i] > 0)
	{
		lru_unlink(pk, i);
	}
	e = &prov->entries[pk->entry[i]];
	e->count++;
	e->expires_ms = pk->now_ms + cluster__adv_prov_timeout(&pk->cfg);
	pk->prov[i] = e->count;
	pk->expires[i] = e->expires_ms;
	lru_append(pk, i);
	refresh(pk, i);
	return 0;
}

/* ------------------------------------------------------------------ */
/* build                                                                */
/* ------------------------------------------------------------------ */

typedef struct keyed keyed;
struct keyed
{
	int64_t key;
	size_t pos;
};

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
 * chain the targets with a positive count in expiry order (a target is
 * on that list exactly while its count is positive). Returns 0 or ENOMEM. */
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
		pk->prov[at] += e->count;
		pk->entry[at] = j;
		pk->expires[at] = e->expires_ms;
		j++;
	}
	prov->count = j;
	for(i = 0; i < pk->n; i++)
	{
		if(pk->prov[i] > 0)
		{
			order[k].key = pk->expires[i];
			order[k++].pos = i;
		}
	}
	qsort(order, k, sizeof(*order), cmp_keyed);
	for(i = 0; i < k; i++)
	{
		lru_append(pk, order[i].pos);
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
		if(pk->plan.role[i] == CLUSTER__ADV_MEMBER && pk->nodes[i].received_ms && !is_stale(pk, i))
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

/* Fill a Fenwick tree from its values in O(n). */
static void
fen_build(uint64_t *tree, size_t n, const long long *v, uint64_t *total)
{
	size_t i, j;

	*total = 0;
	for(i = 1; i <= n; i++)
	{
		tree[i] += (uint64_t) v[i - 1];
		*total += (uint64_t) v[i - 1];
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
	long long *ones;

	memset(pk, 0, sizeof(*pk));
	pk->nodes = nodes;
	pk->n = n;
	pk->self = self;
	pk->cfg = *cfg;
	pk->now_ms = now_ms;
	pk->oldest = pk->newest = NONE;
	pk->own = calloc(m, sizeof(*pk->own));
	pk->prov = calloc(m, sizeof(*pk->prov));
	pk->entry = malloc(m * sizeof(*pk->entry));
	pk->expires = calloc(m, sizeof(*pk->expires));
	pk->older = malloc(m * sizeof(*pk->older));
	pk->newer = malloc(m * sizeof(*pk->newer));
	pk->cand = calloc(m, sizeof(*pk->cand));
	pk->w1 = calloc(m, sizeof(*pk->w1));
	pk->w2 = calloc(m, sizeof(*pk->w2));
	pk->f1 = calloc(m + 1, sizeof(*pk->f1));
	pk->f2 = calloc(m + 1, sizeof(*pk->f2));
	pk->fc = calloc(m + 1, sizeof(*pk->fc));
	ones = calloc(m, sizeof(*ones));
	if(!pk->own || !pk->prov || !pk->entry || !pk->expires || !pk->older || !pk->newer || !pk->cand || !pk->w1 || !pk->w2 || !pk->f1 || !pk->f2 || !pk->fc || !ones)
	{
		goto fail;
	}
	for(i = 0; i < m; i++)
	{
		pk->entry[i] = pk->older[i] = pk->newer[i] = NONE;
	}
	/* the same plan every member computes from this snapshot */
	if(cluster__adv_plan_compute(&pk->plan, nodes, n, cfg))
	{
		goto fail;
	}
	for(i = 0; i < pk->plan.nrows; i++)
	{
		if(pk->plan.rows[i].from == self)
		{
			pk->own[pk->plan.rows[i].to] += pk->plan.rows[i].count;
		}
	}
	if(build_prov(pk, prov) || build_stale(pk))
	{
		goto fail;
	}
	for(i = 0; i < n; i++)
	{
		long long a, b;

		pk->cand[i] = (signed char) eligible(pk, i);
		if(!pk->cand[i])
		{
			continue;
		}
		a = pk->own[i] - pk->prov[i];
		b = pk->plan.share[i] - nodes[i].load - pk->prov[i];
		pk->w1[i] = a > 0 ? a : 0;
		pk->w2[i] = b > 0 ? b : 0;
		ones[i] = 1;
	}
	fen_build(pk->f1, n, pk->w1, &pk->t1);
	fen_build(pk->f2, n, pk->w2, &pk->t2);
	fen_build(pk->fc, n, ones, &pk->nc);
	for(pk->top = n ? 1 : 0; pk->top && pk->top <= n / 2; pk->top *= 2)
	{
	}
	pk->built = 1;
	free(ones);
	return 0;
fail:
	free(ones);
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
		if(cluster__adv_u128_cmp(cluster__adv_u128_mul((uint64_t) (pk->nodes[j].load + pk->prov[j] + 1), (uint64_t) pk->plan.weight[pick]),
			   cluster__adv_u128_mul((uint64_t) (pk->nodes[pick].load + pk->prov[pick] + 1), (uint64_t) pk->plan.weight[j])) < 0)
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
	advance(pk, prov, now_ms);
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
	free(pk->own);
	free(pk->prov);
	free(pk->entry);
	free(pk->expires);
	free(pk->older);
	free(pk->newer);
	free(pk->cand);
	free(pk->w1);
	free(pk->w2);
	free(pk->f1);
	free(pk->f2);
	free(pk->fc);
	free(pk->stale);
	memset(pk, 0, sizeof(*pk));
}
