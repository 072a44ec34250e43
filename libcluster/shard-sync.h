/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: the shard thread. It keeps this instance's shards in
 * step with the assignment record in the registry: applies each version
 * (release, acknowledge, acquire through the core), plans and writes the
 * next one by compare-and-swap when this member is the planner, and
 * releases everything when its lease may have run out. It reaches the
 * registry only through the small store interface below, which an engine
 * implements (engine-etcd3.c); the assignment logic is shard-map.c's.
 */
#ifndef CLUSTER_SHARD_SYNC_H_
#define CLUSTER_SHARD_SYNC_H_ 1

#include <stddef.h>
#include <stdint.h>
#include "libcluster.h"
#include "member-table.h"

/* What the shard thread needs of the registry. Every call has the
 * engine's request timeout; why gets a reason for the log on failure.
 * Calls run on the shard thread only, except wake and cancel. */
typedef struct cluster__shard_store cluster__shard_store;
struct cluster__shard_store
{
	void *ctx;
	/* Read the record: *value (malloc'ed, NULL when the key is absent),
	 * its *mod_rev (0: absent), and the registry's *rev. */
	int (*get)(void *ctx, char **value, size_t *len, int64_t *mod_rev, int64_t *rev, char *why, size_t whysz);
	/* Write value if the record's mod revision is still expect (0: only
	 * if absent). *won says whether it was written; *rev is then its
	 * revision. */
	int (*cas)(void *ctx, const char *value, int64_t expect, int *won, int64_t *rev, char *why, size_t whysz);
	/* Acknowledge, under this instance's lease, that it has released
	 * what the record up to revision asked of it. */
	int (*ack)(void *ctx, int64_t revision, char *why, size_t whysz);
	/* Read every member's acknowledgement: fn(fctx, id, revision), in
	 * id order. */
	int (*acks)(void *ctx, void (*fn)(void *fctx, const char *id, int64_t revision), void *fctx, char *why, size_t whysz);
	/* Watch the record from revision from: on_record(sctx, value, len,
	 * mod_rev) for each new version (value NULL: deleted); on_alive(sctx)
	 * for every message (the watch is current up to it: created, events,
	 * the answer to a heartbeat); on_tick(sctx) between messages, as
	 * cluster__http_tick_cb (CLUSTER__HTTP_STOP ends the watch). Returns 0
	 * when stopped by the tick, ERANGE when the history was compacted
	 * (read the record again), else an errno value. */
	int (*watch)(void *ctx, int64_t from, int (*on_record)(void *sctx, const char *value, size_t len, int64_t mod_rev), void (*on_alive)(void *sctx),
		int64_t (*on_tick)(void *sctx), void *sctx, char *why, size_t whysz);
	/* Any thread: make the watch's tick run now. */
	void (*wake)(void *ctx);
	/* Until when (monotonic ms) this instance may hold shards: the send
	 * time of its last answered keepalive plus the TTL; 0 while it has no
	 * lease. Never blocks. */
	int64_t (*hold_until)(void *ctx);
};

typedef struct cluster__shard_sync cluster__shard_sync;

/* What the shard thread is given. Strings are copied. */
typedef struct cluster__shard_sync_config cluster__shard_sync_config;
struct cluster__shard_sync_config
{
	const char *instance;
	const char *label; /* for log lines: the record's key */
	uint32_t shards;
	int settle_ms;
	int ttl_ms;   /* the lease TTL: the grace before a vanished owner's shards move */
	int leave_ms; /* how long stop may spend handing back the shards */
};

/* Start the shard thread. Returns 0 with *out set, or an errno value. */
int cluster__shard_sync_start(CLUSTER *core, const cluster__shard_store *store, const cluster__shard_sync_config *cfg, cluster__shard_sync **out);

/* The membership changed: members is shared (O(1)), the thread looks at
 * it soon. Any thread; never blocks on the network. */
void cluster__shard_sync_members(cluster__shard_sync *s, const cluster__table *members);

/* The lease changed (renewed late, lost, re-granted): look again. */
void cluster__shard_sync_wake(cluster__shard_sync *s);

/* Stop: release every shard (callback), hand them back in the record
 * (one compare-and-swap, retried within leave_ms), end the thread and
 * free. NULL is a no-op. */
void cluster__shard_sync_stop(cluster__shard_sync *s);

/* Tests only: non-zero makes every member plan as if it were first. */
extern int cluster__shard_test_eager;

#endif /*!CLUSTER_SHARD_SYNC_H_*/
