/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: the cluster object and what the core's own files
 * (cluster.c, notify.c, advisor-api.c) share. Engines do not include it:
 * they see the object only through engine.h's hooks. Nothing here is
 * exported.
 */
#ifndef CLUSTER_INT_H_
#define CLUSTER_INT_H_ 1

#ifdef HAVE_CONFIG_H
# include "config.h"
#endif

#include <pthread.h>
#include <sys/types.h>
#include <stdint.h>
#include <syslog.h>
#include "libcluster.h"
#include "view.h"
#include "util.h"
#include "engine.h"

#define CLUSTER_DEFAULT_ENV "production"

/* A name replaced while a getter may still hold it (freed by destroy). */
typedef struct cluster__retired cluster__retired;
struct cluster__retired
{
	cluster__retired *next;
	char *s;
};

struct cluster_struct
{
	/* Serialises control calls (setters, join, leave, destroy). */
	pthread_mutex_t control;
	/* Protects the fields marked (S). Never held across I/O or callbacks. */
	pthread_mutex_t lock;

	/* Configuration: written only by control calls, and (except workers)
	 * only while not joined, so engines may read it freely while joined. */
	char *key;
	char *env;       /* env, partition, instance: written with */
	char *partition; /* atomic stores (getters read them from */
	char *instance;  /* any thread), old values retired (S) */
	cluster__retired *retired;
	char *registry; /* NULL: static */
	int ttl;
	int request_timeout_ms; /* one registry request */
	int join_timeout_ms;    /* all of cluster_join()'s retries */
	char *ca_file, *cert_file, *key_file;
	char *user, *password;
	int static_index;
	int static_total;
	const cluster__engine *engine;
	void *engine_data;                 /* what engine->create made */
	cluster__engine_config engine_cfg; /* what the engine joined with */
	/* Held for reading around engine hooks that any thread may trigger
	 * (cluster_report() -> status_changed), for writing while the engine
	 * or its data is replaced or freed. Nothing else is taken under it. */
	pthread_rwlock_t engine_lock;

	/* Fixed at creation, unique in the process: tells a thread's last
	 * error message (log.c) apart from one of a freed handle whose
	 * address a new handle reuses. */
	unsigned long long serial;

	/* (S) */
	CLUSTERLOGGER logger;
	CLUSTERLOGGER2 logger2; /* wins over logger when set */
	void *userdata;
	CLUSTERBALANCE balancer;
	CLUSTERADVICE advice;
	int verbose;
	int joined;
	int64_t join_ms; /* local monotonic ms this join began (while joined) */
	int passive;
	int workers;
	cluster__view view; /* last published view */
	uint64_t view_gen;  /* bumped each time view is replaced (the pick's cache key) */
	int index;          /* last reported base (-1) */
	int total;          /* last reported total */
	int announced;      /* the callback has seen this join's first view */
	int joining;        /* a join holds the control lock: deliveries wait */
	int holding;        /* a control call runs an engine hook: its thread
	                              * delivers after releasing the control lock */
	int join_cancel;    /* cluster_leave() asked that join to give up */
	int join_threads;   /* threads still inside cluster_join() */
	pid_t owner_pid;    /* the process that joined (atomic; fork rule) */
	/* delivery (notify.c) */
	cluster__view pending; /* newest published view not yet delivered */
	int has_pending;
	int64_t pending_first_ms, pending_last_ms;
	int settle_ms;            /* quiet window before a change is delivered */
	int delivering;           /* a thread is delivering (callbacks in order) */
	pthread_cond_t delivered; /* signalled when delivering or join_threads drop */
	int fresh;                /* the engine trusts the view (registry reachable) */
	int64_t fresh_since_ms;
	cluster__status status;
	CLUSTERADVISORCONFIG advisor_config;
	void *advisor; /* advisor run-time state (advisor-api.c) */
	/* The advisor has been used (set once, atomics): engines keep other
	 * members' statuses from then on (engine.h want_statuses). */
	int want_statuses;
	/* shard ownership (shards.c). shards, shard_settle_ms and shard_cb
	 * are configuration (changed only while not joined). */
	int shards; /* 0: off */
	int shard_settle_ms;
	CLUSTERSHARDS shard_cb;
	int shard_delivering; /* (S) a shard callback runs (shards.c; waits on delivered) */
	CLUSTERSHARD *held;   /* (S) owned now, ascending */
	size_t n_held;
	struct cluster__shard_map *shard_map; /* (S) the assignment last read, for the getters */
};

