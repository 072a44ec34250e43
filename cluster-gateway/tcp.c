/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway: the TCP proxy (--tcp, seed 002's job). Each accepted
 * client is given a member (choose.c), dialled with a timeout, and the
 * bytes are spliced both ways until either side closes. A member that
 * refuses or does not answer in time is passed over for --down-time and
 * the client is re-queued to another one: it sees nothing but a slower
 * connect. Everything here runs on the loop thread.
 *
 * Back-pressure: what one side sends is queued toward the other; past
 * HIGH_WATER bytes queued, reading from the sender pauses until the
 * queue drains to half, so a slow reader costs at most that much memory.
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

/* Members tried for one client before it is turned away. */
#define MAX_ATTEMPTS 8
#define HIGH_WATER   (256 * 1024)
/* How long accepting pauses after accept() itself failed (EMFILE). */
#define ACCEPT_PAUSE_MS 100
/* fds kept back from --max-connections for etcd, HTTP and the logs */
#define FD_RESERVE 64

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

/* One side has nothing more to say: what it sent is already queued to
 * the other side; close once that is written. */
static void
side_closed(struct gw_tcp_conn *conn, struct bufferevent *bev)
{
	struct bufferevent *other = bev == conn->client ? conn->server : conn->client;

	if(bev == conn->client)
	{
		conn->client = NULL;
	}
	else
	{
		conn->server = NULL;
	}
	bufferevent_free(bev);
	if(!other || !evbuffer_get_length(bufferevent_get_output(other)))
	{
		conn_free(conn);
		return;
	}
	/* flush, then on_write() frees once the queue is empty */
	bufferevent_disable(other, EV_READ);
	bufferevent_setwatermark(other, EV_WRITE, 0, 0);
}

/* Bytes arrived on one side: queue them to the other; pause this side
 * while the other's queue is past the high-water mark. */
static void
on_read(struct bufferevent *bev, void *arg)
{
	struct gw_tcp_conn *conn = arg;
	struct bufferevent *other = bev == conn->client ? conn->server : conn->client;
	struct evbuffer *in = bufferevent_get_input(bev), *out;
	size_t len = evbuffer_get_length(in);

	if(!other)
	{
		evbuffer_drain(in, len);
		return;
	}
	out = bufferevent_get_output(other);
	evbuffer_add_buffer(out, in);
	conn->gw->tcp_bytes += len;
	if(evbuffer_get_length(out) >= HIGH_WATER)
	{
		bufferevent_disable(bev, EV_READ);
		bufferevent_setwatermark(other, EV_WRITE, HIGH_WATER / 2, 0);
	}
}

/* A queue drained to its low-water mark: resume the paused sender, or
 * finish closing when the sender is gone. */
static void
on_write(struct bufferevent *bev, void *arg)
{
	struct gw_tcp_conn *conn = arg;
	struct bufferevent *other = bev == conn->client ? conn->server : conn->client;

	if(!other)
	{
		if(!evbuffer_get_length(bufferevent_get_output(bev)))
		{
			conn_free(conn);
		}
		return;
	}
	if(conn->connected && !(bufferevent_get_enabled(other) & EV_READ))
	{
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(other, EV_READ);
	}
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
			conn->gw->tcp_proxied++;
			bufferevent_enable(conn->server, EV_READ | EV_WRITE);
			bufferevent_enable(conn->client, EV_READ | EV_WRITE);
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
		 * the dial too (conn_free) */
		side_closed(conn, bev);
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
		bufferevent_setcb(conn->server, on_read, on_write, on_event, conn);
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
	bufferevent_setcb(conn->client, on_read, on_write, on_event, conn);
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

/* accept() failed (out of fds or memory): pause rather than spin. */
static void
on_accept_error(struct evconnlistener *listener, void *arg)
{
	struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
	int err = EVUTIL_SOCKET_ERROR();

	(void) arg;
	gw_log(LOG_WARNING, "cannot accept a TCP client: %s (pausing %d ms)", evutil_socket_error_to_string(err), ACCEPT_PAUSE_MS);
	evconnlistener_disable(listener);
	evtimer_add(accept_resume, &tv);
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
	struct evutil_addrinfo hints, *ai = NULL;
	char port[8], shown[CLI_SHOWN_SIZE];
	int r;

	if(!o->have_tcp)
	{
		return 0;
	}
	gw->tcp_max = fit_fd_limit(o);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", o->tcp_port);
	r = evutil_getaddrinfo(o->tcp_host, port, &hints, &ai);
	if(r)
	{
		gw_log(LOG_ERR, "cannot listen for TCP on %s port %d: %s", cli_escape(shown, sizeof(shown), o->tcp_host), o->tcp_port,
			evutil_gai_strerror(r));
		return -1;
	}
	gw->tcp_listener = evconnlistener_new_bind(gw->base, on_accept, gw, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
		1024, ai->ai_addr, (int) ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if(!gw->tcp_listener)
	{
		gw_log(LOG_ERR, "cannot listen for TCP on %s port %d: %s", cli_escape(shown, sizeof(shown), o->tcp_host), o->tcp_port, strerror(errno));
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
