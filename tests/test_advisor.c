/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure connection-advisor tests: fair shares, the global plan and the
 * herd-safe pick, on hand-made cases, every small case, and many random
 * ones, against the invariants the library promises (conservation, no
 * overshoot, no overlap, determinism, evacuation, hysteresis, limits).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"
#include "advisor-picker.h"

#define MAXN 64

static char ids[MAXN][16];

static void
make_ids(void)
{
	int i;

	for(i = 0; i < MAXN; i++)
	{
		snprintf(ids[i], sizeof(ids[i]), "m%02d", i);
	}
}

static void
node(cluster__adv_node *m, int i, long long load, long long cap)
{
	memset(m, 0, sizeof(*m));
	m->id = ids[i];
	m->workers = 1;
	m->has_status = 1;
	m->load = load;
	m->capacity = cap;
	m->mod_revision = 1;
	m->received_ms = 1;
}

static CLUSTERADVISORCONFIG
unlimited(void)
{
	CLUSTERADVISORCONFIG c;

	cluster_advisor_config_init(&c);
	c.budget_per_second = 0;
	return c;
}

/*
 * Every invariant of one plan. Returns the plan (caller frees).
 */
static void
check_plan(const cluster__adv_node *v, size_t n, const CLUSTERADVISORCONFIG *cfg, cluster__adv_plan *p)
{
	cluster__adv_plan q;
	long long sum = 0, shed = 0, in = 0, *from, *to;
	size_t i;
	int established = 0;

	assert_int_equal(cluster__adv_plan_compute(p, v, n, cfg), 0);
	for(i = 0; i < n && !established; i++)
	{
		/* a slow start counts against established members only */
		established = p->role[i] == CLUSTER__ADV_MEMBER && cluster__adv_ramp(cfg, v[i].since_join_ms) == CLUSTER__ADV_RAMP_FULL;
	}
	from = calloc(n + 1, sizeof(*from));
	to = calloc(n + 1, sizeof(*to));
	assert_non_null(from);
	assert_non_null(to);
	for(i = 0; i < n; i++)
	{
		if(p->role[i] == CLUSTER__ADV_OUT)
		{
			assert_int_equal(p->share[i], 0);
			assert_int_equal(p->shed[i], 0);
			assert_int_equal(p->inflow[i], 0);
			continue;
		}
		sum += p->share[i];
		assert_true(p->share[i] >= 0);
		if(!p->unplaceable)
		{
			/* shares respect capacity; draining members get nothing */
			if(v[i].capacity > 0)
			{
				assert_true(p->share[i] <= v[i].capacity);
			}
			if(v[i].capacity == 0)
			{
				assert_int_equal(p->share[i], 0);
			}
		}
		if(v[i].load < p->share[i] && p->role[i] == CLUSTER__ADV_MEMBER && established)
		{
			/* a deficit shows up to the member's fill level, share x
			 * ramp / 16 in its slow start */
			int ramp = cluster__adv_ramp(cfg, v[i].since_join_ms);
			long long level;

			ramp = ramp < 1 ? 1 : ramp; /* everyone new: the hold-down is ignored */
			level = ramp >= CLUSTER__ADV_RAMP_FULL ? p->share[i] : p->share[i] * ramp / CLUSTER__ADV_RAMP_FULL;
			assert_int_equal(-p->gap[i], level > v[i].load ? level - v[i].load : 0);
		}
		else
		{
			assert_int_equal(p->gap[i], v[i].load - p->share[i]);
		}
		/* nobody overshoots: sources stay at or above share, targets at or below */
		assert_true(p->shed[i] <= (p->gap[i] > 0 ? p->gap[i] : 0));
		assert_true(p->inflow[i] <= (p->gap[i] < 0 ? -p->gap[i] : 0));
		assert_false(p->shed[i] && p->inflow[i]);
		if(p->inflow[i])
		{
			assert_int_equal(p->role[i], CLUSTER__ADV_MEMBER);
			if(v[i].capacity > 0)
			{
				assert_true(v[i].load + p->inflow[i] <= v[i].capacity);
			}
		}
		if(cfg->step_max > 0)
		{
			assert_true(p->shed[i] <= cfg->step_max);
		}
		if(p->shed[i] && p->role[i] == CLUSTER__ADV_MEMBER)
		{
			assert_true(p->shed[i] >= cfg->step_min);
		}
		shed += p->shed[i];
		in += p->inflow[i];
	}
	/* the fewest moves that get everyone inside the band, from the
	 * definition: max(load above the band edges, room below them); the
	 * plan aims inside each edge by the deadband margin, floor(deadband x
	 * band), so it moves max(E, S) with those margins added */
	{
		long long above = 0, below = 0, e = 0, s = 0;
		int ramping = 0;
		double deadband = cfg->version >= 2 ? cfg->report_deadband : 0;

		for(i = 0; i < n; i++)
		{
			long long band = p->role[i] == CLUSTER__ADV_DRAINING ? 0 : p->band[i];
			long long margin = (long long) (deadband * (double) band);

			if(p->role[i] == CLUSTER__ADV_OUT)
			{
				continue;
			}
			above += p->gap[i] > band ? p->gap[i] - band : 0;
			below += -p->gap[i] > band ? -p->gap[i] - band : 0;
			e += p->gap[i] > band ? p->gap[i] - band + margin : 0;
			s += -p->gap[i] > band ? -p->gap[i] - band + margin : 0;
		}
		assert_int_equal(p->minimum, above > below ? above : below);
		assert_true(p->moved <= (e > s ? e : s));
		for(i = 0; i < n && !ramping; i++)
		{
			ramping = v[i].since_join_ms > 0 && cluster__adv_ramp(cfg, v[i].since_join_ms) < CLUSTER__ADV_RAMP_FULL;
		}
		if(!p->unplaceable && !ramping && p->round_budget < 0 && cfg->step_max == 0 && cfg->shed_fraction >= 1.0 && cfg->step_min <= 1)
		{
			/* no limits and nobody in a slow start: the plan moves exactly that */
			assert_int_equal(p->moved, e > s ? e : s);
		}
	}
	/* conservation */
	assert_int_equal(sum + 0, p->total_load);
	assert_int_equal(shed, in);
	assert_int_equal(shed, p->moved);
	if(p->round_budget >= 0)
	{
		assert_true(p->moved <= p->round_budget);
	}
	if(p->balanced)
	{
		assert_int_equal(p->nrows, 0);
	}
	/* rows add up per source and per target (so plans never overlap) */
	for(i = 0; i < p->nrows; i++)
	{
		assert_true(p->rows[i].count > 0);
		assert_true(p->rows[i].from < n && p->rows[i].to < n);
		from[p->rows[i].from] += p->rows[i].count;
		to[p->rows[i].to] += p->rows[i].count;
	}
	for(i = 0; i < n; i++)
	{
		assert_int_equal(from[i], p->shed[i]);
		assert_int_equal(to[i], p->inflow[i]);
	}
	free(from);
	free(to);
	/* determinism: another member, another copy, the same plan */
	{
		cluster__adv_node *copy = malloc((n ? n : 1) * sizeof(*copy));
		char(*cid)[16] = malloc((n ? n : 1) * sizeof(*cid));

		assert_non_null(copy);
		assert_non_null(cid);
		for(i = 0; i < n; i++)
		{
			copy[i] = v[i];
			strcpy(cid[i], v[i].id);
			copy[i].id = cid[i];
			copy[i].age_ms = (long long) i * 977; /* local receipt times differ */
		}
		assert_int_equal(cluster__adv_plan_compute(&q, copy, n, cfg), 0);
		assert_int_equal(q.nrows, p->nrows);
		for(i = 0; i < p->nrows; i++)
		{
			assert_int_equal(q.rows[i].from, p->rows[i].from);
			assert_int_equal(q.rows[i].to, p->rows[i].to);
			assert_int_equal(q.rows[i].count, p->rows[i].count);
		}
		assert_memory_equal(q.share, p->share, n * sizeof(*q.share));
		cluster__adv_plan_free(&q);
		free(copy);
		free(cid);
	}
}

/* Apply a plan's rows to the loads. */
static void
apply(cluster__adv_node *v, const cluster__adv_plan *p)
{
	size_t i;

	for(i = 0; i < p->nrows; i++)
	{
		v[p->rows[i].from].load -= p->rows[i].count;
		v[p->rows[i].to].load += p->rows[i].count;
	}
}

/* ------------------------------------------------------------------ */

static void
test_shares(void **state)
{
	cluster__adv_node v[4];
	signed char role[4];
	long long w[4], s[4], left;

	(void) state;
	/* 10 over three equal members: largest remainder, ties to the lower id */
	node(&v[0], 0, 10, -1);
	node(&v[1], 1, 0, -1);
	node(&v[2], 2, 0, -1);
	assert_int_equal(cluster__adv_shares(v, 3, role, w, s, &left), 0);
	assert_int_equal(s[0], 4);
	assert_int_equal(s[1], 3);
	assert_int_equal(s[2], 3);
	assert_int_equal(left, 0);
	/* workers weigh unbounded members */
	v[1].workers = 3;
	assert_int_equal(cluster__adv_shares(v, 3, role, w, s, &left), 0);
	assert_int_equal(s[0] + s[1] + s[2], 10);
	assert_int_equal(s[1], 6);
	/* capacity weighs bounded members: 300 over caps 100 and 200 */
	node(&v[0], 0, 100, 100);
	node(&v[1], 1, 200, 1000);
	node(&v[2], 2, 0, 200);
	assert_int_equal(cluster__adv_shares(v, 3, role, w, s, &left), 0);
	assert_int_equal(s[0], 23);  /* 300 x 100/1300 = 23.08 */
	assert_int_equal(s[1], 231); /* 230.77 -> rounded up (largest remainder) */
	assert_int_equal(s[2], 46);
	/* water-filling: a bounded member is pinned at its capacity */
	node(&v[0], 0, 100, 100);
	node(&v[1], 1, 500, -1);
	assert_int_equal(cluster__adv_shares(v, 2, role, w, s, &left), 0);
	assert_int_equal(w[1], 100); /* K = 100 connections per worker */
	assert_int_equal(s[0], 100);
	assert_int_equal(s[1], 500);
	/* draining, passive, no status and garbage take no share */
	node(&v[0], 0, 50, 0);
	node(&v[1], 1, 50, -1);
	node(&v[2], 2, 50, -1);
	v[2].passive = 1;
	node(&v[3], 3, 70, 60); /* capacity below load: garbage */
	assert_int_equal(cluster__adv_shares(v, 4, role, w, s, &left), 0);
	assert_int_equal(role[0], CLUSTER__ADV_DRAINING);
	assert_int_equal(role[1], CLUSTER__ADV_MEMBER);
	assert_int_equal(role[2], CLUSTER__ADV_OUT);
	assert_int_equal(role[3], CLUSTER__ADV_OUT);
	assert_int_equal(s[0], 0);
	assert_int_equal(s[1], 100);
	/* over capacity: the excess stays with whoever holds it */
	node(&v[0], 0, 100, 0);
	node(&v[1], 1, 50, 60);
	assert_int_equal(cluster__adv_shares(v, 2, role, w, s, &left), 0);
	assert_int_equal(left, 90);
	assert_int_equal(s[1], 60);
	assert_int_equal(s[0], 90);
}

