/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The public API: object lifecycle, configuration, validation, state
 * getters, and the one path (apply_view) through which every engine's view
 * reaches the application.
 */
#include "cluster-int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_GETRANDOM
# include <sys/random.h>
#endif

/* Depth of library callbacks on this thread: control calls made from inside
 * one would wait for the calling thread itself. */
static __thread int callback_depth;

void
cluster__callback_enter(void)
{
	callback_depth++;
}

void
cluster__callback_leave(void)
{
	callback_depth--;
}

int
cluster__in_callback(void)
{
	return callback_depth > 0;
}

int64_t
cluster__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
cluster__cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}

void
cluster__deadline(struct timespec *ts, int64_t ms)
{
	if(ms < 0)
	{
		ms = 0;
	}
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t) (ms / 1000);
	ts->tv_nsec += (long) (ms % 1000) * 1000000L;
	if(ts->tv_nsec >= 1000000000L)
	{
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* ------------------------------------------------------------------ */
/* helpers                                                              */
/* ------------------------------------------------------------------ */

/*
 * Names become etcd key segments and log text: restrict them to a safe,
 * URL-neutral alphabet so no name can escape its directory (the original
 * let "../evil" write outside the cluster) or need escaping.
 */
int
cluster__check_name(CLUSTER *cluster, const char *field, const char *value)
{
	char shown[CLUSTER__ESCAPE_SIZE(40)];
	const char *more;
	size_t len, bad = 0;
	int rule;

	if(!value)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: %s must not be NULL\n", field);
		return EINVAL;
	}
	len = strlen(value);
	rule = cluster__name_check(value, len, &bad);
	if(rule == CLUSTER__NAME_OK)
	{
		return 0;
	}
	/* the value is what was refused: quote it escaped (a name may carry
	 * any byte), its first 40 bytes */
	cluster__escape(shown, sizeof(shown), value, len > 40 ? 40 : len);
	more = len > 40 ? "..." : "";
	switch(rule)
	{
	case CLUSTER__NAME_LENGTH:
		cluster__log(cluster, LOG_ERR, "libcluster: %s '%s%s' is invalid: it must be 1 to %d bytes long\n", field, shown, more, CLUSTER_NAME_MAX);
		break;
	case CLUSTER__NAME_DOTS:
		cluster__log(cluster, LOG_ERR, "libcluster: %s '%s%s' is invalid: it must not be '.' or '..'\n", field, shown, more);
		break;
	default:
		cluster__log(cluster, LOG_ERR, "libcluster: %s '%s%s' is invalid: byte %zu (0x%02x) is not one of [A-Za-z0-9._-]\n", field, shown, more, bad, (unsigned char) value[bad]);
		break;
	}
	return EINVAL;
}

static int
fail(int err)
{
	errno = err;
	return -1;
}

/* Refuse a configuration change while joined (the original's rule). */
static int
refuse_if_joined(CLUSTER *cluster)
{
	int joined;

	pthread_mutex_lock(&cluster->lock);
	joined = cluster->joined;
	pthread_mutex_unlock(&cluster->lock);
	if(joined)
	{
		cluster__log(cluster, LOG_NOTICE, "libcluster: cannot alter cluster parameters while joined\n");
		return EPERM;
	}
	return 0;
}

/*
 * Begin a control call: refuse from inside a library callback (it would
 * wait for its own thread), then serialise with other control calls.
 */
static int
control_begin(CLUSTER *cluster)
{
	if(cluster__in_callback())
	{
		cluster__log(cluster, LOG_ERR, "libcluster: this call cannot be made from inside a libcluster callback\n");
		return EDEADLK;
	}
	pthread_mutex_lock(&cluster->control);
	return 0;
}

static void
control_end(CLUSTER *cluster)
{
	pthread_mutex_unlock(&cluster->control);
}

/* Replace *slot with a copy of value (NULL allowed); ENOMEM leaves it. */
static int
replace_string(char **slot, const char *value)
{
	char *copy = NULL;

	if(value)
	{
		copy = strdup(value);
		if(!copy)
		{
			return ENOMEM;
		}
	}
	free(*slot);
	*slot = copy;
	return 0;
}

