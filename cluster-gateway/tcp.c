/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway: the TCP proxy (--tcp, seed 002's job). Each accepted
 * client is given a member (choose.c), dialled with a timeout, and the
 * bytes are spliced both ways until either side closes. A member that
 * refuses or does not answer in time is passed over for --down-time and
 * the client is re-queued to another one: it sees nothing but a slower
 * connect. Everything here runs on the loop thread.
 *
 * Dialling uses a bufferevent (libevent resolves the member's name and
 * reports the connect); once connected, the bytes are relayed by plain
 * events on the two sockets: what one side's recv() returns is send() to
 * the other at once. A bufferevent relay asks the kernel how much is
 * readable (ioctl FIONREAD) before every read and moves each chunk
 * through two evbuffers; this relay makes two system calls per chunk and
 * no allocation, which is most of the difference to HAProxy in
 * bench-gateway's ping-pong (see README).
 *
 * Back-pressure: what the receiver does not take at once (at most one
 * read, RELAY_CHUNK bytes) is kept, and reading from the sender stops
 * until it is written, so a slow reader costs at most that much memory.
 */
#include "gateway.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

/* Members tried for one client before it is turned away. */
#define MAX_ATTEMPTS 8
/* Largest read relayed at once (the one buffer, shared: one loop thread) */
#define RELAY_CHUNK (64 * 1024)
/* fds kept back from --max-connections for etcd, HTTP and the logs */
#define FD_RESERVE 64

/* One socket of a connected pair: its read event, its write event
 * (pending only while bytes wait for it) and those bytes. */
struct gw_side
{
	evutil_socket_t fd;
	struct event *rd, *wr;
	char *pend; /* bytes the socket has not taken yet, NULL if none */
	size_t off, len;
};

struct gw_tcp_conn
{
	struct gw *gw;
	struct gw_tcp_conn *prev, *next;
	struct bufferevent *client;
	/* the member's side; NULL until dialled and after it closed */
	struct bufferevent *server;
	/* the connect timeout */
	struct event *timer;
	/* the client's address without its port: the --sticky key */
	char client_addr[INET6_ADDRSTRLEN];
	/* the member being dialled or connected to, and its address */
	char member[CLUSTER_NAME_MAX + 1];
	char dial[CLUSTER_ADDRESS_MAX + 16];
	/* hashes of the ids already tried for this client */
	unsigned long long tried[MAX_ATTEMPTS];
	int attempts;
	int connected;
	/* once connected: [0] the client's socket, [1] the member's */
	struct gw_side side[2];
};

static struct event *accept_resume;

static unsigned long long
id_hash(const char *id)
{
	unsigned long long h = 1469598103934665603ULL;

	for(; *id; id++)
	{
		h = (h ^ (unsigned char) *id) * 1099511628211ULL;
	}
	return h;
}

/* Is the member passed over (refused or timed out lately)? Expired
 * entries are dropped on the way. */
static int
is_down(struct gw *gw, const char *id, long long now)
{
	size_t i = 0;
	int down = 0;

	while(i < gw->down_count)
	{
		if(gw->down[i].until_ms <= now)
		{
			gw->down[i] = gw->down[--gw->down_count];
			continue;
		}
		down = down || !strcmp(gw->down[i].id, id);
		i++;
	}
	return down;
}

static void
mark_down(struct gw *gw, const char *id)
{
	long long until = gw_now_ms() + gw->opts->down_ms;
	struct gw_down *grown;
	size_t i;

	for(i = 0; i < gw->down_count; i++)
	{
		if(!strcmp(gw->down[i].id, id))
		{
			gw->down[i].until_ms = until;
			return;
		}
	}
	grown = realloc(gw->down, (gw->down_count + 1) * sizeof(*gw->down));
	if(!grown)
	{
		/* not remembering a bad member only costs a later client a retry */
		return;
	}
	gw->down = grown;
	snprintf(gw->down[gw->down_count].id, sizeof(gw->down[0].id), "%s", id);
	gw->down[gw->down_count].until_ms = until;
	gw->down_count++;
}

static int
tried(const struct gw_tcp_conn *conn, const char *id)
{
	unsigned long long h = id_hash(id);
	int i;

	for(i = 0; i < conn->attempts; i++)
	{
		if(conn->tried[i] == h)
		{
			return 1;
		}
	}
	return 0;
}

/*
 * The member for this client's next attempt, with its dial address, from
 * the loop's member list: a member that publishes a dialable address,
 * takes clients (capacity not 0, load below a bounded capacity), is not
 * passed over and was not tried for this client. -1 when there is none.
 */
static long
choose(struct gw_tcp_conn *conn, char *host, size_t hostsz, char *port, size_t portsz)
{
	struct gw *gw = conn->gw;
	struct gw_snapshot *snap = gw->view.current;
	long long now = gw_now_ms(), *weight;
	int *candidate;
	long best = -1;
	size_t i;

	if(!snap->count)
	{
		return -1;
	}
	candidate = calloc(snap->count, sizeof(*candidate));
	weight = calloc(snap->count, sizeof(*weight));
	if(candidate && weight)
	{
		for(i = 0; i < snap->count; i++)
		{
			const CLUSTERMEMBER *m = &snap->members[i];

			candidate[i] = !m->passive && m->has_status && m->capacity != 0 &&
						   (m->capacity == CLUSTER_CAPACITY_UNBOUNDED || m->load < m->capacity) && !tried(conn, m->id) &&
						   !is_down(gw, m->id, now) && !gw_dial_address(m->address, host, hostsz, port, portsz);
		}
		gw_weights(snap->members, candidate, snap->count, weight);
		best = gw->opts->sticky ? gw_choose_rendezvous(conn->client_addr, snap->members, weight, snap->count) : gw_choose_round_robin(weight, snap->rr, snap->count);
	}
	if(best >= 0 && gw_dial_address(snap->members[best].address, host, hostsz, port, portsz))
	{
		best = -1;
	}
	if(best >= 0)
	{
		snprintf(conn->member, sizeof(conn->member), "%s", snap->members[best].id);
	}
	free(candidate);
	free(weight);
	return best;
}

static void conn_free(struct gw_tcp_conn *conn);
static void try_next(struct gw_tcp_conn *conn);

/* Write what waits for side s; 0 when it has all been taken, 1 when
 * some still waits, -1 when the socket failed. */
static int
side_flush(struct gw_side *s)
{
	while(s->off < s->len)
	{
		ssize_t w = send(s->fd, s->pend + s->off, s->len - s->off, MSG_NOSIGNAL);

		if(w < 0)
		{
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : errno == EINTR ? 1 :
																				  -1;
		}
		s->off += (size_t) w;
	}
	free(s->pend);
	s->pend = NULL;
	s->off = s->len = 0;
	return 0;
}

/* Bytes arrived on side k: send them to the other side at once; what it
 * does not take waits (a copy), and side k is not read until it is
 * written. So when side k is read, nothing of its waits any more: at its
 * end of stream (or a reset) the connection closes at once, dropping
 * only what still waited for side k itself, as a bufferevent's free did. */
static void
on_relay_read(evutil_socket_t fd, short what, void *arg)
{
	static char chunk[RELAY_CHUNK];
	struct gw_tcp_conn *conn = arg;
	int k = fd == conn->side[0].fd ? 0 : 1;
	struct gw_side *to = &conn->side[1 - k];
	ssize_t n = recv(fd, chunk, sizeof(chunk), 0), w;

	(void) what;
	if(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
	{
		return;
	}
	if(n <= 0)
	{
		conn_free(conn);
		return;
	}
	conn->gw->tcp_bytes += (unsigned long long) n;
	w = send(to->fd, chunk, (size_t) n, MSG_NOSIGNAL);
	if(w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
	{
		conn_free(conn);
		return;
	}
	w = w < 0 ? 0 : w;
	if(w == n)
	{
		return;
	}
	to->pend = malloc((size_t) (n - w));
	if(!to->pend)
	{
		gw_log(LOG_ERR, "client %s: out of memory relaying to member '%s': connection closed", conn->client_addr, conn->member);
		conn_free(conn);
		return;
	}
	memcpy(to->pend, chunk + w, (size_t) (n - w));
	to->off = 0;
	to->len = (size_t) (n - w);
	event_del(conn->side[k].rd);
	event_add(to->wr, NULL);
}

/* Side k can take more: write what waits for it; once all is taken,
 * read from the other side again. */
static void
on_relay_write(evutil_socket_t fd, short what, void *arg)
{
	struct gw_tcp_conn *conn = arg;
	int k = fd == conn->side[0].fd ? 0 : 1, r = side_flush(&conn->side[k]);

	(void) what;
	if(r > 0)
	{
		return;
	}
	if(r < 0)
	{
		conn_free(conn);
		return;
	}
	event_del(conn->side[k].wr);
	event_add(conn->side[1 - k].rd, NULL);
}

/* The member answered: from here on the two sockets are relayed by plain
 * events (the bufferevents stay, disabled, only to own the sockets).
 * Nothing was read from either yet: the client's reading waited for the
 * member, and the member's was never enabled. -1 out of memory. */
static int
relay_start(struct gw_tcp_conn *conn)
{
	struct bufferevent *bev[2] = { conn->client, conn->server };
	int k;

	for(k = 0; k < 2; k++)
	{
		struct gw_side *s = &conn->side[k];

		bufferevent_disable(bev[k], EV_READ | EV_WRITE);
		bufferevent_setcb(bev[k], NULL, NULL, NULL, NULL);
		s->fd = bufferevent_getfd(bev[k]);
		s->rd = event_new(conn->gw->base, s->fd, EV_READ | EV_PERSIST, on_relay_read, conn);
		s->wr = event_new(conn->gw->base, s->fd, EV_WRITE | EV_PERSIST, on_relay_write, conn);
		if(!s->rd || !s->wr || event_add(s->rd, NULL))
		{
			return -1;
		}
	}
	return 0;
}

/* Why a dial failed, for the log: the resolver's or the socket's error. */
static const char *
dial_error(struct bufferevent *bev, short events)
{
	int dns = bufferevent_socket_get_dns_error(bev);

	if(dns)
	{
		return evutil_gai_strerror(dns);
	}
	if(events & BEV_EVENT_EOF)
	{
		return "closed at once";
	}
	return evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
}

/* The member failed this client: pass it over for a while and re-queue. */
static void
attempt_failed(struct gw_tcp_conn *conn, const char *why)
{
	struct gw *gw = conn->gw;
	char shown[CLI_SHOWN_SIZE];

	gw_log(LOG_WARNING, "member '%s' at %s %s: passed over for %d ms, client %s re-queued", conn->member,
		cli_escape(shown, sizeof(shown), conn->dial), why, gw->opts->down_ms, conn->client_addr);
	mark_down(gw, conn->member);
	evtimer_del(conn->timer);
	if(conn->server)
	{
		bufferevent_free(conn->server);
		conn->server = NULL;
	}
	gw->tcp_requeued++;
	try_next(conn);
}

static void
on_event(struct bufferevent *bev, short events, void *arg)
{
	struct gw_tcp_conn *conn = arg;

	if(bev == conn->server && !conn->connected)
	{
		if(events & BEV_EVENT_CONNECTED)
		{
			int one = 1;

			/* small writes go out at once: Nagle's wait on top of the
			 * peer's delayed ACK stalls a relayed echo by 40 ms */
			setsockopt(bufferevent_getfd(conn->server), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			conn->connected = 1;
			evtimer_del(conn->timer);
			if(relay_start(conn))
			{
				gw_log(LOG_ERR, "client %s: out of memory starting the relay to member '%s': connection closed", conn->client_addr, conn->member);
				conn->gw->tcp_failed++;
				conn_free(conn);
				return;
			}
			conn->gw->tcp_proxied++;
			gw_log(LOG_DEBUG, "client %s proxied to member '%s' at %s", conn->client_addr, conn->member, conn->dial);
		}
		else if(events & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
		{
			attempt_failed(conn, dial_error(bev, events));
		}
		return;
	}
	if(events & (BEV_EVENT_ERROR | BEV_EVENT_EOF))
	{
		/* a client that hangs up while its member is being dialled ends
		 * the dial too */
		conn_free(conn);
	}
}

static void
on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
	char why[64];

	(void) fd;
	(void) what;
	snprintf(why, sizeof(why), "did not answer within %d ms", ((struct gw_tcp_conn *) arg)->gw->opts->connect_timeout_ms);
	attempt_failed(arg, why);
}

/* Dial the next member for this client, or turn the client away when no
 * member is left to try. */
static void
try_next(struct gw_tcp_conn *conn)
{
	struct gw *gw = conn->gw;
	struct timeval tv = { gw->opts->connect_timeout_ms / 1000, (gw->opts->connect_timeout_ms % 1000) * 1000 };
	char host[CLUSTER_ADDRESS_MAX + 1], port[8];

	while(conn->attempts < MAX_ATTEMPTS && !gw->stopping)
	{
		if(choose(conn, host, sizeof(host), port, sizeof(port)) < 0)
		{
			break;
		}
		conn->tried[conn->attempts++] = id_hash(conn->member);
		snprintf(conn->dial, sizeof(conn->dial), "%s%s%s:%s", strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port);
		conn->server = bufferevent_socket_new(gw->base, -1, BEV_OPT_CLOSE_ON_FREE);
		if(!conn->server)
		{
			break;
		}
		bufferevent_setcb(conn->server, NULL, NULL, on_event, conn);
		if(evtimer_add(conn->timer, &tv))
		{
			break;
		}
		/* may call on_event() at once (a refused connect), which re-queues */
		if(bufferevent_socket_connect_hostname(conn->server, gw->dns, AF_UNSPEC, host, atoi(port)))
		{
			if(conn->server)
			{
				attempt_failed(conn, "could not be dialled");
			}
		}
		return;
	}
	gw->tcp_failed++;
	gw_log(LOG_WARNING, "client %s turned away: %s", conn->client_addr,
		gw->stopping ? "shutting down" : conn->attempts ? "every member tried refused it or timed out" :
														  "no member can take a client");
	conn_free(conn);
}

static void
conn_free(struct gw_tcp_conn *conn)
{
	struct gw *gw = conn->gw;
	int k;

	for(k = 0; k < 2; k++)
	{
		/* before the bufferevents close the sockets */
		if(conn->side[k].rd)
		{
			event_free(conn->side[k].rd);
		}
		if(conn->side[k].wr)
		{
			event_free(conn->side[k].wr);
		}
		free(conn->side[k].pend);
	}
	if(conn->client)
	{
		bufferevent_free(conn->client);
	}
	if(conn->server)
	{
		bufferevent_free(conn->server);
	}
	event_free(conn->timer);
	if(conn->prev)
	{
		conn->prev->next = conn->next;
	}
	else
	{
		gw->tcp_conns = conn->next;
	}
	if(conn->next)
	{
		conn->next->prev = conn->prev;
	}
	free(conn);
	gw->tcp_active--;
	if(gw->tcp_paused && !gw->stopping && gw->tcp_active < gw->tcp_max)
	{
		gw->tcp_paused = 0;
		evconnlistener_enable(gw->tcp_listener);
	}
	if(gw->stopping && !gw->tcp_active && gw->tcp_drain_done)
	{
		/* the shutdown was waiting for the last proxied connection */
		event_active(gw->tcp_drain_done, EV_READ, 0);
	}
}

static void
on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *sa, int socklen, void *arg)
{
	struct gw *gw = arg;
	struct gw_tcp_conn *conn;
	int one = 1;

	(void) listener;
	(void) socklen;
	gw->tcp_accepted++;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn = calloc(1, sizeof(*conn));
	if(!conn || !(conn->client = bufferevent_socket_new(gw->base, fd, BEV_OPT_CLOSE_ON_FREE)) ||
		!(conn->timer = evtimer_new(gw->base, on_connect_timeout, conn)))
	{
		gw_log(LOG_ERR, "cannot take a TCP client: out of memory");
		if(conn && conn->client)
		{
			bufferevent_free(conn->client);
		}
		else
		{
			evutil_closesocket(fd);
		}
		free(conn);
		gw->tcp_failed++;
		return;
	}
	conn->gw = gw;
	if(sa->sa_family == AF_INET6)
	{
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *) sa)->sin6_addr, conn->client_addr, sizeof(conn->client_addr));
	}
	else
	{
		inet_ntop(AF_INET, &((struct sockaddr_in *) sa)->sin_addr, conn->client_addr, sizeof(conn->client_addr));
	}
	/* the client's bytes wait in the kernel until its member answers */
	bufferevent_setcb(conn->client, NULL, NULL, on_event, conn);
	bufferevent_disable(conn->client, EV_READ);
	conn->next = gw->tcp_conns;
	if(conn->next)
	{
		conn->next->prev = conn;
	}
	gw->tcp_conns = conn;
	gw->tcp_active++;
	if(gw->tcp_active >= gw->tcp_max)
	{
		gw_log(LOG_WARNING, "%zu TCP connections open (--max-connections): not accepting until one ends", gw->tcp_active);
		gw->tcp_paused = 1;
		evconnlistener_disable(gw->tcp_listener);
	}
	try_next(conn);
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct gw *gw = arg;

	(void) fd;
	(void) what;
	if(gw->tcp_listener && !gw->stopping && !gw->tcp_paused)
	{
		evconnlistener_enable(gw->tcp_listener);
	}
}

