/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging: every message goes through the cluster's logger callback. With
 * no logger the library stays quiet except for LOG_CRIT and worse, which
 * go to stderr as one write so lines from several threads never mix.
 */
#include "cluster-int.h"

#include <stdio.h>

static void
fallback_logger(int priority, const char *format, va_list ap)
{
	char buf[1024];
	int n;

	if(priority > LOG_CRIT)
	{
		return;
	}
	n = snprintf(buf, sizeof(buf), "libcluster<%d>: ", priority);
	if(n < 0 || (size_t) n >= sizeof(buf))
	{
		return;
	}
	vsnprintf(buf + n, sizeof(buf) - (size_t) n, format, ap);
	fputs(buf, stderr);
}

void
cluster__vlog(CLUSTER *cluster, int priority, const char *format, va_list ap)
{
	CLUSTERLOGGER logger = NULL;

	if(cluster)
	{
		pthread_mutex_lock(&cluster->lock);
		logger = cluster->logger;
		pthread_mutex_unlock(&cluster->lock);
	}
	/* the logger runs unlocked: it may take its time or log from any thread */
	(logger ? logger : fallback_logger)(priority, format, ap);
}

void
cluster__log(CLUSTER *cluster, int priority, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	cluster__vlog(cluster, priority, format, ap);
	va_end(ap);
}

int
cluster__verbose(CLUSTER *cluster)
{
	int v;

	pthread_mutex_lock(&cluster->lock);
	v = cluster->verbose;
	pthread_mutex_unlock(&cluster->lock);
	return v;
}
