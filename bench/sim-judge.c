/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The simulator's judge (sim.h): fair shares from their definition in
 * floating point, bands, the true lower bound of moves, overshoot, and
 * the reconnection model. Written apart from the library's advisor.c and
 * sharing none of its code, so that a verdict never compares the library
 * with itself.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/*
 * Water-filling in floating point: every member takes part by weight
 * (capacity if bounded, workers x K if unbounded, K = the bounded
 * members' capacity per worker, exactly); a member whose proportional
 * share exceeds its capacity is pinned there and the rest is shared
 * again. Load that fits nowhere is left with whoever holds it.
 */
static void
fair_shares(const sim_state *s, double *share)
{
	double w[SIM_MAXN], sumcap = 0, sumw = 0, k = 1, rem = 0;
	int active[SIM_MAXN], i, again;

	for(i = 0; i < s->n; i++)
	{
		rem += (double) s->load[i];
		if(s->cap[i] > 0)
		{
			sumcap += (double) s->cap[i];
			sumw += s->workers[i] > 0 ? s->workers[i] : 1;
		}
	}
	if(sumw > 0)
	{
		k = sumcap / sumw;
	}
	for(i = 0; i < s->n; i++)
	{
		share[i] = 0;
		active[i] = s->cap[i] != 0;
		w[i] = s->cap[i] > 0 ? (double) s->cap[i] : (s->workers[i] > 0 ? s->workers[i] : 1) * k;
	}
	do
	{
		double wsum = 0;

		again = 0;
		for(i = 0; i < s->n; i++)
		{
			wsum += active[i] ? w[i] : 0;
		}
		if(wsum <= 0)
		{
			break;
		}
		for(i = 0; i < s->n; i++)
		{
			if(active[i] && s->cap[i] > 0 && rem * w[i] / wsum > (double) s->cap[i])
			{
				active[i] = 0;
				share[i] = (double) s->cap[i];
				rem -= (double) s->cap[i];
				again = 1;
			}
		}
		if(!again)
		{
			for(i = 0; i < s->n; i++)
			{
				if(active[i])
				{
					share[i] = rem * w[i] / wsum;
				}
			}
			rem = 0;
		}
	}
	while(again);
	if(rem > 0.5)
	{
		/* over capacity: each keeps what fits nowhere else */
		for(i = 0; i < s->n; i++)
		{
			if((double) s->load[i] > share[i])
			{
				share[i] = (double) s->load[i];
			}
		}
	}
}

void
sim_judge_of(const sim_state *s, long long band_absolute, double band_relative, sim_judge *j)
{
	long long above = 0, below = 0;
	int i;

	memset(j, 0, sizeof(*j));
	j->n = s->n;
	fair_shares(s, j->share);
	for(i = 0; i < s->n; i++)
	{
		double band = band_relative * j->share[i];
		long long lo, hi;

		if(band < (double) band_absolute)
		{
			band = (double) band_absolute;
		}
		if(s->cap[i] == 0)
		{
			lo = hi = 0;
		}
		else
		{
			/* floor/ceil without libm: shares and bands are >= 0 */
			hi = (long long) (j->share[i] + band) + 1;
			lo = (long long) (j->share[i] - band);
			lo = lo < 0 ? 0 : lo - 1;
			lo = lo < 0 ? 0 : lo;
			if(s->cap[i] > 0 && hi > s->cap[i])
			{
				hi = s->cap[i];
			}
		}
		j->lo[i] = lo;
		j->hi[i] = hi;
		above += s->load[i] > hi ? s->load[i] - hi : 0;
		below += s->load[i] < lo ? lo - s->load[i] : 0;
	}
	j->lower_bound = above > below ? above : below;
}

int
sim_balanced(const sim_judge *j, const long long *load)
{
	int i;

	for(i = 0; i < j->n; i++)
	{
		if(load[i] < j->lo[i] || load[i] > j->hi[i])
		{
			return 0;
		}
	}
	return 1;
}