/* A fresh random instance id: 32 lower-case hex digits, like a UUID
 * without dashes (the original's format). */
static int
random_instance(char out[33])
{
	unsigned char raw[16];
	size_t got = 0;
	int i;

#ifdef HAVE_GETRANDOM
	while(got < sizeof(raw))
	{
		ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);

		if(r < 0)
		{
			if(errno == EINTR)
			{
				continue;
			}
			break;
		}
		got += (size_t) r;
	}
#endif
	if(got < sizeof(raw))
	{
		int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

		got = 0;
		while(fd >= 0 && got < sizeof(raw))
		{
			ssize_t r = read(fd, raw + got, sizeof(raw) - got);

			if(r <= 0)
			{
				break;
			}
			got += (size_t) r;
		}
		if(fd >= 0)
		{
			close(fd);
		}
		if(got < sizeof(raw))
		{
			return EIO;
		}
	}
	for(i = 0; i < 16; i++)
	{
		snprintf(out + i * 2, 3, "%02x", raw[i]);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                            */
/* ------------------------------------------------------------------ */

CLUSTER *
cluster_create(const char *key)
{
	CLUSTER *c;
	char id[33];
	int r;

	r = cluster__check_name(NULL, "cluster key", key);
	if(r)
	{
		errno = r;
		return NULL;
	}
	r = random_instance(id);
	if(r)
	{
		cluster__log(NULL, LOG_CRIT, "libcluster: cannot read random bytes for an instance id\n");
		errno = r;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if(!c)
	{
		return NULL;
	}
	pthread_mutex_init(&c->control, NULL);
	pthread_mutex_init(&c->lock, NULL);
	pthread_rwlock_init(&c->engine_lock, NULL);
	c->key = strdup(key);
	c->env = strdup(CLUSTER_DEFAULT_ENV);
	c->instance = strdup(id);
	if(!c->key || !c->env || !c->instance)
	{
		cluster_destroy(c);
		errno = ENOMEM;
		return NULL;
	}
	c->ttl = CLUSTER_TTL_DEFAULT;
	c->workers = 1;
	c->index = -1;
	c->view.self = -1;
	c->view.base = -1;
	c->engine = &cluster__engine_static;
	cluster_advisor_config_init(&c->advisor_config);
	return c;
}

int
cluster_destroy(CLUSTER *cluster)
{
	if(!cluster)
	{
		return 0;
	}
	if(cluster__in_callback())
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cluster_destroy() cannot be called from inside a libcluster callback\n");
		return fail(EDEADLK);
	}
	cluster_leave(cluster);
	cluster__advisor_free(cluster);
	pthread_rwlock_wrlock(&cluster->engine_lock);
	if(cluster->engine && cluster->engine->destroy && cluster->engine_data)
	{
		cluster->engine->destroy(cluster);
	}
	pthread_rwlock_unlock(&cluster->engine_lock);
	cluster__view_free(&cluster->view);
	free(cluster->key);
	free(cluster->env);
	free(cluster->partition);
	free(cluster->instance);
	free(cluster->registry);
	free(cluster->ca_file);
	free(cluster->cert_file);
	free(cluster->key_file);
	free(cluster->user);
	if(cluster->password)
	{
		memset(cluster->password, 0, strlen(cluster->password));
	}
	free(cluster->password);
	pthread_rwlock_destroy(&cluster->engine_lock);
	pthread_mutex_destroy(&cluster->lock);
	pthread_mutex_destroy(&cluster->control);
	free(cluster);
	return 0;
}

/*
 * Store a view and tell the application if this instance's base or the
 * total changed (or if this join has not reported anything yet). The
 * callback runs with no lock held, bracketed so that control calls made
 * from it fail with EDEADLK instead of deadlocking.
 */
static int
apply_view(CLUSTER *cluster, cluster__view *view)
{
	const char *tag = cluster->engine->name;
	CLUSTERBALANCE cb;
	CLUSTERSTATE st;
	int old_base, old_total, notify, verbose;
	size_t i;

	pthread_mutex_lock(&cluster->lock);
	if(!cluster->joined)
	{
		/* a late publish racing with leave: nothing to report any more */
		pthread_mutex_unlock(&cluster->lock);
		cluster__view_free(view);
		return 0;
	}
	old_base = cluster->index;
	old_total = cluster->total;
	notify = !cluster->announced || old_base != view->base || old_total != view->total;
	cluster__view_free(&cluster->view);
	cluster->view = *view;
	cluster->index = view->base;
	cluster->total = view->total;
	cluster->announced = 1;
	cb = cluster->balancer;
	verbose = cluster->verbose;
	st.index = cluster->index;
	st.workers = cluster->workers;
	st.total = cluster->total;
	st.passive = cluster->passive;
	pthread_mutex_unlock(&cluster->lock);
	memset(view, 0, sizeof(*view));

	if(!notify)
	{
		return 0;
	}
	if(verbose)
	{
		cluster__log(cluster, LOG_DEBUG, "libcluster: %s: re-balancing cluster %s%s%s%s/%s:\n", tag, cluster->key,
			cluster->partition ? "[" : "", cluster->partition ? cluster->partition : "", cluster->partition ? "]" : "", cluster->env);
		/* the listing is read from the stored view under the lock, a line at a time */
		for(i = 0;; i++)
		{
			char line[CLUSTER_NAME_MAX + 32];
			int have = 0;

			pthread_mutex_lock(&cluster->lock);
			if(i < cluster->view.count)
			{
				const cluster__member *m = &cluster->view.members[i];

				if(m->passive)
				{
					snprintf(line, sizeof(line), "%c %s [passive]\n", (long) i == cluster->view.self ? '*' : ' ', m->id);
				}
				else
				{
					snprintf(line, sizeof(line), "%c %s [%d]\n", (long) i == cluster->view.self ? '*' : ' ', m->id, m->base);
				}
				have = 1;
			}
			pthread_mutex_unlock(&cluster->lock);
			if(!have)
			{
				break;
			}
			cluster__log(cluster, LOG_DEBUG, "%s", line);
		}
	}
	if(old_base >= 0 && st.index < 0 && !st.passive)
	{
		cluster__log(cluster, LOG_NOTICE, "libcluster: %s: this instance is no longer a member of %s/%s\n", tag, cluster->key, cluster->env);
	}
	else
	{
		cluster__log(cluster, LOG_NOTICE, "libcluster: %s: cluster %s%s%s%s/%s has re-balanced: new base is %d (was %d), new total is %d (was %d)\n",
			tag, cluster->key, cluster->partition ? "[" : "", cluster->partition ? cluster->partition : "", cluster->partition ? "]" : "",
			cluster->env, st.index, old_base, st.total, old_total);
	}
	cluster__log(cluster, LOG_DEBUG, "libcluster: re-balanced; this instance has base index %d (%d workers) from a total of %d\n", st.index, st.workers, st.total);
	if(cb)
	{
		cluster__callback_enter();
		cb(cluster, &st);
		cluster__callback_leave();
	}
	return 0;
}

int
cluster__publish_view(CLUSTER *cluster, const cluster__member *members, size_t n, int64_t revision)
{
	cluster__view view;
	int r;

	r = cluster__view_compute(&view, members, n, cluster->instance, revision);
	if(r)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: %s: rejected a member set of %zu records at revision %lld: %s\n", cluster->engine->name, n, (long long) revision, strerror(r));
		return r;
	}
	if(view.self >= 0 && cluster->passive)
	{
		/* an observer is never counted, even if a record with its id exists */
		view.base = -1;
	}
	return apply_view(cluster, &view);
}

