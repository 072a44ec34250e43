/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd v3 engine (JSON gateway, /v3/...).
 *
 * Key layout, both keys under one lease of cluster->ttl seconds:
 * - member key /<key>/[<partition>/]<env>/<instance-id>, value
 *   {"workers":N}; every member watches this prefix;
 * - status key /<key>/[<partition>/]<env>@status/<instance-id>, value
 *   {"address":..,"load":..,"capacity":..}, present only while a status
 *   is reported. "@" is not allowed in names, so this prefix can never be
 *   an env or a partition, and it lies outside the member prefix's range:
 *   a member's status reports never reach members that do not ask for
 *   them. Only instances that use the advisor (engine.h want_statuses)
 *   watch it. Status fields found in a member value (writers from before
 *   the split) are still read.
 *
 * Threads (never holding cluster->lock or the waker's mutex across network I/O or a
 * publish), each with its own HTTP connection:
 * - the ping thread keeps the lease alive on one long-lived keepalive
 *   stream (POST /v3/lease/keepalive, chunked upload, one {"ID":..} every
 *   TTL/3, one result line back each). The unary requests it needs (the
 *   member and status writes, re-registration, leave's revoke) go on the
 *   same connection: it ends the upload (etcd then ends the answer), makes
 *   the request, and opens the stream again when the next keepalive is
 *   due. While writes come at least as often as keepalives, keepalives
 *   are plain requests instead (one object each), until a keepalive
 *   interval passes without a write. Status writes are paced by the
 *   report policy (report-policy.h);
 * - the balancer (watch) thread holds one long-lived watch stream with the
 *   member prefix watch (id 0) and, for advisor users, the status prefix
 *   watch (ids 1, 2, ...). It applies events to one member table whose
 *   nodes carry the members' statuses (status-fold.h: one node per
 *   member), publishes a view per message, resumes both watches
 *   by revision after a broken stream and re-reads only after a
 *   compaction. From 25 members on (at the default budget) the status
 *   watch takes one batch at a time: after a message of statuses it is
 *   canceled, and created again from the next revision once
 *   cluster__report_poll_ms() has passed, so etcd replays what was
 *   written meanwhile in one message (a member costs etcd five messages
 *   per wait instead of one per status write in the cluster).
 * So an instance holds two TCP connections. One is not possible over
 * HTTP/1.1: the watch and the keepalive are two concurrent streams, and a
 * connection carries one request at a time.
 * Over plain HTTP/1.1 etcd's gateway (Go's net/http) answers a streamed
 * request whose body is still open with "Connection: close" (it cannot
 * tell where the body ends while it answers; golang issue 11549), so the
 * connection of an ended keepalive stream is not reused: the request
 * after it (a write, the revoke at leave) opens a new one, and the next
 * stream keeps that. Over HTTPS etcd speaks HTTP/2, where a stream ends
 * without closing the connection (expected; not measured here). Either
 * way an instance never holds more than two at a time.
 * A passive member registers nothing and runs only the watch thread.
 */
#include "util.h"
#include "engine.h"
#include "waker.h"
#include "http.h"
#include "etcd3-proto.h"
#include "member-table.h"
#include "status-fold.h"
#include "report-policy.h"
#include "advisor.h"
#include "shard-sync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The watch must say "created" within this (ms); etcd answers a malformed
 * create with silence. */
#define WATCH_CREATED_TIMEOUT_MS 3000
#define WATCH_BACKOFF_MIN_MS     50
#define WATCH_BACKOFF_MAX_MS     1000
/*
 * Stack of each engine thread. They run short, fixed call chains (libcurl,
 * cJSON, whose nesting limit of 1000 bounds the deepest: a 990-deep
 * hostile watch message needs about 100 KiB at -O2), so 256 KiB is a safe
 * margin where glibc reserves 8 MiB each; a process with a thousand
 * instances runs two thousand of these threads. (Only touched pages count
 * towards RSS either way.) Sanitizer builds, whose frames are several
 * times larger, keep the default.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
# define THREAD_STACK 0
#elif defined(__has_feature)
# if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#  define THREAD_STACK 0
# endif
#endif
#ifndef THREAD_STACK
# define THREAD_STACK (256 * 1024)
#endif

/* Retry pause of the ping thread after a failed request (ms). */
#define PING_RETRY_MS 500

/* Wake-up flags (cluster__waker). */
#define PING_WAKE  0x1u  /* the ping thread should look again */
#define CHECK_SELF 0x2u  /* the watch saw our key deleted (kept until a write) */
#define WATCH_KICK 0x4u  /* the watch should reconnect (resume by revision) */
#define REPUBLISH  0x8u  /* the watch thread should publish again */
#define WATCH_ADD  0x10u /* reconnect to add the status watch (no outage) */

/* The member watch's id on our stream (the first create); the status
 * watches get the next ones, 1, 2, ..., one per batch. */
#define MEMBER_WATCH 0
/* How long leave lets the keepalive stream end cleanly (ms), so that the
 * revoke reuses its connection; then it is cut. */
#define STOP_END_MS 300

typedef struct etcd3_conn etcd3_conn;
struct etcd3_conn
{
	cluster__http *h;
	int authed; /* holds a valid auth token (when credentials are set) */
};

typedef struct etcd3 etcd3;
struct etcd3
{
	CLUSTER *core;                     /* the handle, for the hooks only */
	const cluster__engine_config *cfg; /* while joined */
	char **endpoints;
	size_t n_endpoints;

	/* fixed while joined */
	char *prefix;        /* "/key/[partition/]env/" */
	char *member_key;    /* prefix + instance id */
	char *status_prefix; /* "/key/[partition/]env@status/" */
	char *status_key;    /* status_prefix + instance id */
	char *label;         /* "key/[partition/]env" for log lines */
	int ttl;             /* granted TTL (s) */
	int passive;
	int ping_timeout_ms; /* a ping request, or a keepalive's answer */
	cluster__http_config hcfg;
	etcd3_conn ping;  /* ping thread's connection (join uses it first) */
	etcd3_conn watch; /* watch thread's connection */
	pthread_t ping_thread, watch_thread;
	int ping_running, watch_running;

	/* the threads' stop flag and wake-ups (PING_WAKE, CHECK_SELF,
	 * WATCH_KICK, REPUBLISH); its mutex also protects the fields below */
	cluster__waker w;
	unsigned long value_gen;       /* bumped when the worker count changes */
	unsigned long written_gen;     /* value_gen of the last value written */
	cluster__status joined_status; /* the status registration wrote (reported 0: none) */
	int64_t lease;
	int registered;
	int lease_ok;
	int watch_ok;
	int id_taken;       /* another live instance holds our id */
	int want_statuses;  /* the advisor is in use (sticky, survives leave) */
	int statuses_ready; /* this join's first status read reached the view */
	size_t n_members;   /* members in the last published view (report policy) */
	int ping_exited;    /* the ping thread has ended (leave waits for it) */
	/* (atomic) when the ping thread last had a keepalive answered, in
	 * monotonic ms << 8, with the index of the endpoint that answered in
	 * the low 8 bits; 0: none yet (watch_vouched()) */
	uint64_t ping_heard;

	pthread_mutex_t fresh_m; /* orders cluster__set_fresh() calls */

	/* watch thread only (join fills them before it starts) */
	cluster__table table;    /* members, with their statuses (status-fold.h) */
	cluster__table statuses; /* statuses of ids that are not members (ditto) */
	uint64_t members_gen;    /* bumped when table's members may have changed (view.h) */
	int64_t last_rev;        /* of the member watch */
	int64_t status_rev;      /* of the status watch; 0: not watched */
	uint64_t batch_rng;      /* jitter of the status batch waits */
	int over_limit;          /* the prefix holds more than CLUSTER_MEMBERS_MAX */
	/* Thread memory kept reachable from here, not only from the threads'
	 * stacks: a forked child, which has none of the threads, must not see
	 * it as lost (see cluster_destroy()'s fork rule). */
	char *watch_body; /* (watch thread) the request of the current stream */
	void *ping_state; /* (ping thread) its state */

	/* shard ownership (cfg->shards): the record, the acknowledgements,
	 * the shard thread's own connections, and until when the lease is
	 * known to live (w's mutex: monotonic ms, 0: no lease) */
	char *shard_key;  /* "/key/[partition/]env@shards" */
	char *ack_prefix; /* "/key/[partition/]env@shards-ack/" */
	char *ack_key;    /* ack_prefix + instance id */
	etcd3_conn shard;
	etcd3_conn shard_watch;
	cluster__shard_sync *sync;
	int64_t hold_until;
};

static void shards_members(etcd3 *ed);
static void shards_wake(etcd3 *ed);

/* ---------------------------------------------------------------------- */
/* small helpers                                                            */
/* ---------------------------------------------------------------------- */

static int
stopping(etcd3 *ed)
{
	return cluster__waker_stopping(&ed->w);
}

/* The revision after rev. Revisions come from the registry: a hostile
 * one may send INT64_MAX, which must not overflow (undefined behaviour). */
static int64_t
next_rev(int64_t rev)
{
	return rev < INT64_MAX ? rev + 1 : INT64_MAX;
}

/* Sleep up to ms, waking early on stop (returns non-zero then). */
static int
nap(etcd3 *ed, int64_t ms)
{
	int64_t end = cluster__now_ms() + ms;

	for(;;)
	{
		/* a settling change is delivered on time even while we wait */
		int64_t settle = cluster__settle_tick(ed->core);
		int64_t wait = end - cluster__now_ms();

		if(wait <= 0)
		{
			return 0;
		}
		if(settle >= 0 && settle < wait)
		{
			wait = settle;
		}
		if(cluster__waker_nap(&ed->w, wait, WATCH_KICK))
		{
			return 1;
		}
		if(cluster__waker_peek(&ed->w, WATCH_KICK))
		{
			return 0;
		}
	}
}

/* Freshness = watch connected and (passive or lease healthy). One mutex
 * orders the calls so an older verdict never overwrites a newer one. */
static void
update_fresh(etcd3 *ed)
{
	int f;

	pthread_mutex_lock(&ed->fresh_m);
	cluster__waker_lock(&ed->w);
	f = ed->watch_ok && (ed->passive || (ed->registered && ed->lease_ok));
	cluster__waker_unlock(&ed->w);
	cluster__set_fresh(ed->core, f);
	pthread_mutex_unlock(&ed->fresh_m);
}

/* Wake the ping thread with flags: out of its nap, or, while it runs the
 * keepalive stream, out of the stream's poll (its tick looks again). */
static void
wake_ping(etcd3 *ed, unsigned flags)
{
	cluster__waker_lock(&ed->w);
	cluster__waker_raise_locked(&ed->w, flags | PING_WAKE);
	if(ed->ping.h)
	{
		cluster__http_wake(ed->ping.h);
	}
	cluster__waker_unlock(&ed->w);
}

/* ---------------------------------------------------------------------- */
/* requests                                                                 */
/* ---------------------------------------------------------------------- */

/* Turn a non-200 answer into an errno value and a reason for the log. */
static int
status_error(const cluster__http_response *resp, char *why, size_t whysz)
{
	char msg[256], shown[CLUSTER__ESCAPE_SIZE(64)];
	int code;

	/* the registry's words are quoted escaped, like any input */
	if(cluster__etcd3_parse_error(resp->body, resp->len, &code, msg, sizeof(msg)))
	{
		cluster__escape(shown, sizeof(shown), resp->body ? resp->body : "", resp->len > 64 ? 64 : resp->len);
	}
	else
	{
		cluster__escape(shown, sizeof(shown), msg, strlen(msg) > 64 ? 64 : strlen(msg));
	}
	snprintf(why, whysz, "HTTP %ld: %s", resp->status, shown);
	if(resp->status == 400 && strstr(why, "user name is empty"))
	{
		/* etcd's answer to a request without a token: auth is on */
		return EACCES;
	}
	switch(resp->status)
	{
	case 401:
		return EACCES;
	case 403:
		/* a user without permission on the cluster's keys */
		return EPERM;
	case 404:
		return ENOENT;
	case 400:
	case 412:
		return EINVAL;
	default:
		return EIO;
	}
}

/* Log in (etcd v3 auth) on one connection when credentials are set. */
static int
authenticate(etcd3 *ed, etcd3_conn *cn, char *why, size_t whysz)
{
	cluster__http_response resp;
	char *body, *token = NULL;
	int r;

	cluster__http_set_token(cn->h, NULL);
	body = cluster__etcd3_build_auth(ed->cfg->user, ed->cfg->password);
	if(!body)
	{
		snprintf(why, whysz, "out of memory");
		return ENOMEM;
	}
	r = cluster__http_request(cn->h, "POST", "/v3/auth/authenticate", NULL, body, &resp);
	memset(body, 0, strlen(body));
	free(body);
	if(r)
	{
		snprintf(why, whysz, "%s", cluster__http_error(cn->h, r));
		return r;
	}
	if(resp.status != 200)
	{
		r = status_error(&resp, why, whysz);
		cluster__http_response_free(&resp);
		/* a refused password is a credentials problem whatever the code */
		return r == EIO ? r : EACCES;
	}
	r = cluster__etcd3_parse_auth(resp.body, resp.len, &token);
	cluster__http_response_free(&resp);
	if(r)
	{
		snprintf(why, whysz, "malformed authenticate response");
		return EIO;
	}
	r = cluster__http_set_token(cn->h, token);
	memset(token, 0, strlen(token));
	free(token);
	if(!r)
	{
		cn->authed = 1;
	}
	return r;
}

/*
 * One unary POST. Returns 0 only for HTTP 200 (resp then holds the body,
 * to be freed by the caller); otherwise an errno value with a reason in
 * why. Logs in first when credentials are set, and once more on 401
 * (tokens expire when idle).
 */
static int
rpc(etcd3 *ed, etcd3_conn *cn, const char *path, const char *body, cluster__http_response *resp, char *why, size_t whysz)
{
	int r = EIO, attempt;

	memset(resp, 0, sizeof(*resp));
	why[0] = 0;
	if(!body)
	{
		snprintf(why, whysz, "out of memory");
		return ENOMEM;
	}
	for(attempt = 0; attempt < 2; attempt++)
	{
		if(ed->cfg->user && !cn->authed)
		{
			r = authenticate(ed, cn, why, whysz);
			if(r)
			{
				return r;
			}
		}
		r = cluster__http_request(cn->h, "POST", path, NULL, body, resp);
		if(r)
		{
			snprintf(why, whysz, "%s", cluster__http_error(cn->h, r));
			return r;
		}
		if(resp->status == 200)
		{
			return 0;
		}
		r = status_error(resp, why, whysz);
		cluster__http_response_free(resp);
		/* a token etcd no longer knows (expired, or etcd restarted with
		 * simple tokens; status_error() says EACCES for 401 and for
		 * "user name is empty"): log in again once, then retry */
		if(!ed->cfg->user || r != EACCES)
		{
			break;
		}
		cn->authed = 0;
	}
	return r;
}

