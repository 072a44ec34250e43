/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Event models of the two seed balancers the connection advisor
 * replaces, run on the simulator's shared parts (sim.h): every node has
 * its own timers (its own phase, and for cluster-balancer a drift of a
 * few milliseconds per tick), reads other nodes' loads as old as the real
 * package reads them, and acts alone; the clients it sheds reconnect
 * through the sim_flight model (delay, loss). What each model assumes,
 * and where from, is listed at the top of bench/sim-seeds.c.
 *
 * Both runs: time is counted in milliseconds; timer events are handled
 * in time order inside ticks of tick_ms; clients in flight land at the
 * start of a tick; the judge looks at the cluster at the end of every
 * tick (overshoot with sim_track_step, balance with sim_balanced). A run
 * stops at horizon_ms, or early once nothing has changed (no client
 * sent or landed, none in flight) for long enough that every node has
 * acted on fully current data at least once since (several of its
 * intervals), so that it can never act again: balanced-and-quiet, or
 * stuck. The outcome: converged = balanced at the end; time_s = when it
 * last became balanced (0 if it started balanced and stayed so); if it
 * did not converge, when it last sent or landed a client (when it gave
 * up, or about the horizon if it never stops moving); rounds = time_s in whole intervals
 * of the algorithm's own timer, rounded up; moved = clients it shed
 * (lost ones included); lost = shed clients that never came back; the
 * rest from sim_finish(). On out of memory the outcome is zeroed with
 * time_s and rounds -1.
 */
#ifndef SIM_SEEDS_H_
#define SIM_SEEDS_H_ 1

#include <stddef.h>
#include <stdint.h>

#include "sim.h"

/*
 * cluster-balancer (seed 000, npm cluster-balancer 2.0.1) settings. As
 * in the package, 0 in interval_ms, step, precision or
 * status_interval_ms means the package's default (it defaults with ||),
 * and 0 in healthy_threshold_ms means the check is off.
 *
 * interval_ms: adviceInterval; every advice tick also publishes the
 * node's own status. status_interval_ms: the report timer, which
 * publishes too; the README's reportInterval is ignored by the code
 * (it reads advisingInterval || interval), so it stays 2500 there.
 * status_age_ms: extra age of what a reader sees, on top of the up to
 * one publish interval a status is old anyway: a status published at t
 * is read from t + status_age_ms on (storage propagation; Redis and
 * ZooKeeper: about 0). healthy_threshold_ms: healthyThreshold, a peer
 * whose status timestamp is further than this from the reader's clock
 * is ignored. latency_ms: each timer tick's work (Redis round trips)
 * before its next setTimeout, so the next tick comes interval + uniform
 * [0, latency_ms] later (a guess).
 */
typedef struct sim_cb_settings sim_cb_settings;
struct sim_cb_settings
{
	int interval_ms;          /* adviceInterval (default 5000) */
	long long step;           /* stepSize: clients shed per advice (default 2) */
	long long precision;      /* act only when max - min > precision (default 10) */
	int status_interval_ms;   /* report timer (default 2500) */
	int status_age_ms;        /* extra age of the statuses read (default 0) */
	int healthy_threshold_ms; /* healthyThreshold (default off; the README sets 2000) */
	int latency_ms;           /* each tick's work before the next timeout (default 2) */
};

/* The package's defaults (advice 5000 ms, stepSize 2, precision 10,
 * report 2500 ms, no extra age, healthyThreshold off, 2 ms latency). */
void sim_cb_defaults(sim_cb_settings *cb);

/* Its README example: adviceInterval 100, precision 3, stepSize 1,
 * healthyThreshold 2000; reportInterval 100 is ignored by the code, so
 * the report timer stays at 2500 (advice ticks publish every 100 ms). */
void sim_cb_readme(sim_cb_settings *cb);

/* One line of settings for a table; returns what snprintf returns. */
int sim_cb_describe(const sim_cb_settings *cb, char *buf, size_t size);

/*
 * Run cluster-balancer from state s (see above for timing and outcome).
 * Every node: an advice timer and a report timer, both started at the
 * node's own start time (uniform over one advice interval, from seed);
 * at each advice tick it publishes its current load, reads its peers'
 * statuses (the latest published at least status_age_ms ago), decides
 * exactly as the package's _getCurrentAdvice, and sheds
 * min(stepSize, load) clients to the one target it names, through rc.
 * rounds are in advice intervals.
 */
void sim_cb_run(const sim_state *s, const sim_judge *j, const sim_cb_settings *cb, const sim_reconnect *rc, int tick_ms, long long horizon_ms, uint64_t seed, sim_outcome *o);

/*
 * ClusterLoadBalancer (seed 001, hex cluster_load_balancer 1.0.0)
 * settings: the Worker's options, plus how long a round's answers take.
 * reply_ms: every other node's count() comes back by casts (Distributed
 * Erlang, about a millisecond: a guess) and is read reply_ms after the
 * tick; a round whose answers take a whole round is discarded.
 */
typedef struct sim_clb_settings sim_clb_settings;
struct sim_clb_settings
{
	int round_ms;          /* round_duration_seconds x 1000 (default 10 s) */
	int deviation_percent; /* allowed_average_deviation_percent (default 25) */
	int shed_percent;      /* shed_percentage (default 50) */
	long long min_shed;    /* min_shed_count: a smaller amount sheds nothing (default 10) */
	long long max_shed;    /* max_shed_count: a larger amount is cut to this (default 100) */
	int reply_ms;          /* when a round's answers are read (default 1) */
};

/* The package's defaults (10 s, 25%, 50%, 10..100, 1 ms replies). */
void sim_clb_defaults(sim_clb_settings *clb);

/* One line of settings for a table; returns what snprintf returns. */
int sim_clb_describe(const sim_clb_settings *clb, char *buf, size_t size);

/*
 * Run ClusterLoadBalancer from state s (see above for timing and
 * outcome). Every node: a round timer at its own phase (uniform over one
 * round, from seed) and a tie-breaker drawn once; at each tick it counts
 * its own load, collects every other node's current count, and sheds
 * only if it believes it is the single most loaded and above
 * avg x (1 + deviation): trunc((self - avg) x shed%), capped at max_shed,
 * nothing below min_shed. It names no target: with least_loaded 0 each
 * shed client reconnects uniformly at random to one of the other
 * in-service nodes (capacity not 0); with 1, to the least-loaded of them
 * as the shedder saw them in its round, counting the ones already sent
 * there in this shed (what a least-connections balancer in front would
 * do). rounds are in round intervals.
 */
void sim_clb_run(const sim_state *s, const sim_judge *j, const sim_clb_settings *clb, int least_loaded, const sim_reconnect *rc, int tick_ms, long long horizon_ms, uint64_t seed, sim_outcome *o);

#endif /*!SIM_SEEDS_H_*/
