/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Deterministic connection-advisor simulator. A fake clock advances one
 * advice round at a time; every member computes the global plan from the
 * same snapshot with the library's own pure code (advisor.c) and acts on
 * its own rows. Clients either reconnect where advised or ask the
 * herd-safe pick (each redirecting member with its own provisional
 * table, passing itself as the picking member, so its picks follow its
 * own plan rows). The two seed balancers are re-implemented from their
 * documented behaviour (cluster-balancer: every above-mean member sheds
 * stepSize to the same least-loaded peer when max - min > precision;
 * ClusterLoadBalancer: only the single most-loaded member sheds
 * trunc((self - avg) x 50%), 10..100, when above avg x 1.25) and run on
 * the same start states. A last section runs the advisor at N = 200 and
 * 1000 with every status going through the report policy
 * (report-policy.c), so that plans are made from statuses up to one
 * stretched report interval old. Prints figures and PASS/FAIL per goal;
 * asserts nothing (it is a benchmark). Usage: advisor-sim [seed]
 */
#ifdef HAVE_CONFIG_H
# include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "advisor.h"
#include "advisor-picker.h"
#include "report-policy.h"

#define MAXN      64
#define HORIZON_S 36000 /* 10 h of simulated time */

typedef struct state state;
struct state
{
	int n;
	long long load[MAXN];
	long long cap[MAXN];
	int workers[MAXN];
};

typedef struct result result;
struct result
{
	int converged;
	long long rounds; /* rounds of the algorithm's own interval */
	long long time_s;
	long long moved;
	long long overshoot;     /* sum over members of the worst crossing of the fair share */
	double max_avg, min_avg; /* final load / fair share, extremes */
	long long capacity_violations;
	int within_band; /* every member's worst crossing stayed inside its band */
};

static char ids[MAXN][16];
static uint64_t master_seed = 20240601;

/* ------------------------------------------------------------------ */
/* helpers shared by all algorithms                                     */
/* ------------------------------------------------------------------ */

static void
to_nodes(const state *s, cluster__adv_node *v, long long rev)
{
	int i;

	for(i = 0; i < s->n; i++)
	{
		memset(&v[i], 0, sizeof(v[i]));
		v[i].id = ids[i];
		v[i].workers = s->workers[i];
		v[i].has_status = 1;
		v[i].load = s->load[i];
		v[i].capacity = s->cap[i];
		v[i].mod_revision = rev;
		v[i].received_ms = rev;
	}
}

/* Fair shares and bands from the library (the yardstick for everyone). */
static void
yardstick(const state *s, const CLUSTERADVISORCONFIG *cfg, long long *share, long long *band, long long *min_moves)
{
	cluster__adv_node v[MAXN];
	cluster__adv_plan p;
	int i;

	to_nodes(s, v, 1);
	cluster__adv_plan_compute(&p, v, (size_t) s->n, cfg);
	for(i = 0; i < s->n; i++)
	{
		share[i] = p.share[i];
		band[i] = p.band[i];
	}
	*min_moves = p.minimum;
	cluster__adv_plan_free(&p);
}

static int
settled(const state *s, const long long *share, const long long *band)
{
	int i;

	for(i = 0; i < s->n; i++)
	{
		long long g = s->load[i] - share[i];

		if(s->cap[i] == 0 ? s->load[i] > share[i] : (g > band[i] || -g > band[i]))
		{
			return 0;
		}
	}
	return 1;
}

/* Track how far anyone crossed its share the wrong way. */
static void
track_overshoot(const state *s, const long long *share, const int *side, long long *worst)
{
	int i;

	for(i = 0; i < s->n; i++)
	{
		long long over = side[i] <= 0 ? s->load[i] - share[i] : share[i] - s->load[i];

		if(side[i] == 0)
		{
			over = s->load[i] > share[i] ? s->load[i] - share[i] : share[i] - s->load[i];
		}
		if(over > worst[i])
		{
			worst[i] = over;
		}
	}
}

static void
finish(const state *s, const long long *share, const long long *band, const long long *worst, result *r)
{
	int i, first = 1;

	r->overshoot = 0;
	r->capacity_violations = 0;
	r->within_band = 1;
	for(i = 0; i < s->n; i++)
	{
		r->overshoot += worst[i];
		if(worst[i] > band[i])
		{
			r->within_band = 0;
		}
		if(s->cap[i] > 0 && s->load[i] > s->cap[i])
		{
			r->capacity_violations += s->load[i] - s->cap[i];
		}
		if(share[i] > 0)
		{
			double u = (double) s->load[i] / (double) share[i];

			if(first || u > r->max_avg)
			{
				r->max_avg = u;
			}
			if(first || u < r->min_avg)
			{
				r->min_avg = u;
			}
			first = 0;
		}
	}
}

