/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Scripted HTTP server for the hostile-response tests (see fakehttp.h).
 * One thread, one connection at a time; stop() wakes it through a pipe.
 * The routed variant gives each connection its own thread (joined by
 * stop()) and picks the reply by the request line.
 */
#ifdef HAVE_CONFIG_H
# include "config.h"
#endif
#include "fakehttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct fakehttp
{
	const fakehttp_reply *script;
	size_t n;
	int lfd;
	int stop_pipe[2];
	int port;
	char url[64];
	pthread_t thread;
	pthread_mutex_t m;
	unsigned requests;
	unsigned accepted; /* connections */
	char last[8192];
	char *all; /* every request, concatenated (bounded) */
	size_t all_len;
	/* routed mode only */
	const fakehttp_route *routes;
	size_t n_routes;
	unsigned *route_count; /* requests answered per route */
	char **route_last;     /* last request per route */
	pthread_t *conns;      /* connection threads, joined by stop() */
	size_t n_conns, cap_conns;
};

#define ROUTE_LAST_MAX 8192

static const fakehttp_reply not_found = { "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, 0, 0, 0, 0 };

/* Wait for fd to be readable (or the stop pipe); 0 ready, -1 stop/timeout. */
static int
wait_fd(fakehttp *f, int fd, int timeout_ms)
{
	struct pollfd p[2];

	p[0].fd = fd;
	p[0].events = POLLIN;
	p[1].fd = f->stop_pipe[0];
	p[1].events = POLLIN;
	if(poll(p, 2, timeout_ms) <= 0 || (p[1].revents & POLLIN))
	{
		return -1;
	}
	return 0;
}

static void
free_routes(fakehttp *f)
{
	size_t i;

	for(i = 0; f->route_last && i < f->n_routes; i++)
	{
		free(f->route_last[i]);
	}
	free(f->route_last);
	free(f->route_count);
	f->route_last = NULL;
	f->route_count = NULL;
}

/* What a duplex client sends after its first chunk, or a request:
 * searchable with fakehttp_seen(). */
static void
record_more(fakehttp *f, const char *data, size_t len)
{
	pthread_mutex_lock(&f->m);
	if(f->all_len + len < (1u << 20))
	{
		char *p = realloc(f->all, f->all_len + len + 1);

		if(p)
		{
			f->all = p;
			memcpy(f->all + f->all_len, data, len);
			f->all_len += len;
			f->all[f->all_len] = 0;
		}
	}
	pthread_mutex_unlock(&f->m);
}

static void
record(fakehttp *f, const char *req, size_t len)
{
	pthread_mutex_lock(&f->m);
	f->requests++;
	snprintf(f->last, sizeof(f->last), "%.*s", (int) len, req);
	pthread_mutex_unlock(&f->m);
	record_more(f, req, len);
}

/* A chunked body (a duplex stream: etcd watch with heartbeats) holds a
 * complete first chunk: its data is moved right after the head, so the
 * request reads like an ordinary one. Returns non-zero when complete. */
static int
first_chunk(char *buf, size_t *len, char *body)
{
	char *crlf = strstr(body, "\r\n");
	size_t n, hdr;

	if(!crlf)
	{
		return 0;
	}
	n = strtoul(body, NULL, 16);
	hdr = (size_t) (crlf + 2 - body);
	if((size_t) (body - buf) + hdr + n > *len)
	{
		return 0;
	}
	memmove(body, crlf + 2, n);
	*len = (size_t) (body - buf) + n;
	buf[*len] = 0;
	return 1;
}

/* Read one request (head + Content-Length body, or the first chunk of a
 * chunked body); -1 on EOF/stop, 1 for a chunked (duplex) request, else
 * 0. A copy (truncated, NUL-terminated) goes to out when it is not NULL. */
static int
read_request(fakehttp *f, int fd, char *out, size_t outsz)
{
	char buf[65536];
	size_t len = 0;
	char *end = NULL;
	long clen = 0;
	int chunked = 0;

	for(;;)
	{
		ssize_t r;

		if(wait_fd(f, fd, 30000))
		{
			return -1;
		}
		r = read(fd, buf + len, sizeof(buf) - 1 - len);
		if(r <= 0)
		{
			return -1;
		}
		len += (size_t) r;
		buf[len] = 0;
		if(!end && (end = strstr(buf, "\r\n\r\n")))
		{
			char *cl = strcasestr(buf, "\r\nContent-Length:");

			char *te = strcasestr(buf, "\r\nTransfer-Encoding: chunked");
			char *ex = strcasestr(buf, "\r\nExpect: 100-continue");

			if(cl && cl < end)
			{
				clen = strtol(cl + 17, NULL, 10);
			}
			chunked = te && te < end;
			if(ex && ex < end && send(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25, MSG_NOSIGNAL) != 25)
			{
				return -1;
			}
		}
		if(end && chunked && first_chunk(buf, &len, end + 4))
		{
			break;
		}
		if(end && !chunked && len >= (size_t) (end + 4 - buf) + (size_t) clen)
		{
			break;
		}
		if(len >= sizeof(buf) - 1)
		{
			break;
		}
	}
	record(f, buf, len);
	if(out && outsz)
	{
		snprintf(out, outsz, "%.*s", (int) len, buf);
	}
	return chunked;
}

/* Until the client closes the connection (or ms have passed, never if
 * negative, or the server stops), read and drop what it sends: a duplex client keeps
 * sending heartbeats, which must neither end a hang nor be taken for a
 * request. */
static int64_t
fh_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
drain(fakehttp *f, int fd, int ms)
{
	int64_t end = fh_now_ms() + ms;

	for(;;)
	{
		struct pollfd p[2];
		char sink[4096];
		ssize_t n;
		int64_t left = ms < 0 ? -1 : end - fh_now_ms();

		if(ms >= 0 && left <= 0)
		{
			return;
		}
		p[0].fd = fd;
		p[0].events = POLLIN;
		p[1].fd = f->stop_pipe[0];
		p[1].events = POLLIN;
		if(poll(p, 2, (int) left) <= 0 || (p[1].revents & POLLIN))
		{
			return;
		}
		if((n = read(fd, sink, sizeof(sink))) <= 0)
		{
			return;
		}
		record_more(f, sink, (size_t) n);
	}
}

static void
pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Send one reply; returns non-zero if the connection must be closed.
 * duplex: the request was a duplex stream (its heartbeats are drained
 * during a hang; any other request's next bytes end the hang). */
static int
send_reply(fakehttp *f, int fd, const fakehttp_reply *rp, int duplex)
{
	size_t len = rp->len ? rp->len : strlen(rp->raw);
	size_t off = 0;

	while(off < len)
	{
		size_t n = rp->slice ? rp->slice : len - off;
		ssize_t w;

		if(n > len - off)
		{
			n = len - off;
		}
		w = send(fd, rp->raw + off, n, MSG_NOSIGNAL);
		if(w <= 0)
		{
			return 1;
		}
		off += (size_t) w;
		if(rp->slice && rp->slice_pause_ms && off < len)
		{
			pause_ms(rp->slice_pause_ms);
		}
	}
	if(rp->hang_ms)
	{
		/* keep the socket open; a client closing it ends the hang */
		struct pollfd p[2];

		if(duplex)
		{
			drain(f, fd, rp->hang_ms);
			return 1;
		}
		p[0].fd = fd;
		p[0].events = POLLIN;
		p[1].fd = f->stop_pipe[0];
		p[1].events = POLLIN;
		poll(p, 2, rp->hang_ms);
		return 1;
	}
	return rp->close;
}

/* Routed mode: the reply for one request, by its request line. */
static const fakehttp_reply *
route_reply(fakehttp *f, const char *req)
{
	const fakehttp_reply *rp = &not_found;
	size_t i;

	pthread_mutex_lock(&f->m);
	for(i = 0; i < f->n_routes; i++)
	{
		const fakehttp_route *rt = &f->routes[i];

		if(!strncmp(req, rt->match, strlen(rt->match)))
		{
			unsigned k = f->route_count[i]++;

			rp = &rt->script[k < rt->n ? k : rt->n - 1];
			snprintf(f->route_last[i], ROUTE_LAST_MAX, "%s", req);
			break;
		}
	}
	pthread_mutex_unlock(&f->m);
	return rp;
}

typedef struct conn_arg conn_arg;
struct conn_arg
{
	fakehttp *f;
	int fd;
};

/* Routed mode: serve one connection until it closes or the server stops. */
static void *
conn_main(void *arg)
{
	conn_arg *ca = arg;
	fakehttp *f = ca->f;
	int fd = ca->fd;
	char *req = malloc(ROUTE_LAST_MAX);

	free(ca);
	while(req)
	{
		int k = read_request(f, fd, req, ROUTE_LAST_MAX);

		if(k < 0 || send_reply(f, fd, route_reply(f, req), k))
		{
			break;
		}
		if(k)
		{
			/* a duplex request owns its connection until the client goes */
			drain(f, fd, 30000);
			break;
		}
	}
	free(req);
	close(fd);
	return NULL;
}

/* Routed mode: hand each accepted connection to a thread of its own. */
static void
spawn_conn(fakehttp *f, int fd)
{
	conn_arg *ca = malloc(sizeof(*ca));
	int ok = 0;

	pthread_mutex_lock(&f->m);
	if(ca && f->n_conns == f->cap_conns)
	{
		size_t cap = f->cap_conns ? f->cap_conns * 2 : 16;
		pthread_t *p = realloc(f->conns, cap * sizeof(*p));

		if(p)
		{
			f->conns = p;
			f->cap_conns = cap;
		}
	}
	if(ca && f->n_conns < f->cap_conns)
	{
		ca->f = f;
		ca->fd = fd;
		if(!pthread_create(&f->conns[f->n_conns], NULL, conn_main, ca))
		{
			f->n_conns++;
			ok = 1;
		}
	}
	pthread_mutex_unlock(&f->m);
	if(!ok)
	{
		free(ca);
		close(fd);
	}
}

static void *
serve(void *arg)
{
	fakehttp *f = arg;
	size_t next = 0;

	for(;;)
	{
		int fd;

		if(wait_fd(f, f->lfd, -1))
		{
			break;
		}
		fd = accept(f->lfd, NULL, NULL);
		if(fd < 0)
		{
			continue;
		}
		pthread_mutex_lock(&f->m);
		f->accepted++;
		pthread_mutex_unlock(&f->m);
		if(f->routes)
		{
			spawn_conn(f, fd);
			continue;
		}
		for(;;)
		{
			const fakehttp_reply *rp;
			int k = read_request(f, fd, NULL, 0);

			if(k < 0)
			{
				break;
			}
			rp = &f->script[next < f->n ? next : f->n - 1];
			next++;
			if(send_reply(f, fd, rp, k))
			{
				break;
			}
			if(k)
			{
				drain(f, fd, 30000);
				break;
			}
		}
		close(fd);
	}
	return NULL;
}

/* Common start: routes is NULL for the single-script server. */
static fakehttp *
start(const fakehttp_reply *script, size_t n, const fakehttp_route *routes, size_t n_routes)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	fakehttp *f = calloc(1, sizeof(*f));
	int one = 1;

	if(!f)
	{
		return NULL;
	}
	f->script = script;
	f->n = n;
	if(routes)
	{
		size_t i;

		f->routes = routes;
		f->n_routes = n_routes;
		f->route_count = calloc(n_routes ? n_routes : 1, sizeof(*f->route_count));
		f->route_last = calloc(n_routes ? n_routes : 1, sizeof(*f->route_last));
		for(i = 0; f->route_last && i < n_routes; i++)
		{
			f->route_last[i] = calloc(1, ROUTE_LAST_MAX);
			if(!f->route_last[i])
			{
				break;
			}
		}
		if(!f->route_count || !f->route_last || i < n_routes)
		{
			free_routes(f);
			free(f);
			return NULL;
		}
	}
	pthread_mutex_init(&f->m, NULL);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if(f->lfd < 0 || bind(f->lfd, (struct sockaddr *) &sa, sizeof(sa)) || listen(f->lfd, 16) ||
		getsockname(f->lfd, (struct sockaddr *) &sa, &sl) || pipe(f->stop_pipe))
	{
		if(f->lfd >= 0)
		{
			close(f->lfd);
		}
		free_routes(f);
		free(f);
		return NULL;
	}
	f->port = ntohs(sa.sin_port);
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", f->port);
	if(pthread_create(&f->thread, NULL, serve, f))
	{
		close(f->lfd);
		close(f->stop_pipe[0]);
		close(f->stop_pipe[1]);
		free_routes(f);
		free(f);
		return NULL;
	}
	return f;
}

fakehttp *
fakehttp_start(const fakehttp_reply *script, size_t n)
{
	return start(script, n, NULL, 0);
}

fakehttp *
fakehttp_start_routes(const fakehttp_route *routes, size_t n)
{
	return start(NULL, 0, routes, n);
}

/* Index of the route whose match is exactly match, or n_routes. */
static size_t
route_index(fakehttp *f, const char *match)
{
	size_t i;

	for(i = 0; i < f->n_routes && strcmp(f->routes[i].match, match); i++)
	{
	}
	return i;
}

unsigned
fakehttp_route_requests(fakehttp *f, const char *match)
{
	unsigned n = 0;
	size_t i;

	pthread_mutex_lock(&f->m);
	i = route_index(f, match);
	if(i < f->n_routes)
	{
		n = f->route_count[i];
	}
	pthread_mutex_unlock(&f->m);
	return n;
}

void
fakehttp_route_last(fakehttp *f, const char *match, char *buf, size_t size)
{
	size_t i;

	pthread_mutex_lock(&f->m);
	i = route_index(f, match);
	snprintf(buf, size, "%s", i < f->n_routes ? f->route_last[i] : "");
	pthread_mutex_unlock(&f->m);
}

int
fakehttp_port(fakehttp *f)
{
	return f->port;
}

const char *
fakehttp_url(fakehttp *f)
{
	return f->url;
}

unsigned
fakehttp_accepted(fakehttp *f)
{
	unsigned n;

	pthread_mutex_lock(&f->m);
	n = f->accepted;
	pthread_mutex_unlock(&f->m);
	return n;
}

unsigned
fakehttp_requests(fakehttp *f)
{
	unsigned n;

	pthread_mutex_lock(&f->m);
	n = f->requests;
	pthread_mutex_unlock(&f->m);
	return n;
}

void
fakehttp_last_request(fakehttp *f, char *buf, size_t size)
{
	pthread_mutex_lock(&f->m);
	snprintf(buf, size, "%s", f->last);
	pthread_mutex_unlock(&f->m);
}

int
fakehttp_seen(fakehttp *f, const char *needle)
{
	int r;

	pthread_mutex_lock(&f->m);
	r = f->all && strstr(f->all, needle) != NULL;
	pthread_mutex_unlock(&f->m);
	return r;
}

void
fakehttp_stop(fakehttp *f)
{
	size_t i;

	if(!f)
	{
		return;
	}
	if(write(f->stop_pipe[1], "x", 1) != 1)
	{
		/* the thread then only stops at its next timeout */
	}
	pthread_join(f->thread, NULL);
	/* the accept loop is gone: the list of connection threads is final */
	for(i = 0; i < f->n_conns; i++)
	{
		pthread_join(f->conns[i], NULL);
	}
	free(f->conns);
	free_routes(f);
	close(f->lfd);
	close(f->stop_pipe[0]);
	close(f->stop_pipe[1]);
	pthread_mutex_destroy(&f->m);
	free(f->all);
	free(f);
}
