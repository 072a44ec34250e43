/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The public API: object lifecycle, configuration, validation, state
 * getters, and the one path (apply_view) through which every engine's view
 * reaches the application.
 */
#include "advisor.h"
#include "advisor-inflight.h"
#include "cluster-int.h"
#include "report-policy.h"
#include "cert.h"

#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

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

/* Refuse a configuration change while joined (the original's rule). */
int
cluster__refuse_if_joined(CLUSTER *cluster)
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
int
cluster__control_begin(CLUSTER *cluster)
{
	if(cluster__in_callback(cluster))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: this call cannot be made from inside a libcluster callback\n");
		return EDEADLK;
	}
	pthread_mutex_lock(&cluster->control);
	return 0;
}

void
cluster__control_end(CLUSTER *cluster)
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

/*
 * Replace a name that a getter may have handed out: the getters return
 * the stored pointer (the original API), and a caller on another thread
 * may still be reading it, so the old string is retired, not freed, and
 * released only by cluster_destroy(). Names change rarely (only while
 * not joined), so what is retired stays small.
 */
static int
retire_and_replace(CLUSTER *cluster, char **slot, const char *value)
{
	cluster__retired *old = NULL;
	char *copy = NULL;

	if(value && !(copy = strdup(value)))
	{
		return ENOMEM;
	}
	if(*slot)
	{
		old = malloc(sizeof(*old));
		if(!old)
		{
			free(copy);
			return ENOMEM;
		}
	}
	pthread_mutex_lock(&cluster->lock);
	if(old)
	{
		old->s = *slot;
		old->next = cluster->retired;
		cluster->retired = old;
	}
	__atomic_store_n(slot, copy, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&cluster->lock);
	return 0;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                            */
/* ------------------------------------------------------------------ */

CLUSTER *
cluster_create(const char *key)
{
	static unsigned long long serials;
	CLUSTER *c;
	char id[33];
	int r;

	cluster__begin(__func__);
	r = cluster__check_name(NULL, "cluster key", key);
	if(r)
	{
		cluster__fail(NULL, r);
		return NULL;
	}
	r = cluster__random_id(id);
	if(r)
	{
		cluster__log(NULL, LOG_CRIT, "libcluster: cannot read random bytes for an instance id\n");
		cluster__fail(NULL, r);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if(!c)
	{
		cluster__fail(NULL, ENOMEM);
		return NULL;
	}
	c->serial = __atomic_add_fetch(&serials, 1, __ATOMIC_RELAXED);
	pthread_mutex_init(&c->control, NULL);
	pthread_mutex_init(&c->lock, NULL);
	cluster__cond_init(&c->delivered);
	pthread_rwlock_init(&c->engine_lock, NULL);
	c->key = strdup(key);
	c->env = strdup(CLUSTER_DEFAULT_ENV);
	c->instance = strdup(id);
	if(!c->key || !c->env || !c->instance)
	{
		cluster_destroy(c);
		cluster__fail_msg(NULL, ENOMEM, "libcluster: cluster_create(): out of memory");
		return NULL;
	}
	c->ttl = CLUSTER_TTL_DEFAULT;
	c->settle_ms = CLUSTER_SETTLE_DEFAULT_MS;
	c->shard_settle_ms = CLUSTER_SHARD_SETTLE_DEFAULT_MS;
	c->request_timeout_ms = CLUSTER_REQUEST_TIMEOUT_DEFAULT_MS;
	c->join_timeout_ms = CLUSTER_JOIN_TIMEOUT_DEFAULT_MS;
	c->workers = 1;
	c->index = -1;
	c->view.self = -1;
	c->view.base = -1;
	c->engine = &cluster__engine_static;
	cluster_advisor_config_init(&c->advisor_config);
	r = c->engine->create(c, NULL, &c->engine_data);
	if(r)
	{
		cluster_destroy(c);
		cluster__fail_msg(NULL, r, "libcluster: cluster_create(): cannot set up the static engine: %s", strerror(r));
		return NULL;
	}
	return c;
}

/* True when this process is not the one that joined: a forked child. */
static int
foreign_process(CLUSTER *cluster)
{
	pid_t owner = __atomic_load_n(&cluster->owner_pid, __ATOMIC_ACQUIRE);

	return owner && owner != getpid();
}

/* What forked children inherited but cannot release (an engine with the
 * connections it shares with the parent, the advisor's thread state): kept
 * referenced for the life of the process, abandoned on purpose rather than
 * lost. Only a child's cluster_destroy() adds to it. */
typedef struct abandoned abandoned;
struct abandoned
{
	abandoned *next;
	void *engine;
	void *advisor;
};
static abandoned *abandoned_list;

static void
abandon(CLUSTER *cluster)
{
	abandoned *a = malloc(sizeof(*a));

	if(a)
	{
		a->engine = cluster->engine_data;
		a->advisor = cluster->advisor;
		a->next = __atomic_load_n(&abandoned_list, __ATOMIC_ACQUIRE);
		while(!__atomic_compare_exchange_n(&abandoned_list, &a->next, a, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		{
		}
	}
}

/* Free what the handle owns that is plain memory, touching no lock, no
 * thread and no connection. */
static void
free_memory(CLUSTER *cluster)
{
	cluster__retired *r, *next;

	cluster__view_free(&cluster->view);
	cluster__view_free(&cluster->pending);
	for(r = cluster->retired; r; r = next)
	{
		next = r->next;
		free(r->s);
		free(r);
	}
	cluster__shards_free(cluster);
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
	free(cluster);
}

/*
 * In the process that joined: leave, wait for a join that another thread
 * is still finishing, then release everything. In a forked child (which
 * has none of the parent's threads, and shares its sockets): only free
 * memory. The engine's connections are abandoned, not closed, so that
 * nothing is written on a socket (a TLS close_notify) the parent still
 * uses, and the parent's registration is left alone.
 */
int
cluster_destroy(CLUSTER *cluster)
{
	if(!cluster)
	{
		return 0;
	}
	cluster__begin(__func__);
	if(foreign_process(cluster))
	{
		abandon(cluster);
		free_memory(cluster);
		return 0;
	}
	if(cluster__in_callback(cluster))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cluster_destroy() cannot be called from inside one of this handle's callbacks\n");
		return cluster__fail(cluster, EDEADLK);
	}
	cluster_leave(cluster);
	pthread_mutex_lock(&cluster->lock);
	while(cluster->join_threads || cluster->delivering)
	{
		pthread_cond_wait(&cluster->delivered, &cluster->lock);
	}
	pthread_mutex_unlock(&cluster->lock);
	cluster__advisor_free(cluster);
	pthread_rwlock_wrlock(&cluster->engine_lock);
	if(cluster->engine && cluster->engine->destroy && cluster->engine_data)
	{
		cluster->engine->destroy(cluster->engine_data);
		cluster->engine_data = NULL;
	}
	pthread_rwlock_unlock(&cluster->engine_lock);
	pthread_rwlock_destroy(&cluster->engine_lock);
	pthread_cond_destroy(&cluster->delivered);
	pthread_mutex_destroy(&cluster->lock);
	pthread_mutex_destroy(&cluster->control);
	free_memory(cluster);
	return 0;
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

/* The status to publish: the load counts the redirects still in flight
 * (advisor-inflight.h), so that nobody fills the same deficit twice. */
void
cluster__get_status(CLUSTER *cluster, cluster__status *out)
{
	int64_t now = cluster__now_ms(), hold, slow;

	pthread_mutex_lock(&cluster->lock);
	*out = cluster->status;
	out->up_ms = -1;
	if(cluster->joined)
	{
		out->up_ms = now > cluster->join_ms ? now - cluster->join_ms : 0;
	}
	cluster__adv_ramp_windows(&cluster->advisor_config, &hold, &slow);
	out->settle_ms = hold + slow;
	pthread_mutex_unlock(&cluster->lock);
	out->load = cluster__adv_published_load(out->load, out->capacity, out->unconfirmed, out->unconfirmed_base);
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

/* The engine's fixed configuration for one join. The strings are the
 * handle's own: setters refuse to change them while joined, and a
 * replaced name is retired, not freed, so they outlive the engine's use. */
static void
engine_config(CLUSTER *cluster, int passive, cluster__engine_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->key = cluster->key;
	cfg->env = cluster->env;
	cfg->partition = cluster->partition;
	cfg->instance = cluster->instance;
	cfg->passive = passive;
	cfg->ttl = cluster->ttl;
	cfg->request_timeout_ms = cluster->request_timeout_ms;
	cfg->join_timeout_ms = cluster->join_timeout_ms;
	cfg->ca_file = cluster->ca_file;
	cfg->cert_file = cluster->cert_file;
	cfg->key_file = cluster->key_file;
	cfg->user = cluster->user;
	cfg->password = cluster->password;
	cfg->want_statuses = __atomic_load_n(&cluster->want_statuses, __ATOMIC_ACQUIRE);
	cfg->shards = cluster->shards;
	cfg->shard_settle_ms = cluster->shard_settle_ms;
	cfg->static_index = cluster->static_index;
	cfg->static_total = cluster->static_total;
}

int
cluster__report_interval(CLUSTER *cluster)
{
	int ms;

	pthread_mutex_lock(&cluster->lock);
	ms = cluster->advisor_config.report_interval_ms;
	pthread_mutex_unlock(&cluster->lock);
	return ms > 0 ? ms : 1000;
}

void
cluster__get_report_policy(CLUSTER *cluster, cluster__report_policy *out)
{
	pthread_mutex_lock(&cluster->lock);
	cluster__report_policy_of(out, &cluster->advisor_config);
	out->phase = cluster__report_phase(cluster->instance);
	pthread_mutex_unlock(&cluster->lock);
}

/* The most of a client certificate file read to find its dates. */
#define CERT_FILE_MAX 65536

/*
 * A client certificate that has expired (or is not valid yet) is refused
 * by the server with a bare "bad certificate" TLS alert: read its dates
 * before joining and name the cause. A file that cannot be read or is not
 * a PEM certificate is left to libcurl, whose error names it. 0, or
 * EPROTO (logged).
 */
static int
check_client_cert(CLUSTER *cluster)
{
	char *text, shown[CLUSTER__ESCAPE_SIZE(128)], when[64];
	int64_t not_before, not_after, now = (int64_t) time(NULL), bad;
	struct tm tm;
	size_t n;
	time_t t;
	FILE *f;
	int r;

	if(!cluster->cert_file || cluster->engine == &cluster__engine_static || !(f = fopen(cluster->cert_file, "re")))
	{
		return 0;
	}
	/* (on the heap: join may run on a thread with a small stack) */
	text = malloc(CERT_FILE_MAX);
	n = text ? fread(text, 1, CERT_FILE_MAX, f) : 0;
	fclose(f);
	r = text ? cluster__cert_validity(text, n, &not_before, &not_after) : ENOMEM;
	free(text);
	if(r || (now >= not_before && now <= not_after))
	{
		return 0;
	}
	bad = now > not_after ? not_after : not_before;
	t = (time_t) bad;
	if(!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm))
	{
		snprintf(when, sizeof(when), "%lld s after the epoch", (long long) bad);
	}
	cluster__escape(shown, sizeof(shown), cluster->cert_file, strlen(cluster->cert_file) > 128 ? 128 : strlen(cluster->cert_file));
	cluster__log(cluster, LOG_ERR, "libcluster: TLS: the client certificate '%s' %s %s: the registry would refuse it\n", shown,
		now > not_after ? "expired on" : "is not valid before", when);
	return EPROTO;
}

/*
 * Join. The engine publishes the first view while this thread holds the
 * control lock; it waits as pending, and is delivered here once the lock
 * is released, so that the first callback runs inside cluster_join() with
 * no library lock held. A cluster_leave() from another thread may cancel
 * a join still under way (ECANCELED).
 */
static int
join(CLUSTER *cluster, int passive)
{
	int r;

	if(foreign_process(cluster))
	{
		/* a forked child holds a copy of the parent's joined state */
		cluster__log(cluster, LOG_ERR, "libcluster: this handle was joined by process %ld: a forked child must create its own handle\n",
			(long) __atomic_load_n(&cluster->owner_pid, __ATOMIC_ACQUIRE));
		return cluster__fail(cluster, EPERM);
	}
	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	pthread_mutex_lock(&cluster->lock);
	if(cluster->joined)
	{
		pthread_mutex_unlock(&cluster->lock);
		cluster__control_end(cluster);
		return 0;
	}
	pthread_mutex_unlock(&cluster->lock);
	r = passive ? 0 : cluster__shards_check_join(cluster);
	if(!r)
	{
		r = check_client_cert(cluster);
	}
	if(r)
	{
		cluster__control_end(cluster);
		return cluster__fail(cluster, r);
	}
	pthread_mutex_lock(&cluster->lock);
	/* joined before the engine runs, so the first callback may already
	 * use the getters */
	cluster->joined = 1;
	/* its age, which its status publishes, counts from here: no other
	 * member can have seen it before */
	cluster->join_ms = cluster__now_ms();
	cluster->joining = 1;
	cluster->join_cancel = 0;
	cluster->join_threads++;
	cluster->passive = passive;
	cluster->announced = 0;
	cluster->index = -1;
	cluster->total = 0;
	cluster->fresh = 0;
	pthread_mutex_unlock(&cluster->lock);
	__atomic_store_n(&cluster->owner_pid, getpid(), __ATOMIC_RELEASE);

	engine_config(cluster, passive, &cluster->engine_cfg);
	r = cluster->engine->join(cluster->engine_data, &cluster->engine_cfg);
	if(!r && cluster__join_cancelled(cluster))
	{
		/* the engine finished just as leave asked it to stop */
		cluster->engine->leave(cluster->engine_data);
		r = ECANCELED;
	}
	pthread_mutex_lock(&cluster->lock);
	cluster->joining = 0;
	if(r)
	{
		cluster->joined = 0;
		cluster->passive = 0;
		cluster->index = -1;
		cluster->total = 0;
		cluster->fresh = 0;
		cluster->has_pending = 0;
		cluster__view_free(&cluster->pending);
		cluster__view_free(&cluster->view);
	}
	pthread_mutex_unlock(&cluster->lock);
	if(r == ECANCELED)
	{
		cluster__log(cluster, LOG_NOTICE, "libcluster: %s: join cancelled by cluster_leave()\n", cluster->engine->name);
	}
	if(!r)
	{
		r = cluster__advisor_start(cluster);
		if(r)
		{
			cluster__log(cluster, LOG_ERR, "libcluster: cannot start the advisor thread: %s\n", strerror(r));
			r = 0;
		}
	}
	cluster__control_end(cluster);
	pthread_mutex_lock(&cluster->lock);
	if(!r)
	{
		/* the first callback has run when cluster_join() returns, here or
		 * on the balancer thread if that one was quicker */
		pthread_mutex_unlock(&cluster->lock);
		cluster__deliver(cluster);
		pthread_mutex_lock(&cluster->lock);
		while(cluster->delivering)
		{
			pthread_cond_wait(&cluster->delivered, &cluster->lock);
		}
	}
	cluster->join_threads--;
	pthread_cond_broadcast(&cluster->delivered);
	pthread_mutex_unlock(&cluster->lock);
	if(!r && !passive)
	{
		cluster__shards_static_refresh(cluster);
	}
	return r ? cluster__fail(cluster, r) : 0;
}

int
cluster_join(CLUSTER *cluster)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	return join(cluster, 0);
}

int
cluster_join_passive(CLUSTER *cluster)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	return join(cluster, 1);
}

int
cluster__join_cancelled(CLUSTER *cluster)
{
	int c;

	pthread_mutex_lock(&cluster->lock);
	c = cluster->join_cancel;
	pthread_mutex_unlock(&cluster->lock);
	return c;
}

/* Ask a join that another thread is running to give up at once (it may be
 * waiting for a predecessor's lease or for a slow registry). */
static void
cancel_join(CLUSTER *cluster)
{
	int joining;

	pthread_mutex_lock(&cluster->lock);
	joining = cluster->joining;
	if(joining)
	{
		cluster->join_cancel = 1;
	}
	pthread_mutex_unlock(&cluster->lock);
	if(!joining)
	{
		return;
	}
	pthread_rwlock_rdlock(&cluster->engine_lock);
	if(cluster->engine->cancel_join)
	{
		cluster->engine->cancel_join(cluster->engine_data);
	}
	pthread_rwlock_unlock(&cluster->engine_lock);
}

int
cluster_leave(CLUSTER *cluster)
{
	CLUSTERBALANCE cb;
	CLUSTERSTATE st;
	int r, cause;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	if(foreign_process(cluster))
	{
		/* a forked child: the membership is the parent's */
		errno = 0;
		return 0;
	}
	if(cluster__in_callback(cluster))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cluster_leave() cannot be called from inside one of this handle's callbacks\n");
		return cluster__fail(cluster, EDEADLK);
	}
	cancel_join(cluster);
	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	pthread_mutex_lock(&cluster->lock);
	if(!cluster->joined)
	{
		pthread_mutex_unlock(&cluster->lock);
		cluster__control_end(cluster);
		errno = 0;
		return 0;
	}
	pthread_mutex_unlock(&cluster->lock);

	cluster__advisor_stop(cluster);
	cause = cluster->engine->leave(cluster->engine_data);

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
	cluster->has_pending = 0;
	cluster__view_free(&cluster->pending);
	cluster__view_free(&cluster->view);
	cb = cluster->balancer;
	pthread_mutex_unlock(&cluster->lock);
	cluster__control_end(cluster);
	/* the final callbacks, on this thread, with no library lock held */
	cluster__shards_after_leave(cluster);
	cluster__deliver_state(cluster, cb, &st);
	/* left either way; errno says whether the registry knows it yet */
	errno = cause;
	return 0;
}

/* ------------------------------------------------------------------ */
/* configuration                                                        */
/* ------------------------------------------------------------------ */

int
cluster_set_verbose(CLUSTER *cluster, int verbose)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	pthread_mutex_lock(&cluster->lock);
	cluster->verbose = !!verbose;
	pthread_mutex_unlock(&cluster->lock);
	return 0;
}