/* ------------------------------------------------------------------ */
/* ours                                                                 */
/* ------------------------------------------------------------------ */

static result
run_ours(state s, const CLUSTERADVISORCONFIG *cfg, int use_pick)
{
	long long share[MAXN], band[MAXN], worst[MAXN] = { 0 }, min_moves;
	int side[MAXN], i, quiet = 0;
	cluster__adv_prov prov[MAXN];
	uint64_t rng = master_seed ^ 0x5eed;
	result r;
	long long round;

	memset(&r, 0, sizeof(r));
	memset(prov, 0, sizeof(prov));
	yardstick(&s, cfg, share, band, &min_moves);
	for(i = 0; i < s.n; i++)
	{
		side[i] = s.load[i] > share[i] ? 1 : s.load[i] < share[i] ? -1 :
																	0;
	}
	for(round = 1; round * cfg->advice_interval_ms <= HORIZON_S * 1000LL; round++)
	{
		cluster__adv_node v[MAXN];
		cluster__adv_plan p;
		size_t k;

		/* every member sees the same snapshot this round */
		to_nodes(&s, v, round);
		cluster__adv_plan_compute(&p, v, (size_t) s.n, cfg);
		for(k = 0; k < p.nrows; k++)
		{
			long long c;

			s.load[p.rows[k].from] -= p.rows[k].count;
			if(!use_pick)
			{
				s.load[p.rows[k].to] += p.rows[k].count;
				continue;
			}
			/* the redirecting member answers each client with its own pick */
			for(c = 0; c < p.rows[k].count; c++)
			{
				size_t at = 0;

				if(cluster__adv_pick(v, (size_t) s.n, p.rows[k].from, cfg, &prov[p.rows[k].from], round * cfg->advice_interval_ms, &rng, &at))
				{
					at = p.rows[k].to;
				}
				s.load[at]++;
			}
		}
		r.moved += p.moved;
		quiet = p.moved ? 0 : quiet + 1; /* before the free clears p */
		cluster__adv_plan_free(&p);
		track_overshoot(&s, share, side, worst);
		if(!r.converged && settled(&s, share, band))
		{
			r.converged = 1;
			r.rounds = round;
			r.time_s = round * cfg->advice_interval_ms / 1000;
		}
		if(r.converged && quiet >= 3)
		{
			break;
		}
	}
	for(i = 0; i < MAXN; i++)
	{
		cluster__adv_prov_free(&prov[i]);
	}
	finish(&s, share, band, worst, &r);
	return r;
}

/* ------------------------------------------------------------------ */
/* seed 000: cluster-balancer (defaults: advice 5 s, stepSize 2, precision 10) */
/* ------------------------------------------------------------------ */

static result
run_cb(state s, const CLUSTERADVISORCONFIG *cfg)
{
	long long share[MAXN], band[MAXN], worst[MAXN] = { 0 }, min_moves;
	int side[MAXN], i, j;
	result r;
	long long round;
	const long long step = 2, precision = 10, interval_ms = 5000;

	memset(&r, 0, sizeof(r));
	yardstick(&s, cfg, share, band, &min_moves);
	for(i = 0; i < s.n; i++)
	{
		side[i] = s.load[i] > share[i] ? 1 : s.load[i] < share[i] ? -1 :
																	0;
	}
	for(round = 1; round * interval_ms <= HORIZON_S * 1000LL; round++)
	{
		int target[MAXN];
		long long moved = 0;

		/* every node decides from the same snapshot ... */
		for(i = 0; i < s.n; i++)
		{
			long long sum = s.load[i], mn = s.load[i], mx = s.load[i], cnt = 1;
			int minpeer = -1;

			target[i] = -1;
			for(j = 0; j < s.n; j++)
			{
				if(j == i || s.cap[j] == 0)
				{
					continue;
				}
				sum += s.load[j];
				cnt++;
				if(s.load[j] < mn)
				{
					mn = s.load[j];
					minpeer = j;
				}
				if(s.load[j] > mx)
				{
					mx = s.load[j];
				}
			}
			/* self is always counted, even when out of service */
			if(minpeer >= 0 && mx - mn > precision && s.load[i] * cnt > sum && s.load[i] >= step)
			{
				target[i] = minpeer;
			}
		}
		/* ... and the moves land together (targeted reconnection) */
		for(i = 0; i < s.n; i++)
		{
			if(target[i] >= 0)
			{
				s.load[i] -= step;
				s.load[target[i]] += step;
				moved += step;
			}
		}
		r.moved += moved;
		track_overshoot(&s, share, side, worst);
		if(!r.converged && settled(&s, share, band))
		{
			r.converged = 1;
			r.rounds = round;
			r.time_s = round * interval_ms / 1000;
		}
		if(!moved)
		{
			break; /* deterministic: nothing will ever move again */
		}
	}
	finish(&s, share, band, worst, &r);
	return r;
}

