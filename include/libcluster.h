/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcluster: every instance of a clustered service gets a consistent view
 * of its peers (a dense worker index and the cluster total), backed by a
 * static configuration or by etcd, plus a connection advisor that says
 * where new clients should connect and how many connections to move.
 *
 * Source-compatible with the original bbcarchdev libcluster API.
 *
 * Conventions
 * -----------
 * - Functions returning int return 0 on success and -1 on failure with
 *   errno set, unless documented otherwise. A human-readable reason is
 *   sent to the logger (see cluster_set_logger()), and kept for
 *   cluster_errmsg() (see "Failure messages" below).
 * - On failure nothing changes: a rejected setter leaves the previous
 *   value in place and nothing is written to the registry.
 * - Names (cluster key, environment, partition, instance id) must be
 *   1..128 bytes from [A-Za-z0-9._-] and must not be "." or "..".
 * - A NULL handle never crashes a call: functions returning int return
 *   -1 with errno EINVAL, pointer getters return NULL with errno EINVAL,
 *   and the three count getters cluster_total(), cluster_workers() and
 *   cluster_ttl() return 0 with errno EINVAL. The exceptions, as free()
 *   does: cluster_destroy(NULL) returns 0, and cluster_members_free(NULL)
 *   and cluster_redirects_free(NULL) do nothing. cluster_errmsg(NULL)
 *   is described with it.
 *
 * Thread contract
 * ---------------
 * - Getters (cluster_key(), cluster_index(), cluster_total(),
 *   cluster_workers(), cluster_state(), cluster_members(), ...) are safe
 *   from any thread at any time between cluster_create() and
 *   cluster_destroy(), and never wait on the network: they read the last
 *   view the library received.
 * - Setters, cluster_join(), cluster_join_passive(), cluster_leave() and
 *   cluster_destroy() are "control" calls. They are serialised internally,
 *   so two threads may call them, but they take effect one after another.
 *   cluster_destroy() must be the last call on a handle.
 * - A joined dynamic (etcd) cluster runs two library threads: the ping
 *   thread (lease keepalive, registration, status writes) and the balancer
 *   thread (watch, view updates, callbacks). The static engine runs none.
 * - When an advice callback is installed, a joined object also runs an
 *   advisor thread that calls it once per advice interval.
 * - Callbacks (balancer, advice, logger) run with no library lock held
 *   and never from inside libcurl. The balancer callbacks of one handle
 *   never overlap and arrive in order. The balancer callback runs on the
 *   balancer thread, except the first call, which runs before
 *   cluster_join() returns (on the caller's thread, after the library
 *   has released its control lock), and the final one (index -1), which
 *   runs inside cluster_leave() on the caller's thread. The advice
 *   callback runs on the advisor thread.
 * - Inside a balancer or advice callback you may call any getter and
 *   cluster_report(), and any call on another handle. Control calls on
 *   the same handle (setters, cluster_join(), cluster_leave(),
 *   cluster_destroy()) fail with EDEADLK there: they would wait for the
 *   calling thread itself.
 * - cluster_leave() (or cluster_destroy()) from another thread cancels a
 *   cluster_join() still in progress: the join returns -1/ECANCELED.
 * - The logger may be called from any library thread, concurrently; it
 *   must not call back into libcluster.
 * - The library uses libcurl with CURLOPT_NOSIGNAL and initialises it
 *   once (thread-safely, libcurl >= 7.84). It installs no signal handlers
 *   and never calls fork().
 * - fork(): library threads do not survive fork(). A child that wants
 *   membership creates its own handle; the parent's membership is
 *   untouched: the handle remembers the process that joined, and in any
 *   other process cluster_leave() does nothing and cluster_destroy() only
 *   frees memory (it neither revokes the parent's lease nor closes or
 *   writes on the connections the child inherited). (The original's cluster_set_fork() was declared but never
 *   implemented; it is not provided.)
 */
#ifndef LIBCLUSTER_H_
#define LIBCLUSTER_H_ 1

#include <stddef.h>
#include <stdarg.h>

#if defined(__GNUC__) && (__GNUC__ >= 4)
# define CLUSTER_EXTERN __attribute__((visibility("default")))
#else
# define CLUSTER_EXTERN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Package version of the header; compare with cluster_version(). */
#define CLUSTER_VERSION_MAJOR 0
#define CLUSTER_VERSION_MINOR 1
#define CLUSTER_VERSION_PATCH 0

/** Longest name (key, environment, partition, instance id), in bytes. */
#define CLUSTER_NAME_MAX 128
/** Longest published address, in bytes. */
#define CLUSTER_ADDRESS_MAX 256
/** Largest worker count of one instance. */
#define CLUSTER_WORKERS_MAX 65535
/**
 * Most members (active and passive instances) one cluster may have, as
 * the registry shows it to this process. A registry that holds more
 * cannot make the process hold them all in memory: a registry answer
 * listing more is refused before its records are decoded, a member that
 * would go past the limit is not added, and the view is never a partial
 * list: cluster_join() fails with E2BIG (after logging the limit and the
 * registry prefix), and while joined the previous view is kept, marked
 * stale, until the registry is back within the limit.
 *
 * Why 16384: sixteen times the 1,000 members the library is built for;
 * every copy of the view then stays below ~8 MiB, a registry answer of
 * that many typical records fits the 4 MiB a registry answer may take,
 * and the total worker count (at most 16384 * CLUSTER_WORKERS_MAX) always
 * fits an int.
 */
