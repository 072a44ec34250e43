/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: the engine interface. An engine (static, etcd v3,
 * etcd v2) establishes and watches membership. It gets a fixed
 * configuration when it joins and talks back to the core only through
 * the hooks declared here, with the cluster handle as an opaque token:
 * engines include this header and util.h, never cluster-int.h, so they
 * cannot reach into the cluster object.
 */
#ifndef CLUSTER_ENGINE_H_
#define CLUSTER_ENGINE_H_ 1

#include <stddef.h>
#include <stdint.h>
#include "libcluster.h"
#include "view.h"

/* How long past the TTL a join waits for a crashed predecessor's key
 * (same id) to go before it fails with EEXIST. The lease runs out a TTL
 * after its last renewal at most, but etcd notices expired leases only
 * every 500 ms and deletes their keys through a raft round: 3.0 to 3.5 s
 * after the crash with TTL 3 on an idle machine, and more than 4.2 s once
 * on a loaded one (CI, ThreadSanitizer), past the 1 s this used to be. */
#define CLUSTER__DUPLICATE_GRACE_MS 2000

/* What an engine needs to join, fixed for the whole time it is joined.
 * The strings belong to the core and stay valid (and unchanged) until the
 * engine's leave returns. */
typedef struct cluster__engine_config cluster__engine_config;
struct cluster__engine_config
{
	const char *key;
	const char *env;
	const char *partition; /* NULL: none */
	const char *instance;
	int passive;            /* watch only: register nothing */
	int ttl;                /* lease TTL (s) */
	int request_timeout_ms; /* one registry request */
	int join_timeout_ms;    /* all of join's retries */
	const char *ca_file;    /* TLS (each may be NULL) */
	const char *cert_file;
	const char *key_file;
	const char *user; /* credentials (both or neither) */
	const char *password;
	int want_statuses;   /* the advisor is in use: watch others' statuses */
	int shards;          /* shard ownership: the shard count (0: off) */
	int shard_settle_ms; /* ... and its settle window */
	int static_index;    /* static engine: this member's base */
	int static_total;    /* static engine: the cluster total (0: 1) */
};

typedef struct cluster__engine cluster__engine;

/*
 * An engine's entry points. The core calls create, destroy, join, leave
 * and workers_changed as control calls (one at a time, with its control
 * lock held and no other lock); status_changed and cancel_join may come
 * from any thread at any time while the engine exists.
 */
struct cluster__engine
{
	const char *name; /* log tag: "static", "etcd", "etcd2" */
	/* Parse the registry URI (NULL for static) into a new engine for the
	 * handle core (kept for the hooks). Returns 0 with *out set, or an
	 * errno value (EINVAL after logging the reason, ENOMEM). */
	int (*create)(CLUSTER *core, const char *uri, void **out);
	/* Free the engine (never called while joined). */
	void (*destroy)(void *engine);
	/* Join with cfg (valid until leave returns). Before returning 0 the
	 * engine has published the initial view (cluster__publish_tables()).
	 * Returns 0 or an errno value (logged); on failure nothing is left
	 * registered (as far as the registry let us) and no thread runs. */
	int (*join)(void *engine, const cluster__engine_config *cfg);
	/* Leave: stop threads and deregister, within CLUSTER_LEAVE_BUDGET_MS.
	 * The core then reports index -1 to the callback. Returns 0, or the
	 * errno value of the failed deregistration (logged): the registration
	 * then stays until its lease or TTL runs out. */
	int (*leave)(void *engine);
	/* While joined: this instance's worker count is now workers; push it
	 * to the registry. Returns 0 or an errno value (the core then keeps
	 * the old count). May be NULL (nothing to push). */
	int (*workers_changed)(void *engine, int workers);
	/* While joined: the advisor status changed; write it when due. Must
	 * not block on the network (wake a thread). May be NULL. */
	void (*status_changed)(void *engine);
	/* Make a join in progress on another thread give up soon with
	 * ECANCELED (the engine also polls cluster__join_cancelled()). May be
	 * NULL: the engine's joins do not wait long. */
	void (*cancel_join)(void *engine);
	/* Any thread, joined or not: this instance now uses the advisor, so
	 * the engine should keep other members' statuses in its views from
	 * now on (the core calls it once per handle; a later join gets
	 * cfg->want_statuses). If joined and wait_ms > 0, wait up to wait_ms
	 * (no I/O, a condition variable) until the statuses have reached the
	 * view. May be NULL (every view carries statuses anyway). */
	void (*want_statuses)(void *engine, int wait_ms);
	/* Non-zero if the engine calls cluster__settle_tick() from its watch
	 * thread, so that bursts of changes can settle before the callback;
	 * otherwise every published view is delivered at once. */
	int settles;
	/* Non-zero if the engine implements shard ownership (cfg->shards);
	 * the core refuses a join with shards set otherwise (ENOTSUP). */
	int shards;
};

