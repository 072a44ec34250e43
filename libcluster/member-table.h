/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: the member table both registry engines keep, sorted by
 * id, updated one record at a time from registry events. Pure: no I/O,
 * no locks, no globals.
 */
#ifndef CLUSTER_MEMBER_TABLE_H_
#define CLUSTER_MEMBER_TABLE_H_ 1

#include <stddef.h>
#include <stdint.h>
#include "view.h"

/* Non-zero if two records carry the same content (workers, passive,
 * status); ids, revisions and times are not compared. */
int cluster__member_same(const cluster__member *a, const cluster__member *b);

/* A member table kept sorted by id, of at most CLUSTER_MEMBERS_MAX
 * members. */
typedef struct cluster__table cluster__table;
struct cluster__table
{
	cluster__member *m;
	size_t n;
	size_t cap;
};
/* Insert or replace rec (by id). If the record's content (workers,
 * passive, status) is unchanged the old received_ms is kept, otherwise it
 * becomes now_ms. *changed (may be NULL) says whether the content changed.
 * Returns 0, ENOMEM, or E2BIG when rec is a new member and the table
 * already holds CLUSTER_MEMBERS_MAX: the table is then left as it was, and
 * no longer the registry's whole member set (the caller must not publish
 * it as such). */
int cluster__table_put(cluster__table *t, const cluster__member *rec, int64_t now_ms, int *changed);
/* Remove id; returns 1 if it was there. */
int cluster__table_del(cluster__table *t, const char *id);
/* Find id; NULL if absent. */
cluster__member *cluster__table_find(cluster__table *t, const char *id);
void cluster__table_free(cluster__table *t);

#endif /*!CLUSTER_MEMBER_TABLE_H_*/