#define CLUSTER_MEMBERS_MAX 16384
/** Default settle window (ms): see cluster_set_settle(). */
#define CLUSTER_SETTLE_DEFAULT_MS 100
/** Default limit of one registry request (ms): see cluster_set_timeouts(). */
#define CLUSTER_REQUEST_TIMEOUT_DEFAULT_MS 2000
/** Default limit of a whole cluster_join() (ms): see cluster_set_timeouts(). */
#define CLUSTER_JOIN_TIMEOUT_DEFAULT_MS 10000
/** Lease TTL bounds and default, in seconds (etcd's floor is 2 s). */
#define CLUSTER_TTL_MIN     2
#define CLUSTER_TTL_MAX     3600
#define CLUSTER_TTL_DEFAULT 5
/** capacity for cluster_report(): no upper bound. 0 means draining. */
#define CLUSTER_CAPACITY_UNBOUNDED (-1LL)

/** An opaque cluster connection (membership) object. */
typedef struct cluster_struct CLUSTER;

/** A snapshot of this instance's place in the cluster. */
typedef struct cluster_state_struct CLUSTERSTATE;
struct cluster_state_struct
{
	/** Global index of this instance's first worker, -1 if not counted. */
	int index;
	/** This instance's worker count. */
	int workers;
	/** Total workers in the cluster (all counted members). */
	int total;
	/** Non-zero if this instance joined passively. */
	int passive;
};

/**
 * Re-balance callback: called with the new state whenever this
 * instance's base index or the cluster total changes. The return value is
 * ignored. See the thread contract above for where it runs.
 */
typedef int (*CLUSTERBALANCE)(CLUSTER *cluster, CLUSTERSTATE *state);

/**
 * Logger: priority is a syslog LOG_* value (LOG_CRIT .. LOG_DEBUG); the
 * formatted message ends in a newline.
 */
typedef void (*CLUSTERLOGGER)(int priority, const char *format, va_list ap);

/**
 * Extended logger (cluster_set_logger2()): gets the handle the message is
 * about, the userdata set with cluster_set_userdata() (as it was when the
 * message was logged), the syslog priority, and the formatted message as
 * one line without a trailing newline. Wherever a message quotes input
 * (a rejected name, a registry answer) the library has already escaped
 * it: control bytes, DEL, bytes >= 0x80 and the backslash appear as
 * "\xHH". Runs under the same rules as CLUSTERLOGGER (any library thread,
 * concurrently, no call back into libcluster).
 */
typedef void (*CLUSTERLOGGER2)(CLUSTER *cluster, void *userdata, int priority, const char *message);

/** One member of the cluster as last seen by this instance (a copy). */
typedef struct cluster_member_struct CLUSTERMEMBER;
struct cluster_member_struct
{
	/** Instance id. */
	char id[CLUSTER_NAME_MAX + 1];
	/** Worker count. */
	int workers;
	/** Base index, or -1 for a passive member. */
	int base;
	/** Non-zero for a passive member (watching, not counted). */
	int passive;
	/** Non-zero for this instance. */
	int self;
	/** Non-zero if the member has published a status (below). */
	int has_status;
	/** Published address, "" if none. */
	char address[CLUSTER_ADDRESS_MAX + 1];
	/** Published load (connections). */
	long long load;
	/** Published capacity: CLUSTER_CAPACITY_UNBOUNDED, 0 (draining) or a maximum. */
	long long capacity;
	/** Milliseconds since this instance last received a change of the
	 *  member's record (local clock; never compares clocks across hosts). */
	long long age_ms;
};

/** One row of connection advice: move count connections to target. */
typedef struct cluster_redirect_struct CLUSTERREDIRECT;
struct cluster_redirect_struct
{
	/** Target instance id. */
	char target[CLUSTER_NAME_MAX + 1];
	/** Target's published address. */
	char address[CLUSTER_ADDRESS_MAX + 1];
	/** Number of this instance's connections to redirect there. */
	int count;
};

/**
 * Advice callback: called once per advice interval on the advisor thread
 * with this instance's rows of the global plan (count may be 0: no
 * redirects this round), less what it was advised to send since its own
 * record last changed. Those clients stay in the load this instance
 * publishes until their targets have reported them (README "Connection
 * advisor", redirects in flight). The array is valid only during the
 * call.
 */
typedef void (*CLUSTERADVICE)(CLUSTER *cluster, const CLUSTERREDIRECT *redirects, size_t count);

