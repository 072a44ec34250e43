/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared parts of the etcd benchmarks: a pool of in-process members whose
 * balancer callbacks are tracked (so the benchmark can wait until every
 * member reports a given total), percentiles, and /proc readings.
 */
#ifndef BENCHLIB_H_
#define BENCHLIB_H_ 1

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>
#include <curl/curl.h>
#include <libcluster.h>

/* A member of the pool. */
typedef struct bl_member bl_member;
struct bl_member
{
	CLUSTER *c;
	int slot;
	int total; /* last total reported (under the pool lock) */
	int index;
	long calls;
};

/* Create a member (not joined) in the pool; NULL on error (printed). */
bl_member *bl_member_new(const char *key, const char *id, int workers, const char *registry, int ttl);
void bl_member_free(bl_member *m);

/*
 * Expect total from every member in the given set from now on: returns
 * the number that already report it. Then bl_wait_target() blocks until
 * all of them do (or the timeout passes) and returns the monotonic time
 * (seconds) at which the last one reported it, or -1 on timeout.
 */
void bl_set_target(bl_member **set, size_t n, int total);
double bl_wait_target(double timeout);

/* Sum of all members' callback counts. */
long bl_total_calls(void);

/* Monotonic seconds. */
double bl_now(void);

/* q-quantile (0..1) of v[0..n) (sorted in place), nearest rank. */
double bl_quantile(double *v, size_t n, double q);

/* The cluster sizes to measure: the numbers in args[0..nargs) (at most
 * max), or the defaults (a 0-terminated list) when none are given.
 * Returns how many were stored in ns. */
int bl_sizes(char **args, int nargs, int *ns, int max, const int *defaults);

/* VmRSS (kB) and Threads of this process from /proc/self/status. */
long bl_rss_kb(void);
int bl_threads(void);
/* Heap bytes in use in every malloc arena, in kB (glibc's mallinfo2; 0
 * where it is missing): what is allocated, where RSS also counts what
 * the heap holds free. */
double bl_heap_kb(void);

/* Quiet logger (only LOG_ERR and worse) for the benchmarks. */
void bl_logger(int priority, const char *format, va_list ap);

/*
 * Raw etcd watchers, the yardstick for the library's fan-out: watchers
 * long-lived /v3/watch streams over libcurl (one thread each) on the
 * prefix /bench-bare/. bl_bare_start() returns once every stream is
 * created (NULL on failure, printed). bl_bare_latency() does samples
 * puts (after 5 unrecorded warm-up puts) and stores, in ms, the time from
 * starting each put until the last watcher has its event (out) and the
 * put's round trip (rtt_out); returns the sample count.
 */
typedef struct bl_bare bl_bare;
bl_bare *bl_bare_start(const char *endpoint, int watchers);
size_t bl_bare_latency(bl_bare *b, int samples, double *out, double *rtt_out);
/* The same watchers' fan-out of the registry writes a member makes: for
 * each sample a lease grant then a put of /bench-bare/m under it, timed
 * from the grant until the last watcher has the put (join_out, ms), and
 * 10 ms later a revoke of that lease, timed until the last watcher has
 * the delete (leave_out). 5 unrecorded warm-up rounds; returns the
 * sample count of each. */
size_t bl_bare_membership(bl_bare *b, int ttl, int samples, double *join_out, double *leave_out);
void bl_bare_stop(bl_bare *b);

/*
 * The etcd-cost yardstick of issue 13: n leases of ttl seconds, each kept
 * alive by one POST /v3/lease/keepalive per TTL/3 (lease j at phase j / n
 * of the period) from min(n, 8) threads, each on one warm connection:
 * what one member cost etcd before the keepalive stream. bl_yard_start()
 * grants the leases and starts the threads (NULL on failure, printed);
 * bl_yard_stop() stops and joins them, revokes nothing, frees, and
 * returns the POSTs made.
 */
typedef struct bl_yard bl_yard;
bl_yard *bl_yard_start(const char *endpoint, int n, int ttl);
long bl_yard_stop(bl_yard *y);

/* pthread_cond_timedwait() for seconds from now; non-zero on timeout. */
int bl_cond_wait_for(pthread_cond_t *cond, pthread_mutex_t *lock, double seconds);
/* Sleep (restarted on EINTR). */
void bl_sleep(double seconds);

/* CPU seconds (user + system) used so far: this process (getrusage),
 * another process (/proc/PID/stat; -1 on error). */
double bl_self_cpu(void);
double bl_pid_cpu(pid_t pid);

/* Raise RLIMIT_NOFILE to its hard limit; returns the new soft limit. */
long bl_raise_nofile(void);

/* Client-side TCP sockets to port on this host (/proc/net/tcp, tcp6):
 * the number ESTABLISHED, and the set of their local ports in any state
 * (seen[65536] set to 1 per port; TIME_WAIT included, so connections
 * opened and closed meanwhile still show). */
int bl_tcp_established(int port);
void bl_tcp_ports(int port, unsigned char *seen);

/* A POST handle to endpoint + path (endpoint ends in '/') with the
 * benches' raw-request settings: no signals, no proxy, TCP_NODELAY, the
 * headers hdr (kept by the caller until cleanup), a timeout unless
 * timeout_ms is 0, and the answer discarded unless the caller installs a
 * writer. NULL if libcurl cannot make one. */
CURL *bl_curl_post(const char *endpoint, const char *path, struct curl_slist *hdr, long timeout_ms);

#endif /*!BENCHLIB_H_*/