/* --- delivery (notify.c) ---------------------------------------------- */

/* Deliver the pending view now (if any), on this thread, with no lock
 * held during the callback. Callbacks of one handle never overlap. */
void cluster__deliver(CLUSTER *cluster);

/* Deliver a state that is not a view (leave's final index -1). */
void cluster__deliver_state(CLUSTER *cluster, CLUSTERBALANCE cb, CLUSTERSTATE *state);

/* Callback bracketing, per handle: control calls on a handle fail with
 * EDEADLK while the calling thread is inside one of its callbacks. */
void cluster__callback_enter(CLUSTER *cluster);
void cluster__callback_leave(CLUSTER *cluster);
int cluster__in_callback(CLUSTER *cluster);

/* Control calls (cluster.c): refuse from inside a callback of this
 * handle (EDEADLK, logged), else take the control lock that serialises
 * setters, join, leave and destroy; end releases it. */
int cluster__control_begin(CLUSTER *cluster);
void cluster__control_end(CLUSTER *cluster);
/* EPERM (logged) while joined: configuration is fixed then. Call with the
 * control lock held. */
int cluster__refuse_if_joined(CLUSTER *cluster);
/* Validate a name per the header's rule; on failure returns EINVAL and
 * logs "<field> ...: <rule>". */
int cluster__check_name(CLUSTER *cluster, const char *field, const char *value);

/* --- failure messages (log.c): what cluster_errmsg() returns ---------- */

/*
 * Every public entry point that can fail starts with cluster__enter():
 * it marks where this call's messages begin on this thread (so a failure
 * reports what was logged during the call, not before it) and refuses a
 * NULL handle: then it logs and records "<name>(): the handle is NULL",
 * sets errno to EINVAL and returns -1. Otherwise it returns 0.
 * cluster__begin() only marks (for cluster_create(), which has no handle).
 */
int cluster__enter(CLUSTER *cluster, const char *name);
void cluster__begin(const char *name);

/*
 * Fail the call in progress with err: the thread's message for cluster
 * becomes the most severe (then latest) message at LOG_NOTICE or above
 * logged on this thread since the call began, or "<call>(): strerror"
 * when none was. Sets errno; returns -1.
 */
int cluster__fail(CLUSTER *cluster, int err);

/* Fail with this message, recorded but not logged (for refusals the
 * library does not log: a getter asked too early, a normal "no member").
 * Sets errno; returns -1. */
int cluster__fail_msg(CLUSTER *cluster, int err, const char *format, ...) CLUSTER__PRINTF(3, 4);

/* --- shard ownership glue (shards.c) --------------------------------- */
/* Refuse a join that cannot run shards (EINVAL: no callback; ENOTSUP:
 * the engine has none). Logs the reason. */
int cluster__shards_check_join(CLUSTER *cluster);
/* The static engine's fixed assignment, after a join or a worker change. */
void cluster__shards_static_refresh(CLUSTER *cluster);
/* After leave: release whatever is still held (callback), drop the map. */
void cluster__shards_after_leave(CLUSTER *cluster);
void cluster__shards_free(CLUSTER *cluster); /* from destroy */

/* --- advisor glue (advisor-api.c) ------------------------------------ */

int cluster__advisor_start(CLUSTER *cluster); /* after join */
void cluster__advisor_stop(CLUSTER *cluster); /* before leave */
void cluster__advisor_free(CLUSTER *cluster); /* from destroy */
/* A view was delivered (called with no lock held): the advisor lets go
 * of older table versions it no longer needs. */
void cluster__advisor_view(CLUSTER *cluster, const cluster__view *view);
/* How many times the pick built its cache (tests and benchmarks). */
unsigned long long cluster__advisor_pick_builds(CLUSTER *cluster);

#endif /*!CLUSTER_INT_H_*/
