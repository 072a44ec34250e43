/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure connection-advisor arithmetic (see advisor.h). Every decision that
 * must agree across members is made in exact integer arithmetic with
 * deterministic tie-breaks (lower position in the id-sorted input wins), so
 * members that see the same snapshot compute the same plan.
 */
#ifdef HAVE_CONFIG_H
# include "config.h"
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"
#include "report-policy.h"

typedef cluster__adv_u128 u128;

/* ------------------------------------------------------------------ */
/* exact 128-bit arithmetic                                             */
/* ------------------------------------------------------------------ */

/*
 * Products of loads and weights need up to about 112 bits. They are done
 * on two 64-bit halves in plain C, one code path on every platform: a
 * compiler without __int128 must not round (long double did), or members
 * built differently could compute different plans.
 */

#define LO32(x) ((x) &0xffffffffULL)

static u128
u128_of(uint64_t x)
{
	u128 r;

	r.hi = 0;
	r.lo = x;
	return r;
}

cluster__adv_u128
cluster__adv_u128_add(cluster__adv_u128 a, uint64_t b)
{
	a.lo += b;
	a.hi += a.lo < b; /* carry */
	return a;
}

/* Schoolbook on 32-bit digits: four partial products, none overflows. */
cluster__adv_u128
cluster__adv_u128_mul(uint64_t a, uint64_t b)
{
	uint64_t p0 = LO32(a) * LO32(b), p1 = LO32(a) * (b >> 32);
	uint64_t p2 = (a >> 32) * LO32(b), p3 = (a >> 32) * (b >> 32);
	uint64_t mid = (p0 >> 32) + LO32(p1) + LO32(p2); /* < 3 x 2^32 */
	u128 r;

	r.lo = (mid << 32) | LO32(p0);
	r.hi = p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
	return r;
}

cluster__adv_u128
cluster__adv_u128_scale(cluster__adv_u128 a, uint64_t b)
{
	u128 r = cluster__adv_u128_mul(a.lo, b);

	r.hi += a.hi * b;
	return r;
}

int
cluster__adv_u128_cmp(cluster__adv_u128 a, cluster__adv_u128 b)
{
	if(a.hi != b.hi)
	{
		return a.hi < b.hi ? -1 : 1;
	}
	if(a.lo != b.lo)
	{
		return a.lo < b.lo ? -1 : 1;
	}
	return 0;
}

static u128
u128_sub(u128 a, u128 b)
{
	u128 r;

	r.lo = a.lo - b.lo;
	r.hi = a.hi - b.hi - (a.lo < b.lo); /* borrow */
	return r;
}

/* Leading zero bits of x (x != 0), without compiler builtins. */
static int
nlz64(uint64_t x)
{
	int n = 0;

	if(!(x >> 32))
	{
		n += 32;
		x <<= 32;
	}
	if(!(x >> 48))
	{
		n += 16;
		x <<= 16;
	}
	if(!(x >> 56))
	{
		n += 8;
		x <<= 8;
	}
	if(!(x >> 60))
	{
		n += 4;
		x <<= 4;
	}
	if(!(x >> 62))
	{
		n += 2;
		x <<= 2;
	}
	if(!(x >> 63))
	{
		n += 1;
	}
	return n;
}

/*
 * (u1 x 2^64 + u0) / v for u1 < v, so the quotient fits in 64 bits:
 * Knuth's algorithm D on 32-bit digits (Hacker's Delight, divlu). The
 * divisor is normalised so each estimated digit is at most two too big.
 */
static uint64_t
divlu(uint64_t u1, uint64_t u0, uint64_t v, uint64_t *rem)
{
	const uint64_t b = 1ULL << 32;
	uint64_t vn1, vn0, un32, un21, un10, un1, un0, q1, q0, rhat;
	int s = nlz64(v);

	v <<= s;
	vn1 = v >> 32;
	vn0 = LO32(v);
	un32 = s ? (u1 << s) | (u0 >> (64 - s)) : u1;
	un10 = u0 << s;
	un1 = un10 >> 32;
	un0 = LO32(un10);
	q1 = un32 / vn1;
	rhat = un32 - q1 * vn1;
	/* q1 * vn0 is only evaluated once q1 < b: no overflow */
	while(q1 >= b || q1 * vn0 > b * rhat + un1)
	{
		q1--;
		rhat += vn1;
		if(rhat >= b)
		{
			break;
		}
	}
	un21 = un32 * b + un1 - q1 * v; /* modulo 2^64: the true value fits */
	q0 = un21 / vn1;
	rhat = un21 - q0 * vn1;
	while(q0 >= b || q0 * vn0 > b * rhat + un0)
	{
		q0--;
		rhat += vn1;
		if(rhat >= b)
		{
			break;
		}
	}
	*rem = (un21 * b + un0 - q0 * v) >> s;
	return q1 * b + q0;
}

/*
 * A 64-bit divisor goes through divlu (twice when the quotient is wider
 * than 64 bits). A wider divisor leaves a quotient below 2^64: estimate it
 * from the divisor's top 64 bits, normalised, with the dividend halved so
 * divlu cannot overflow; the estimate is then exact or one too small
 * (Hacker's Delight, divDu, on 64-bit words).
 */
cluster__adv_u128
cluster__adv_u128_divmod(cluster__adv_u128 num, cluster__adv_u128 den, cluster__adv_u128 *rem)
{
	u128 q = u128_of(0), r = num;

	if(!den.hi && !den.lo)
	{
		/* undefined: documented as 0, remainder num */
	}
	else if(!den.hi)
	{
		uint64_t high = 0, lo;

		if(num.hi >= den.lo)
		{
			high = num.hi / den.lo;
			num.hi %= den.lo;
		}
		q.hi = high;
		q.lo = divlu(num.hi, num.lo, den.lo, &lo);
		r = u128_of(lo);
	}
	else
	{
		int n = nlz64(den.hi);
		uint64_t top = n ? (den.hi << n) | (den.lo >> (64 - n)) : den.hi;
		uint64_t ignored, est;

		est = divlu(num.hi >> 1, (num.lo >> 1) | (num.hi << 63), top, &ignored) >> (63 - n);
		if(est)
		{
			est--;
		}
		r = u128_sub(num, cluster__adv_u128_scale(den, est));
		if(cluster__adv_u128_cmp(r, den) >= 0)
		{
			est++;
			r = u128_sub(r, den);
		}
		q.lo = est;
	}
	if(rem)
	{
		*rem = r;
	}
	return q;
}

/* ------------------------------------------------------------------ */
/* small helpers                                                        */
/* ------------------------------------------------------------------ */

typedef int (*idx_cmp)(size_t a, size_t b, const void *ctx);

/* Stable bottom-up merge sort of an index array with a context, because
 * qsort() has no portable context argument and ties must stay in order. */
