/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure connection-advisor arithmetic: fair shares, the global shed plan
 * and the herd-safe pick. No I/O, no locks, no globals, no floating point
 * in any decision that must agree across members: every member that feeds
 * the same snapshot and configuration gets the same plan, bit for bit.
 * Randomness (pick, jitter) comes from an explicit caller-owned state.
 *
 * The library (advisor-api.c), the unit tests and the simulator
 * (bench/advisor-sim.c) all drive this same code.
 */
#ifndef CLUSTER_ADVISOR_H_
#define CLUSTER_ADVISOR_H_ 1

#include <stddef.h>
#include <stdint.h>
#include "libcluster.h"

/* Largest load or capacity the advisor accepts (2^40, about 1.1e12).
 * Keeps every product in the exact 128-bit arithmetic below. */
#define CLUSTER__ADV_VALUE_MAX (1LL << 40)

/*
 * An unsigned 128-bit integer as two 64-bit halves: the advisor's only
 * wide arithmetic. Plain C on every platform, with or without __int128,
 * so every member computes the same plan bit for bit.
 */
typedef struct cluster__adv_u128 cluster__adv_u128;
struct cluster__adv_u128
{
	uint64_t hi;
	uint64_t lo;
};

/* a + b, modulo 2^128. */
cluster__adv_u128 cluster__adv_u128_add(cluster__adv_u128 a, uint64_t b);

/* a x b, exact. */
cluster__adv_u128 cluster__adv_u128_mul(uint64_t a, uint64_t b);

/* a x b, modulo 2^128 (exact while the product fits). */
cluster__adv_u128 cluster__adv_u128_scale(cluster__adv_u128 a, uint64_t b);

/* -1, 0 or 1 as a <, = or > b. */
int cluster__adv_u128_cmp(cluster__adv_u128 a, cluster__adv_u128 b);

/* num / den rounded down, and num mod den through *rem (may be NULL).
 * den must not be 0 (the result is then 0, remainder num). */
cluster__adv_u128 cluster__adv_u128_divmod(cluster__adv_u128 num, cluster__adv_u128 den, cluster__adv_u128 *rem);

/* One member as the advisor sees it. Inputs are sorted by id (byte
 * order), as a view is. */
typedef struct cluster__adv_node cluster__adv_node;
struct cluster__adv_node
{
	const char *id; /* not owned */
	int workers;    /* weight when capacity is unbounded */
	int passive;
	int has_status;
	long long load;
	long long capacity;   /* CLUSTER_CAPACITY_UNBOUNDED, 0 draining, or a max */
	int64_t age_ms;       /* local time since the record last changed */
	int64_t mod_revision; /* record identity, for provisional picks */
	int64_t received_ms;
	int64_t since_join_ms; /* 0: long present (past the hold-down and slow start by its published age, or present since this instance's first view); > 0: (re)joined this many ms ago, by its published age, else as seen locally (at least 1) */
};

/* The id of the node that stands for members that left lately
 * (advisor-api.c): after every valid name in byte order, so a view's
 * nodes followed by it are still sorted. */
#define CLUSTER__ADV_GHOST_ID "\x7f"

/* Make g the ghost node holding load (clamped to CLUSTER__ADV_VALUE_MAX):
 * a draining member (capacity 0) of one worker with that status, so its
 * load counts in everyone's share and nothing is sent to it. The caller
 * appends it after the view's nodes. */
void cluster__adv_ghost_node(cluster__adv_node *g, long long load);

/* Role of a node in the plan. */
#define CLUSTER__ADV_OUT      0 /* no valid status, passive, or in its hold-down: ignored */
#define CLUSTER__ADV_MEMBER   1 /* takes part; may be a target */
#define CLUSTER__ADV_DRAINING 2 /* capacity 0: evacuate, never a target */

/* One row of the global plan: move count connections from -> to. */
typedef struct cluster__adv_row cluster__adv_row;
struct cluster__adv_row
{
	size_t from;
	size_t to;
	long long count;
};