/**
 * Connection-advisor tuning. Initialise with cluster_advisor_config_init()
 * and change the fields you care about. README.md "Connection advisor"
 * explains how the seeds' knobs map onto these.
 */
typedef struct cluster_advisor_config_struct CLUSTERADVISORCONFIG;
struct cluster_advisor_config_struct
{
	/** Set by cluster_advisor_config_init(); fields are only appended. */
	unsigned int version;
	/** Minimum time between two status writes to the registry (ms). */
	int report_interval_ms;
	/** Time between two advice rounds (ms). Every member's rounds fall on
	 *  the same multiples of it on the wall clock, so that they plan from
	 *  nearly the same statuses; it stretches to twice the effective
	 *  report interval (rounded up by at most an eighth) when statuses
	 *  are written less often than that (README "Connection advisor"). */
	int advice_interval_ms;
	/** Absolute band: a member within this many connections of its fair
	 *  share is balanced (cluster-balancer "precision"). */
	long long band_absolute;
	/** Relative band: ... or within this fraction of its fair share
	 *  (ClusterLoadBalancer "allowed_average_deviation_percent" / 100). */
	double band_relative;
	/** Fraction of its surplus a member may shed in one round
	 *  (ClusterLoadBalancer "shed_percentage" / 100). */
	double shed_fraction;
	/** Most connections one member redirects in one round
	 *  (cluster-balancer "stepSize", ClusterLoadBalancer "max_shed_count"); 0 = no limit. */
	long long step_max;
	/** Rounds that would redirect fewer than this are skipped
	 *  (ClusterLoadBalancer "min_shed_count"), except when draining. */
	long long step_min;
	/** Cluster-wide redirect budget in connections per second, shared by
	 *  all shedders; 0 = no limit. */
	double budget_per_second;
	/** Checked (0 to 0.5) but no longer used: advice rounds are aligned
	 *  since version 3, not spread. */
	double jitter;
	/** A member whose record has not changed for this long (ms, local
	 *  receipt time) is treated as stale by the pick (0 = never). */
	int stale_ms;
	/* --- version 2 --- */
	/** Cluster-wide budget of status writes per second (etcd v3): a
	 *  member's effective report interval stretches to
	 *  members / status_writes_per_second seconds when that is longer than
	 *  report_interval_ms, so that the registry's fan-out stays bounded as
	 *  the cluster grows; a load that moved by more than half the
	 *  advisor's band is still written after report_interval_ms (the plan
	 *  must see it) while the member has a saved write token (one accrues
	 *  per stretched interval, up to three). 0 = no limit. */
	double status_writes_per_second;
	/** A new load is written only once it differs from the last written
	 *  one by more than this fraction of the advisor's band (capacity and
	 *  address changes are always written); the plan moves members this
	 *  far inside their band edges, so that what it does not see cannot
	 *  leave them outside. 0 = every change. */
	double report_deadband;
	/* --- version 3 --- */
	/** Hold-down (ms): a member that (re)joined less than this long ago
	 *  takes no part in the plan or the pick yet: nothing is planned to
	 *  it or from it and the pick does not choose it, so a member that
	 *  flaps is never filled (Kafka's scheduled rebalance delay). Its age
	 *  is the one its status publishes, so every member holds it down
	 *  alike (README "Hold-down and slow start"). Ignored while every
	 *  member just joined (a cluster starting up). A member that left
	 *  holding clients counts as draining for as long, so that its
	 *  clients, reconnecting to the others, are expected there. 0 = off;
	 *  at most 3600000. */
	int hold_down_ms;
	/** Slow start (ms): after the hold-down, the member's fill level (in
	 *  the pick and the plan) rises linearly from 1/16 of its share to all
	 *  of it over this window, in 16 steps so that members whose clocks
	 *  differ by milliseconds agree (Envoy's slow start). 0 = off (filled
	 *  at once after the hold-down); at most 3600000. */
	int slow_start_ms;
	/* --- version 4 --- */
	/** How many instances pick targets from the same statuses at once
	 *  (members calling cluster_pick_target(), and gateways). None sees
	 *  the others' picks until a target writes its load again, so each
	 *  claims only its part of a member's room: its own recent picks
	 *  count this many times there (README "Herd-safe pick"). 0 = the
	 *  members of the view that publish a status (the default); set it
	 *  when a few gateways pick for everyone, e.g. 1 for a single
	 *  gateway. At most 1000000. */
	int pickers;
};
#define CLUSTER_ADVISOR_CONFIG_VERSION 4

/* ------------------------------------------------------------------ */
/* Lifecycle                                                            */
/* ------------------------------------------------------------------ */

/**
 * Create a cluster object for the cluster named key (a valid name).
 * Defaults: environment "production", no partition, a random 32-hex-digit
 * instance id, 1 worker, static engine (index 0, total 1), TTL
 * CLUSTER_TTL_DEFAULT.
 * @return the object, or NULL with errno EINVAL (bad key) or ENOMEM.
 */
