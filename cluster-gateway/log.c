/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway: messages (and sockets' addresses as text). The library logs from its own threads while
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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

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

int
gw_log_on(int priority)
{
	return priority < LOG_DEBUG || verbose;
}

/* Our own messages follow syslog priorities as the library's do, so that
 * request lines (LOG_DEBUG) stay quiet unless -v asked for them. */
void
gw_log(int priority, const char *format, ...)
{
	char buf[1024];
	va_list ap;

	if(!gw_log_on(priority))
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

/* The address a socket is bound to, read back from the kernel (with port
 * 0 only it knows the port): "HOST:PORT", or "[HOST]:PORT" for IPv6. */
int
gw_socket_address(int fd, char *out, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN];

	if(getsockname(fd, (struct sockaddr *) &ss, &len))
	{
		return -1;
	}
	if(ss.ss_family == AF_INET6)
	{
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *) &ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, size, "[%s]:%u", host, (unsigned) ntohs(s6->sin6_port));
	}
	else
	{
		const struct sockaddr_in *s4 = (const struct sockaddr_in *) &ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%u", host, (unsigned) ntohs(s4->sin_port));
	}
	return 0;
}
