/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway: messages. The library logs from its own threads while
 * the loop thread logs requests, so every line is formatted first and
 * written with one stdio call: lines never interleave.
 */
#include "gateway.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

/* -v: set once by the main thread before any other thread exists. */
static int verbose;

void
gw_set_verbose(int on)
{
	verbose = on;
}

long long
gw_now_ms(void)
{
	struct timespec ts;

	if(clock_gettime(CLOCK_MONOTONIC, &ts))
	{
		return 0;
	}
	return (long long) ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Our own messages follow syslog priorities as the library's do, so that
 * request lines (LOG_DEBUG) stay quiet unless -v asked for them. */
void
gw_log(int priority, const char *format, ...)
{
	char buf[1024];
	va_list ap;

	if(priority >= LOG_DEBUG && !verbose)
	{
		return;
	}
	va_start(ap, format);
	vsnprintf(buf, sizeof(buf), format, ap);
	va_end(ap);
	fprintf(stderr, GW_NAME ": %s\n", buf);
}

/* "libcluster<PRIO>: " + the message, cluster-test's format, so that the
 * same tools read both programs' logs. Debug lines only with -v: a
 * daemon's log should hold what an operator acts on. */
void
gw_library_logger(int priority, const char *format, va_list ap)
{
	if(priority >= LOG_DEBUG && !verbose)
	{
		return;
	}
	cli_library_line(priority, format, ap);
}
