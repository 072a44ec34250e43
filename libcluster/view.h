/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pure view computation: a set of member records -> sorted view with each
 * member's base index, this instance's base and the total, plus a diff
 * between two views. No I/O, no locks, no globals: safe to test
 * exhaustively.
 */
#ifndef CLUSTER_VIEW_H_
#define CLUSTER_VIEW_H_ 1

#include <stddef.h>
#include <stdint.h>
#include "libcluster.h"

/* One member record, as an engine learnt it from the registry. */
typedef struct cluster__member cluster__member;
struct cluster__member
{
	char id[CLUSTER_NAME_MAX + 1];
	int workers; /* 1..CLUSTER_WORKERS_MAX */
	int passive; /* watching, not counted */
	int base;    /* output of cluster__view_compute(); -1 if passive */
	/* connection-advisor status (has_status == 0: none published) */
	int has_status;
	char address[CLUSTER_ADDRESS_MAX + 1];
	long long load;
	long long capacity; /* CLUSTER_CAPACITY_UNBOUNDED, 0 draining, or max */
	/* bookkeeping */
	int64_t mod_revision; /* registry revision of the record (0 if unknown) */
	int64_t received_ms;  /* local monotonic ms when the record last changed */
};

typedef struct cluster__view cluster__view;
struct cluster__view
{
	cluster__member *members; /* sorted by id (byte order); owned */
	size_t count;
	long self;        /* position of this instance in members, -1 if absent */
	int base;         /* this instance's base index, -1 if absent or passive */
	int total;        /* sum of workers of counted (non-passive) members */
	int64_t revision; /* registry revision the view reflects (0 if static) */
};

typedef struct cluster__view_diff cluster__view_diff;
struct cluster__view_diff
{
	size_t added;          /* ids in new but not old */
	size_t removed;        /* ids in old but not new */
	size_t changed;        /* same id, different workers/passive */
	size_t status_changed; /* same id, only the advisor status differs */
	int base_changed;      /* this instance's base differs */
	int total_changed;
};

/*
 * Build a view from n records (any order). self_id may be NULL.
 * Returns 0, or an errno value: E2BIG (more than CLUSTER_MEMBERS_MAX
 * records, checked before anything is copied), EINVAL (duplicate id, empty
 * id, workers out of range), EOVERFLOW (total exceeds INT_MAX: the member
 * limit makes that impossible, the check stays as a defence), ENOMEM.
 * On error *out is left empty (count 0, members NULL).
 */
int cluster__view_compute(cluster__view *out, const cluster__member *in, size_t n, const char *self_id, int64_t revision);

/* Deep copy; returns 0 or ENOMEM. */
int cluster__view_copy(cluster__view *out, const cluster__view *in);

/* Release a view's storage and reset it to empty. */
void cluster__view_free(cluster__view *view);

/* Compare two views (either may be empty). */
void cluster__view_diff_compute(const cluster__view *before, const cluster__view *after, cluster__view_diff *diff);

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

/* Find id in a view (binary search); returns the position or -1. */
long cluster__view_find(const cluster__view *view, const char *id);

#endif /*!CLUSTER_VIEW_H_*/