/* ------------------------------------------------------------------ */
/* seed 001: ClusterLoadBalancer (defaults: 10 s, 25%, 50%, 10..100)     */
/* ------------------------------------------------------------------ */

static result
run_clb(state s, const CLUSTERADVISORCONFIG *cfg, int least_loaded)
{
	long long share[MAXN], band[MAXN], worst[MAXN] = { 0 }, min_moves;
	int side[MAXN], i;
	uint64_t tiebreak[MAXN], rng = master_seed ^ 0xc1b;
	result r;
	long long round, idle = 0;
	const long long interval_ms = 10000;

	memset(&r, 0, sizeof(r));
	yardstick(&s, cfg, share, band, &min_moves);
	for(i = 0; i < s.n; i++)
	{
		side[i] = s.load[i] > share[i] ? 1 : s.load[i] < share[i] ? -1 :
																	0;
		tiebreak[i] = cluster__adv_random(&rng); /* drawn once, like :rand at start */
	}
	for(round = 1; round * interval_ms <= HORIZON_S * 1000LL; round++)
	{
		long long sum = 0, amount = 0, c;
		int top = 0;

		for(i = 0; i < s.n; i++)
		{
			sum += s.load[i];
			if(s.load[i] > s.load[top] || (s.load[i] == s.load[top] && tiebreak[i] > tiebreak[top]))
			{
				top = i;
			}
		}
		/* only the single most-loaded node may shed */
		if((double) s.load[top] > (double) sum / s.n * 1.25)
		{
			amount = (long long) (((double) s.load[top] - (double) sum / s.n) * 0.5);
			if(amount > 100)
			{
				amount = 100;
			}
			if(amount < 10)
			{
				amount = 0;
			}
		}
		s.load[top] -= amount;
		for(c = 0; c < amount; c++)
		{
			int to = -1;

			if(least_loaded)
			{
				for(i = 0; i < s.n; i++)
				{
					if(i != top && s.cap[i] != 0 && (to < 0 || s.load[i] < s.load[to]))
					{
						to = i;
					}
				}
			}
			else
			{
				do
				{
					to = (int) cluster__adv_random_below(&rng, (uint64_t) s.n);
				}
				while(to == top || s.cap[to] == 0);
			}
			s.load[to]++;
		}
		r.moved += amount;
		track_overshoot(&s, share, side, worst);
		if(!r.converged && settled(&s, share, band))
		{
			r.converged = 1;
			r.rounds = round;
			r.time_s = round * interval_ms / 1000;
		}
		idle = amount ? 0 : idle + 1;
		if(idle >= 2)
		{
			break; /* it stopped acting; nothing changes any more */
		}
	}
	finish(&s, share, band, worst, &r);
	return r;
}

/* ------------------------------------------------------------------ */
/* scenarios                                                            */
/* ------------------------------------------------------------------ */

static void
uniform(state *s, int n, long long c)
{
	int i;

	memset(s, 0, sizeof(*s));
	s->n = n;
	for(i = 0; i < n; i++)
	{
		s->load[i] = c;
		s->cap[i] = CLUSTER_CAPACITY_UNBOUNDED;
		s->workers[i] = 1;
	}
}

/* Each member restarts in turn; its clients reconnect uniformly at random
 * to the others; it comes back empty. */
static void
rolling(state *s, int n, long long c)
{
	uint64_t rng = master_seed ^ (uint64_t) (n * 131 + c);
	int k;

	uniform(s, n, c);
	for(k = 0; k < n; k++)
	{
		long long x;

		for(x = 0; x < s->load[k]; x++)
		{
			int to = (int) cluster__adv_random_below(&rng, (uint64_t) (n - 1));

			s->load[to >= k ? to + 1 : to]++;
		}
		s->load[k] = 0;
	}
}

static void
full_empty(state *s, int n, long long c)
{
	uniform(s, n, c);
	s->load[n - 1] = 0;
}

static void
heterogeneous(state *s)
{
	static const long long cap[10] = { 500, 1000, 1000, 2000, 2000, 4000, 4000, 8000, -1, -1 };
	static const long long load[10] = { 500, 1000, 0, 2000, 100, 500, 3000, 1000, 6000, 0 };
	int i;

	uniform(s, 10, 0);
	for(i = 0; i < 10; i++)
	{
		s->cap[i] = cap[i];
		s->load[i] = load[i];
	}
	s->workers[8] = 2;
}

