/* SPDX-License-Identifier: Apache-2.0 */
/*
 * When to write the advisor status (see report-policy.h). Pure.
 *
 * The rule:
 * - the first write is due at once;
 * - a load is worth writing only when it moved by more than
 *   deadband x band from the last written load, where band is the
 *   advisor's own hysteresis band, max(band_absolute, band_relative x
 *   reference), and the reference is the last written load (see
 *   load_moved() for why);
 * - a capacity change and a forced write (address change) are always
 *   worth writing, the deadband does not apply to them;
 * - whatever is worth writing waits until one effective interval after the
 *   last write: max(interval_ms, n x 1000 / writes_per_second), so n
 *   members drifting inside their bands together write at most
 *   writes_per_second times a second, on average;
 * - except a load that moved by more than half a band: that waits only
 *   interval_ms, if the member has a write token saved. Such a move is
 *   what the plan must see (the simulator, bench/advisor-sim.c, showed
 *   what happens when it waits the stretched interval: every member plans
 *   from a load up to a minute old, sources shed the same surplus again
 *   round after round, 2.2x to 2.7x the minimum moves and no convergence
 *   at N = 1000). Tokens accrue at one per effective interval, up to the
 *   burst, and every write spends one: a member quiet for a while writes
 *   its next rebalancing moves at once, while a member whose load jumps
 *   by more than the band every second (a status storm) is held to one
 *   write per effective interval once its saved tokens are spent. The
 *   burst is CLUSTER__REPORT_BURST (three; with one the simulator's
 *   rolling deploy did not converge: sources and targets need several
 *   prompt writes in a row), but all members together save at most
 *   CLUSTER__REPORT_BURST_SECONDS of the cluster-wide budget
 *   (cluster__report_burst(): three each up to 66 members at the default
 *   20 writes/s, one each at 200). Every write reaches every advisor
 *   user, so N members writing at once cost N x N watch events: at
 *   N = 1000, three tokens each were three million, and even one each a
 *   million, which kept a two-core etcd saturated until keepalives timed
 *   out and leases expired (bench-scale);
 * - so where a member saves less than one token (past 200 members at the
 *   default budget) it writes only at its slot, once per slot period at
 *   its own phase (next_slot()): the cluster writes at most the budget
 *   every second, however the loads move together. The slot period is
 *   the effective interval rounded up to eight steps per octave (at most
 *   an eighth longer), kept while it is no shorter than the interval and
 *   the interval no more than a fifth shorter than it
 *   (cluster__report_grid()), and a new period starts a whole period
 *   after the last write. Slots are times congruent to the phase
 *   modulo the period, so a period that followed n exactly would move
 *   every member's next slot to a random point of the next interval
 *   whenever one member joins or leaves: with a member joining and
 *   leaving every second, 1000 members wrote 39.6 statuses a second
 *   against a budget of 20 (test_report_policy).
 * In any window of T seconds the cluster writes at most
 * budget x (T + CLUSTER__REPORT_BURST_SECONDS) + N times (the N: first
 * writes below 200 members; past them, at most a slot that follows a
 * draining member's write, which the engine makes at once).
 * An unchanged status is never rewritten: the lease keeps the key alive
 * and the others keep the last written value.
 */
#include "report-policy.h"

#include <string.h>

/* The longest effective interval (ms): one day, the longest
 * report_interval_ms the configuration accepts. */
#define REPORT_INTERVAL_MAX 86400000

/* The effective interval: a cluster-wide write budget shared by n
 * members gives each one write per n / budget seconds (rounded up, so the
 * budget holds), never less than the configured interval. Computed in
 * double so that any n and any budget stay overflow-free, then capped. */
int64_t
cluster__report_interval_for(const cluster__report_policy *p, size_t n)
{
	int64_t base = p->interval_ms > 0 ? p->interval_ms : 1000;
	double stretched;
	int64_t whole;

	if(!(p->writes_per_second > 0.0))
	{
		return base; /* 0 (or garbage): no limit */
	}
	stretched = (double) n * 1000.0 / p->writes_per_second;
	if(!(stretched < (double) REPORT_INTERVAL_MAX))
	{
		stretched = (double) REPORT_INTERVAL_MAX;
	}
	whole = (int64_t) stretched;
	whole += (double) whole < stretched; /* ceiling, without libm */
	return whole > base ? whole : base;
}

