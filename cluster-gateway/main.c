/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway: join a cluster passively and serve clients over HTTP
 * until SIGINT or SIGTERM, then stop accepting, let the answers in flight
 * go out, leave the cluster and exit 0.
 *
 * Order of start-up: the event base (with libevent's pthreads locking,
 * so that library threads may wake it), the signal events (before any
 * library thread exists, so a signal never meets the default action),
 * the HTTP socket (a busy port fails before anything joins), then the
 * loop, with the passive join on a thread of its own: a join may wait
 * (an unreachable registry: up to the join timeout), and a signal then
 * cancels it with cluster_leave() instead of waiting it out. Until the
 * join has succeeded, /healthz and the picks answer 503. "listening http
 * ADDR:PORT" goes to stdout when the loop starts, with the join under way.
 */
#include "gateway.h"

#include <event2/event.h>
#include <event2/thread.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

/* How often the loop copies the member list: statuses (address, load,
 * capacity) change without any callback, so they are polled. A copy is
 * cheap next to the registry's own pacing of status writes (1 s). */
#define REFRESH_MS 200
/* After a signal: time for answers already queued to be written. */
#define DRAIN_MS 200

static struct event *sig_term, *sig_int, *refresh;

/* Apply one setter; on failure say which step failed (the library has
 * logged the precise reason). */
static int
step(CLUSTER *c, int result, const char *what)
{
	if(result)
	{
		gw_log(LOG_ERR, "failed to %s: %s (%s)", what, strerror(errno), cluster_errmsg(c));
		return -1;
	}
	return 0;
}

/* --user: log in with the first line of --password-file, or else
 * $CLUSTER_PASSWORD. */
static int
set_credentials(CLUSTER *c, const struct gw_options *o)
{
	char password[1024];
	int r;

	if(cli_read_password(GW_NAME, o->password_file, password, sizeof(password)))
	{
		return -1;
	}
	r = step(c, cluster_set_credentials(c, o->user, password), "set the registry credentials");
	/* the library keeps its own copy */
	memset(password, 0, sizeof(password));
	return r;
}

int
gw_configure(const struct gw_options *o, CLUSTER *c)
{
	cluster_set_logger(c, gw_library_logger);
	if(o->verbose)
	{
		cluster_set_verbose(c, 1);
	}
	if((o->env && step(c, cluster_set_env(c, o->env), "set the cluster environment")) ||
		(o->partition && step(c, cluster_set_partition(c, o->partition), "set the cluster partition")) ||
		(o->registry && step(c, cluster_set_registry(c, o->registry), "set the registry URI")) ||
		(o->have_ttl && step(c, cluster_set_ttl(c, o->ttl), "set the lease TTL")) ||
		((o->cacert || o->cert) && step(c, cluster_set_tls(c, o->cacert, o->cert, o->key_file), "set the TLS files")) ||
		(o->user && set_credentials(c, o)))
	{
		return -1;
	}
	return 0;
}

/*
 * The gateway's own handle, configured as the options say. The advisor
 * configuration is set before the join so that the join reads every
 * member's status too (the first pick then never waits for it), and so
 * that the pick counts this gateway's recent picks for --pickers
 * instances.
 */
static CLUSTER *
setup(struct gw *gw)
{
	const struct gw_options *o = gw->opts;
	CLUSTERADVISORCONFIG cfg;
	CLUSTER *c;

	c = cluster_create(o->key);
	if(!c)
	{
		char shown[4 * 60 + 4];

		gw_log(LOG_ERR, "failed to create the cluster connection for key '%s': %s (%s)", cli_escape(shown, sizeof(shown), o->key),
			strerror(errno), cluster_errmsg(NULL));
		return NULL;
	}
	cluster_set_userdata(c, gw);
	cluster_set_balancer(c, gw_on_balance);
	cluster_advisor_config_init(&cfg);
	cfg.pickers = o->pickers;
	gw->stale_ms = cfg.stale_ms;
	/* No settle window: /healthz asks cluster_view_fresh(), which counts
	 * a change still waiting in the window as not current, and with
	 * members reporting loads a status change is nearly always waiting
	 * (the health check flapped to 503). A passive observer has no index
	 * to protect from churn, and the loop takes each change as it comes. */
	if(gw_configure(o, c) || step(c, cluster_set_settle(c, 0), "set the settle window") ||
		step(c, cluster_set_advisor_config(c, &cfg), "set the advisor configuration"))
	{
		cluster_destroy(c);
		return NULL;
	}
	return c;
}