static void
draining(state *s)
{
	uniform(s, 10, 1000);
	s->cap[4] = 0;
}

static const char *
pf(int ok)
{
	return ok ? "PASS" : "FAIL";
}

static void
print_row(const char *name, const result *r, long long min_moves, long long interval_ms)
{
	char conv[64];

	if(r->converged)
	{
		snprintf(conv, sizeof(conv), "%lld s (%lld rounds of %lld s)", r->time_s, r->rounds, interval_ms / 1000);
	}
	else
	{
		snprintf(conv, sizeof(conv), "never (> %d s)", HORIZON_S);
	}
	printf("| %-26s | %-28s | %8lld | %6.2fx | %9lld | %7.2f | %7.2f |%s\n", name, conv, r->moved,
		min_moves ? (double) r->moved / (double) min_moves : 0.0, r->overshoot, r->max_avg, r->min_avg,
		r->capacity_violations ? " over capacity!" : "");
}

static int all_pass = 1;

static void
scenario(const char *name, const state *s0, const CLUSTERADVISORCONFIG *cfg)
{
	long long share[MAXN], band[MAXN], min_moves, budget = cluster__adv_round_budget(cfg), goal_rounds;
	int mode;
	double mx = 0, mn = 1e18, avg = 0;
	int i, cnt = 0;

	yardstick(s0, cfg, share, band, &min_moves);
	for(i = 0; i < s0->n; i++)
	{
		if(share[i] > 0)
		{
			double u = (double) s0->load[i] / (double) share[i];

			mx = u > mx ? u : mx;
			mn = u < mn ? u : mn;
			avg += (double) s0->load[i];
			cnt++;
		}
	}
	goal_rounds = (min_moves + budget - 1) / budget + 2;
	printf("\n### %s\n\nstart: max/share %.2f, min/share %.2f, minimum moves %lld, budget %lld per %d s round, goal: converged within %lld rounds\n",
		name, mx, mn, min_moves, budget, cfg->advice_interval_ms / 1000, goal_rounds);
	for(mode = 0; mode < 2; mode++)
	{
		result ours = run_ours(*s0, cfg, mode), cb = run_cb(*s0, cfg), clb = run_clb(*s0, cfg, mode);
		int g_moved = ours.moved <= min_moves * 105 / 100, g_over = ours.overshoot == 0, g_conv = ours.converged && ours.rounds <= goal_rounds;

		printf("\nclients reconnect %s:\n\n", mode ? "through the herd-safe pick (seeds: to the least-loaded member)" : "where advised (ClusterLoadBalancer: at random; it names no target)");
		printf("| %-26s | %-28s | %8s | %7s | %9s | %7s | %7s |\n", "algorithm", "converged after", "moved", "/min", "overshoot", "max/fs", "min/fs");
		printf("|%s|%s|%s|%s|%s|%s|%s|\n", "----------------------------", "------------------------------", "----------", "---------", "-----------", "---------", "---------");
		print_row("libcluster advisor", &ours, min_moves, cfg->advice_interval_ms);
		print_row("cluster-balancer (seed 000)", &cb, min_moves, 5000);
		print_row("ClusterLoadBalancer (001)", &clb, min_moves, 10000);
		{
			char t1[32], t2[32];

			snprintf(t1, sizeof(t1), cb.converged && ours.converged ? "%.1fx" : "never", (double) cb.time_s / (double) (ours.time_s ? ours.time_s : 1));
			snprintf(t2, sizeof(t2), clb.converged && ours.converged ? "%.1fx" : "never", (double) clb.time_s / (double) (ours.time_s ? ours.time_s : 1));
			printf("\nratios (seed / ours): cluster-balancer time %s, moved %.2fx; ClusterLoadBalancer time %s, moved %.2fx\n",
				t1, ours.moved ? (double) cb.moved / (double) ours.moved : 0.0, t2, ours.moved ? (double) clb.moved / (double) ours.moved : 0.0);
		}
		printf("goals: moved <= 1.05x minimum %s (%lld vs %lld); zero overshoot %s (%lld%s); converged within %lld rounds %s (%lld)\n",
			pf(g_moved), ours.moved, min_moves, pf(g_over), ours.overshoot, ours.overshoot && ours.within_band ? ", every crossing inside the member's band" : "",
			goal_rounds, pf(g_conv), ours.converged ? ours.rounds : -1);
		all_pass &= g_moved && g_over && g_conv;
	}
}