/* A txn: POST body (freed here; NULL means out of memory) and parse the
 * answer into *txn. Returns 0 or an errno value with a reason in why. */
static int
txn_rpc(etcd3 *ed, etcd3_conn *cn, char *body, cluster__etcd3_txn *txn, char *why, size_t whysz)
{
	cluster__http_response resp;
	int r = rpc(ed, cn, "/v3/kv/txn", body, &resp, why, whysz);

	free(body);
	if(!r)
	{
		r = cluster__etcd3_parse_txn(resp.body, resp.len, txn);
		cluster__http_response_free(&resp);
		if(r)
		{
			snprintf(why, whysz, "malformed txn response");
			r = EIO;
		}
	}
	return r;
}

/* The member value, from the current worker count; *gen says which
 * worker change it includes. */
static char *
member_value(etcd3 *ed, unsigned long *gen)
{
	cluster__waker_lock(&ed->w);
	*gen = ed->value_gen;
	cluster__waker_unlock(&ed->w);
	return cluster__etcd3_build_member_value(cluster__get_workers(ed->core), 0, NULL, 0, 0);
}

/* The status value of st with this instance's age, or NULL when none is
 * reported (*oom says whether NULL means out of memory). */
static char *
status_value(const cluster__status *st, int *oom)
{
	char *v;

	*oom = 0;
	if(!st->reported)
	{
		return NULL;
	}
	v = cluster__etcd3_build_status_value(st->address, st->load, st->capacity, st->up_ms);
	*oom = !v;
	return v;
}

static int
revoke(etcd3 *ed, etcd3_conn *cn, int64_t lease)
{
	cluster__http_response resp;
	char why[320];
	char *body = cluster__etcd3_build_lease_id(lease);
	int r;

	r = rpc(ed, cn, "/v3/lease/revoke", body, &resp, why, sizeof(why));
	free(body);
	cluster__http_response_free(&resp);
	if(r && r != ENOENT && r != ECANCELED)
	{
		cluster__log(ed->core, LOG_DEBUG, "libcluster: etcd: cannot revoke lease %llx: %s\n", (unsigned long long) lease, why);
	}
	return r;
}

/* What a join reads in its registration transaction (register_once()):
 * the members always, the statuses when asked. */
typedef struct join_read join_read;
struct join_read
{
	int statuses;
	cluster__etcd3_txn txn;
};

/*
 * Grant a lease and create our key under it with a put-if-absent txn
 * (our status key too, in the same txn, when a status is reported). If
 * the key exists under old_lease (our previous lease) it is taken over
 * with a compare on that lease; under any other lease the new lease is
 * revoked and EEXIST returned (*rev_out = the revision that saw it).
 * On success ed->lease/registered/lease_ok are set and *st_out holds the
 * status written (reported 0: none). With jr (a join), the transaction
 * also reads the member prefix and, when jr->statuses, the status
 * prefix, and on success jr->txn keeps its answer (its ranges may still
 * be missing: see cluster__etcd3_txn).
 */
