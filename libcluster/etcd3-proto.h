/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd v3 JSON gateway: the pure half of the engine. Base64, request
 * builders, response and watch-message parsers, the member key/value
 * format. No I/O, no locks, no globals: everything
 * here is unit-tested with canned (and hostile) input.
 *
 * Parsers return 0, EBADMSG (not what etcd sends: bad JSON, wrong types,
 * bad base64, numbers out of range) or ENOMEM, and leave their output
 * empty on failure. int64 fields are accepted as JSON strings (what etcd
 * sends; lease IDs exceed 2^53 and are kept exact) or as integral numbers
 * up to 2^53. Absent fields are zero, as etcd omits zero values.
 */
#ifndef CLUSTER_ETCD3_PROTO_H_
#define CLUSTER_ETCD3_PROTO_H_ 1

#include <stddef.h>
#include <stdint.h>
#include "view.h"

/* ---- base64 (standard alphabet, with padding: what etcd requires) ---- */

/* Encode; returns a NUL-terminated string to free(), or NULL (ENOMEM). */
char *cluster__b64_encode(const void *data, size_t len);
/* Decode strictly (length a multiple of 4, '=' only as final padding).
 * *out is NUL-terminated (not counted in *outlen). 0, EBADMSG, ENOMEM. */
int cluster__b64_decode(const char *in, size_t inlen, char **out, size_t *outlen);

/* Range end of a prefix (clientv3 GetPrefixRangeEnd): end needs room for
 * max(len, 1) bytes; returns its length. {0x00} means "no upper bound". */
size_t cluster__etcd3_range_end(const unsigned char *prefix, size_t len, unsigned char *end);

/* ---- request builders: malloc'd JSON, or NULL with errno ENOMEM ------ */

/* {"key":prefix,"range_end":end(prefix)} */
char *cluster__etcd3_build_range(const char *prefix);
/* {"TTL":ttl} */
char *cluster__etcd3_build_grant(int ttl);
/* {"ID":"id"}: keepalive, revoke */
char *cluster__etcd3_build_lease_id(int64_t id);
/* A guarded write txn: compare LEASE(guard_key) == guard_lease, or, when
 * guard_lease is 0, CREATE(guard_key) == 0 (absent); on success write
 * key1 and key2 (each skipped when NULL): put the value under lease, or
 * delete the key when its value is NULL; on failure range guard_key (so
 * the caller learns who holds it). */
char *cluster__etcd3_build_write(const char *guard_key, int64_t guard_lease, const char *key1, const char *value1, const char *key2, const char *value2, int64_t lease);
/* The same, and after the writes the success branch ranges prefix1 and
 * prefix2 (each skipped when NULL), each as cluster__etcd3_build_range()
 * would: a join learns the member set (and the statuses) at the revision
 * of its own registration, in the same round trip. */
char *cluster__etcd3_build_write_read(const char *guard_key, int64_t guard_lease, const char *key1, const char *value1, const char *key2, const char *value2, int64_t lease,
	const char *prefix1, const char *prefix2);
/* put-if-absent: compare CREATE(key) == 0, put value under lease, else
 * range the key (so the caller learns who holds it) */
char *cluster__etcd3_build_create(const char *key, const char *value, int64_t lease);
/* put only if the key is held by compare_lease: compare LEASE(key) ==
 * compare_lease, put value under lease, else range the key */
char *cluster__etcd3_build_update(const char *key, const char *value, int64_t lease, int64_t compare_lease);
/* {"key","value","lease" (if not 0)}: a plain put */
char *cluster__etcd3_build_put(const char *key, const char *value, int64_t lease);
/* {"key":key}: one exact key */
char *cluster__etcd3_build_get(const char *key);
/* Compare-and-swap: compare MOD(key) == expect (CREATE(key) == 0 when
 * expect is 0), put key = value without a lease, else range the key. */
char *cluster__etcd3_build_cas(const char *key, const char *value, int64_t expect);
/* {"create_request":{key, range_end (prefix watch only), start_revision
 * (if > 0), progress_notify}}. No prev_kv: a DELETE event's key is all
 * the engine needs, and etcd reads the previous value of every event
 * for every watcher that asks (one more Range each). */
char *cluster__etcd3_build_watch(const char *key, int prefix, int64_t start_revision);
/* {"cancel_request":{"watch_id":id}}: ends one watch of a stream */
char *cluster__etcd3_build_cancel(int64_t watch_id);
/* {"name":user,"password":password} */
char *cluster__etcd3_build_auth(const char *user, const char *password);
/* Member value: {"workers":N} plus "address","load","capacity" when
 * has_status. */
char *cluster__etcd3_build_member_value(int workers, int has_status, const char *address, long long load, long long capacity);
/* Status value (the member's status key): {"address":..,"load":..,
 * "capacity":..}, plus "up_ms": up_ms when up_ms >= 0 (the member's age
 * since it joined, at the write: README "Hold-down and slow start"). */
char *cluster__etcd3_build_status_value(const char *address, long long load, long long capacity, long long up_ms);

/* The largest "up_ms" a status value may carry (100 years): a larger one
 * is ignored, like a negative or fractional one. */
#define CLUSTER__ETCD3_UP_MS_MAX 3155760000000LL

/* ---- responses -------------------------------------------------------- */

typedef struct cluster__etcd3_kv cluster__etcd3_kv;
struct cluster__etcd3_kv
{
	char *key; /* decoded, NUL-terminated, owned */
	size_t key_len;
	char *value; /* decoded, NUL-terminated, owned (never NULL) */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease;
};

