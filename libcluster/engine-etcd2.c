/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd v2 engine ("etcd2+http://host:port/"): the original libcluster's
 * key layout and value format, so old and new instances can share one
 * directory on etcd 3.4/3.5 servers started with --enable-v2 (v2 is gone
 * in etcd 3.6). Its defects are not kept:
 *  - keys are refreshed with refresh=true (TTL only: wakes no watcher);
 *  - a key that vanished (expired, deleted) is re-created: never ejected;
 *  - the watch resumes from waitIndex and re-lists when history is gone;
 *  - every request has a timeout and leave never waits for an event;
 *  - a failed write or watch is retried at a pace (500 ms; 50 ms doubling
 *    to 1 s), never in a loop, and an outage is warned about once.
 * Connection-advisor statuses need the v3 engine (v2 values are only the
 * worker count).
 */
#include "util.h"
#include "engine.h"
#include "waker.h"
#include "etcd2-proto.h"
#include "etcd3-proto.h"
#include "member-table.h"
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FORM "application/x-www-form-urlencoded"
/* A v2 long poll is re-armed after this much silence (not an error). */
#define WATCH_POLL_MS        60000
#define WATCH_BACKOFF_MIN_MS 50
#define WATCH_BACKOFF_MAX_MS 1000
/* Retry pause of the ping thread after a failed request (ms). */
#define PING_RETRY_MS 500

typedef struct etcd2 etcd2;
struct etcd2
{
	CLUSTER *core;                     /* the handle, for the hooks only */
	const cluster__engine_config *cfg; /* while joined */
	char **endpoints;
	size_t n_endpoints;
	char *dir;       /* "/<key>[/<partition>]/<env>" */
	char *dir_path;  /* "/v2/keys" + dir */
	char *self_path; /* dir_path + "/<id>" */
	cluster__http *ping_http;
	cluster__http *watch_http;
	pthread_t ping_thread;
	pthread_t watch_thread;
	int ping_running;
	int watch_running;
	/* the threads' stop flag; its mutex also guards the fields below
	 * and is never held over I/O */
	cluster__waker w;
	unsigned long value_gen;   /* bumped when the worker count changes */
	unsigned long written_gen; /* value_gen of the last value written */
	int ping_ok;
	int watch_ok;
	cluster__table table; /* join, then the watch thread only */
	uint64_t next_index;
	int over_limit; /* (watch thread) the directory was found past CLUSTER_MEMBERS_MAX */
};

static int
etcd2_create(CLUSTER *core, const char *uri, void **out)
{
	const char *why = "";
	etcd2 *e;
	int r;

	e = calloc(1, sizeof(*e));
	if(!e)
	{
		return ENOMEM;
	}
	/* "etcd2+http://a,etcd2+http://b" or "etcd2+http://a,http://b" */
	{
		char *plain = malloc(strlen(uri) + 1), *w = plain;
		const char *p = uri;

		if(!plain)
		{
			free(e);
			return ENOMEM;
		}
		while(*p)
		{
			if(!strncasecmp(p, "etcd2+", 6) && (p == uri || p[-1] == ',' || p[-1] == ' '))
			{
				p += 6;
				continue;
			}
			*w++ = *p++;
		}
		*w = 0;
		r = cluster__http_parse_endpoints(plain, &e->endpoints, &e->n_endpoints, &why);
		free(plain);
	}
	if(r)
	{
		if(r == EINVAL)
		{
			char shown[CLUSTER__ESCAPE_SIZE(200)];

			cluster__log(core, LOG_ERR, "libcluster: etcd2: invalid registry URI <%s>: %s\n", cluster__escape_uri(shown, uri), why);
		}
		free(e);
		return r;
	}
	e->core = core;
	cluster__waker_init(&e->w);
	*out = e;
	return 0;
}

static void
etcd2_destroy(void *engine)
{
	etcd2 *e = engine;

	if(!e)
	{
		return;
	}
	cluster__http_endpoints_free(e->endpoints, e->n_endpoints);
	cluster__waker_destroy(&e->w);
	free(e);
}

