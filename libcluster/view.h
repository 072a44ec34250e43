/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure views: an immutable snapshot of the membership as one instance
 * sees it, made from two member-table versions (members, and advisor
 * statuses kept apart from membership) with this instance's position,
 * base and the total. Making, copying and dropping a view is O(log N) at
 * most: it shares the table versions, never copies records. No I/O, no
 * locks, no globals: safe to test exhaustively.
 */
#ifndef CLUSTER_VIEW_H_
#define CLUSTER_VIEW_H_ 1

#include <stddef.h>
#include <stdint.h>
#include "libcluster.h"
#include "member-table.h"

typedef struct cluster__view cluster__view;
struct cluster__view
{
	cluster__table members;  /* a shared version, sorted by id (byte order) */
	cluster__table statuses; /* a shared version (empty: none kept apart; etcd v3:
	                          * only statuses of non-members, status-fold.h) */
	size_t count;            /* members */
	long self;               /* position of this instance, -1 if absent */
	int base;                /* this instance's base index, -1 if absent or passive */
	int total;               /* sum of workers of counted (non-passive) members */
	int offset;              /* added to every counted member's base (static engine) */
	int64_t revision;        /* registry revision the view reflects (0 if static) */
	/* The engine's count of membership changes: two views with the same
	 * non-zero value have the same members and member records (ids,
	 * workers, passive, incarnations); only statuses may differ. 0:
	 * unknown (every view may differ). */
	uint64_t members_gen;
};

/* An empty view (no members, self absent). */
void cluster__view_init(cluster__view *view);

/*
 * A view of members with the statuses of statuses (NULL: none) for
 * self_id (may be NULL) at revision: shares both versions, so the caller
 * keeps its own. A member's status is the statuses table's record for
 * its id when there is one, else the member record's own; statuses of ids
 * that are not members are ignored. Never fails: O(log N).
 */
void cluster__view_make(cluster__view *out, const cluster__table *members, const cluster__table *statuses, const char *self_id, int64_t revision);

/* Another reference to the same snapshot: O(1), never fails. */
void cluster__view_copy(cluster__view *out, const cluster__view *in);

/* Release a view's references and reset it to empty. */
void cluster__view_free(cluster__view *view);

/* One member of a view as readers see it. Pointers stay valid while the
 * view is held. */
typedef struct cluster__view_entry cluster__view_entry;
struct cluster__view_entry
{
	const cluster__node *node; /* id, workers, passive */
	/* the member's status: from the statuses table when it holds one
	 * for the id, else the member record's own */
	int has_status;
	const char *address; /* "" when none */
	long long load;
	long long capacity;
	/* the later of the member record's and its separate status record's
	 * (registry revision; local monotonic ms of the last change) */
	int64_t mod_revision;
	int64_t received_ms;
	/* when the member joined (local monotonic ms), by the age the record
	 * that gave its status published (has_joined 0: it published none) */
	int has_joined;
	int64_t joined_ms;
	size_t pos; /* position in id order */
	int base;   /* base index, -1 if passive */
	int self;   /* this instance */
};

/* Member pos (0..count-1) in O(log N); returns 0, or -1 past the end. */
int cluster__view_at(const cluster__view *view, size_t pos, cluster__view_entry *out);

/* In-order iteration over a view (held meanwhile): O(1) amortised per
 * member, statuses merged in by walking both tables side by side. */
typedef struct cluster__view_iter cluster__view_iter;
struct cluster__view_iter
{
	const cluster__view *view;
	cluster__table_iter members, statuses;
	const cluster__node *status_next; /* next status record not yet passed */
	size_t pos;
	int sum;
};
void cluster__view_iter_init(cluster__view_iter *it, const cluster__view *view);
/* Fill *out with the next member; returns 1, or 0 at the end. */
int cluster__view_next(cluster__view_iter *it, cluster__view_entry *out);

/*
 * The name rule (cluster key, environment, partition, instance id, and so
 * every member id): 1..CLUSTER_NAME_MAX bytes of [A-Za-z0-9._-], neither
 * "." nor "..". Returns CLUSTER__NAME_OK or the rule the len bytes at s
 * break; for CLUSTER__NAME_BYTE, *bad (if not NULL) gets the position.
 */
#define CLUSTER__NAME_OK     0
#define CLUSTER__NAME_LENGTH 1
#define CLUSTER__NAME_DOTS   2
#define CLUSTER__NAME_BYTE   3
int cluster__name_check(const char *s, size_t len, size_t *bad);

#endif /*!CLUSTER_VIEW_H_*/
