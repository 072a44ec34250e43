/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway: the front door for clients that cannot link libcluster.
 * It joins a cluster passively and answers "where should a new client
 * connect?" over HTTP. An ordinary client of <libcluster.h>; this private
 * header only ties its own files together.
 *
 * Threads: one event-loop thread (libevent) owns everything below except
 * struct gw_view's pending slot, which library threads fill (view.c), and
 * the join's outcome, written by the join thread before it wakes the loop
 * (main.c).
 */
#ifndef CLUSTER_GATEWAY_H_
#define CLUSTER_GATEWAY_H_ 1

#include <libcluster.h>

#include "cli-common.h"

#include <pthread.h>
#include <stddef.h>

#define GW_NAME        "cluster-gateway"
#define GW_DEFAULT_KEY "cluster-test"

/* Exit codes, as cluster-test's: success, failure, bad usage. */
#define GW_EXIT_OK    0
#define GW_EXIT_ERROR 1
#define GW_EXIT_USAGE CLI_EXIT_USAGE

struct event_base;
struct event;
struct evbuffer;
struct gw_http_conn;
struct evconnlistener;
struct sockaddr;
struct evdns_base;
struct gw_tcp_conn;
struct gw_reg;
struct cJSON;

/* The largest weight a member gets in the TCP choice (choose.c). */
#define GW_WEIGHT_MAX (1LL << 40)

/* A member that refused or timed out a proxied connection, passed over
 * until the monotonic ms until_ms (tcp.c). */
struct gw_down
{
	char id[CLUSTER_NAME_MAX + 1];
	long long until_ms;
};

/* Everything the command line asked for; have_* says an option was given
 * (an absent option leaves the library's default). */
struct gw_options
{
	int verbose;
	const char *key;
	const char *env;
	const char *partition;
	const char *registry;
	const char *cacert;
	const char *cert;
	const char *key_file;
	const char *user;
	const char *password_file;
	int ttl;
	int have_ttl;
	int pickers;
	/* --http ADDR:PORT, split: host without brackets, port 0..65535 */
	char http_host[256];
	int http_port;
	int have_http;
	/* --tcp ADDR:PORT, split the same way */
	char tcp_host[256];
	int tcp_port;
	int have_tcp;
	/* --sticky: a client address keeps its member (rendezvous hashing) */
	int sticky;
	/* --connect-timeout MS, --down-time MS, --max-connections N,
	 * --drain-time MS (defaults in options.c) */
	int connect_timeout_ms;
	int down_ms;
	int max_connections;
	int drain_ms;
};

/* One copy of the member list, as cluster_members() gave it (sorted by
 * id), with this gateway's picks per member beside it. */
struct gw_snapshot
{
	CLUSTERMEMBER *members;
	size_t count;
	/* picks[i]: picks of members[i] (loop thread only) */
	unsigned long long *picks;
	/* rr[i]: members[i]'s credit in the TCP round robin (loop thread) */
	long long *rr;
	/* monotonic ms when the copy was made: ages are reported from it */
	long long taken_ms;
};

/* The member list handed from any thread to the loop thread. */
struct gw_view
{
	pthread_mutex_t lock;
	/* the newest snapshot not yet taken by the loop (lock) */
	struct gw_snapshot *pending;
	/* activated to make the loop take pending (libevent locks it) */
	struct event *wake;
	/* the loop thread's snapshot; never NULL once gw_view_init() succeeded */
	struct gw_snapshot *current;
	/* picks of members not in current (the library's view was newer) */
	unsigned long long picks_unlisted;
};