static cluster__http *
new_http(etcd2 *e, int timeout_ms)
{
	cluster__http_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoints = e->endpoints;
	cfg.n_endpoints = e->n_endpoints;
	cfg.connect_timeout_ms = CLUSTER_CONNECT_TIMEOUT_MS;
	cfg.timeout_ms = timeout_ms;
	cfg.ca_file = e->cfg->ca_file;
	cfg.cert_file = e->cfg->cert_file;
	cfg.key_file = e->cfg->key_file;
	cfg.user = e->cfg->user;
	cfg.password = e->cfg->password;
	cfg.verbose = cluster__verbose(e->core);
	return cluster__http_create(&cfg, e->core);
}

/* Wait up to ms for stop; returns non-zero if stopping. Nothing else
 * cuts the wait short: a retry pause is a pause whatever happens. */
static int
pause_ms(etcd2 *e, int ms)
{
	return cluster__waker_nap(&e->w, ms, 0);
}

static void
update_fresh(etcd2 *e, int *slot, int ok)
{
	int fresh;

	cluster__waker_lock(&e->w);
	*slot = ok;
	fresh = e->ping_ok && e->watch_ok;
	cluster__waker_unlock(&e->w);
	cluster__set_fresh(e->core, fresh);
}

/* HTTP status of a failed write/read -> errno for the application. */
static int
status_errno(long status)
{
	if(status == 401 || status == 403)
	{
		return EACCES;
	}
	return EIO;
}

/* PUT this instance's key. mode: "create" (prevExist=false), "update"
 * (prevExist=true, new value: wakes watchers) or "refresh" (TTL only). */
static int
put_self(etcd2 *e, cluster__http *http, const char *mode, long *status)
{
	cluster__http_response resp;
	char path[1024], body[64];
	int r;

	if(!strcmp(mode, "refresh"))
	{
		snprintf(path, sizeof(path), "%s?refresh=true&prevExist=true", e->self_path);
		snprintf(body, sizeof(body), "ttl=%d", e->cfg->ttl);
	}
	else
	{
		snprintf(path, sizeof(path), "%s?prevExist=%s", e->self_path, strcmp(mode, "create") ? "true" : "false");
		snprintf(body, sizeof(body), "value=%d&ttl=%d", cluster__get_workers(e->core), e->cfg->ttl);
	}
	memset(&resp, 0, sizeof(resp));
	r = cluster__http_request(http, "PUT", path, FORM, body, &resp);
	*status = resp.status;
	cluster__http_response_free(&resp);
	return r;
}

/* The directory holds more members than the process will: say so once
 * per episode (the watch thread retries while it lasts). */
static void
log_over_limit(etcd2 *e)
{
	cluster__log(e->core, e->over_limit ? LOG_DEBUG : LOG_ERR,
		"libcluster: etcd2: %s holds more than CLUSTER_MEMBERS_MAX (%d) members; they are not read and the view is not updated\n",
		e->dir, CLUSTER_MEMBERS_MAX);
	e->over_limit = 1;
}

/* List the directory into the table; *index gets X-Etcd-Index. The table
 * is replaced only by a complete listing: on failure it is unchanged and
 * the reason is in why (the caller logs it, once per outage). */
