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
struct evhttp;
struct evhttp_bound_socket;

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
};

/* One copy of the member list, as cluster_members() gave it (sorted by
 * id), with this gateway's picks per member beside it. */
struct gw_snapshot
{
	CLUSTERMEMBER *members;
	size_t count;
	/* picks[i]: picks of members[i] (loop thread only) */
	unsigned long long *picks;
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
	struct evhttp *http;
	struct evhttp_bound_socket *listener;
	struct gw_view view;
	/* counters for /metrics */
	unsigned long long requests;
	unsigned long long redirects;
	unsigned long long targets;
	unsigned long long no_target;
	unsigned long long errors;
	/* monotonic ms when the view was last seen current */
	long long last_fresh_ms;
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

/* log.c */

void gw_set_verbose(int on);
/* Print "cluster-gateway: " + the message to stderr as one write; debug
 * messages only with -v. */
void gw_log(int priority, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* The library's logger. */
void gw_library_logger(int priority, const char *format, va_list ap);
long long gw_now_ms(void);

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

/* http.c */

/* Create the HTTP server on gw->base and bind --http. 0, or -1 after
 * saying why. */
int gw_http_start(struct gw *gw);
/* Stop accepting connections (shutdown); requests in flight go on. */
void gw_http_stop_accepting(struct gw *gw);
void gw_http_free(struct gw *gw);
/* The bound address as "HOST:PORT" (the real port when --http gave 0). */
int gw_http_bound(struct gw *gw, char *out, size_t size);

#endif /*!CLUSTER_GATEWAY_H_*/