static void
sort_idx(size_t *idx, size_t *tmp, size_t n, idx_cmp cmp, const void *ctx)
{
	size_t width, i, l, m, r, a, b, k;
	size_t *src = idx, *dst = tmp, *t;

	for(width = 1; width < n; width *= 2)
	{
		for(i = 0; i < n; i += 2 * width)
		{
			l = i;
			m = i + width < n ? i + width : n;
			r = i + 2 * width < n ? i + 2 * width : n;
			a = l;
			b = m;
			for(k = l; k < r; k++)
			{
				if(a < m && (b >= r || cmp(src[a], src[b], ctx) <= 0))
				{
					dst[k] = src[a++];
				}
				else
				{
					dst[k] = src[b++];
				}
			}
		}
		t = src;
		src = dst;
		dst = t;
	}
	if(src != idx)
	{
		memcpy(idx, src, n * sizeof(*idx));
	}
}

typedef struct apportion_ctx apportion_ctx;
struct apportion_ctx
{
	const u128 *rem;
};

static int
cmp_remainder(size_t a, size_t b, const void *ctx)
{
	const apportion_ctx *c = ctx;

	int d = cluster__adv_u128_cmp(c->rem[a], c->rem[b]);

	if(d)
	{
		return -d;
	}
	return a < b ? -1 : (a > b);
}

/*
 * Split total into integer parts proportional to w[i] over the nodes with
 * mask[i] set and w[i] > 0 (largest remainder; ties to the lower index),
 * adding each part to out[i]. Exact, so every member gets the same split.
 * The parts sum to total when some weight is positive; a part never
 * exceeds its weight when total <= the sum of weights. Returns 0 or ENOMEM.
 */
static int
apportion(long long total, const long long *w, const signed char *mask, size_t n, long long *out)
{
	u128 W = u128_of(0), *rem;
	size_t *idx, *tmp, i, k = 0;
	long long given = 0;
	apportion_ctx ctx;

	if(total <= 0)
	{
		return 0;
	}
	for(i = 0; i < n; i++)
	{
		if(mask[i] && w[i] > 0)
		{
			W = cluster__adv_u128_add(W, (uint64_t) w[i]);
		}
	}
	if(!W.hi && !W.lo)
	{
		return 0;
	}
	rem = calloc(n ? n : 1, sizeof(*rem));
	idx = calloc(n ? n : 1, sizeof(*idx));
	tmp = calloc(n ? n : 1, sizeof(*tmp));
	if(!rem || !idx || !tmp)
	{
		free(rem);
		free(idx);
		free(tmp);
		return ENOMEM;
	}
	for(i = 0; i < n; i++)
	{
		if(mask[i] && w[i] > 0)
		{
			/* w[i] <= W, so q <= total */
			long long q = (long long) cluster__adv_u128_divmod(cluster__adv_u128_mul((uint64_t) total, (uint64_t) w[i]), W, &rem[i]).lo;

			out[i] += q;
			given += q;
			idx[k++] = i;
		}
	}
	ctx.rem = rem;
	sort_idx(idx, tmp, k, cmp_remainder, &ctx);
	for(i = 0; i < k && given < total; i++, given++)
	{
		out[idx[i]]++;
	}
	free(rem);
	free(idx);
	free(tmp);
	return 0;
}

/* A status the advisor can use: published, in range and self-consistent.
 * Anything else (garbage that slipped through) is treated as absent. */
static int
valid_status(const cluster__adv_node *m)
{
	if(!m->has_status || m->load < 0 || m->load > CLUSTER__ADV_VALUE_MAX)
	{
		return 0;
	}
	if(m->capacity == CLUSTER_CAPACITY_UNBOUNDED)
	{
		return 1;
	}
	return m->capacity >= 0 && m->capacity <= CLUSTER__ADV_VALUE_MAX && (m->capacity == 0 || m->capacity >= m->load);
}

/* ------------------------------------------------------------------ */
/* configuration                                                        */
/* ------------------------------------------------------------------ */

int
cluster__adv_config_check(const CLUSTERADVISORCONFIG *cfg, const char **field, const char **rule)
{
#define BAD(f, r) \
 do \
 { \
  *field = (f); \
  *rule = (r); \
  return EINVAL; \
 } \
 while(0)
	if(cfg->version < 1 || cfg->version > CLUSTER_ADVISOR_CONFIG_VERSION)
	{
		BAD("version", "must be set by cluster_advisor_config_init()");
	}
	if(cfg->report_interval_ms < 10 || cfg->report_interval_ms > 86400000)
	{
		BAD("report_interval_ms", "must be between 10 and 86400000");
	}
	if(cfg->advice_interval_ms < 10 || cfg->advice_interval_ms > 86400000)
	{
		BAD("advice_interval_ms", "must be between 10 and 86400000");
	}
	if(cfg->band_absolute < 0 || cfg->band_absolute > CLUSTER__ADV_VALUE_MAX)
	{
		BAD("band_absolute", "must be between 0 and 2^40");
	}
	if(!(cfg->band_relative >= 0.0 && cfg->band_relative <= 10.0))
	{
		BAD("band_relative", "must be a number between 0 and 10");
	}
	if(!(cfg->shed_fraction > 0.0 && cfg->shed_fraction <= 1.0))
	{
		BAD("shed_fraction", "must be a number greater than 0 and at most 1");
	}
	if(cfg->step_max < 0 || cfg->step_max > CLUSTER__ADV_VALUE_MAX)
	{
		BAD("step_max", "must be between 0 (no limit) and 2^40");
	}
	if(cfg->step_min < 0 || cfg->step_min > CLUSTER__ADV_VALUE_MAX)
	{
		BAD("step_min", "must be between 0 and 2^40");
	}
	if(cfg->step_max > 0 && cfg->step_min > cfg->step_max)
	{
		BAD("step_min", "must not exceed step_max");
	}
	if(!(cfg->budget_per_second >= 0.0 && cfg->budget_per_second <= 1e12))
	{
		BAD("budget_per_second", "must be a number between 0 (no limit) and 1e12");
	}
	if(!(cfg->jitter >= 0.0 && cfg->jitter <= 0.5))
	{
		BAD("jitter", "must be a number between 0 and 0.5");
	}
	if(cfg->stale_ms < 0)
	{
		BAD("stale_ms", "must be 0 (never stale) or more");
	}
	if(cfg->version >= 2)
	{
		if(!(cfg->status_writes_per_second >= 0.0 && cfg->status_writes_per_second <= 1e6))
		{
			BAD("status_writes_per_second", "must be a number between 0 (no limit) and 1e6");
		}
		if(!(cfg->report_deadband >= 0.0 && cfg->report_deadband <= 1.0))
		{
			BAD("report_deadband", "must be a number between 0 and 1");
		}
	}
	if(cfg->version >= 3)
	{
		if(cfg->hold_down_ms < 0 || cfg->hold_down_ms > 3600000)
		{
			BAD("hold_down_ms", "must be between 0 (off) and 3600000");
		}
		if(cfg->slow_start_ms < 0 || cfg->slow_start_ms > 3600000)
		{
			BAD("slow_start_ms", "must be between 0 (off) and 3600000");
		}
	}
	if(cfg->version >= 4 && (cfg->pickers < 0 || cfg->pickers > 1000000))
	{
		BAD("pickers", "must be between 0 (the members that publish a status) and 1000000");
	}
	return 0;
#undef BAD
}

/* ------------------------------------------------------------------ */
/* hold-down and slow start                                             */
/* ------------------------------------------------------------------ */