static int
list_dir(etcd2 *e, cluster__http *http, uint64_t *index, char *why, size_t whylen)
{
	cluster__http_response resp;
	cluster__table t;
	cluster__member *m = NULL;
	size_t n = 0, skipped = 0, i;
	int r;

	memset(&resp, 0, sizeof(resp));
	r = cluster__http_request(http, "GET", e->dir_path, NULL, NULL, &resp);
	if(r)
	{
		snprintf(why, whylen, "%s", cluster__http_error(http, r));
		return r;
	}
	*index = resp.etcd_index ? strtoull(resp.etcd_index, NULL, 10) : 0;
	if(resp.status == 404)
	{
		/* no directory yet: nobody has registered */
		r = 0;
	}
	else if(resp.status != 200)
	{
		snprintf(why, whylen, "listing %s failed with HTTP status %ld", e->dir, resp.status);
		r = status_errno(resp.status);
	}
	else
	{
		r = cluster__etcd2_parse_list(resp.body, resp.len, e->dir, &m, &n, &skipped);
		if(r == EPROTO)
		{
			snprintf(why, whylen, "the listing of %s is not a v2 directory", e->dir);
			r = EIO;
		}
		else if(r == E2BIG)
		{
			log_over_limit(e);
			snprintf(why, whylen, "%s holds more than CLUSTER_MEMBERS_MAX (%d) members", e->dir, CLUSTER_MEMBERS_MAX);
		}
		else if(r)
		{
			snprintf(why, whylen, "%s", strerror(r));
		}
	}
	cluster__http_response_free(&resp);
	if(r)
	{
		return r;
	}
	if(skipped)
	{
		cluster__log(e->core, LOG_WARNING, "libcluster: etcd2: left out %zu entries of %s that are not members (bad id or worker count)\n", skipped, e->dir);
	}
	memset(&t, 0, sizeof(t));
	for(i = 0; i < n && !r; i++)
	{
		r = cluster__table_put(&t, &m[i], cluster__now_ms(), NULL);
	}
	free(m);
	if(r == E2BIG)
	{
		log_over_limit(e);
		snprintf(why, whylen, "%s holds more than CLUSTER_MEMBERS_MAX (%d) members", e->dir, CLUSTER_MEMBERS_MAX);
	}
	else if(r)
	{
		snprintf(why, whylen, "%s", strerror(r));
	}
	if(!r && !*index)
	{
		snprintf(why, whylen, "the listing of %s carried no X-Etcd-Index", e->dir);
		r = EIO;
	}
	if(r)
	{
		cluster__table_free(&t);
		return r;
	}
	cluster__table_free(&e->table);
	e->table = t;
	return 0;
}

/* Returns cluster__publish_tables()'s verdict. The index comes from the
 * registry: subtract in unsigned arithmetic so a hostile one cannot
 * overflow. */
static int
publish(etcd2 *e)
{
	return cluster__publish_tables(e->core, &e->table, NULL, (int64_t) (e->next_index - 1), 0);
}

/* Apply one long-poll answer; returns 0, ESTALE when history is gone,
 * E2BIG when a new member would take the table past CLUSTER_MEMBERS_MAX
 * (the table is then not the directory's whole content: nothing is
 * published until a listing within the limit replaces it), or another
 * error with the reason in why (the caller logs it: a registry that keeps
 * answering nonsense must not fill the log). */
static int
apply_watch(etcd2 *e, cluster__http_response *resp, char *why, size_t whylen)
{
	cluster__etcd2_event ev;
	uint64_t idx;
	int code, r;

	if(resp->status == 400 && !cluster__etcd2_parse_error(resp->body, resp->len, &code, &idx) && code == 401)
	{
		return ESTALE;
	}
	if(resp->status != 200 || cluster__etcd2_parse_event(resp->body, resp->len, e->dir, &ev))
	{
		snprintf(why, whylen, "unexpected watch answer (HTTP status %ld)", resp->status);
		return EIO;
	}
	e->next_index = ev.modified_index + 1;
	if(!ev.relevant)
	{
		return 0;
	}
	if(ev.removed || !ev.workers)
	{
		if(!ev.removed)
		{
			cluster__log(e->core, LOG_WARNING, "libcluster: etcd2: member %s has an invalid worker count; leaving it out\n", ev.id);
		}
		cluster__table_del(&e->table, ev.id);
	}
	else
	{
		cluster__member m;

		memset(&m, 0, sizeof(m));
		memcpy(m.id, ev.id, sizeof(m.id));
		m.workers = ev.workers;
		m.mod_revision = (int64_t) ev.modified_index;
		r = cluster__table_put(&e->table, &m, cluster__now_ms(), NULL);
		if(r == E2BIG)
		{
			log_over_limit(e);
			snprintf(why, whylen, "%s holds more than CLUSTER_MEMBERS_MAX (%d) members", e->dir, CLUSTER_MEMBERS_MAX);
		}
		if(r)
		{
			return r;
		}
	}
	publish(e);
	return 0;
}

/*
 * Balancer thread: long-poll the directory from next_index, apply each
 * event, re-list when the history window has moved past us or the table
 * had to refuse a member (over CLUSTER_MEMBERS_MAX: until a listing is
 * back within the limit the view stays as it was and is marked stale).
 * On errors it switches endpoints and backs off (50 ms doubling to 1 s,
 * reset by a good answer), as the v3 watch does; an outage is logged once
 * at WARNING, its repeats only at DEBUG (verbose).
 */
/* Watch thread: list the directory again and publish it; from then on
 * watch from the listing's index. */