int
cluster_set_logger(CLUSTER *cluster, CLUSTERLOGGER logger)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	pthread_mutex_lock(&cluster->lock);
	cluster->logger = logger;
	pthread_mutex_unlock(&cluster->lock);
	return 0;
}

int
cluster_set_balancer(CLUSTER *cluster, CLUSTERBALANCE callback)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	pthread_mutex_lock(&cluster->lock);
	cluster->balancer = callback;
	pthread_mutex_unlock(&cluster->lock);
	return 0;
}

int
cluster_set_logger2(CLUSTER *cluster, CLUSTERLOGGER2 logger)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	pthread_mutex_lock(&cluster->lock);
	cluster->logger2 = logger;
	pthread_mutex_unlock(&cluster->lock);
	return 0;
}

int
cluster_set_userdata(CLUSTER *cluster, void *data)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	pthread_mutex_lock(&cluster->lock);
	cluster->userdata = data;
	pthread_mutex_unlock(&cluster->lock);
	return 0;
}

void *
cluster_userdata(CLUSTER *cluster)
{
	void *data;

	if(cluster__enter(cluster, __func__))
	{
		return NULL;
	}
	pthread_mutex_lock(&cluster->lock);
	data = cluster->userdata;
	pthread_mutex_unlock(&cluster->lock);
	errno = 0;
	return data;
}