/* The global plan for one round, with everything needed to explain it. */
typedef struct cluster__adv_plan cluster__adv_plan;
struct cluster__adv_plan
{
	size_t n;
	signed char *role;        /* CLUSTER__ADV_* per node */
	long long *weight;        /* fair-share weight (0 unless MEMBER) */
	long long *share;         /* fair share; shares sum to total_load */
	long long *band;          /* hysteresis band around the share */
	long long *gap;           /* load - share (a deficit scaled by the member's slow-start ramp) */
	signed char *out_of_band; /* |gap| > band (draining: gap > 0) */
	long long *shed;          /* connections this node sends this round */
	long long *inflow;        /* connections this node receives this round */
	cluster__adv_row *rows;   /* ordered by source priority */
	size_t nrows;
	long long total_load;   /* sum of loads of MEMBER and DRAINING nodes */
	long long minimum;      /* fewest moves that get every member inside its band */
	long long wanted;       /* connections the plan wants moved (before limits) */
	long long moved;        /* sum of rows this round */
	long long round_budget; /* cluster-wide cap for this round, -1 none */
	long long unplaceable;  /* load that fits nowhere (cluster over capacity) */
	int balanced;           /* nobody out of band: no rows */
};

/*
 * Check a configuration. Returns 0, or EINVAL with *field naming the
 * offending field and *rule saying what it must be.
 */
int cluster__adv_config_check(const CLUSTERADVISORCONFIG *cfg, const char **field, const char **rule);

/* The advice round interval (ms) in a cluster of n members: every
 * member's rounds fall on the same multiples of it (advisor-api.c), so
 * that they all plan from nearly the same statuses. It is
 * advice_interval_ms, stretched to twice the effective report interval
 * (report-policy.h; rounded up on cluster__report_ladder(), so that a
 * member joining or leaving does not move the boundaries) when statuses
 * are written less often than that: a
 * round then plans from statuses written after the previous round's
 * moves, not from the ones those moves made stale. */
int64_t cluster__adv_round_interval(const CLUSTERADVISORCONFIG *cfg, size_t n);

/* Connections one round may move cluster-wide (budget x round interval
 * in a cluster of n, at least 1), or -1 when the budget is unlimited. */
long long cluster__adv_round_budget(const CLUSTERADVISORCONFIG *cfg, size_t n);

/*
 * Hold-down and slow start of a member that (re)joined since_join_ms ago
 * (cluster__adv_node.since_join_ms), in sixteenths of its full weight:
 * 0 while held down (0 < since_join_ms < hold_down_ms: it takes no part
 * yet), CLUSTER__ADV_RAMP_FULL when established (since_join_ms 0, or past
 * hold_down_ms + slow_start_ms), otherwise 1 + 15 x (since_join_ms -
 * hold_down_ms) / slow_start_ms, rounded down: 1 to 15 across the slow
 * start. Integers only, in 16 steps, so members whose clocks differ by a
 * few milliseconds agree. A configuration older than version 3 has
 * neither: always full.
 */
#define CLUSTER__ADV_RAMP_FULL 16
int cluster__adv_ramp(const CLUSTERADVISORCONFIG *cfg, int64_t since_join_ms);

/* The hold-down and slow-start windows (ms) of cfg: 0 when off or when
 * the configuration predates them (a version 2 structure has no such
 * fields). */
void cluster__adv_ramp_windows(const CLUSTERADVISORCONFIG *cfg, int64_t *hold, int64_t *slow);

/* Milliseconds from since_join_ms until cluster__adv_ramp() changes (at
 * least 1), or -1 when it never will (already full): when a cached pick
 * must be rebuilt. */
int64_t cluster__adv_ramp_next(const CLUSTERADVISORCONFIG *cfg, int64_t since_join_ms);