static int
relist(etcd2 *e, char *why, size_t whylen)
{
	uint64_t index;
	int r;

	r = list_dir(e, e->watch_http, &index, why, whylen);
	if(r)
	{
		return r;
	}
	e->next_index = index + 1;
	if(e->over_limit)
	{
		cluster__log(e->core, LOG_NOTICE, "libcluster: etcd2: %s is back within CLUSTER_MEMBERS_MAX (%d members)\n", e->dir, CLUSTER_MEMBERS_MAX);
		e->over_limit = 0;
	}
	publish(e);
	return 0;
}

static void *
watch_main(void *arg)
{
	etcd2 *e = arg;
	int backoff = WATCH_BACKOFF_MIN_MS, failures = 0, need_list = 0;

	cluster__log(e->core, LOG_DEBUG, "libcluster: etcd2: re-balancing thread started for %s/%s at <%s>\n", e->cfg->key, e->cfg->env, cluster__http_endpoint(e->watch_http));
	/* the join's own view first (delivered as cluster_join() ends) */
	while(!cluster__first_view_delivered(e->core) && !cluster__waker_nap(&e->w, 5, 0))
	{
	}
	for(;;)
	{
		cluster__http_response resp;
		char path[1100], why[320];
		int64_t start;
		int r;

		why[0] = 0;
		if(need_list)
		{
			r = relist(e, why, sizeof(why));
			if(r == ECANCELED)
			{
				break;
			}
			if(r)
			{
				goto failed;
			}
			need_list = 0;
		}
		snprintf(path, sizeof(path), "%s?wait=true&recursive=true&waitIndex=%llu", e->dir_path, (unsigned long long) e->next_index);
		memset(&resp, 0, sizeof(resp));
		why[0] = 0;
		start = cluster__now_ms();
		r = cluster__http_request(e->watch_http, "GET", path, NULL, NULL, &resp);
		if(r == ECANCELED)
		{
			cluster__http_response_free(&resp);
			break;
		}
		if(r == ETIMEDOUT && cluster__now_ms() - start >= WATCH_POLL_MS / 2)
		{
			/* a quiet directory: re-arm (a connect timeout comes far
			 * sooner, and is a failure like any other) */
			r = 0;
		}
		else if(!r)
		{
			r = apply_watch(e, &resp, why, sizeof(why));
		}
		cluster__http_response_free(&resp);
		if(r == ESTALE)
		{
			cluster__log(e->core, LOG_NOTICE, "libcluster: etcd2: watch history of %s was cleared; re-reading\n", e->dir);
			r = relist(e, why, sizeof(why));
		}
		if(r == ECANCELED)
		{
			break;
		}
		if(!r)
		{
			if(failures)
			{
				cluster__log(e->core, LOG_NOTICE, "libcluster: etcd2: receiving changes from <%s> again\n", cluster__http_endpoint(e->watch_http));
			}
			backoff = WATCH_BACKOFF_MIN_MS;
			failures = 0;
			update_fresh(e, &e->watch_ok, 1);
			continue;
		}
failed:
		if(!why[0])
		{
			snprintf(why, sizeof(why), "%s", cluster__http_error(e->watch_http, r));
		}
		update_fresh(e, &e->watch_ok, 0);
		if(r == E2BIG)
		{
			/* the table lacks the refused member: it is no view until a
			 * listing within the limit replaces it (log_over_limit() said so) */
			need_list = 1;
		}
		else if(!failures++)
		{
			cluster__log(e->core, LOG_WARNING, "libcluster: etcd2: failed to receive changes from <%s>: %s; retrying\n", cluster__http_endpoint(e->watch_http), why);
		}
		else if(cluster__verbose(e->core))
		{
			cluster__log(e->core, LOG_DEBUG, "libcluster: etcd2: failed again to receive changes from <%s>: %s; retrying in %d ms\n", cluster__http_endpoint(e->watch_http), why, backoff);
		}
		cluster__http_next_endpoint(e->watch_http);
		if(pause_ms(e, backoff))
		{
			break;
		}
		backoff = backoff * 2 > WATCH_BACKOFF_MAX_MS ? WATCH_BACKOFF_MAX_MS : backoff * 2;
	}
	cluster__log(e->core, LOG_DEBUG, "libcluster: etcd2: balancing thread is terminating\n");
	return NULL;
}

