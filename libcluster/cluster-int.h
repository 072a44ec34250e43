/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: the cluster object, the engine interface and the
 * helpers engines use to talk to the core. Nothing here is exported.
 */
#ifndef CLUSTER_INT_H_
# define CLUSTER_INT_H_                1

# ifdef HAVE_CONFIG_H
#  include "config.h"
# endif

# include <pthread.h>
# include <sys/types.h>
# include <stdint.h>
# include <syslog.h>
# include "libcluster.h"
# include "view.h"

# if defined(__GNUC__)
#  define CLUSTER__PRINTF(f, a)        __attribute__((format(printf, f, a)))
# else
#  define CLUSTER__PRINTF(f, a)
# endif

# define CLUSTER_DEFAULT_ENV           "production"
/* Connect and overall timeouts of a unary registry request (ms). */
# define CLUSTER_CONNECT_TIMEOUT_MS    1000
# define CLUSTER_REQUEST_TIMEOUT_MS    2000
/* The engines' share of cluster_leave() (stop threads, deregister), so
 * that the call returns within a second whatever the registry does; the
 * rest is margin for the final callback and a loaded machine. */
# define CLUSTER_LEAVE_BUDGET_MS       700

typedef struct cluster__engine cluster__engine;

/*
 * An engine: how membership is established and watched. The core calls
 * these with the control mutex held (never the state lock). The engine's
 * private data lives in cluster->engine_data.
 */
struct cluster__engine
{
	const char *name;            /* log tag: "static", "etcd", "etcd2" */
	/* Parse the registry URI and allocate engine_data. Returns 0 or an errno
	 * value (EINVAL after logging the reason, ENOMEM). uri is NULL for static. */
	int (*create)(CLUSTER *cluster, const char *uri);
	/* Free engine_data (never called while joined). */
	void (*destroy)(CLUSTER *cluster);
	/* Join; cluster->passive says how. Before returning 0 the engine must
	 * have published the initial view with cluster__publish_view().
	 * Returns 0 or an errno value (logged). On failure nothing is left
	 * registered (as far as the registry let us) and no thread runs. */
	int (*join)(CLUSTER *cluster);
	/* Leave: stop threads and deregister, bounded by CLUSTER_LEAVE_BUDGET_MS.
	 * The core then reports index -1 to the callback. */
	void (*leave)(CLUSTER *cluster);
	/* While joined: cluster->workers changed; push it to the registry now.
	 * Returns 0 or an errno value. May be NULL (nothing to push). */
	int (*workers_changed)(CLUSTER *cluster);
	/* While joined: the advisor status changed; write it when due. Must not
	 * block on the network (wake a thread). May be NULL. */
	void (*status_changed)(CLUSTER *cluster);
	/* Any thread, without the control lock (the core holds engine_lock for
	 * reading): make a join in progress on another thread give up soon
	 * with ECANCELED. The engine also polls cluster__join_cancelled().
	 * May be NULL. */
	void (*cancel_join)(CLUSTER *cluster);
	/* Non-zero if the engine calls cluster__settle_tick() from its watch
	 * thread, so that bursts of changes can settle before the callback;
	 * otherwise every published view is delivered at once. */
	int settles;
};

extern const cluster__engine cluster__engine_static;
extern const cluster__engine cluster__engine_etcd3;
extern const cluster__engine cluster__engine_etcd2;

/* The advisor status this instance publishes. */
typedef struct cluster__status cluster__status;
struct cluster__status
{
	char address[CLUSTER_ADDRESS_MAX + 1];
	long long load;
	long long capacity;
	int reported;                /* cluster_report() called at least once */
	unsigned long seq;           /* bumped on every change */
};

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
	char *env;                   /* env, partition, instance: written with */
	char *partition;             /* atomic stores (getters read them from */
	char *instance;              /* any thread), old values retired (S) */
	cluster__retired *retired;
	char *registry;              /* NULL: static */
	int ttl;
	int request_timeout_ms;      /* one registry request */
	int join_timeout_ms;         /* all of cluster_join()'s retries */
	char *ca_file, *cert_file, *key_file;
	char *user, *password;
	int static_index;
	int static_total;
	const cluster__engine *engine;
	void *engine_data;
	/* Held for reading around engine hooks that any thread may trigger
	 * (cluster_report() -> status_changed), for writing while the engine
	 * or its data is replaced or freed. Nothing else is taken under it. */
	pthread_rwlock_t engine_lock;

	/* (S) */
	CLUSTERLOGGER logger;
	CLUSTERBALANCE balancer;
	CLUSTERADVICE advice;
	int verbose;
	int joined;
	int passive;
	int workers;
	cluster__view view;          /* last published view */
	int index;                   /* last reported base (-1) */
	int total;                   /* last reported total */
	int announced;               /* the callback has seen this join's first view */
	int joining;                 /* a join holds the control lock: deliveries wait */
	int join_cancel;             /* cluster_leave() asked that join to give up */
	int join_threads;            /* threads still inside cluster_join() */
	pid_t owner_pid;             /* the process that joined (atomic; fork rule) */
	/* delivery (notify.c) */
	cluster__view pending;       /* newest published view not yet delivered */
	int has_pending;
	int64_t pending_first_ms, pending_last_ms;
	int settle_ms;               /* quiet window before a change is delivered */
	int delivering;              /* a thread is delivering (callbacks in order) */
	pthread_cond_t delivered;    /* signalled when delivering or join_threads drop */
	int fresh;                   /* the engine trusts the view (registry reachable) */
	int64_t fresh_since_ms;
	cluster__status status;
	CLUSTERADVISORCONFIG advisor_config;
	void *advisor;               /* advisor run-time state (advisor-api.c) */
};