CLUSTER_EXTERN CLUSTER *cluster_create(const char *key);

/**
 * Leave (if joined) and free the object. NULL is a harmless no-op. From
 * another thread it also cancels a cluster_join() in progress and waits
 * for that call to return first. In a forked child it only frees memory
 * (see the fork rule above).
 * @return 0; -1/EDEADLK if called from a library callback (nothing freed).
 */
CLUSTER_EXTERN int cluster_destroy(CLUSTER *cluster);

/**
 * Join the cluster with the configured engine. When it returns 0 the
 * balancer callback has already been called once. Already joined: 0.
 * A registry request that fails on the way (a timeout, a refused
 * connection, a 5xx answer) is retried, on the next endpoint, until the
 * join deadline (cluster_set_timeouts()) has passed. If the instance id is
 * held by a crashed predecessor, the join also waits (up to TTL + 2 s) for
 * its lease to run out.
 * Failures that another try cannot mend end the join at once, with a
 * logged reason (also in cluster_errmsg()) naming the cause: TLS,
 * credentials and permissions are never retried, and https:// never
 * falls back to plain http.
 * @return 0, or -1 with errno EINVAL (static index/total inconsistent,
 *   bad configuration), EEXIST (a live instance already holds this
 *   instance id), ENXIO (the registry's host name could
 *   not be resolved), ECONNREFUSED (connection refused), ETIMEDOUT (no
 *   answer in time), EIO (the registry answered with an error) - each
 *   retried until the join deadline, EPROTO (TLS: the server's
 *   certificate not verified by the CA file, our client certificate
 *   missing, expired or refused, a TLS file unreadable, or http:// to a
 *   TLS port), EACCES (credentials refused, or none given where the
 *   registry requires them), EPERM (the registry user has no permission
 *   on this cluster's keys, or a forked child using its parent's
 *   handle), ECANCELED (cluster_leave() from another thread), E2BIG
 *   (more than CLUSTER_MEMBERS_MAX members), ENOMEM, EDEADLK.
 */
CLUSTER_EXTERN int cluster_join(CLUSTER *cluster);

/**
 * Join passively: watch the cluster and know its total and members, but
 * do not take worker indices (index -1). Errors as cluster_join().
 */
CLUSTER_EXTERN int cluster_join_passive(CLUSTER *cluster);

/**
 * Leave the cluster: deregister, stop the library threads, and call the
 * balancer callback with index -1. Returns within about one second even if
 * the registry is hung or down. Not joined: 0.
 * The instance has left whenever 0 is returned; errno then tells whether
 * the registry knows it: 0 if the registration was removed (or there was
 * none), else the cause (ETIMEDOUT, ECONNREFUSED, ENXIO, EPROTO, EIO...)
 * of a registry that could not be reached in time. The registration then
 * stays visible to the other members until its lease runs out, within the
 * TTL (cluster_ttl()); the logger has said so.
 * @return 0, or -1/EDEADLK from a library callback.
 */
CLUSTER_EXTERN int cluster_leave(CLUSTER *cluster);

/* ------------------------------------------------------------------ */
/* Configuration (refused with EPERM while joined unless noted)         */
/* ------------------------------------------------------------------ */

/** Enable (non-zero) or disable extra debug logging. Any time. Returns 0.
 *  As in the original, a few LOG_DEBUG lines reach the logger even
 *  without it: a logger that wants none drops them by priority. */
CLUSTER_EXTERN int cluster_set_verbose(CLUSTER *cluster, int verbose);

/** Install the logger (NULL: the built-in one, which prints only
 *  LOG_CRIT and more severe to stderr). Any time. Returns 0. An extended
 *  logger (cluster_set_logger2()), while installed, wins over it. */
CLUSTER_EXTERN int cluster_set_logger(CLUSTER *cluster, CLUSTERLOGGER logger);

/**
 * Install the extended logger (NULL: remove it; the classic logger, or
 * the built-in one, takes over again). While set, every message goes to
 * it and none to the classic logger. Any time. Returns 0.
 */
CLUSTER_EXTERN int cluster_set_logger2(CLUSTER *cluster, CLUSTERLOGGER2 logger);

/**
 * Attach an application pointer to the handle (NULL: none), for the
 * callbacks: the balancer and advice callbacks read it back with
 * cluster_userdata(), the extended logger receives it. The library never
 * dereferences or frees it. Any time, any thread (also from callbacks).
 * Returns 0.
 */
CLUSTER_EXTERN int cluster_set_userdata(CLUSTER *cluster, void *data);

/** The pointer set by cluster_set_userdata(); NULL (errno 0) if none. */
CLUSTER_EXTERN void *cluster_userdata(CLUSTER *cluster);

/** Install the re-balance callback (NULL: none). Any time. Returns 0. */
CLUSTER_EXTERN int cluster_set_balancer(CLUSTER *cluster, CLUSTERBALANCE callback);

/**
 * Cluster key. The pointer stays valid until cluster_destroy(): the key
 * never changes.
 */