/* The room a member holding held connections has below its fill level:
 * its share, or for a member in its slow start (ramp < 16, ramp 0
 * counting as 1) share x ramp / 16, so that its level, not just its
 * weight, rises over the window (the others may have no room at all, and
 * a weight alone would still send it every new client). 0 when at or
 * above. The plan (its deficit), cluster__adv_pick() and the picker (tier
 * 2) share it, so they agree. */
long long cluster__adv_ramp_room(long long share, long long held, int ramp);

/*
 * Fair shares only: fills role, weight and share (arrays of n) and
 * returns the load that fits nowhere through *unplaceable (may be NULL).
 * With a configuration (cfg not NULL), a member in its hold-down
 * (cluster__adv_ramp() 0) is CLUSTER__ADV_OUT, its load not counted,
 * unless no member or draining one would be left at all (everyone just
 * joined): then the hold-down is ignored. The plan uses this one.
 * Returns 0 or ENOMEM.
 */
int cluster__adv_shares_cfg(const cluster__adv_node *nodes, size_t n, const CLUSTERADVISORCONFIG *cfg, signed char *role, long long *weight, long long *share,
	long long *unplaceable);

/* The same without a configuration: no hold-down (every node counts as
 * established, whatever its since_join_ms). */
int cluster__adv_shares(const cluster__adv_node *nodes, size_t n, signed char *role, long long *weight, long long *share, long long *unplaceable);

/* Compute the global plan (members in their hold-down take no part:
 * cluster__adv_shares_cfg()). Returns 0 or ENOMEM (plan left empty). */
int cluster__adv_plan_compute(cluster__adv_plan *plan, const cluster__adv_node *nodes, size_t n, const CLUSTERADVISORCONFIG *cfg);

/* Release a plan (safe on an empty or zeroed plan). */
void cluster__adv_plan_free(cluster__adv_plan *plan);

/* Provisional picks: this instance's own recent picks per target, counted
 * as extra load until the target's record changes or the entry expires. */
typedef struct cluster__adv_prov_entry cluster__adv_prov_entry;
struct cluster__adv_prov_entry
{
	char id[CLUSTER_NAME_MAX + 1];
	long long count;
	int64_t mod_revision;
	int64_t received_ms;
	int64_t expires_ms;
};

typedef struct cluster__adv_prov cluster__adv_prov;
struct cluster__adv_prov
{
	cluster__adv_prov_entry *entries;
	size_t count;
	size_t size;
};

/* Position of id in nodes (n of them, sorted by id), or -1. */
long cluster__adv_find_node(const cluster__adv_node *nodes, size_t n, const char *id);

/*
 * Has target's record caught up with the provisional picks of entry e (in
 * a cluster of n)? Only a record received after the last of them
 * (expires_ms - cluster__adv_prov_timeout()) includes them all: then the
 * entry is to be forgotten (1). A record that changed earlier (it was
 * written while picks were still being made) leaves the entry counting,
 * now against that record (e is updated, 0); an unchanged record too.
 */
int cluster__adv_prov_stale(cluster__adv_prov_entry *e, const cluster__adv_node *target, const CLUSTERADVISORCONFIG *cfg, size_t n);

/* A new entry for target at the end of the provisional table (count 0,
 * no expiry yet); NULL when out of memory. */
cluster__adv_prov_entry *cluster__adv_prov_append(cluster__adv_prov *prov, const cluster__adv_node *target);

/* Release the provisional table's storage. */
void cluster__adv_prov_free(cluster__adv_prov *prov);

/* How long a provisional pick counts when the target's record does not
 * change (ms), in a cluster of n members: three effective report
 * intervals (report-policy.h), the longest a target may take to publish
 * the load the picks gave it. */
int64_t cluster__adv_prov_timeout(const CLUSTERADVISORCONFIG *cfg, size_t n);

/* The live members of a snapshot of n nodes: n, less the ghost node when
 * the last node is one. */
size_t cluster__adv_live(const cluster__adv_node *nodes, size_t n);