/*
 * Every status write reaches every member that watches statuses: with
 * one watch message per write, n members writing w times a second cost
 * the registry n x w messages a second (200 members at 20 writes/s: 4000
 * messages, which on a two-core machine starve etcd's raft loop until
 * keepalives time out). Batched, the same writes cost far less: a member
 * takes the statuses written since its last batch in one message, then
 * waits a fifth of the effective interval (less up to a quarter of it at
 * random, so that members do not ask together) before it asks again. A
 * batch costs five messages (the create and cancel requests and their
 * answers, the events), so the cluster costs at most about
 * 29 x writes_per_second messages a second (570 at the default budget)
 * whatever n is. A status is seen
 * within 1.2 effective intervals of the change even when its write was
 * held back by the budget for a whole interval, and advice rounds (twice
 * the effective interval apart, cluster__adv_round_interval()) plan from
 * statuses at most a tenth of a round late: the simulator
 * (bench/advisor-sim.c --lag-ms) keeps every goal with a lag of a tenth
 * of a round, and overshoots with an eighth. (A batch every N x 5 ms, 200
 * batches a second, kept a two-core etcd serving 1000 members busier
 * with batches than with keepalives, and a status storm tipped it over.)
 * Below 250 ms (fewer than 25 members at the default budget) a member
 * watches statuses live: five messages per batch would cost more than a
 * live watch's one per write.
 */
int64_t
cluster__report_poll_ms(const cluster__report_policy *p, size_t n)
{
	int64_t fifth = cluster__report_interval_for(p, n) / 5;

	return n <= 1 || fifth < 250 ? 0 : fifth;
}

int64_t
cluster__report_batch_wait(int64_t wait, int64_t since_last_ms, uint64_t r)
{
	uint64_t spread;

	if(wait <= 1)
	{
		return 1;
	}
	spread = since_last_ms > 0 && since_last_ms <= 2 * wait ? (uint64_t) wait / 4 + 1 : (uint64_t) wait;
	return wait - (int64_t) (r % spread);
}

/*
 * Did the load move enough to be worth a write? 0: no; 1: by more than
 * the deadband (write within the stretched interval); 2: by more than
 * half the band (write within the configured interval). The advisor's
 * band is max(band_absolute, band_relative x share), but the share is
 * the plan's, computed from everybody's status: the policy (one member,
 * no view) does not know it. The reference used instead is the last
 * written load: it is what every other member's plan currently uses for
 * this member, it is close to the share once the cluster is balanced
 * (which is when a deadband matters), and it stays fixed between two
 * writes, so the threshold does not move with the value it judges and a
 * move up and the same move down are judged alike. Then the others' idea
 * of this member's gap is off by at most deadband x band for long and
 * half a band for one configured interval: stale values alone cannot
 * push a member across its band edge.
 */
static int
load_moved(const cluster__report_policy *p, long long last, long long cur)
{
	double deadband = p->deadband > 0.0 ? p->deadband : 0.0;
	double rel = p->band_relative > 0.0 ? p->band_relative : 0.0;
	double ref = last > 0 ? (double) last : 0.0;
	double band = rel * ref, delta;

	if(band > 9.0e18)
	{
		band = 9.0e18; /* keeps the truncation below defined */
	}
	band = (double) (long long) band; /* truncated, as the plan's band_of() */
	if(band < (double) p->band_absolute)
	{
		band = (double) p->band_absolute;
	}
	/* the difference of any two long longs, exactly enough, without overflow */
	delta = cur >= last ? (double) ((unsigned long long) cur - (unsigned long long) last) : (double) ((unsigned long long) last - (unsigned long long) cur);
	if(delta > 0.5 * band && delta > deadband * band)
	{
		return 2;
	}
	return delta > deadband * band;
}

/*
 * The member's first slot after t: the next time congruent to its phase
 * modulo the interval (see the rule above for why slots). Phases from
 * the ids spread the members' one write per interval over the interval,
 * whatever the loads do. The price: a large move waits up to one
 * effective interval for its slot (at N = 1000, 50 s by default), where
 * a token would have let it through at once.
 */
static int64_t
next_slot(const cluster__report_policy *p, int64_t interval, int64_t t)
{
	int64_t phase = (int64_t) (p->phase % (uint64_t) interval), off;

	if(t > INT64_MAX - interval - 1)
	{
		return INT64_MAX - 1; /* due, one day; INT64_MAX means never */
	}
	off = (phase - t % interval) % interval;
	if(off <= 0)
	{
		off += interval; /* strictly after t (t itself may be a slot) */
	}
	return t + off;
}

