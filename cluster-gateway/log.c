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
	char buf[1024];
	size_t len;

	if(priority >= LOG_DEBUG && !verbose)
	{
		return;
	}
	vsnprintf(buf, sizeof(buf), format, ap);
	len = strlen(buf);
	fprintf(stderr, "libcluster<%d>: %s%s", priority, buf, (len && buf[len - 1] == '\n') ? "" : "\n");
}

static int
plain_byte(unsigned char ch)
{
	return ch >= 0x20 && ch < 0x7f && ch != '\\';
}

/* Request paths and option values are untrusted: quoted by libcluster's
 * rule (its own escaper is internal), so a request cannot forge a log
 * line or reach a terminal as an escape sequence. */
const char *
gw_escape(char *out, size_t outsz, const char *in)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, total = 0, reserve, i;

	if(!outsz)
	{
		return out;
	}
	for(i = 0; in[i]; i++)
	{
		total += plain_byte((unsigned char) in[i]) ? 1 : 4;
	}
	/* cut only when the whole does not fit, and then say so with "..." */
	reserve = total < outsz ? 0 : 3;
	for(i = 0; in[i]; i++)
	{
		unsigned char ch = (unsigned char) in[i];
		size_t unit = plain_byte(ch) ? 1 : 4;

		if(o + unit + reserve >= outsz)
		{
			break;
		}
		if(unit == 1)
		{
			out[o++] = (char) ch;
		}
		else
		{
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 0x0f];
		}
	}
	for(i = 0; reserve && i < 3 && o + 1 < outsz; i++)
	{
		out[o++] = '.';
	}
	out[o] = 0;
	return out;
}
