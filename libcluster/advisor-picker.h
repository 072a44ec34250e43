/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: the herd-safe pick of advisor.h (cluster__adv_pick),
 * built once per snapshot and then answered in O(log n) per pick.
 *
 * cluster__adv_pick() computes the global plan and scans every member on
 * each call: O(n log n). Between two changes of the view nothing it
 * derives from the snapshot changes except the provisional counts (one
 * target per pick), the provisional entries that expire and the members
 * that go stale with time. The picker keeps what a pick reads of the plan
 * (each target's room, its rows from this caller, its weight; the rest of
 * the plan is let go after the build) and the tier weights in sum trees
 * (prefix sums with point updates) and applies exactly those events, so
 * that it returns exactly what cluster__adv_pick() would
 * return for the same snapshot, provisional table, time and random state,
 * pick after pick (tests/test_advisor.c checks it), at a cost of
 * O(log n) in base 8: the same four levels from 513 to 4096 members. Pure: no I/O, no locks, no globals.
 */
#ifndef CLUSTER_ADVISOR_PICKER_H_
#define CLUSTER_ADVISOR_PICKER_H_ 1

#include "advisor.h"

/* Prefix sums over positions with point updates, eight children per
 * node, so that finding the position where a running sum passes x reads
 * one run of eight sums per level: 4 levels for 513 to 4096 targets. */
#define CLUSTER__ADV_SUMTREE_LEVELS 24
typedef struct cluster__adv_sumtree cluster__adv_sumtree;
struct cluster__adv_sumtree
{
	uint64_t *v;                             /* every level, leaves first, each padded to a multiple of 8 */
	size_t off[CLUSTER__ADV_SUMTREE_LEVELS]; /* where each level starts in v */
	int levels;
	uint64_t total;
};

/* What one pick reads or writes about one target besides its node (the
 * load, capacity and receipt time are read there) and its leaves in the
 * sum trees (which hold its tier weights), together, so that a pick
 * touches a few cache lines per target, not one per array (at a few
 * thousand members the arrays outgrow the caches): 56 bytes. */
typedef struct cluster__adv_pick_slot cluster__adv_pick_slot;
struct cluster__adv_pick_slot
{
	long long room;     /* share - load */
	long long own;      /* row(self, t) */
	long long prov;     /* provisional picks (live entries) */
	long long weight;   /* fair-share weight in the plan (0 unless a member) */
	int64_t expires;    /* the provisional entry's expiry */
	size_t entry;       /* position of the entry in the table, or (size_t) -1 */
	signed char member; /* role CLUSTER__ADV_MEMBER */
	signed char cand;   /* eligible target */
	signed char ramp;   /* slow start: cluster__adv_ramp() of the node */
};

typedef struct cluster__adv_picker cluster__adv_picker;
struct cluster__adv_picker
{
	const cluster__adv_node *nodes; /* the snapshot; not owned, must outlive the picker */
	size_t n;
	size_t pickers; /* cluster__adv_pickers() of the snapshot */
	size_t self;
	CLUSTERADVISORCONFIG cfg;
	int64_t now_ms;                    /* latest time seen (time never goes back) */
	cluster__adv_pick_slot *slot;      /* per target */
	struct cluster__adv_pick_due *due; /* provisional expiries, earliest first (grown on demand) */
	size_t due_head, due_len, due_size;
	cluster__adv_sumtree w1, w2; /* tier 1, tier 2 weights */
	cluster__adv_sumtree cands;  /* 1 per candidate */
	size_t top;                  /* highest power of two <= n (0 when n is 0) */
	int built;                   /* cluster__adv_picker_build() succeeded */
	size_t *stale;               /* candidates by stale deadline, earliest first */
	size_t nstale, next_stale;
};

/*
 * Build the picker for a snapshot (nodes sorted by id, as for
 * cluster__adv_pick, and kept alive by the caller) at now_ms: the plan,
 * this caller's rows (self may be CLUSTER__ADV_NO_SELF), the provisional
 * table refreshed as cluster__adv_pick() refreshes it. Returns 0 or ENOMEM
 * (the picker is then empty; cluster__adv_picker_free() is still safe).
 */
int cluster__adv_picker_build(cluster__adv_picker *pk, const cluster__adv_node *nodes, size_t n, size_t self, const CLUSTERADVISORCONFIG *cfg,
	cluster__adv_prov *prov, int64_t now_ms);

/*
 * One pick at now_ms, with the provisional table given to
 * cluster__adv_picker_build() (and used by nothing else in between): the
 * same answer, random draws and provisional bookkeeping (once synced,
 * see cluster__adv_picker_sync()) as cluster__adv_pick() on the same snapshot, with each node's age_ms taken
 * as now_ms - received_ms (0 when received_ms is 0). now_ms earlier than
 * a previous call counts as that call's time. Returns 0 (*chosen set),
 * ENOENT or ENOMEM. O(log n), plus O(1) per member that went stale or
 * provisional entry that expired since the previous call.
 */
int cluster__adv_picker_pick(cluster__adv_picker *pk, cluster__adv_prov *prov, int64_t now_ms, uint64_t *rng, size_t *chosen);

/*
 * Write the provisional counts and expiries back into the table. The
 * picker keeps them per target and touches the table only to add an
 * entry, so that a pick stays within a few cache lines: call this before
 * the table is used by anything but the picker (another build,
 * cluster__adv_pick(), inspection).
 */
void cluster__adv_picker_sync(const cluster__adv_picker *pk, cluster__adv_prov *prov);

/* Release a picker (safe on a zeroed or failed one). */
void cluster__adv_picker_free(cluster__adv_picker *pk);

#endif /*!CLUSTER_ADVISOR_PICKER_H_*/