CLUSTER_EXTERN const char *cluster_key(CLUSTER *cluster);

/**
 * Environment name. The pointer stays valid (and its text unchanged)
 * until cluster_destroy(), even if cluster_set_env() replaces the value
 * meanwhile on another thread: the next call returns the new value.
 */
CLUSTER_EXTERN const char *cluster_env(CLUSTER *cluster);

/** Set the environment (NULL restores "production"). EINVAL, EPERM. */
CLUSTER_EXTERN int cluster_set_env(CLUSTER *cluster, const char *env);

/** Instance id. The pointer stays valid until cluster_destroy(), as for
 *  cluster_env(). */
CLUSTER_EXTERN const char *cluster_instance(CLUSTER *cluster);

/** Set the instance id (a valid name; NULL is EINVAL). EINVAL, EPERM. */
CLUSTER_EXTERN int cluster_set_instance(CLUSTER *cluster, const char *instance);

/** Replace the instance id with a fresh random one. EPERM while joined. */
CLUSTER_EXTERN int cluster_reset_instance(CLUSTER *cluster);

/** Partition name, or NULL (errno 0) when none. Lifetime as cluster_env(). */
CLUSTER_EXTERN const char *cluster_partition(CLUSTER *cluster);

/** Set the partition (NULL: none). EINVAL, EPERM. */
CLUSTER_EXTERN int cluster_set_partition(CLUSTER *cluster, const char *partition);

/**
 * Set this instance's worker count, 1..CLUSTER_WORKERS_MAX (EINVAL
 * otherwise). Allowed while joined: the registry is updated at once and
 * every member re-balances.
 */
CLUSTER_EXTERN int cluster_set_workers(CLUSTER *cluster, int workers);

/** Deprecated alias of cluster_set_workers(), kept for old callers. */
CLUSTER_EXTERN int cluster_set_threads(CLUSTER *cluster, int workers);

/**
 * Select the engine. NULL: static. "http://host:port/" or "https://...":
 * etcd v3; several endpoints may be given separated by commas and are
 * tried in turn. "etcd2+http://host:port/": the etcd v2 key layout of the
 * original (for old clusters). Anything else: EINVAL and the previous
 * engine stays. EPERM while joined.
 */
CLUSTER_EXTERN int cluster_set_registry(CLUSTER *cluster, const char *uri);

/**
 * Settle window in milliseconds (0..60000, default
 * CLUSTER_SETTLE_DEFAULT_MS; any time). With the etcd v3 engine, a change
 * of the member set is passed to the balancer callback (and to the
 * getters) once no further change has arrived for this long, and at the
 * latest five windows after the burst began: a rolling restart or a mass
 * lease expiry reaches the application as one settled change instead of
 * a callback per event. 0 delivers every change at once. The first view
 * of a join and the final one of a leave are never delayed. EINVAL.
 */
CLUSTER_EXTERN int cluster_set_settle(CLUSTER *cluster, int ms);

/**
 * Time limits (ms) for registry requests: request_ms bounds one request
 * (100..60000, default CLUSTER_REQUEST_TIMEOUT_DEFAULT_MS; a connect takes
 * at most half of it, and over http:// at most 1 s, so that a dead
 * endpoint is passed over quickly; over https:// the connect includes the
 * TLS handshake and may take the whole half), join_ms bounds all of
 * cluster_join()'s retries (request_ms..600000, default
 * CLUSTER_JOIN_TIMEOUT_DEFAULT_MS; not counting the wait for a crashed
 * predecessor's lease). 0 keeps the current value. EINVAL, EPERM.
 */
CLUSTER_EXTERN int cluster_set_timeouts(CLUSTER *cluster, int request_ms, int join_ms);

/** Lease TTL in seconds, CLUSTER_TTL_MIN..CLUSTER_TTL_MAX. EINVAL, EPERM. */
CLUSTER_EXTERN int cluster_set_ttl(CLUSTER *cluster, int seconds);

/** Current lease TTL in seconds; 0 with errno EINVAL for a NULL handle. */
CLUSTER_EXTERN int cluster_ttl(CLUSTER *cluster);

/**
 * TLS files for https:// registries (PEM paths; any may be NULL): the CA
 * that signed the registry's certificate (NULL: the system's CAs), and
 * a client certificate with its key for registries that require one
 * (both or neither; EINVAL otherwise). The files are read when joining
 * (a client certificate that has expired fails the join with EPROTO
 * before any request). EPERM while joined.
 */
CLUSTER_EXTERN int cluster_set_tls(CLUSTER *cluster, const char *ca_file, const char *cert_file, const char *key_file);

/** User name and password for registry authentication (NULL, NULL:
 *  none): etcd v3 logs in for a token (and again when etcd forgets it),
 *  etcd v2 sends them as HTTP basic auth. The password is copied, never
 *  logged, and wiped from memory when replaced or destroyed. EINVAL if
 *  only one is given. EPERM while joined. */