/* Leave once (from a signal during the join, or at the end). */
static int
leave(struct gw *gw)
{
	if(gw->left)
	{
		return 0;
	}
	gw->left = 1;
	gw_log(LOG_INFO, "will now leave the cluster");
	if(step(gw->cluster, cluster_leave(gw->cluster), "leave the cluster"))
	{
		return -1;
	}
	if(errno)
	{
		/* left, but the registry could not be told (a passive gateway
		 * registers nothing, so this is only a safety net) */
		gw_log(LOG_WARNING, "left; the registry was unreachable (%s)", cli_registry_cause(errno));
		return 0;
	}
	gw_log(LOG_INFO, "successfully left the cluster");
	return 0;
}

/* SIGTERM/SIGINT: stop taking connections and end the loop once what is
 * queued has been written; main() then leaves the cluster. */
static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct gw *gw = arg;
	struct timeval drain = { 0, DRAIN_MS * 1000 };

	(void) what;
	gw_log(LOG_NOTICE, "signal %d received, will terminate", (int) sig);
	if(gw->join_pending && leave(gw))
	{
		/* (the join returns ECANCELED at once) */
		gw->exit_code = GW_EXIT_ERROR;
	}
	gw_http_stop_accepting(gw);
	event_del(refresh);
	event_del(sig_term);
	event_del(sig_int);
	if(gw_tcp_stop_accepting(gw))
	{
		/* proxied connections go on until they end (on_tcp_drained) or
		 * until --drain-time */
		struct timeval deadline = { gw->opts->drain_ms / 1000, (gw->opts->drain_ms % 1000) * 1000 };

		gw_log(LOG_NOTICE, "waiting up to %d ms for %zu proxied connection%s to end", gw->opts->drain_ms, gw->tcp_active,
			gw->tcp_active == 1 ? "" : "s");
		event_base_loopexit(gw->base, &deadline);
		return;
	}
	event_base_loopexit(gw->base, &drain);
}

/* The last proxied connection ended during the shutdown. */
static void
on_tcp_drained(evutil_socket_t fd, short what, void *arg)
{
	struct gw *gw = arg;
	struct timeval drain = { 0, DRAIN_MS * 1000 };

	(void) fd;
	(void) what;
	event_base_loopexit(gw->base, &drain);
}

/* The refresh timer: statuses change without a callback, so copy the
 * member list now and then, through the same hand-off as the balancer. */
static void
on_refresh(evutil_socket_t fd, short what, void *arg)
{
	struct gw *gw = arg;
	struct gw_snapshot *snap;

	(void) fd;
	(void) what;
	if(cluster_view_fresh(gw->cluster, NULL) == 1)
	{
		gw->last_fresh_ms = gw_now_ms();
	}
	snap = gw_snapshot_take(gw->cluster);
	if(snap)
	{
		gw_view_offer(&gw->view, snap);
	}
	gw_register_expire(gw);
}

/* The events main() needs besides HTTP's. 0, or -1 after saying why. */
static int
add_events(struct gw *gw)
{
	sig_term = evsignal_new(gw->base, SIGTERM, on_signal, gw);
	sig_int = evsignal_new(gw->base, SIGINT, on_signal, gw);
	refresh = event_new(gw->base, -1, EV_PERSIST, on_refresh, gw);
	gw->tcp_drain_done = event_new(gw->base, -1, 0, on_tcp_drained, gw);
	if(!sig_term || !sig_int || !refresh || !gw->tcp_drain_done || evsignal_add(sig_term, NULL) || evsignal_add(sig_int, NULL))
	{
		gw_log(LOG_ERR, "cannot set up the event loop's signals and timer");
		return -1;
	}
	return 0;
}

static void
free_events(struct gw *gw)
{
	if(gw->tcp_drain_done)
	{
		event_free(gw->tcp_drain_done);
	}
	if(sig_term)
	{
		event_free(sig_term);
	}
	if(sig_int)
	{
		event_free(sig_int);
	}
	if(refresh)
	{
		event_free(refresh);
	}
}

/* The join thread: join, record the outcome (the reason is thread-local,
 * so it is copied here), and wake the loop. */
static void *
join_main(void *arg)
{
	struct gw *gw = arg;

	gw->join_result = cluster_join_passive(gw->cluster);
	gw->join_errno = errno;
	if(gw->join_result)
	{
		snprintf(gw->join_errmsg, sizeof(gw->join_errmsg), "%s", cluster_errmsg(gw->cluster));
	}
	event_active(gw->join_done, EV_READ, 0);
	return NULL;
}

/* The join is over (loop thread): serve, or end with the reason. A join
 * cancelled by a signal is the shutdown that signal asked for. */