void
cluster__adv_ramp_windows(const CLUSTERADVISORCONFIG *cfg, int64_t *hold, int64_t *slow)
{
	*hold = 0;
	*slow = 0;
	if(cfg->version >= 3)
	{
		*hold = cfg->hold_down_ms > 0 ? cfg->hold_down_ms : 0;
		*slow = cfg->slow_start_ms > 0 ? cfg->slow_start_ms : 0;
	}
}

/* A member that just (re)joined may leave again at once (it flaps, or a
 * rolling deploy restarts it once more): it is left out for the
 * hold-down, then its pick weight grows in 16 integer steps, so that
 * whatever it is given has time to show it can hold it. */
int
cluster__adv_ramp(const CLUSTERADVISORCONFIG *cfg, int64_t since_join_ms)
{
	int64_t hold, slow, into;

	if(since_join_ms <= 0)
	{
		return CLUSTER__ADV_RAMP_FULL;
	}
	cluster__adv_ramp_windows(cfg, &hold, &slow);
	if(since_join_ms < hold)
	{
		return 0;
	}
	into = since_join_ms - hold;
	if(into >= slow)
	{
		return CLUSTER__ADV_RAMP_FULL;
	}
	/* into < slow <= 3600000: no overflow */
	return 1 + (int) ((CLUSTER__ADV_RAMP_FULL - 1) * into / slow);
}

/* The ramp is a step function of time: step k (k = 0 .. 15) ends where
 * 1 + 15 x into / slow first reaches k + 1, i.e. at into = ceil(k x slow
 * / 15) (the hold-down ends at into = 0). */
int64_t
cluster__adv_ramp_next(const CLUSTERADVISORCONFIG *cfg, int64_t since_join_ms)
{
	int64_t hold, slow, end;
	int k = cluster__adv_ramp(cfg, since_join_ms);

	if(k == CLUSTER__ADV_RAMP_FULL)
	{
		return -1;
	}
	cluster__adv_ramp_windows(cfg, &hold, &slow);
	end = hold + ((int64_t) k * slow + CLUSTER__ADV_RAMP_FULL - 2) / (CLUSTER__ADV_RAMP_FULL - 1);
	return end > since_join_ms ? end - since_join_ms : 1;
}

long long
cluster__adv_ramp_room(long long share, long long held, int ramp)
{
	long long level = share;

	if(ramp < CLUSTER__ADV_RAMP_FULL && share > 0)
	{
		/* floor(share x ramp / 16) without forming the product */
		ramp = ramp < 1 ? 1 : ramp;
		level = share / CLUSTER__ADV_RAMP_FULL * ramp + share % CLUSTER__ADV_RAMP_FULL * ramp / CLUSTER__ADV_RAMP_FULL;
	}
	return level > held ? level - held : 0;
}

int64_t
cluster__adv_round_interval(const CLUSTERADVISORCONFIG *cfg, size_t n)
{
	cluster__report_policy p;
	int64_t iv, twice;

	cluster__report_policy_of(&p, cfg);
	iv = cluster__report_interval_for(&p, n);
	/* stretched by the budget, on the ladder of the status slots' period:
	 * the round's length, and so where its boundaries fall on the clock,
	 * stays the same for every member while a member or two come and go
	 * (exactly 2 x n / budget, every join and leave moved them) */
	if(iv > cluster__report_interval_for(&p, 0))
	{
		iv = cluster__report_ladder(iv);
	}
	twice = 2 * iv;
	return twice > cfg->advice_interval_ms ? twice : cfg->advice_interval_ms;
}

long long
cluster__adv_round_budget(const CLUSTERADVISORCONFIG *cfg, size_t n)
{
	double b;

	if(cfg->budget_per_second <= 0.0)
	{
		return -1;
	}
	/* the nominal interval, not the jittered one: every member must agree */
	b = cfg->budget_per_second * (double) cluster__adv_round_interval(cfg, n) / 1000.0;
	if(b < 1.0)
	{
		return 1;
	}
	if(b > (double) CLUSTER__ADV_VALUE_MAX)
	{
		return CLUSTER__ADV_VALUE_MAX;
	}
	return (long long) b; /* truncation: b >= 1 */
}

/* ------------------------------------------------------------------ */
/* fair shares                                                          */
/* ------------------------------------------------------------------ */

/*
 * Who takes part, and the unit of the weights: roles (out, member,
 * draining), shares and weights cleared, and K, the capacity per worker of
 * the bounded members (1 when none are bounded), so that unbounded members
 * (weighing workers x K) and bounded ones (weighing their capacity) are in
 * the same unit. With cfg, a member in its hold-down (cluster__adv_ramp()
 * 0) is left out like one without a status, so that nothing is planned to
 * or from a member that may leave again at once; unless that would leave
 * nobody at all (every member just joined: a cluster starting up), when
 * the hold-down is ignored. Returns the total load of the members and
 * draining ones.
 */
static long long
fair_roles(const cluster__adv_node *nodes, size_t n, const CLUSTERADVISORCONFIG *cfg, signed char *role, long long *weight, long long *share, long long *k)
{
	long long total = 0, sumcap = 0, sumw = 0;
	size_t i;
	int held = 0, settled = 0;

	for(i = 0; i < n; i++)
	{
		const cluster__adv_node *m = &nodes[i];

		weight[i] = 0;
		share[i] = 0;
		role[i] = CLUSTER__ADV_OUT;
		if(m->passive || !valid_status(m))
		{
			continue;
		}
		role[i] = m->capacity == 0 ? CLUSTER__ADV_DRAINING : CLUSTER__ADV_MEMBER;
		if(cfg && !cluster__adv_ramp(cfg, m->since_join_ms))
		{
			held = 1;
		}
		else
		{
			settled = 1;
		}
	}
	for(i = 0; i < n; i++)
	{
		const cluster__adv_node *m = &nodes[i];

		if(role[i] == CLUSTER__ADV_OUT)
		{
			continue;
		}
		if(held && settled && !cluster__adv_ramp(cfg, m->since_join_ms))
		{
			role[i] = CLUSTER__ADV_OUT;
			continue;
		}
		total += m->load;
		if(role[i] == CLUSTER__ADV_MEMBER && m->capacity > 0)
		{
			sumcap += m->capacity;
			sumw += m->workers > 0 ? m->workers : 1;
		}
	}
	*k = 1;
	if(sumw > 0)
	{
		*k = sumcap / sumw;
		if(*k < 1)
		{
			*k = 1;
		}
	}
	return total;
}

/*
 * Water-filling: a member whose proportional share of rem would exceed its
 * capacity is pinned at its capacity (share set, active cleared) and the
 * rest is shared again, until nobody overflows. Each pass saturates
 * against that pass's level, which only rises after. Exact comparisons
 * (rem x weight > capacity x sum of weights), so every member pins the
 * same ones. Returns what is left for the unpinned active members.
 */