static void
test_hysteresis(void **state)
{
	CLUSTERADVISORCONFIG c = unlimited();
	cluster__adv_node v[2];
	cluster__adv_plan p;

	(void) state;
	/* inside the absolute band: nothing */
	node(&v[0], 0, 105, -1);
	node(&v[1], 1, 95, -1);
	check_plan(v, 2, &c, &p);
	assert_true(p.balanced);
	cluster__adv_plan_free(&p);
	/* outside: to the band edge (110 / 90), the fewest moves, and the
	 * deadband margin of 1 (0.1 x 10) inside it: 109 / 91 */
	node(&v[0], 0, 120, -1);
	node(&v[1], 1, 80, -1);
	check_plan(v, 2, &c, &p);
	assert_false(p.balanced);
	assert_int_equal(p.minimum, 10);
	assert_int_equal(p.nrows, 1);
	assert_int_equal(p.rows[0].count, 11);
	cluster__adv_plan_free(&p);
	/* the relative band dominates at 1000: 5% = 50 */
	node(&v[0], 0, 1040, -1);
	node(&v[1], 1, 960, -1);
	check_plan(v, 2, &c, &p);
	assert_true(p.balanced);
	cluster__adv_plan_free(&p);
	node(&v[0], 0, 1060, -1);
	node(&v[1], 1, 940, -1);
	check_plan(v, 2, &c, &p);
	assert_int_equal(p.moved, 15); /* 10 + the margin 0.1 x 50 */
	cluster__adv_plan_free(&p);
}

/* 49 full members and one empty: each full one is inside its band, but
 * the empty one is not, so all of them give a little (ClusterLoadBalancer
 * never fills it). */
static void
test_fill_empty(void **state)
{
	CLUSTERADVISORCONFIG c = unlimited();
	cluster__adv_node v[50];
	cluster__adv_plan p;
	int i;

	(void) state;
	for(i = 0; i < 49; i++)
	{
		node(&v[i], i, 2000, -1);
	}
	node(&v[49], 49, 0, -1);
	check_plan(v, 50, &c, &p);
	assert_int_equal(p.share[49], 1960);
	assert_int_equal(p.band[49], 98);
	/* to its band edge, 1960 - 98, and the margin 9 inside it */
	assert_int_equal(p.minimum, 1862);
	assert_int_equal(p.moved, 1871);
	assert_int_equal(p.inflow[49], 1871);
	assert_int_equal(p.nrows, 49);
	apply(v, &p);
	cluster__adv_plan_free(&p);
	check_plan(v, 50, &c, &p);
	assert_true(p.balanced);
	for(i = 0; i < 49; i++)
	{
		/* each gave 38 or 39, in proportion to its gap of 40 */
		assert_true(v[i].load >= 1961 && v[i].load <= 1962);
	}
	assert_int_equal(v[49].load, 1871);
	cluster__adv_plan_free(&p);
}

static void
test_draining(void **state)
{
	CLUSTERADVISORCONFIG c;
	cluster__adv_node v[4];
	cluster__adv_plan p;
	int i, rounds = 0;

	(void) state;
	cluster_advisor_config_init(&c);
	c.budget_per_second = 10; /* 50 per 5 s round */
	c.step_min = 100;         /* ignored when draining */
	for(i = 0; i < 4; i++)
	{
		node(&v[i], i, 300, -1);
	}
	v[2].capacity = 0;
	do
	{
		check_plan(v, 4, &c, &p);
		if(v[2].load)
		{
			/* evacuated at the budget, the draining member first */
			assert_int_equal(p.shed[2], v[2].load < 50 ? v[2].load : 50);
			assert_int_equal(p.moved, p.shed[2]);
		}
		apply(v, &p);
		cluster__adv_plan_free(&p);
	}
	while(v[2].load && ++rounds < 100);
	assert_int_equal(v[2].load, 0);
	assert_int_equal(rounds, 5);
	assert_int_equal(v[0].load + v[1].load + v[3].load, 1200);
	/* with nowhere to go, nothing moves */
	node(&v[0], 0, 10, 0);
	node(&v[1], 1, 10, 10);
	check_plan(v, 2, &c, &p);
	assert_int_equal(p.moved, 0);
	cluster__adv_plan_free(&p);
}

static void
test_limits(void **state)
{
	CLUSTERADVISORCONFIG c = unlimited();
	cluster__adv_node v[3];
	cluster__adv_plan p;

	(void) state;
	node(&v[0], 0, 1000, -1);
	node(&v[1], 1, 500, -1);
	node(&v[2], 2, 0, -1);
	/* step_max */
	c.step_max = 100;
	check_plan(v, 3, &c, &p);
	assert_int_equal(p.shed[0], 100);
	cluster__adv_plan_free(&p);
	/* shed_fraction (rounded up) */
	c.step_max = 0;
	c.shed_fraction = 0.3;
	check_plan(v, 3, &c, &p);
	assert_int_equal(p.shed[0], 144); /* 0.3 x (500 - its band of 25 + its margin of 2), rounded up */
	cluster__adv_plan_free(&p);
	/* step_min skips small moves */
	c.shed_fraction = 1.0;
	c.step_min = 600;
	check_plan(v, 3, &c, &p);
	assert_int_equal(p.moved, 0);
	assert_false(p.balanced);
	cluster__adv_plan_free(&p);
	/* the budget: 10/s x 5 s = 50 a round */
	c.step_min = 1;
	c.budget_per_second = 10;
	check_plan(v, 3, &c, &p);
	assert_int_equal(p.round_budget, 50);
	assert_int_equal(p.moved, 50);
	cluster__adv_plan_free(&p);
}

/* A member cut short by the budget may end inside its band while a
 * deficit is left: the next round finds the deficit still out of band and
 * finishes it from the in-band members above their shares, and the
 * rounds together move exactly the first round's minimum. */
static void
test_no_stranding(void **state)
{
	CLUSTERADVISORCONFIG c;
	cluster__adv_node v[3];
	cluster__adv_plan p;
	long long first, total = 0;
	int i;

	(void) state;
	cluster_advisor_config_init(&c);
	node(&v[0], 0, 1100, -1); /* out of band: 50 above its edge */
	node(&v[1], 1, 1040, -1); /* inside its band */
	node(&v[2], 2, 860, -1);  /* out of band: 90 below its edge */
	check_plan(v, 3, &c, &p);
	assert_int_equal(p.minimum, 90);
	/* with the margin of 5 inside each edge: 55 must leave member 0, 95
	 * must reach member 2; member 0 (45 left above its share) and member 1
	 * (40) make up the other 40 in proportion */
	first = p.moved;
	assert_int_equal(first, 95);
	assert_int_equal(p.shed[0], 55 + 21);
	assert_int_equal(p.shed[1], 19);
	cluster__adv_plan_free(&p);
	c.budget_per_second = 76 / 5.0; /* the round budget covers member 0 only */
	for(i = 0; i < 5; i++)
	{
		check_plan(v, 3, &c, &p);
		total += p.moved;
		apply(v, &p);
		if(p.balanced)
		{
			cluster__adv_plan_free(&p);
			break;
		}
		cluster__adv_plan_free(&p);
	}
	assert_int_equal(i, 2);
	assert_int_equal(total, first);
	assert_int_equal(v[2].load, 955);
}

/* Every case with up to 3 members, loads 0..4, capacities unbounded,
 * draining, exact or roomy, 1 or 2 workers, no status; under three
 * configurations. One unlimited round settles every case. */
static void
test_exhaustive(void **state)
{
	static const long long caps[] = { -1, 0, 0, 3 }; /* index 2: = load */
	CLUSTERADVISORCONFIG cfgs[3];
	cluster__adv_node v[3];
	cluster__adv_plan p;
	int n, k, c, idx[3], count = 0;

	(void) state;
	cfgs[0] = unlimited();
	cfgs[0].band_absolute = 0;
	cfgs[0].band_relative = 0;
	cfgs[1] = unlimited();
	cfgs[1].band_absolute = 1;
	cfgs[2] = cfgs[0];
	cfgs[2].budget_per_second = 0.4; /* 2 a round */
	for(n = 1; n <= 3; n++)
	{
		int combos = 1;

		for(k = 0; k < n; k++)
		{
			combos *= 5 * 5 * 2;
		}
		for(k = 0; k < combos; k++)
		{
			int x = k, i;

			for(i = 0; i < n; i++)
			{
				idx[i] = x % 50;
				x /= 50;
				node(&v[i], i, idx[i] % 5, 0);
				switch((idx[i] / 5) % 5)
				{
				case 0: v[i].capacity = caps[0]; break;
				case 1: v[i].capacity = 0; break;
				case 2: v[i].capacity = v[i].load ? v[i].load : 1; break;
				case 3: v[i].capacity = v[i].load + caps[3]; break;
				default: v[i].has_status = 0; break;
				}
				v[i].workers = 1 + idx[i] / 25;
			}
			for(c = 0; c < 3; c++)
			{
				cluster__adv_node w[3];

				memcpy(w, v, sizeof(w));
				check_plan(w, (size_t) n, &cfgs[c], &p);
				if(c < 2 && !p.unplaceable)
				{
					apply(w, &p);
					cluster__adv_plan_free(&p);
					check_plan(w, (size_t) n, &cfgs[c], &p);
					/* one unlimited round settles every case */
					assert_true(p.balanced);
				}
				cluster__adv_plan_free(&p);
				count++;
			}
		}
	}
	assert_true(count > 370000);
}

/* Random larger clusters under random limits: invariants every round,
 * and the loop reaches balance. */
