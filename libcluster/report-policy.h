/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: when a member writes its advisor status (load,
 * capacity, address) to the registry. Every member of N writes through
 * the same rule, so the cluster-wide write rate -- and with it the
 * registry's fan-out to the members that watch statuses -- stays bounded
 * as N grows. Pure: no I/O, no locks, no globals.
 */
#ifndef CLUSTER_REPORT_POLICY_H_
#define CLUSTER_REPORT_POLICY_H_ 1

#include <stddef.h>
#include <stdint.h>
#include "libcluster.h"

typedef struct cluster__report_policy cluster__report_policy;
struct cluster__report_policy
{
	int interval_ms;          /* the advisor's report_interval_ms */
	double writes_per_second; /* cluster-wide budget; 0 = no limit */
	double deadband;          /* fraction of the band; 0 = every change */
	long long band_absolute;  /* the advisor's bands */
	double band_relative;
	uint32_t phase; /* this member's write slot (cluster__report_phase()) */
};

/* A member's write slot from its instance id (FNV-1a): past
 * cluster__report_burst() < 1 it writes only at the times congruent to
 * phase modulo the effective interval, so that the members' writes are
 * spread over the interval. */
uint32_t cluster__report_phase(const char *instance);

/* The policy an advisor configuration sets (the version 2 fields count
 * only in a version 2 structure: before, no budget and no deadband). */
void cluster__report_policy_of(cluster__report_policy *out, const CLUSTERADVISORCONFIG *cfg);

/* A status as written (or about to be). */
typedef struct cluster__report_sample cluster__report_sample;
struct cluster__report_sample
{
	int valid; /* 0: never written */
	long long load;
	long long capacity;
	int64_t at_ms;   /* when it was written (monotonic ms); not valid:
	                * since when a first write has been waiting */
	double credit;   /* write tokens left after that write
	                * (cluster__report_credit()) */
	int64_t grid_ms; /* the slot grid of that write (cluster__report_grid());
	                  * 0: none */
};

/* Write tokens a member may save up: after a quiet spell it may write
 * this many large load moves at the configured interval before it falls
 * back to one write per effective interval (report-policy.c says why
 * three). Fewer in a large cluster: cluster__report_burst(). */
#define CLUSTER__REPORT_BURST 3.0

/* Seconds of the cluster-wide budget that all members' saved tokens
 * together may spend at once (cluster__report_burst()). */
#define CLUSTER__REPORT_BURST_SECONDS 10.0

/* The tokens a member of a cluster of n may save: CLUSTER__REPORT_BURST,
 * at most writes_per_second x CLUSTER__REPORT_BURST_SECONDS / n (no
 * limit without a budget). Below 1 a member never writes a large move
 * sooner than (1 - burst) effective intervals after its last write. */
double cluster__report_burst(const cluster__report_policy *p, size_t n);

/* The effective report interval (ms) in a cluster of n members:
 * max(interval_ms (1000 when unset), ceil(n x 1000 / writes_per_second)),
 * at most one day; writes_per_second <= 0 means no limit. */
int64_t cluster__report_interval_for(const cluster__report_policy *p, size_t n);

/*
 * The period (ms) of the slot grid for n members, when the last write was
 * on grid prev_ms (0: none): prev_ms while it still holds the budget and
 * is at most a quarter longer than the effective interval, else the
 * effective interval rounded up to one of eight steps per octave; 0 when
 * n members write without slots (cluster__report_burst() >= 1: n = 0,
 * no budget, or a budget that saves each member a token). A slot grid
 * that followed n exactly would move every member's slot whenever one
 * member joins or leaves (see report-policy.c).
 */
int64_t cluster__report_grid(const cluster__report_policy *p, size_t n, int64_t prev_ms);

/* ms rounded up to one of eight steps per octave (at most an eighth
 * more), capped at a day; ms <= 0 unchanged. Every n whose interval falls
 * between two steps gets the same value. */
int64_t cluster__report_ladder(int64_t ms);

/*
 * How long (ms) a member that watches statuses waits between two status
 * batches in a cluster of n members: a fifth of the effective report
 * interval (cluster__report_interval_for); 0 (watch live) when that is
 * under 250 ms or n <= 1.
 */
int64_t cluster__report_poll_ms(const cluster__report_policy *p, size_t n);

/*
 * The wait (ms) after a status batch, from the poll wait (> 0), how long
 * ago the previous batch ended (since_last_ms; <= 0 when there was none)
 * and a random number r: shortened by r modulo a quarter of the wait, so
 * that it never grows and members drift apart; by r modulo all of it
 * when the previous batch is more than two waits old (the watch sat
 * live, so the first write of a storm reached every member at once:
 * otherwise they would all ask again within one quarter of a wait, and
 * etcd would replay the storm's first writes to all of them together).
 * Between 1 and wait.
 */
int64_t cluster__report_batch_wait(int64_t wait, int64_t since_last_ms, uint64_t r);

/*
 * When cur should be written, given the last written status and the
 * member count n: an absolute monotonic time in ms (now_ms or earlier
 * means now), or INT64_MAX if cur need not be written at all. forced
 * (an address change, the first write) ignores the deadband but not the
 * interval. The rule, with band = max(band_absolute, band_relative x
 * last->load): the first write (last->valid == 0) is due at now_ms; a load
 * that moved from last->load by more than half the band (and the
 * deadband) is due interval_ms after last->at_ms; a capacity change, a
 * forced write, or a load that moved by more than deadband x band is due
 * one effective interval (cluster__report_interval_for) after
 * last->at_ms; anything else is never due (an unchanged status is not
 * refreshed: the lease keeps the key; the etcd engine forces a refresh
 * while the age a status publishes is inside the hold-down and slow
 * start). In a cluster so large that a member saves less than one token
 * (cluster__report_burst() < 1), every write is due at the member's next
 * slot (p->phase) after last->at_ms instead, the first at its first slot
 * from last->at_ms on (the caller keeps that time fixed while the first
 * write waits).
 */
int64_t cluster__report_due(const cluster__report_policy *p, const cluster__report_sample *last,
	const cluster__report_sample *cur, size_t n, int forced, int64_t now_ms);

/*
 * The write tokens left after a write at now_ms that follows last (not
 * valid: the first write). Tokens accrue at one per effective interval
 * up to cluster__report_burst(); each write spends one (the result may
 * be negative: that much more to accrue before the next token). Store the result in
 * the new sample's credit.
 */
double cluster__report_credit(const cluster__report_policy *p, const cluster__report_sample *last, size_t n, int64_t now_ms);

#endif /*!CLUSTER_REPORT_POLICY_H_*/