typedef struct cluster__etcd3_range cluster__etcd3_range;
struct cluster__etcd3_range
{
	int64_t revision; /* header.revision (> 0) */
	cluster__etcd3_kv *kvs;
	size_t n_kvs;
	int more;
};
/* Also E2BIG: more than CLUSTER_MEMBERS_MAX kvs (refused before any is
 * decoded; kvs that are not members count too). */
int cluster__etcd3_parse_range(const char *body, size_t len, cluster__etcd3_range *out);
void cluster__etcd3_range_free(cluster__etcd3_range *r);

/* Ranges a succeeded txn may answer (cluster__etcd3_build_write_read()). */
#define CLUSTER__ETCD3_TXN_RANGES 2

typedef struct cluster__etcd3_txn cluster__etcd3_txn;
struct cluster__etcd3_txn
{
	int succeeded;
	int64_t revision; /* header.revision (> 0) */
	int has_kv;       /* failure branch found the key */
	cluster__etcd3_kv kv;
	/* a succeeded txn's range answers, in order, each at revision; a
	 * range answer that cannot be used (malformed, paged, more than
	 * CLUSTER_MEMBERS_MAX kvs, out of memory) leaves n_ranges 0 and its
	 * cause in ranges_err: the txn itself stands, and the caller reads
	 * the prefixes as usual instead */
	cluster__etcd3_range ranges[CLUSTER__ETCD3_TXN_RANGES];
	size_t n_ranges;
	int ranges_err;
};
int cluster__etcd3_parse_txn(const char *body, size_t len, cluster__etcd3_txn *out);
void cluster__etcd3_txn_free(cluster__etcd3_txn *t);

/* Lease grant: ID must be non-zero, TTL > 0. */
int cluster__etcd3_parse_grant(const char *body, size_t len, int64_t *id, int64_t *ttl);
/* Keepalive reply {"result":{"ID":..,"TTL":..}}: *ttl 0 means the lease is
 * gone (etcd omits TTL). A stream error {"error":{..}} returns EIO. */
int cluster__etcd3_parse_keepalive(const char *body, size_t len, int64_t *id, int64_t *ttl);
/* Authenticate reply: *token malloc'd. */
int cluster__etcd3_parse_auth(const char *body, size_t len, char **token);
/* Unary error body {"error":..,"message":..,"code":N}: copies the message
 * (truncated) into msg; returns 0 if it is such a body, else EBADMSG. */
int cluster__etcd3_parse_error(const char *body, size_t len, int *code, char *msg, size_t msgsz);

/* ---- watch stream ------------------------------------------------------ */

#define CLUSTER__ETCD3_PUT    0
#define CLUSTER__ETCD3_DELETE 1

typedef struct cluster__etcd3_event cluster__etcd3_event;
struct cluster__etcd3_event
{
	int type;             /* CLUSTER__ETCD3_PUT (type absent) or _DELETE */
	cluster__etcd3_kv kv; /* for DELETE only key and mod_revision */
};

typedef struct cluster__etcd3_watch_msg cluster__etcd3_watch_msg;
struct cluster__etcd3_watch_msg
{
	int error;           /* stream error object {"error":..}: the stream ends */
	int error_code;      /* its grpc code (or "code") */
	char *error_message; /* owned, may be NULL */
	int created;
	int canceled;
	int64_t watch_id; /* absent = 0 */
	int64_t revision; /* header.revision, 0 if absent */
	int64_t compact_revision;
	char *cancel_reason; /* owned, may be NULL */
	cluster__etcd3_event *events;
	size_t n_events;
};
/* One line of the stream. A message with no events, not created and not
 * canceled is a progress notification. */
int cluster__etcd3_parse_watch(const char *line, size_t len, cluster__etcd3_watch_msg *out);
void cluster__etcd3_watch_msg_free(cluster__etcd3_watch_msg *m);

/* ---- member records ---------------------------------------------------- */

/*
 * Map a key to a member id: the key must be prefix + id where id is a
 * valid name (1..CLUSTER_NAME_MAX bytes of [A-Za-z0-9._-], not "." or
 * ".."). Returns 0, ENOENT (not a direct child of the prefix: ignore) or
 * EINVAL (a child whose name is not a valid id: worth a warning).
 */
int cluster__etcd3_member_id(const char *prefix, const char *key, size_t key_len, char id[CLUSTER_NAME_MAX + 1]);

/*
 * Parse a member value into m's workers and status fields (other fields
 * untouched). Returns 0 or EINVAL with *why saying what is wrong (not a
 * JSON object, workers missing or outside 1..CLUSTER_WORKERS_MAX). Unknown
 * fields are ignored; malformed status fields only clear has_status, and
 * then the call returns 0 with *why saying so (worth a warning).
 */
int cluster__etcd3_parse_member_value(const char *value, size_t len, cluster__member *m, const char **why);

/*
 * Parse a status value ({"address":..,"load":..,"capacity":..}) into m's
 * status fields (has_status 1). Returns 0, or EINVAL (has_status 0) with
 * *why saying what is wrong. An optional "up_ms" (an integer 0 ..
 * CLUSTER__ETCD3_UP_MS_MAX) sets m->has_up and m->up_ms; one that is not
 * is left out (has_up 0), the status stands.
 */
int cluster__etcd3_parse_status_value(const char *value, size_t len, cluster__member *m, const char **why);

#endif /*!CLUSTER_ETCD3_PROTO_H_*/
