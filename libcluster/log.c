/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging: every message goes through the cluster's logger callback (the
 * extended one, with the handle and the formatted text, when installed).
 * With no logger the library stays quiet except for LOG_CRIT and worse,
 * which go to stderr as one write so lines from several threads never mix.
 *
 * Failure messages: each thread keeps, in thread-local storage, the
 * reason for its own last failed call and the handle that call was made
 * on; cluster_errmsg() reads it. Thread-local storage needs no lock and no
 * thread can see or overwrite another's message, whichever handles they
 * share.
 */
#include "cluster-int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest failure message kept (longer ones are cut). */
#define ERRMSG_MAX 1024

typedef struct errstate errstate;
struct errstate
{
	/* the public call in progress on this thread (its name) */
	const char *call;
	/* the most severe message logged during it: priority, -1 for none */
	int logged_priority;
	char logged[ERRMSG_MAX];
	/* the last failure: its handle (NULL: cluster_create() or a NULL
	 * handle), that handle's serial, and its reason */
	const CLUSTER *owner;
	unsigned long long serial;
	int has_msg;
	char msg[ERRMSG_MAX];
};

static __thread errstate err_tls = { NULL, -1, "", NULL, 0, 0, "" };

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

/* Copy text into a message buffer without its trailing newline. */
static void
copy_line(char *out, size_t size, const char *text)
{
	size_t len = strlen(text);

	if(len && text[len - 1] == '\n')
	{
		len--;
	}
	if(len >= size)
	{
		len = size - 1;
	}
	memcpy(out, text, len);
	out[len] = 0;
}

/*
 * Keep the message if it may explain a failure of the call in progress:
 * LOG_NOTICE or more severe (refusals such as "while joined" are
 * notices), and not less severe than what the call already logged, so a
 * closing notice does not hide the error before it.
 */
static void
note_logged(int priority, const char *text)
{
	if(priority > LOG_NOTICE)
	{
		return;
	}
	if(err_tls.logged_priority >= 0 && priority > err_tls.logged_priority)
	{
		return;
	}
	err_tls.logged_priority = priority;
	copy_line(err_tls.logged, sizeof(err_tls.logged), text);
}

/*
 * Format once, for the extended logger and for the failure record; the
 * classic logger still gets the format and the arguments. A message too
 * long for the stack buffer is formatted again into the heap for the
 * extended logger (the failure record keeps a prefix).
 */
void
cluster__vlog(CLUSTER *cluster, int priority, const char *format, va_list ap)
{
	CLUSTERLOGGER logger = NULL;
	CLUSTERLOGGER2 logger2 = NULL;
	void *userdata = NULL;
	char buf[1024], *text = buf, *big = NULL;
	va_list aq;
	int n;

	if(cluster)
	{
		pthread_mutex_lock(&cluster->lock);
		logger = cluster->logger;
		logger2 = cluster->logger2;
		userdata = cluster->userdata;
		pthread_mutex_unlock(&cluster->lock);
	}
	if(priority <= LOG_NOTICE || logger2)
	{
		va_copy(aq, ap);
		n = vsnprintf(buf, sizeof(buf), format, aq);
		va_end(aq);
		if(n < 0)
		{
			buf[0] = 0;
		}
		else if((size_t) n >= sizeof(buf) && logger2 && (big = malloc((size_t) n + 1)))
		{
			va_copy(aq, ap);
			vsnprintf(big, (size_t) n + 1, format, aq);
			va_end(aq);
			text = big;
		}
		note_logged(priority, text);
	}
	/* the logger runs unlocked: it may take its time or log from any thread */
	if(logger2)
	{
		size_t len = strlen(text);

		if(len && text[len - 1] == '\n')
		{
			text[len - 1] = 0;
		}
		logger2(cluster, userdata, priority, text);
	}
	else
	{
		(logger ? logger : fallback_logger)(priority, format, ap);
	}
	free(big);
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

/* ------------------------------------------------------------------ */
/* failure messages                                                     */
/* ------------------------------------------------------------------ */

void
cluster__begin(const char *name)
{
	err_tls.call = name;
	err_tls.logged_priority = -1;
	err_tls.logged[0] = 0;
}

int
cluster__enter(CLUSTER *cluster, const char *name)
{
	cluster__begin(name);
	if(!cluster)
	{
		cluster__log(NULL, LOG_ERR, "libcluster: %s(): the cluster handle is NULL\n", name);
		return cluster__fail(NULL, EINVAL);
	}
	return 0;
}

/* Make text (or, with text NULL, the generic reason) the thread's last
 * failure, on cluster. */
static void
record(CLUSTER *cluster, const char *text, int err)
{
	err_tls.owner = cluster;
	err_tls.serial = cluster ? cluster->serial : 0;
	err_tls.has_msg = 1;
	if(text)
	{
		copy_line(err_tls.msg, sizeof(err_tls.msg), text);
	}
	else
	{
		snprintf(err_tls.msg, sizeof(err_tls.msg), "libcluster: %s(): %s", err_tls.call ? err_tls.call : "call", strerror(err));
	}
}

int
cluster__fail(CLUSTER *cluster, int err)
{
	record(cluster, err_tls.logged_priority >= 0 ? err_tls.logged : NULL, err);
	errno = err;
	return -1;
}

int
cluster__fail_msg(CLUSTER *cluster, int err, const char *format, ...)
{
	char buf[ERRMSG_MAX];
	va_list ap;

	va_start(ap, format);
	vsnprintf(buf, sizeof(buf), format, ap);
	va_end(ap);
	record(cluster, buf, err);
	errno = err;
	return -1;
}

/*
 * The message belongs to one handle: another handle (or a new handle at
 * a freed one's address, told apart by its serial) sees "".
 */
const char *
cluster_errmsg(CLUSTER *cluster)
{
	if(!err_tls.has_msg || err_tls.owner != cluster || (cluster && err_tls.serial != cluster->serial))
	{
		return "";
	}
	return err_tls.msg;
}