int64_t
cluster__report_grid(const cluster__report_policy *p, size_t n, int64_t prev_ms)
{
	int64_t exact = cluster__report_interval_for(p, n);

	if(cluster__report_burst(p, n) >= 1.0)
	{
		return 0; /* no slots */
	}
	/* kept: at least the interval (the budget holds), at most a quarter
	 * more (5 exact >= 4 prev; exact is at most a day, no overflow) */
	if(prev_ms >= exact && 5 * exact >= 4 * prev_ms)
	{
		return prev_ms;
	}
	return cluster__report_ladder(exact);
}

int64_t
cluster__report_ladder(int64_t ms)
{
	int64_t step = 1;

	if(ms <= 0)
	{
		return ms;
	}
	if(ms >= REPORT_INTERVAL_MAX)
	{
		return REPORT_INTERVAL_MAX;
	}
	while(step * 16 <= ms)
	{
		step *= 2; /* ms / 16 < step <= ms / 8 */
	}
	ms = (ms + step - 1) / step * step;
	return ms < REPORT_INTERVAL_MAX ? ms : REPORT_INTERVAL_MAX;
}

uint32_t
cluster__report_phase(const char *instance)
{
	uint32_t h = 2166136261u;

	while(instance && *instance)
	{
		h = (h ^ (unsigned char) *instance++) * 16777619u;
	}
	return h;
}

int64_t
cluster__report_due(const cluster__report_policy *p, const cluster__report_sample *last,
	const cluster__report_sample *cur, size_t n, int forced, int64_t now_ms)
{
	/* non-zero where this member writes in slots (burst below a token) */
	int64_t grid = cluster__report_grid(p, n, last->grid_ms), interval;
	int moved;

	if(!last->valid)
	{
		/* at once, but in slots (everybody's first report after a
		 * deploy would be N writes at once) */
		return grid ? next_slot(p, grid, last->at_ms - 1) : now_ms;
	}
	moved = load_moved(p, last->load, cur->load);
	if(!forced && cur->capacity == last->capacity && !moved)
	{
		return INT64_MAX;
	}
	interval = cluster__report_interval_for(p, n);
	if(grid)
	{
		if(!last->grid_ms || grid == last->grid_ms)
		{
			return next_slot(p, grid, last->at_ms);
		}
		/* a new period: its slots are elsewhere, so the first one a
		 * whole period after the last write (never two writes closer) */
		if(last->at_ms > INT64_MAX - 2 * grid)
		{
			return INT64_MAX - 1;
		}
		return next_slot(p, grid, last->at_ms + grid - 1);
	}
	if(moved == 2)
	{
		/* a move the plan must see waits only the configured interval,
		 * and for a saved token: (1 - credit) intervals after the last
		 * write there is one again */
		int64_t base = cluster__report_interval_for(p, 0);
		double wait = last->credit >= 1.0 ? 0.0 : (1.0 - last->credit) * (double) interval;

		interval = wait > (double) base ? (wait < (double) interval ? (int64_t) wait + 1 : interval) : base;
	}
	if(last->at_ms >= INT64_MAX - interval)
	{
		return INT64_MAX - 1; /* due, one day; INT64_MAX means never */
	}
	return last->at_ms + interval;
}

double
cluster__report_burst(const cluster__report_policy *p, size_t n)
{
	double cap;

	if(!(p->writes_per_second > 0.0) || n == 0)
	{
		return CLUSTER__REPORT_BURST;
	}
	cap = p->writes_per_second * CLUSTER__REPORT_BURST_SECONDS / (double) n;
	return cap < CLUSTER__REPORT_BURST ? cap : CLUSTER__REPORT_BURST;
}

double
cluster__report_credit(const cluster__report_policy *p, const cluster__report_sample *last, size_t n, int64_t now_ms)
{
	double tokens, burst = cluster__report_burst(p, n);

	if(!last->valid)
	{
		return burst - 1.0;
	}
	tokens = last->credit;
	if(now_ms > last->at_ms)
	{
		tokens += (double) (now_ms - last->at_ms) / (double) cluster__report_interval_for(p, n);
	}
	if(tokens > burst)
	{
		tokens = burst;
	}
	return tokens - 1.0;
}

void
cluster__report_policy_of(cluster__report_policy *out, const CLUSTERADVISORCONFIG *cfg)
{
	memset(out, 0, sizeof(*out));
	out->interval_ms = cfg->report_interval_ms;
	out->band_absolute = cfg->band_absolute;
	out->band_relative = cfg->band_relative;
	if(cfg->version >= 2)
	{
		out->writes_per_second = cfg->status_writes_per_second;
		out->deadband = cfg->report_deadband;
	}
}