static long long
water_fill(const cluster__adv_node *nodes, size_t n, const long long *weight, signed char *active, signed char *over, long long *share, long long rem)
{
	size_t i;
	int any;

	do
	{
		u128 W = u128_of(0);

		any = 0;
		for(i = 0; i < n; i++)
		{
			if(active[i])
			{
				W = cluster__adv_u128_add(W, (uint64_t) weight[i]);
			}
		}
		if(!W.hi && !W.lo)
		{
			break;
		}
		/* rem stays positive: a pass pins less than rem */
		for(i = 0; i < n; i++)
		{
			if(active[i] && nodes[i].capacity > 0 && rem > 0 && cluster__adv_u128_cmp(cluster__adv_u128_mul((uint64_t) rem, (uint64_t) weight[i]), cluster__adv_u128_scale(W, (uint64_t) nodes[i].capacity)) > 0)
			{
				over[i] = 1;
				any = 1;
			}
		}
		for(i = 0; i < n; i++)
		{
			if(over[i] && active[i])
			{
				active[i] = 0;
				share[i] = nodes[i].capacity;
				rem -= nodes[i].capacity;
			}
		}
	}
	while(any);
	return rem;
}

/*
 * Capacity-weighted fair shares: roles and weights (fair_roles, with the
 * hold-down when there is a configuration), pinning at capacity
 * (water_fill), the rest apportioned by weight. Load that fits nowhere
 * stays with the members holding it (in proportion to how far they are
 * above their pinned share), so shares always sum to the total load.
 */
int
cluster__adv_shares(const cluster__adv_node *nodes, size_t n, signed char *role, long long *weight, long long *share, long long *unplaceable)
{
	return cluster__adv_shares_cfg(nodes, n, NULL, role, weight, share, unplaceable);
}

int
cluster__adv_shares_cfg(const cluster__adv_node *nodes, size_t n, const CLUSTERADVISORCONFIG *cfg, signed char *role, long long *weight, long long *share,
	long long *unplaceable)
{
	long long total, rem, k, left = 0;
	signed char *active = NULL, *over = NULL;
	long long *excess = NULL;
	size_t i;
	int any, r = 0;

	total = fair_roles(nodes, n, cfg, role, weight, share, &k);
	active = calloc(n ? n : 1, 1);
	over = calloc(n ? n : 1, 1);
	excess = calloc(n ? n : 1, sizeof(*excess));
	if(!active || !over || !excess)
	{
		r = ENOMEM;
		goto done;
	}
	for(i = 0; i < n; i++)
	{
		if(role[i] != CLUSTER__ADV_MEMBER)
		{
			continue;
		}
		if(nodes[i].capacity > 0)
		{
			weight[i] = nodes[i].capacity;
		}
		else
		{
			weight[i] = (long long) (nodes[i].workers > 0 ? nodes[i].workers : 1) * k;
		}
		active[i] = 1;
	}
	rem = water_fill(nodes, n, weight, active, over, share, total);
	any = 0;
	for(i = 0; i < n; i++)
	{
		any |= active[i];
	}
	if(any)
	{
		r = apportion(rem, weight, active, n, share);
		if(r)
		{
			goto done;
		}
	}
	else
	{
		left = rem;
	}
	if(left > 0)
	{
		/* over capacity: the rest stays where it is */
		for(i = 0; i < n; i++)
		{
			over[i] = role[i] != CLUSTER__ADV_OUT && nodes[i].load > share[i];
			excess[i] = over[i] ? nodes[i].load - share[i] : 0;
		}
		r = apportion(left, excess, over, n, share);
	}
done:
	if(unplaceable)
	{
		*unplaceable = left;
	}
	free(active);
	free(over);
	free(excess);
	return r;
}

/* ------------------------------------------------------------------ */
/* the global plan                                                      */
/* ------------------------------------------------------------------ */

typedef struct order_ctx order_ctx;
struct order_ctx
{
	const signed char *role;
	const long long *amount;
};

/* Sources: draining members first (evacuation has priority), then the
 * largest amount, then the lower id. */
static int
cmp_source(size_t a, size_t b, const void *ctx)
{
	const order_ctx *c = ctx;
	int da = c->role[a] == CLUSTER__ADV_DRAINING, db = c->role[b] == CLUSTER__ADV_DRAINING;

	if(da != db)
	{
		return da ? -1 : 1;
	}
	if(c->amount[a] != c->amount[b])
	{
		return c->amount[a] > c->amount[b] ? -1 : 1;
	}
	return a < b ? -1 : (a > b);
}

/* Targets: the largest wanted inflow, then the lower id. */
static int
cmp_target(size_t a, size_t b, const void *ctx)
{
	const order_ctx *c = ctx;

	if(c->amount[a] != c->amount[b])
	{
		return c->amount[a] > c->amount[b] ? -1 : 1;
	}
	return a < b ? -1 : (a > b);
}

void
cluster__adv_plan_free(cluster__adv_plan *plan)
{
	if(!plan)
	{
		return;
	}
	free(plan->role);
	free(plan->weight);
	free(plan->share);
	free(plan->band);
	free(plan->gap);
	free(plan->out_of_band);
	free(plan->shed);
	free(plan->inflow);
	free(plan->rows);
	memset(plan, 0, sizeof(*plan));
}

/* The hysteresis band around a share: max(band_absolute, band_relative x
 * share), so small members are not chased over a handful of connections. */
static long long
band_of(const CLUSTERADVISORCONFIG *cfg, long long share)
{
	long long rel = (long long) (cfg->band_relative * (double) share); /* >= 0: truncation is floor */

	return rel > cfg->band_absolute ? rel : cfg->band_absolute;
}

/*
 * How far inside its band edge the plan sends a member: the report
 * policy's deadband (report-policy.h), the most by which the others'
 * idea of a member's load may differ from its true load for long. A
 * member moved exactly to its edge would then be outside its band as
 * often as not, with nobody able to see it; one moved this far inside
 * stays inside whatever the deadband hides. 0 for a draining member.
 */
static long long
margin_of(double deadband, long long band)
{
	long long m = (long long) (deadband * (double) band); /* >= 0: truncation is floor */

	return m < band ? m : band;
}

/* Scratch of one plan computation, handed from step to step. */
typedef struct plan_work plan_work;
struct plan_work
{
	long long *want_shed; /* what each source should send (step 3) */
	long long *want_in;   /* what each target should receive (step 3) */
	long long *limit;     /* apportion limits (3), then capped sheds (4) */
	signed char *mask;    /* apportion mask (3) */
	size_t *src;          /* sources in priority order (4) */
	size_t *dst;          /* targets in priority order (5) */
	size_t *tmp;          /* sort scratch */
	size_t ns;
	size_t nt;
	long long so;   /* out-of-band members' load above their band edge less its margin */
	long long dout; /* out-of-band members' room below their band edge less its margin */
	long long *margin;
};

/* Every array a plan and its scratch need, zeroed, in one place, so the
 * steps below cannot fail for memory. Returns 0 or ENOMEM (the caller
 * frees whatever was allocated). */
