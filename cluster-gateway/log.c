/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway: messages (and sockets' addresses as text). The library logs from its own threads while
 * the loop thread logs requests, so every line is formatted first and
 * written with one stdio call: lines never interleave.
 */
#include "gateway.h"

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

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

/* Bind host:port and listen, for the server named what ("HTTP", "TCP");
 * accepted sockets go to cb (non-blocking, close-on-exec). The listener,
 * or NULL after saying why. */
struct evconnlistener *
gw_listen(struct gw *gw, const char *what, const char *host, int port, evconnlistener_cb cb)
{
	struct evutil_addrinfo hints, *ai = NULL;
	struct evconnlistener *l;
	char portstr[8], shown[CLI_SHOWN_SIZE];
	int r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE;
	snprintf(portstr, sizeof(portstr), "%d", port);
	r = evutil_getaddrinfo(host, portstr, &hints, &ai);
	if(r)
	{
		gw_log(LOG_ERR, "cannot listen for %s on %s port %d: %s", what, cli_escape(shown, sizeof(shown), host), port, evutil_gai_strerror(r));
		return NULL;
	}
	l = evconnlistener_new_bind(gw->base, cb, gw, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 1024, ai->ai_addr,
		(int) ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if(!l)
	{
		gw_log(LOG_ERR, "cannot listen for %s on %s port %d: %s", what, cli_escape(shown, sizeof(shown), host), port, strerror(errno));
	}
	return l;
}

/* How long accepting pauses after accept() failed. */
#define ACCEPT_PAUSE_MS 100

/* accept() failed (out of descriptors or memory): stop accepting for
 * ACCEPT_PAUSE_MS, until resume (a timer) fires, rather than spin. */
void
gw_accept_pause(struct evconnlistener *listener, struct event *resume, const char *what)
{
	struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
	int err = EVUTIL_SOCKET_ERROR();

	gw_log(LOG_WARNING, "cannot accept a new %s client: %s (pausing %d ms)", what, evutil_socket_error_to_string(err), ACCEPT_PAUSE_MS);
	evconnlistener_disable(listener);
	evtimer_add(resume, &tv);
}