int
cluster__publish_static(CLUSTER *cluster, int base, int total)
{
	cluster__view view;

	memset(&view, 0, sizeof(view));
	view.members = calloc(1, sizeof(*view.members));
	if(!view.members)
	{
		return ENOMEM;
	}
	view.count = 1;
	view.self = 0;
	snprintf(view.members[0].id, sizeof(view.members[0].id), "%s", cluster->instance);
	view.members[0].workers = cluster__get_workers(cluster);
	view.members[0].passive = base < 0;
	view.members[0].base = base;
	view.members[0].received_ms = cluster__now_ms();
	view.base = base;
	view.total = total;
	return apply_view(cluster, &view);
}

void
cluster__set_fresh(CLUSTER *cluster, int fresh)
{
	pthread_mutex_lock(&cluster->lock);
	if(cluster->fresh != !!fresh)
	{
		cluster->fresh = !!fresh;
		cluster->fresh_since_ms = cluster__now_ms();
	}
	pthread_mutex_unlock(&cluster->lock);
}

void
cluster__get_status(CLUSTER *cluster, cluster__status *out)
{
	pthread_mutex_lock(&cluster->lock);
	*out = cluster->status;
	pthread_mutex_unlock(&cluster->lock);
}

int
cluster__get_workers(CLUSTER *cluster)
{
	int w;

	pthread_mutex_lock(&cluster->lock);
	w = cluster->workers;
	pthread_mutex_unlock(&cluster->lock);
	return w;
}