static int
plan_alloc(cluster__adv_plan *plan, size_t n, plan_work *wk)
{
	size_t m = n ? n : 1;

	memset(plan, 0, sizeof(*plan));
	memset(wk, 0, sizeof(*wk));
	plan->n = n;
	plan->role = calloc(m, sizeof(*plan->role));
	plan->weight = calloc(m, sizeof(*plan->weight));
	plan->share = calloc(m, sizeof(*plan->share));
	plan->band = calloc(m, sizeof(*plan->band));
	plan->gap = calloc(m, sizeof(*plan->gap));
	plan->out_of_band = calloc(m, sizeof(*plan->out_of_band));
	plan->shed = calloc(m, sizeof(*plan->shed));
	plan->inflow = calloc(m, sizeof(*plan->inflow));
	wk->want_shed = calloc(m, sizeof(*wk->want_shed));
	wk->want_in = calloc(m, sizeof(*wk->want_in));
	wk->limit = calloc(m, sizeof(*wk->limit));
	wk->mask = calloc(m, sizeof(*wk->mask));
	wk->src = calloc(m, sizeof(*wk->src));
	wk->dst = calloc(m, sizeof(*wk->dst));
	wk->tmp = calloc(m, sizeof(*wk->tmp));
	wk->margin = calloc(m, sizeof(*wk->margin));
	if(!plan->role || !plan->weight || !plan->share || !plan->band || !plan->gap || !plan->out_of_band || !plan->shed || !plan->inflow || !wk->want_shed || !wk->want_in || !wk->limit || !wk->mask || !wk->src || !wk->dst || !wk->tmp || !wk->margin)
	{
		return ENOMEM;
	}
	return 0;
}

static void
plan_work_free(plan_work *wk)
{
	free(wk->want_shed);
	free(wk->want_in);
	free(wk->limit);
	free(wk->mask);
	free(wk->src);
	free(wk->dst);
	free(wk->tmp);
	free(wk->margin);
}

/*
 * Steps 1-2, gaps and bands: each member's gap = load - share and its
 * band; a draining member has no band (any load left is out of it); a
 * member in its slow start (cluster__adv_ramp) shows only ramp / 16 of
 * its deficit, so that the plan fills it over the window instead of at
 * once, and arrivals may fill it first. Sums
 * what the out-of-band members hold above their target, the band edge
 * less the margin (so), and lack below it (dout), and records the fewest
 * moves to the band edges as the minimum. Returns non-zero when somebody
 * is out of band, i.e. when anything is to move at all.
 */
static int
plan_bands(cluster__adv_plan *plan, const cluster__adv_node *nodes, const CLUSTERADVISORCONFIG *cfg, plan_work *wk)
{
	size_t i;
	int any = 0, established = 0;
	long long above = 0, below = 0;
	cluster__report_policy policy; /* its deadband sets the margins */

	cluster__report_policy_of(&policy, cfg);
	for(i = 0; i < plan->n && !established; i++)
	{
		established = plan->role[i] == CLUSTER__ADV_MEMBER && cluster__adv_ramp(cfg, nodes[i].since_join_ms) == CLUSTER__ADV_RAMP_FULL;
	}
	for(i = 0; i < plan->n; i++)
	{
		long long g;

		if(plan->role[i] == CLUSTER__ADV_OUT)
		{
			continue;
		}
		plan->total_load += nodes[i].load;
		g = nodes[i].load - plan->share[i];
		if(g < 0 && plan->role[i] == CLUSTER__ADV_MEMBER && established)
		{
			/* slow start: a member that joined lately is filled as far as
			 * its ramp says, like its weight in the pick (unless nobody is
			 * established: a cluster starting up fills everyone alike) */
			g = -cluster__adv_ramp_room(plan->share[i], nodes[i].load, cluster__adv_ramp(cfg, nodes[i].since_join_ms));
		}
		plan->gap[i] = g;
		if(plan->role[i] == CLUSTER__ADV_DRAINING)
		{
			plan->band[i] = 0;
			plan->out_of_band[i] = g > 0;
		}
		else
		{
			plan->band[i] = band_of(cfg, plan->share[i]);
			plan->out_of_band[i] = g > plan->band[i] || -g > plan->band[i];
			wk->margin[i] = margin_of(policy.deadband, plan->band[i]);
		}
		if(plan->out_of_band[i] && g > 0)
		{
			above += g - plan->band[i];
			wk->so += g - plan->band[i] + wk->margin[i];
		}
		else if(plan->out_of_band[i])
		{
			below += -g - plan->band[i];
			wk->dout += -g - plan->band[i] + wk->margin[i];
		}
		any |= plan->out_of_band[i];
	}
	plan->minimum = above > below ? above : below;
	return any;
}

/*
 * What is wanted out must fit what is wanted in. It does, unless members
 * in their slow start show only part of their room: then the sources'
 * wants shrink, in proportion, to the room shown (they finish in later
 * rounds, as the ramp opens). Sums plan->wanted. Returns 0 or ENOMEM.
 */
static int
plan_fit(cluster__adv_plan *plan, plan_work *wk)
{
	long long out = 0, in = 0;
	size_t i;

	for(i = 0; i < plan->n; i++)
	{
		out += wk->want_shed[i];
		in += wk->want_in[i];
	}
	if(out > in)
	{
		for(i = 0; i < plan->n; i++)
		{
			wk->limit[i] = wk->want_shed[i];
			wk->mask[i] = wk->limit[i] > 0;
			wk->want_shed[i] = 0;
		}
		if(apportion(in, wk->limit, wk->mask, plan->n, wk->want_shed))
		{
			return ENOMEM;
		}
		out = in;
	}
	plan->wanted = out;
	return 0;
}

/*
 * Step 3, surplus and deficit, at the fewest moves: every out-of-band
 * member goes to the edge of its band (a draining one to 0), not to its
 * share, since any move past the edge is one the balance does not need.
 * When what the out-of-band members must send (E) and receive (S)
 * differ, members on the short side make up the difference from what
 * they hold beyond their share (the rest of the band for an out-of-band
 * member, the gap for one inside), in proportion to it and never past
 * the share: an empty new member is filled even when each full one is
 * only a little above its share. The plan then moves max(E, S), the
 * least that gets every member inside its band, and nobody crosses its
 * share. Returns 0 or ENOMEM.
 */
static int
plan_wanted(cluster__adv_plan *plan, plan_work *wk)
{
	size_t i, n = plan->n;

	for(i = 0; i < n; i++)
	{
		if(!plan->out_of_band[i])
		{
			continue;
		}
		if(plan->gap[i] > 0)
		{
			wk->want_shed[i] = plan->gap[i] - plan->band[i] + wk->margin[i];
		}
		else
		{
			wk->want_in[i] = -plan->gap[i] - plan->band[i] + wk->margin[i];
		}
	}
	if(wk->dout > wk->so)
	{
		for(i = 0; i < n; i++)
		{
			wk->mask[i] = plan->role[i] == CLUSTER__ADV_MEMBER && plan->gap[i] - wk->want_shed[i] > 0;
			wk->limit[i] = wk->mask[i] ? plan->gap[i] - wk->want_shed[i] : 0;
		}
		if(apportion(wk->dout - wk->so, wk->limit, wk->mask, n, wk->want_shed))
		{
			return ENOMEM;
		}
	}
	else if(wk->so > wk->dout)
	{
		long long room = 0;

		for(i = 0; i < n; i++)
		{
			wk->mask[i] = plan->role[i] == CLUSTER__ADV_MEMBER && -plan->gap[i] - wk->want_in[i] > 0;
			wk->limit[i] = wk->mask[i] ? -plan->gap[i] - wk->want_in[i] : 0;
			room += wk->limit[i];
		}
		if(apportion(wk->so - wk->dout < room ? wk->so - wk->dout : room, wk->limit, wk->mask, n, wk->want_in))
		{
			return ENOMEM;
		}
	}
	return plan_fit(plan, wk);
}