/* 1000 picks from one snapshot by callers that are not members (they
 * have no plan rows, so the pick samples by remaining deficit):
 * how much does any member receive relative to its deficit? Two snapshots: the 10 x 1k rolling deploy (total deficit
 * about 2500) and a tight one whose deficits sum to exactly 1000. */
static void
pick_spread_one(const char *title, const state *s, const CLUSTERADVISORCONFIG *cfg)
{
	cluster__adv_node v[MAXN];
	long long share[MAXN], band[MAXN], min_moves, got[MAXN], w[MAXN];
	signed char role[MAXN];
	int callers, i, k, lo = 0;
	uint64_t rng = master_seed ^ 0x91c;
	double seed_ratio;

	yardstick(s, cfg, share, band, &min_moves);
	to_nodes(s, v, 1);
	cluster__adv_shares(v, (size_t) s->n, role, w, share, NULL);
	printf("\n### herd-safe pick: 1000 picks from one snapshot (%s, total deficit %lld)\n\n", title, min_moves);
	printf("| %-40s | %-22s | %s |\n", "callers", "max received / deficit", "goal <= 1.1");
	printf("|------------------------------------------|------------------------|-------------|\n");
	for(callers = 1; callers <= 100; callers *= 10)
	{
		cluster__adv_prov prov[100];
		double worst = 0;

		memset(prov, 0, sizeof(prov));
		memset(got, 0, sizeof(got));
		for(k = 0; k < 1000; k++)
		{
			size_t at = 0;

			cluster__adv_pick(v, (size_t) s->n, CLUSTER__ADV_NO_SELF, cfg, &prov[k % callers], 1000, &rng, &at);
			got[at]++;
		}
		for(i = 0; i < s->n; i++)
		{
			long long d = share[i] - s->load[i];
			double ratio = d > 0 ? (double) got[i] / (double) d : (got[i] ? 1e9 : 0);

			worst = ratio > worst ? ratio : worst;
		}
		for(i = 0; i < callers; i++)
		{
			cluster__adv_prov_free(&prov[i]);
		}
		printf("| %3d instance(s), %4d picks each         | %22.3f | %-11s |\n", callers, 1000 / callers, worst, pf(worst <= 1.1));
		if(callers == 1)
		{
			all_pass &= worst <= 1.1;
		}
	}
	/* the seeds' answer: the least-loaded member, the same for everyone */
	for(i = 1; i < s->n; i++)
	{
		lo = s->load[i] < s->load[lo] ? i : lo;
	}
	seed_ratio = 1000.0 / (double) (share[lo] - s->load[lo]);
	printf("| %-40s | %22.3f | %-11s |\n", "seed 000 least-utilized target", seed_ratio, pf(seed_ratio <= 1.1));
}

static void
pick_spread(const CLUSTERADVISORCONFIG *cfg)
{
	state s;
	int i;

	rolling(&s, 10, 1000);
	pick_spread_one("10 x 1k after a rolling deploy", &s, cfg);
	uniform(&s, 10, 1000);
	for(i = 0; i < 10; i++)
	{
		s.load[i] = i < 5 ? 1200 : 800;
	}
	pick_spread_one("five members at 1200, five at 800", &s, cfg);
	printf("\n(the goal is judged on one instance's 1000 picks. These callers are not members, so they have no plan\n"
		   "rows and sample by remaining deficit; independent callers share no provisional counts, so their rows show\n"
		   "sampling noise once the picks approach the total deficit)\n");
}

/* ------------------------------------------------------------------ */
/* statuses through the report policy (issue 13)                        */
/* ------------------------------------------------------------------ */

/*
 * The same advisor, but nobody sees anybody's true load: every member
 * writes its status through the report policy (report-policy.c: the
 * deadband and the interval stretched to N / status_writes_per_second),
 * and every plan is computed from the written statuses, up to one
 * effective interval old (10 s at N = 200, 50 s at N = 1000 with the
 * default budget of 20 writes/s). Each member's first write is spread
 * over the first interval, as joins are. The fake clock ticks every
 * second (statuses due are written), advice rounds every advice interval.
 * Sources act on their own rows; clients reconnect where advised, or
 * through the herd-safe pick (the picker, built per source per round).
 * The goals are judged on the true loads, as above.
 */
typedef struct pol_result pol_result;
struct pol_result
{
	result r;
	long long writes;    /* status writes, cluster-wide */
	double peak_rate;    /* most writes in one second, cluster-wide */
	double mean_rate;    /* writes per second over the run */
	long long max_stale; /* largest |true - written| load seen at a round */
};

static char (*pol_ids)[16];

