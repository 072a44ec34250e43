/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: one node per member for members and their separate
 * status records. The etcd v3 registry keeps an advisor status under a
 * key of its own, beside the member key; holding the two key spaces as
 * two tables cost an advisor user two tree nodes per member. Here each
 * member's node carries its separate status (status_apart set), and only
 * the statuses of ids that are not members (yet, or any more) stay in a
 * second table, the orphans.
 *
 * The pair (members, orphans) then makes the same view
 * (cluster__view_make(members, orphans)) as the two raw tables would: a
 * member's separate status wins over its member record's own (older
 * writers put it there), and statuses of non-members are not shown. One
 * exception: a member record's own status hidden by a separate one is
 * not kept, so when the separate one is deleted the member shows none
 * until its record is written again (only a registry that mixes both
 * layouts for one id does that).
 *
 * Every operation works on shared copies and replaces the pair only when
 * it succeeded: on error (ENOMEM, E2BIG, EINVAL) both tables are as they
 * were. Pure: no I/O, no locks, no globals.
 */
#ifndef CLUSTER_STATUS_FOLD_H_
#define CLUSTER_STATUS_FOLD_H_ 1

#include <stdint.h>
#include "member-table.h"

/* A member record (the member key's): put, keeping the member's separate
 * status (from its node, or taken out of the orphans). Returns as
 * cluster__table_put(). */
int cluster__fold_member_put(cluster__table *members, cluster__table *orphans, const cluster__member *rec, int64_t now_ms);

/* The member key of id is gone: its separate status, if any, becomes an
 * orphan. Returns 0 (also when id was no member) or ENOMEM. */
int cluster__fold_member_del(cluster__table *members, cluster__table *orphans, const char *id);

/* A separate status record (rec->has_status set, else EINVAL): folded
 * into its member's node, or kept as an orphan. Returns as
 * cluster__table_put_status() (E2BIG: the orphans are full). */
int cluster__fold_status_put(cluster__table *members, cluster__table *orphans, const cluster__member *rec, int64_t now_ms);

/* The status key of id is gone (a member's node changes at now_ms).
 * Returns 0 or ENOMEM. */
int cluster__fold_status_del(cluster__table *members, cluster__table *orphans, const char *id, int64_t now_ms);

/* Whole prefixes read again, as one operation (either may be NULL: not
 * read). raw_members (one node per member record, as built by
 * cluster__table_put()): members not in it are deleted, the others put.
 * raw_statuses (one status node per status record, as built by
 * cluster__table_put_status()): the separate statuses become exactly
 * those. Unchanged records keep their receipt time. */
int cluster__fold_prefixes(cluster__table *members, cluster__table *orphans, const cluster__table *raw_members, const cluster__table *raw_statuses, int64_t now_ms);

#endif /*!CLUSTER_STATUS_FOLD_H_*/