static void
test_random(void **state)
{
	uint64_t rng = 42;
	int t, stalls = 0;

	(void) state;
	for(t = 0; t < 3000; t++)
	{
		CLUSTERADVISORCONFIG c;
		cluster__adv_node v[MAXN];
		cluster__adv_plan p;
		size_t n = 1 + cluster__adv_random_below(&rng, MAXN), i;
		int rounds = 0;

		cluster_advisor_config_init(&c);
		c.band_absolute = (long long) cluster__adv_random_below(&rng, 20);
		c.band_relative = (double) cluster__adv_random_below(&rng, 20) / 100.0;
		c.budget_per_second = (double) cluster__adv_random_below(&rng, 1000);
		c.step_max = (long long) cluster__adv_random_below(&rng, 3) ? 0 : 50 + (long long) cluster__adv_random_below(&rng, 500);
		c.step_min = 1 + (long long) cluster__adv_random_below(&rng, 5);
		c.shed_fraction = cluster__adv_random_below(&rng, 2) ? 1.0 : 0.5;
		for(i = 0; i < n; i++)
		{
			long long load = (long long) cluster__adv_random_below(&rng, 3000);
			uint64_t kind = cluster__adv_random_below(&rng, 10);

			node(&v[i], (int) i, load, kind < 5 ? -1 : kind < 6 ? 0 :
																  load + (long long) cluster__adv_random_below(&rng, 3000));
			v[i].workers = 1 + (int) cluster__adv_random_below(&rng, 8);
			v[i].passive = kind == 9 && cluster__adv_random_below(&rng, 2);
		}
		for(;;)
		{
			check_plan(v, n, &c, &p);
			if(p.balanced)
			{
				cluster__adv_plan_free(&p);
				break;
			}
			if(!p.moved)
			{
				/* stopped short of balance: only for load that fits
				 * nowhere, or moves smaller than step_min (without it the
				 * same snapshot would move something) */
				CLUSTERADVISORCONFIG c1 = c;
				cluster__adv_plan q;

				stalls++;
				c1.step_min = 1;
				assert_int_equal(cluster__adv_plan_compute(&q, v, n, &c1), 0);
				assert_true(p.unplaceable > 0 || q.moved > 0);
				cluster__adv_plan_free(&q);
				cluster__adv_plan_free(&p);
				break;
			}
			apply(v, &p);
			cluster__adv_plan_free(&p);
			assert_true(++rounds < 10000);
		}
	}
	print_message("random clusters: %d of 3000 stopped short of balance (load that fits nowhere, or step_min)\n", stalls);
}

/* ------------------------------------------------------------------ */

static void
test_pick_spread(void **state)
{
	CLUSTERADVISORCONFIG c;
	cluster__adv_node v[10];
	cluster__adv_prov prov = { NULL, 0, 0 }, others[9];
	long long got[10] = { 0 }, mine[10] = { 0 }, share[10], w[10];
	signed char role[10];
	uint64_t rng = 7;
	size_t at;
	int i, k;

	(void) state;
	cluster_advisor_config_init(&c);
	memset(others, 0, sizeof(others));
	/* after a rolling deploy: deficits sum to well over 1000 */
	for(i = 0; i < 10; i++)
	{
		node(&v[i], i, 1000 + 150 * (i % 5), -1);
	}
	v[3].load = 0;
	v[7].load = 200;
	assert_int_equal(cluster__adv_shares(v, 10, role, w, share, NULL), 0);
	/* every member picks 100 from this snapshot (prov is the first's
	 * table): each claims its tenth of each room, rounded up, so nobody
	 * receives more than its deficit + 9, however the picks interleave */
	for(k = 0; k < 100; k++)
	{
		for(i = 0; i < 10; i++)
		{
			assert_int_equal(cluster__adv_pick(v, 10, CLUSTER__ADV_NO_SELF, &c, i ? &others[i - 1] : &prov, 1000, &rng, &at), 0);
			got[at]++;
			mine[at] += !i;
		}
	}
	for(i = 0; i < 10; i++)
	{
		long long deficit = share[i] - v[i].load;

		assert_true(mine[i] <= (deficit > 0 ? (deficit + 9) / 10 : 0));
		assert_true(got[i] <= (deficit > 0 ? deficit + 9 : 0));
	}
	for(i = 0; i < 9; i++)
	{
		cluster__adv_prov_free(&others[i]);
	}
	assert_true(got[3] > 500);
	/* told it is the only picker (a single gateway), one caller's 1000
	 * picks fill the rooms themselves and never exceed one */
	{
		CLUSTERADVISORCONFIG one = c;
		cluster__adv_prov lone = { NULL, 0, 0 };
		long long alone[10] = { 0 };

		one.pickers = 1;
		for(k = 0; k < 1000; k++)
		{
			assert_int_equal(cluster__adv_pick(v, 10, CLUSTER__ADV_NO_SELF, &one, &lone, 1000, &rng, &at), 0);
			alone[at]++;
		}
		for(i = 0; i < 10; i++)
		{
			long long deficit = share[i] - v[i].load;

			assert_true(alone[i] <= (deficit > 0 ? deficit : 0));
		}
		assert_true(alone[3] > 500);
		cluster__adv_prov_free(&lone);
	}
	/* a record written while the picks were being made (received before
	 * the last of them) does not include them all: the count stays */
	v[3].mod_revision = 2;
	v[3].load += 10;
	assert_int_equal(cluster__adv_pick(v, 10, CLUSTER__ADV_NO_SELF, &c, &prov, 1000, &rng, &at), 0);
	for(i = 0; i < (int) prov.count; i++)
	{
		if(!strcmp(prov.entries[i].id, v[3].id))
		{
			assert_true(prov.entries[i].count >= mine[3]);
			assert_int_equal(prov.entries[i].mod_revision, 2); /* now against the new record */
		}
	}
	/* the targets report after the picks: their provisional counts are
	 * forgotten (only the next pick's own entry, if it lands there,
	 * remains) */
	v[3].mod_revision = 3;
	v[3].load += got[3] - 10;
	v[3].received_ms = 2000;
	v[7].load += got[7];
	v[7].mod_revision = 2;
	v[7].received_ms = 2000;
	assert_int_equal(cluster__adv_pick(v, 10, CLUSTER__ADV_NO_SELF, &c, &prov, 2001, &rng, &at), 0);
	for(i = 0; i < (int) prov.count; i++)
	{
		if(!strcmp(prov.entries[i].id, v[3].id) || !strcmp(prov.entries[i].id, v[7].id))
		{
			assert_int_equal(prov.entries[i].received_ms, 2000);
			assert_true(prov.entries[i].count <= 1);
		}
	}
	cluster__adv_prov_free(&prov);
	/* nobody below share: two choices still spread (no single winner) */
	for(i = 0; i < 10; i++)
	{
		node(&v[i], i, 100, -1);
		got[i] = 0;
	}
	for(i = 0; i < 1000; i++)
	{
		assert_int_equal(cluster__adv_pick(v, 10, CLUSTER__ADV_NO_SELF, &c, &prov, 1000, &rng, &at), 0);
		got[at]++;
	}
	for(i = 0; i < 10; i++)
	{
		assert_true(got[i] >= 90 && got[i] <= 110);
	}
	cluster__adv_prov_free(&prov);
}

static void
test_pick_exclusions(void **state)
{
	CLUSTERADVISORCONFIG c;
	cluster__adv_node v[4];
	cluster__adv_prov prov = { NULL, 0, 0 };
	uint64_t rng = 1;
	size_t at = 99;
	int i;

	(void) state;
	cluster_advisor_config_init(&c);
	c.stale_ms = 5000;
	node(&v[0], 0, 10, 0);  /* draining */
	node(&v[1], 1, 10, 10); /* full */
	node(&v[2], 2, 0, -1);
	v[2].age_ms = 6000; /* stale */
	node(&v[3], 3, 0, -1);
	v[3].has_status = 0; /* no status */
	assert_int_equal(cluster__adv_pick(v, 4, CLUSTER__ADV_NO_SELF, &c, &prov, 0, &rng, &at), ENOENT);
	/* the draining member's row goes to the stale one: still nobody */
	assert_int_equal(cluster__adv_pick(v, 4, 0, &c, &prov, 0, &rng, &at), ENOENT);
	assert_int_equal(cluster__adv_pick(v, 4, 2, &c, &prov, 0, &rng, &at), ENOENT);
	v[2].age_ms = 100;
	assert_int_equal(cluster__adv_pick(v, 4, CLUSTER__ADV_NO_SELF, &c, &prov, 0, &rng, &at), 0);
	assert_int_equal(at, 2);
	assert_int_equal(cluster__adv_pick(v, 4, 0, &c, &prov, 0, &rng, &at), 0);
	assert_int_equal(at, 2);
	cluster__adv_prov_free(&prov);
	/* provisional load fills a bounded member: then it is full */
	node(&v[1], 1, 8, 10);
	v[2].age_ms = 6000;
	cluster__adv_prov_free(&prov);
	for(i = 0; i < 2; i++)
	{
		assert_int_equal(cluster__adv_pick(v, 4, CLUSTER__ADV_NO_SELF, &c, &prov, 0, &rng, &at), 0);
		assert_int_equal(at, 1);
	}
	assert_int_equal(cluster__adv_pick(v, 4, CLUSTER__ADV_NO_SELF, &c, &prov, 0, &rng, &at), ENOENT);
	/* ... until its record changes ... */
	v[1].received_ms = 77;
	assert_int_equal(cluster__adv_pick(v, 4, CLUSTER__ADV_NO_SELF, &c, &prov, 0, &rng, &at), 0);
	assert_int_equal(cluster__adv_pick(v, 4, CLUSTER__ADV_NO_SELF, &c, &prov, 0, &rng, &at), 0);
	assert_int_equal(cluster__adv_pick(v, 4, CLUSTER__ADV_NO_SELF, &c, &prov, 0, &rng, &at), ENOENT);
	/* ... or the entry times out */
	assert_int_equal(cluster__adv_pick(v, 4, CLUSTER__ADV_NO_SELF, &c, &prov, cluster__adv_prov_timeout(&c, 4), &rng, &at), 0);
	cluster__adv_prov_free(&prov);
}

/* A random cluster for the pick tests: mixed capacities, workers,
 * draining, passive and status-less members, random limits. */
static size_t
random_cluster(uint64_t *rng, cluster__adv_node *v, CLUSTERADVISORCONFIG *c)
{
	size_t n = 2 + cluster__adv_random_below(rng, 30), i;

	cluster_advisor_config_init(c);
	c->band_absolute = (long long) cluster__adv_random_below(rng, 20);
	c->band_relative = (double) cluster__adv_random_below(rng, 10) / 100.0;
	c->budget_per_second = (double) cluster__adv_random_below(rng, 600);
	c->step_max = cluster__adv_random_below(rng, 3) ? 0 : 20 + (long long) cluster__adv_random_below(rng, 300);
	c->shed_fraction = cluster__adv_random_below(rng, 2) ? 1.0 : 0.5;
	for(i = 0; i < n; i++)
	{
		long long load = (long long) cluster__adv_random_below(rng, 2000);
		uint64_t kind = cluster__adv_random_below(rng, 12);

		node(&v[i], (int) i, load, kind < 6 ? -1 : kind < 7 ? 0 :
															  load + (long long) cluster__adv_random_below(rng, 2000));
		v[i].workers = 1 + (int) cluster__adv_random_below(rng, 4);
		v[i].passive = kind == 10;
		v[i].has_status = kind != 11;
	}
	return n;
}

