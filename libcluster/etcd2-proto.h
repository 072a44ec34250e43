/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PURE: the etcd v2 keys API as the original libcluster used it. Member
 * keys are /v2/keys/<key>[/<partition>]/<env>/<id> and each value is the
 * decimal worker count, so instances of the original and of this engine
 * can share one directory (mixed fleets). No I/O, no locks.
 */
#ifndef CLUSTER_ETCD2_PROTO_H_
#define CLUSTER_ETCD2_PROTO_H_ 1

#include <stddef.h>
#include <stdint.h>
#include "view.h"

/* A strict decimal worker count, "1".."65535": no sign, spaces or junk.
 * Returns the count, or 0 if the text is not one. */
int cluster__etcd2_parse_workers(const char *text, size_t len);

/*
 * A directory listing (GET <dir>): fills *out (malloc'd, caller frees) with
 * the direct children of dir that are valid members. dir is the etcd key
 * of the directory without a trailing '/' (e.g. "/app/production").
 * *skipped counts children left out (sub-directories, bad ids, bad values).
 * Returns 0, EPROTO (not a v2 listing), E2BIG (more than
 * CLUSTER_MEMBERS_MAX children: refused before any record is allocated)
 * or ENOMEM.
 */
int cluster__etcd2_parse_list(const char *body, size_t len, const char *dir, cluster__member **out, size_t *n, size_t *skipped);

typedef struct cluster__etcd2_event cluster__etcd2_event;
struct cluster__etcd2_event
{
	int relevant; /* a direct child of dir with a valid id */
	int removed;  /* delete / expire / compareAndDelete */
	int workers;  /* for a write: the new count, 0 if the value is bad */
	char id[CLUSTER_NAME_MAX + 1];
	uint64_t modified_index; /* continue watching from this + 1 */
};

/* One long-poll answer. Returns 0, EPROTO or ENOMEM. */
int cluster__etcd2_parse_event(const char *body, size_t len, const char *dir, cluster__etcd2_event *ev);

/* An error body {"errorCode":N,...,"index":I}. Returns 0 or EPROTO. */
int cluster__etcd2_parse_error(const char *body, size_t len, int *error_code, uint64_t *index);

#endif /*!CLUSTER_ETCD2_PROTO_H_*/