static void
pol_rolling(int n, long long c, long long *load)
{
	uint64_t rng = master_seed ^ (uint64_t) (n * 131 + c);
	int i, k;

	for(i = 0; i < n; i++)
	{
		load[i] = c;
	}
	for(k = 0; k < n; k++)
	{
		long long x;

		for(x = 0; x < load[k]; x++)
		{
			int to = (int) cluster__adv_random_below(&rng, (uint64_t) (n - 1));

			load[to >= k ? to + 1 : to]++;
		}
		load[k] = 0;
	}
}

static void
pol_nodes(int n, const long long *written, const int64_t *written_at, const long long *version, cluster__adv_node *v)
{
	int i;

	for(i = 0; i < n; i++)
	{
		memset(&v[i], 0, sizeof(v[i]));
		v[i].id = pol_ids[i];
		v[i].workers = 1;
		v[i].has_status = 1;
		v[i].load = written[i];
		v[i].capacity = CLUSTER_CAPACITY_UNBOUNDED;
		v[i].mod_revision = version[i];
		v[i].received_ms = written_at[i] + 1;
	}
}

static pol_result
run_policy(int n, const long long *start, const CLUSTERADVISORCONFIG *cfg, int use_pick, long long *min_moves_out, long long *goal_out)
{
	long long *load = calloc((size_t) n, sizeof(*load)), *written = calloc((size_t) n, sizeof(*written));
	long long *version = calloc((size_t) n, sizeof(*version)), *share = calloc((size_t) n, sizeof(*share));
	long long *band = calloc((size_t) n, sizeof(*band)), *worst = calloc((size_t) n, sizeof(*worst));
	int64_t *written_at = calloc((size_t) n, sizeof(*written_at));
	double *credit = calloc((size_t) n, sizeof(*credit));
	int *side = calloc((size_t) n, sizeof(*side));
	cluster__adv_node *v = calloc((size_t) n, sizeof(*v));
	cluster__adv_prov *prov = calloc((size_t) n, sizeof(*prov));
	cluster__report_policy pol;
	uint64_t rng = master_seed ^ 0x9011c7;
	int64_t now, interval, first_round_ms = cfg->advice_interval_ms;
	long long round = 0, min_moves = 0, budget = cluster__adv_round_budget(cfg), second_writes = 0;
	int i, quiet = 0;
	pol_result pr;

	memset(&pr, 0, sizeof(pr));
	cluster__report_policy_of(&pol, cfg);
	interval = cluster__report_interval_for(&pol, (size_t) n);
	/* the yardstick: shares of the true loads (the total never changes) */
	memcpy(load, start, (size_t) n * sizeof(*load));
	for(i = 0; i < n; i++)
	{
		written_at[i] = -(int64_t) cluster__adv_random_below(&rng, (uint64_t) interval) - 1;      /* joins spread over one interval */
		credit[i] = cluster__report_credit(&pol, &(cluster__report_sample) { 0 }, (size_t) n, 0); /* after the first write */
		written[i] = load[i];
		version[i] = 1;
	}
	{
		cluster__adv_plan p;

		pol_nodes(n, load, written_at, version, v);
		cluster__adv_plan_compute(&p, v, (size_t) n, cfg);
		for(i = 0; i < n; i++)
		{
			share[i] = p.share[i];
			band[i] = p.band[i];
			side[i] = load[i] > share[i] ? 1 : load[i] < share[i] ? -1 :
																	0;
		}
		min_moves = p.minimum;
		cluster__adv_plan_free(&p);
	}
	*min_moves_out = min_moves;
	*goal_out = (min_moves + budget - 1) / budget + 2;
	for(now = 0; now <= HORIZON_S * 1000LL; now += 1000)
	{
		/* statuses due are written */
		for(i = 0; i < n; i++)
		{
			cluster__report_sample last, cur;

			last.valid = 1;
			last.load = written[i];
			last.capacity = CLUSTER_CAPACITY_UNBOUNDED;
			last.at_ms = written_at[i];
			last.credit = credit[i];
			cur = last;
			cur.load = load[i];
			if(cluster__report_due(&pol, &last, &cur, (size_t) n, 0, now) <= now)
			{
				credit[i] = cluster__report_credit(&pol, &last, (size_t) n, now);
				written[i] = load[i];
				written_at[i] = now;
				version[i]++;
				pr.writes++;
				second_writes++;
			}
		}
		if((double) second_writes > pr.peak_rate)
		{
			pr.peak_rate = (double) second_writes;
		}
		second_writes = 0;
		if(now < first_round_ms || now % cfg->advice_interval_ms)
		{
			continue;
		}
		/* an advice round: everybody plans from the written statuses */
		{
			cluster__adv_plan p;
			size_t k;

			round++;
			pol_nodes(n, written, written_at, version, v);
			for(i = 0; i < n; i++)
			{
				long long d = load[i] - written[i];

				d = d < 0 ? -d : d;
				pr.max_stale = d > pr.max_stale ? d : pr.max_stale;
			}
			cluster__adv_plan_compute(&p, v, (size_t) n, cfg);
			for(k = 0; k < p.nrows; k++)
			{
				long long c;
				size_t from = p.rows[k].from;
				cluster__adv_picker pk;

				load[from] -= p.rows[k].count;
				if(!use_pick)
				{
					load[p.rows[k].to] += p.rows[k].count;
					continue;
				}
				/* the source answers each redirected client with its pick */
				if(cluster__adv_picker_build(&pk, v, (size_t) n, from, cfg, &prov[from], now))
				{
					load[p.rows[k].to] += p.rows[k].count;
					continue;
				}
				for(c = 0; c < p.rows[k].count; c++)
				{
					size_t at = 0;

					if(cluster__adv_picker_pick(&pk, &prov[from], now, &rng, &at))
					{
						at = p.rows[k].to;
					}
					load[at]++;
				}
				cluster__adv_picker_sync(&pk, &prov[from]);
				cluster__adv_picker_free(&pk);
			}
			pr.r.moved += p.moved;
			quiet = p.moved ? 0 : quiet + 1;
			cluster__adv_plan_free(&p);
		}
		for(i = 0; i < n; i++)
		{
			long long over = side[i] <= 0 ? load[i] - share[i] : share[i] - load[i];

			if(side[i] == 0)
			{
				over = load[i] > share[i] ? load[i] - share[i] : share[i] - load[i];
			}
			worst[i] = over > worst[i] ? over : worst[i];
		}
		if(!pr.r.converged)
		{
			int ok = 1;

			for(i = 0; i < n && ok; i++)
			{
				long long g = load[i] - share[i];

				ok = !(g > band[i] || -g > band[i]);
			}
			if(ok)
			{
				pr.r.converged = 1;
				pr.r.rounds = round;
				pr.r.time_s = now / 1000;
			}
		}
		if(pr.r.converged && quiet >= 3)
		{
			break;
		}
	}
	pr.mean_rate = now > 0 ? (double) pr.writes * 1000.0 / (double) now : 0;
	/* final figures, as finish() */
	pr.r.within_band = 1;
	{
		int first = 1;

		for(i = 0; i < n; i++)
		{
			double u = share[i] > 0 ? (double) load[i] / (double) share[i] : 0;

			pr.r.overshoot += worst[i];
			pr.r.within_band &= worst[i] <= band[i];
			if(share[i] > 0 && (first || u > pr.r.max_avg))
			{
				pr.r.max_avg = u;
			}
			if(share[i] > 0 && (first || u < pr.r.min_avg))
			{
				pr.r.min_avg = u;
			}
			first &= !(share[i] > 0);
		}
	}
	for(i = 0; i < n; i++)
	{
		cluster__adv_prov_free(&prov[i]);
	}
	free(load);
	free(written);
	free(version);
	free(share);
	free(band);
	free(worst);
	free(written_at);
	free(credit);
	free(side);
	free(v);
	free(prov);
	return pr;
}

