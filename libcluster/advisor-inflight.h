/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: redirects in flight. Between the moment a member tells
 * clients to go and the moment their target publishes a load that
 * includes them, those clients are counted nowhere: the source's load has
 * dropped, the target's status has not yet risen. A member whose advice
 * round falls in that window would see the target's deficit still open
 * and fill it again (the simulator measured 1.7x the fewest moves and an
 * overshoot of 1200 connections in a 10 x 1k rolling deploy). So the
 * source keeps the clients it redirected in the load it publishes until
 * their target has confirmed them, and sends no more than its plan rows
 * minus what it already sent and still publishes.
 *
 * Pure: no I/O, no locks, no globals. advisor-api.c and the simulator
 * (bench/advisor-sim.c) drive the same functions.
 */
#ifndef CLUSTER_ADVISOR_INFLIGHT_H_
#define CLUSTER_ADVISOR_INFLIGHT_H_ 1

#include "advisor.h"

/*
 * Redirects sent, one entry per target (a cluster__adv_prov table: count
 * = clients sent there, mod_revision = the target's record when they
 * were last sent, received_ms = when they were last sent, expires_ms = 0
 * while unconfirmed, else when confirmed). Confirmed entries are kept a
 * while for the allowance: the plan counts them in this member's load
 * until its own record changes. base is this instance's reported load
 * just before the first unconfirmed one was advised, so the published
 * load never exceeds what it really held.
 */
typedef struct cluster__adv_inflight cluster__adv_inflight;
struct cluster__adv_inflight
{
	cluster__adv_prov sent;
	long long base;
};

/*
 * Mark the redirects their targets have confirmed: the target's record
 * changed after the send and settle_ms have passed since it (time for
 * the clients to reconnect and the target to publish them), or the target
 * left the view (nodes sorted by id), or 4 x settle_ms have passed in any
 * case; entries sent 4 x settle_ms ago are forgotten. Returns the clients
 * still unconfirmed.
 */
long long cluster__adv_inflight_refresh(cluster__adv_inflight *f, const cluster__adv_node *nodes, size_t n, int64_t now_ms, int64_t settle_ms);

/*
 * How long a target has to confirm redirected clients in a cluster of n:
 * half a round interval (cluster__adv_round_interval). Rounds are
 * aligned, so the next one comes a whole interval later; by then the
 * target has written what arrived and the source its lower load, and the
 * plan sees neither side twice.
 */
int64_t cluster__adv_inflight_settle(const CLUSTERADVISORCONFIG *cfg, size_t n);

/* Record count clients sent to target at now_ms, this instance's load
 * before the advice being load_before. Returns 0 or ENOMEM. */
int cluster__adv_inflight_add(cluster__adv_inflight *f, const cluster__adv_node *target, long long count, long long load_before, int64_t now_ms);

/* Clients still unconfirmed (after the last refresh). */
long long cluster__adv_inflight_total(const cluster__adv_inflight *f);

/*
 * The load to publish for a reported load and capacity, u clients
 * unconfirmed and base the load before they were advised: load + u, but
 * never more than base (an application that ignored the advice publishes
 * its own load) nor more than a bounded capacity (nor less than load).
 */
long long cluster__adv_published_load(long long load, long long capacity, long long u, long long base);
/*
 * The load to publish: the reported load plus the unconfirmed redirects,
 * but never more than the load held when they were advised (an
 * application that did not follow the advice publishes its own load) nor
 * more than a bounded capacity.
 */
long long cluster__adv_inflight_published(const cluster__adv_inflight *f, long long load, long long capacity);

/*
 * How many of its plan rows this instance may still send: its shed in
 * the plan minus the clients it redirected after its own record (the one
 * the plan saw) last changed at record_ms: the plan still counts those
 * as its load. Never negative.
 */
long long cluster__adv_inflight_allowance(const cluster__adv_inflight *f, const cluster__adv_plan *plan, size_t self, int64_t record_ms);

/* Release the table. */
void cluster__adv_inflight_free(cluster__adv_inflight *f);

#endif /*!CLUSTER_ADVISOR_INFLIGHT_H_*/