static int
register_once(etcd3 *ed, etcd3_conn *cn, int64_t old_lease, int64_t *rev_out, cluster__status *st_out, join_read *jr, char *why, size_t whysz)
{
	cluster__http_response resp;
	cluster__etcd3_txn txn;
	cluster__status st;
	unsigned long gen;
	int64_t lease, ttl, granted_from;
	char *value, *svalue, *body;
	int r, oom;

	*rev_out = 0;
	memset(&txn, 0, sizeof(txn));
	/* the lease lives at least a TTL from before its grant was asked */
	granted_from = cluster__now_ms();
	body = cluster__etcd3_build_grant(ed->cfg->ttl);
	r = rpc(ed, cn, "/v3/lease/grant", body, &resp, why, whysz);
	free(body);
	if(r)
	{
		return r;
	}
	r = cluster__etcd3_parse_grant(resp.body, resp.len, &lease, &ttl);
	cluster__http_response_free(&resp);
	if(r)
	{
		snprintf(why, whysz, "malformed lease grant response");
		return EIO;
	}
	ed->ttl = ttl > CLUSTER_TTL_MAX ? CLUSTER_TTL_MAX : (int) ttl;

	cluster__get_status(ed->core, &st);
	value = member_value(ed, &gen);
	svalue = status_value(&st, &oom);
	body = value && !oom ? cluster__etcd3_build_write_read(ed->member_key, 0, ed->member_key, value, svalue ? ed->status_key : NULL, svalue, lease,
							   jr ? ed->prefix : NULL, jr && jr->statuses ? ed->status_prefix : NULL) :
						   NULL;
	r = txn_rpc(ed, cn, body, &txn, why, whysz);
	if(!r && !txn.succeeded)
	{
		*rev_out = txn.revision;
		if(txn.has_kv && txn.kv.lease == lease)
		{
			/* an earlier attempt of this very call went through */
			txn.succeeded = 1;
		}
		else if(txn.has_kv && old_lease && txn.kv.lease == old_lease)
		{
			/* our own stale key: move it to the new lease, only if it is
			 * still under the old one */
			cluster__etcd3_txn_free(&txn);
			body = cluster__etcd3_build_write(ed->member_key, old_lease, ed->member_key, value, svalue ? ed->status_key : NULL, svalue, lease);
			r = txn_rpc(ed, cn, body, &txn, why, whysz);
		}
		if(!r && !txn.succeeded)
		{
			snprintf(why, whysz, "key %s is held by lease %llx", ed->member_key, (unsigned long long) txn.kv.lease);
			r = EEXIST;
		}
	}
	if(!r && jr)
	{
		cluster__etcd3_txn_free(&jr->txn);
		jr->txn = txn;
		memset(&txn, 0, sizeof(txn));
	}
	/* the failure paths (EEXIST above all) hold a decoded kv too */
	cluster__etcd3_txn_free(&txn);
	free(value);
	free(svalue);
	if(r)
	{
		if(r != ECANCELED)
		{
			revoke(ed, cn, lease);
		}
		return r;
	}
	cluster__waker_lock(&ed->w);
	ed->lease = lease;
	ed->registered = 1;
	ed->lease_ok = 1;
	ed->hold_until = granted_from + (int64_t) ed->ttl * 1000;
	ed->w.flags &= ~CHECK_SELF;
	ed->id_taken = 0;
	if(gen > ed->written_gen)
	{
		ed->written_gen = gen;
	}
	pthread_cond_broadcast(&ed->w.cv);
	cluster__waker_unlock(&ed->w);
	*st_out = st;
	if(old_lease && old_lease != lease)
	{
		revoke(ed, cn, old_lease);
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* member table                                                             */
/* ---------------------------------------------------------------------- */

/* A kv -> member record; ENOENT: not a member key (ignored); EINVAL: a
 * member key with a bad id or value (logged, left out). */
static int
member_from_kv(etcd3 *ed, const cluster__etcd3_kv *kv, cluster__member *rec)
{
	char shown[200];
	const char *why;
	int r;

	memset(rec, 0, sizeof(*rec));
	r = cluster__etcd3_member_id(ed->prefix, kv->key, kv->key_len, rec->id);
	if(r == ENOENT)
	{
		return ENOENT;
	}
	if(r)
	{
		cluster__escape(shown, sizeof(shown), kv->key, kv->key_len);
		cluster__log(ed->core, LOG_WARNING, "libcluster: etcd: ignoring key %s: the last part is not a valid instance id\n", shown);
		return EINVAL;
	}
	r = cluster__etcd3_parse_member_value(kv->value, kv->value_len, rec, &why);
	if(r)
	{
		cluster__log(ed->core, LOG_WARNING, "libcluster: etcd: leaving out member %s (key %s%s): %s\n", rec->id, ed->prefix, rec->id, why);
		return EINVAL;
	}
	if(*why)
	{
		cluster__log(ed->core, LOG_WARNING, "libcluster: etcd: member %s (key %s%s): %s\n", rec->id, ed->prefix, rec->id, why);
	}
	rec->passive = 0;
	rec->mod_revision = kv->mod_revision;
	rec->create_revision = kv->create_revision;
	return 0;
}

/* A kv of the status prefix -> status record (id and status fields);
 * ENOENT: not a status key (ignored); EINVAL: a bad id or value (logged,
 * left out). */
static int
status_from_kv(etcd3 *ed, const cluster__etcd3_kv *kv, cluster__member *rec)
{
	const char *why;

	memset(rec, 0, sizeof(*rec));
	if(cluster__etcd3_member_id(ed->status_prefix, kv->key, kv->key_len, rec->id))
	{
		/* a bad id has no member key either: it is never shown */
		return ENOENT;
	}
	if(cluster__etcd3_parse_status_value(kv->value, kv->value_len, rec, &why))
	{
		cluster__log(ed->core, LOG_WARNING, "libcluster: etcd: ignoring the status of %s (key %s%s): %s\n", rec->id, ed->status_prefix, rec->id, why);
		return EINVAL;
	}
	if(rec->has_up)
	{
		/* the member's join on our clock: its age at the write, taken
		 * back from now (the write is at most the transfer older) */
		rec->joined_ms = cluster__now_ms() - rec->up_ms;
	}
	rec->mod_revision = kv->mod_revision;
	return 0;
}

/* A kv of either prefix -> its record (statuses: status_from_kv). */
static int
record_from_kv(etcd3 *ed, int statuses, const cluster__etcd3_kv *kv, cluster__member *rec)
{
	return statuses ? status_from_kv(ed, kv, rec) : member_from_kv(ed, kv, rec);
}

/* Build a raw table (members, or statuses) from a range answer: received
 * now; folding it into the tables keeps the receipt time of what did not
 * change (status-fold.h). */
static int
table_from_range(etcd3 *ed, int statuses, const cluster__etcd3_range *rg, cluster__table *out)
{
	int64_t now = cluster__now_ms();
	size_t i;
	int r;

	memset(out, 0, sizeof(*out));
	for(i = 0; i < rg->n_kvs; i++)
	{
		cluster__member rec;

		if(record_from_kv(ed, statuses, &rg->kvs[i], &rec))
		{
			continue;
		}
		r = (statuses ? cluster__table_put_status : cluster__table_put)(out, &rec, now, NULL);
		if(r)
		{
			cluster__table_free(out);
			return r;
		}
	}
	return 0;
}

/*
 * A range request (body freed here; NULL means out of memory) and its
 * parsed answer. E2BIG: more than CLUSTER_MEMBERS_MAX keys (why is left
 * to the caller); a paged answer ("more") is refused: we never set a
 * limit, so a server that pages anyway is not etcd.
 */
static int
range_rpc(etcd3 *ed, etcd3_conn *cn, char *body, cluster__etcd3_range *rg, char *why, size_t whysz)
{
	cluster__http_response resp;
	int r;

	r = rpc(ed, cn, "/v3/kv/range", body, &resp, why, whysz);
	free(body);
	if(r)
	{
		return r;
	}
	r = cluster__etcd3_parse_range(resp.body, resp.len, rg);
	cluster__http_response_free(&resp);
	if(r == E2BIG)
	{
		return r;
	}
	if(r)
	{
		snprintf(why, whysz, "malformed range response");
		return r == ENOMEM ? r : EIO;
	}
	if(rg->more)
	{
		cluster__etcd3_range_free(rg);
		snprintf(why, whysz, "range response is incomplete (\"more\")");
		return EIO;
	}
	return 0;
}

/* Read a whole prefix once (the members, or with statuses set the
 * statuses): the table at revision *rev. */
static int
read_prefix(etcd3 *ed, etcd3_conn *cn, int statuses, cluster__table *out, int64_t *rev, char *why, size_t whysz)
{
	cluster__etcd3_range rg;
	const char *prefix = statuses ? ed->status_prefix : ed->prefix;
	int r;

	r = range_rpc(ed, cn, cluster__etcd3_build_range(prefix), &rg, why, whysz);
	if(r == E2BIG)
	{
		snprintf(why, whysz, "%s holds more than CLUSTER_MEMBERS_MAX (%d) %s", prefix, CLUSTER_MEMBERS_MAX, statuses ? "statuses" : "members");
	}
	if(r)
	{
		return r;
	}
	r = table_from_range(ed, statuses, &rg, out);
	*rev = rg.revision;
	cluster__etcd3_range_free(&rg);
	return r;
}

/* Make the statuses of raw (a whole status prefix, freed here) the
 * tables' separate statuses (status-fold.h). */
static int
take_statuses(etcd3 *ed, cluster__table *raw, char *why, size_t whysz)
{
	int r = cluster__fold_prefixes(&ed->table, &ed->statuses, NULL, raw, cluster__now_ms());

	cluster__table_free(raw);
	if(r)
	{
		snprintf(why, whysz, "out of memory");
	}
	return r;
}

/* Read the whole status prefix on the watch connection into the tables:
 * the statuses at revision *rev. */
static int
read_statuses(etcd3 *ed, int64_t *rev, char *why, size_t whysz)
{
	cluster__table raw;
	int r = read_prefix(ed, &ed->watch, 1, &raw, rev, why, whysz);

	return r ? r : take_statuses(ed, &raw, why, whysz);
}

/*
 * Publish the member table and the statuses table (the one place that
 * hands the engine's two tables to the core). Returns
 * cluster__publish_tables()'s verdict.
 *
 * An active member that is only re-registering (its lease expired while
 * the registry was away, or its key was deleted) still counts itself: it
 * will be back within moments, and telling the application it left would
 * make it drop its work for nothing. Only when another live instance
 * holds our id is this instance shown as absent.
 */
static int
publish(etcd3 *ed)
{
	cluster__table t;
	cluster__member self;
	int taken, add_self, r;

	cluster__waker_lock(&ed->w);
	taken = ed->id_taken || ed->w.stop;
	ed->n_members = cluster__table_count(&ed->table);
	cluster__waker_unlock(&ed->w);
	add_self = !ed->passive && !taken && !cluster__table_find(&ed->table, ed->cfg->instance);
	shards_members(ed);
	if(!add_self)
	{
		return cluster__publish_tables(ed->core, &ed->table, &ed->statuses, ed->last_rev, ed->members_gen);
	}
	/* ourselves put into a shared copy: O(log N), the table untouched */
	cluster__table_share(&t, &ed->table);
	memset(&self, 0, sizeof(self));
	snprintf(self.id, sizeof(self.id), "%s", ed->cfg->instance);
	self.workers = cluster__get_workers(ed->core);
	if(cluster__table_put(&t, &self, cluster__now_ms(), NULL))
	{
		cluster__table_free(&t);
		cluster__table_share(&t, &ed->table);
	}
	/* not the table's members: a count of 0 says so */
	r = cluster__publish_tables(ed->core, &t, &ed->statuses, ed->last_rev, 0);
	cluster__table_free(&t);
	return r;
}

/* ---------------------------------------------------------------------- */
/* watch (balancer) thread                                                  */
/* ---------------------------------------------------------------------- */

/* A watch stream's heartbeat (heartbeat_tick()). */
typedef struct watch_beat watch_beat;
struct watch_beat
{
	int ms;        /* heartbeat_ms() */
	int grace_ms;  /* how long a progress request may go unanswered */
	int vouch;     /* the keepalive stream's answers count as heard */
	int64_t heard; /* a line arrived then; 0: not created yet */
	int64_t asked; /* the unanswered progress request went out then */
};

typedef struct watch_ctx watch_ctx;
struct watch_ctx
{
	etcd3 *ed;
	int created;
	watch_beat beat;
	int64_t compacted; /* > 0: history compacted at this revision */
	int err;           /* why the stream was abandoned */
	int restart;       /* ended to add the status watch */
	char why[300];
	/* the status watch, one batch at a time (status_batch_tick()) */
	int st_state;    /* ST_IDLE, ST_CREATING, ST_OPEN, ST_CANCELING */
	int64_t st_id;   /* its watch id once created */
	int64_t st_next; /* ST_IDLE: when to create it again */
	int64_t st_last; /* when the last batch ended, 0: none yet */
};

/* States of the status watch on the watch stream. */
#define ST_IDLE      0
#define ST_CREATING  1
#define ST_OPEN      2
#define ST_CANCELING 3

/* Heartbeat of the watch stream: a progress request every TTL/3 (0.5 to
 * 5 s) without other news, answered at once by a live endpoint. A hung
 * one (SIGSTOPped, or cut off without a reset) answers nothing, and the
 * stream is abandoned once the request has gone unanswered for a grace
 * period: within two thirds of the TTL of the last news (three quarters
 * when the news was a keepalive's answer, see heartbeat_tick()). */
static int
heartbeat_ms(const etcd3 *ed)
{
	int hb = ed->cfg->ttl * 1000 / 3;

	return hb < 500 ? 500 : hb > 5000 ? 5000 :
										hb;
}

static int
heartbeat_grace_ms(const etcd3 *ed)
{
	int hb = heartbeat_ms(ed);

	return hb < 1000 ? 1000 : hb;
}

static void
beat_init(watch_beat *b, const etcd3 *ed, int vouch)
{
	memset(b, 0, sizeof(*b));
	b->ms = heartbeat_ms(ed);
	b->grace_ms = heartbeat_grace_ms(ed);
	b->vouch = vouch;
}

/* A line arrived on the stream (created: the watch exists): it is news. */
static void
beat_heard(watch_beat *b, int created)
{
	if(created)
	{
		b->heard = cluster__now_ms();
		b->asked = 0;
	}
}

/* When the keepalive stream last heard from the endpoint h is talking to
 * (0: not lately, or another endpoint). The keepalives go to the same
 * etcd process every TTL/3: while they are answered, that process is not
 * hung, and a progress request on the watch would only tell us again, at
 * the same cost to etcd as the keepalive (half of a quiet member's etcd
 * CPU, issue 13). */
static int64_t
watch_vouched(etcd3 *ed, const cluster__http *h)
{
	uint64_t v = __atomic_load_n(&ed->ping_heard, __ATOMIC_RELAXED);

	return v && (v & 0xff) == (cluster__http_endpoint_index(h) & 0xff) ? (int64_t) (v >> 8) : 0;
}

/* A watch stream's heartbeat from its tick: once the watch is created,
 * send a progress request when nothing was heard for a heartbeat (from
 * the keepalive stream's answers too, b->vouch, with a quarter heartbeat
 * of slack for their own round trip), and end the stream with ETIMEDOUT
 * (*err, why) when it goes unanswered for the grace period. Returns ms
 * until it wants to look again, -1 before "created", or
 * CLUSTER__HTTP_STOP. */
static int64_t
heartbeat_tick(etcd3 *ed, cluster__http *h, watch_beat *b, int64_t now, int *err, char *why, size_t whysz)
{
	int64_t due, vouched;

	if(!b->heard)
	{
		return -1;
	}
	if(b->asked)
	{
		if(now - b->asked < b->grace_ms)
		{
			return b->asked + b->grace_ms - now;
		}
		*err = ETIMEDOUT;
		snprintf(why, whysz, "no answer to the heartbeat for %d ms (endpoint hung or cut off)", b->grace_ms);
		return CLUSTER__HTTP_STOP;
	}
	due = b->heard + b->ms;
	vouched = b->vouch ? watch_vouched(ed, h) : 0;
	if(vouched && vouched + b->ms + b->ms / 4 > due)
	{
		due = vouched + b->ms + b->ms / 4;
	}
	if(now < due)
	{
		return due - now;
	}
	if(cluster__http_stream_send(h, "{\"progress_request\":{}}\n"))
	{
		return CLUSTER__HTTP_STOP;
	}
	b->asked = now;
	return b->grace_ms;
}

/* Apply one message's events (the member watch's or the status
 * watch's) to the tables, then publish once. Returns 0, or E2BIG
 * (nothing published) when a new member would pass the limit. */
static int
apply_events(etcd3 *ed, const cluster__etcd3_watch_msg *msg)
{
	int statuses = ed->status_rev && msg->watch_id != MEMBER_WATCH;
	int64_t *rev = statuses ? &ed->status_rev : &ed->last_rev;
	const char *prefix = statuses ? ed->status_prefix : ed->prefix;
	int64_t now = cluster__now_ms();
	size_t i;
	int self_deleted = 0;

	if(!statuses)
	{
		ed->members_gen++;
	}
	for(i = 0; i < msg->n_events; i++)
	{
		const cluster__etcd3_event *ev = &msg->events[i];
		cluster__member rec;
		int r;

		if(ev->kv.mod_revision > *rev)
		{
			*rev = ev->kv.mod_revision;
		}
		if(ev->type == CLUSTER__ETCD3_DELETE)
		{
			memset(&rec, 0, sizeof(rec));
			if(cluster__etcd3_member_id(prefix, ev->kv.key, ev->kv.key_len, rec.id))
			{
				continue;
			}
			r = statuses ? cluster__fold_status_del(&ed->table, &ed->statuses, rec.id, now) :
						   cluster__fold_member_del(&ed->table, &ed->statuses, rec.id);
			if(r)
			{
				cluster__log(ed->core, LOG_ERR, "libcluster: etcd: out of memory applying a watch event\n");
			}
			if(!statuses && !strcmp(rec.id, ed->cfg->instance))
			{
				self_deleted = 1;
			}
			continue;
		}
		r = record_from_kv(ed, statuses, &ev->kv, &rec);
		if(r == ENOENT)
		{
			continue;
		}
		if(r)
		{
			/* left out: a record we cannot read does not count */
			if(rec.id[0] && (statuses ? cluster__fold_status_del(&ed->table, &ed->statuses, rec.id, now) :
										cluster__fold_member_del(&ed->table, &ed->statuses, rec.id)))
			{
				cluster__log(ed->core, LOG_ERR, "libcluster: etcd: out of memory applying a watch event\n");
			}
			continue;
		}
		r = (statuses ? cluster__fold_status_put : cluster__fold_member_put)(&ed->table, &ed->statuses, &rec, now);
		if(r == E2BIG && statuses)
		{
			/* more statuses than members can exist only for members
			 * beyond the limit, which the view cannot show anyway */
			continue;
		}
		if(r == E2BIG)
		{
			/* the table cannot hold the registry's member set: it is no
			 * view any more; the caller re-reads the prefix until it is
			 * back within the limit, the previous view stays (stale) */
			return E2BIG;
		}
		if(r)
		{
			cluster__log(ed->core, LOG_ERR, "libcluster: etcd: out of memory applying a watch event\n");
		}
	}
	if(self_deleted && !ed->passive)
	{
		/* somebody removed our key (or our lease ran out): let the ping
		 * thread check and re-register */
		wake_ping(ed, CHECK_SELF);
	}
	publish(ed);
	return 0;
}

/*
 * Read one line of a watch stream (the member watch's or the shard
 * record's): 0 with *msg to act on (the caller frees it), or 1 when the
 * line ends the stream (msg already freed): a malformed line (*err
 * EBADMSG or ENOMEM), a stream error or a cancel (*err EIO; *unauthed
 * when etcd refused our token, so the next stream logs in again), or a
 * compaction (*compacted set, *err left 0). why gets the reason, the
 * registry's words quoted escaped.
 */
static int
watch_msg_read(const char *line, size_t len, cluster__etcd3_watch_msg *msg, int64_t cancel_asked, int *err, int64_t *compacted, int *unauthed, char *why, size_t whysz)
{
	char shown[CLUSTER__ESCAPE_SIZE(60)];
	const char *t;
	int r;

	r = cluster__etcd3_parse_watch(line, len, msg);
	if(r)
	{
		cluster__escape(shown, sizeof(shown), line, len > 60 ? 60 : len);
		snprintf(why, whysz, "malformed watch message <%s>", shown);
		*err = r == ENOMEM ? ENOMEM : EBADMSG;
		return 1;
	}
	if(!msg->error && (!msg->canceled || (cancel_asked > 0 && msg->watch_id == cancel_asked && msg->compact_revision <= 0)))
	{
		return 0; /* a message, or the answer to our own cancel */
	}
	if(msg->canceled && msg->compact_revision > 0)
	{
		*compacted = msg->compact_revision;
		cluster__etcd3_watch_msg_free(msg);
		return 1;
	}
	t = msg->error ? (msg->error_message ? msg->error_message : "") : (msg->cancel_reason ? msg->cancel_reason : "(no reason)");
	cluster__escape(shown, sizeof(shown), t, strlen(t) > 60 ? 60 : strlen(t));
	if(msg->error)
	{
		snprintf(why, whysz, "stream error %d: %s", msg->error_code, shown);
	}
	else
	{
		snprintf(why, whysz, "watch canceled: %s", shown);
	}
	*err = EIO;
	*unauthed = strstr(t, "Unauthenticated") || strstr(t, "auth token") || strstr(t, "user name is empty");
	cluster__etcd3_watch_msg_free(msg);
	return 1;
}

/* Queue one request line (body, which is freed; NULL: out of memory) on
 * the watch stream. Returns 0 when it was queued. */
static int
watch_send(etcd3 *ed, char *body)
{
	int r = !body || cluster__http_stream_send(ed->watch.h, body) || cluster__http_stream_send(ed->watch.h, "\n");

	free(body);
	return r;
}

/*
 * A batch of statuses arrived on the status watch: end the watch, unless
 * the cluster is small enough to watch statuses live
 * (cluster__report_poll_ms() 0). The statuses written until the next
 * batch stay in etcd's history; status_batch_tick() asks for them. If the
 * cancel cannot be queued the watch simply stays live until the next
 * batch.
 */
static void
status_batch_end(watch_ctx *w)
{
	cluster__report_policy pol;
	int64_t wait;

	cluster__get_report_policy(w->ed->core, &pol);
	wait = cluster__report_poll_ms(&pol, cluster__table_count(&w->ed->table));
	if(wait > 0 && !watch_send(w->ed, cluster__etcd3_build_cancel(w->st_id)))
	{
		int64_t now = cluster__now_ms();

		/* cluster__report_batch_wait() says why the first batch after a
		 * quiet spell waits a random part of the whole wait */
		w->st_state = ST_CANCELING;
		w->st_next = now + cluster__report_batch_wait(wait, w->st_last ? now - w->st_last : 0, cluster__adv_random(&w->ed->batch_rng));
		w->st_last = now;
	}
}

/* From the watch stream's tick: once the wait after the last batch is
 * over, watch the statuses again from the revision after the last one
 * seen (etcd replays what was written meanwhile as one message). Returns
 * ms until it is due, or -1 when nothing is waiting. */
static int64_t
status_batch_tick(watch_ctx *w, int64_t now)
{
	etcd3 *ed = w->ed;

	if(!ed->status_rev || !w->created || w->st_state != ST_IDLE)
	{
		return -1;
	}
	if(now < w->st_next)
	{
		return w->st_next - now;
	}
	if(!watch_send(ed, cluster__etcd3_build_watch(ed->status_prefix, 1, next_rev(ed->status_rev))))
	{
		w->st_state = ST_CREATING;
		return -1;
	}
	w->st_next = now + WATCH_BACKOFF_MAX_MS; /* out of memory: later */
	return WATCH_BACKOFF_MAX_MS;
}

static int
watch_line(void *ctx, const char *line, size_t len)
{
	watch_ctx *w = ctx;
	etcd3 *ed = w->ed;
	cluster__etcd3_watch_msg msg;
	int unauthed = 0;

	if(watch_msg_read(line, len, &msg, w->st_state == ST_CANCELING ? w->st_id : 0, &w->err, &w->compacted, &unauthed, w->why, sizeof(w->why)))
	{
		if(unauthed)
		{
			ed->watch.authed = 0;
		}
		return 1;
	}
	beat_heard(&w->beat, msg.created || w->created);
	if(msg.canceled)
	{
		/* the status watch ended as we asked: the next batch is due at
		 * st_next (status_batch_end(), status_batch_tick()) */
		w->st_state = ST_IDLE;
		cluster__etcd3_watch_msg_free(&msg);
		return 0;
	}
	if(msg.created && msg.watch_id != MEMBER_WATCH && ed->status_rev)
	{
		w->st_id = msg.watch_id;
		w->st_state = ST_OPEN;
		if(cluster__verbose(ed->core))
		{
			cluster__log(ed->core, LOG_DEBUG, "libcluster: etcd: watching %s from revision %lld\n", ed->status_prefix, (long long) next_rev(ed->status_rev));
		}
	}
	else if(msg.created)
	{
		w->created = 1;
		cluster__waker_lock(&ed->w);
		ed->watch_ok = 1;
		cluster__waker_unlock(&ed->w);
		update_fresh(ed);
		if(cluster__verbose(ed->core))
		{
			cluster__log(ed->core, LOG_DEBUG, "libcluster: etcd: watching %s from revision %lld at %s\n", ed->prefix, (long long) next_rev(ed->last_rev),
				cluster__http_endpoint(ed->watch.h));
		}
	}
	else if(!w->created)
	{
		snprintf(w->why, sizeof(w->why), "watch message before \"created\"");
		w->err = EBADMSG;
		cluster__etcd3_watch_msg_free(&msg);
		return 1;
	}
	if(msg.n_events && w->st_state == ST_OPEN && msg.watch_id == w->st_id)
	{
		/* one batch of statuses is all this member takes per wait: the
		 * statuses written meanwhile come in the next one */
		status_batch_end(w);
	}
	if(msg.n_events)
	{
		if(apply_events(ed, &msg) == E2BIG)
		{
			snprintf(w->why, sizeof(w->why), "%s holds more than CLUSTER_MEMBERS_MAX (%d) members", ed->prefix, CLUSTER_MEMBERS_MAX);
			w->err = E2BIG;
			cluster__etcd3_watch_msg_free(&msg);
			return 1;
		}
	}
	else if(msg.watch_id == -1)
	{
		/* the answer to our heartbeat (progress request): the endpoint is
		 * alive. Its revision is not used: etcd 3.4 may send it before
		 * events of lower revisions that are still on their way. */
	}
	else if(!msg.created && msg.watch_id != MEMBER_WATCH && ed->status_rev)
	{
		/* progress notification of the status watch */
		if(msg.revision > ed->status_rev)
		{
			ed->status_rev = msg.revision;
		}
	}
	else if(!msg.created && msg.revision > ed->last_rev)
	{
		/* progress notification: nothing for us up to this revision */
		ed->last_rev = msg.revision;
	}
	cluster__etcd3_watch_msg_free(&msg);
	return 0;
}

/* The watch stream's tick (outside libcurl): send a heartbeat when due,
 * deliver a settled change when due; returns the next time to look. */
static int64_t
watch_tick(void *ctx)
{
	watch_ctx *w = ctx;
	int64_t now = cluster__now_ms(), next, settle, batch;

	if(!w->ed->status_rev && cluster__waker_peek(&w->ed->w, WATCH_ADD))
	{
		w->restart = 1;
		return CLUSTER__HTTP_STOP;
	}
	next = heartbeat_tick(w->ed, w->ed->watch.h, &w->beat, now, &w->err, w->why, sizeof(w->why));
	if(next == CLUSTER__HTTP_STOP)
	{
		return next;
	}
	batch = status_batch_tick(w, now);
	if(batch >= 0 && (next < 0 || batch < next))
	{
		next = batch;
	}
	settle = cluster__settle_tick(w->ed->core);
	if(settle >= 0 && (next < 0 || settle < next))
	{
		next = settle;
	}
	return next;
}

/* After a compaction: read the prefix again (and the statuses, when
 * watched) and publish the difference. */
static int
reread(etcd3 *ed)
{
	cluster__table t, ts;
	char why[320];
	int64_t rev, srev = 0;
	int r;

	memset(&ts, 0, sizeof(ts));
	r = read_prefix(ed, &ed->watch, 0, &t, &rev, why, sizeof(why));
	if(r == E2BIG)
	{
		/* said once per episode; the watch thread retries meanwhile */
		cluster__log(ed->core, ed->over_limit ? LOG_DEBUG : LOG_ERR, "libcluster: etcd: %s; the view is kept as it was and marked stale until it is back within the limit\n", why);
		ed->over_limit = 1;
		return r;
	}
	if(!r && ed->status_rev)
	{
		r = read_prefix(ed, &ed->watch, 1, &ts, &srev, why, sizeof(why));
		if(r)
		{
			cluster__table_free(&t);
		}
	}
	if(!r)
	{
		/* the difference into the tables (unchanged records keep their
		 * receipt times), all or nothing */
		r = cluster__fold_prefixes(&ed->table, &ed->statuses, &t, ed->status_rev ? &ts : NULL, cluster__now_ms());
		cluster__table_free(&t);
		cluster__table_free(&ts);
		if(r)
		{
			snprintf(why, sizeof(why), "out of memory");
		}
	}
	if(r)
	{
		if(r != ECANCELED)
		{
			cluster__log(ed->core, LOG_WARNING, "libcluster: etcd: cannot re-read %s: %s\n", ed->prefix, why);
		}
		return r;
	}
	if(ed->over_limit)
	{
		cluster__log(ed->core, LOG_NOTICE, "libcluster: etcd: %s is back within CLUSTER_MEMBERS_MAX (%d members)\n", ed->prefix, CLUSTER_MEMBERS_MAX);
		ed->over_limit = 0;
	}
	ed->members_gen++;
	if(rev > ed->last_rev)
	{
		ed->last_rev = rev;
	}
	if(ed->status_rev && srev > ed->status_rev)
	{
		ed->status_rev = srev;
	}
	if(!cluster__table_find(&ed->table, ed->cfg->instance) && !ed->passive)
	{
		wake_ping(ed, CHECK_SELF);
	}
	publish(ed);
	return 0;
}

static int
wants_statuses(etcd3 *ed)
{
	int want;

	cluster__waker_lock(&ed->w);
	want = ed->want_statuses;
	cluster__waker_unlock(&ed->w);
	return want;
}

/* The first status read made for this join: say so to a pick waiting in
 * want_statuses(). */
static void
statuses_are_ready(etcd3 *ed)
{
	cluster__waker_lock(&ed->w);
	ed->statuses_ready = 1;
	pthread_cond_broadcast(&ed->w.cv);
	cluster__waker_unlock(&ed->w);
}

/*
 * The advisor came into use after join: read the statuses on the watch
 * connection (between two streams: a connection carries one request at a
 * time), publish them, and let the view reach the application (past the
 * settle window) before a waiting pick is released. The next stream then
 * carries the status watch too, from the revision read.
 */
static int
add_statuses(etcd3 *ed)
{
	char why[320];
	int64_t rev, settle;
	int r;

	r = read_statuses(ed, &rev, why, sizeof(why));
	if(r)
	{
		if(r != ECANCELED)
		{
			cluster__log(ed->core, LOG_WARNING, "libcluster: etcd: cannot read %s: %s\n", ed->status_prefix, why);
		}
		return r;
	}
	ed->status_rev = rev > 0 ? rev : 1;
	publish(ed);
	while((settle = cluster__settle_tick(ed->core)) >= 0)
	{
		if(cluster__waker_nap(&ed->w, settle, 0))
		{
			break;
		}
	}
	statuses_are_ready(ed);
	return 0;
}

/* The watch request: the member watch and, when statuses are watched,
 * the status watch, each from the revision after the last one seen (ids
 * 0 and 1, assigned in this order). */
static char *
watch_request(etcd3 *ed)
{
	char *a = cluster__etcd3_build_watch(ed->prefix, 1, next_rev(ed->last_rev)), *b, *both;

	if(!a || !ed->status_rev)
	{
		return a;
	}
	b = cluster__etcd3_build_watch(ed->status_prefix, 1, next_rev(ed->status_rev));
	both = b ? malloc(strlen(a) + strlen(b) + 2) : NULL;
	if(both)
	{
		sprintf(both, "%s\n%s", a, b);
	}
	free(a);
	free(b);
	return both;
}

/* The ping thread changed what publish() shows (our id was taken or freed):
 * publish again. Returns non-zero if it did. */
static int
republish(etcd3 *ed)
{
	int again;

	again = cluster__waker_take(&ed->w, REPUBLISH) != 0;
	if(again)
	{
		publish(ed);
	}
	return again;
}

/* The watch is not connected: the view is stale until it is again. */
static void
watch_down(etcd3 *ed)
{
	cluster__waker_lock(&ed->w);
	ed->watch_ok = 0;
	cluster__waker_unlock(&ed->w);
	update_fresh(ed);
}

static void *
watch_main(void *arg)
{
	etcd3 *ed = arg;
	int backoff = WATCH_BACKOFF_MIN_MS, failures = 0, need_reread = 0;

	cluster__log(ed->core, LOG_DEBUG, "libcluster: etcd: re-balancing thread started for %s at %s\n", ed->label, cluster__http_endpoint(ed->watch.h));
	ed->batch_rng = (uint64_t) cluster__report_phase(ed->cfg->instance) << 32 ^ (uint64_t) cluster__now_ms();
	/* the join's own view first (delivered as cluster_join() ends) */
	while(!cluster__first_view_delivered(ed->core) && !cluster__waker_nap(&ed->w, 5, 0))
	{
	}
	while(!stopping(ed))
	{
		cluster__http_stream_opts so;
		watch_ctx w;
		char *body;
		long status = 0;
		int r, kicked;

		if(need_reread)
		{
			if(reread(ed))
			{
				goto retry;
			}
			need_reread = 0;
		}
		cluster__waker_take(&ed->w, WATCH_ADD);
		if(!ed->status_rev && wants_statuses(ed) && add_statuses(ed))
		{
			goto retry;
		}
		memset(&w, 0, sizeof(w));
		w.ed = ed;
		w.st_state = ed->status_rev ? ST_CREATING : ST_IDLE; /* in the request */
		cluster__waker_take(&ed->w, WATCH_KICK);
		if(ed->cfg->user && !ed->watch.authed)
		{
			r = authenticate(ed, &ed->watch, w.why, sizeof(w.why));
			if(r)
			{
				goto failed;
			}
		}
		body = watch_request(ed);
		if(!body)
		{
			snprintf(w.why, sizeof(w.why), "out of memory");
			goto failed;
		}
		memset(&so, 0, sizeof(so));
		so.on_line = watch_line;
		so.on_tick = watch_tick;
		so.ctx = &w;
		so.duplex = 1;
		so.first_line_timeout_ms = WATCH_CREATED_TIMEOUT_MS;
		/* no idle limit: heartbeat_tick() judges silence, counting the
		 * keepalive stream's answers */
		beat_init(&w.beat, ed, 1);
		ed->watch_body = body;
		r = cluster__http_stream_run(ed->watch.h, "/v3/watch", body, &so, &status);
		ed->watch_body = NULL;
		free(body);
		kicked = cluster__waker_take(&ed->w, WATCH_KICK) != 0;
		if(kicked && r == ECANCELED)
		{
			/* the ping thread kicks the watch when the registry answers
			 * again after failures, at the endpoint it moved to: the one
			 * the watch had may be the one that hung, so follow it */
			uint64_t v = __atomic_load_n(&ed->ping_heard, __ATOMIC_RELAXED);

			if(v)
			{
				cluster__http_use_endpoint(ed->watch.h, (size_t) (v & 0xff));
			}
		}
		if(w.restart && !stopping(ed))
		{
			/* a healthy stream ended to add the status watch: the view
			 * stays current, the next stream resumes both at once */
			republish(ed);
			continue;
		}
		watch_down(ed);
		if(stopping(ed))
		{
			break;
		}
		if(w.created)
		{
			backoff = WATCH_BACKOFF_MIN_MS;
			failures = 0;
		}
		if(w.compacted)
		{
			cluster__log(ed->core, LOG_NOTICE, "libcluster: etcd: watch history of %s was compacted at revision %lld (we had %lld); re-reading\n",
				ed->prefix, (long long) w.compacted, (long long) ed->last_rev);
			need_reread = 1;
			continue;
		}
		if(kicked && r == ECANCELED && republish(ed))
		{
			continue;
		}
		if(kicked && r == ECANCELED)
		{
			cluster__log(ed->core, LOG_DEBUG, "libcluster: etcd: reconnecting the watch (from revision %lld)\n", (long long) next_rev(ed->last_rev));
			continue;
		}
		if(w.err == E2BIG)
		{
			/* said once per episode; the view stays as it was, marked
			 * stale, until a re-read finds the prefix within the limit */
			cluster__log(ed->core, ed->over_limit ? LOG_DEBUG : LOG_ERR, "libcluster: etcd: %s; re-reading it, the view is kept as it was and marked stale meanwhile\n", w.why);
			ed->over_limit = 1;
			need_reread = 1;
			goto retry;
		}
		if(!w.err && !r)
		{
			snprintf(w.why, sizeof(w.why), status && status != 200 ? "HTTP status %ld" : "stream ended", status);
		}
		else if(!w.err)
		{
			snprintf(w.why, sizeof(w.why), "%s", cluster__http_error(ed->watch.h, r));
		}
failed:
		failures++;
		cluster__log(ed->core, failures == 1 ? LOG_WARNING : LOG_DEBUG, "libcluster: etcd: watch on %s at %s broke: %s; reconnecting\n", ed->prefix,
			cluster__http_endpoint(ed->watch.h), w.why);
retry:
		watch_down(ed);
		cluster__http_next_endpoint(ed->watch.h);
		if(nap(ed, backoff))
		{
			break;
		}
		backoff = backoff * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS : backoff * 2;
	}
	cluster__waker_lock(&ed->w);
	ed->watch_ok = 0;
	cluster__waker_unlock(&ed->w);
	if(cluster__verbose(ed->core))
	{
		cluster__log(ed->core, LOG_DEBUG, "libcluster: etcd: re-balancing thread for %s stopped\n", ed->label);
	}
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* ping thread                                                              */
/* ---------------------------------------------------------------------- */

typedef struct ping_state ping_state;
struct ping_state
{
	etcd3 *ed;
	int64_t next_keepalive;
	int64_t last_ok;
	int64_t retry_register; /* when to try re-registering */
	int64_t retry_write;    /* when a failed write may be retried */
	int failing;            /* keepalives are failing */
	int ka_failures;        /* keepalive streams failed in a row */
	int expired_warned;
	int exists_warned;
	/* the status as written under the current lease (valid 0: none) */
	cluster__report_sample written;
	cluster__report_policy pol; /* the policy and member count last used */
	size_t pol_n;
	char written_address[CLUSTER_ADDRESS_MAX + 1];
	unsigned long written_exact; /* the status's exact_seq when written */
	int64_t written_up_ms;       /* the age it published (-1: none) */
	int64_t first_wait;          /* since when a first write waits, 0: none */
	/* the keepalive stream in progress */
	int64_t ka_sent; /* when the unanswered keepalive went out, 0: none */
	int64_t end_by;  /* the upload was ended: the answer must end by then */
	int answered;    /* keepalives answered on this stream */
	int lease_gone;  /* etcd answered without a TTL */
	int ended_for_write;
	/* keepalives as plain requests while writes are frequent */
	int unary;
	int wrote; /* a write since the last keepalive */
	int err;   /* why the stream was abandoned (0: it was not) */
	char why[320];
};

/* What the ping thread does next. */
enum
{
	ACT_NONE,
	ACT_STOP,
	ACT_REGISTER,
	ACT_WRITE
};

static int
refresh_ms(etcd3 *ed)
{
	int r = ed->ttl * 1000 / 3;

	return r < 100 ? 100 : r;
}

/* The registry answered again after failures: the watch may be a dead
 * connection nobody told us about, so make it reconnect (it resumes by
 * revision, no re-read). */
static void
kick_watch(etcd3 *ed)
{
	cluster__waker_raise(&ed->w, WATCH_KICK);
	cluster__http_interrupt(ed->watch.h);
}

static void
lost_lease(etcd3 *ed, ping_state *ps, const char *how)
{
	cluster__log(ed->core, LOG_WARNING, "libcluster: etcd: lease %llx lost (%s); re-registering\n", (unsigned long long) ed->lease, how);
	cluster__waker_lock(&ed->w);
	ed->registered = 0;
	ed->lease_ok = 0;
	ed->hold_until = 0;
	cluster__waker_unlock(&ed->w);
	update_fresh(ed);
	shards_wake(ed);
	ps->retry_register = cluster__now_ms();
	ps->written.valid = 0;
}

/* Remember st as the status now in the registry (reported 0: none). */
static void
status_written(ping_state *ps, const cluster__status *st, int64_t now)
{
	ps->written.credit = cluster__report_credit(&ps->pol, &ps->written, ps->pol_n, now);
	ps->written.grid_ms = cluster__report_grid(&ps->pol, ps->pol_n, ps->written.grid_ms);
	ps->written.valid = st->reported;
	ps->written.load = st->load;
	ps->written.capacity = st->capacity;
	ps->written.at_ms = now;
	memcpy(ps->written_address, st->address, sizeof(ps->written_address));
	ps->written_exact = st->exact_seq;
	ps->written_up_ms = st->reported ? st->up_ms : -1;
}

/*
 * When the status st should be written (monotonic ms; INT64_MAX: not at
 * all), by the report policy over n members. The first report and an
 * address change are forced; a member that starts draining (capacity 0)
 * writes at once, so that nobody keeps sending it clients. A status no
 * longer reported is removed at once. While the age the status last
 * published is inside the hold-down and slow start, it is rewritten
 * every effective interval even unchanged: a member that reads it from
 * the registry later (it joins, or re-reads) dates the join by it, and
 * an old write would make the member look younger there than everywhere
 * else. The first write past that window ends it.
 */
static int64_t
status_due(const ping_state *ps, const cluster__status *st, const cluster__report_policy *pol, size_t n, int64_t now)
{
	cluster__report_sample cur, last;
	int forced;

	if(!st->reported)
	{
		return ps->written.valid ? now : INT64_MAX;
	}
	if(ps->written.valid && st->capacity == 0 && ps->written.capacity != 0)
	{
		return now;
	}
	cur.valid = 1;
	cur.load = st->load;
	cur.capacity = st->capacity;
	cur.at_ms = now;
	forced = !ps->written.valid || strcmp(st->address, ps->written_address) != 0 || (st->exact_seq != ps->written_exact && st->load != ps->written.load);
	forced = forced || (ps->written_up_ms >= 0 && ps->written_up_ms < st->settle_ms);
	last = ps->written;
	if(!last.valid)
	{
		last.at_ms = ps->first_wait; /* the first write's slot counts from here */
	}
	return cluster__report_due(pol, &last, &cur, n, forced, now);
}

/*
 * What the ping thread should do now besides keepalives: stop, register,
 * write (*member: the member value is due, *status: the status is), or
 * nothing until *due (INT64_MAX: nothing planned). Reads the core's state
 * first, never under the waker's mutex.
 */
static int
ping_next(etcd3 *ed, ping_state *ps, int64_t now, int64_t *due, int *member, int *status, int *registered)
{
	cluster__status st;
	cluster__report_policy pol;
	int64_t sdue, wdue = INT64_MAX;
	size_t n;

	cluster__get_status(ed->core, &st);
	cluster__get_report_policy(ed->core, &pol);
	cluster__waker_lock(&ed->w);
	if(ed->w.stop)
	{
		cluster__waker_unlock(&ed->w);
		return ACT_STOP;
	}
	*registered = ed->registered;
	*member = ed->value_gen != ed->written_gen || (ed->w.flags & CHECK_SELF);
	n = ed->n_members;
	cluster__waker_unlock(&ed->w);
	if(!*registered)
	{
		*due = ps->retry_register;
		return now >= *due ? ACT_REGISTER : ACT_NONE;
	}
	ps->pol = pol;
	ps->pol_n = n;
	if(ps->written.valid || !st.reported)
	{
		ps->first_wait = 0;
	}
	else if(!ps->first_wait)
	{
		ps->first_wait = now; /* a first write starts waiting */
	}
	sdue = status_due(ps, &st, &pol, n, now);
	*status = sdue <= now;
	if(*member)
	{
		wdue = now;
	}
	if(sdue < wdue)
	{
		wdue = sdue;
	}
	if(wdue != INT64_MAX && ps->retry_write > wdue)
	{
		wdue = ps->retry_write;
	}
	*due = wdue;
	return wdue <= now ? ACT_WRITE : ACT_NONE;
}

/* A keepalive was answered with a TTL: the lease lives. */
static void
keepalive_ok(etcd3 *ed, ping_state *ps, int64_t sent)
{
	int64_t now = cluster__now_ms();

	/* first: a watch kicked below follows it to this endpoint */
	__atomic_store_n(&ed->ping_heard, ((uint64_t) now << 8) | (cluster__http_endpoint_index(ed->ping.h) & 0xff), __ATOMIC_RELAXED);
	if(ps->failing)
	{
		cluster__log(ed->core, LOG_NOTICE, "libcluster: etcd: registry reachable again at %s; lease %llx is alive\n", cluster__http_endpoint(ed->ping.h),
			(unsigned long long) ed->lease);
		kick_watch(ed);
	}
	ps->failing = 0;
	ps->ka_failures = 0;
	ps->expired_warned = 0;
	ps->last_ok = now;
	cluster__waker_lock(&ed->w);
	ed->lease_ok = 1;
	/* etcd renewed it after we asked: it lives a TTL from then */
	if(sent + (int64_t) ed->ttl * 1000 > ed->hold_until)
	{
		ed->hold_until = sent + (int64_t) ed->ttl * 1000;
	}
	cluster__waker_unlock(&ed->w);
	update_fresh(ed);
}

/* A keepalive failed (why). After a stream, the next one goes to the
 * next endpoint, at once while there are endpoints left to try (a plain
 * request has tried them all already). */
static void
keepalive_failed(etcd3 *ed, ping_state *ps, int stream, const char *why)
{
	int64_t now = cluster__now_ms();

	if(!ps->failing)
	{
		cluster__log(ed->core, LOG_WARNING, "libcluster: etcd: lease keepalive at %s failed: %s\n", cluster__http_endpoint(ed->ping.h), why);
		cluster__waker_lock(&ed->w);
		ed->lease_ok = 0;
		cluster__waker_unlock(&ed->w);
		update_fresh(ed);
	}
	else if(cluster__verbose(ed->core))
	{
		cluster__log(ed->core, LOG_DEBUG, "libcluster: etcd: lease keepalive at %s failed again: %s\n", cluster__http_endpoint(ed->ping.h), why);
	}
	ps->failing = 1;
	if(!ps->expired_warned && now - ps->last_ok > (int64_t) ed->ttl * 1000)
	{
		cluster__log(ed->core, LOG_WARNING, "libcluster: etcd: no keepalive for more than %d s: the lease has probably expired; "
											"this instance re-registers as soon as the registry answers\n",
			ed->ttl);
		ps->expired_warned = 1;
	}
	if(stream)
	{
		cluster__http_next_endpoint(ed->ping.h);
	}
	ps->ka_failures++;
	ps->next_keepalive = now + (stream && (size_t) ps->ka_failures < ed->n_endpoints ? 0 : refresh_ms(ed) < PING_RETRY_MS ? refresh_ms(ed) :
																															PING_RETRY_MS);
}

/* etcd answered a keepalive without a TTL: the lease is gone. */
static void
keepalive_lease_gone(etcd3 *ed, ping_state *ps)
{
	if(ps->failing)
	{
		kick_watch(ed);
	}
	ps->failing = 0;
	ps->ka_failures = 0;
	ps->last_ok = cluster__now_ms();
	lost_lease(ed, ps, "the registry says it expired");
}

/*
 * One keepalive as a plain request (one object in the body: etcd answers
 * and ends the stream at once, and the connection stays open). Used while
 * writes come at least as often as keepalives: a stream would be ended by
 * each write, and over HTTP/1.1 its connection with it (see the top).
 */
static void
keepalive_unary(etcd3 *ed, ping_state *ps)
{
	cluster__http_response resp;
	int64_t id, ttl = 0;
	char why[320], *body = cluster__etcd3_build_lease_id(ed->lease);
	int64_t sent = cluster__now_ms();
	int r;

	ps->next_keepalive = sent + refresh_ms(ed);
	r = rpc(ed, &ed->ping, "/v3/lease/keepalive", body, &resp, why, sizeof(why));
	free(body);
	if(r == ECANCELED)
	{
		return;
	}
	if(!r)
	{
		r = cluster__etcd3_parse_keepalive(resp.body, resp.len, &id, &ttl);
		if(r)
		{
			char shown[120];

			cluster__escape(shown, sizeof(shown), resp.body ? resp.body : "", resp.len > 80 ? 80 : resp.len);
			snprintf(why, sizeof(why), r == EIO ? "stream error <%s>" : "malformed keepalive response <%s>", shown);
		}
		cluster__http_response_free(&resp);
	}
	if(!r && ttl > 0)
	{
		keepalive_ok(ed, ps, sent);
	}
	else if(!r)
	{
		keepalive_lease_gone(ed, ps);
	}
	else
	{
		keepalive_failed(ed, ps, 0, why);
	}
}

/* ---- the keepalive stream ---- */

/* One answer line of the keepalive stream. */
static int
ka_line(void *ctx, const char *line, size_t len)
{
	ping_state *ps = ctx;
	int64_t id, ttl, sent;
	int r;

	r = cluster__etcd3_parse_keepalive(line, len, &id, &ttl);
	if(r)
	{
		char shown[120];

		cluster__escape(shown, sizeof(shown), line, len > 80 ? 80 : len);
		snprintf(ps->why, sizeof(ps->why), r == EIO ? "stream error <%s>" : "malformed keepalive response <%s>", shown);
		ps->err = EIO;
		return 1;
	}
	sent = ps->ka_sent;
	ps->ka_sent = 0;
	if(ttl <= 0)
	{
		/* TTL absent: etcd no longer knows the lease, our key is gone */
		ps->lease_gone = 1;
		return 1;
	}
	ps->answered++;
	keepalive_ok(ps->ed, ps, sent ? sent : cluster__now_ms() - ps->ed->ping_timeout_ms);
	return 0;
}

/* One keepalive request line ("{"ID":..}\n"), malloc'd; NULL: ENOMEM. */
static char *
ka_request(etcd3 *ed)
{
	char *id = cluster__etcd3_build_lease_id(ed->lease), *line;

	line = id ? malloc(strlen(id) + 2) : NULL;
	if(line)
	{
		sprintf(line, "%s\n", id);
	}
	free(id);
	return line;
}

/* Queue one keepalive request on the stream. */
static int
ka_send(etcd3 *ed, ping_state *ps, int64_t now)
{
	char *line = ka_request(ed);
	int r = line ? cluster__http_stream_send(ed->ping.h, line) : ENOMEM;

	free(line);
	if(!r)
	{
		ps->ka_sent = now;
		ps->next_keepalive = now + refresh_ms(ed);
	}
	return r;
}

/*
 * The keepalive stream's tick (outside libcurl): a keepalive every TTL/3;
 * an unanswered one abandons the stream after ping_timeout_ms (a hung
 * endpoint). When a write is due, or on leave, it ends the upload: etcd
 * then ends the stream and the connection is free for the request.
 */
static int64_t
ka_tick(void *ctx)
{
	ping_state *ps = ctx;
	etcd3 *ed = ps->ed;
	int64_t now = cluster__now_ms(), due, next;
	int act, member, status, registered;

	if(ps->end_by)
	{
		if(now >= ps->end_by)
		{
			snprintf(ps->why, sizeof(ps->why), "the keepalive stream did not end when asked");
			ps->err = ETIMEDOUT;
			return CLUSTER__HTTP_STOP;
		}
		return ps->end_by - now;
	}
	if(ps->ka_sent && now - ps->ka_sent >= ed->ping_timeout_ms)
	{
		snprintf(ps->why, sizeof(ps->why), "no answer for %d ms (endpoint hung or cut off)", ed->ping_timeout_ms);
		ps->err = ETIMEDOUT;
		return CLUSTER__HTTP_STOP;
	}
	act = ping_next(ed, ps, now, &due, &member, &status, &registered);
	if(act != ACT_NONE || !registered)
	{
		ps->ended_for_write = act == ACT_WRITE;
		cluster__http_stream_end(ed->ping.h);
		ps->end_by = now + (act == ACT_STOP ? STOP_END_MS : ed->ping_timeout_ms);
		return 0;
	}
	if(now >= ps->next_keepalive && !ps->ka_sent && ka_send(ed, ps, now))
	{
		snprintf(ps->why, sizeof(ps->why), "out of memory");
		ps->err = ENOMEM;
		return CLUSTER__HTTP_STOP;
	}
	next = ps->next_keepalive - now;
	if(ps->ka_sent && ps->ka_sent + ed->ping_timeout_ms - now < next)
	{
		next = ps->ka_sent + ed->ping_timeout_ms - now;
	}
	if(due != INT64_MAX && due - now < next)
	{
		next = due - now;
	}
	return next < 0 ? 0 : next;
}

/*
 * Run the keepalive stream on the ping connection until a write is due,
 * leave, or a failure. It opens with the keepalive that is due; a stream
 * that ends after its keepalives were answered (or because we ended it)
 * is no failure, the next one opens when the next keepalive is due.
 */
static void
keepalive_stream(etcd3 *ed, ping_state *ps)
{
	cluster__http_stream_opts so;
	int64_t now = cluster__now_ms();
	long status = 0;
	char why[320], *first;
	int r;

	ps->end_by = 0;
	ps->ended_for_write = 0;
	ps->answered = 0;
	ps->lease_gone = 0;
	ps->err = 0;
	ps->why[0] = 0;
	first = ka_request(ed);
	if(!first)
	{
		ps->next_keepalive = now + PING_RETRY_MS;
		return;
	}
	ps->ka_sent = now;
	ps->next_keepalive = now + refresh_ms(ed);
	memset(&so, 0, sizeof(so));
	so.on_line = ka_line;
	so.on_tick = ka_tick;
	so.ctx = ps;
	so.duplex = 1;
	so.first_line_timeout_ms = ed->ping_timeout_ms;
	r = cluster__http_stream_run(ed->ping.h, "/v3/lease/keepalive", first, &so, &status);
	free(first);
	if(r == ECANCELED)
	{
		return;
	}
	if(ps->lease_gone)
	{
		keepalive_lease_gone(ed, ps);
		return;
	}
	if(ps->ended_for_write && ps->answered <= 1)
	{
		/* a write came before the second keepalive: plain requests
		 * until a keepalive interval passes without one */
		ps->unary = 1;
	}
	if(!ps->err && status == 200 && (ps->answered || (ps->end_by && !r)))
	{
		/* ended as asked, or by the server (or the way to it) after
		 * answering: the next keepalive opens a new stream, and finds
		 * out whether the endpoint still answers */
		if(ps->ka_sent)
		{
			/* ended with a keepalive unanswered: send it again soon */
			ps->next_keepalive = cluster__now_ms();
		}
		return;
	}
	if(ps->err)
	{
		snprintf(why, sizeof(why), "%s", ps->why);
	}
	else if(r)
	{
		snprintf(why, sizeof(why), "%s", r == ETIMEDOUT ? "no answer (endpoint hung or cut off)" : cluster__http_error(ed->ping.h, r));
	}
	else
	{
		snprintf(why, sizeof(why), status && status != 200 ? "HTTP status %ld" : "the stream ended without an answer", status);
	}
	keepalive_failed(ed, ps, 1, why);
}

/* ---- unary requests on the ping connection ---- */

static void
do_register(etcd3 *ed, ping_state *ps)
{
	cluster__status st;
	char why[320];
	int64_t rev;
	int r;

	r = register_once(ed, &ed->ping, ed->lease, &rev, &st, NULL, why, sizeof(why));
	if(r == ECANCELED)
	{
		return;
	}
	if(!r)
	{
		int64_t now = cluster__now_ms();

		cluster__log(ed->core, LOG_NOTICE, "libcluster: etcd: re-registered %s with lease %llx\n", ed->member_key, (unsigned long long) ed->lease);
		ps->exists_warned = 0;
		ps->failing = 0;
		ps->ka_failures = 0;
		ps->last_ok = now;
		ps->next_keepalive = now + refresh_ms(ed);
		status_written(ps, &st, now);
		update_fresh(ed);
		return;
	}
	if(r == EEXIST)
	{
		cluster__waker_lock(&ed->w);
		if(!ed->id_taken)
		{
			/* now we really are not a member: say so (publish) */
			ed->id_taken = 1;
			cluster__waker_raise_locked(&ed->w, REPUBLISH | WATCH_KICK);
		}
		cluster__waker_unlock(&ed->w);
		cluster__http_interrupt(ed->watch.h);
		if(!ps->exists_warned)
		{
			cluster__log(ed->core, LOG_ERR, "libcluster: etcd: cannot re-register: instance id %s is held by another live instance (%s); retrying every %d s\n",
				ed->cfg->instance, why, ed->ttl);
			ps->exists_warned = 1;
		}
		ps->retry_register = cluster__now_ms() + (int64_t) ed->ttl * 1000;
		return;
	}
	cluster__log(ed->core, ps->failing ? LOG_DEBUG : LOG_WARNING, "libcluster: etcd: cannot re-register %s: %s\n", ed->member_key, why);
	ps->failing = 1;
	ps->retry_register = cluster__now_ms() + PING_RETRY_MS;
}

/* Write the member value (member) and/or the status (status: put it, or
 * delete the key when none is reported) in one txn, only if the member
 * key is still ours. A key that is gone or held by another lease means
 * re-register. */
static void
do_write(etcd3 *ed, ping_state *ps, int member, int status)
{
	cluster__etcd3_txn txn;
	cluster__status st;
	unsigned long gen = 0;
	char why[320];
	char *value = NULL, *svalue = NULL, *body = NULL;
	int r, oom = 0;

	cluster__get_status(ed->core, &st);
	if(member)
	{
		value = member_value(ed, &gen);
		oom = !value;
	}
	if(status && !oom)
	{
		svalue = status_value(&st, &oom);
	}
	if(!oom)
	{
		body = cluster__etcd3_build_write(ed->member_key, ed->lease, member ? ed->member_key : NULL, value, status ? ed->status_key : NULL, svalue, ed->lease);
	}
	free(value);
	free(svalue);
	r = txn_rpc(ed, &ed->ping, body, &txn, why, sizeof(why));
	if(r == ECANCELED)
	{
		return;
	}
	if(r)
	{
		cluster__log(ed->core, LOG_WARNING, "libcluster: etcd: cannot update %s: %s; retrying\n", ed->member_key, why);
		ps->retry_write = cluster__now_ms() + PING_RETRY_MS;
		return;
	}
	if(!txn.succeeded)
	{
		cluster__etcd3_txn_free(&txn);
		lost_lease(ed, ps, "our key is gone or held by another lease");
		return;
	}
	cluster__etcd3_txn_free(&txn);
	if(cluster__verbose(ed->core))
	{
		cluster__log(ed->core, LOG_DEBUG, "libcluster: etcd: updated %s%s%s\n", member ? ed->member_key : "", member && status ? " and " : "", status ? ed->status_key : "");
	}
	if(status)
	{
		status_written(ps, &st, cluster__now_ms());
	}
	ps->retry_write = 0;
	ps->wrote = 1;
	cluster__waker_lock(&ed->w);
	if(member && gen > ed->written_gen)
	{
		ed->written_gen = gen;
	}
	/* the guard found our key under our lease */
	ed->w.flags &= ~CHECK_SELF;
	pthread_cond_broadcast(&ed->w.cv);
	cluster__waker_unlock(&ed->w);
}

/* The ping thread: register when needed, write when due, and otherwise
 * sit in the keepalive stream (or nap until the next keepalive). */
static void *
ping_main(void *arg)
{
	etcd3 *ed = arg;
	ping_state *ps = calloc(1, sizeof(*ps));
	int64_t now = cluster__now_ms();

	if(!ps)
	{
		cluster__log(ed->core, LOG_CRIT, "libcluster: etcd: ping thread out of memory\n");
		cluster__waker_lock(&ed->w);
		ed->ping_exited = 1;
		pthread_cond_broadcast(&ed->w.cv);
		cluster__waker_unlock(&ed->w);
		return NULL;
	}
	ed->ping_state = ps;
	ps->ed = ed;
	cluster__log(ed->core, LOG_DEBUG, "libcluster: etcd: ping thread starting with ttl=%d, refresh=%dms\n", ed->ttl, refresh_ms(ed));
	ps->last_ok = now;
	ps->next_keepalive = now + refresh_ms(ed);
	/* start from what registration wrote, not from the current status: a
	 * cluster_report() made between join and now must still be written */
	status_written(ps, &ed->joined_status, now);
	for(;;)
	{
		int64_t due;
		int act, member = 0, status = 0, registered = 0;

		cluster__waker_take(&ed->w, PING_WAKE);
		now = cluster__now_ms();
		act = ping_next(ed, ps, now, &due, &member, &status, &registered);
		if(act == ACT_STOP)
		{
			break;
		}
		if(act == ACT_REGISTER)
		{
			do_register(ed, ps);
			continue;
		}
		if(act == ACT_WRITE)
		{
			do_write(ed, ps, member, status);
			continue;
		}
		if(registered && now >= ps->next_keepalive && ps->unary)
		{
			keepalive_unary(ed, ps);
			ps->unary = ps->wrote;
			ps->wrote = 0;
			continue;
		}
		if(registered && now >= ps->next_keepalive)
		{
			keepalive_stream(ed, ps);
			ps->wrote = 0;
			continue;
		}
		if(registered && ps->next_keepalive < due)
		{
			due = ps->next_keepalive;
		}
		cluster__waker_nap(&ed->w, due == INT64_MAX ? 1000 : due - now, PING_WAKE);
	}
	if(cluster__verbose(ed->core))
	{
		cluster__log(ed->core, LOG_DEBUG, "libcluster: etcd: ping thread stopped\n");
	}
	ed->ping_state = NULL;
	free(ps);
	cluster__waker_lock(&ed->w);
	ed->ping_exited = 1;
	pthread_cond_broadcast(&ed->w.cv);
	cluster__waker_unlock(&ed->w);
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* engine entry points                                                      */
/* ---------------------------------------------------------------------- */
/* shard store: what the shard thread (shard-sync.c) asks of the registry  */
/* ---------------------------------------------------------------------- */

/* The shard thread reaches ed->sync's hooks only under the waker's mutex,
 * so that leave can take it away. */
static void
shards_members(etcd3 *ed)
{
	cluster__waker_lock(&ed->w);
	if(ed->sync)
	{
		cluster__shard_sync_members(ed->sync, &ed->table);
	}
	cluster__waker_unlock(&ed->w);
}

static void
shards_wake(etcd3 *ed)
{
	cluster__waker_lock(&ed->w);
	if(ed->sync)
	{
		cluster__shard_sync_wake(ed->sync);
	}
	cluster__waker_unlock(&ed->w);
}

static int
shard_get(void *ctx, char **value, size_t *len, int64_t *mod_rev, int64_t *rev, char *why, size_t whysz)
{
	etcd3 *ed = ctx;
	cluster__etcd3_range rg;
	int r;

	*value = NULL;
	*len = 0;
	*mod_rev = *rev = 0;
	r = range_rpc(ed, &ed->shard, cluster__etcd3_build_get(ed->shard_key), &rg, why, whysz);
	if(r)
	{
		return r;
	}
	*rev = rg.revision;
	if(rg.n_kvs == 1 && rg.kvs[0].key_len == strlen(ed->shard_key) && !memcmp(rg.kvs[0].key, ed->shard_key, rg.kvs[0].key_len))
	{
		*value = rg.kvs[0].value;
		*len = rg.kvs[0].value_len;
		*mod_rev = rg.kvs[0].mod_revision > 0 ? rg.kvs[0].mod_revision : 1;
		rg.kvs[0].value = NULL;
	}
	cluster__etcd3_range_free(&rg);
	return 0;
}

static int
shard_cas(void *ctx, const char *value, int64_t expect, int *won, int64_t *rev, char *why, size_t whysz)
{
	etcd3 *ed = ctx;
	cluster__etcd3_txn txn;
	int r;

	*won = 0;
	*rev = 0;
	memset(&txn, 0, sizeof(txn));
	r = txn_rpc(ed, &ed->shard, cluster__etcd3_build_cas(ed->shard_key, value, expect), &txn, why, whysz);
	if(!r)
	{
		*won = txn.succeeded;
		*rev = txn.revision;
	}
	cluster__etcd3_txn_free(&txn);
	return r;
}

static int
shard_ack(void *ctx, int64_t revision, char *why, size_t whysz)
{
	etcd3 *ed = ctx;
	cluster__http_response resp;
	char value[24], *body;
	int64_t lease;
	int r;

	cluster__waker_lock(&ed->w);
	lease = ed->registered ? ed->lease : 0;
	cluster__waker_unlock(&ed->w);
	if(!lease)
	{
		snprintf(why, whysz, "no lease");
		return EAGAIN;
	}
	snprintf(value, sizeof(value), "%lld", (long long) revision);
	body = cluster__etcd3_build_put(ed->ack_key, value, lease);
	r = rpc(ed, &ed->shard, "/v3/kv/put", body, &resp, why, whysz);
	free(body);
	cluster__http_response_free(&resp);
	return r;
}

static int
shard_acks(void *ctx, void (*fn)(void *fctx, const char *id, int64_t revision), void *fctx, char *why, size_t whysz)
{
	etcd3 *ed = ctx;
	cluster__etcd3_range rg;
	size_t i;
	int r;

	r = range_rpc(ed, &ed->shard, cluster__etcd3_build_range(ed->ack_prefix), &rg, why, whysz);
	if(r == E2BIG)
	{
		snprintf(why, whysz, "more than CLUSTER_MEMBERS_MAX (%d) acknowledgements", CLUSTER_MEMBERS_MAX);
	}
	if(r)
	{
		return r;
	}
	for(i = 0; i < rg.n_kvs; i++)
	{
		char id[CLUSTER_NAME_MAX + 1], *end;
		long long v;

		/* anything that is not "<id>" = "<revision>" is ignored: an
		 * acknowledgement we cannot read only delays a hand-over */
		if(cluster__etcd3_member_id(ed->ack_prefix, rg.kvs[i].key, rg.kvs[i].key_len, id) || !rg.kvs[i].value_len || rg.kvs[i].value_len > 20)
		{
			continue;
		}
		errno = 0;
		v = strtoll(rg.kvs[i].value, &end, 10);
		if(errno || *end || v <= 0)
		{
			continue;
		}
		fn(fctx, id, v);
	}
	cluster__etcd3_range_free(&rg);
	return 0;
}

typedef struct shard_watch_ctx shard_watch_ctx;
struct shard_watch_ctx
{
	etcd3 *ed;
	int (*on_record)(void *sctx, const char *value, size_t len, int64_t mod_rev);
	void (*on_alive)(void *sctx);
	int64_t (*on_tick)(void *sctx);
	void *sctx;
	int created;
	int64_t compacted; /* > 0: history compacted: read the record again */
	int err;
	watch_beat beat;
	char why[300];
};

static int
shard_watch_line(void *ctx, const char *line, size_t len)
{
	shard_watch_ctx *w = ctx;
	cluster__etcd3_watch_msg msg;
	int unauthed = 0;
	size_t i;

	if(watch_msg_read(line, len, &msg, 0, &w->err, &w->compacted, &unauthed, w->why, sizeof(w->why)))
	{
		if(unauthed)
		{
			w->ed->shard_watch.authed = 0;
		}
		return 1;
	}
	if(msg.created)
	{
		w->created = 1;
	}
	else if(!w->created)
	{
		snprintf(w->why, sizeof(w->why), "watch message before \"created\"");
		w->err = EBADMSG;
		cluster__etcd3_watch_msg_free(&msg);
		return 1;
	}
	beat_heard(&w->beat, 1);
	w->on_alive(w->sctx);
	for(i = 0; i < msg.n_events; i++)
	{
		const cluster__etcd3_event *ev = &msg.events[i];

		if(ev->kv.key_len != strlen(w->ed->shard_key) || memcmp(ev->kv.key, w->ed->shard_key, ev->kv.key_len))
		{
			continue;
		}
		w->on_record(w->sctx, ev->type == CLUSTER__ETCD3_DELETE ? NULL : ev->kv.value, ev->type == CLUSTER__ETCD3_DELETE ? 0 : ev->kv.value_len,
			ev->kv.mod_revision > 0 ? ev->kv.mod_revision : 1);
	}
	cluster__etcd3_watch_msg_free(&msg);
	return 0;
}

static int64_t
shard_watch_tick(void *ctx)
{
	shard_watch_ctx *w = ctx;
	int64_t next, hb;

	next = w->on_tick(w->sctx);
	if(next == CLUSTER__HTTP_STOP)
	{
		return next;
	}
	hb = heartbeat_tick(w->ed, w->ed->shard_watch.h, &w->beat, cluster__now_ms(), &w->err, w->why, sizeof(w->why));
	if(hb == CLUSTER__HTTP_STOP)
	{
		return hb;
	}
	return hb >= 0 && (next < 0 || hb < next) ? hb : next;
}

/* The record's watch, with the member watch's heartbeat (a hung endpoint
 * is left within two thirds of the TTL). */
static int
shard_watch(void *ctx, int64_t from, int (*on_record)(void *sctx, const char *value, size_t len, int64_t mod_rev), void (*on_alive)(void *sctx),
	int64_t (*on_tick)(void *sctx), void *sctx, char *why, size_t whysz)
{
	etcd3 *ed = ctx;
	cluster__http_stream_opts so;
	shard_watch_ctx w;
	long status = 0;
	char *body;
	int r;

	memset(&w, 0, sizeof(w));
	w.ed = ed;
	w.on_record = on_record;
	w.on_alive = on_alive;
	w.on_tick = on_tick;
	w.sctx = sctx;
	/* its own heartbeats: the shard holds lean on this stream alone */
	beat_init(&w.beat, ed, 0);
	if(ed->cfg->user && !ed->shard_watch.authed)
	{
		r = authenticate(ed, &ed->shard_watch, why, whysz);
		if(r)
		{
			return r;
		}
	}
	body = cluster__etcd3_build_watch(ed->shard_key, 0, from);
	if(!body)
	{
		snprintf(why, whysz, "out of memory");
		return ENOMEM;
	}
	memset(&so, 0, sizeof(so));
	so.on_line = shard_watch_line;
	so.on_tick = shard_watch_tick;
	so.ctx = &w;
	so.duplex = 1;
	so.first_line_timeout_ms = WATCH_CREATED_TIMEOUT_MS;
	/* no idle limit: heartbeat_tick() judges silence, as for the member
	 * watch (a progress request after a heartbeat without news, then the
	 * grace period: the same heartbeat plus grace the limit allowed) */
	r = cluster__http_stream_run(ed->shard_watch.h, "/v3/watch", body, &so, &status);
	free(body);
	if(w.compacted)
	{
		return ERANGE;
	}
	if(w.err)
	{
		snprintf(why, whysz, "%s", w.why);
		cluster__http_next_endpoint(ed->shard_watch.h);
		return w.err;
	}
	if(r)
	{
		snprintf(why, whysz, "%s", r == ETIMEDOUT ? "no answer (endpoint hung or cut off)" : cluster__http_error(ed->shard_watch.h, r));
		cluster__http_next_endpoint(ed->shard_watch.h);
		return r;
	}
	if(status != 200)
	{
		snprintf(why, whysz, "HTTP status %ld", status);
		if(status == 401)
		{
			ed->shard_watch.authed = 0;
		}
		cluster__http_next_endpoint(ed->shard_watch.h);
		return EIO;
	}
	return 0;
}

static void
shard_wake(void *ctx)
{
	etcd3 *ed = ctx;

	if(ed->shard_watch.h)
	{
		cluster__http_wake(ed->shard_watch.h);
	}
}

static int64_t
shard_hold_until(void *ctx)
{
	etcd3 *ed = ctx;
	int64_t t;

	cluster__waker_lock(&ed->w);
	t = ed->registered ? ed->hold_until : 0;
	cluster__waker_unlock(&ed->w);
	return t;
}

/* Join with shards: the keys, the shard thread's connections, the thread. */
static int
shards_start(etcd3 *ed)
{
	const cluster__engine_config *c = ed->cfg;
	cluster__shard_store st;
	cluster__shard_sync_config sc;
	cluster__shard_sync *sync;
	size_t len = strlen(ed->prefix) + 16;
	int r;

	ed->shard_key = malloc(len);
	ed->ack_prefix = malloc(len);
	ed->ack_key = malloc(len + strlen(c->instance));
	ed->shard.h = cluster__http_create(&ed->hcfg, ed->core);
	ed->shard_watch.h = cluster__http_create(&ed->hcfg, ed->core);
	if(!ed->shard_key || !ed->ack_prefix || !ed->ack_key || !ed->shard.h || !ed->shard_watch.h)
	{
		return ENOMEM;
	}
	/* beside the member prefix "/key/[partition/]env/", like the statuses */
	snprintf(ed->shard_key, len, "%.*s@shards", (int) strlen(ed->prefix) - 1, ed->prefix);
	snprintf(ed->ack_prefix, len, "%.*s@shards-ack/", (int) strlen(ed->prefix) - 1, ed->prefix);
	sprintf(ed->ack_key, "%s%s", ed->ack_prefix, c->instance);
	memset(&st, 0, sizeof(st));
	st.ctx = ed;
	st.get = shard_get;
	st.cas = shard_cas;
	st.ack = shard_ack;
	st.acks = shard_acks;
	st.watch = shard_watch;
	st.wake = shard_wake;
	st.hold_until = shard_hold_until;
	memset(&sc, 0, sizeof(sc));
	sc.instance = c->instance;
	sc.label = ed->shard_key;
	sc.shards = (uint32_t) c->shards;
	sc.settle_ms = c->shard_settle_ms;
	sc.ttl_ms = ed->ttl * 1000;
	sc.leave_ms = CLUSTER_LEAVE_BUDGET_MS;
	r = cluster__shard_sync_start(ed->core, &st, &sc, &sync);
	if(r)
	{
		return r;
	}
	cluster__waker_lock(&ed->w);
	ed->sync = sync;
	cluster__waker_unlock(&ed->w);
	shards_members(ed);
	return 0;
}

/* Leave with shards: release and hand back (the lease still lives), then
 * free what shards_start made. */
static void
shards_stop(etcd3 *ed)
{
	cluster__shard_sync *sync;

	cluster__waker_lock(&ed->w);
	sync = ed->sync;
	ed->sync = NULL;
	cluster__waker_unlock(&ed->w);
	cluster__shard_sync_stop(sync);
	cluster__http_destroy(ed->shard.h);
	cluster__http_destroy(ed->shard_watch.h);
	memset(&ed->shard, 0, sizeof(ed->shard));
	memset(&ed->shard_watch, 0, sizeof(ed->shard_watch));
	free(ed->shard_key);
	free(ed->ack_prefix);
	free(ed->ack_key);
	ed->shard_key = ed->ack_prefix = ed->ack_key = NULL;
}

/* ---------------------------------------------------------------------- */

static int
etcd3_create(CLUSTER *c, const char *uri, void **out)
{
	const char *why;
	etcd3 *ed;
	int r;

	ed = calloc(1, sizeof(*ed));
	if(!ed)
	{
		return ENOMEM;
	}
	r = cluster__http_parse_endpoints(uri, &ed->endpoints, &ed->n_endpoints, &why);
	if(r)
	{
		if(r == EINVAL)
		{
			char shown[CLUSTER__ESCAPE_SIZE(200)];

			cluster__log(c, LOG_ERR, "libcluster: etcd: invalid registry URI <%s>: %s\n", cluster__escape_uri(shown, uri), why);
		}
		free(ed);
		return r;
	}
	ed->core = c;
	cluster__waker_init(&ed->w);
	pthread_mutex_init(&ed->fresh_m, NULL);
	*out = ed;
	return 0;
}

static void
etcd3_destroy(void *engine)
{
	etcd3 *ed = engine;

	if(!ed)
	{
		return;
	}
	cluster__http_endpoints_free(ed->endpoints, ed->n_endpoints);
	cluster__table_free(&ed->table);
	cluster__table_free(&ed->statuses);
	free(ed->prefix);
	free(ed->member_key);
	free(ed->status_prefix);
	free(ed->status_key);
	free(ed->label);
	cluster__waker_destroy(&ed->w);
	pthread_mutex_destroy(&ed->fresh_m);
	free(ed);
}

/* Start an engine thread with THREAD_STACK (see there). */
static int
start_thread(pthread_t *t, void *(*fn)(void *), etcd3 *ed)
{
	pthread_attr_t attr;
	int r;

	if(!THREAD_STACK)
	{
		return pthread_create(t, NULL, fn, ed);
	}
	r = pthread_attr_init(&attr);
	if(r)
	{
		return r;
	}
	r = pthread_attr_setstacksize(&attr, THREAD_STACK);
	if(!r)
	{
		r = pthread_create(t, &attr, fn, ed);
	}
	pthread_attr_destroy(&attr);
	return r;
}

/* Release everything join set up (threads must be stopped already). */
static void
release(etcd3 *ed)
{
	cluster__http *ph, *wh;

	/* detached under the waker's mutex: cancel_join() may be looking at them */
	cluster__waker_lock(&ed->w);
	ph = ed->ping.h;
	wh = ed->watch.h;
	memset(&ed->ping, 0, sizeof(ed->ping));
	memset(&ed->watch, 0, sizeof(ed->watch));
	cluster__waker_unlock(&ed->w);
	cluster__http_destroy(ph);
	cluster__http_destroy(wh);
	cluster__table_free(&ed->table);
	cluster__table_free(&ed->statuses);
	free(ed->prefix);
	free(ed->member_key);
	free(ed->status_prefix);
	free(ed->status_key);
	free(ed->label);
	ed->prefix = ed->member_key = ed->status_prefix = ed->status_key = ed->label = NULL;
	ed->status_rev = 0;
	ed->lease = 0;
	ed->registered = 0;
	ed->lease_ok = 0;
	ed->watch_ok = 0;
}

typedef struct wait_ctx wait_ctx;
struct wait_ctx
{
	int created;
	int deleted;
	int failed;
};

static int
wait_line(void *ctx, const char *line, size_t len)
{
	wait_ctx *w = ctx;
	cluster__etcd3_watch_msg msg;
	size_t i;

	if(cluster__etcd3_parse_watch(line, len, &msg))
	{
		w->failed = 1;
		return 1;
	}
	if(msg.error || msg.canceled)
	{
		w->failed = 1;
		cluster__etcd3_watch_msg_free(&msg);
		return 1;
	}
	w->created |= msg.created;
	for(i = 0; i < msg.n_events; i++)
	{
		if(msg.events[i].type == CLUSTER__ETCD3_DELETE)
		{
			w->deleted = 1;
		}
	}
	cluster__etcd3_watch_msg_free(&msg);
	return w->deleted;
}

/* Errors worth another try within the join deadline: the registry (or
 * the way to it) failed, not our request. */
static int
transient(int r, const char *why)
{
	return r == ETIMEDOUT || r == ECONNREFUSED || r == ENXIO || (r == EIO && !strncmp(why, "HTTP 5", 6));
}

/* Wait up to ms for a join retry; non-zero if the join was cancelled. */
static int
join_pause(etcd3 *ed, int64_t ms)
{
	cluster__waker_nap(&ed->w, ms, 0);
	return cluster__join_cancelled(ed->core);
}

/*
 * Initial registration. A failing registry (timeout, refused, 5xx) is
 * retried until the join deadline. If the id is taken, watch that key
 * until it is deleted (a crashed predecessor's lease runs out within its
 * TTL) for at most TTL + 2 s, then fail with EEXIST: a second live
 * instance with the same id never takes over silently. The registration
 * that succeeds reads what jr asks for (register_once()).
 */
static int
register_initial(etcd3 *ed, int64_t join_deadline, join_read *jr)
{
	int64_t deadline = cluster__now_ms() + (int64_t) ed->cfg->ttl * 1000 + CLUSTER__DUPLICATE_GRACE_MS;
	char why[320];
	cluster__status st;
	int64_t rev;
	int r, waited = 0, tries = 0;

	for(;;)
	{
		wait_ctx w;
		char *body;
		int64_t left;

		if(cluster__join_cancelled(ed->core))
		{
			return ECANCELED;
		}
		r = register_once(ed, &ed->ping, 0, &rev, &st, jr, why, sizeof(why));
		if(transient(r, why) && cluster__now_ms() + 100 < join_deadline)
		{
			if(!tries++)
			{
				cluster__log(ed->core, LOG_NOTICE, "libcluster: etcd: cannot register %s at %s yet: %s; retrying until the join deadline\n",
					ed->member_key, cluster__http_endpoint(ed->ping.h), why);
			}
			if(join_pause(ed, 100))
			{
				return ECANCELED;
			}
			continue;
		}
		if(r != EEXIST)
		{
			ed->joined_status = st;
			break;
		}
		left = deadline - cluster__now_ms();
		if(left <= 0)
		{
			break;
		}
		if(!waited)
		{
			cluster__log(ed->core, LOG_NOTICE, "libcluster: etcd: instance id %s is already registered (%s); waiting up to %lld ms for it to expire\n",
				ed->cfg->instance, why, (long long) left);
			waited = 1;
		}
		memset(&w, 0, sizeof(w));
		body = cluster__etcd3_build_watch(ed->member_key, 0, next_rev(rev));
		if(!body)
		{
			return ENOMEM;
		}
		r = cluster__http_stream_ex(ed->ping.h, "/v3/watch", body, wait_line, &w, 0, WATCH_CREATED_TIMEOUT_MS, (int) left, NULL);
		free(body);
		if(r == ECANCELED || r == ENOMEM)
		{
			return r;
		}
		if(!w.deleted && (r || w.failed) && join_pause(ed, 200))
		{
			/* no usable watch: poll instead, briefly */
			return ECANCELED;
		}
	}
	if(r == EEXIST)
	{
		cluster__log(ed->core, LOG_ERR, "libcluster: etcd: cannot join %s: instance id %s is in use by a live instance (%s)\n", ed->label, ed->cfg->instance, why);
	}
	else if(r && r != ECANCELED)
	{
		cluster__log(ed->core, LOG_ERR, "libcluster: etcd: cannot register %s at %s: %s\n", ed->member_key, cluster__http_endpoint(ed->ping.h), why);
	}
	return r;
}

/* Read the prefix (or the status prefix) for the first view into *out,
 * retrying a failing registry until the join deadline. */
static int
read_initial(etcd3 *ed, int statuses, int64_t join_deadline, cluster__table *out, int64_t *rev)
{
	const char *prefix = statuses ? ed->status_prefix : ed->prefix;
	char why[320];
	int r, tries = 0;

	for(;;)
	{
		if(cluster__join_cancelled(ed->core))
		{
			return ECANCELED;
		}
		r = read_prefix(ed, &ed->watch, statuses, out, rev, why, sizeof(why));
		if(!transient(r, why) || cluster__now_ms() + 100 >= join_deadline)
		{
			break;
		}
		if(!tries++)
		{
			cluster__log(ed->core, LOG_NOTICE, "libcluster: etcd: cannot read %s at %s yet: %s; retrying until the join deadline\n",
				prefix, cluster__http_endpoint(ed->watch.h), why);
		}
		if(join_pause(ed, 100))
		{
			return ECANCELED;
		}
	}
	if(r && r != ECANCELED)
	{
		cluster__log(ed->core, LOG_ERR, "libcluster: etcd: cannot read %s at %s: %s\n", prefix, cluster__http_endpoint(ed->watch.h), why);
	}
	return r;
}

/*
 * The join's first table of members (statuses set: of statuses, folded
 * into the members read before) and its revision: from the
 * registration's own answer when it holds that range (one round trip
 * less before the first view), else read_initial().
 */
static int
read_joined(etcd3 *ed, const join_read *jr, int statuses, int64_t join_deadline, int64_t *rev)
{
	size_t k = statuses ? 1 : 0;
	cluster__table raw;
	char why[32];
	int r;

	if(jr->txn.n_ranges > k && (!statuses || jr->statuses))
	{
		*rev = jr->txn.revision;
		r = table_from_range(ed, statuses, &jr->txn.ranges[k], statuses ? &raw : &ed->table);
	}
	else
	{
		r = read_initial(ed, statuses, join_deadline, statuses ? &raw : &ed->table, rev);
	}
	if(!r && statuses)
	{
		r = take_statuses(ed, &raw, why, sizeof(why));
		if(r)
		{
			cluster__log(ed->core, LOG_ERR, "libcluster: etcd: cannot read %s: %s\n", ed->status_prefix, why);
		}
	}
	return r;
}

/* Any thread: make the join in progress give up (its requests fail with
 * ECANCELED at once; handles made later see cluster__join_cancelled()). */
static void
etcd3_cancel_join(void *engine)
{
	etcd3 *ed = engine;

	if(!ed)
	{
		return;
	}
	cluster__waker_lock(&ed->w);
	if(ed->ping.h)
	{
		cluster__http_cancel(ed->ping.h);
	}
	if(ed->watch.h)
	{
		cluster__http_cancel(ed->watch.h);
	}
	cluster__waker_raise_locked(&ed->w, 0);
	cluster__waker_unlock(&ed->w);
}

static int
etcd3_join(void *engine, const cluster__engine_config *c)
{
	etcd3 *ed = engine;
	int64_t join_deadline = cluster__now_ms() + c->join_timeout_ms;
	cluster__http *wh, *ph;
	join_read jr;
	int64_t rev;
	size_t len;
	int r;

	if(!ed)
	{
		return EINVAL;
	}
	ed->cfg = c;
	ed->passive = c->passive;
	ed->ttl = c->ttl;
	len = strlen(c->key) + (c->partition ? strlen(c->partition) + 1 : 0) + strlen(c->env) + 4;
	ed->prefix = malloc(len);
	ed->label = malloc(len);
	ed->member_key = malloc(len + strlen(c->instance));
	ed->status_prefix = malloc(len + 7);
	ed->status_key = malloc(len + 7 + strlen(c->instance));
	if(!ed->prefix || !ed->label || !ed->member_key || !ed->status_prefix || !ed->status_key)
	{
		release(ed);
		return ENOMEM;
	}
	snprintf(ed->prefix, len, "/%s/%s%s%s/", c->key, c->partition ? c->partition : "", c->partition ? "/" : "", c->env);
	snprintf(ed->label, len, "%s/%s%s%s", c->key, c->partition ? c->partition : "", c->partition ? "/" : "", c->env);
	sprintf(ed->member_key, "%s%s", ed->prefix, c->instance);
	sprintf(ed->status_prefix, "/%s/%s%s%s@status/", c->key, c->partition ? c->partition : "", c->partition ? "/" : "", c->env);
	sprintf(ed->status_key, "%s%s", ed->status_prefix, c->instance);

	memset(&ed->hcfg, 0, sizeof(ed->hcfg));
	ed->hcfg.endpoints = ed->endpoints;
	ed->hcfg.n_endpoints = ed->n_endpoints;
	/* a connect gets at most half of a request's time, and at most 1 s
	 * (over https the HTTP layer lets the handshake have the half) */
	ed->hcfg.timeout_ms = c->request_timeout_ms;
	ed->hcfg.connect_timeout_ms = c->request_timeout_ms / 2 < CLUSTER_CONNECT_TIMEOUT_MS ? c->request_timeout_ms / 2 : CLUSTER_CONNECT_TIMEOUT_MS;
	ed->hcfg.ca_file = c->ca_file;
	ed->hcfg.cert_file = c->cert_file;
	ed->hcfg.key_file = c->key_file;
	ed->hcfg.require_leader = 1;
	ed->hcfg.keepalive_idle_s = 2;

	cluster__waker_reset(&ed->w);
	cluster__waker_lock(&ed->w);
	ed->value_gen = ed->written_gen = 0;
	ed->lease = 0;
	ed->registered = ed->lease_ok = ed->watch_ok = 0;
	ed->id_taken = 0;
	ed->statuses_ready = 0;
	ed->ping_exited = 0;
	ed->n_members = 0;
	ed->want_statuses |= c->want_statuses;
	memset(&ed->joined_status, 0, sizeof(ed->joined_status));
	cluster__waker_unlock(&ed->w);
	ed->last_rev = 0;
	ed->status_rev = 0;
	ed->over_limit = 0;

	wh = cluster__http_create(&ed->hcfg, ed->core);
	if(!ed->passive)
	{
		/* A keepalive stuck on a hung endpoint must fail over to the next
		 * one while the lease still lives: give each ping request at most
		 * a third of the TTL (the next keepalive is due after another). */
		cluster__http_config pcfg = ed->hcfg;
		int limit = ed->ttl * 1000 / 3 < 500 ? 500 : ed->ttl * 1000 / 3;

		if(pcfg.timeout_ms > limit)
		{
			pcfg.timeout_ms = limit;
			pcfg.connect_timeout_ms = pcfg.connect_timeout_ms < limit / 2 ? pcfg.connect_timeout_ms : limit / 2;
		}
		/* a keepalive on the stream gets as long to be answered */
		ed->ping_timeout_ms = pcfg.timeout_ms;
		ph = cluster__http_create(&pcfg, ed->core);
	}
	else
	{
		ph = NULL;
	}
	if(!wh || (!ed->passive && !ph))
	{
		r = errno ? errno : ENOMEM;
		cluster__http_destroy(wh);
		cluster__http_destroy(ph);
		release(ed);
		return r;
	}
	/* published under the waker's mutex, then the cancel flag checked: a concurrent
	 * cancel_join() either cancels them or is seen here */
	cluster__waker_lock(&ed->w);
	ed->watch.h = wh;
	ed->ping.h = ph;
	cluster__waker_unlock(&ed->w);
	if(cluster__join_cancelled(ed->core))
	{
		release(ed);
		return ECANCELED;
	}
	memset(&jr, 0, sizeof(jr));
	jr.statuses = wants_statuses(ed);
	if(!ed->passive)
	{
		r = register_initial(ed, join_deadline, &jr);
		if(r)
		{
			cluster__etcd3_txn_free(&jr.txn);
			release(ed);
			return r;
		}
	}
	/* the first view: read in the registration when it could be, else
	 * now (a passive member, an answer without usable ranges) */
	r = read_joined(ed, &jr, 0, join_deadline, &rev);
	if(r)
	{
		goto undo;
	}
	ed->members_gen++;
	ed->last_rev = rev;
	if(wants_statuses(ed))
	{
		int64_t srev;

		r = read_joined(ed, &jr, 1, join_deadline, &srev);
		if(r)
		{
			goto undo;
		}
		ed->status_rev = srev > 0 ? srev : 1;
		statuses_are_ready(ed);
	}
	cluster__etcd3_txn_free(&jr.txn);
	r = publish(ed);
	if(r)
	{
		/* logged; members the registry holds that make no view (a total
		 * past INT_MAX) are a failing registry to the caller */
		r = r == ENOMEM || r == E2BIG ? r : EIO;
		goto undo;
	}
	if(c->shards && !ed->passive)
	{
		r = shards_start(ed);
		if(r)
		{
			cluster__log(ed->core, LOG_ERR, "libcluster: etcd: cannot start the shard thread: %s\n", strerror(r));
			goto undo;
		}
	}
	r = start_thread(&ed->watch_thread, watch_main, ed);
	if(r)
	{
		cluster__log(ed->core, LOG_ERR, "libcluster: etcd: cannot start the re-balancing thread: %s\n", strerror(r));
		goto undo;
	}
	ed->watch_running = 1;
	if(!ed->passive)
	{
		r = start_thread(&ed->ping_thread, ping_main, ed);
		if(r)
		{
			cluster__log(ed->core, LOG_ERR, "libcluster: etcd: cannot start the ping thread: %s\n", strerror(r));
			goto undo;
		}
		ed->ping_running = 1;
	}
	cluster__log(ed->core, LOG_DEBUG, "libcluster: etcd: %s %s as %s at revision %lld\n", ed->passive ? "watching" : "joined", ed->label, c->instance, (long long) rev);
	return 0;
undo:
	cluster__etcd3_txn_free(&jr.txn);
	shards_stop(ed);
	cluster__waker_stop(&ed->w);
	if(ed->watch_running)
	{
		cluster__http_cancel(ed->watch.h);
		pthread_join(ed->watch_thread, NULL);
		ed->watch_running = 0;
	}
	if(!ed->passive && ed->lease)
	{
		/* even when cancelled: the registration must not linger */
		cluster__http_reset_cancel(ed->ping.h);
		cluster__http_set_deadline(ed->ping.h, cluster__now_ms() + CLUSTER_LEAVE_BUDGET_MS);
		revoke(ed, &ed->ping, ed->lease);
	}
	release(ed);
	return r;
}

/*
 * Leave: stop both threads, then revoke the lease on the ping thread's own
 * handle, which (with credentials) already holds a token: no new login,
 * so the revoke fits the budget even when many members leave at once. The
 * ping thread is given STOP_END_MS to end its keepalive stream cleanly
 * (over HTTP/2 that should keep the connection for the revoke; over HTTP/1.1
 * etcd closes it, see the top of this file); only then is it cut. The
 * revoke may fail over to the other endpoints, all within what is left of
 * the budget.
 */
static int
etcd3_leave(void *engine)
{
	etcd3 *ed = engine;
	int64_t start = cluster__now_ms();
	int64_t lease;
	int r, cause = 0;

	if(!ed)
	{
		return 0;
	}
	/* shards first: released and handed back while the lease lives */
	shards_stop(ed);
	cluster__waker_stop(&ed->w);
	if(ed->watch.h)
	{
		cluster__http_cancel(ed->watch.h);
	}
	if(ed->ping_running)
	{
		struct timespec ts;
		int exited;

		cluster__deadline(&ts, STOP_END_MS + 50);
		cluster__waker_lock(&ed->w);
		if(ed->ping.h)
		{
			cluster__http_wake(ed->ping.h);
		}
		while(!ed->ping_exited && pthread_cond_timedwait(&ed->w.cv, &ed->w.m, &ts) != ETIMEDOUT)
		{
		}
		exited = ed->ping_exited;
		cluster__waker_unlock(&ed->w);
		if(!exited && ed->ping.h)
		{
			/* busy with a slow request: cut it */
			cluster__http_cancel(ed->ping.h);
		}
		pthread_join(ed->ping_thread, NULL);
		ed->ping_running = 0;
	}
	if(ed->watch_running)
	{
		pthread_join(ed->watch_thread, NULL);
		ed->watch_running = 0;
	}
	cluster__set_fresh(ed->core, 0);
	cluster__waker_lock(&ed->w);
	lease = ed->lease;
	cluster__waker_unlock(&ed->w);
	if(!ed->passive && lease && ed->ping.h)
	{
		cluster__http_reset_cancel(ed->ping.h);
		cluster__http_set_deadline(ed->ping.h, start + CLUSTER_LEAVE_BUDGET_MS);
		r = revoke(ed, &ed->ping, lease);
		if(!r || r == ENOENT)
		{
			if(cluster__verbose(ed->core))
			{
				cluster__log(ed->core, LOG_DEBUG, "libcluster: etcd: revoked lease %llx\n", (unsigned long long) lease);
			}
		}
		else
		{
			cluster__log(ed->core, LOG_WARNING, "libcluster: etcd: could not revoke lease %llx within the leave budget (%s); %s disappears when it expires (within %d s)\n",
				(unsigned long long) lease, strerror(r), ed->member_key, ed->ttl);
			cause = r;
		}
	}
	cluster__log(ed->core, LOG_DEBUG, "libcluster: etcd: left %s (%lld ms)\n", ed->label, (long long) (cluster__now_ms() - start));
	release(ed);
	return cause;
}

/*
 * The worker count changed: the ping thread (the only writer) puts the new
 * value at once; wait a bounded time for it so the registry usually holds
 * the new count when cluster_set_workers() returns. If the write has not
 * happened by then the ping thread keeps retrying; the call still
 * succeeds, because the count will reach the registry.
 */
static int
etcd3_workers_changed(void *engine, int workers)
{
	etcd3 *ed = engine;
	struct timespec ts;
	unsigned long gen;
	int done;

	if(!ed || ed->passive)
	{
		return 0;
	}
	cluster__deadline(&ts, ed->cfg->request_timeout_ms + 500);
	cluster__waker_lock(&ed->w);
	gen = ++ed->value_gen;
	cluster__waker_raise_locked(&ed->w, PING_WAKE);
	if(ed->ping.h)
	{
		cluster__http_wake(ed->ping.h);
	}
	while(ed->written_gen < gen && !ed->w.stop)
	{
		if(pthread_cond_timedwait(&ed->w.cv, &ed->w.m, &ts) == ETIMEDOUT)
		{
			break;
		}
	}
	done = ed->written_gen >= gen;
	cluster__waker_unlock(&ed->w);
	if(!done)
	{
		cluster__log(ed->core, LOG_WARNING, "libcluster: etcd: the new worker count is not in the registry yet; the ping thread keeps trying\n");
	}
	return 0;
}

/* Any thread, while joined (the core holds the engine in place). Only
 * touches what the waker guards: ed->passive is written by join on the
 * control thread, so a passive member is simply woken for nothing. */
static void
etcd3_status_changed(void *engine)
{
	etcd3 *ed = engine;

	if(!ed)
	{
		return;
	}
	wake_ping(ed, 0);
}

/* Any thread, joined or not (the core holds the engine in place): from
 * now on watch the statuses. While joined the watch thread is made to
 * reconnect, reads them and adds the status watch; a pick may wait here
 * (condition variable, no I/O) for that, up to wait_ms. */
static void
etcd3_want_statuses(void *engine, int wait_ms)
{
	etcd3 *ed = engine;
	struct timespec ts;

	if(!ed)
	{
		return;
	}
	cluster__deadline(&ts, wait_ms > 0 ? wait_ms : 0);
	cluster__waker_lock(&ed->w);
	if(!ed->want_statuses)
	{
		ed->want_statuses = 1;
		/* the watch thread's stream tick sees it (or its next turn does) */
		cluster__waker_raise_locked(&ed->w, WATCH_ADD);
		if(ed->watch.h)
		{
			cluster__http_wake(ed->watch.h);
		}
	}
	while(wait_ms > 0 && ed->watch.h && !ed->statuses_ready && !ed->w.stop)
	{
		if(pthread_cond_timedwait(&ed->w.cv, &ed->w.m, &ts) == ETIMEDOUT)
		{
			break;
		}
	}
	cluster__waker_unlock(&ed->w);
}

const cluster__engine cluster__engine_etcd3 = {
	"etcd",
	etcd3_create,
	etcd3_destroy,
	etcd3_join,
	etcd3_leave,
	etcd3_workers_changed,
	etcd3_status_changed,
	etcd3_cancel_join,
	etcd3_want_statuses,
	1,
	1 /* shards */
};