const char *
cluster_key(CLUSTER *cluster)
{
	if(cluster__enter(cluster, __func__))
	{
		return NULL;
	}
	return cluster->key;
}

const char *
cluster_env(CLUSTER *cluster)
{
	if(cluster__enter(cluster, __func__))
	{
		return NULL;
	}
	return __atomic_load_n(&cluster->env, __ATOMIC_ACQUIRE);
}

const char *
cluster_instance(CLUSTER *cluster)
{
	if(cluster__enter(cluster, __func__))
	{
		return NULL;
	}
	return __atomic_load_n(&cluster->instance, __ATOMIC_ACQUIRE);
}

const char *
cluster_partition(CLUSTER *cluster)
{
	if(cluster__enter(cluster, __func__))
	{
		return NULL;
	}
	errno = 0;
	return __atomic_load_n(&cluster->partition, __ATOMIC_ACQUIRE);
}

/*
 * Copy a name out for the copy-out getters. The value (read once, with
 * the getters' atomic load) is never changed in place, only retired, so
 * the copy is consistent without a lock. A buffer too small gets "", not
 * a prefix that could pass for a real name. The name is the field at
 * offset in the handle (the handle may be NULL: refused by name first).
 */
static int
copy_name(CLUSTER *cluster, const char *name, size_t offset, const char *field, char *buf, size_t size)
{
	const char *value;
	size_t len;

	if(cluster__enter(cluster, name))
	{
		return -1;
	}
	if(!buf)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: copying the %s needs a buffer\n", field);
		return cluster__fail(cluster, EINVAL);
	}
	value = __atomic_load_n((char **) ((char *) cluster + offset), __ATOMIC_ACQUIRE);
	if(!value)
	{
		value = "";
	}
	len = strlen(value);
	if(len >= size)
	{
		if(size)
		{
			buf[0] = 0;
		}
		cluster__log(cluster, LOG_ERR, "libcluster: a buffer of %zu bytes is too small for the %s (%zu bytes and a NUL)\n", size, field, len);
		return cluster__fail(cluster, ERANGE);
	}
	memcpy(buf, value, len + 1);
	return (int) len;
}