static int
join(CLUSTER *cluster, int passive)
{
	int r;

	r = control_begin(cluster);
	if(r)
	{
		return fail(r);
	}
	pthread_mutex_lock(&cluster->lock);
	if(cluster->joined)
	{
		pthread_mutex_unlock(&cluster->lock);
		control_end(cluster);
		return 0;
	}
	/* joined before the engine runs, so the first callback (inside
	 * cluster_join) may already use the getters */
	cluster->joined = 1;
	cluster->passive = passive;
	cluster->announced = 0;
	cluster->index = -1;
	cluster->total = 0;
	cluster->fresh = 0;
	pthread_mutex_unlock(&cluster->lock);

	r = cluster->engine->join(cluster);
	if(r)
	{
		pthread_mutex_lock(&cluster->lock);
		cluster->joined = 0;
		cluster->passive = 0;
		cluster->index = -1;
		cluster->total = 0;
		cluster->fresh = 0;
		cluster__view_free(&cluster->view);
		pthread_mutex_unlock(&cluster->lock);
		control_end(cluster);
		return fail(r);
	}
	r = cluster__advisor_start(cluster);
	if(r)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cannot start the advisor thread: %s\n", strerror(r));
	}
	control_end(cluster);
	return 0;
}

int
cluster_join(CLUSTER *cluster)
{
	return join(cluster, 0);
}

int
cluster_join_passive(CLUSTER *cluster)
{
	return join(cluster, 1);
}

int
cluster_leave(CLUSTER *cluster)
{
	CLUSTERBALANCE cb;
	CLUSTERSTATE st;
	int r;

	r = control_begin(cluster);
	if(r)
	{
		return fail(r);
	}
	pthread_mutex_lock(&cluster->lock);
	if(!cluster->joined)
	{
		pthread_mutex_unlock(&cluster->lock);
		control_end(cluster);
		return 0;
	}
	pthread_mutex_unlock(&cluster->lock);

	cluster__advisor_stop(cluster);
	cluster->engine->leave(cluster);

	pthread_mutex_lock(&cluster->lock);
	cluster->joined = 0;
	st.index = -1;
	st.workers = cluster->workers;
	/* what is left of the cluster once this instance is gone */
	st.total = cluster->total - (cluster->index >= 0 ? cluster->workers : 0);
	if(cluster->engine == &cluster__engine_static)
	{
		st.total = cluster->total;
	}
	st.passive = cluster->passive;
	cluster->index = -1;
	cluster->total = 0;
	cluster->fresh = 0;
	cluster->passive = 0;
	cluster__view_free(&cluster->view);
	cb = cluster->balancer;
	pthread_mutex_unlock(&cluster->lock);

	cluster__log(cluster, LOG_DEBUG, "libcluster: re-balanced; this instance has base index -1 (%d workers) from a total of %d\n", st.workers, st.total);
	if(cb)
	{
		cluster__callback_enter();
		cb(cluster, &st);
		cluster__callback_leave();
	}
	control_end(cluster);
	return 0;
}