extern const cluster__engine cluster__engine_static;
extern const cluster__engine cluster__engine_etcd3;
extern const cluster__engine cluster__engine_etcd2;

/* The advisor status this instance publishes. */
typedef struct cluster__status cluster__status;
struct cluster__status
{
	char address[CLUSTER_ADDRESS_MAX + 1];
	long long load;
	long long capacity;
	int reported;      /* cluster_report() called at least once */
	unsigned long seq; /* bumped on every change */
	/* Redirects advised and not yet confirmed by their targets, and the
	 * load before they were advised (advisor-inflight.h): the load
	 * cluster__get_status() returns, the one to publish, counts them. */
	long long unconfirmed;
	long long unconfirmed_base;
	/* Bumped when confirmed redirects lowered the load to publish: the
	 * next write ignores the report deadband (the plan counted those
	 * clients here; a small drop hidden by the deadband would make it
	 * count them twice). */
	unsigned long exact_seq;
	/* Filled by cluster__get_status(): this instance's age since
	 * cluster_join() began, in ms (-1 while not joined), which its status
	 * publishes, and the hold-down plus slow start of its advisor
	 * configuration, during which the published age is kept fresh (README
	 * "Hold-down and slow start"). */
	int64_t up_ms;
	int64_t settle_ms;
};

/* --- hooks: what an engine may ask of the core ------------------------ */

/*
 * Publish the membership the engine now believes in: members (a table
 * version) and, when statuses live in their own registry keys, the
 * statuses table (NULL: none; a member's own status fields stand). The
 * core shares both versions (the engine keeps and goes on updating its
 * own), computes this instance's base and the total in O(log N) and
 * delivers the view to the application (at once, or after the settle
 * window when the engine ticks). members_gen: the view's (view.h; 0 if
 * the engine does not count). Call it with no lock held. Returns 0 (a
 * table is always a valid member set).
 */
int cluster__publish_tables(CLUSTER *core, const cluster__table *members, const cluster__table *statuses, int64_t revision, uint64_t members_gen);

/*
 * The same from n member records (any order), for tests and callers that
 * hold no table: builds one (O(n log n)). Returns 0 or an errno value (the
 * set was rejected, logged, and the previous view kept): E2BIG (more than
 * CLUSTER_MEMBERS_MAX records), EINVAL (a duplicate or invalid record),
 * ENOMEM.
 */
int cluster__publish_view(CLUSTER *core, const cluster__member *members, size_t n, int64_t revision);

/* Static engines: publish a fixed base and total for this instance alone
 * (same delivery path as cluster__publish_tables). */
int cluster__publish_static(CLUSTER *core, int base, int total);

/* For engines with settles set: deliver the pending view if its settle
 * window has passed. Returns ms until it will be due, or -1 if nothing is
 * pending (call again after the next publish). */
int64_t cluster__settle_tick(CLUSTER *core);

/* The engine's verdict on whether its view is current (watch connected
 * and answering, lease alive). The advisor gives no redirects while not. */
void cluster__set_fresh(CLUSTER *core, int fresh);

/* This instance's advisor status and worker count, now. */
void cluster__get_status(CLUSTER *core, cluster__status *out);
int cluster__get_workers(CLUSTER *core);

/* The advisor's report interval (ms), which may change while joined. */
int cluster__report_interval(CLUSTER *core);

/* The status write policy from the advisor configuration, now. */
struct cluster__report_policy;
void cluster__get_report_policy(CLUSTER *core, struct cluster__report_policy *out);

/* --- shard ownership ---------------------------------------------------- */

struct cluster__shard_map;

/*
 * Run the shard callback for these changes (either list may be empty),
 * with no lock held, and update what cluster_owned_shards() reports:
 * acquired shards count as owned from before the call, released ones
 * until it returns. Calls are serialised per handle.
 */
void cluster__shards_deliver(CLUSTER *core, const CLUSTERSHARD *acquired, size_t n_acquired, const CLUSTERSHARD *released, size_t n_released);

/* A copy of the shards held now (ascending; *held NULL when none).
 * Returns 0 or ENOMEM. */
int cluster__shards_held(CLUSTER *core, CLUSTERSHARD **held, size_t *n);

/* The assignment as last read, for cluster_shard_owner(): the core takes
 * *map (left empty); NULL forgets it. */
void cluster__shards_set_map(CLUSTER *core, struct cluster__shard_map *map);

/* Non-zero once the join's first view has reached the application (or
 * the handle is no longer joined). An engine's watch thread waits for it
 * before it applies changes, so that the first callback shows the view
 * the join read, and later changes follow one by one. */
int cluster__first_view_delivered(CLUSTER *core);

/* Non-zero once cluster_leave() asked the join in progress to give up. */
int cluster__join_cancelled(CLUSTER *core);

#endif /*!CLUSTER_ENGINE_H_*/