/* The whole gateway, owned by the loop thread. */
struct gw
{
	const struct gw_options *opts;
	CLUSTER *cluster;
	struct event_base *base;
	/* the HTTP server (httpd.c): listener and open connections */
	struct evconnlistener *http_listener;
	struct gw_http_conn *http_conns;
	struct gw_view view;
	/* counters for /metrics */
	unsigned long long requests;
	unsigned long long redirects;
	unsigned long long targets;
	unsigned long long no_target;
	unsigned long long errors;
	/* monotonic ms when the view was last seen current */
	long long last_fresh_ms;
	/* a status older than this is stale (the advisor's stale_ms; 0: never) */
	long long stale_ms;
	/* the TCP proxy (tcp.c): listener, resolver, open connections */
	struct evconnlistener *tcp_listener;
	struct evdns_base *dns;
	struct gw_tcp_conn *tcp_conns;
	struct event *tcp_drain_done;
	struct gw_down *down;
	size_t down_count;
	size_t tcp_active;
	/* --max-connections, lowered to what the fd limit allows */
	size_t tcp_max;
	int tcp_paused;
	int stopping;
	unsigned long long tcp_accepted;
	unsigned long long tcp_proxied;
	unsigned long long tcp_requeued;
	unsigned long long tcp_failed;
	unsigned long long tcp_refused_full;
	unsigned long long tcp_bytes;
	/* POST /register-worker (register.c): the registrations, newest first */
	struct gw_reg *regs;
	size_t reg_count;
	unsigned long long reg_accepted;
	unsigned long long reg_renewed;
	unsigned long long reg_refused;
	unsigned long long reg_expired;
	/* the join runs on its own thread so that a signal can cancel it:
	 * join_result/_errno/_errmsg are written by that thread before it
	 * activates join_done, and read on the loop thread after */
	pthread_t join_thread;
	int join_pending;
	int join_result;
	int join_errno;
	char join_errmsg[512];
	struct event *join_done;
	/* cluster_leave() has been called (loop thread) */
	int left;
	int exit_code;
};

/* options.c */

/* Parse argv into *opts. GW_EXIT_OK to carry on, -1 when --help or
 * --version printed (exit 0), or GW_EXIT_USAGE after saying why. */
int gw_parse_options(int argc, char **argv, struct gw_options *opts);

/* choose.c: pure, see there for the rules */

/* The host and port to dial for a published address into host/port.
 * 0, or -1 when the address gives none (the member is passed over). */
int gw_dial_address(const char *address, char *host, size_t hostsz, char *port, size_t portsz);
/* weight[i] for members[i]: 0 unless candidate[i]; else its capacity when
 * every candidate's is bounded, its worker count otherwise, in
 * 1..GW_WEIGHT_MAX. */
void gw_weights(const CLUSTERMEMBER *members, const int *candidate, size_t n, long long *weight);
/* Smooth weighted round robin over the members of positive weight,
 * current[] holding their credits. The index chosen, or -1 if none. */
long gw_choose_round_robin(const long long *weight, long long *current, size_t n);
/* Weighted rendezvous hashing of key over the members of positive
 * weight. The index chosen, or -1 if none. */
long gw_choose_rendezvous(const char *key, const CLUSTERMEMBER *members, const long long *weight, size_t n);

/* main.c */

/* Apply the cluster options (environment, partition, registry, TTL, TLS,
 * login) and the logger to a handle. 0, or -1 after saying why. */
int gw_configure(const struct gw_options *o, CLUSTER *c);

/* register.c */

/* Start the registrar thread. 0, or -1 after saying why. */
int gw_register_start(struct gw *gw);
/* POST /register-worker with this body (loop thread): the answer's
 * status in *code (202 new, 200 renewed, 400 refused, 503 full, 500) and
 * its JSON body (NULL when out of memory). */
struct cJSON *gw_register(struct gw *gw, const char *body, size_t len, int *code);
/* The refresh timer's turn: end the registrations whose worker has not
 * posted within its TTL, and those whose join failed. */
void gw_register_expire(struct gw *gw);
/* Shutdown: leave for every registered worker and stop the registrar. */
void gw_register_stop(struct gw *gw);

/* status-html.c (generated from status.html) */

extern const char gw_status_html[];

/* tcp.c */

/* Bind --tcp and start accepting (loop thread). 0, or -1 after saying
 * why. */
int gw_tcp_start(struct gw *gw);
/* The bound address as "HOST:PORT". 0 or -1. */
int gw_tcp_bound(struct gw *gw, char *out, size_t size);
/* Shutdown: stop accepting; returns the connections still open (they
 * go on until they end or gw_tcp_free()). */
size_t gw_tcp_stop_accepting(struct gw *gw);
/* Close every connection still open and free the proxy. */
void gw_tcp_free(struct gw *gw);
/* /metrics lines of the proxy into b. 0 or -1. */
int gw_tcp_metrics(struct gw *gw, struct evbuffer *b);

/* log.c */