int
cluster_copy_key(CLUSTER *cluster, char *buf, size_t size)
{
	return copy_name(cluster, __func__, offsetof(CLUSTER, key), "cluster key", buf, size);
}

int
cluster_copy_env(CLUSTER *cluster, char *buf, size_t size)
{
	return copy_name(cluster, __func__, offsetof(CLUSTER, env), "environment", buf, size);
}

int
cluster_copy_instance(CLUSTER *cluster, char *buf, size_t size)
{
	return copy_name(cluster, __func__, offsetof(CLUSTER, instance), "instance id", buf, size);
}

int
cluster_copy_partition(CLUSTER *cluster, char *buf, size_t size)
{
	return copy_name(cluster, __func__, offsetof(CLUSTER, partition), "partition", buf, size);
}

/*
 * The shape shared by the name setters: refuse inside callbacks and while
 * joined, validate, then swap the string; nothing changes on failure.
 */
static int
set_name(CLUSTER *cluster, char **slot, const char *field, const char *value, int null_ok)
{
	int r;

	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	r = cluster__refuse_if_joined(cluster);
	if(!r && !(null_ok && !value))
	{
		r = cluster__check_name(cluster, field, value);
	}
	if(!r)
	{
		r = retire_and_replace(cluster, slot, value);
	}
	cluster__control_end(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	if(cluster__verbose(cluster))
	{
		cluster__log(cluster, LOG_DEBUG, "libcluster: %s set to '%s'\n", field, value ? value : "(none)");
	}
	return 0;
}

int
cluster_set_env(CLUSTER *cluster, const char *env)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	return set_name(cluster, &cluster->env, "environment", env ? env : CLUSTER_DEFAULT_ENV, 0);
}