/* Per target: the plan's rows out of self. */
static void
own_rows(const cluster__adv_plan *p, size_t n, size_t self, long long *own)
{
	size_t i;

	memset(own, 0, n * sizeof(*own));
	for(i = 0; i < p->nrows; i++)
	{
		if(p->rows[i].from == self)
		{
			own[p->rows[i].to] += p->rows[i].count;
		}
	}
}

/* The pickers the pick assumes by default: the members with a status
 * (random_cluster() makes every status it sets valid). */
static long long
servers(const cluster__adv_node *v, size_t n)
{
	long long k = 0;
	size_t i;

	for(i = 0; i < n; i++)
	{
		k += v[i].has_status != 0;
	}
	return k ? k : 1;
}

/* Room below the share, as the pick must see it (eligible targets only):
 * a caller's own picks count once toward a capacity, and once per
 * assumed picker (servers()) against the room; returns the sum of the
 * positive parts. */
static long long
room_below_share(const cluster__adv_node *v, size_t n, const cluster__adv_plan *p, const long long *mine, long long *room)
{
	long long sum = 0, k = servers(v, n);
	size_t i;

	for(i = 0; i < n; i++)
	{
		room[i] = 0;
		if(p->role[i] != CLUSTER__ADV_MEMBER || (v[i].capacity > 0 && v[i].load + mine[i] >= v[i].capacity))
		{
			continue;
		}
		room[i] = p->share[i] - v[i].load - mine[i] * k;
		sum += room[i] > 0 ? room[i] : 0;
	}
	return sum;
}

/* A shedder's picks follow its own rows: never more than a row into its
 * target while rows remain, exactly its rows once it picked its shed
 * count; the next pick takes room below some share while any is left. */
static void
test_pick_own_rows(void **state)
{
	uint64_t rng = 11, prng = 12;
	int t, shedders = 0;

	(void) state;
	for(t = 0; t < 400; t++)
	{
		CLUSTERADVISORCONFIG c;
		cluster__adv_node v[MAXN];
		cluster__adv_plan p;
		long long own[MAXN], got[MAXN], room[MAXN];
		size_t n = random_cluster(&rng, v, &c), s, i, at;

		assert_int_equal(cluster__adv_plan_compute(&p, v, n, &c), 0);
		for(s = 0; s < n; s++)
		{
			cluster__adv_prov prov = { NULL, 0, 0 };
			long long k;

			if(!p.shed[s])
			{
				continue;
			}
			shedders++;
			own_rows(&p, n, s, own);
			memset(got, 0, sizeof(got));
			for(k = 0; k < p.shed[s]; k++)
			{
				assert_int_equal(cluster__adv_pick(v, n, s, &c, &prov, 1000, &prng, &at), 0);
				got[at]++;
				assert_true(got[at] <= own[at]);
			}
			for(i = 0; i < n; i++)
			{
				assert_int_equal(got[i], own[i]);
			}
			/* rows exhausted: room below a share, when there is any */
			if(room_below_share(v, n, &p, got, room) > 0)
			{
				assert_int_equal(cluster__adv_pick(v, n, s, &c, &prov, 1000, &prng, &at), 0);
				assert_true(room[at] > 0);
			}
			cluster__adv_prov_free(&prov);
		}
		cluster__adv_plan_free(&p);
	}
	assert_true(shedders > 1000);
}

/* Every shedder of one snapshot answers each of its redirected clients
 * with its own pick, in an interleaved order: the picks land exactly on
 * the plan, so nobody crosses its share. */
static void
test_pick_all_shedders_no_overshoot(void **state)
{
	uint64_t rng = 21, prng = 22;
	int t, moved = 0;

	(void) state;
	for(t = 0; t < 500; t++)
	{
		CLUSTERADVISORCONFIG c;
		cluster__adv_node v[MAXN];
		cluster__adv_plan p;
		cluster__adv_prov prov[MAXN];
		long long left[MAXN], after[MAXN], got[MAXN], pending = 0;
		size_t n = random_cluster(&rng, v, &c), i, at;

		memset(prov, 0, sizeof(prov));
		memset(got, 0, sizeof(got));
		assert_int_equal(cluster__adv_plan_compute(&p, v, n, &c), 0);
		for(i = 0; i < n; i++)
		{
			left[i] = p.shed[i];
			after[i] = v[i].load;
			pending += left[i];
		}
		while(pending > 0)
		{
			/* a random shedder with clients left to place */
			size_t s = cluster__adv_random_below(&prng, n);

			if(!left[s])
			{
				continue;
			}
			assert_int_equal(cluster__adv_pick(v, n, s, &c, &prov[s], 1000, &prng, &at), 0);
			left[s]--;
			pending--;
			after[s]--;
			after[at]++;
			got[at]++;
			moved++;
		}
		for(i = 0; i < n; i++)
		{
			assert_int_equal(got[i], p.inflow[i]);
			if(p.role[i] == CLUSTER__ADV_OUT)
			{
				continue;
			}
			if(p.gap[i] >= 0)
			{
				assert_true(after[i] >= p.share[i]);
			}
			else
			{
				assert_true(after[i] <= p.share[i]);
			}
			cluster__adv_prov_free(&prov[i]);
		}
		cluster__adv_plan_free(&p);
	}
	assert_true(moved > 100000);
}

/* A caller without rows (a new client's pick: not a member, or a member
 * the plan does not move) takes room below a share whenever any is left,
 * and many independent callers do not crowd one target: ten instances
 * making 100 picks each from one snapshot whose deficits sum to 1000. */
static void
test_pick_callers_without_rows(void **state)
{
	CLUSTERADVISORCONFIG c;
	cluster__adv_node v[MAXN];
	cluster__adv_plan p;
	long long got[MAXN], deficit[MAXN];
	uint64_t rng = 31, prng = 32;
	double worst = 0;
	size_t at, n, i;
	int t, k, inst;

	(void) state;
	cluster_advisor_config_init(&c);
	for(t = 0; t < 300; t++)
	{
		n = random_cluster(&rng, v, &c);
		assert_int_equal(cluster__adv_plan_compute(&p, v, n, &c), 0);
		for(i = 0; i <= n; i++)
		{
			size_t self = i == n ? CLUSTER__ADV_NO_SELF : i;
			cluster__adv_prov prov = { NULL, 0, 0 };

			if(self != CLUSTER__ADV_NO_SELF && p.shed[self])
			{
				continue;
			}
			memset(got, 0, sizeof(got));
			for(k = 0; k < 50; k++)
			{
				long long room = 0;
				size_t j;
				int r;

				for(j = 0; j < n; j++)
				{
					long long left = p.share[j] - v[j].load - got[j] * servers(v, n);

					if(p.role[j] == CLUSTER__ADV_MEMBER && left > 0 && (v[j].capacity < 0 || v[j].load + got[j] < v[j].capacity))
					{
						room += left;
					}
				}
				r = cluster__adv_pick(v, n, self, &c, &prov, 0, &prng, &at);
				if(r == ENOENT)
				{
					break;
				}
				assert_int_equal(r, 0);
				if(room > 0)
				{
					/* never a member at or above its share while room is left */
					assert_true(p.share[at] - v[at].load - got[at] * servers(v, n) > 0);
				}
				got[at]++;
			}
			cluster__adv_prov_free(&prov);
		}
		cluster__adv_plan_free(&p);
	}
	/* the herd case: one snapshot, ten members with 100 of room each and
	 * ten without. Twenty callers without rows (as many as the view has
	 * members) pick 50 each, interleaved: each
	 * claims its twentieth of each room, so the rooms fill exactly. With
	 * each caller counting its own picks once, every caller would see
	 * the whole room: the picks would land in proportion, binomially (the
	 * worst member about 1.2x its deficit), and pickers arriving later in
	 * the report interval would find it all still open. */
	n = 20;
	for(i = 0; i < n; i++)
	{
		node(&v[i], (int) i, i < 10 ? 1100 : 1000 - 100, -1);
	}
	assert_int_equal(cluster__adv_plan_compute(&p, v, n, &c), 0);
	for(i = 0; i < n; i++)
	{
		deficit[i] = p.share[i] - v[i].load;
		assert_int_equal(deficit[i], i < 10 ? -100 : 100);
	}
	{
		cluster__adv_prov provs[20];

		memset(provs, 0, sizeof(provs));
		memset(got, 0, sizeof(got));
		for(k = 0; k < 50; k++)
		{
			for(inst = 0; inst < 20; inst++)
			{
				assert_int_equal(cluster__adv_pick(v, n, CLUSTER__ADV_NO_SELF, &c, &provs[inst], 0, &prng, &at), 0);
				got[at]++;
			}
		}
		for(i = 0; i < n; i++)
		{
			assert_int_equal(got[i], deficit[i] > 0 ? deficit[i] : 0);
			cluster__adv_prov_free(&provs[i]);
		}
	}
	/* fewer pickers than the view has members (ten callers, 100 picks
	 * each): each claims its part of the rooms, the rest goes to two
	 * random choices, which weigh the claimed part in too; judged on the
	 * mean of twenty repetitions of the worst member */
	for(t = 0; t < 20; t++)
	{
		double w1 = 0;

		memset(got, 0, sizeof(got));
		for(inst = 0; inst < 10; inst++)
		{
			cluster__adv_prov prov = { NULL, 0, 0 };

			for(k = 0; k < 100; k++)
			{
				assert_int_equal(cluster__adv_pick(v, n, CLUSTER__ADV_NO_SELF, &c, &prov, 0, &prng, &at), 0);
				got[at]++;
			}
			cluster__adv_prov_free(&prov);
		}
		for(i = 0; i < n; i++)
		{
			if(deficit[i] > 0)
			{
				double ratio = (double) got[i] / (double) deficit[i];

				w1 = ratio > w1 ? ratio : w1;
			}
		}
		worst += w1 / 20;
	}
	print_message("ten independent callers, twenty members: the worst member got %.3fx its deficit (mean of 20 runs)\n", worst);
	/* A herd (every caller on the emptiest member) scores 10. */
	assert_true(worst < 1.2);
	cluster__adv_plan_free(&p);
}