static void
on_join_done(evutil_socket_t fd, short what, void *arg)
{
	struct gw *gw = arg;
	struct timeval every = { 0, REFRESH_MS * 1000 };
	CLUSTERSTATE st;

	(void) fd;
	(void) what;
	gw->join_pending = 0;
	if(gw->join_result)
	{
		if(!gw->left)
		{
			gw_log(LOG_ERR, "failed to join the cluster: %s (%s)", cli_registry_cause(gw->join_errno), gw->join_errmsg);
			gw->exit_code = GW_EXIT_ERROR;
		}
		event_base_loopbreak(gw->base);
		return;
	}
	if(gw->left)
	{
		/* joined just before a signal's leave: nothing to serve */
		return;
	}
	gw->last_fresh_ms = gw_now_ms();
	if(cluster_state(gw->cluster, &st) == 0)
	{
		gw_log(LOG_NOTICE, "passively-joined a cluster of %d worker%s", st.total, st.total == 1 ? "" : "s");
	}
	if(evtimer_add(refresh, &every))
	{
		gw_log(LOG_ERR, "cannot start the refresh timer");
		gw->exit_code = GW_EXIT_ERROR;
		event_base_loopbreak(gw->base);
	}
}

/* Start the join thread and run the loop until a signal or a failed
 * join; then leave (cancelling a join still running) and wait for the
 * thread. Returns the exit code. */
static int
run(struct gw *gw)
{
	char bound[300];
	int err;

	if(gw_http_bound(gw, bound, sizeof(bound)))
	{
		gw_log(LOG_ERR, "cannot read the HTTP socket's address: %s", strerror(errno));
		return GW_EXIT_ERROR;
	}
	gw->join_done = event_new(gw->base, -1, 0, on_join_done, gw);
	if(!gw->join_done)
	{
		gw_log(LOG_ERR, "cannot set up the event loop: out of memory");
		return GW_EXIT_ERROR;
	}
	gw->join_pending = 1;
	err = pthread_create(&gw->join_thread, NULL, join_main, gw);
	if(err)
	{
		gw_log(LOG_ERR, "cannot start the join thread: %s", strerror(err));
		return GW_EXIT_ERROR;
	}
	/* requests are answered from now on: 503 from /healthz and the
	 * picks until the join has succeeded */
	printf("listening http %s\n", bound);
	if(gw->tcp_listener)
	{
		if(gw_tcp_bound(gw, bound, sizeof(bound)))
		{
			gw_log(LOG_ERR, "cannot read the TCP socket's address: %s", strerror(errno));
			return GW_EXIT_ERROR;
		}
		printf("listening tcp %s\n", bound);
	}
	fflush(stdout);
	if(event_base_dispatch(gw->base) == -1)
	{
		gw_log(LOG_ERR, "the event loop failed");
		gw->exit_code = GW_EXIT_ERROR;
	}
	/* a join still running is cancelled by the leave */
	if(gw->join_pending && leave(gw))
	{
		gw->exit_code = GW_EXIT_ERROR;
	}
	pthread_join(gw->join_thread, NULL);
	if(gw->join_result == 0 && leave(gw))
	{
		gw->exit_code = GW_EXIT_ERROR;
	}
	return gw->exit_code;
}

/*
 * The event loop. With epoll, libevent's change list folds the read and
 * write interest changes made during one loop iteration (the TCP
 * proxy's dialling bufferevents; an HTTP answer that must wait) into one
 * epoll_ctl() per descriptor. When the HTTP server was evhttp, which
 * switched interest for every answer, it raised bench-gateway's
 * redirects per second by about 30 %. Its one caveat, descriptors
 * copied with dup(), does not arise here.
 */
static struct event_base *
new_base(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if(!cfg)
	{
		return NULL;
	}
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

int
main(int argc, char **argv)
{
	struct gw_options opts;
	struct gw gw;
	int r;

	r = gw_parse_options(argc, argv, &opts);
	if(r)
	{
		return r < 0 ? GW_EXIT_OK : r;
	}
	gw_set_verbose(opts.verbose);
	memset(&gw, 0, sizeof(gw));
	gw.opts = &opts;
	/* a client that hangs up mid-answer must not end the process */
	signal(SIGPIPE, SIG_IGN);
	if(evthread_use_pthreads() || !(gw.base = new_base()))
	{
		gw_log(LOG_ERR, "cannot create the event loop");
		return GW_EXIT_ERROR;
	}
	r = GW_EXIT_ERROR;
	if(gw_view_init(&gw.view, gw.base) == 0)
	{
		if(add_events(&gw) == 0 && gw_http_start(&gw) == 0 && gw_tcp_start(&gw) == 0 && (gw.cluster = setup(&gw)) &&
			gw_register_start(&gw) == 0)
		{
			r = run(&gw);
		}
		/* the registered workers leave before the gateway does */
		gw_register_stop(&gw);
		/* the library's threads and the join thread are gone after this:
		 * nothing else can touch the view's event */
		cluster_destroy(gw.cluster);
		gw_tcp_free(&gw);
		gw_http_free(&gw);
		gw_view_destroy(&gw.view);
		if(gw.join_done)
		{
			event_free(gw.join_done);
		}
	}
	free_events(&gw);
	event_base_free(gw.base);
	return r;
}
