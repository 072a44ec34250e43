/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: the member table, a persistent (path-copying),
 * reference-counted, weight-balanced search tree keyed by id (byte order)
 * with order statistics. Each update makes O(log N) new nodes and shares
 * the rest with the version before it, so a version is a value: a reader
 * (a published view, a getter's snapshot) keeps one with an O(1) share
 * while the engine goes on updating its own. Every node carries the node
 * count and the counted (non-passive) workers of its subtree, so a
 * member's base index and the total are O(log N) queries.
 *
 * Pure: no I/O, no locks, no globals. Nodes never change once built;
 * only their reference counts do (atomically), so versions may be shared
 * and released from any thread. Writes to one cluster__table (put, del,
 * free) need one writer at a time, as for any value.
 */
#ifndef CLUSTER_MEMBER_TABLE_H_
#define CLUSTER_MEMBER_TABLE_H_ 1

#include <stddef.h>
#include <stdint.h>
#include "libcluster.h"

/* One member record as an engine parses it from the registry: the input
 * of cluster__table_put(). Fixed buffers, so it is a stack value only;
 * the table stores records compactly. */
typedef struct cluster__member cluster__member;
struct cluster__member
{
	char id[CLUSTER_NAME_MAX + 1];
	int workers; /* 1..CLUSTER_WORKERS_MAX */
	int passive; /* watching, not counted */
	/* connection-advisor status (has_status == 0: none published) */
	int has_status;
	char address[CLUSTER_ADDRESS_MAX + 1];
	long long load;
	long long capacity; /* CLUSTER_CAPACITY_UNBOUNDED, 0 draining, or max */
	/* the member's age since it joined, as its status published it at
	 * the write (has_up; only a status record carries one), and the
	 * local monotonic ms it joined by that age: its receipt time less
	 * up_ms, set by the engine that received it */
	int has_up;
	long long up_ms;
	int64_t joined_ms;
	/* bookkeeping */
	int64_t mod_revision;    /* registry revision of the record (0 if unknown) */
	int64_t create_revision; /* when the record was created (its incarnation; 0 if unknown) */
	int64_t received_ms;     /* local monotonic ms when the record last changed */
	/* the status is the member's separate status record (status-fold.h)
	 * folded into its member record, not the member record's own */
	int status_apart;
};

/*
 * One stored member: one allocation, sized to its id and, with a status,
 * its address. Callers read the record fields (id, workers, passive,
 * has_status, mod_revision, create_revision, received_ms, has_joined; the
 * status through cluster__node_status(), the join time through
 * cluster__node_joined_ms()); the tree
 * fields (left, right, refs, count, sum) belong to member-table.c. A node
 * returned by a lookup stays valid while the version it came from is
 * held.
 */
typedef struct cluster__node cluster__node;
struct cluster__node
{
	cluster__node *left, *right;
	int64_t mod_revision;
	int64_t create_revision;
	int64_t received_ms;
	unsigned refs;          /* atomic */
	int sum;                /* workers of the counted members in this subtree */
	unsigned short count;   /* nodes in this subtree (<= CLUSTER_MEMBERS_MAX) */
	unsigned short workers; /* 0 in a statuses table */
	unsigned char passive : 1;
	unsigned char has_status : 1;
	unsigned char has_joined : 1;   /* a status record that published the member's age */
	unsigned char status_apart : 1; /* cluster__member.status_apart */
	unsigned char idlen;
	unsigned short addrlen;
	/* the id and its NUL; with a status, the address and its NUL, then
	 * load, capacity and joined_ms (unaligned: read through
	 * cluster__node_status() and cluster__node_joined_ms()). A member
	 * without a status (most of them) carries no status bytes: the fixed
	 * part is 56 bytes, so a node with an id of up to 15 bytes is an
	 * 80-byte malloc chunk on glibc (it was 96 bytes up to 13). */
	char id[];
};

/* The node's advisor status: its address ("" if none), *load and
 * *capacity (both may be NULL; 0 if none). Returns has_status. */
int cluster__node_status(const cluster__node *n, const char **address, long long *load, long long *capacity);
/* When the member joined (local monotonic ms, cluster__member.joined_ms)
 * by the age its status record published; 0 when has_joined is not set. */
int64_t cluster__node_joined_ms(const cluster__node *n);

/* A table version: NULL root is the empty table, so a zeroed struct is a
 * valid empty table. Assigning the struct moves the reference. */
typedef struct cluster__table cluster__table;
struct cluster__table
{
	cluster__node *root;
};

/* Deepest possible tree (weights shrink by 3/4 per level at worst:
 * log(CLUSTER_MEMBERS_MAX + 1) / log(4/3) < 35), with room to spare. */
#define CLUSTER__TABLE_DEPTH 64

/*
 * Insert or replace rec (by id). If the record's content (workers,
 * passive, status) is unchanged the old received_ms is kept, otherwise it
 * becomes now_ms. *changed (may be NULL) says whether the content changed.
 * Returns 0, EINVAL (empty or unterminated id, workers outside
 * 1..CLUSTER_WORKERS_MAX, unterminated address), ENOMEM, or E2BIG when
 * rec is a new member and the table already holds CLUSTER_MEMBERS_MAX
 * (EOVERFLOW would mean a tree deeper than the balance allows: never).
 * On error the table is left as it was (after E2BIG it is no longer the
 * registry's whole member set: the caller must not publish it as such).
 * Versions shared before the call never change.
 */
int cluster__table_put(cluster__table *t, const cluster__member *rec, int64_t now_ms, int *changed);
/* The same for a statuses table (one advisor status per id, kept apart
 * from membership): rec->has_status must be set (else EINVAL); workers
 * and passive are ignored, the node is stored as passive with 0 workers. */
int cluster__table_put_status(cluster__table *t, const cluster__member *rec, int64_t now_ms, int *changed);
/* Remove id; returns 1 if it was there, 0 if not, -1 (table unchanged)
 * when out of memory. */
int cluster__table_del(cluster__table *t, const char *id);
/* Find id; NULL if absent. Valid while this version is held. */
const cluster__node *cluster__table_find(const cluster__table *t, const char *id);
/* Release this version (nodes shared with other versions stay) and make
 * *t empty. */
void cluster__table_free(cluster__table *t);
/* *out becomes another reference to the version in *in: O(1). */
void cluster__table_share(cluster__table *out, const cluster__table *in);

/* Number of members; sum of the workers of the counted members. */
size_t cluster__table_count(const cluster__table *t);
int cluster__table_total(const cluster__table *t);
/* Position of id in id order, or -1 if absent. *base (may be NULL) gets
 * the workers of the counted members whose ids sort before id, whether or
 * not id is present. O(log N). */
long cluster__table_rank(const cluster__table *t, const char *id, int *base);
/* The same in the same walk: returns the node with id (NULL if absent),
 * *pos (may be NULL) its position or -1, *base as above. */
const cluster__node *cluster__table_locate(const cluster__table *t, const char *id, long *pos, int *base);
/* The member at position pos (NULL past the end); *base (may be NULL) as
 * for cluster__table_rank. O(log N). */
const cluster__node *cluster__table_at(const cluster__table *t, size_t pos, int *base);

/* Non-zero if the node carries the content of rec (workers, passive,
 * status and where it came from); ids, revisions and times are not
 * compared. */
int cluster__node_same(const cluster__node *n, const cluster__member *rec);

/* The node's record as cluster__table_put() would take it back: id,
 * workers, passive, status (the join time as has_up with joined_ms),
 * revisions, receipt time and status_apart. */
void cluster__node_record(const cluster__node *n, cluster__member *out);

/* In-order iteration over one version (which must be held meanwhile). */
typedef struct cluster__table_iter cluster__table_iter;
struct cluster__table_iter
{
	const cluster__node *stack[CLUSTER__TABLE_DEPTH];
	unsigned depth;
};
void cluster__table_iter_init(cluster__table_iter *it, const cluster__table *t);
/* The next member in id order, or NULL at the end. */
const cluster__node *cluster__table_iter_next(cluster__table_iter *it);

/* Check every invariant of a version (order, counts, sums, balance,
 * reference counts, terminated ids); returns 0 or -1. For tests. */
int cluster__table_check(const cluster__table *t);

#endif /*!CLUSTER_MEMBER_TABLE_H_*/