int
cluster_set_instance(CLUSTER *cluster, const char *instance)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	return set_name(cluster, &cluster->instance, "instance id", instance, 0);
}

int
cluster_set_partition(CLUSTER *cluster, const char *partition)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	return set_name(cluster, &cluster->partition, "partition", partition, 1);
}

int
cluster_reset_instance(CLUSTER *cluster)
{
	char id[33];
	int r;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	r = cluster__random_id(id);
	if(r)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cannot read random bytes for an instance id\n");
		return cluster__fail(cluster, r);
	}
	return set_name(cluster, &cluster->instance, "instance id", id, 0);
}

int
cluster_set_workers(CLUSTER *cluster, int workers)
{
	int r, old, joined;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	if(workers < 1 || workers > CLUSTER_WORKERS_MAX)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: worker count %d is invalid: it must be between 1 and %d\n", workers, CLUSTER_WORKERS_MAX);
		cluster__control_end(cluster);
		return cluster__fail(cluster, EINVAL);
	}
	pthread_mutex_lock(&cluster->lock);
	old = cluster->workers;
	cluster->workers = workers;
	joined = cluster->joined;
	pthread_mutex_unlock(&cluster->lock);
	r = 0;
	if(joined && old != workers && cluster->engine->workers_changed)
	{
		/* a view the engine publishes now is delivered once the control
		 * lock is released, not under it */
		pthread_mutex_lock(&cluster->lock);
		cluster->holding++;
		pthread_mutex_unlock(&cluster->lock);
		r = cluster->engine->workers_changed(cluster->engine_data, workers);
		pthread_mutex_lock(&cluster->lock);
		cluster->holding--;
		if(r)
		{
			/* the engine refused: keep what was there */
			cluster->workers = old;
		}
		pthread_mutex_unlock(&cluster->lock);
	}
	cluster__control_end(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	cluster__deliver(cluster);
	cluster__shards_static_refresh(cluster);
	if(cluster__verbose(cluster))
	{
		cluster__log(cluster, LOG_DEBUG, "libcluster: number of workers in this cluster member set to %d\n", workers);
	}
	return 0;
}