void
sim_track_start(sim_track *t, const sim_judge *j, const long long *load)
{
	int i;

	memset(t, 0, sizeof(*t));
	for(i = 0; i < j->n; i++)
	{
		double g = (double) load[i] - j->share[i];

		t->side[i] = g > 1 ? 1 : g < -1 ? -1 :
										  0;
	}
}

/* A crossing is measured past the one connection of rounding. */
void
sim_track_step(sim_track *t, const sim_judge *j, const long long *load)
{
	int i;

	for(i = 0; i < j->n; i++)
	{
		double g = (double) load[i] - j->share[i], over;

		over = t->side[i] > 0 ? -g : t->side[i] < 0 ? g :
													  (g < 0 ? -g : g);
		over -= 1;
		if(over > 0 && (long long) over > t->worst[i])
		{
			t->worst[i] = (long long) over;
		}
	}
}

void
sim_finish(const sim_judge *j, const sim_track *t, const sim_state *s, const long long *load, sim_outcome *o)
{
	int i, first = 1;

	o->overshoot = 0;
	o->over_capacity = 0;
	o->within_band = 1;
	for(i = 0; i < j->n; i++)
	{
		o->overshoot += t->worst[i];
		if(t->worst[i] > (j->hi[i] - j->lo[i]) / 2)
		{
			o->within_band = 0;
		}
		if(s->cap[i] > 0 && load[i] > s->cap[i])
		{
			o->over_capacity += load[i] - s->cap[i];
		}
		if(j->share[i] > 0.5)
		{
			double u = (double) load[i] / j->share[i];

			if(first || u > o->max_fs)
			{
				o->max_fs = u;
			}
			if(first || u < o->min_fs)
			{
				o->min_fs = u;
			}
			first = 0;
		}
	}
}

uint64_t
sim_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t
sim_below(uint64_t *state, uint64_t bound)
{
	uint64_t lim = UINT64_MAX - UINT64_MAX % bound, x;

	do
	{
		x = sim_rand(state);
	}
	while(x >= lim);
	return x % bound;
}

double
sim_unit(uint64_t *state)
{
	return (double) (sim_rand(state) >> 11) * (1.0 / 9007199254740992.0);
}

int
sim_flight_init(sim_flight *f, int tick_ms, const sim_reconnect *rc)
{
	memset(f, 0, sizeof(*f));
	f->tick_ms = tick_ms;
	f->nslots = rc->delay_max_ms / tick_ms + 2;
	f->count = calloc((size_t) f->nslots * (SIM_MAXN + 1), sizeof(*f->count));
	f->cursor = -1;
	return f->count ? 0 : -1;
}

void
sim_flight_free(sim_flight *f)
{
	free(f->count);
	memset(f, 0, sizeof(*f));
}

long long
sim_flight_send(sim_flight *f, const sim_reconnect *rc, long long now_tick, int target, long long count, uint64_t *rng)
{
	long long c, lost = 0;
	int col = target < 0 ? SIM_MAXN : target;
	int span = rc->delay_max_ms - rc->delay_min_ms;

	for(c = 0; c < count; c++)
	{
		long long delay, at;

		if(rc->loss > 0 && sim_unit(rng) < rc->loss)
		{
			lost++;
			continue;
		}
		delay = rc->delay_min_ms + (span > 0 ? (long long) sim_below(rng, (uint64_t) span + 1) : 0);
		at = now_tick + 1 + delay / f->tick_ms; /* never in the tick it left */
		f->count[(at % f->nslots) * (SIM_MAXN + 1) + col]++;
		f->in_flight++;
	}
	return lost;
}

void
sim_flight_land(sim_flight *f, long long now_tick, int n, long long *arrived, long long *unnamed)
{
	long long *row = &f->count[(now_tick % f->nslots) * (SIM_MAXN + 1)];
	int i;

	*unnamed = row[SIM_MAXN];
	row[SIM_MAXN] = 0;
	f->in_flight -= *unnamed;
	for(i = 0; i < n; i++)
	{
		arrived[i] = row[i];
		f->in_flight -= row[i];
		row[i] = 0;
	}
	for(i = n; i < SIM_MAXN; i++)
	{
		row[i] = 0;
	}
	f->cursor = now_tick;
}
