/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared parts of the etcd benchmarks: a pool of in-process members whose
 * balancer callbacks are tracked (so the benchmark can wait until every
 * member reports a given total), percentiles, and /proc readings.
 */
#ifndef BENCHLIB_H_
#define BENCHLIB_H_ 1

#include <stdarg.h>
#include <stddef.h>
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

/* Quiet logger (only LOG_ERR and worse) for the benchmarks. */
void bl_logger(int priority, const char *format, va_list ap);

#endif /*!BENCHLIB_H_*/