static void
on_accept_error(struct evconnlistener *listener, void *arg)
{
	(void) arg;
	gw_accept_pause(listener, accept_resume, "TCP");
}

/* Each connection holds two descriptors: --max-connections must fit the
 * process's limit, raised to its hard limit if need be. */
static size_t
fit_fd_limit(const struct gw_options *o)
{
	struct rlimit rl;
	rlim_t want = (rlim_t) o->max_connections * 2 + FD_RESERVE;

	if(getrlimit(RLIMIT_NOFILE, &rl))
	{
		return (size_t) o->max_connections;
	}
	if(rl.rlim_cur < want)
	{
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if(rl.rlim_cur < want)
	{
		long fit = rl.rlim_cur > 2 * FD_RESERVE ? (long) (rl.rlim_cur - FD_RESERVE) / 2 : FD_RESERVE;

		gw_log(LOG_WARNING, "--max-connections %d needs %lu file descriptors; the limit is %lu: at most %ld connections", o->max_connections,
			(unsigned long) want, (unsigned long) rl.rlim_cur, fit);
		return (size_t) fit;
	}
	return (size_t) o->max_connections;
}

int
gw_tcp_start(struct gw *gw)
{
	const struct gw_options *o = gw->opts;

	if(!o->have_tcp)
	{
		return 0;
	}
	gw->tcp_max = fit_fd_limit(o);
	gw->tcp_listener = gw_listen(gw, "TCP", o->tcp_host, o->tcp_port, on_accept);
	if(!gw->tcp_listener)
	{
		return -1;
	}
	evconnlistener_set_error_cb(gw->tcp_listener, on_accept_error);
	accept_resume = evtimer_new(gw->base, on_resume, gw);
	/* names in published addresses are resolved without blocking the loop */
	gw->dns = evdns_base_new(gw->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if(!accept_resume || !gw->dns)
	{
		gw_log(LOG_ERR, "cannot set up the TCP proxy: %s", gw->dns ? "out of memory" : "no resolver (see /etc/resolv.conf)");
		return -1;
	}
	return 0;
}

int
gw_tcp_bound(struct gw *gw, char *out, size_t size)
{
	return gw_socket_address(evconnlistener_get_fd(gw->tcp_listener), out, size);
}

size_t
gw_tcp_stop_accepting(struct gw *gw)
{
	struct gw_tcp_conn *conn, *next;

	gw->stopping = 1;
	/* closed, not only paused: a new client is refused at once instead of
	 * waiting in the listen queue for an answer that never comes */
	if(gw->tcp_listener)
	{
		evconnlistener_free(gw->tcp_listener);
		gw->tcp_listener = NULL;
	}
	/* clients still waiting for a member are not proxied any more */
	for(conn = gw->tcp_conns; conn; conn = next)
	{
		next = conn->next;
		if(!conn->connected)
		{
			gw->tcp_failed++;
			conn_free(conn);
		}
	}
	return gw->tcp_active;
}

void
gw_tcp_free(struct gw *gw)
{
	size_t cut = gw->tcp_active;

	if(cut)
	{
		gw_log(LOG_NOTICE, "closing %zu proxied connection%s still open at the drain deadline", cut, cut == 1 ? "" : "s");
	}
	while(gw->tcp_conns)
	{
		conn_free(gw->tcp_conns);
	}
	if(gw->tcp_listener)
	{
		evconnlistener_free(gw->tcp_listener);
		gw->tcp_listener = NULL;
	}
	if(gw->dns)
	{
		evdns_base_free(gw->dns, 1);
		gw->dns = NULL;
	}
	if(accept_resume)
	{
		event_free(accept_resume);
		accept_resume = NULL;
	}
	free(gw->down);
	gw->down = NULL;
	gw->down_count = 0;
}

int
gw_tcp_metrics(struct gw *gw, struct evbuffer *b)
{
	long long now = gw_now_ms();
	size_t i, down = 0;

	if(!gw->opts->have_tcp)
	{
		return 0;
	}
	for(i = 0; i < gw->down_count; i++)
	{
		down += gw->down[i].until_ms > now;
	}
	return gw_add_metric(b, "cluster_gateway_tcp_connections", "gauge", "Proxied TCP connections open now (dialling or connected).", (double) gw->tcp_active) ||
		   gw_add_metric(b, "cluster_gateway_tcp_accepted_total", "counter", "TCP clients accepted.", (double) gw->tcp_accepted) ||
		   gw_add_metric(b, "cluster_gateway_tcp_proxied_total", "counter", "TCP clients connected to a member.", (double) gw->tcp_proxied) ||
		   gw_add_metric(b, "cluster_gateway_tcp_requeued_total", "counter", "Dials that failed and moved the client to another member.",
			   (double) gw->tcp_requeued) ||
		   gw_add_metric(b, "cluster_gateway_tcp_failed_total", "counter", "TCP clients closed without a member (none left to try).",
			   (double) gw->tcp_failed) ||
		   gw_add_metric(b, "cluster_gateway_tcp_bytes_total", "counter", "Bytes spliced between clients and members, both ways.", (double) gw->tcp_bytes) ||
		   gw_add_metric(b, "cluster_gateway_tcp_members_down", "gauge", "Members passed over after a refused or timed-out dial.", (double) down);
}