static void
test_pick_deterministic(void **state)
{
	uint64_t rng = 41;
	int t, k;

	(void) state;
	for(t = 0; t < 50; t++)
	{
		CLUSTERADVISORCONFIG c;
		cluster__adv_node v[MAXN];
		cluster__adv_plan p;
		size_t n = random_cluster(&rng, v, &c), self = CLUSTER__ADV_NO_SELF, i;
		cluster__adv_prov pa = { NULL, 0, 0 }, pb = { NULL, 0, 0 };
		uint64_t ra = rng, rb = rng;

		assert_int_equal(cluster__adv_plan_compute(&p, v, n, &c), 0);
		for(i = 0; i < n && t % 2; i++)
		{
			if(p.shed[i])
			{
				self = i;
				break;
			}
		}
		cluster__adv_plan_free(&p);
		for(k = 0; k < 200; k++)
		{
			size_t a = 0, b = 1;
			int x = cluster__adv_pick(v, n, self, &c, &pa, 0, &ra, &a), y = cluster__adv_pick(v, n, self, &c, &pb, 0, &rb, &b);

			assert_int_equal(x, y);
			if(x)
			{
				break;
			}
			assert_int_equal(a, b);
		}
		assert_true(ra == rb);
		assert_int_equal(pa.count, pb.count);
		for(i = 0; i < pa.count; i++)
		{
			assert_string_equal(pa.entries[i].id, pb.entries[i].id);
			assert_int_equal(pa.entries[i].count, pb.entries[i].count);
		}
		cluster__adv_prov_free(&pa);
		cluster__adv_prov_free(&pb);
	}
}

/* Mostly established members (0), some in their hold-down, some in
 * their slow start (with the default windows: 10 s, 30 s), some past it. */
static int64_t
random_since_join(uint64_t *rng)
{
	switch(cluster__adv_random_below(rng, 8))
	{
	case 0: return 1 + (int64_t) cluster__adv_random_below(rng, 10000);
	case 1:
	case 2: return 10000 + (int64_t) cluster__adv_random_below(rng, 30000);
	case 3: return 40000 + (int64_t) cluster__adv_random_below(rng, 1000);
	default: return 0;
	}
}

/* The default windows, now and then one of them off. */
static void
random_ramp_config(uint64_t *rng, CLUSTERADVISORCONFIG *c)
{
	switch(cluster__adv_random_below(rng, 6))
	{
	case 0: c->hold_down_ms = 0; break;
	case 1: c->slow_start_ms = 0; break;
	default: break;
	}
}

/*
 * The picker built once per snapshot (advisor-picker.c) against
 * cluster__adv_pick() computing everything per pick: on random clusters
 * with tight capacities, members going stale and provisional picks
 * expiring while time passes, both must make the same picks, the same
 * ENOENTs and the same random draws, pick after pick; the picker is
 * rebuilt now and then from its own provisional table, as a cache is
 * rebuilt with the same view.
 */
static void
test_picker_matches_pick(void **state)
{
	static const int intervals[] = { 10, 20, 50, 1000 };
	static const int stales[] = { 0, 40, 150, 500 };
	uint64_t rng = 4242;
	int t, k, picks = 0, enoent = 0;

	(void) state;
	for(t = 0; t < 300; t++)
	{
		CLUSTERADVISORCONFIG c;
		cluster__adv_node v[MAXN];
		cluster__adv_plan p;
		cluster__adv_picker pk;
		size_t n = t % 25 == 0 ? (size_t) (t % 50 == 0) : random_cluster(&rng, v, &c), self = CLUSTER__ADV_NO_SELF, i;
		cluster__adv_prov pa = { NULL, 0, 0 }, pb = { NULL, 0, 0 };
		uint64_t ra, rb;
		int64_t now = 600;

		if(n <= 1)
		{
			/* n = 0, and a lone member */
			cluster_advisor_config_init(&c);
			node(&v[0], 0, 5, -1);
		}
		c.report_interval_ms = intervals[cluster__adv_random_below(&rng, 4)];
		c.stale_ms = stales[cluster__adv_random_below(&rng, 4)];
		for(i = 0; i < n; i++)
		{
			uint64_t kind = cluster__adv_random_below(&rng, 8);

			v[i].received_ms = kind == 0 ? 0 : 1 + (int64_t) cluster__adv_random_below(&rng, 600);
			if(kind == 1 && v[i].capacity > 0)
			{
				v[i].capacity = v[i].load + (long long) cluster__adv_random_below(&rng, 3); /* nearly full */
			}
			v[i].mod_revision = 1 + (int64_t) cluster__adv_random_below(&rng, 3);
			v[i].since_join_ms = random_since_join(&rng);
		}
		random_ramp_config(&rng, &c);
		assert_int_equal(cluster__adv_plan_compute(&p, v, n, &c), 0);
		for(i = 0; i < n && t % 3; i++)
		{
			if(p.shed[i] || (t % 3 == 2 && p.role[i] == CLUSTER__ADV_MEMBER))
			{
				self = i;
				break;
			}
		}
		cluster__adv_plan_free(&p);
		ra = rb = rng;
		assert_int_equal(cluster__adv_picker_build(&pk, v, n, self, &c, &pb, now), 0);
		for(k = 0; k < 400; k++)
		{
			size_t a = 0, b = 1;
			int x, y;

			now += (int64_t) cluster__adv_random_below(&rng, 12);
			for(i = 0; i < n; i++)
			{
				v[i].age_ms = v[i].received_ms ? now - v[i].received_ms : 0;
			}
			if(k % 97 == 96)
			{
				cluster__adv_picker_sync(&pk, &pb);
				cluster__adv_picker_free(&pk);
				assert_int_equal(cluster__adv_picker_build(&pk, v, n, self, &c, &pb, now), 0);
			}
			x = cluster__adv_pick(v, n, self, &c, &pa, now, &ra, &a);
			y = cluster__adv_picker_pick(&pk, &pb, now, &rb, &b);
			if(x != y || (!x && a != b) || ra != rb)
			{
				fail_msg("cluster %d (n %zu, self %zu), pick %d at %lld: pick %d -> %zu, picker %d -> %zu", t, n, self, k, (long long) now, x, a, y, b);
			}
			picks += !x;
			enoent += x == ENOENT;
		}
		/* the same provisional load per target, once synced */
		cluster__adv_picker_sync(&pk, &pb);
		for(i = 0; i < pa.count + pb.count; i++)
		{
			const cluster__adv_prov_entry *e = i < pa.count ? &pa.entries[i] : &pb.entries[i - pa.count];
			const cluster__adv_prov *other = i < pa.count ? &pb : &pa;
			long long mine = e->expires_ms > now ? e->count : 0, theirs = 0;
			size_t j;

			for(j = 0; j < other->count; j++)
			{
				if(!strcmp(other->entries[j].id, e->id) && other->entries[j].expires_ms > now)
				{
					theirs += other->entries[j].count;
				}
			}
			assert_int_equal(mine, theirs);
		}
		cluster__adv_picker_free(&pk);
		cluster__adv_prov_free(&pa);
		cluster__adv_prov_free(&pb);
	}
	/* both outcomes were exercised */
	assert_true(picks > 10000);
	assert_true(enoent > 1000);
}

/* The same side by side on larger clusters (the picker's sum trees get
 * three and four levels), with a shedder and a caller without rows,
 * through every tier as the deficits run out. */
static void
test_picker_matches_pick_large(void **state)
{
	static const size_t sizes[] = { 65, 513, 600, 1500 };
	uint64_t rng = 777;
	size_t z;

	(void) state;
	for(z = 0; z < sizeof(sizes) / sizeof(sizes[0]) * 2; z++)
	{
		size_t n = sizes[z / 2], self = CLUSTER__ADV_NO_SELF, i;
		cluster__adv_node *v = calloc(n, sizeof(*v));
		char(*names)[16] = calloc(n, sizeof(*names));
		CLUSTERADVISORCONFIG c;
		cluster__adv_plan p;
		cluster__adv_picker pk;
		cluster__adv_prov pa = { NULL, 0, 0 }, pb = { NULL, 0, 0 };
		uint64_t ra, rb;
		int64_t now = 600;
		int k;

		assert_non_null(v);
		assert_non_null(names);
		cluster_advisor_config_init(&c);
		c.report_interval_ms = 20;
		c.stale_ms = 400;
		for(i = 0; i < n; i++)
		{
			uint64_t kind = cluster__adv_random_below(&rng, 10);

			snprintf(names[i], sizeof(names[i]), "x%05u", (unsigned) (i % 100000));
			memset(&v[i], 0, sizeof(v[i]));
			v[i].id = names[i];
			v[i].workers = 1;
			v[i].has_status = kind != 9;
			v[i].load = (long long) cluster__adv_random_below(&rng, 60);
			v[i].capacity = kind < 6 ? -1 : kind == 6 ? 0 :
														v[i].load + (long long) cluster__adv_random_below(&rng, 4);
			v[i].mod_revision = 1;
			v[i].received_ms = 1 + (int64_t) cluster__adv_random_below(&rng, 600);
			v[i].since_join_ms = random_since_join(&rng);
		}
		assert_int_equal(cluster__adv_plan_compute(&p, v, n, &c), 0);
		for(i = 0; i < n && z % 2; i++)
		{
			if(p.shed[i])
			{
				self = i;
				break;
			}
		}
		cluster__adv_plan_free(&p);
		ra = rb = rng;
		assert_int_equal(cluster__adv_picker_build(&pk, v, n, self, &c, &pb, now), 0);
		for(k = 0; k < 600; k++)
		{
			size_t a = 0, b = 1;
			int x, y;

			now += (int64_t) cluster__adv_random_below(&rng, 3);
			for(i = 0; i < n; i++)
			{
				v[i].age_ms = now - v[i].received_ms;
			}
			x = cluster__adv_pick(v, n, self, &c, &pa, now, &ra, &a);
			y = cluster__adv_picker_pick(&pk, &pb, now, &rb, &b);
			if(x != y || (!x && a != b) || ra != rb)
			{
				fail_msg("n %zu (self %zu), pick %d at %lld: pick %d -> %zu, picker %d -> %zu", n, self, k, (long long) now, x, a, y, b);
			}
		}
		cluster__adv_picker_free(&pk);
		cluster__adv_prov_free(&pa);
		cluster__adv_prov_free(&pb);
		free(v);
		free(names);
	}
}

/* ------------------------------------------------------------------ */
/* exact 128-bit arithmetic                                             */
/* ------------------------------------------------------------------ */

#ifdef __SIZEOF_INT128__
/* The reference, in the test only: the advisor itself never uses it. */
__extension__ typedef unsigned __int128 ref128;

static ref128
ref_of(cluster__adv_u128 x)
{
	return ((ref128) x.hi << 64) | x.lo;
}
#endif

static cluster__adv_u128
u128_make(uint64_t hi, uint64_t lo)
{
	cluster__adv_u128 r;

	r.hi = hi;
	r.lo = lo;
	return r;
}

static void
assert_u128(cluster__adv_u128 x, uint64_t hi, uint64_t lo)
{
	assert_true(x.hi == hi);
	assert_true(x.lo == lo);
}

/* Edge values: powers of two and their neighbours at the digit and word
 * boundaries, the value limit, and the signed and unsigned maxima. */