static int policy_pass = 1;

/* The policy runs, N = 200 and 1000, a rolling deploy of 1k each. */
static void
policy_runs(const CLUSTERADVISORCONFIG *cfg)
{
	static const int sizes[2] = { 200, 1000 };
	int s, mode, i;

	pol_ids = calloc(1000, sizeof(*pol_ids));
	if(!pol_ids)
	{
		return;
	}
	for(i = 0; i < 1000; i++)
	{
		snprintf(pol_ids[i], sizeof(pol_ids[i]), "p%04d", i);
	}
	printf("\n### statuses through the report policy (deadband %.2f of the band, %.0f status writes/s cluster-wide)\n", cfg->report_deadband,
		cfg->status_writes_per_second);
	for(s = 0; s < 2; s++)
	{
		int n = sizes[s];
		long long *start = calloc((size_t) n, sizeof(*start));
		cluster__report_policy pol;

		if(!start)
		{
			return;
		}
		cluster__report_policy_of(&pol, cfg);
		pol_rolling(n, 1000, start);
		printf("\nrolling deploy %d x 1k: effective report interval %lld ms (each member's view of the others is up to that old)\n\n", n,
			(long long) cluster__report_interval_for(&pol, (size_t) n));
		printf("| %-34s | %-28s | %8s | %7s | %9s | %7s | %7s | %-22s | %s |\n", "clients reconnect", "converged after", "moved", "/min", "overshoot", "max/fs", "min/fs",
			"writes/s (mean, peak)", "max stale load");
		printf("|------------------------------------|------------------------------|----------|---------|-----------|---------|---------|------------------------|----------------|\n");
		for(mode = 0; mode < 2; mode++)
		{
			long long min_moves = 0, goal = 0;
			pol_result pr = run_policy(n, start, cfg, mode, &min_moves, &goal);
			char conv[64];
			int g_moved = pr.r.moved <= min_moves * 105 / 100, g_over = pr.r.overshoot == 0, g_conv = pr.r.converged && pr.r.rounds <= goal;
			int g_budget = pr.mean_rate <= cfg->status_writes_per_second * 1.0001;

			if(pr.r.converged)
			{
				snprintf(conv, sizeof(conv), "%lld s (%lld rounds of %d s)", pr.r.time_s, pr.r.rounds, cfg->advice_interval_ms / 1000);
			}
			else
			{
				snprintf(conv, sizeof(conv), "never (> %d s)", HORIZON_S);
			}
			printf("| %-34s | %-28s | %8lld | %6.2fx | %9lld | %7.2f | %7.2f | %8.1f, %-12.0f | %14lld |\n", mode ? "through the herd-safe pick" : "where advised", conv,
				pr.r.moved, min_moves ? (double) pr.r.moved / (double) min_moves : 0.0, pr.r.overshoot, pr.r.max_avg, pr.r.min_avg, pr.mean_rate, pr.peak_rate,
				pr.max_stale);
			printf("goals (%s): moved <= 1.05x minimum %s (%lld vs %lld); zero overshoot %s (%lld%s); converged within %lld rounds %s (%lld); "
				   "mean status writes <= budget %s\n",
				mode ? "pick" : "advised", pf(g_moved), pr.r.moved, min_moves, pf(g_over), pr.r.overshoot,
				pr.r.overshoot && pr.r.within_band ? ", every crossing inside the member's band" : "", goal, pf(g_conv), pr.r.converged ? pr.r.rounds : -1,
				pf(g_budget));
			policy_pass &= g_moved && g_over && g_conv && g_budget;
		}
		free(start);
	}
	free(pol_ids);
}