void gw_set_verbose(int on);
/* Print "cluster-gateway: " + the message to stderr as one write; debug
 * messages only with -v. */
void gw_log(int priority, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* Would gw_log() print at this priority? (Spares a hot path building
 * arguments for a debug line nobody sees.) */
int gw_log_on(int priority);
/* The library's logger. */
void gw_library_logger(int priority, const char *format, va_list ap);
long long gw_now_ms(void);
/* The address socket fd is bound to, as "HOST:PORT" ("[HOST]:PORT" for
 * IPv6). 0, or -1 with errno set. */
int gw_socket_address(int fd, char *out, size_t size);
/* Bind host:port and listen, for the server named what ("HTTP", "TCP");
 * each accepted socket goes to cb with gw as its argument. The listener,
 * or NULL after saying why. */
struct evconnlistener *gw_listen(struct gw *gw, const char *what, const char *host, int port,
	void (*cb)(struct evconnlistener *, int, struct sockaddr *, int, void *));
/* accept() failed on listener: say so, stop accepting and start resume
 * (a timer whose callback enables the listener again when it should). */
void gw_accept_pause(struct evconnlistener *listener, struct event *resume, const char *what);

/* view.c */

int gw_view_init(struct gw_view *view, struct event_base *base);
void gw_view_destroy(struct gw_view *view);
/* Copy the library's member list into a new snapshot; NULL when the
 * library refused (not joined) or memory ran out. Any thread. */
struct gw_snapshot *gw_snapshot_take(CLUSTER *cluster);
void gw_snapshot_free(struct gw_snapshot *snap);
/* Hand a snapshot to the loop thread (takes ownership). Any thread;
 * never waits for the loop. */
void gw_view_offer(struct gw_view *view, struct gw_snapshot *snap);
/* Count a pick of member id (loop thread). */
void gw_view_count_pick(struct gw_view *view, const char *id);
/* The balancer callback: a membership change, handed to the loop. */
int gw_on_balance(CLUSTER *cluster, CLUSTERSTATE *state);

/* http.c: the endpoints */

/* One Prometheus metric with its HELP and TYPE lines into b. 0 or -1. */
int gw_add_metric(struct evbuffer *b, const char *name, const char *type, const char *help, double value);

enum gw_http_method
{
	GW_HTTP_GET,
	GW_HTTP_HEAD,
	GW_HTTP_POST,
	GW_HTTP_OTHER
};

/* A complete request, as the server (httpd.c) hands it to the endpoints.
 * Everything it points to lives until the handler returns. */
struct gw_http_request
{
	enum gw_http_method method;
	/* the method as sent ("GET", "DELETE", ...) */
	const char *method_name;
	/* the request target as sent, NUL-terminated */
	const char *target;
	/* its path and query, not decoded; path NULL when the target is not
	 * a URL, query NULL when there is none */
	const char *path;
	const char *query;
	const char *body;
	size_t body_len;
	/* set by the handler before answering: extra headers, or NULL */
	const char *location;
	const char *allow;
	/* (the server's) */
	struct gw_http_conn *conn;
	int answered;
};

/* Answer req (once): code, Content-Type (or NULL) and body. */
void gw_http_respond(struct gw_http_request *req, int code, const char *content_type, const char *body, size_t len);
/* Route and answer a request: the server calls this for each one, on
 * the loop thread, in the order the client sent them. */
void gw_http_handle(struct gw *gw, struct gw_http_request *req);

/* httpd.c: the HTTP/1.1 server */

/* The server's timers on gw->base (gw_http_start() calls it). 0 or -1. */
int gw_http_init(struct gw *gw);
/* Serve HTTP on a connected, non-blocking socket (accepted, or one end
 * of a socketpair in the fuzz harness); takes fd over. 0, or -1 (closed). */
int gw_http_adopt(struct gw *gw, int fd);
/* Create the HTTP server on gw->base and bind --http. 0, or -1 after
 * saying why. */
int gw_http_start(struct gw *gw);
/* Stop accepting connections (shutdown); requests in flight go on. */
void gw_http_stop_accepting(struct gw *gw);
void gw_http_free(struct gw *gw);
/* The bound address as "HOST:PORT" (the real port when --http gave 0). */
int gw_http_bound(struct gw *gw, char *out, size_t size);

#endif /*!CLUSTER_GATEWAY_H_*/