static const uint64_t edges[] = {
	0,
	1,
	2,
	3,
	0xffffffffULL,
	0x100000000ULL,
	0x100000001ULL,
	(1ULL << 40) - 1,
	1ULL << 40,
	(1ULL << 40) + 1,
	0x7fffffffffffffffULL,
	0x8000000000000000ULL,
	0x8000000000000001ULL,
	0xfffffffe00000001ULL,
	0xffffffff00000000ULL,
	0xfffffffffffffffeULL,
	0xffffffffffffffffULL,
};
#define NEDGES (sizeof(edges) / sizeof(edges[0]))

/* A random value of random bit length, so short and long operands (and
 * every normalisation shift in the division) come up equally often. */
static uint64_t
rand_bits(uint64_t *rng)
{
	uint64_t x = cluster__adv_random(rng);
	unsigned shift = (unsigned) cluster__adv_random_below(rng, 64);

	if(!cluster__adv_random_below(rng, 8))
	{
		return edges[cluster__adv_random_below(rng, NEDGES)];
	}
	return x >> shift;
}

/* a x b checked against the reference (and, everywhere, its low half
 * against plain 64-bit multiplication). */
static void
check_mul(uint64_t a, uint64_t b)
{
	cluster__adv_u128 p = cluster__adv_u128_mul(a, b);

	assert_true(p.lo == a * b);
#ifdef __SIZEOF_INT128__
	assert_true(ref_of(p) == (ref128) a * b);
#endif
}

/* One division checked two ways: num = q x den + rem with rem < den,
 * computed with the helpers (on every platform), and q and rem against
 * unsigned __int128 division, which rounds down: the advisor's old path. */
static void
check_divmod(cluster__adv_u128 num, cluster__adv_u128 den)
{
	cluster__adv_u128 q, r, back;

	q = cluster__adv_u128_divmod(num, den, &r);
	assert_true(cluster__adv_u128_cmp(r, den) < 0);
	assert_true(!q.hi || !den.hi);
	back = cluster__adv_u128_scale(den, q.lo);
	back.hi += q.hi * den.lo;
	back = cluster__adv_u128_add(back, r.lo);
	back.hi += r.hi;
	assert_int_equal(cluster__adv_u128_cmp(back, num), 0);
#ifdef __SIZEOF_INT128__
	assert_true(ref_of(q) == ref_of(num) / ref_of(den));
	assert_true(ref_of(r) == ref_of(num) % ref_of(den));
#endif
}

/* The advisor's a x b / c: total x weight / sum of weights. */
static void
check_muldiv(uint64_t a, uint64_t b, cluster__adv_u128 c)
{
	if(c.hi || c.lo)
	{
		check_divmod(cluster__adv_u128_mul(a, b), c);
	}
}

static void
test_u128(void **state)
{
	const uint64_t max = 0xffffffffffffffffULL;
	cluster__adv_u128 q, r, x;
	uint64_t rng = 11;
	size_t i, j, k;
	int t;

	(void) state;
	/* known values, checked on every platform */
	assert_u128(cluster__adv_u128_mul(max, max), max - 1, 1);
	assert_u128(cluster__adv_u128_mul(0x7fffffffffffffffULL, 0x7fffffffffffffffULL), 0x3fffffffffffffffULL, 1);
	assert_u128(cluster__adv_u128_mul(1ULL << 40, 1ULL << 40), 1ULL << 16, 0);
	assert_u128(cluster__adv_u128_add(u128_make(0, max), 1), 1, 0);
	assert_u128(cluster__adv_u128_add(u128_make(max, max), 1), 0, 0);
	assert_u128(cluster__adv_u128_scale(u128_make(1, 1), 3), 3, 3);
	assert_int_equal(cluster__adv_u128_cmp(u128_make(1, 0), u128_make(0, max)), 1);
	assert_int_equal(cluster__adv_u128_cmp(u128_make(0, 5), u128_make(0, 6)), -1);
	assert_int_equal(cluster__adv_u128_cmp(u128_make(2, 5), u128_make(2, 5)), 0);
	q = cluster__adv_u128_divmod(u128_make(max, max), u128_make(0, max), &r);
	assert_u128(q, 1, 1); /* 2^128 - 1 = (2^64 + 1)(2^64 - 1) */
	assert_u128(r, 0, 0);
	q = cluster__adv_u128_divmod(u128_make(max, max), u128_make(1, 0), &r);
	assert_u128(q, 0, max);
	assert_u128(r, 0, max);
	q = cluster__adv_u128_divmod(u128_make(0, 7), u128_make(0, 2), &r);
	assert_u128(q, 0, 3); /* rounds down */
	assert_u128(r, 0, 1);
	q = cluster__adv_u128_divmod(u128_make(5, 0), u128_make(5, 1), &r);
	assert_u128(q, 0, 0);
	assert_u128(r, 5, 0);
	q = cluster__adv_u128_divmod(u128_make(0, 9), u128_make(0, 0), &r);
	assert_u128(q, 0, 0); /* documented: 0, remainder num */
	assert_u128(r, 0, 9);
	assert_u128(cluster__adv_u128_divmod(u128_make(3, 4), u128_make(0, 1), NULL), 3, 4);

	/* every pair and triple of edge values */
	for(i = 0; i < NEDGES; i++)
	{
		for(j = 0; j < NEDGES; j++)
		{
			check_mul(edges[i], edges[j]);
			for(k = 0; k < NEDGES; k++)
			{
				check_muldiv(edges[i], edges[j], u128_make(0, edges[k]));
				check_divmod(u128_make(edges[i], edges[j]), u128_make(0, edges[k] ? edges[k] : 1));
				check_divmod(u128_make(edges[i], edges[j]), u128_make(edges[k] ? edges[k] : 1, edges[j]));
				check_divmod(u128_make(edges[i], edges[j]), u128_make(edges[k] >> 1, edges[i] | 1));
			}
		}
	}
	/* random operands of random lengths */
	for(t = 0; t < 400000; t++)
	{
		uint64_t a = rand_bits(&rng), b = rand_bits(&rng);
		cluster__adv_u128 den = u128_make(cluster__adv_random_below(&rng, 2) ? 0 : rand_bits(&rng), rand_bits(&rng));

		check_mul(a, b);
		check_muldiv(a, b, den);
		check_divmod(u128_make(rand_bits(&rng), rand_bits(&rng)), den.hi || den.lo ? den : u128_make(0, 1));
		/* the advisor's shape: a part of a weight sum, numerator a multiple
		 * of the divisor give or take one (the remainder-order edge) */
		x = cluster__adv_u128_scale(den, a);
		if(den.hi || den.lo)
		{
			check_divmod(x, den);
			check_divmod(cluster__adv_u128_add(x, 1), den);
			if(x.hi || x.lo)
			{
				check_divmod(u128_make(x.hi - !x.lo, x.lo - 1), den);
			}
		}
	}
}

static void
test_config_and_random(void **state)
{
	CLUSTERADVISORCONFIG c;
	const char *field = NULL, *rule = NULL;
	uint64_t rng = 3;
	int i;

	(void) state;
	cluster_advisor_config_init(&c);
	assert_int_equal(cluster__adv_config_check(&c, &field, &rule), 0);
	assert_int_equal(cluster__adv_round_budget(&c, 10), 2500);
	/* 1000 members at 20 status writes/s: statuses every 50 s, rounds
	 * every 100 s rounded up on the ladder (106.5 s), the same with a
	 * member more or less, so that churn does not move the boundaries */
	assert_int_equal(cluster__adv_round_interval(&c, 1000), 106496);
	assert_int_equal(cluster__adv_round_interval(&c, 999), 106496);
	assert_int_equal(cluster__adv_round_interval(&c, 1001), 106496);
	assert_int_equal(cluster__adv_round_budget(&c, 1000), 53248);
	/* not stretched: the configured interval, off the ladder */
	assert_int_equal(cluster__adv_round_interval(&c, 10), c.advice_interval_ms > 2000 ? c.advice_interval_ms : 2000);
	c.shed_fraction = 0;
	assert_int_equal(cluster__adv_config_check(&c, &field, &rule), EINVAL);
	assert_string_equal(field, "shed_fraction");
	cluster_advisor_config_init(&c);
	c.step_max = 5;
	c.step_min = 6;
	assert_int_equal(cluster__adv_config_check(&c, &field, &rule), EINVAL);
	assert_string_equal(field, "step_min");
	cluster_advisor_config_init(&c);
	c.jitter = 0.9;
	assert_int_equal(cluster__adv_config_check(&c, &field, &rule), EINVAL);
	assert_string_equal(field, "jitter");
	for(i = 0; i < 10000; i++)
	{
		int64_t d = cluster__adv_jittered(5000, 0.1, &rng);

		assert_true(d >= 4500 && d <= 5500);
		assert_true(cluster__adv_random_below(&rng, 7) < 7);
	}
}

/* ------------------------------------------------------------------ */
/* hold-down and slow start                                             */
/* ------------------------------------------------------------------ */

/* The defaults with the windows these tests were written for (10 s
 * hold-down, 30 s slow start), whatever the defaults become. */
static CLUSTERADVISORCONFIG
windows(void)
{
	CLUSTERADVISORCONFIG c;

	cluster_advisor_config_init(&c);
	c.hold_down_ms = 10000;
	c.slow_start_ms = 30000;
	return c;
}

static CLUSTERADVISORCONFIG
unlimited_windows(void)
{
	CLUSTERADVISORCONFIG c = windows();

	c.budget_per_second = 0;
	return c;
}

/* The ramp of a (re)joined member: hold-down boundary, first and last
 * step of the slow start, either or both windows off, an older
 * configuration, and when the next step comes. */