int
main(int argc, char **argv)
{
	CLUSTERADVISORCONFIG cfg;
	state s;
	int i;

	if(argc > 1)
	{
		master_seed = strtoull(argv[1], NULL, 0);
	}
	for(i = 0; i < MAXN; i++)
	{
		snprintf(ids[i], sizeof(ids[i]), "n%02d", i);
	}
	cluster_advisor_config_init(&cfg);
	printf("## libcluster connection-advisor simulator (seed %llu)\n\n", (unsigned long long) master_seed);
	printf("defaults: advice %d ms, report %d ms, band max(%lld, %.0f%% of share), shed_fraction %.2f, step_max %lld, step_min %lld, budget %.0f/s, jitter %.0f%%\n",
		cfg.advice_interval_ms, cfg.report_interval_ms, cfg.band_absolute, cfg.band_relative * 100, cfg.shed_fraction, cfg.step_max, cfg.step_min,
		cfg.budget_per_second, cfg.jitter * 100);
	printf("model: synchronous rounds on a fake clock; every member acts on the same snapshot; reconnection is instant.\n");
	printf("figures: overshoot = sum over members of the worst crossing of the fair share the wrong way; max/fs and min/fs = final load / fair share;\n");
	printf("converged = every member within its band and draining members empty (the same yardstick for all three algorithms).\n");

	rolling(&s, 10, 1000);
	scenario("rolling deploy 10 x 1k", &s, &cfg);
	rolling(&s, 10, 10000);
	scenario("rolling deploy 10 x 10k", &s, &cfg);
	rolling(&s, 50, 2000);
	scenario("rolling deploy 50 x 2k", &s, &cfg);
	full_empty(&s, 10, 1000);
	scenario("nine full + one empty (N = 10, 1k each)", &s, &cfg);
	full_empty(&s, 50, 2000);
	scenario("49 full + one empty (N = 50, 2k each)", &s, &cfg);
	heterogeneous(&s);
	scenario("heterogeneous capacities (500..8000 and two unbounded)", &s, &cfg);
	draining(&s);
	scenario("one member draining (10 x 1k, member 4 capacity 0)", &s, &cfg);
	pick_spread(&cfg);
	policy_runs(&cfg);
	printf("\nreport-policy runs: %s\n", policy_pass ? "every goal PASS" : "some goal FAIL");
	printf("\noverall: %s\n", all_pass ? "every goal PASS" : "some goal FAIL");
	return 0;
}
