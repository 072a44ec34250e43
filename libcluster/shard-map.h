/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: the shard assignment, pure. The assignment of S shards
 * is a list of runs (contiguous shard ranges with one owner), kept in the
 * registry as one record that only compare-and-swap writes change. This
 * file holds everything about it that needs no I/O and no lock: the
 * record's text form (encode, decode with validation), the planner that
 * computes the next assignment from the current one and the live
 * membership (balanced by weight, minimal movement, two-step hand-over),
 * and the diff a member applies to what it holds.
 *
 * Hand-over protocol (README "Shard ownership"): a shard moves from a live
 * owner A to B in two versions of the record. First the planner sets the
 * run's next = B (since = that version's revision). A releases (its
 * callback returns) and acknowledges with the revision it processed. A
 * later planner sees ack >= since and writes owner = B with a new token
 * (the revision of that version). A shard whose owner is no longer live is
 * given away only once the caller says its owner has expired (its lease
 * ran out a whole TTL ago by the caller's clock). Unowned shards are
 * granted directly.
 */
#ifndef CLUSTER_SHARD_MAP_H_
#define CLUSTER_SHARD_MAP_H_ 1

#include <stddef.h>
#include <stdint.h>
#include "libcluster.h"

/* One owner the record refers to: an instance id and its incarnation (the
 * create revision of its member key, so that an instance that restarts
 * with the same id is a new owner). */
typedef struct cluster__shard_owner cluster__shard_owner;
struct cluster__shard_owner
{
	char *id; /* owned by the map */
	int64_t incarnation;
};

/* Shards start .. start+len-1, all in the same state. */
typedef struct cluster__shard_run cluster__shard_run;
struct cluster__shard_run
{
	uint32_t start;
	uint32_t len;  /* >= 1 */
	int32_t owner; /* index into owners, -1: unowned */
	int32_t next;  /* hand-over target (index into owners), -1: none */
	int64_t token; /* revision that gave owner these shards; 0: "the
	                  * version being written" (planner output only) */
	int64_t since; /* with next >= 0: revision of the version that asked
	                  * for the hand-over; 0: the version being written */
};

/* A decoded assignment: runs sorted by start, covering 0 .. shards-1
 * exactly. */
typedef struct cluster__shard_map cluster__shard_map;
struct cluster__shard_map
{
	uint32_t shards;
	size_t n_owners;
	cluster__shard_owner *owners;
	size_t n_runs;
	cluster__shard_run *runs;
};

/* A zeroed struct is an empty map (no shards). */
void cluster__shard_map_free(cluster__shard_map *m);

/* A map of shards shards (1 .. CLUSTER_SHARDS_MAX), all unowned. Returns
 * 0, EINVAL, ENOMEM. */
int cluster__shard_map_init(cluster__shard_map *m, uint32_t shards);

/* A deep copy. Returns 0 or ENOMEM (*dst then empty). */
int cluster__shard_map_copy(cluster__shard_map *dst, const cluster__shard_map *src);

/*
 * The record's text (JSON, one line, no trailing newline):
 *   {"v":1,"shards":S,"owners":[["id",incarnation],...],
 *    "runs":[[len,owner,next,token,since],...]}
 * Runs are listed in shard order; adjacent equal runs are merged and
 * owners no run refers to are dropped, so equal maps encode equally.
 * Tokens and since values of 0 stay 0 ("this version"). Returns 0 or
 * ENOMEM; *text is malloc'ed and NUL-terminated.
 */
int cluster__shard_map_encode(const cluster__shard_map *m, char **text, size_t *len);

/*
 * Parse a record written at registry revision mod_revision (> 0) for a
 * cluster of shards shards. Tokens and since values of 0 become
 * mod_revision. Everything is checked: version, shard count (another
 * count is a foreign record), run coverage, owner indexes, ids (names per
 * the header: 1..CLUSTER_NAME_MAX printable bytes without '/'), a next
 * without an owner, next == owner, tokens and since values in
 * 1..mod_revision, duplicate owners. Returns 0, EBADMSG with a reason in
 * why (input quoted with control bytes escaped), or ENOMEM; *out is empty
 * on failure.
 */
int cluster__shard_map_decode(const char *text, size_t len, uint32_t shards, int64_t mod_revision, cluster__shard_map *out, char *why, size_t why_size);

/* One live member as the planner sees it. */
typedef struct cluster__shard_member cluster__shard_member;
struct cluster__shard_member
{
	const char *id;
	int64_t incarnation;
	int weight;    /* worker count; 0: owns nothing (gives all away) */
	int64_t acked; /* highest revision it acknowledged (0: none) */
};

/* The index of id in live (sorted by id, binary search), or -1. */
long cluster__shard_find_member(const cluster__shard_member *live, size_t n, const char *id);

/* Asked of the caller for each owner in the map that is not live: may its
 * shards be given away (its lease is known to have run out long enough)? */
typedef int (*cluster__shard_expired_fn)(void *ctx, const char *id, int64_t incarnation);

/*
 * The next assignment. live: the live members, sorted by id (byte order),
 * ids unique. In order:
 *  1. A run whose owner is live: a next that is not live (or has weight
 *     0) is cleared; a next whose owner acknowledged (acked >= since) takes
 *     over (owner = next, token 0).
 *  2. A run whose owner is not live: unowned if expired() says so (next
 *     cleared), else left alone (blocked; next cleared).
 *  3. Only if no hand-over is still pending: quotas. A member of weight w
 *     gets floor(S*w/W) or one more (W: total weight); the one-mores go to
 *     members whose share has a fraction, those holding the most above
 *     their floor first (then by id), which makes the movement minimal.
 *     Members over quota give up their highest shards (next = receiver,
 *     since 0); unowned shards are granted directly (owner = receiver,
 *     token 0). Receivers, by id, take the pool in ascending shard order.
 *     Blocked shards wait.
 * *changed: whether next differs from cur (then it should be written);
 * *moves: shards that got a new holder in step 3 (donated or granted).
 * Returns 0 or ENOMEM.
 */
int cluster__shard_plan(const cluster__shard_map *cur, const cluster__shard_member *live, size_t n_live, cluster__shard_expired_fn expired, void *ctx, cluster__shard_map *next, int *changed, size_t *moves);

/* The owner index of (id, incarnation) in m, or -1. */
int cluster__shard_map_find_owner(const cluster__shard_map *m, const char *id, int64_t incarnation);

/* The run holding shard (shard < m->shards), by binary search. */
const cluster__shard_run *cluster__shard_map_run(const cluster__shard_map *m, uint32_t shard);

/*
 * A clean leave by (id, incarnation), after it released everything: its
 * runs pass to their next (token 0) or become unowned; hand-overs to it
 * are cancelled. *changed as for the planner. Returns 0 or ENOMEM.
 */
int cluster__shard_map_leave(const cluster__shard_map *cur, const char *id, int64_t incarnation, cluster__shard_map *next, int *changed);

/*
 * What a member (id, incarnation) must do given what it holds (held:
 * ascending shards with their tokens). Release: held shards the map no
 * longer gives it, or gives it with a hand-over pending. Acquire: shards
 * the map gives it with no hand-over pending that it does not hold.
 * Both arrays ascending, malloc'ed (NULL when empty). *must_ack: the map
 * asks it to hand over some shard (acknowledge once released). Returns 0
 * or ENOMEM.
 */
int cluster__shard_diff(const cluster__shard_map *m, const char *id, int64_t incarnation, const CLUSTERSHARD *held, size_t n_held, CLUSTERSHARD **acquire, size_t *n_acquire, CLUSTERSHARD **release, size_t *n_release, int *must_ack);

/* Shards the map gives (id, incarnation) with no hand-over pending. */
size_t cluster__shard_map_count(const cluster__shard_map *m, const char *id, int64_t incarnation);

#endif /*!CLUSTER_SHARD_MAP_H_*/