/*
 * Ping thread: refresh the TTL every TTL/3 (refresh=true wakes nobody);
 * write a new worker count (value_gen ahead of written_gen) at once; re-
 * create the key if it vanished, so a live process is never ejected for
 * good. After a failure nothing is sent again for PING_RETRY_MS (or TTL/3
 * if shorter), however often the count changes meanwhile: etcd being away
 * must not make us spin. An outage is logged once at WARNING, its repeats
 * only at DEBUG (verbose).
 */
static void *
ping_main(void *arg)
{
	etcd2 *e = arg;
	int interval = e->cfg->ttl * 1000 / 3;
	int retry = interval < PING_RETRY_MS ? interval : PING_RETRY_MS;
	int64_t next_refresh = cluster__now_ms() + interval, retry_at = 0;
	int failures = 0;

	cluster__log(e->core, LOG_DEBUG, "libcluster: etcd2: ping thread starting with ttl=%d, refresh=%dms\n", e->cfg->ttl, interval);
	for(;;)
	{
		const char *mode = "refresh";
		unsigned long gen;
		long status = 0;
		char why[64];
		int64_t now;
		int r;

		cluster__waker_lock(&e->w);
		for(;;)
		{
			int64_t due = next_refresh;

			now = cluster__now_ms();
			if(e->value_gen != e->written_gen)
			{
				int64_t w = retry_at > now ? retry_at : now;

				due = w < due ? w : due;
			}
			if(e->w.stop || now >= due)
			{
				break;
			}
			/* any raise (a new worker count) makes it look again */
			cluster__waker_nap_locked(&e->w, due - now, ~0u);
			e->w.flags = 0;
		}
		if(e->w.stop)
		{
			cluster__waker_unlock(&e->w);
			break;
		}
		/* the count is read (by put_self) after gen: never older than gen */
		gen = e->value_gen;
		if(gen != e->written_gen)
		{
			mode = "update";
		}
		cluster__waker_unlock(&e->w);
		r = put_self(e, e->ping_http, mode, &status);
		if(!r && status == 404)
		{
			cluster__log(e->core, LOG_NOTICE, "libcluster: etcd2: registration of %s had gone; re-registering\n", e->cfg->instance);
			r = put_self(e, e->ping_http, "create", &status);
		}
		if(r == ECANCELED)
		{
			break;
		}
		now = cluster__now_ms();
		if(!r && status >= 200 && status < 300)
		{
			if(failures)
			{
				cluster__log(e->core, LOG_NOTICE, "libcluster: etcd2: registry reachable again at <%s>\n", cluster__http_endpoint(e->ping_http));
			}
			failures = 0;
			next_refresh = now + interval;
			retry_at = 0;
			cluster__waker_lock(&e->w);
			if(gen > e->written_gen)
			{
				e->written_gen = gen;
			}
			cluster__waker_raise_locked(&e->w, 0);
			cluster__waker_unlock(&e->w);
			update_fresh(e, &e->ping_ok, 1);
			continue;
		}
		if(r)
		{
			snprintf(why, sizeof(why), "%s", cluster__http_error(e->ping_http, r));
		}
		else
		{
			snprintf(why, sizeof(why), "HTTP status %ld", status);
		}
		update_fresh(e, &e->ping_ok, 0);
		if(!failures++)
		{
			cluster__log(e->core, LOG_WARNING, "libcluster: etcd2: cannot %s %s at <%s>: %s; retrying every %d ms\n", mode, e->cfg->instance, cluster__http_endpoint(e->ping_http), why, retry);
		}
		else if(cluster__verbose(e->core))
		{
			cluster__log(e->core, LOG_DEBUG, "libcluster: etcd2: cannot %s %s at <%s> (%d failures in a row): %s\n", mode, e->cfg->instance, cluster__http_endpoint(e->ping_http), failures, why);
		}
		cluster__http_next_endpoint(e->ping_http);
		retry_at = now + PING_RETRY_MS;
		next_refresh = now + retry;
	}
	cluster__log(e->core, LOG_DEBUG, "libcluster: etcd2: ping thread is terminating\n");
	return NULL;
}

/* Create our key; if a live (or crashed) instance holds the id, wait up
 * to TTL + 2 s for its key to expire before giving up with EEXIST. */
