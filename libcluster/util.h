/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: services any part of the library may use (logging, the
 * monotonic clock, condition variables on it, random ids, quoting input
 * in log lines). Engines and parsers include this, never cluster-int.h.
 */
#ifndef CLUSTER_UTIL_H_
#define CLUSTER_UTIL_H_ 1

#ifdef HAVE_CONFIG_H
# include "config.h"
#endif

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>
#include <time.h>
#include "libcluster.h"

#if defined(__GNUC__)
# define CLUSTER__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
# define CLUSTER__PRINTF(f, a)
#endif

/* The longest a connect may take (ms); a request gets at most half of its
 * own limit for it. */
#define CLUSTER_CONNECT_TIMEOUT_MS 1000
/* The engines' share of cluster_leave() (stop threads, deregister), so
 * that the call returns within a second whatever the registry does; the
 * rest is margin for the final callback and a loaded machine. */
#define CLUSTER_LEAVE_BUDGET_MS 700

/* --- logging (log.c) ------------------------------------------------ */

/* Log through the cluster's logger (cluster may be NULL: the built-in
 * one); adds nothing, the caller writes the "libcluster: " prefix. Safe
 * from any thread. */
void cluster__log(CLUSTER *cluster, int priority, const char *format, ...) CLUSTER__PRINTF(3, 4);
void cluster__vlog(CLUSTER *cluster, int priority, const char *format, va_list ap);
/* Non-zero if verbose logging is on. */
int cluster__verbose(CLUSTER *cluster);

/* --- time and waiting (util.c) -------------------------------------- */

/* Monotonic milliseconds. */
int64_t cluster__now_ms(void);

/* Library threads wait on condition variables with timeouts on the
 * monotonic clock, so that a wall-clock step neither wakes nor stalls
 * them: initialise them with cluster__cond_init() and compute timeouts
 * with cluster__deadline() (ms from now; negative counts as 0). */
void cluster__cond_init(pthread_cond_t *cond);
void cluster__deadline(struct timespec *ts, int64_t ms);

/* A fresh random instance id: 32 lower-case hex digits, like a UUID
 * without dashes (the original's format). 0 or EIO. */
int cluster__random_id(char out[33]);

/* Grow *buf (capacity *cap) to hold need bytes, doubling from first.
 * Returns 0 or ENOMEM (the buffer is left as it was). */
int cluster__reserve(char **buf, size_t *cap, size_t need, size_t first);

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
#define CLUSTER__ESCAPE_SIZE(n) (4 * (n) + 1)

/*
 * A registry URI (NULL: "(null)"; at most its first 200 bytes) for a log
 * line, escaped as cluster__escape() does, with the user information of
 * every element ("user:password@" after "://", up to the host) shown as
 * "***@": a password must never reach a log. out holds
 * CLUSTER__ESCAPE_SIZE(200) bytes. Returns out. Pure.
 */
const char *cluster__escape_uri(char out[CLUSTER__ESCAPE_SIZE(200)], const char *uri);

#endif /*!CLUSTER_UTIL_H_*/