/*
 * Step 4a, per-member limits on what one source sends this round: a
 * member sheds at most shed_fraction of its want (rounded up) and
 * step_max, and nothing below step_min, so churn comes in sensible steps.
 * Draining evacuation ignores the fraction and step_min (it must empty
 * out whatever is left), but not step_max.
 */
static long long
shed_limit(const CLUSTERADVISORCONFIG *cfg, int role, long long w)
{
	if(role == CLUSTER__ADV_MEMBER)
	{
		if(cfg->shed_fraction < 1.0)
		{
			double x = (double) w * cfg->shed_fraction;
			long long f = (long long) x;

			f += (double) f < x; /* ceiling, without libm */

			w = f < w ? f : w;
		}
		if(cfg->step_max > 0 && w > cfg->step_max)
		{
			w = cfg->step_max;
		}
		if(w < cfg->step_min)
		{
			w = 0;
		}
	}
	else if(cfg->step_max > 0 && w > cfg->step_max)
	{
		/* draining ignores step_min and the fraction, not step_max */
		w = cfg->step_max;
	}
	return w;
}

/*
 * Step 4b, the round budget: sources in priority order (draining first,
 * then the largest, then the lower id) take from the cluster-wide budget
 * in turn. A member cut short may end up inside its band while a deficit
 * remains; the next round then finds the deficit out of band and the
 * in-band members above their shares make it up (step 3). Fills
 * plan->shed and the source order.
 */
static void
plan_budget(cluster__adv_plan *plan, const CLUSTERADVISORCONFIG *cfg, plan_work *wk)
{
	long long budget;
	order_ctx oc;
	size_t i, a;

	for(i = 0; i < plan->n; i++)
	{
		wk->limit[i] = 0;
		if(wk->want_shed[i] <= 0)
		{
			continue;
		}
		wk->limit[i] = shed_limit(cfg, plan->role[i], wk->want_shed[i]);
		if(wk->limit[i] > 0)
		{
			wk->src[wk->ns++] = i;
		}
	}
	oc.role = plan->role;
	oc.amount = wk->limit;
	sort_idx(wk->src, wk->tmp, wk->ns, cmp_source, &oc);
	budget = plan->round_budget;
	for(a = 0; a < wk->ns; a++)
	{
		long long give = wk->limit[wk->src[a]];

		i = wk->src[a];
		if(budget >= 0 && give > budget)
		{
			give = budget;
			if(plan->role[i] == CLUSTER__ADV_MEMBER && give < cfg->step_min)
			{
				give = 0;
			}
		}
		plan->shed[i] = give;
		plan->moved += give;
		if(budget >= 0)
		{
			budget -= give;
		}
	}
}

/* Step 5a, inflow: what was shed goes to the largest deficits first (then
 * the lower id), never above a target's deficit. Fills plan->inflow and
 * the target order. */
static void
plan_inflow(cluster__adv_plan *plan, plan_work *wk)
{
	long long left = plan->moved;
	order_ctx oc;
	size_t i, b;

	for(i = 0; i < plan->n; i++)
	{
		if(wk->want_in[i] > 0)
		{
			wk->dst[wk->nt++] = i;
		}
	}
	oc.role = plan->role;
	oc.amount = wk->want_in;
	sort_idx(wk->dst, wk->tmp, wk->nt, cmp_target, &oc);
	for(b = 0; b < wk->nt && left > 0; b++)
	{
		long long take = wk->want_in[wk->dst[b]] < left ? wk->want_in[wk->dst[b]] : left;

		plan->inflow[wk->dst[b]] = take;
		left -= take;
	}
}

/*
 * Step 5b, matching surplus to deficit: sources and targets in priority
 * order, filled in turn (north-west corner), so rows are few and every
 * member derives the same ones. The inflow side always has room for what
 * was shed (conservation). Returns 0 or ENOMEM.
 */
static int
plan_match(cluster__adv_plan *plan, const plan_work *wk)
{
	long long sleft = 0, tleft = 0;
	size_t a = 0, b = 0;

	plan->rows = calloc(wk->ns + wk->nt + 1, sizeof(*plan->rows));
	if(!plan->rows)
	{
		return ENOMEM;
	}
	while(a < wk->ns && b < wk->nt)
	{
		long long c;

		if(!sleft)
		{
			sleft = plan->shed[wk->src[a]];
			if(!sleft)
			{
				a++;
				continue;
			}
		}
		if(!tleft)
		{
			tleft = plan->inflow[wk->dst[b]];
			if(!tleft)
			{
				b++;
				continue;
			}
		}
		c = sleft < tleft ? sleft : tleft;
		plan->rows[plan->nrows].from = wk->src[a];
		plan->rows[plan->nrows].to = wk->dst[b];
		plan->rows[plan->nrows].count = c;
		plan->nrows++;
		sleft -= c;
		tleft -= c;
		if(!sleft)
		{
			a++;
		}
		if(!tleft)
		{
			b++;
		}
	}
	return 0;
}

/*
 * The plan, in five steps (each a function above):
 * 1. fair shares (water-filling, cluster__adv_shares_cfg: members in
 *    their hold-down take no part);
 * 2. gaps and hysteresis bands: nothing moves unless some member is out
 *    of its band or a draining member still holds connections;
 * 3. surplus and deficit: what should move;
 * 4. limits: per member, then the cluster-wide round budget;
 * 5. inflow, then matching sources to targets into rows.
 */
int
cluster__adv_plan_compute(cluster__adv_plan *plan, const cluster__adv_node *nodes, size_t n, const CLUSTERADVISORCONFIG *cfg)
{
	plan_work wk;
	int r;

	if(plan_alloc(plan, n, &wk))
	{
		goto fail;
	}
	/* the ghost node is no member: every member counts the same n */
	plan->round_budget = cluster__adv_round_budget(cfg, cluster__adv_live(nodes, n));
	if(cluster__adv_shares_cfg(nodes, n, cfg, plan->role, plan->weight, plan->share, &plan->unplaceable))
	{
		goto fail;
	}
	if(!plan_bands(plan, nodes, cfg, &wk))
	{
		plan->balanced = 1;
		r = 0;
		goto done;
	}
	if(plan_wanted(plan, &wk))
	{
		goto fail;
	}
	plan_budget(plan, cfg, &wk);
	plan_inflow(plan, &wk);
	if(plan_match(plan, &wk))
	{
		goto fail;
	}
	r = 0;
	goto done;
fail:
	cluster__adv_plan_free(plan);
	r = ENOMEM;
done:
	plan_work_free(&wk);
	return r;
}

/* ------------------------------------------------------------------ */
/* randomness                                                           */
/* ------------------------------------------------------------------ */