int
cluster_set_threads(CLUSTER *cluster, int workers)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
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
	void *old_data, *new_data = NULL;
	char *copy = NULL;
	int r;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	r = cluster__refuse_if_joined(cluster);
	if(r)
	{
		cluster__control_end(cluster);
		return cluster__fail(cluster, r);
	}
	if(!uri)
	{
		engine = &cluster__engine_static;
	}
	else if(!strncasecmp(uri, "http://", 7) || !strncasecmp(uri, "https://", 8))
	{
		/* schemes are case-insensitive (RFC 3986) */
		engine = &cluster__engine_etcd3;
	}
	else if(!strncasecmp(uri, "etcd2+http://", 13) || !strncasecmp(uri, "etcd2+https://", 14))
	{
		engine = &cluster__engine_etcd2;
	}
	else
	{
		char shown[CLUSTER__ESCAPE_SIZE(200)];

		cluster__log(cluster, LOG_ERR, "libcluster: unsupported scheme in registry URI <%s>: expected http://, https://, etcd2+http:// or etcd2+https://\n",
			cluster__escape_uri(shown, uri));
		cluster__control_end(cluster);
		return cluster__fail(cluster, EINVAL);
	}
	if(uri && !(copy = strdup(uri)))
	{
		cluster__control_end(cluster);
		return cluster__fail(cluster, ENOMEM);
	}
	/* the new engine first: on failure the old one stays, untouched */
	r = engine->create(cluster, uri, &new_data);
	if(r)
	{
		free(copy);
		cluster__control_end(cluster);
		return cluster__fail(cluster, r);
	}
	pthread_rwlock_wrlock(&cluster->engine_lock);
	old_engine = cluster->engine;
	old_data = cluster->engine_data;
	cluster->engine = engine;
	cluster->engine_data = new_data;
	pthread_rwlock_unlock(&cluster->engine_lock);
	if(old_data && old_engine->destroy)
	{
		old_engine->destroy(old_data);
	}
	free(cluster->registry);
	cluster->registry = copy;
	cluster__control_end(cluster);
	return 0;
}