CLUSTER_EXTERN int cluster_set_credentials(CLUSTER *cluster, const char *user, const char *password);

/** Static engine: this instance's base index (>= 0). EINVAL, EPERM. */
CLUSTER_EXTERN int cluster_static_set_index(CLUSTER *cluster, int index);

/** Static engine: the cluster total (>= 1). EINVAL, EPERM. */
CLUSTER_EXTERN int cluster_static_set_total(CLUSTER *cluster, int total);

/* ------------------------------------------------------------------ */
/* State (never blocks on the network)                                  */
/* ------------------------------------------------------------------ */

/**
 * Global index of this instance's worker number worker (0-based,
 * 0 <= worker < workers). @return the index, or -1 with errno EPERM (not
 * joined), EINVAL (worker out of range) or ENOENT (joined but not counted:
 * passive, or re-registering after the lease was lost).
 */
CLUSTER_EXTERN int cluster_index(CLUSTER *cluster, int worker);

/**
 * Freshness of the view: whether it is known to be current. With etcd it
 * is current while the watch stream is connected and has answered its
 * last heartbeat (a hung or partitioned endpoint is noticed within about
 * two thirds of the TTL and the watch moves to another endpoint), this
 * instance's lease is alive (active members), and no settled change is
 * still waiting to be delivered. The static engine is always current.
 * *revision (may be NULL) gets the registry revision the view reflects
 * (0 for the static engine).
 * @return 1 current, 0 possibly stale, -1 with errno EPERM (not joined)
 *   or EINVAL (NULL handle).
 */
CLUSTER_EXTERN int cluster_view_fresh(CLUSTER *cluster, long long *revision);

/** Cluster total, or 0 with errno EPERM when not joined (EINVAL for a
 *  NULL handle). */
CLUSTER_EXTERN int cluster_total(CLUSTER *cluster);

/** This instance's worker count (whether or not joined); 0 with errno
 *  EINVAL for a NULL handle. */
CLUSTER_EXTERN int cluster_workers(CLUSTER *cluster);

/** Copy the current state into *state. Works when not joined (index -1).
 *  EINVAL if state is NULL. */
CLUSTER_EXTERN int cluster_state(CLUSTER *cluster, CLUSTERSTATE *state);

/**
 * Copy the current member list, sorted by id (byte order), including this
 * instance. A passive instance registers nothing, so it is not listed (by
 * others or by itself); the v2 engine and records written by other tools
 * may still carry a passive flag, shown in CLUSTERMEMBER.passive. *members is set to an array the
 * caller frees with cluster_members_free() (NULL when *count is 0).
 * EPERM when not joined, EINVAL on NULL arguments, ENOMEM.
 */
CLUSTER_EXTERN int cluster_members(CLUSTER *cluster, CLUSTERMEMBER **members, size_t *count);

/** As cluster_members(), without this instance. */
CLUSTER_EXTERN int cluster_peers(CLUSTER *cluster, CLUSTERMEMBER **members, size_t *count);

/** Free an array returned by cluster_members() or cluster_peers(). */
CLUSTER_EXTERN void cluster_members_free(CLUSTERMEMBER *members);

/* ------------------------------------------------------------------ */
/* Copies of the names                                                  */
/* ------------------------------------------------------------------ */

/*
 * The pointer getters cluster_key(), cluster_env(), cluster_instance()
 * and cluster_partition() already return text that stays valid and
 * unchanged until cluster_destroy() (a replaced value is retired, not
 * freed). These copy-out variants are for callers that want their own
 * copy of a consistent value (to keep past cluster_destroy(), or to hand
 * to code that should not hold library memory).
 *
 * Each writes the current value and a NUL into buf (size bytes) and
 * returns its length, not counting the NUL. A buffer of
 * CLUSTER_NAME_MAX + 1 bytes always fits. If the value does not fit,
 * the call returns -1 with errno ERANGE and buf gets "" (when size > 0):
 * never a truncated name, which could pass for a real one. A NULL handle
 * or a NULL buf: -1/EINVAL, buf untouched.
 */

/** Copy the cluster key. See above. */
CLUSTER_EXTERN int cluster_copy_key(CLUSTER *cluster, char *buf, size_t size);

/** Copy the environment name. See above. */
CLUSTER_EXTERN int cluster_copy_env(CLUSTER *cluster, char *buf, size_t size);

/** Copy the instance id. See above. */
CLUSTER_EXTERN int cluster_copy_instance(CLUSTER *cluster, char *buf, size_t size);

/** Copy the partition name. With no partition: returns 0 and buf gets ""
 *  (any size >= 1; a partition name is never empty). See above. */
CLUSTER_EXTERN int cluster_copy_partition(CLUSTER *cluster, char *buf, size_t size);

/* ------------------------------------------------------------------ */
/* Connection advisor                                                   */
/* ------------------------------------------------------------------ */