/* ------------------------------------------------------------------ */
/* configuration                                                        */
/* ------------------------------------------------------------------ */

int
cluster_set_verbose(CLUSTER *cluster, int verbose)
{
	pthread_mutex_lock(&cluster->lock);
	cluster->verbose = !!verbose;
	pthread_mutex_unlock(&cluster->lock);
	return 0;
}

int
cluster_set_logger(CLUSTER *cluster, CLUSTERLOGGER logger)
{
	pthread_mutex_lock(&cluster->lock);
	cluster->logger = logger;
	pthread_mutex_unlock(&cluster->lock);
	return 0;
}

int
cluster_set_balancer(CLUSTER *cluster, CLUSTERBALANCE callback)
{
	pthread_mutex_lock(&cluster->lock);
	cluster->balancer = callback;
	pthread_mutex_unlock(&cluster->lock);
	return 0;
}

const char *
cluster_key(CLUSTER *cluster)
{
	return cluster->key;
}

const char *
cluster_env(CLUSTER *cluster)
{
	return cluster->env;
}

const char *
cluster_instance(CLUSTER *cluster)
{
	return cluster->instance;
}

const char *
cluster_partition(CLUSTER *cluster)
{
	errno = 0;
	return cluster->partition;
}

/*
 * The shape shared by the name setters: refuse inside callbacks and while
 * joined, validate, then swap the string; nothing changes on failure.
 */
static int
set_name(CLUSTER *cluster, char **slot, const char *field, const char *value, int null_ok)
{
	int r;

	r = control_begin(cluster);
	if(r)
	{
		return fail(r);
	}
	r = refuse_if_joined(cluster);
	if(!r && !(null_ok && !value))
	{
		r = cluster__check_name(cluster, field, value);
	}
	if(!r)
	{
		r = replace_string(slot, value);
	}
	control_end(cluster);
	if(r)
	{
		return fail(r);
	}
	if(cluster__verbose(cluster))
	{
		cluster__log(cluster, LOG_DEBUG, "libcluster: %s set to '%s'\n", field, *slot ? *slot : "(none)");
	}
	return 0;
}

int
cluster_set_env(CLUSTER *cluster, const char *env)
{
	return set_name(cluster, &cluster->env, "environment", env ? env : CLUSTER_DEFAULT_ENV, 0);
}

int
cluster_set_instance(CLUSTER *cluster, const char *instance)
{
	return set_name(cluster, &cluster->instance, "instance id", instance, 0);
}

int
cluster_set_partition(CLUSTER *cluster, const char *partition)
{
	return set_name(cluster, &cluster->partition, "partition", partition, 1);
}

int
cluster_reset_instance(CLUSTER *cluster)
{
	char id[33];
	int r;

	r = random_instance(id);
	if(r)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cannot read random bytes for an instance id\n");
		return fail(r);
	}
	return set_name(cluster, &cluster->instance, "instance id", id, 0);
}

int
cluster_set_workers(CLUSTER *cluster, int workers)
{
	int r, old, joined;

	r = control_begin(cluster);
	if(r)
	{
		return fail(r);
	}
	if(workers < 1 || workers > CLUSTER_WORKERS_MAX)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: worker count %d is invalid: it must be between 1 and %d\n", workers, CLUSTER_WORKERS_MAX);
		control_end(cluster);
		return fail(EINVAL);
	}
	pthread_mutex_lock(&cluster->lock);
	old = cluster->workers;
	cluster->workers = workers;
	joined = cluster->joined;
	pthread_mutex_unlock(&cluster->lock);
	r = 0;
	if(joined && old != workers && cluster->engine->workers_changed)
	{
		r = cluster->engine->workers_changed(cluster);
		if(r)
		{
			/* the engine refused: keep what was there */
			pthread_mutex_lock(&cluster->lock);
			cluster->workers = old;
			pthread_mutex_unlock(&cluster->lock);
		}
	}
	control_end(cluster);
	if(r)
	{
		return fail(r);
	}
	if(cluster__verbose(cluster))
	{
		cluster__log(cluster, LOG_DEBUG, "libcluster: number of workers in this cluster member set to %d\n", workers);
	}
	return 0;
}

