/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The connection-advisor simulator's shared parts: a cluster's state, the
 * judge (fair shares, bands and the true lower bound of moves, computed
 * here from their definitions, independently of the library's code), the
 * reconnection model (clients in flight, with delay and loss) and the
 * outcome every algorithm is scored on. bench/advisor-sim.c drives the
 * library, bench/sim-seeds.c the two seed balancers; both use this.
 */
#ifndef SIM_H_
#define SIM_H_ 1

#include <stdint.h>

#define SIM_MAXN      64
#define SIM_UNBOUNDED (-1LL) /* = CLUSTER_CAPACITY_UNBOUNDED */

/* A cluster: loads, capacities (SIM_UNBOUNDED, 0 draining, or a max) and
 * worker counts. */
typedef struct sim_state sim_state;
struct sim_state
{
	int n;
	long long load[SIM_MAXN];
	long long cap[SIM_MAXN];
	int workers[SIM_MAXN];
};

/*
 * The yardstick for one total load. share[i] is the fair share by the
 * definition in README "Connection advisor" (capacity-weighted; an
 * unbounded member weighs workers x the bounded members' capacity per
 * worker; pinned at capacity by water-filling; a draining member's share
 * is 0), computed in floating point. A member is balanced when its load
 * is within [lo, hi]: share -+ band, band = max(band_absolute,
 * band_relative x share), widened by one connection each side for
 * rounding (integer shares may differ from the exact ones by less than
 * one). lower_bound is the fewest connections any algorithm must move to
 * get from the state to a balanced one: max(sum of load above hi, sum of
 * room below lo), since every move takes one connection from one member
 * and gives it to one other.
 */
typedef struct sim_judge sim_judge;
struct sim_judge
{
	int n;
	double share[SIM_MAXN];
	long long lo[SIM_MAXN], hi[SIM_MAXN];
	long long lower_bound;
};

/* The judge for state s with the given band. */
void sim_judge_of(const sim_state *s, long long band_absolute, double band_relative, sim_judge *j);

/* Every member within [lo, hi]. */
int sim_balanced(const sim_judge *j, const long long *load);

/*
 * Overshoot: how far a member crossed its share the wrong way (one that
 * started above it ending below, or the reverse), beyond the one
 * connection of rounding. sim_track_start records each member's side;
 * sim_track_step keeps the worst crossing per member.
 */
typedef struct sim_track sim_track;
struct sim_track
{
	int side[SIM_MAXN];
	long long worst[SIM_MAXN];
};
void sim_track_start(sim_track *t, const sim_judge *j, const long long *load);
void sim_track_step(sim_track *t, const sim_judge *j, const long long *load);

/* What a run is scored on. */
typedef struct sim_outcome sim_outcome;
struct sim_outcome
{
	int converged;       /* every member balanced (and stayed so to the end of the run) */
	double time_s;       /* when it last became balanced */
	long long rounds;    /* ... in rounds of the algorithm's own interval */
	long long moved;     /* connections the algorithm redirected */
	long long lost;      /* redirected clients that never came back */
	long long overshoot; /* sum over members of the worst crossing */
	int within_band;     /* every crossing stayed inside the member's band */
	double max_fs;       /* final load / share, largest and smallest */
	double min_fs;
	long long over_capacity; /* connections above a capacity at the end */
};

/* Fill overshoot, within_band, max_fs, min_fs and over_capacity. */
void sim_finish(const sim_judge *j, const sim_track *t, const sim_state *s, const long long *load, sim_outcome *o);

/* Deterministic randomness (splitmix64). */
uint64_t sim_rand(uint64_t *state);
/* Uniform in [0, bound), bound > 0. */
uint64_t sim_below(uint64_t *state, uint64_t bound);
/* Uniform in [0, 1). */
double sim_unit(uint64_t *state);

/*
 * Clients in flight: a redirected (or disconnected) client reconnects
 * after a delay drawn uniformly from [delay_min_ms, delay_max_ms], or is
 * lost (never comes back) with probability loss. Time is in ticks of
 * tick_ms. Each landing names its target (-1: the model chooses when it
 * lands, e.g. through a pick).
 */
typedef struct sim_reconnect sim_reconnect;
struct sim_reconnect
{
	int delay_min_ms;
	int delay_max_ms;
	double loss;
};

typedef struct sim_flight sim_flight;
struct sim_flight
{
	int tick_ms;
	int nslots;          /* ring of future ticks */
	long long *count;    /* [nslots][SIM_MAXN + 1]: per tick, per target (last: unnamed) */
	long long in_flight; /* clients currently in flight */
	long long cursor;    /* the tick sim_flight_land() last delivered */
};

/* Returns 0, or -1 when out of memory. */
int sim_flight_init(sim_flight *f, int tick_ms, const sim_reconnect *rc);
void sim_flight_free(sim_flight *f);

/* count clients leave at tick now for target (-1: unnamed); returns how
 * many of them are lost. */
long long sim_flight_send(sim_flight *f, const sim_reconnect *rc, long long now_tick, int target, long long count, uint64_t *rng);

/* The clients landing at tick now (call it every tick, in order: landing
 * is what clears the ring): arrived[t] for t in 0..n-1 gets the
 * named ones, *unnamed the others (arrays cleared first). */
void sim_flight_land(sim_flight *f, long long now_tick, int n, long long *arrived, long long *unnamed);

#endif /*!SIM_H_*/