/**
 * Publish the address clients should use to reach this instance
 * (printable ASCII without spaces, at most CLUSTER_ADDRESS_MAX bytes;
 * NULL or "" clears it). Any time. EINVAL.
 */
CLUSTER_EXTERN int cluster_set_address(CLUSTER *cluster, const char *address);

/**
 * Report this instance's load (connections, >= 0) and capacity
 * (CLUSTER_CAPACITY_UNBOUNDED, 0 = draining / out of service, or a
 * maximum >= load). Any time, any thread. Written to the registry only
 * when changed and at most once per report interval; never changes
 * anyone's index or total. EINVAL on bad values.
 */
CLUSTER_EXTERN int cluster_report(CLUSTER *cluster, long long load, long long capacity);

/** Fill *config with the defaults (config NULL: nothing, errno EINVAL). */
CLUSTER_EXTERN void cluster_advisor_config_init(CLUSTERADVISORCONFIG *config);

/** Set the advisor tuning (copied). Any time. EINVAL names the bad field. */
CLUSTER_EXTERN int cluster_set_advisor_config(CLUSTER *cluster, const CLUSTERADVISORCONFIG *config);

/** Install the advice callback (NULL: no advice rounds). Any time. */
CLUSTER_EXTERN int cluster_set_advisor(CLUSTER *cluster, CLUSTERADVICE callback);

/**
 * Where should a new client connect? Herd-safe: picks among members with
 * spare room, weighted by their deficit, counting this instance's own
 * recent picks as provisional load, times the pickers it assumes
 * (CLUSTERADVISORCONFIG.pickers), so that many callers between two
 * reports each take their part of a member's room, not all of it. A
 * member that (re)joined less than hold_down_ms ago is not chosen, and
 * one in its slow start weighs less (CLUSTERADVISORCONFIG).
 * Copies the chosen member into *target.
 * @return 0, or -1 with errno EPERM (not joined), ENOENT (no member can
 *   take a client: all draining, full, stale or in their hold-down),
 *   EINVAL.
 */
CLUSTER_EXTERN int cluster_pick_target(CLUSTER *cluster, CLUSTERMEMBER *target);

/**
 * Compute this instance's rows of the current global plan now (the same
 * rows the advice callback would receive, but not recorded as in flight:
 * only the callback's are). *redirects is freed with
 * cluster_redirects_free(); NULL when *count is 0. Returns no rows while
 * the view may be stale (registry unreachable). EPERM, EINVAL, ENOMEM.
 */
CLUSTER_EXTERN int cluster_advice(CLUSTER *cluster, CLUSTERREDIRECT **redirects, size_t *count);

/** Free an array returned by cluster_advice(). */
CLUSTER_EXTERN void cluster_redirects_free(CLUSTERREDIRECT *redirects);

/** One member's line of the global plan (cluster_plan()). */
typedef struct cluster_plan_entry_struct CLUSTERPLANENTRY;
struct cluster_plan_entry_struct
{
	/** Instance id. */
	char id[CLUSTER_NAME_MAX + 1];
	/** Non-zero if the member takes part in the plan (a valid status,
	 *  not passive, past its hold-down). */
	int member;
	/** Non-zero if it is draining (capacity 0): it only sends. */
	int draining;
	/** Its fair share of the cluster's load (0 unless member). */
	long long share;
	/** Its published load. */
	long long load;
	/** Connections it is planned to send this round, and to receive. */
	long long shed;
	long long inflow;
};

/**
 * The whole global plan as this instance computes it now (every member
 * computes the same one from the same view): one entry per member of the
 * view, in view order, with its fair share and what it sends and
 * receives this round. For dashboards and tools that watch the cluster
 * (a passive instance works too). While the view may be stale, shed and
 * inflow are 0, as the advice is then (fail-static). *entries is freed
 * with cluster_plan_free(); NULL when *count is 0. EPERM (not joined),
 * EINVAL, ENOMEM.
 */
CLUSTER_EXTERN int cluster_plan(CLUSTER *cluster, CLUSTERPLANENTRY **entries, size_t *count);

/** Free an array returned by cluster_plan(). */
CLUSTER_EXTERN void cluster_plan_free(CLUSTERPLANENTRY *entries);

/* ------------------------------------------------------------------ */
/* Shard ownership                                                      */
/* ------------------------------------------------------------------ */

/** Most shards a cluster may divide (cluster_set_shards()). */
#define CLUSTER_SHARDS_MAX 1000000
/** Default shard settle window (ms): membership changes this close
 *  together are re-assigned in one step. */
#define CLUSTER_SHARD_SETTLE_DEFAULT_MS 300

/** One shard with its fencing token. */
typedef struct cluster_shard_struct CLUSTERSHARD;
struct cluster_shard_struct
{
	/** The shard, 0 .. shards-1. */
	unsigned int shard;
	/** Fencing token: strictly increases every time the shard changes
	 *  owner (the registry revision of the assignment that gave it to its
	 *  owner; 1 with the static engine). Pass it to the systems you write
	 *  to so that they can refuse a former owner's late writes. */
	long long token;
};