int
cluster_set_threads(CLUSTER *cluster, int workers)
{
	return cluster_set_workers(cluster, workers);
}

/*
 * Switch engines without losing the old one on failure: the new engine
 * parses the URI into fresh engine data first, and only then is the old
 * engine's data released.
 */
int
cluster_set_registry(CLUSTER *cluster, const char *uri)
{
	const cluster__engine *engine, *old_engine;
	void *old_data;
	char *copy = NULL;
	int r;

	r = control_begin(cluster);
	if(r)
	{
		return fail(r);
	}
	r = refuse_if_joined(cluster);
	if(r)
	{
		control_end(cluster);
		return fail(r);
	}
	if(!uri)
	{
		engine = &cluster__engine_static;
	}
	else if(!strncmp(uri, "http://", 7) || !strncmp(uri, "https://", 8))
	{
		engine = &cluster__engine_etcd3;
	}
	else if(!strncmp(uri, "etcd2+http://", 13) || !strncmp(uri, "etcd2+https://", 14))
	{
		engine = &cluster__engine_etcd2;
	}
	else
	{
		char shown[CLUSTER__ESCAPE_SIZE(200)];

		cluster__log(cluster, LOG_ERR, "libcluster: unsupported scheme in registry URI <%s>: expected http://, https://, etcd2+http:// or etcd2+https://\n",
			cluster__escape(shown, sizeof(shown), uri, strlen(uri)));
		control_end(cluster);
		return fail(EINVAL);
	}
	if(uri && !(copy = strdup(uri)))
	{
		control_end(cluster);
		return fail(ENOMEM);
	}
	pthread_rwlock_wrlock(&cluster->engine_lock);
	old_engine = cluster->engine;
	old_data = cluster->engine_data;
	cluster->engine = engine;
	cluster->engine_data = NULL;
	r = engine->create(cluster, uri);
	if(r)
	{
		cluster->engine = old_engine;
		cluster->engine_data = old_data;
		pthread_rwlock_unlock(&cluster->engine_lock);
		free(copy);
		control_end(cluster);
		return fail(r);
	}
	if(old_data && old_engine->destroy)
	{
		void *new_data = cluster->engine_data;

		cluster->engine = old_engine;
		cluster->engine_data = old_data;
		old_engine->destroy(cluster);
		cluster->engine = engine;
		cluster->engine_data = new_data;
	}
	pthread_rwlock_unlock(&cluster->engine_lock);
	free(cluster->registry);
	cluster->registry = copy;
	control_end(cluster);
	return 0;
}

int
cluster_set_ttl(CLUSTER *cluster, int seconds)
{
	int r;

	r = control_begin(cluster);
	if(r)
	{
		return fail(r);
	}
	r = refuse_if_joined(cluster);
	if(!r && (seconds < CLUSTER_TTL_MIN || seconds > CLUSTER_TTL_MAX))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: TTL %d is invalid: it must be between %d and %d seconds\n", seconds, CLUSTER_TTL_MIN, CLUSTER_TTL_MAX);
		r = EINVAL;
	}
	if(!r)
	{
		cluster->ttl = seconds;
	}
	control_end(cluster);
	return r ? fail(r) : 0;
}

int
cluster_ttl(CLUSTER *cluster)
{
	return cluster->ttl;
}

/* An optional path: NULL means "not set"; "" is a mistake worth naming. */
static int
check_path(CLUSTER *cluster, const char *field, const char *value)
{
	if(value && !*value)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: %s must not be empty (pass NULL to unset it)\n", field);
		return EINVAL;
	}
	return 0;
}