static int
register_self(etcd2 *e)
{
	int64_t deadline = cluster__now_ms() + e->cfg->ttl * 1000 + CLUSTER__DUPLICATE_GRACE_MS;
	int warned = 0;

	for(;;)
	{
		long status = 0;
		int r = put_self(e, e->ping_http, "create", &status);

		if(r)
		{
			cluster__log(e->core, LOG_ERR, "libcluster: etcd2: cannot register %s at <%s>: %s\n", e->cfg->instance, cluster__http_endpoint(e->ping_http), cluster__http_error(e->ping_http, r));
			return r;
		}
		if(status == 201 || status == 200)
		{
			return 0;
		}
		if(status != 412)
		{
			cluster__log(e->core, LOG_ERR, "libcluster: etcd2: cannot register %s: HTTP status %ld\n", e->cfg->instance, status);
			return status_errno(status);
		}
		if(cluster__now_ms() >= deadline)
		{
			cluster__log(e->core, LOG_ERR, "libcluster: etcd2: instance id %s is held by a live instance of %s/%s\n", e->cfg->instance, e->cfg->key, e->cfg->env);
			return EEXIST;
		}
		if(!warned)
		{
			cluster__log(e->core, LOG_WARNING, "libcluster: etcd2: instance id %s is registered already; waiting up to %d s for it to expire\n", e->cfg->instance, e->cfg->ttl + 1);
			warned = 1;
		}
		pause_ms(e, 250);
	}
}

static void
drop_http(etcd2 *e)
{
	cluster__http_destroy(e->ping_http);
	cluster__http_destroy(e->watch_http);
	e->ping_http = e->watch_http = NULL;
	free(e->dir);
	free(e->dir_path);
	free(e->self_path);
	e->dir = e->dir_path = e->self_path = NULL;
	cluster__table_free(&e->table);
}

static char *
strfmt(const char *a, const char *b, const char *c, const char *d)
{
	size_t len = strlen(a) + strlen(b) + strlen(c) + strlen(d) + 1;
	char *s = malloc(len);

	if(s)
	{
		snprintf(s, len, "%s%s%s%s", a, b, c, d);
	}
	return s;
}

static int
etcd2_join(void *engine, const cluster__engine_config *cfg)
{
	etcd2 *e = engine;
	uint64_t index = 0;
	char why[320];
	int r;

	e->cfg = cfg;
	cluster__waker_reset(&e->w);
	e->value_gen = e->written_gen = 0;
	e->ping_ok = 1;
	e->watch_ok = 1;
	e->dir = e->cfg->partition ? strfmt("/", e->cfg->key, "/", e->cfg->partition) : strfmt("/", e->cfg->key, "", "");
	if(e->dir)
	{
		char *d = strfmt(e->dir, "/", e->cfg->env, "");

		free(e->dir);
		e->dir = d;
	}
	e->dir_path = e->dir ? strfmt("/v2/keys", e->dir, "", "") : NULL;
	e->self_path = e->dir_path ? strfmt(e->dir_path, "/", e->cfg->instance, "") : NULL;
	e->ping_http = new_http(e, e->cfg->request_timeout_ms);
	e->watch_http = new_http(e, WATCH_POLL_MS);
	if(!e->self_path || !e->ping_http || !e->watch_http)
	{
		drop_http(e);
		return ENOMEM;
	}
	if(!e->cfg->passive)
	{
		r = register_self(e);
		if(r)
		{
			drop_http(e);
			return r;
		}
	}
	why[0] = 0;
	r = list_dir(e, e->ping_http, &index, why, sizeof(why));
	if(!r)
	{
		/* the first view must exist (and the callback have run) before
		 * join returns; a listing that cannot make one is a failing registry */
		e->next_index = index + 1;
		cluster__set_fresh(e->core, 1);
		r = publish(e);
		r = r && r != ENOMEM ? EIO : r;
	}
	if(r)
	{
		if(r != E2BIG)
		{
			/* (E2BIG was said, with the limit) */
			cluster__log(e->core, LOG_ERR, "libcluster: etcd2: cannot read %s at <%s>: %s\n", e->dir, cluster__http_endpoint(e->ping_http), why[0] ? why : strerror(r));
		}
		if(!e->cfg->passive)
		{
			cluster__http_response resp;

			memset(&resp, 0, sizeof(resp));
			cluster__http_request(e->ping_http, "DELETE", e->self_path, NULL, NULL, &resp);
			cluster__http_response_free(&resp);
		}
		drop_http(e);
		return r;
	}
	if(pthread_create(&e->watch_thread, NULL, watch_main, e) == 0)
	{
		e->watch_running = 1;
	}
	if(e->watch_running && !e->cfg->passive && pthread_create(&e->ping_thread, NULL, ping_main, e) == 0)
	{
		e->ping_running = 1;
	}
	if(!e->watch_running || (!e->cfg->passive && !e->ping_running))
	{
		cluster__log(e->core, LOG_CRIT, "libcluster: etcd2: cannot start library threads\n");
		cluster__waker_stop(&e->w);
		cluster__http_cancel(e->watch_http);
		if(e->watch_running)
		{
			pthread_join(e->watch_thread, NULL);
		}
		e->watch_running = 0;
		drop_http(e);
		return EAGAIN;
	}
	return 0;
}