static void
test_ramp(void **state)
{
	CLUSTERADVISORCONFIG c;
	int64_t t;
	int seen[CLUSTER__ADV_RAMP_FULL + 1] = { 0 }, prev = 0, k;

	(void) state;
	c = windows(); /* 10 s hold-down, 30 s slow start */
	assert_int_equal(cluster__adv_ramp(&c, 0), CLUSTER__ADV_RAMP_FULL);
	assert_int_equal(cluster__adv_ramp(&c, -5), CLUSTER__ADV_RAMP_FULL);
	assert_int_equal(cluster__adv_ramp(&c, 1), 0);
	assert_int_equal(cluster__adv_ramp(&c, 9999), 0);
	assert_int_equal(cluster__adv_ramp(&c, 10000), 1);  /* first step */
	assert_int_equal(cluster__adv_ramp(&c, 11999), 1);  /* 15 x 1999 / 30000 < 1 */
	assert_int_equal(cluster__adv_ramp(&c, 12000), 2);  /* 15 x 2000 / 30000 = 1 */
	assert_int_equal(cluster__adv_ramp(&c, 25000), 8);  /* half way: 1 + 7 */
	assert_int_equal(cluster__adv_ramp(&c, 37999), 14); /* 15 x 27999 / 30000 < 14 */
	assert_int_equal(cluster__adv_ramp(&c, 38000), 15); /* last step */
	assert_int_equal(cluster__adv_ramp(&c, 39999), 15);
	assert_int_equal(cluster__adv_ramp(&c, 40000), CLUSTER__ADV_RAMP_FULL);
	assert_int_equal(cluster__adv_ramp(&c, 86400000), CLUSTER__ADV_RAMP_FULL);
	/* every step once, in order, across the window */
	for(t = 1; t <= 41000; t++)
	{
		k = cluster__adv_ramp(&c, t);
		assert_true(k >= prev && k <= prev + 1);
		seen[k] = 1;
		prev = k;
	}
	for(k = 0; k <= CLUSTER__ADV_RAMP_FULL; k++)
	{
		assert_true(seen[k]);
	}
	/* hold-down off: the slow start begins at once */
	c.hold_down_ms = 0;
	assert_int_equal(cluster__adv_ramp(&c, 1), 1);
	assert_int_equal(cluster__adv_ramp(&c, 30000), CLUSTER__ADV_RAMP_FULL);
	/* slow start off: full right after the hold-down */
	c = windows();
	c.slow_start_ms = 0;
	assert_int_equal(cluster__adv_ramp(&c, 9999), 0);
	assert_int_equal(cluster__adv_ramp(&c, 10000), CLUSTER__ADV_RAMP_FULL);
	/* both off: always full */
	c.hold_down_ms = 0;
	assert_int_equal(cluster__adv_ramp(&c, 1), CLUSTER__ADV_RAMP_FULL);
	assert_int_equal(cluster__adv_ramp_next(&c, 1), -1);
	/* a version 2 structure has neither field */
	c = windows();
	c.version = 2;
	assert_int_equal(cluster__adv_ramp(&c, 1), CLUSTER__ADV_RAMP_FULL);

	/* the next change: exactly where the value changes, never before */
	c = windows();
	assert_int_equal(cluster__adv_ramp_next(&c, 0), -1);
	assert_int_equal(cluster__adv_ramp_next(&c, 1), 9999);
	assert_int_equal(cluster__adv_ramp_next(&c, 9999), 1);
	assert_int_equal(cluster__adv_ramp_next(&c, 10000), 2000);
	assert_int_equal(cluster__adv_ramp_next(&c, 39999), 1);
	assert_int_equal(cluster__adv_ramp_next(&c, 40000), -1);
	c.hold_down_ms = 7;
	c.slow_start_ms = 44; /* steps of uneven length */
	for(t = 1; t < 60; t++)
	{
		int64_t d = cluster__adv_ramp_next(&c, t);

		k = cluster__adv_ramp(&c, t);
		if(k == CLUSTER__ADV_RAMP_FULL)
		{
			assert_int_equal(d, -1);
			continue;
		}
		assert_true(d >= 1);
		assert_int_equal(cluster__adv_ramp(&c, t + d - 1), k);
		assert_int_not_equal(cluster__adv_ramp(&c, t + d), k);
	}

	/* the room below the fill level: the share, share x ramp / 16 in the
	 * slow start (ramp 0 counting as 1) */
	assert_int_equal(cluster__adv_ramp_room(100, 100, 16), 0);
	assert_int_equal(cluster__adv_ramp_room(100, 130, 4), 0);
	assert_int_equal(cluster__adv_ramp_room(100, 0, CLUSTER__ADV_RAMP_FULL), 100);
	assert_int_equal(cluster__adv_ramp_room(100, 0, 4), 25);
	assert_int_equal(cluster__adv_ramp_room(100, 10, 5), 21); /* 31.25 - 10 */
	assert_int_equal(cluster__adv_ramp_room(100, 0, 0), 6);   /* ramp 0 counts as 1 */
	assert_int_equal(cluster__adv_ramp_room(100, 97, 1), 0);  /* above its level at the first step */
	assert_int_equal(cluster__adv_ramp_room(0, 0, 3), 0);
	assert_true(cluster__adv_ramp_room(1LL << 60, 0, 15) == (1LL << 56) * 15);
}

/* Two plans are the same: roles, shares, totals and rows. */
static void
assert_same_plan(const cluster__adv_plan *a, const cluster__adv_plan *b)
{
	size_t i;

	assert_int_equal(a->n, b->n);
	assert_memory_equal(a->role, b->role, a->n * sizeof(*a->role));
	assert_memory_equal(a->share, b->share, a->n * sizeof(*a->share));
	assert_int_equal(a->total_load, b->total_load);
	assert_int_equal(a->moved, b->moved);
	assert_int_equal(a->nrows, b->nrows);
	for(i = 0; i < a->nrows; i++)
	{
		assert_int_equal(a->rows[i].from, b->rows[i].from);
		assert_int_equal(a->rows[i].to, b->rows[i].to);
		assert_int_equal(a->rows[i].count, b->rows[i].count);
	}
}

/* A member in its hold-down takes no part: role OUT, no share, no rows to
 * or from it, its load not in the total, never picked (by the pick or the
 * picker, with or without rows); once the hold-down is over it does. */
static void
test_hold_down_roles(void **state)
{
	CLUSTERADVISORCONFIG c = unlimited_windows();
	cluster__adv_node v[4], e[4];
	cluster__adv_plan p, q;
	cluster__adv_picker pk;
	signed char role[4];
	long long w[4], share[4];
	uint64_t rng = 5;
	size_t i, at, self;
	int k;

	(void) state;
	node(&v[0], 0, 900, -1);
	node(&v[1], 1, 0, -1);
	node(&v[2], 2, 0, -1);
	node(&v[3], 3, 60, -1); /* rejoined with connections already */
	v[1].since_join_ms = 1;
	v[3].since_join_ms = 9999;
	check_plan(v, 4, &c, &p);
	assert_int_equal(p.role[0], CLUSTER__ADV_MEMBER);
	assert_int_equal(p.role[1], CLUSTER__ADV_OUT);
	assert_int_equal(p.role[2], CLUSTER__ADV_MEMBER);
	assert_int_equal(p.role[3], CLUSTER__ADV_OUT);
	assert_int_equal(p.total_load, 900); /* not 960 */
	assert_int_equal(p.share[0], 450);
	assert_int_equal(p.share[2], 450);
	assert_true(p.nrows > 0);
	for(i = 0; i < p.nrows; i++)
	{
		assert_int_equal(p.rows[i].from, 0);
		assert_int_equal(p.rows[i].to, 2);
	}
	/* exactly the plan in which they have no status */
	memcpy(e, v, sizeof(e));
	e[1].has_status = 0;
	e[3].has_status = 0;
	e[1].since_join_ms = 0;
	e[3].since_join_ms = 0;
	check_plan(e, 4, &c, &q);
	assert_same_plan(&p, &q);
	cluster__adv_plan_free(&p);
	cluster__adv_plan_free(&q);
	/* the shares alone say the same with the configuration, and ignore
	 * the hold-down without one */
	assert_int_equal(cluster__adv_shares_cfg(v, 4, &c, role, w, share, NULL), 0);
	assert_int_equal(role[1], CLUSTER__ADV_OUT);
	assert_int_equal(share[1], 0);
	assert_int_equal(cluster__adv_shares(v, 4, role, w, share, NULL), 0);
	assert_int_equal(role[1], CLUSTER__ADV_MEMBER);
	assert_int_equal(share[0] + share[1] + share[2] + share[3], 960);
	/* never picked: not as a new client's target, not from a row */
	for(self = 0; self < 5; self++)
	{
		cluster__adv_prov prov = { NULL, 0, 0 }, prov2 = { NULL, 0, 0 };
		size_t me = self == 4 ? CLUSTER__ADV_NO_SELF : self;

		assert_int_equal(cluster__adv_picker_build(&pk, v, 4, me, &c, &prov2, 1000), 0);
		for(k = 0; k < 600; k++)
		{
			assert_int_equal(cluster__adv_pick(v, 4, me, &c, &prov, 1000, &rng, &at), 0);
			assert_true(at == 0 || at == 2);
			assert_int_equal(cluster__adv_picker_pick(&pk, &prov2, 1000, &rng, &at), 0);
			assert_true(at == 0 || at == 2);
		}
		cluster__adv_picker_free(&pk);
		cluster__adv_prov_free(&prov);
		cluster__adv_prov_free(&prov2);
	}
	/* the hold-down is over: it takes part (at the first step of its slow start) */
	v[1].since_join_ms = 10000;
	v[3].since_join_ms = 10000;
	check_plan(v, 4, &c, &p);
	assert_int_equal(p.role[1], CLUSTER__ADV_MEMBER);
	assert_int_equal(p.role[3], CLUSTER__ADV_MEMBER);
	assert_int_equal(p.total_load, 960);
	assert_int_equal(p.share[1], 240);
	assert_true(p.inflow[1] > 0);
	cluster__adv_plan_free(&p);
	/* hold-down off: at once */
	v[1].since_join_ms = 1;
	c.hold_down_ms = 0;
	check_plan(v, 4, &c, &p);
	assert_int_equal(p.role[1], CLUSTER__ADV_MEMBER);
	assert_true(p.inflow[1] > 0);
	cluster__adv_plan_free(&p);
	/* an established draining member takes part: the new members wait
	 * for their hold-down, and its load stays put until then */
	c = unlimited();
	for(i = 0; i < 4; i++)
	{
		v[i].since_join_ms = 0;
	}
	v[0].capacity = 0; /* established, draining */
	v[1].since_join_ms = 5;
	v[2].since_join_ms = 5;
	v[3].since_join_ms = 5;
	check_plan(v, 4, &c, &p);
	assert_int_equal(p.role[0], CLUSTER__ADV_DRAINING);
	assert_int_equal(p.role[1], CLUSTER__ADV_OUT);
	assert_int_equal(p.moved, 0);
	assert_int_equal(p.unplaceable, 900);
	cluster__adv_plan_free(&p);
	/* an established member without a status does not: nobody else is
	 * left, so the hold-down is ignored */
	v[0].has_status = 0;
	check_plan(v, 4, &c, &p);
	assert_int_equal(p.role[1], CLUSTER__ADV_MEMBER);
	assert_int_equal(p.role[3], CLUSTER__ADV_MEMBER);
	cluster__adv_plan_free(&p);
}

/* Everyone just joined (a cluster starting up): the hold-down would
 * leave nobody, so it is ignored for everyone, and the plan and the
 * picks are those of an established cluster. */