int
cluster_set_tls(CLUSTER *cluster, const char *ca_file, const char *cert_file, const char *key_file)
{
	char *ca = NULL, *cert = NULL, *key = NULL;
	int r;

	r = control_begin(cluster);
	if(r)
	{
		return fail(r);
	}
	r = refuse_if_joined(cluster);
	if(!r)
	{
		r = check_path(cluster, "TLS CA file", ca_file);
	}
	if(!r)
	{
		r = check_path(cluster, "TLS certificate file", cert_file);
	}
	if(!r)
	{
		r = check_path(cluster, "TLS key file", key_file);
	}
	if(!r && (!!cert_file != !!key_file))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: a TLS client certificate and its key must be given together\n");
		r = EINVAL;
	}
	if(!r && (replace_string(&ca, ca_file) || replace_string(&cert, cert_file) || replace_string(&key, key_file)))
	{
		r = ENOMEM;
	}
	if(!r)
	{
		free(cluster->ca_file);
		free(cluster->cert_file);
		free(cluster->key_file);
		cluster->ca_file = ca;
		cluster->cert_file = cert;
		cluster->key_file = key;
		ca = cert = key = NULL;
	}
	free(ca);
	free(cert);
	free(key);
	control_end(cluster);
	return r ? fail(r) : 0;
}

int
cluster_set_credentials(CLUSTER *cluster, const char *user, const char *password)
{
	char *u = NULL, *p = NULL;
	int r;

	r = control_begin(cluster);
	if(r)
	{
		return fail(r);
	}
	r = refuse_if_joined(cluster);
	if(!r && (!!user != !!password))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: a user name and a password must be given together\n");
		r = EINVAL;
	}
	if(!r && user && (!*user || strchr(user, ':')))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: user name must be non-empty and must not contain ':'\n");
		r = EINVAL;
	}
	if(!r && (replace_string(&u, user) || replace_string(&p, password)))
	{
		r = ENOMEM;
	}
	if(!r)
	{
		free(cluster->user);
		if(cluster->password)
		{
			memset(cluster->password, 0, strlen(cluster->password));
		}
		free(cluster->password);
		cluster->user = u;
		cluster->password = p;
		u = p = NULL;
	}
	free(u);
	free(p);
	control_end(cluster);
	return r ? fail(r) : 0;
}

int
cluster_static_set_index(CLUSTER *cluster, int index)
{
	int r;

	r = control_begin(cluster);
	if(r)
	{
		return fail(r);
	}
	r = refuse_if_joined(cluster);
	if(!r && index < 0)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: static: base index %d is invalid: it must be 0 or more\n", index);
		r = EINVAL;
	}
	if(!r)
	{
		cluster->static_index = index;
	}
	control_end(cluster);
	if(r)
	{
		return fail(r);
	}
	if(cluster__verbose(cluster))
	{
		cluster__log(cluster, LOG_DEBUG, "libcluster: static: this member's base index set to %d\n", index);
	}
	return 0;
}

int
cluster_static_set_total(CLUSTER *cluster, int total)
{
	int r;

	r = control_begin(cluster);
	if(r)
	{
		return fail(r);
	}
	r = refuse_if_joined(cluster);
	if(!r && total < 1)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: static: total %d is invalid: it must be 1 or more\n", total);
		r = EINVAL;
	}
	if(!r)
	{
		cluster->static_total = total;
	}
	control_end(cluster);
	if(r)
	{
		return fail(r);
	}
	if(cluster__verbose(cluster))
	{
		cluster__log(cluster, LOG_DEBUG, "libcluster: static: total cluster worker count set to %d\n", total);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* state                                                                */
/* ------------------------------------------------------------------ */

int
cluster_index(CLUSTER *cluster, int worker)
{
	int joined, index, workers;

	pthread_mutex_lock(&cluster->lock);
	joined = cluster->joined;
	index = cluster->index;
	workers = cluster->workers;
	pthread_mutex_unlock(&cluster->lock);
	if(!joined)
	{
		cluster__log(cluster, LOG_WARNING, "libcluster: cannot obtain the cluster index because this instance has not joined a cluster\n");
		return fail(EPERM);
	}
	if(worker < 0 || worker >= workers)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: worker number %d is invalid: this instance has workers 0 to %d\n", worker, workers - 1);
		return fail(EINVAL);
	}
	if(index < 0)
	{
		return fail(ENOENT);
	}
	return index + worker;
}

