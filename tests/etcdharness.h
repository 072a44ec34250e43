/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd test harness: runs a private, single-member etcd on free loopback
 * ports in a temporary directory, and gives tests the levers they need
 * (stop, kill -9, restart, SIGSTOP, compaction, raw puts, a connection-
 * cutting TCP proxy). It talks to etcd with its own small libcurl code and
 * never uses the library under test. Three files implement it:
 * etcdharness.c (processes and clusters), etcdclient.c (the HTTP client
 * and auth) and etcdproxy.c (the proxy); etcdharness-private.h is theirs.
 *
 * Call the harness from one thread (normally main): the etcd child is
 * tied to the thread that started it (it is killed if that thread dies,
 * so a crashed test never leaves etcd running).
 */
#ifndef ETCDHARNESS_H_
#define ETCDHARNESS_H_ 1

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct etcdh etcdh;
typedef struct etcdh_cluster etcdh_cluster;
typedef struct etcdh_proxy etcdh_proxy;

/* Return value of etcdh_start() when etcd is not installed and
 * CLUSTER_REQUIRE_ETCD is unset (the automake "skip" status). */
#define ETCDH_SKIP 77

/*
 * Start a private etcd (temporary directory, free ports, --unsafe-no-fsync)
 * and wait until /health says true. Retries with new ports if etcd fails
 * to start. Returns 0, ETCDH_SKIP (etcd missing and CLUSTER_REQUIRE_ETCD
 * unset) or -1 (error, reason printed to stderr).
 */
int etcdh_start(etcdh **out);

/*
 * As etcdh_start(), with options. dir: use this existing directory instead
 * of a fresh temporary one (not removed by etcdh_destroy()); NULL for a
 * temporary one. detached: put etcd in its own session and do not tie it
 * to this thread (for the etcd-harness command, whose etcd outlives it).
 * extra_args: NULL-terminated extra etcd flags, or NULL.
 */
int etcdh_start_opts(etcdh **out, const char *dir, int detached, const char *const *extra_args);

/*
 * Re-attach to an etcd started detached in dir (reads dir/etcd.state).
 * Returns 0 or -1. The process is not a child: stop/kill poll for its end.
 */
int etcdh_attach(etcdh **out, const char *dir);

/* True if etcd is installed (ETCD env, PATH, /usr/bin/etcd). */
int etcdh_available(void);

/* True if CLUSTER_REQUIRE_ETCD is set to something other than "" or "0". */
int etcdh_required(void);

/* True, after printing the TAP line "1..0 # SKIP ..." to stdout, when etcd
 * is not installed and not required: a test program's main() then returns
 * at once. */
int etcdh_skip(void);

/* "http://127.0.0.1:PORT/" (valid until etcdh_destroy()). */
const char *etcdh_endpoint(etcdh *h);

/* Client port, PID (0 when not running) and working directory. */
int etcdh_port(etcdh *h);
pid_t etcdh_pid(etcdh *h);
const char *etcdh_dir(etcdh *h);

/* Stop gracefully: SIGTERM, then SIGKILL after a deadline; reaps. 0/-1. */
int etcdh_stop(etcdh *h);
/* SIGKILL at once; reaps. 0/-1. */
int etcdh_kill(etcdh *h);
/* Start again on the same data directory and ports; waits for health. */
int etcdh_restart(etcdh *h);
/* SIGSTOP / SIGCONT. 0/-1. */
int etcdh_pause(etcdh *h);
int etcdh_resume(etcdh *h);
/* Wait until /health says true (deadline x etcdh_timeout_mult()). 0/-1. */
int etcdh_wait_healthy(etcdh *h, double seconds);

/* Compact (physical) at the current store revision. 0/-1. */
int etcdh_compact(etcdh *h);
/* Current store revision, -1 on error. */
long long etcdh_revision(etcdh *h);
/* Raw v3 put without lease (for garbage injection). 0/-1. */
int etcdh_put(etcdh *h, const char *key, const char *value);
/* Raw v3 get: *value is malloc'd (caller frees); returns 1 found, 0
 * absent, -1 error. value may be NULL to only test presence. */
int etcdh_get(etcdh *h, const char *key, char **value);
/* Number of keys starting with prefix, -1 on error. */
long long etcdh_count(etcdh *h, const char *prefix);
/* Delete one key (not its lease). Returns keys deleted, -1 on error. */
int etcdh_delete(etcdh *h, const char *key);
/* Revoke every lease etcd knows. Returns leases revoked, -1 on error. */
/* Revoke one lease (its keys vanish at once). 0 or -1. */
int etcdh_revoke(etcdh *h, long long lease);
int etcdh_revoke_all(etcdh *h);
/* Lease ID attached to key (0 if none or absent), -1 on error. */
long long etcdh_key_lease(etcdh *h, const char *key);

/*
 * GET /metrics; *text is malloc'd (caller frees). 0/-1. Helper to read one
 * counter: the sum of all samples of name whose label set contains every
 * comma-separated label in labels (e.g. "grpc_method=\"Range\""), or 0.
 */