static void
test_hold_down_all_new(void **state)
{
	CLUSTERADVISORCONFIG c = unlimited_windows();
	cluster__adv_node v[3], e[3];
	cluster__adv_plan p, q;
	cluster__adv_prov prov = { NULL, 0, 0 };
	uint64_t rng = 9;
	long long got[3] = { 0, 0, 0 };
	size_t i, at;
	int k;

	(void) state;
	node(&v[0], 0, 600, -1);
	node(&v[1], 1, 0, -1);
	node(&v[2], 2, 0, -1);
	v[2].passive = 1; /* passive: no part, held down or not */
	memcpy(e, v, sizeof(e));
	for(i = 0; i < 3; i++)
	{
		v[i].since_join_ms = 100 + (int64_t) i;
	}
	check_plan(v, 3, &c, &p);
	check_plan(e, 3, &c, &q);
	assert_int_equal(p.role[0], CLUSTER__ADV_MEMBER);
	assert_int_equal(p.role[1], CLUSTER__ADV_MEMBER);
	assert_int_equal(p.role[2], CLUSTER__ADV_OUT);
	assert_int_equal(p.total_load, 600);
	assert_int_equal(p.share[1], 300);
	assert_true(p.nrows > 0);
	assert_int_equal(p.rows[0].to, 1);
	assert_same_plan(&p, &q);
	cluster__adv_plan_free(&p);
	cluster__adv_plan_free(&q);
	/* and the pick takes the new member (ramp 0 counts as the first step) */
	for(k = 0; k < 100; k++)
	{
		assert_int_equal(cluster__adv_pick(v, 3, CLUSTER__ADV_NO_SELF, &c, &prov, 0, &rng, &at), 0);
		got[at]++;
	}
	assert_int_equal(got[1], 100);
	cluster__adv_prov_free(&prov);
}

/* Slow start weighs the room below a share: of two candidates with the
 * same room, one at ramp 4/16 gets about one pick in five (1:4), from the
 * pick and from the picker alike; a weight that rounds to 0 is 1, so a
 * ramping member with a little room is still preferred to the two
 * random choices. Tier 1 (own rows) is not scaled. */
static void
test_slow_start_pick(void **state)
{
	CLUSTERADVISORCONFIG c;
	cluster__adv_node v[10];
	cluster__adv_plan p;
	cluster__adv_picker pk;
	cluster__adv_prov prov = { NULL, 0, 0 }, prov2 = { NULL, 0, 0 };
	long long got[3] = { 0, 0, 0 }, got2[3] = { 0, 0, 0 }, own[10];
	uint64_t rng = 17, rng2 = 18;
	size_t at, i;
	int k;

	(void) state;
	c = windows(); /* 10 s hold-down, 30 s slow start */
	node(&v[0], 0, 3000000, -1);
	node(&v[1], 1, 0, -1);
	node(&v[2], 2, 0, -1);
	v[2].since_join_ms = 17000; /* 7 s into the slow start: 1 + 15 x 7 / 30 = 4 */
	assert_int_equal(cluster__adv_ramp(&c, v[2].since_join_ms), 4);
	assert_int_equal(cluster__adv_picker_build(&pk, v, 3, CLUSTER__ADV_NO_SELF, &c, &prov2, 0), 0);
	for(k = 0; k < 20000; k++)
	{
		assert_int_equal(cluster__adv_pick(v, 3, CLUSTER__ADV_NO_SELF, &c, &prov, 0, &rng, &at), 0);
		got[at]++;
		assert_int_equal(cluster__adv_picker_pick(&pk, &prov2, 0, &rng2, &at), 0);
		got2[at]++;
	}
	cluster__adv_picker_free(&pk);
	cluster__adv_prov_free(&prov);
	cluster__adv_prov_free(&prov2);
	print_message("slow start at 4/16: %lld and %lld picks (pick), %lld and %lld (picker)\n", got[1], got[2], got2[1], got2[2]);
	/* expected 20000 x 1/5 = 4000, standard deviation about 57; 1:1 gives 10000 */
	assert_int_equal(got[0], 0);
	assert_in_range(got[2], 3700, 4300);
	assert_in_range(got2[2], 3700, 4300);
	/* full weight once the slow start is over: about 1:1 */
	v[2].since_join_ms = 40000;
	memset(got, 0, sizeof(got));
	for(k = 0; k < 2000; k++)
	{
		assert_int_equal(cluster__adv_pick(v, 3, CLUSTER__ADV_NO_SELF, &c, &prov, 0, &rng, &at), 0);
		got[at]++;
	}
	cluster__adv_prov_free(&prov);
	assert_in_range(got[2], 850, 1150);

	/* it is the fill level that ramps, not only the weight: at the first
	 * step a member holding 97 of its share of 100 is above its level
	 * (6) and takes nothing while another has room (scaling its weight
	 * would still give it one pick in six here; the first pick is the
	 * one tier 2 decides: a caller claims a tenth of a room of 5, rounded
	 * up) */
	for(i = 0; i < 10; i++)
	{
		node(&v[i], (int) i, 100, -1);
	}
	v[0].load = 108;
	v[5].load = 95;
	v[9].load = 97;
	v[9].since_join_ms = 10000; /* the first step */
	assert_int_equal(cluster__adv_pick(v, 10, CLUSTER__ADV_NO_SELF, &c, &prov, 0, &rng, &at), 0);
	assert_int_equal(at, 5);
	cluster__adv_prov_free(&prov);

	/* the plan fills a member in its slow start as far as its ramp (1/16
	 * of its room at the first step), and tier 1 is the plan's: a
	 * shedder's picks follow its rows exactly */
	node(&v[0], 0, 900, -1);
	node(&v[1], 1, 0, -1);
	node(&v[2], 2, 0, -1);
	v[2].since_join_ms = 10000; /* ramp 1 */
	c.budget_per_second = 0;
	assert_int_equal(cluster__adv_plan_compute(&p, v, 3, &c), 0);
	own_rows(&p, 3, 0, own);
	assert_true(own[1] > 250);
	assert_true(own[2] > 0 && own[2] <= 300 / 16 + 1);
	memset(got, 0, sizeof(got));
	for(k = 0; k < own[1] + own[2]; k++)
	{
		assert_int_equal(cluster__adv_pick(v, 3, 0, &c, &prov, 0, &rng, &at), 0);
		got[at]++;
	}
	assert_int_equal(got[1], own[1]);
	assert_int_equal(got[2], own[2]);
	cluster__adv_prov_free(&prov);
	cluster__adv_plan_free(&p);
}

/* Who the pick assumes is picking: the members that publish a usable
 * status (not workers without one, not a garbled status, not the ghost),
 * at least 1; or the configured number. And a picker's own picks count
 * that many times, saturating. */
static void
test_pickers(void **state)
{
	CLUSTERADVISORCONFIG c;
	cluster__adv_node v[8];
	int i;

	(void) state;
	cluster_advisor_config_init(&c);
	for(i = 0; i < 7; i++)
	{
		node(&v[i], i, 100, -1);
	}
	v[1].has_status = 0; /* a worker */
	v[2].has_status = 0;
	v[3].load = -5; /* garbage: no usable status */
	node(&v[7], 7, 300, 0);
	v[7].id = CLUSTER__ADV_GHOST_ID;
	assert_int_equal(cluster__adv_pickers(&c, v, 8), 4);
	assert_int_equal(cluster__adv_pickers(&c, v, 7), 4);
	assert_int_equal(cluster__adv_pickers(&c, v, 1), 1);
	assert_int_equal(cluster__adv_pickers(&c, v + 1, 2), 1); /* nobody: 1 */
	c.pickers = 2;
	assert_int_equal(cluster__adv_pickers(&c, v, 8), 2);
	c.version = 3; /* no such field yet */
	assert_int_equal(cluster__adv_pickers(&c, v, 8), 4);
	assert_int_equal(cluster__adv_prov_seen(7, 3), 21);
	assert_int_equal(cluster__adv_prov_seen(0, 3), 0);
	assert_int_equal(cluster__adv_prov_seen(7, 0), 7);
	assert_int_equal(cluster__adv_prov_seen(1LL << 30, 1000000), CLUSTER__ADV_VALUE_MAX);
}

/* The check refuses c, naming field. */
static void
refused(const CLUSTERADVISORCONFIG *c, const char *name)
{
	const char *field = NULL, *rule = NULL;

	assert_int_equal(cluster__adv_config_check(c, &field, &rule), EINVAL);
	assert_string_equal(field, name);
}

/* The pure configuration check names the new fields, and reads them only
 * from a structure of their version. */
static void
test_ramp_config(void **state)
{
	CLUSTERADVISORCONFIG c;
	const char *field = NULL, *rule = NULL;

	(void) state;
	cluster_advisor_config_init(&c);
	assert_int_equal(c.version, 4);
	assert_int_equal(c.pickers, 0);
	assert_int_equal(c.hold_down_ms, 15000);
	assert_int_equal(c.slow_start_ms, 30000);
	c.hold_down_ms = 3600000;
	c.slow_start_ms = 3600000;
	assert_int_equal(cluster__adv_config_check(&c, &field, &rule), 0);
	c.hold_down_ms = 3600001;
	refused(&c, "hold_down_ms");
	c.hold_down_ms = -1;
	refused(&c, "hold_down_ms");
	c.hold_down_ms = 0;
	c.slow_start_ms = -1;
	refused(&c, "slow_start_ms");
	c.slow_start_ms = 3600001;
	refused(&c, "slow_start_ms");
	c.slow_start_ms = 0;
	c.pickers = 1000000;
	assert_int_equal(cluster__adv_config_check(&c, &field, &rule), 0);
	c.pickers = 1000001;
	refused(&c, "pickers");
	c.pickers = -1;
	refused(&c, "pickers");
	c.version = 3; /* not part of a version 3 structure */
	assert_int_equal(cluster__adv_config_check(&c, &field, &rule), 0);
	c.slow_start_ms = -1;
	c.version = 2; /* nor these of a version 2 one */
	assert_int_equal(cluster__adv_config_check(&c, &field, &rule), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shares),
		cmocka_unit_test(test_hysteresis),
		cmocka_unit_test(test_fill_empty),
		cmocka_unit_test(test_draining),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_no_stranding),
		cmocka_unit_test(test_exhaustive),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_pick_spread),
		cmocka_unit_test(test_pick_exclusions),
		cmocka_unit_test(test_pick_own_rows),
		cmocka_unit_test(test_pick_all_shedders_no_overshoot),
		cmocka_unit_test(test_pick_callers_without_rows),
		cmocka_unit_test(test_pick_deterministic),
		cmocka_unit_test(test_picker_matches_pick),
		cmocka_unit_test(test_picker_matches_pick_large),
		cmocka_unit_test(test_config_and_random),
		cmocka_unit_test(test_ramp),
		cmocka_unit_test(test_ramp_config),
		cmocka_unit_test(test_pickers),
		cmocka_unit_test(test_hold_down_roles),
		cmocka_unit_test(test_hold_down_all_new),
		cmocka_unit_test(test_slow_start_pick),
		cmocka_unit_test(test_u128),
	};

	make_ids();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