int
cluster_total(CLUSTER *cluster)
{
	int joined, total;

	pthread_mutex_lock(&cluster->lock);
	joined = cluster->joined;
	total = cluster->total;
	pthread_mutex_unlock(&cluster->lock);
	if(!joined)
	{
		cluster__log(cluster, LOG_WARNING, "libcluster: cannot obtain the cluster total because this instance has not joined a cluster\n");
		errno = EPERM;
		return 0;
	}
	return total;
}

int
cluster_workers(CLUSTER *cluster)
{
	return cluster__get_workers(cluster);
}

int
cluster_state(CLUSTER *cluster, CLUSTERSTATE *state)
{
	if(!state)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cluster_state() needs a buffer\n");
		return fail(EINVAL);
	}
	pthread_mutex_lock(&cluster->lock);
	state->index = cluster->joined ? cluster->index : -1;
	state->workers = cluster->workers;
	state->total = cluster->joined ? cluster->total : 0;
	state->passive = cluster->joined ? cluster->passive : 0;
	pthread_mutex_unlock(&cluster->lock);
	return 0;
}

/* Copy the stored view (all members, or all but this instance). */
static int
copy_members(CLUSTER *cluster, CLUSTERMEMBER **members, size_t *count, int peers_only)
{
	CLUSTERMEMBER *out = NULL;
	int64_t now = cluster__now_ms();
	size_t i, n = 0;

	if(!members || !count)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cluster_members() needs an array pointer and a count pointer\n");
		return fail(EINVAL);
	}
	*members = NULL;
	*count = 0;
	pthread_mutex_lock(&cluster->lock);
	if(!cluster->joined)
	{
		pthread_mutex_unlock(&cluster->lock);
		return fail(EPERM);
	}
	if(cluster->view.count)
	{
		out = calloc(cluster->view.count, sizeof(*out));
		if(!out)
		{
			pthread_mutex_unlock(&cluster->lock);
			return fail(ENOMEM);
		}
	}
	for(i = 0; i < cluster->view.count; i++)
	{
		const cluster__member *m = &cluster->view.members[i];
		CLUSTERMEMBER *o = &out[n];
		int self = (long) i == cluster->view.self;

		if(peers_only && self)
		{
			continue;
		}
		memcpy(o->id, m->id, sizeof(o->id));
		o->workers = m->workers;
		o->base = m->base;
		o->passive = m->passive;
		o->self = self;
		o->has_status = m->has_status;
		memcpy(o->address, m->address, sizeof(o->address));
		o->load = m->load;
		o->capacity = m->capacity;
		o->age_ms = m->received_ms ? now - m->received_ms : 0;
		if(self && cluster->status.reported)
		{
			/* our own row shows what we reported last, which the registry
			 * copy may not carry yet (writes are rate-limited) */
			o->has_status = 1;
			memcpy(o->address, cluster->status.address, sizeof(o->address));
			o->load = cluster->status.load;
			o->capacity = cluster->status.capacity;
			o->age_ms = 0;
		}
		n++;
	}
	pthread_mutex_unlock(&cluster->lock);
	if(!n)
	{
		free(out);
		out = NULL;
	}
	*members = out;
	*count = n;
	return 0;
}

int
cluster_members(CLUSTER *cluster, CLUSTERMEMBER **members, size_t *count)
{
	return copy_members(cluster, members, count, 0);
}

int
cluster_peers(CLUSTER *cluster, CLUSTERMEMBER **members, size_t *count)
{
	return copy_members(cluster, members, count, 1);
}

void
cluster_members_free(CLUSTERMEMBER *members)
{
	free(members);
}

const char *
cluster_version(void)
{
	return PACKAGE_VERSION;
}
