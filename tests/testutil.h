/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by the API tests: a logger that records what the
 * library said, a balancer callback that records what it reported, and
 * the timeout multiplier. Header-only (static inline, so a program may
 * use any subset) so each test program stays self-contained.
 */
#ifndef CLUSTER_TESTUTIL_H_
#define CLUSTER_TESTUTIL_H_ 1

#ifdef HAVE_CONFIG_H
# include "config.h"
#endif
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libcluster.h>

/* CLUSTER_TEST_TIMEOUT_MULTIPLIER as a float: default 1, never below 1
 * (slow runs stretch every timeout; nothing shrinks them). The same rule
 * as the etcd harness's etcdh_timeout_mult(). */
static inline double
tu_timeout_mult(void)
{
	const char *s = getenv("CLUSTER_TEST_TIMEOUT_MULTIPLIER");
	double m = s ? atof(s) : 1.0;

	return m < 1.0 ? 1.0 : m;
}

/* ms stretched by the multiplier. */
static inline int
tu_scaled_ms(int ms)
{
	return (int) (ms * tu_timeout_mult());
}

static pthread_mutex_t tu_lock = PTHREAD_MUTEX_INITIALIZER;
static char tu_log[65536];
static size_t tu_log_len;
static int tu_calls;
static CLUSTERSTATE tu_last;

static inline void
tu_logger(int priority, const char *format, va_list ap)
{
	char line[1024];
	int n;

	n = snprintf(line, sizeof(line), "<%d>", priority);
	vsnprintf(line + n, sizeof(line) - (size_t) n, format, ap);
	pthread_mutex_lock(&tu_lock);
	n = snprintf(tu_log + tu_log_len, sizeof(tu_log) - tu_log_len, "%s", line);
	if(n > 0 && tu_log_len + (size_t) n < sizeof(tu_log))
	{
		tu_log_len += (size_t) n;
	}
	pthread_mutex_unlock(&tu_lock);
}

static inline void
tu_log_clear(void)
{
	pthread_mutex_lock(&tu_lock);
	tu_log[0] = 0;
	tu_log_len = 0;
	pthread_mutex_unlock(&tu_lock);
}

/* Non-zero if some logged text contains needle. */
static inline int
tu_logged(const char *needle)
{
	int r;

	pthread_mutex_lock(&tu_lock);
	r = strstr(tu_log, needle) != NULL;
	pthread_mutex_unlock(&tu_lock);
	if(!r)
	{
		fprintf(stderr, "# log does not contain '%s'; log was:\n%s", needle, tu_log);
	}
	return r;
}

static inline int
tu_balancer(CLUSTER *cluster, CLUSTERSTATE *state)
{
	(void) cluster;
	pthread_mutex_lock(&tu_lock);
	tu_calls++;
	tu_last = *state;
	pthread_mutex_unlock(&tu_lock);
	return 0;
}

static inline void
tu_reset(void)
{
	tu_log_clear();
	pthread_mutex_lock(&tu_lock);
	tu_calls = 0;
	memset(&tu_last, 0, sizeof(tu_last));
	pthread_mutex_unlock(&tu_lock);
}

/* A cluster with the recording logger and balancer installed. */
static inline CLUSTER *
tu_cluster(const char *key)
{
	CLUSTER *c = cluster_create(key);

	if(c)
	{
		cluster_set_logger(c, tu_logger);
		cluster_set_balancer(c, tu_balancer);
	}
	return c;
}

#endif /*!CLUSTER_TESTUTIL_H_*/