int etcdh_metrics(etcdh *h, char **text);
double etcdh_metric(const char *text, const char *name, const char *labels);

/*
 * A raw HTTP request with no token, for tests that speak to etcd as some
 * other client would (the v2 API, a lease grant, /health): method (NULL:
 * POST body, or GET when body is NULL) to the full url. Returns the HTTP
 * status, 0 when there was no answer; the reply body in *out (malloc'd,
 * NULL if none; caller frees) unless out is NULL.
 */
long etcdh_request(const char *method, const char *url, const char *body, long timeout_ms, char **out);

/*
 * A throw-away PKI in dir (made if missing), by the openssl command
 * (P-256 keys): ca.crt/.key; server.crt/.key for 127.0.0.1 and localhost
 * (serverAuth and clientAuth: with --client-cert-auth etcd's gateway
 * presents it to etcd's own gRPC server); client.crt/.key (no CommonName:
 * with auth on, etcd's gateway refuses a client certificate that has one);
 * other-ca.crt and other-client.crt/.key signed by it (a stranger's CA);
 * expired-client.crt/.key and expired-server.crt/.key (signed by ca,
 * expired yesterday). 0 or -1.
 */
int etcdh_pki_make(const char *dir);
/*
 * From now on the harness's own requests to https:// URLs verify the
 * server with dir/ca.crt and present dir/client.crt (call it from the
 * main thread before starting a TLS etcd). An etcd started with
 * "--cert-file" among its extra_args listens on https://.
 */
void etcdh_use_pki(const char *dir);

/* Print the last lines of etcd's log to f (for failed tests). */
void etcdh_log_tail(etcdh *h, FILE *f, int lines);

/* Stop etcd if running, remove the temporary directory, free. NULL ok. */
void etcdh_destroy(etcdh *h);
/* Free the handle only, leaving etcd and its directory alone. */
void etcdh_detach(etcdh *h);

/*
 * A cluster of n (1..5) members on free loopback ports, their files in one
 * temporary directory, started together and each waited for until
 * healthy (so a leader exists on return). extra_args: NULL-terminated
 * etcd flags given to every member, or NULL. Returns 0, ETCDH_SKIP or -1
 * as etcdh_start().
 */
int etcdh_cluster_start(etcdh_cluster **out, int n, const char *const *extra_args);
/*
 * Member i (0-based; NULL if out of range). stop, kill, restart, pause,
 * resume, wait_healthy, endpoint and the raw operations work on it; it
 * belongs to the cluster (never etcdh_destroy() it). Its etcdh_dir() is
 * its own subdirectory.
 */
etcdh *etcdh_cluster_member(etcdh_cluster *cl, int i);
int etcdh_cluster_size(etcdh_cluster *cl);
/* "http://127.0.0.1:A/,http://127.0.0.1:B/,..." in member order (the
 * form the library's registry URI takes). */
const char *etcdh_cluster_endpoints(etcdh_cluster *cl);
/* Index of the current leader as seen by the members that answer
 * (/v3/maintenance/status; paused and stopped members are not asked),
 * -1 if none of them is the leader. */
int etcdh_cluster_leader(etcdh_cluster *cl);
/* Stop every member (by PID), remove the directory, free. NULL ok. */
void etcdh_cluster_destroy(etcdh_cluster *cl);

/*
 * v3 auth through the JSON gateway: create user root with root_password,
 * grant it role root, enable auth. From then on the harness's own
 * requests (put, get, count, revoke, ...) authenticate as root on this
 * handle and on every member of its cluster, logging in again when the
 * token expires. 0/-1.
 */
int etcdh_enable_auth(etcdh *h, const char *root_password);
/*
 * A role named user with readwrite on [prefix, prefix_end), and the user
 * (password) granted it. Works before or after etcdh_enable_auth();
 * root_password is used if auth was enabled by someone else. 0/-1.
 */
int etcdh_add_user(etcdh *h, const char *root_password, const char *user, const char *password, const char *prefix);

/* CLUSTER_TEST_TIMEOUT_MULTIPLIER as a float (default 1, never < 1). */
double etcdh_timeout_mult(void);

/* Monotonic clock in seconds. */
double etcdh_now(void);

/*
 * A TCP forwarder on a free loopback port in front of etcd, run by its own
 * thread. cut: close every live connection and reset new ones until
 * restore (the client sees the registry drop out while etcd itself keeps
 * running and accepting changes from others).
 */
int etcdh_proxy_start(etcdh *h, etcdh_proxy **out);
const char *etcdh_proxy_endpoint(etcdh_proxy *p);
void etcdh_proxy_cut(etcdh_proxy *p);
void etcdh_proxy_restore(etcdh_proxy *p);
/*
 * hold: from now on, each new connection's first answer from etcd (a TLS
 * server's handshake) is held back ms milliseconds; 0 ends it.
 */
void etcdh_proxy_hold(etcdh_proxy *p, int ms);
/* Connections accepted and forwarded so far. */
unsigned long etcdh_proxy_accepted(etcdh_proxy *p);
void etcdh_proxy_stop(etcdh_proxy *p);

#endif /*!ETCDHARNESS_H_*/