uint64_t
cluster__adv_random(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t
cluster__adv_random_below(uint64_t *state, uint64_t bound)
{
	uint64_t x, limit;

	if(bound <= 1)
	{
		return 0;
	}
	/* rejection sampling: the largest multiple of bound below 2^64 */
	limit = UINT64_MAX - UINT64_MAX % bound;
	do
	{
		x = cluster__adv_random(state);
	}
	while(x >= limit);
	return x % bound;
}

int64_t
cluster__adv_jittered(int interval_ms, double jitter, uint64_t *rng)
{
	double u = (double) (cluster__adv_random(rng) >> 11) / 9007199254740992.0;
	double v = (double) interval_ms * (1.0 + jitter * (2.0 * u - 1.0));

	return v < 1.0 ? 1 : (int64_t) v;
}

/* ------------------------------------------------------------------ */
/* herd-safe pick                                                       */
/* ------------------------------------------------------------------ */

void
cluster__adv_prov_free(cluster__adv_prov *prov)
{
	free(prov->entries);
	memset(prov, 0, sizeof(*prov));
}

/* With statuses written through the report policy, a target whose load
 * the picks moved by less than half a band publishes it only after the
 * stretched interval: forgetting the picks sooner would let the same
 * targets be picked again (a herd). */
int64_t
cluster__adv_prov_timeout(const CLUSTERADVISORCONFIG *cfg, size_t n)
{
	cluster__report_policy p;

	cluster__report_policy_of(&p, cfg);
	return 3 * cluster__report_interval_for(&p, n);
}

size_t
cluster__adv_live(const cluster__adv_node *nodes, size_t n)
{
	return n && !strcmp(nodes[n - 1].id, CLUSTER__ADV_GHOST_ID) ? n - 1 : n;
}

void
cluster__adv_ghost_node(cluster__adv_node *g, long long load)
{
	memset(g, 0, sizeof(*g));
	g->id = CLUSTER__ADV_GHOST_ID;
	g->workers = 1;
	g->has_status = 1;
	g->load = load < CLUSTER__ADV_VALUE_MAX ? load : CLUSTER__ADV_VALUE_MAX;
	g->capacity = 0; /* draining: never a target */
}

size_t
cluster__adv_pickers(const CLUSTERADVISORCONFIG *cfg, const cluster__adv_node *nodes, size_t n)
{
	size_t i, k = 0;

	if(cfg->version >= 4 && cfg->pickers > 0)
	{
		return (size_t) cfg->pickers;
	}
	/* the servers: plain members (workers, watchers) pick nothing */
	for(i = 0, n = cluster__adv_live(nodes, n); i < n; i++)
	{
		k += (size_t) valid_status(&nodes[i]);
	}
	return k ? k : 1;
}

long long
cluster__adv_prov_seen(long long prov, size_t pickers)
{
	long long k = pickers > 1 ? (long long) (pickers < (size_t) CLUSTER__ADV_VALUE_MAX ? pickers : (size_t) CLUSTER__ADV_VALUE_MAX) : 1;

	if(prov <= 0)
	{
		return 0;
	}
	return prov >= CLUSTER__ADV_VALUE_MAX / k ? CLUSTER__ADV_VALUE_MAX : prov * k;
}

int
cluster__adv_less_used(long long held_b, long long weight_b, long long held_a, long long weight_a)
{
	/* every factor is positive: held >= 0 (plus 1), weights of members > 0 */
	return cluster__adv_u128_cmp(cluster__adv_u128_mul((uint64_t) (held_b + 1), (uint64_t) weight_a),
			   cluster__adv_u128_mul((uint64_t) (held_a + 1), (uint64_t) weight_b)) < 0;
}

/* Binary search over the snapshot, which is sorted by id. */
long
cluster__adv_find_node(const cluster__adv_node *nodes, size_t n, const char *id)
{
	size_t lo = 0, hi = n;

	while(lo < hi)
	{
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(nodes[mid].id, id);

		if(!c)
		{
			return (long) mid;
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
	return -1;
}

/* Draw one candidate with probability proportional to w[candidate]
 * (weights <= 0 never win). Returns 0 and draws nothing when every weight
 * is 0, so a skipped tier does not disturb the random stream. */
static int
sample_weighted(const size_t *cand, size_t ncand, const long long *w, uint64_t *rng, size_t *pick)
{
	u128 total = u128_of(0);
	uint64_t x;
	size_t j;

	for(j = 0; j < ncand; j++)
	{
		if(w[cand[j]] > 0)
		{
			total = cluster__adv_u128_add(total, (uint64_t) w[cand[j]]);
		}
	}
	if(!total.hi && !total.lo)
	{
		return 0;
	}
	/* the low 64 bits, as before (the total stays far below 2^64) */
	x = cluster__adv_random_below(rng, total.lo);
	for(j = 0; j < ncand; j++)
	{
		long long d = w[cand[j]];

		if(d <= 0)
		{
			continue;
		}
		*pick = cand[j];
		if(x < (uint64_t) d)
		{
			break;
		}
		x -= (uint64_t) d;
	}
	return 1;
}

/* What this instance's own rows send to each target: row(self, t), the
 * weights of the first tier. */
static void
own_rows(const cluster__adv_plan *plan, size_t self, long long *own)
{
	size_t i;

	for(i = 0; i < plan->nrows; i++)
	{
		if(plan->rows[i].from == self)
		{
			own[plan->rows[i].to] += plan->rows[i].count;
		}
	}
}

/* Only a record received after the last pick includes all the picks:
 * one written while picks were still being made would make the rest
 * count nowhere, and the pickers would send more there at once. */
int
cluster__adv_prov_stale(cluster__adv_prov_entry *e, const cluster__adv_node *target, const CLUSTERADVISORCONFIG *cfg, size_t n)
{
	if(target->mod_revision == e->mod_revision && target->received_ms == e->received_ms)
	{
		return 0;
	}
	/* the last pick was made timeout before the entry expires */
	if(target->received_ms > e->expires_ms - cluster__adv_prov_timeout(cfg, n))
	{
		return 1;
	}
	e->mod_revision = target->mod_revision;
	e->received_ms = target->received_ms;
	return 0;
}

/* Provisional load: forget picks the target has since reported (a record
 * received after the last of them), that vanished or that are too old,
 * and count the rest per target in prov_count, so repeated picks see
 * their own effect before the targets report it. */
static void
prov_refresh(cluster__adv_prov *prov, const cluster__adv_node *nodes, size_t n, const CLUSTERADVISORCONFIG *cfg, int64_t now_ms, long long *prov_count)
{
	size_t i, j;

	for(i = 0, j = 0; i < prov->count; i++)
	{
		cluster__adv_prov_entry *e = &prov->entries[i];
		long at = cluster__adv_find_node(nodes, n, e->id);

		if(at < 0 || now_ms >= e->expires_ms || cluster__adv_prov_stale(e, &nodes[at], cfg, n))
		{
			continue;
		}
		prov_count[at] += e->count;
		if(i != j)
		{
			prov->entries[j] = *e;
		}
		j++;
	}
	prov->count = j;
}

/* The eligible targets, into cand: members (not draining, passive or
 * without status), not stale, not full counting provisional load.
 * Returns how many. */
static size_t
pick_candidates(const cluster__adv_node *nodes, const cluster__adv_plan *plan, const CLUSTERADVISORCONFIG *cfg, const long long *prov_count, size_t *cand)
{
	size_t i, ncand = 0;

	for(i = 0; i < plan->n; i++)
	{
		long long eff = nodes[i].load + prov_count[i];

		if(plan->role[i] != CLUSTER__ADV_MEMBER)
		{
			continue;
		}
		if(cfg->stale_ms > 0 && nodes[i].age_ms > cfg->stale_ms)
		{
			continue;
		}
		if(nodes[i].capacity > 0 && eff >= nodes[i].capacity)
		{
			continue;
		}
		cand[ncand++] = i;
	}
	return ncand;
}

/* Tier 1, own plan rows: what is left of each of this instance's rows, so
 * a shedder's repeated picks follow its rows exactly, in proportion,
 * until they are exhausted. */
static void
own_row_weights(const size_t *cand, size_t ncand, const long long *own, const long long *prov_count, long long *w)
{
	size_t i, j;

	for(j = 0; j < ncand; j++)
	{
		i = cand[j];
		w[i] = own[i] - prov_count[i];
	}
}

/* Tier 2, deficit sampling with provisional load: room below the share,
 * less this caller's picks as it assumes the cluster made them
 * (cluster__adv_prov_seen), in proportion to what is left of it. Not
 * "room no row claims":
 * independent callers (new clients) would all crowd the few unclaimed
 * places, a herd; new clients and redirects share the room, and the next
 * round accounts for both. A member in its slow start weighs its room x
 * ramp / 16 (cluster__adv_ramp_room): it gets new clients a little at
 * a time, and keeps fewer if it leaves again. */
static void
deficit_weights(const cluster__adv_node *nodes, const cluster__adv_plan *plan, const CLUSTERADVISORCONFIG *cfg, const size_t *cand, size_t ncand,
	const long long *prov_count, size_t pickers, long long *w)
{
	size_t i, j;

	for(j = 0; j < ncand; j++)
	{
		i = cand[j];
		w[i] = cluster__adv_ramp_room(plan->share[i], nodes[i].load + cluster__adv_prov_seen(prov_count[i], pickers), cluster__adv_ramp(cfg, nodes[i].since_join_ms));
	}
}

/* Tier 3, the power-of-two fallback when nobody is below its share:
 * two distinct random candidates, the lower capacity-aware utilisation
 * (load + provisional as seen + 1) / weight wins (the first on a tie). */
static size_t
pick_two_choices(const cluster__adv_node *nodes, const cluster__adv_plan *plan, const long long *prov_count, size_t pickers, const size_t *cand, size_t ncand,
	uint64_t *rng)
{
	size_t x = (size_t) cluster__adv_random_below(rng, ncand), y, j, pick = cand[x];

	if(ncand > 1)
	{
		y = (size_t) cluster__adv_random_below(rng, ncand - 1);
		if(y >= x)
		{
			y++;
		}
		j = cand[y];
		if(cluster__adv_less_used(nodes[j].load + cluster__adv_prov_seen(prov_count[j], pickers), plan->weight[j],
			   nodes[pick].load + cluster__adv_prov_seen(prov_count[pick], pickers), plan->weight[pick]))
		{
			pick = j;
		}
	}
	return pick;
}

/* A new entry for target at the end of the provisional table (count 0,
 * no expiry yet); NULL when out of memory. */
cluster__adv_prov_entry *
cluster__adv_prov_append(cluster__adv_prov *prov, const cluster__adv_node *target)
{
	cluster__adv_prov_entry *e;

	if(prov->count == prov->size)
	{
		size_t ns = prov->size ? prov->size * 2 : 8;
		cluster__adv_prov_entry *ne = realloc(prov->entries, ns * sizeof(*ne));

		if(!ne)
		{
			return NULL;
		}
		prov->entries = ne;
		prov->size = ns;
	}
	e = &prov->entries[prov->count++];
	memset(e, 0, sizeof(*e));
	strncpy(e->id, target->id, CLUSTER_NAME_MAX);
	e->mod_revision = target->mod_revision;
	e->received_ms = target->received_ms;
	return e;
}

/* Count a pick as provisional load on its target, until the target's
 * record changes or the entry expires. Returns 0 or ENOMEM. */
static int
prov_record(cluster__adv_prov *prov, const cluster__adv_node *target, const CLUSTERADVISORCONFIG *cfg, size_t n, int64_t now_ms)
{
	size_t i;

	for(i = 0; i < prov->count; i++)
	{
		if(!strcmp(prov->entries[i].id, target->id))
		{
			break;
		}
	}
	if(i == prov->count && !cluster__adv_prov_append(prov, target))
	{
		return ENOMEM;
	}
	prov->entries[i].count++;
	prov->entries[i].expires_ms = now_ms + cluster__adv_prov_timeout(cfg, n);
	return 0;
}

/*
 * The pick knows the plan: every member derives the same rows from the
 * same snapshot, so a shedder sends its redirected clients exactly along
 * its own rows. Independent sampling by raw deficit cannot add up to each
 * deficit exactly; this can. Tiers, each used only when the previous one
 * has no weight left (see advisor.h):
 * 1. own plan rows: row(self, t) - provisional(t) (own_row_weights);
 * 2. deficit sampling with provisional load: share - load - provisional,
 *    scaled by the slow start (deficit_weights);
 * 3. the power-of-two fallback (pick_two_choices).
 * A tier with no weight draws no random number (sample_weighted).
 */
int
cluster__adv_pick(const cluster__adv_node *nodes, size_t n, size_t self, const CLUSTERADVISORCONFIG *cfg, cluster__adv_prov *prov, int64_t now_ms, uint64_t *rng, size_t *chosen)
{
	cluster__adv_plan plan;
	long long *prov_count = NULL, *own = NULL, *w = NULL;
	size_t *cand = NULL, ncand, pick = 0;
	int r = ENOMEM;
	size_t m = n ? n : 1, pickers = cluster__adv_pickers(cfg, nodes, n);

	memset(&plan, 0, sizeof(plan));
	prov_count = calloc(m, sizeof(*prov_count));
	own = calloc(m, sizeof(*own));
	w = calloc(m, sizeof(*w));
	cand = calloc(m, sizeof(*cand));
	if(!prov_count || !own || !w || !cand)
	{
		goto done;
	}
	/* the same plan every member computes from this snapshot */
	if(cluster__adv_plan_compute(&plan, nodes, n, cfg))
	{
		goto done;
	}
	own_rows(&plan, self, own);
	prov_refresh(prov, nodes, n, cfg, now_ms, prov_count);
	ncand = pick_candidates(nodes, &plan, cfg, prov_count, cand);
	if(!ncand)
	{
		r = ENOENT;
		goto done;
	}
	own_row_weights(cand, ncand, own, prov_count, w);
	if(sample_weighted(cand, ncand, w, rng, &pick))
	{
		goto picked;
	}
	deficit_weights(nodes, &plan, cfg, cand, ncand, prov_count, pickers, w);
	if(sample_weighted(cand, ncand, w, rng, &pick))
	{
		goto picked;
	}
	pick = pick_two_choices(nodes, &plan, prov_count, pickers, cand, ncand, rng);
picked:
	r = prov_record(prov, &nodes[pick], cfg, n, now_ms);
	if(!r)
	{
		*chosen = pick;
	}
done:
	cluster__adv_plan_free(&plan);
	free(prov_count);
	free(own);
	free(w);
	free(cand);
	return r;
}