/* The pickers an instance assumes: cfg->pickers when set (version 4),
 * else the live members of the snapshot that publish a usable status (at
 * least 1): the servers, which pick for their clients; members that
 * publish none (workers, watchers) do not. */
size_t cluster__adv_pickers(const CLUSTERADVISORCONFIG *cfg, const cluster__adv_node *nodes, size_t n);

/*
 * Provisional load as a picker counts it in tiers 2 and 3 of the pick: its
 * own prov picks to a target, times the pickers it assumes. Every member
 * (and every gateway) may be picking from the same written statuses at
 * the same rate, and none sees the others' picks until the target writes
 * again; counting its own picks once, each would fill the whole room, and
 * the target would receive pickers x its room (a herd). Counted this way
 * each claims its part. Saturates at CLUSTER__ADV_VALUE_MAX. The capacity
 * check (a full member is never picked) counts prov once: that is a fact,
 * this an estimate.
 */
long long cluster__adv_prov_seen(long long prov, size_t pickers);

/* Tier 3's comparison, power of two choices: is b (held_b connections
 * counting provisional load as seen, fair-share weight weight_b) less
 * used than a? Cross-multiplied, integers only; the first wins a tie. */
int cluster__adv_less_used(long long held_b, long long weight_b, long long held_a, long long weight_a);

/* The self argument of cluster__adv_pick() for a caller that is not one
 * of the nodes (or has no usable status). */
#define CLUSTER__ADV_NO_SELF ((size_t) -1)

/*
 * Herd-safe, plan-aware pick. self is the picking instance's position in
 * nodes, or CLUSTER__ADV_NO_SELF. Drops provisional entries whose target
 * changed record, vanished or expired. Eligible targets: valid status,
 * not passive, not draining, not in its hold-down (role MEMBER in the
 * plan), not stale, not full counting provisional load. The pick computes the same global plan every member computes from
 * this snapshot (cluster__adv_plan_compute) and samples among the eligible
 * targets with probability proportional to the first of these weights
 * that is positive somewhere (prov = provisional picks of this caller):
 *   1. own rows: row(self, t) - prov[t], so a shedder's repeated picks
 *      follow its rows exactly, in proportion, until they are exhausted;
 *   2. room below the share: share[t] - load[t] - seen(prov[t]) (callers
 *      without rows, e.g. new clients: independent callers spread in
 *      proportion to the deficits instead of crowding the few places no
 *      row claims, and each claims only its part of a room,
 *      cluster__adv_prov_seen), below share x ramp / 16 for a member in
 *      its slow start (cluster__adv_ramp_room; tier 1 is not scaled: the
 *      plan decides the rows);
 *   3. otherwise two random choices, lower capacity-aware utilisation
 *      (load + seen(prov) + 1) / weight.
 * Hence when every shedder of one snapshot picks exactly its shed count,
 * the picks land exactly on the plan: no target receives more than its
 * inflow and nobody overshoots. A tier with no weight draws no random
 * number. The chosen target's provisional count is then incremented.
 * Returns 0 (*chosen set), ENOENT (nobody can take a client) or ENOMEM.
 */
int cluster__adv_pick(const cluster__adv_node *nodes, size_t n, size_t self, const CLUSTERADVISORCONFIG *cfg, cluster__adv_prov *prov, int64_t now_ms, uint64_t *rng, size_t *chosen);

/* splitmix64: next pseudo-random 64-bit value from *state. */
uint64_t cluster__adv_random(uint64_t *state);

/* Uniform integer in [0, bound) (bound > 0), without modulo bias. */
uint64_t cluster__adv_random_below(uint64_t *state, uint64_t bound);

/* An interval with the configured jitter applied: interval_ms x (1 +- jitter),
 * uniform, at least 1 ms. */
int64_t cluster__adv_jittered(int interval_ms, double jitter, uint64_t *rng);

#endif /*!CLUSTER_ADVISOR_H_*/