int
cluster_set_ttl(CLUSTER *cluster, int seconds)
{
	int r;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	r = cluster__refuse_if_joined(cluster);
	if(!r && (seconds < CLUSTER_TTL_MIN || seconds > CLUSTER_TTL_MAX))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: TTL %d is invalid: it must be between %d and %d seconds\n", seconds, CLUSTER_TTL_MIN, CLUSTER_TTL_MAX);
		r = EINVAL;
	}
	if(!r)
	{
		cluster->ttl = seconds;
	}
	cluster__control_end(cluster);
	return r ? cluster__fail(cluster, r) : 0;
}

int
cluster_set_settle(CLUSTER *cluster, int ms)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	if(ms < 0 || ms > 60000)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: settle window %d ms is invalid: it must be between 0 and 60000\n", ms);
		return cluster__fail(cluster, EINVAL);
	}
	pthread_mutex_lock(&cluster->lock);
	cluster->settle_ms = ms;
	pthread_mutex_unlock(&cluster->lock);
	return 0;
}

int
cluster_set_timeouts(CLUSTER *cluster, int request_ms, int join_ms)
{
	int r, req, jn;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	r = cluster__refuse_if_joined(cluster);
	req = request_ms ? request_ms : cluster->request_timeout_ms;
	jn = join_ms ? join_ms : cluster->join_timeout_ms;
	if(!r && (req < 100 || req > 60000))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: request timeout %d ms is invalid: it must be between 100 and 60000\n", req);
		r = EINVAL;
	}
	if(!r && (jn < req || jn > 600000))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: join timeout %d ms is invalid: it must be between the request timeout (%d) and 600000\n", jn, req);
		r = EINVAL;
	}
	if(!r)
	{
		cluster->request_timeout_ms = req;
		cluster->join_timeout_ms = jn;
	}
	cluster__control_end(cluster);
	return r ? cluster__fail(cluster, r) : 0;
}

int
cluster_ttl(CLUSTER *cluster)
{
	if(cluster__enter(cluster, __func__))
	{
		return 0;
	}
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

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	r = cluster__refuse_if_joined(cluster);
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
	cluster__control_end(cluster);
	return r ? cluster__fail(cluster, r) : 0;
}

int
cluster_set_credentials(CLUSTER *cluster, const char *user, const char *password)
{
	char *u = NULL, *p = NULL;
	int r;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	r = cluster__refuse_if_joined(cluster);
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
	cluster__control_end(cluster);
	return r ? cluster__fail(cluster, r) : 0;
}

int
cluster_static_set_index(CLUSTER *cluster, int index)
{
	int r;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	r = cluster__refuse_if_joined(cluster);
	if(!r && index < 0)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: static: base index %d is invalid: it must be 0 or more\n", index);
		r = EINVAL;
	}
	if(!r)
	{
		cluster->static_index = index;
	}
	cluster__control_end(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
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

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	r = cluster__control_begin(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
	}
	r = cluster__refuse_if_joined(cluster);
	if(!r && total < 1)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: static: total %d is invalid: it must be 1 or more\n", total);
		r = EINVAL;
	}
	if(!r)
	{
		cluster->static_total = total;
	}
	cluster__control_end(cluster);
	if(r)
	{
		return cluster__fail(cluster, r);
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

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	pthread_mutex_lock(&cluster->lock);
	joined = cluster->joined;
	index = cluster->index;
	workers = cluster->workers;
	pthread_mutex_unlock(&cluster->lock);
	if(!joined)
	{
		cluster__log(cluster, LOG_WARNING, "libcluster: cannot obtain the cluster index because this instance has not joined a cluster\n");
		return cluster__fail(cluster, EPERM);
	}
	if(worker < 0 || worker >= workers)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: worker number %d is invalid: this instance has workers 0 to %d\n", worker, workers - 1);
		return cluster__fail(cluster, EINVAL);
	}
	if(index < 0)
	{
		/* a normal state (passive, or re-registering): not logged */
		return cluster__fail_msg(cluster, ENOENT, "libcluster: this instance has no cluster index: it is passive, or re-registering after its lease was lost");
	}
	return index + worker;
}