/**
 * Shard callback: this instance must stop working on the released shards
 * (before it returns) and may start on the acquired ones. Either list may
 * be empty; the two never share a shard. Called on a library thread with
 * no library lock held; calls of one handle never overlap. A shard is
 * given to another member only after this callback has returned for its
 * release here, or after this instance's lease ran out (see README "Shard
 * ownership" for the guarantee and its one assumption). The arrays are
 * never NULL (an empty one has its count 0) and valid only during the
 * call.
 */
typedef void (*CLUSTERSHARDS)(CLUSTER *cluster, const CLUSTERSHARD *acquired, size_t n_acquired, const CLUSTERSHARD *released, size_t n_released);

/**
 * Divide the cluster's work into shards 0 .. shards-1 (1 ..
 * CLUSTER_SHARDS_MAX), each owned by exactly one live member, balanced by
 * worker count and moved as little as possible; 0 turns shard ownership
 * off (the default). Every member of the cluster must use the same count.
 * Only while not joined: EPERM while joined, EINVAL out of range. With the
 * etcd v2 engine cluster_join() then fails with ENOTSUP.
 */
CLUSTER_EXTERN int cluster_set_shards(CLUSTER *cluster, int shards);

/** The shard count set by cluster_set_shards() (0: off). */
CLUSTER_EXTERN int cluster_shards(CLUSTER *cluster);

/**
 * Install the shard callback. Required (cluster_join() fails with EINVAL
 * without it) when shards are set. Only while not joined (EPERM).
 */
CLUSTER_EXTERN int cluster_set_shard_callback(CLUSTER *cluster, CLUSTERSHARDS callback);

/**
 * How long membership changes settle before they are re-assigned (ms, 0
 * .. 60000; default CLUSTER_SHARD_SETTLE_DEFAULT_MS), so that a rolling
 * restart does not move shards once per member. Only while not joined
 * (EPERM); EINVAL out of range.
 */
CLUSTER_EXTERN int cluster_set_shard_settle(CLUSTER *cluster, int ms);

/**
 * The shards this instance owns now (acquired through the callback and
 * not yet released), ascending. *shards is freed with cluster_shards_free()
 * (NULL when *count is 0). Never blocks on the network.
 * @return 0, or -1 with errno EPERM (not joined, or shards not set), EINVAL, ENOMEM.
 */
CLUSTER_EXTERN int cluster_owned_shards(CLUSTER *cluster, CLUSTERSHARD **shards, size_t *count);

/** Free an array returned by cluster_owned_shards(). */
CLUSTER_EXTERN void cluster_shards_free(CLUSTERSHARD *shards);

/**
 * Who owns shard now, as this instance last read the assignment: copies
 * the owner's instance id into id (size bytes, at least
 * CLUSTER_NAME_MAX + 1 always suffice; id may be NULL) and its token into
 * *token (may be NULL). Never blocks on the network.
 * @return 0, or -1 with errno EPERM (not joined, or shards not set),
 *   ERANGE (shard out of range), ENOENT (no owner right now: the shard is
 *   being handed over, or no member can take it), ENOSPC (id too small),
 *   EINVAL.
 */
CLUSTER_EXTERN int cluster_shard_owner(CLUSTER *cluster, int shard, char *id, size_t size, long long *token);

/* ------------------------------------------------------------------ */
/* Failure messages                                                     */
/* ------------------------------------------------------------------ */

/**
 * Why the last failed libcluster call on this thread failed, as one line
 * of text without a newline (the message the library logged, or one it
 * recorded for a refusal it does not log, such as a getter asked before
 * joining or a NULL argument), so a caller without a logger can say why:
 *   if(cluster_join(c) == -1)
 *       fprintf(stderr, "join: %s\n", cluster_errmsg(c));
 *
 * Design: thread-local. Each thread keeps one record: the reason for its
 * own last failed call and the handle that call was made on.
 * cluster_errmsg(cluster) returns that reason when it belongs to cluster,
 * and "" otherwise (no failure on this thread yet, or the last one was on
 * another handle). Threads that share a handle therefore never see or
 * overwrite each other's messages, and reading one takes no lock.
 * Like errno, a successful call does not clear it: read it right after a
 * call returned failure. cluster_errmsg(NULL) returns the reason of a
 * failed cluster_create() or of a call made with a NULL handle (those
 * failures belong to no handle). Never returns NULL; never fails; does
 * not change errno. The text stays valid until the next libcluster call
 * on this thread (the next failure overwrites it); copy it to keep it.
 */
CLUSTER_EXTERN const char *cluster_errmsg(CLUSTER *cluster);

/* ------------------------------------------------------------------ */
/* Misc                                                                 */
/* ------------------------------------------------------------------ */

/** Run-time library version string, e.g. "0.1.0". */
CLUSTER_EXTERN const char *cluster_version(void);

#ifdef __cplusplus
}
#endif

#endif /*!LIBCLUSTER_H_*/