/* Stop both threads (cancelling any request in flight), then delete our
 * key within what is left of the leave budget. Returns 0 or why the key
 * could not be deleted. */
static int
etcd2_leave(void *engine)
{
	etcd2 *e = engine;
	int64_t start = cluster__now_ms();
	int cause = 0;

	cluster__waker_stop(&e->w);
	cluster__http_cancel(e->ping_http);
	cluster__http_cancel(e->watch_http);
	if(e->ping_running)
	{
		pthread_join(e->ping_thread, NULL);
		e->ping_running = 0;
	}
	if(e->watch_running)
	{
		pthread_join(e->watch_thread, NULL);
		e->watch_running = 0;
	}
	if(!e->cfg->passive)
	{
		int left = CLUSTER_LEAVE_BUDGET_MS - (int) (cluster__now_ms() - start);
		cluster__http *http = left > 50 ? new_http(e, left) : NULL;

		cause = ETIMEDOUT;
		if(http)
		{
			cluster__http_response resp;

			memset(&resp, 0, sizeof(resp));
			cause = cluster__http_request(http, "DELETE", e->self_path, NULL, NULL, &resp);
			if(!cause && resp.status >= 300 && resp.status != 404)
			{
				cause = EIO;
			}
			cluster__http_response_free(&resp);
			cluster__http_destroy(http);
		}
		if(cause)
		{
			cluster__log(e->core, LOG_WARNING, "libcluster: etcd2: could not remove %s in time (%s); it expires within %d s\n", e->cfg->instance,
				strerror(cause), e->cfg->ttl);
		}
	}
	drop_http(e);
	return cause;
}

/*
 * A new worker count: the ping thread writes it at once; wait a bounded
 * time for that so the registry usually holds it when cluster_set_workers()
 * returns. If etcd is away the ping thread keeps retrying (paced) and the
 * call still succeeds, because the count will reach the registry.
 */
static int
etcd2_workers_changed(void *engine, int workers)
{
	etcd2 *e = engine;
	struct timespec ts;
	unsigned long gen;
	int done;

	if(e->cfg->passive)
	{
		return 0;
	}
	(void) workers;
	cluster__deadline(&ts, e->cfg->request_timeout_ms + 500);
	cluster__waker_lock(&e->w);
	gen = ++e->value_gen;
	cluster__waker_raise_locked(&e->w, 1);
	while(e->written_gen < gen && !e->w.stop)
	{
		if(pthread_cond_timedwait(&e->w.cv, &e->w.m, &ts) == ETIMEDOUT)
		{
			break;
		}
	}
	done = e->written_gen >= gen;
	cluster__waker_unlock(&e->w);
	if(!done)
	{
		cluster__log(e->core, LOG_WARNING, "libcluster: etcd2: the new worker count is not in the registry yet; the ping thread keeps trying\n");
	}
	return 0;
}

const cluster__engine cluster__engine_etcd2 = {
	"etcd2",
	etcd2_create,
	etcd2_destroy,
	etcd2_join,
	etcd2_leave,
	etcd2_workers_changed,
	NULL,
	NULL,
	NULL,
	0 /* no settle tick: every view is delivered at once */,
	0 /* shards */
};