int
cluster_view_fresh(CLUSTER *cluster, long long *revision)
{
	int joined, current;
	long long rev;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	pthread_mutex_lock(&cluster->lock);
	joined = cluster->joined;
	rev = (long long) cluster->view.revision;
	current = cluster->fresh && !cluster->has_pending && cluster->announced;
	if(cluster->engine == &cluster__engine_static)
	{
		current = cluster->announced;
	}
	pthread_mutex_unlock(&cluster->lock);
	if(!joined)
	{
		return cluster__fail_msg(cluster, EPERM, "libcluster: cluster_view_fresh(): this instance has not joined a cluster");
	}
	if(revision)
	{
		*revision = rev;
	}
	return current;
}

int
cluster_total(CLUSTER *cluster)
{
	int joined, total;

	if(cluster__enter(cluster, __func__))
	{
		return 0;
	}
	pthread_mutex_lock(&cluster->lock);
	joined = cluster->joined;
	total = cluster->total;
	pthread_mutex_unlock(&cluster->lock);
	if(!joined)
	{
		cluster__log(cluster, LOG_WARNING, "libcluster: cannot obtain the cluster total because this instance has not joined a cluster\n");
		cluster__fail(cluster, EPERM);
		return 0;
	}
	return total;
}

int
cluster_workers(CLUSTER *cluster)
{
	if(cluster__enter(cluster, __func__))
	{
		return 0;
	}
	return cluster__get_workers(cluster);
}

int
cluster_state(CLUSTER *cluster, CLUSTERSTATE *state)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	if(!state)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cluster_state() needs a buffer\n");
		return cluster__fail(cluster, EINVAL);
	}
	pthread_mutex_lock(&cluster->lock);
	state->index = cluster->joined ? cluster->index : -1;
	state->workers = cluster->workers;
	state->total = cluster->joined ? cluster->total : 0;
	state->passive = cluster->joined ? cluster->passive : 0;
	pthread_mutex_unlock(&cluster->lock);
	return 0;
}

/* Copy the stored view (all members, or all but this instance): O(N),
 * the size of the answer, walking the view in id order under the lock. */
static int
copy_members(CLUSTER *cluster, CLUSTERMEMBER **members, size_t *count, int peers_only)
{
	CLUSTERMEMBER *out = NULL;
	int64_t now = cluster__now_ms();
	cluster__view_iter it;
	cluster__view_entry e;
	size_t n = 0;

	if(!members || !count)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: %s() needs an array pointer and a count pointer\n", peers_only ? "cluster_peers" : "cluster_members");
		return cluster__fail(cluster, EINVAL);
	}
	*members = NULL;
	*count = 0;
	pthread_mutex_lock(&cluster->lock);
	if(!cluster->joined)
	{
		pthread_mutex_unlock(&cluster->lock);
		return cluster__fail_msg(cluster, EPERM, "libcluster: %s(): this instance has not joined a cluster", peers_only ? "cluster_peers" : "cluster_members");
	}
	if(cluster->view.count)
	{
		out = calloc(cluster->view.count, sizeof(*out));
		if(!out)
		{
			pthread_mutex_unlock(&cluster->lock);
			return cluster__fail(cluster, ENOMEM);
		}
	}
	cluster__view_iter_init(&it, &cluster->view);
	while(cluster__view_next(&it, &e))
	{
		const cluster__node *m = e.node;
		CLUSTERMEMBER *o = &out[n];

		if(peers_only && e.self)
		{
			continue;
		}
		memcpy(o->id, m->id, (size_t) m->idlen + 1);
		o->workers = m->workers;
		o->base = e.base;
		o->passive = m->passive;
		o->self = e.self;
		if(e.has_status)
		{
			o->has_status = 1;
			snprintf(o->address, sizeof(o->address), "%s", e.address);
			o->load = e.load;
			o->capacity = e.capacity;
		}
		o->age_ms = e.received_ms ? now - e.received_ms : 0;
		if(e.self && cluster->status.reported)
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
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	return copy_members(cluster, members, count, 0);
}

int
cluster_peers(CLUSTER *cluster, CLUSTERMEMBER **members, size_t *count)
{
	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
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