/* --- logging (log.c) ------------------------------------------------ */

/* Log through the cluster's logger; adds nothing, the caller writes the
 * "libcluster: " prefix via the macros below. Safe from any thread. */
void cluster__log(CLUSTER *cluster, int priority, const char *format, ...) CLUSTER__PRINTF(3, 4);
void cluster__vlog(CLUSTER *cluster, int priority, const char *format, va_list ap);
/* Non-zero if verbose logging is on. */
int cluster__verbose(CLUSTER *cluster);

/* --- core services for engines (cluster.c) ---------------------------- */

/* --- delivery (notify.c) ---------------------------------------------- */

/*
 * Publish the member set the engine now believes in (any order). Computes
 * the view and queues it; it is delivered (stored, logged, and the
 * balancer callback called if this instance's base or the total changed)
 * at once, or after the settle window when the engine ticks. Call it with
 * no lock held. Returns 0 or an errno value (the set was rejected, logged,
 * and the previous view kept).
 */
int cluster__publish_view(CLUSTER *cluster, const cluster__member *members, size_t n, int64_t revision);

/* Static engines: publish a fixed base and total for this instance alone
 * (same notification path as cluster__publish_view). */
int cluster__publish_static(CLUSTER *cluster, int base, int total);

/* Engine's verdict on whether its view is current (watch connected, lease
 * alive). The advisor gives no redirects while it is not. */
void cluster__set_fresh(CLUSTER *cluster, int fresh);

/* Copy of this instance's advisor status (for engines to publish). */
void cluster__get_status(CLUSTER *cluster, cluster__status *out);

/* Current worker count (state lock taken briefly). */
int cluster__get_workers(CLUSTER *cluster);

/* Deliver the pending view now (if any), on this thread, with no lock
 * held during the callback. Callbacks of one handle never overlap. */
void cluster__deliver(CLUSTER *cluster);

/* Deliver a state that is not a view (leave's final index -1). */
void cluster__deliver_state(CLUSTER *cluster, CLUSTERBALANCE cb, CLUSTERSTATE *state);

/* For engines with settles set: deliver the pending view if its settle
 * window has passed. Returns ms until it will be due, or -1 if nothing is
 * pending (call again after the next publish). */
int64_t cluster__settle_tick(CLUSTER *cluster);

/* Callback bracketing, per handle: control calls on a handle fail with
 * EDEADLK while the calling thread is inside one of its callbacks. */
void cluster__callback_enter(CLUSTER *cluster);
void cluster__callback_leave(CLUSTER *cluster);
int cluster__in_callback(CLUSTER *cluster);

/* Non-zero once cluster_leave() asked the join in progress to give up. */
int cluster__join_cancelled(CLUSTER *cluster);

/* Monotonic milliseconds. */
int64_t cluster__now_ms(void);

/* Library threads wait on condition variables with timeouts on the
 * monotonic clock, so that a wall-clock step neither wakes nor stalls
 * them: initialise them with cluster__cond_init() and compute timeouts
 * with cluster__deadline() (ms from now; negative counts as 0). */
void cluster__cond_init(pthread_cond_t *cond);
void cluster__deadline(struct timespec *ts, int64_t ms);

/* Validate a name per the header's rule; on failure returns EINVAL and
 * logs "<field> ...: <rule>". */
int cluster__check_name(CLUSTER *cluster, const char *field, const char *value);

/* --- quoting input in log messages (escape.c) ------------------------ */

/*
 * Write the len bytes at in (NULL: "(null)") into out as one line of
 * printable ASCII: bytes 0x20..0x7e stand for themselves, every other
 * byte (control bytes, DEL, 0x80 and above, NUL) and the backslash itself
 * become "\xHH" (lower-case hex), so the text is unambiguous and can
 * neither forge a log line nor drive a terminal. If the result does not
 * fit in outsz bytes it is cut after a whole byte's escape and ends with
 * "..." (as much of it as fits). out is always NUL-terminated when outsz
 * > 0 (nothing is written when it is 0). Returns out, to be used inline:
 *   cluster__log(c, LOG_ERR, "... '%s' ...", cluster__escape(buf, sizeof(buf), v, strlen(v)));
 * Pure: no I/O, no locks. CLUSTER__ESCAPE_SIZE(n) bytes always hold the
 * escaping of n bytes in full.
 */
const char *cluster__escape(char *out, size_t outsz, const char *in, size_t len);
# define CLUSTER__ESCAPE_SIZE(n)       (4 * (n) + 1)

/* --- advisor glue (advisor-api.c) ------------------------------------ */

int cluster__advisor_start(CLUSTER *cluster);   /* after join */
void cluster__advisor_stop(CLUSTER *cluster);   /* before leave */
void cluster__advisor_free(CLUSTER *cluster);   /* from destroy */

#endif /*!CLUSTER_INT_H_*/
