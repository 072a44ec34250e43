/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection-advisor public API: status reports, tuning, the herd-safe
 * pick, the advice rows and the advisor thread. The arithmetic lives in
 * advisor.c (pure); this file only takes snapshots under the state lock,
 * calls it, logs why, and runs the advice callback with no lock held.
 *
 * Locks: the advisor's own mutex (adv->mu) protects the thread flags, the
 * provisional-pick table, the random state, the pick's cache and the
 * table of when members joined (hold-down, slow start). It may
 * be held while taking cluster->lock, never the other way round; nothing
 * logs, calls back or does I/O while holding it.
 */
#include "cluster-int.h"
#include "advisor.h"
#include "advisor-inflight.h"
#include "advisor-picker.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_GETRANDOM
# include <sys/random.h>
#endif

/* What this instance keeps per member of the last view applied, for the
 * hold-down and the slow start (cluster__adv_node.since_join_ms) and the
 * ghosts: 16 bytes. The id and the record's incarnation are read from
 * that view's member table, which the join table shares. */
typedef struct join_entry join_entry;
struct join_entry
{
	int64_t first_seen_ms; /* local monotonic ms it arrived; 0: established */
	long long load;        /* its last status's load, -1 if none */
};

/* A member that left lately, with the load it held: its clients are on
 * their way to the others (README "Hold-down and slow start"). */
typedef struct ghost ghost;
struct ghost
{
	char *id; /* owned */
	long long load;
	int64_t left_ms; /* local monotonic ms */
};

/* Most departed members remembered at once (the oldest go first). */
#define GHOSTS_MAX 64

/*
 * Every member of the last view applied: that view's member table (a
 * shared version: O(1) to keep, and no copy of any id; it pins only the
 * records membership changes replace until the next view is applied, not
 * the statuses) and, in its id order, one join_entry per member.
 */
typedef struct join_table join_table;
struct join_table
{
	cluster__table members;
	join_entry *e;        /* cluster__table_count(&members) entries */
	uint64_t gen;         /* view generation last applied (or the join's) */
	uint64_t members_gen; /* that view's (view.h) */
	int primed;           /* the first view since joining has been applied */
	ghost ghosts[GHOSTS_MAX];
	size_t nghosts;
};

typedef struct cluster__advisor cluster__advisor;
struct cluster__advisor
{
	CLUSTER *cluster;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int active;   /* between cluster__advisor_start() and _stop() */
	int running;  /* the thread exists and has not been joined */
	int stop;     /* ask the thread to finish */
	int reconfig; /* the interval changed: re-arm the timer */
	pthread_t thread;
	uint64_t rng;
	cluster__adv_prov prov;
	cluster__adv_inflight inflight; /* redirects advised, not yet confirmed */
	struct pick_cache *cache;       /* the pick's (NULL before the first pick) */
	join_table joins;
};

/* What a snapshot keeps per member besides its advisor node. */
typedef struct snap_member snap_member;
struct snap_member
{
	const char *address; /* "" when none */
	int base;
	int64_t create_revision; /* the member record's (0 if unknown) */
	int64_t record_ms;       /* local ms the member record last changed */
	int has_joined;          /* joined_ms is the age its status published */
	int64_t joined_ms;       /* local ms it joined, by that age */
};

/* A consistent copy of what the advisor needs, taken under the lock. */
typedef struct snapshot snapshot;
struct snapshot
{
	cluster__view view; /* a shared reference: the ids and statuses live there */
	cluster__adv_node *nodes;
	snap_member *members; /* in view order, like nodes */
	CLUSTERADVISORCONFIG cfg;
	int fresh;
	int64_t now;
	size_t n;             /* nodes: the view's, then the ghost node if any */
	int64_t ghost_due;    /* when the first ghost expires (0: none) */
	long long local_load; /* this instance's reported load */
	uint64_t gen;         /* cluster->view_gen of the view */
};

/* ------------------------------------------------------------------ */
/* run-time state                                                       */
/* ------------------------------------------------------------------ */

static uint64_t
seed(const CLUSTER *cluster)
{
	uint64_t s = 0;

#ifdef HAVE_GETRANDOM
	if(getrandom(&s, sizeof(s), GRND_NONBLOCK) == (ssize_t) sizeof(s))
	{
		return s;
	}
#endif
	/* no entropy source: different per process and per object is enough */
	s = (uint64_t) time(NULL) ^ ((uint64_t) getpid() << 32) ^ (uint64_t) (uintptr_t) cluster ^ (uint64_t) cluster__now_ms();
	return s;
}

/* The advisor state, created on first use (the core only calls
 * cluster_advisor_config_init() when creating the object). */
static cluster__advisor *
get_advisor(CLUSTER *cluster)
{
	cluster__advisor *adv;

	pthread_mutex_lock(&cluster->lock);
	adv = cluster->advisor;
	if(!adv)
	{
		adv = calloc(1, sizeof(*adv));
		if(adv)
		{
			adv->cluster = cluster;
			adv->rng = seed(cluster);
			pthread_mutex_init(&adv->mu, NULL);
			cluster__cond_init(&adv->cond);
			cluster->advisor = adv;
		}
	}
	pthread_mutex_unlock(&cluster->lock);
	return adv;
}

/*
 * Share the view (O(1) under the lock), copy the tuning and the freshness
 * flag, then build the advisor's node array walking the view unlocked.
 * The static engine (and an etcd member before its first status write)
 * has no status in its own record, so this instance's local status
 * stands in for it.
 */
static int
take_snapshot(CLUSTER *cluster, snapshot *s)
{
	cluster__view_iter it;
	cluster__view_entry e;
	cluster__status local;
	char *self_address;
	int64_t join_ms;
	size_t i, n;

	memset(s, 0, sizeof(*s));
	s->now = cluster__now_ms();
	pthread_mutex_lock(&cluster->lock);
	if(!cluster->joined)
	{
		pthread_mutex_unlock(&cluster->lock);
		return EPERM;
	}
	cluster__view_copy(&s->view, &cluster->view);
	s->gen = cluster->view_gen;
	s->cfg = cluster->advisor_config;
	s->fresh = cluster->fresh;
	local = cluster->status;
	join_ms = cluster->join_ms;
	pthread_mutex_unlock(&cluster->lock);
	s->local_load = local.load;

	n = s->view.count;
	s->n = n;
	s->nodes = calloc(n + 1, sizeof(*s->nodes)); /* + 1: the ghost node */
	s->members = calloc(1, (n + 1) * sizeof(*s->members) + sizeof(local.address));
	if(!s->nodes || !s->members)
	{
		free(s->nodes);
		free(s->members);
		cluster__view_free(&s->view);
		return ENOMEM;
	}
	self_address = (char *) (s->members + n + 1);
	memcpy(self_address, local.address, sizeof(local.address));
	cluster__view_iter_init(&it, &s->view);
	for(i = 0; i < n && cluster__view_next(&it, &e); i++)
	{
		cluster__adv_node *o = &s->nodes[i];

		o->id = e.node->id;
		o->workers = e.node->workers;
		o->passive = e.node->passive;
		o->age_ms = e.received_ms ? s->now - e.received_ms : 0;
		o->mod_revision = e.mod_revision;
		o->received_ms = e.received_ms;
		s->members[i].address = "";
		s->members[i].base = e.base;
		s->members[i].create_revision = e.node->create_revision;
		s->members[i].record_ms = e.node->received_ms;
		if(e.has_status)
		{
			o->has_status = 1;
			o->load = e.load;
			o->capacity = e.capacity;
			s->members[i].address = e.address;
			s->members[i].has_joined = e.has_joined;
			s->members[i].joined_ms = e.joined_ms;
		}
		else if(e.self && local.reported)
		{
			/* its join is the one its status will publish */
			o->has_status = 1;
			o->load = local.load;
			o->capacity = local.capacity;
			s->members[i].address = self_address;
			s->members[i].has_joined = 1;
			s->members[i].joined_ms = join_ms;
		}
	}
	return 0;
}

static void
drop_snapshot(snapshot *s)
{
	free(s->nodes);
	free(s->members);
	cluster__view_free(&s->view);
	memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------ */
/* when members joined: hold-down and slow start                        */
/* ------------------------------------------------------------------ */

/* Forget every member (leave, destroy, out of memory): the next view
 * applied counts as the first one, whose members are established. */
static void
joins_reset(join_table *jt)
{
	size_t i;

	cluster__table_free(&jt->members);
	free(jt->e);
	jt->e = NULL;
	jt->primed = 0;
	jt->members_gen = 0;
	for(i = 0; i < jt->nghosts; i++)
	{
		free(jt->ghosts[i].id);
	}
	jt->nghosts = 0;
}

/* A member left holding load: remember it (taking id), the oldest
 * making room. */
static void
ghost_add(join_table *jt, char *id, long long load, int64_t now)
{
	if(jt->nghosts == GHOSTS_MAX)
	{
		free(jt->ghosts[0].id);
		memmove(&jt->ghosts[0], &jt->ghosts[1], (GHOSTS_MAX - 1) * sizeof(jt->ghosts[0]));
		jt->nghosts--;
	}
	jt->ghosts[jt->nghosts].id = id;
	jt->ghosts[jt->nghosts].load = load;
	jt->ghosts[jt->nghosts].left_ms = now;
	jt->nghosts++;
}

/* Forget the ghosts of id (it is back) and those older than the
 * hold-down; the load of the others. */
static long long
ghosts_sweep(join_table *jt, const char *id, int64_t now, int64_t hold)
{
	long long sum = 0;
	size_t i, k = 0;

	for(i = 0; i < jt->nghosts; i++)
	{
		ghost *g = &jt->ghosts[i];

		if((id && !strcmp(g->id, id)) || now - g->left_ms >= hold)
		{
			free(g->id);
			continue;
		}
		sum += g->load;
		jt->ghosts[k++] = *g;
	}
	jt->nghosts = k;
	return sum;
}

/* A member gone from the view (id, with e its entry): a ghost if it held
 * load, once the table is primed. The id is copied, as the table it
 * lives in is about to be let go; without the memory for the copy the
 * ghost is not kept (its clients are then expected nowhere in
 * particular, as before ghosts existed). */
static void
joins_gone(join_table *jt, const char *id, const join_entry *e, int64_t now)
{
	char *copy;

	if(jt->primed && e->load > 0 && (copy = strdup(id)))
	{
		ghost_add(jt, copy, e->load, now);
	}
}

/* When a member that is new to this instance arrived, as closely as the
 * view tells: its record's local receipt time, which is never before it
 * arrived, else the snapshot's time. So every member that receives the
 * record at about the same time starts the same hold-down, however
 * seldom it takes a snapshot. */
static int64_t
arrived_ms(const snapshot *s, size_t i)
{
	int64_t t = s->members[i].record_ms;

	return t > 0 && t <= s->now ? t : s->now;
}

/*
 * The members that left within the hold-down, as one draining node after
 * the view's (its id sorts after every valid name, so the nodes stay
 * sorted): their load counts in everyone's share, so the clients they
 * had, reconnecting to the others, are expected there and spread by the
 * pick in proportion, instead of landing where no deficit shows (a
 * reconnect storm), and are not planned away again meanwhile.
 */
static void
ghosts_append(join_table *jt, snapshot *s)
{
	int64_t hold, slow;
	long long sum;
	size_t i;

	cluster__adv_ramp_windows(&s->cfg, &hold, &slow);
	sum = ghosts_sweep(jt, NULL, s->now, hold);
	s->n = s->view.count;
	s->ghost_due = 0;
	for(i = 0; i < jt->nghosts; i++)
	{
		int64_t due = jt->ghosts[i].left_ms + hold;

		s->ghost_due = !s->ghost_due || due < s->ghost_due ? due : s->ghost_due;
	}
	if(sum <= 0)
	{
		return;
	}
	cluster__adv_ghost_node(&s->nodes[s->view.count], sum);
	s->members[s->view.count].address = "";
	s->n = s->view.count + 1;
}

/*
 * How long ago member j joined when its status published its age
 * (snap_member.has_joined): the same for every member that looks, up to
 * the transfer times, where our own receipt of its record would differ
 * from theirs. 0 (established) once past the hold-down and slow start,
 * else at least 1; -1 when it published none.
 */
static int64_t
published_since(const snapshot *s, size_t j)
{
	int64_t hold, slow, since;

	if(!s->members[j].has_joined)
	{
		return -1;
	}
	cluster__adv_ramp_windows(&s->cfg, &hold, &slow);
	since = s->now - s->members[j].joined_ms;
	if(since >= hold + slow)
	{
		return 0;
	}
	return since > 1 ? since : 1;
}

/*
 * Fill since_join_ms of the snapshot's nodes, and bring the table to the
 * snapshot's view unless a later view was applied already (two threads
 * may take snapshots in either order). A member whose status publishes
 * its age (this instance too) is dated by it (published_since), so that
 * every member holds it down alike. For the others (older writers, or no
 * status yet) the table times it here: members of the first view applied
 * since joining are established (0): when they came is unknown. A member
 * that appears later, or comes back with another record incarnation
 * (create_revision: it left and rejoined), starts its hold-down where it
 * arrived (arrived_ms; at the snapshot for a new incarnation, whose
 * record may have kept an older receipt time). Members gone from the
 * view are dropped, so a returning one is new. Out of memory: the table
 * is forgotten and everyone is established, never a failed pick. Merges
 * two id-sorted lists: O(members). Called with adv->mu held; no I/O, no
 * other lock.
 */
static void
joins_fill(join_table *jt, snapshot *s)
{
	size_t n = s->view.count, i = 0, j;
	int apply = s->gen >= jt->gen;
	int64_t published;
	join_entry *ne = NULL;
	cluster__table_iter it;
	const cluster__node *old; /* the applied view's member at entry i */

	if(apply && n && !(ne = malloc(n * sizeof(*ne))))
	{
		goto oom;
	}
	cluster__table_iter_init(&it, &jt->members);
	old = cluster__table_iter_next(&it);
	for(j = 0; j < n; j++)
	{
		const char *id = s->nodes[j].id;
		int64_t cr = s->members[j].create_revision;
		join_entry ent;
		int c = 1;

		while(old && (c = strcmp(old->id, id)) < 0)
		{
			/* gone from the view */
			if(apply)
			{
				joins_gone(jt, old->id, &jt->e[i], s->now);
			}
			i++;
			old = cluster__table_iter_next(&it);
		}
		if(old && !c)
		{
			ent = jt->e[i++];
			if(apply && old->create_revision && cr && old->create_revision != cr)
			{
				ent.first_seen_ms = s->now; /* rejoined meanwhile */
			}
			old = cluster__table_iter_next(&it);
		}
		else
		{
			/* not in an older view's table: it has left, or arrives */
			ent.first_seen_ms = apply && jt->primed ? arrived_ms(s, j) : 0;
			if(apply && jt->nghosts)
			{
				/* back: no ghost (only a member gone from the table
				 * can have one) */
				ghosts_sweep(jt, id, s->now, INT64_MAX);
			}
		}
		ent.load = s->nodes[j].has_status ? s->nodes[j].load : -1;
		published = published_since(s, j);
		s->nodes[j].since_join_ms = 0;
		if(published >= 0)
		{
			s->nodes[j].since_join_ms = published;
		}
		else if(ent.first_seen_ms)
		{
			s->nodes[j].since_join_ms = s->now - ent.first_seen_ms > 1 ? s->now - ent.first_seen_ms : 1;
		}
		if(apply)
		{
			ne[j] = ent;
		}
	}
	if(!apply)
	{
		ghosts_append(jt, s);
		return;
	}
	for(; old; i++, old = cluster__table_iter_next(&it))
	{
		joins_gone(jt, old->id, &jt->e[i], s->now);
	}
	/* the old entries go at once, not kept for the next build: with a
	 * thousand members they are 16 kB an instance would hold for
	 * nothing between views (issue 13's memory per instance) */
	free(jt->e);
	jt->e = ne;
	cluster__table_free(&jt->members);
	cluster__table_share(&jt->members, &s->view.members);
	jt->primed = 1;
	jt->gen = s->gen;
	jt->members_gen = s->view.members_gen;
	ghosts_append(jt, s);
	return;
oom:
	joins_reset(jt);
	for(j = 0; j < n; j++)
	{
		int64_t since = published_since(s, j);

		s->nodes[j].since_join_ms = since > 0 ? since : 0;
	}
}

/* ------------------------------------------------------------------ */
/* status                                                               */
/* ------------------------------------------------------------------ */

/* Tell the engine the status changed (it writes when due, never blocks
 * here). Only while joined: before that the engine reads the status when
 * it registers. Any thread may get here, so the engine is held in place
 * against a concurrent leave + cluster_set_registry(). */
static void
status_changed(CLUSTER *cluster, int joined)
{
	if(!joined)
	{
		return;
	}
	pthread_rwlock_rdlock(&cluster->engine_lock);
	if(cluster->engine && cluster->engine->status_changed)
	{
		cluster->engine->status_changed(cluster->engine_data);
	}
	pthread_rwlock_unlock(&cluster->engine_lock);
}

/*
 * The advisor is in use (cluster_set_advisor(), cluster_set_advisor_config(),
 * cluster_pick_target(), cluster_advice()): from now on the engine keeps
 * other members' statuses. Members that only report never pay for the
 * others' status traffic. Once per handle. With wait (pick, advice) a
 * joined engine may hold this call, bounded by the request timeout and
 * without I/O, until its first status read has reached the view, so that
 * the first answer is not made without any status.
 */
static void
want_statuses(CLUSTER *cluster, int wait)
{
	int ms;

	if(__atomic_load_n(&cluster->want_statuses, __ATOMIC_ACQUIRE) || __atomic_exchange_n(&cluster->want_statuses, 1, __ATOMIC_ACQ_REL))
	{
		return;
	}
	/* never from inside one of this handle's callbacks: that may be the
	 * very engine thread the wait is for */
	pthread_mutex_lock(&cluster->lock);
	ms = wait && cluster->joined ? cluster->request_timeout_ms : 0;
	pthread_mutex_unlock(&cluster->lock);
	if(ms && cluster__in_callback(cluster))
	{
		ms = 0;
	}
	pthread_rwlock_rdlock(&cluster->engine_lock);
	if(cluster->engine && cluster->engine->want_statuses)
	{
		cluster->engine->want_statuses(cluster->engine_data, ms);
	}
	pthread_rwlock_unlock(&cluster->engine_lock);
}

int
cluster_set_address(CLUSTER *cluster, const char *address)
{
	char shown[CLUSTER__ESCAPE_SIZE(40)];
	size_t i, len;
	int changed, joined;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	if(!address)
	{
		address = "";
	}
	len = strlen(address);
	if(len > CLUSTER_ADDRESS_MAX)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: address '%s...' is invalid: it must be at most %d bytes long\n",
			cluster__escape(shown, sizeof(shown), address, 40), CLUSTER_ADDRESS_MAX);
		return cluster__fail(cluster, EINVAL);
	}
	for(i = 0; i < len; i++)
	{
		unsigned char ch = (unsigned char) address[i];

		if(ch <= 0x20 || ch >= 0x7f)
		{
			cluster__log(cluster, LOG_ERR, "libcluster: address '%s%s' is invalid: byte %zu (0x%02x) is not printable ASCII without spaces\n",
				cluster__escape(shown, sizeof(shown), address, len > 40 ? 40 : len), len > 40 ? "..." : "", i, ch);
			return cluster__fail(cluster, EINVAL);
		}
	}
	pthread_mutex_lock(&cluster->lock);
	changed = strcmp(cluster->status.address, address) != 0;
	if(changed)
	{
		memcpy(cluster->status.address, address, len + 1);
		cluster->status.seq++;
	}
	joined = cluster->joined;
	pthread_mutex_unlock(&cluster->lock);
	if(changed)
	{
		char all[CLUSTER__ESCAPE_SIZE(CLUSTER_ADDRESS_MAX)];

		cluster__log(cluster, LOG_DEBUG, "libcluster: advisor: address set to '%s'\n", cluster__escape(all, sizeof(all), address, len));
		status_changed(cluster, joined);
	}
	return 0;
}

int
cluster_report(CLUSTER *cluster, long long load, long long capacity)
{
	int changed, joined;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	if(load < 0 || load > CLUSTER__ADV_VALUE_MAX)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cluster_report: load %lld is invalid: it must be between 0 and %lld\n", load, CLUSTER__ADV_VALUE_MAX);
		return cluster__fail(cluster, EINVAL);
	}
	if(capacity != CLUSTER_CAPACITY_UNBOUNDED && (capacity < 0 || capacity > CLUSTER__ADV_VALUE_MAX || (capacity > 0 && capacity < load)))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cluster_report: capacity %lld is invalid: it must be -1 (unbounded), 0 (draining) or a maximum between the load (%lld) and %lld\n",
			capacity, load, CLUSTER__ADV_VALUE_MAX);
		return cluster__fail(cluster, EINVAL);
	}
	pthread_mutex_lock(&cluster->lock);
	changed = !cluster->status.reported || cluster->status.load != load || cluster->status.capacity != capacity;
	if(changed)
	{
		cluster->status.load = load;
		cluster->status.capacity = capacity;
		cluster->status.reported = 1;
		cluster->status.seq++;
	}
	joined = cluster->joined;
	pthread_mutex_unlock(&cluster->lock);
	if(changed)
	{
		status_changed(cluster, joined);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* tuning                                                               */
/* ------------------------------------------------------------------ */

void
cluster_advisor_config_init(CLUSTERADVISORCONFIG *config)
{
	if(!config)
	{
		/* recorded, not begun: cluster_create() calls this */
		cluster__fail_msg(NULL, EINVAL, "libcluster: cluster_advisor_config_init(): the configuration pointer is NULL");
		return;
	}
	memset(config, 0, sizeof(*config));
	config->version = CLUSTER_ADVISOR_CONFIG_VERSION;
	config->report_interval_ms = 1000;
	config->advice_interval_ms = 5000;
	config->band_absolute = 10;
	config->band_relative = 0.05;
	config->shed_fraction = 1.0;
	config->step_max = 0;
	config->step_min = 1;
	config->budget_per_second = 500.0;
	config->jitter = 0.1;
	config->stale_ms = 0;
	config->status_writes_per_second = 20.0;
	config->report_deadband = 0.1;
	config->hold_down_ms = 15000;
	config->slow_start_ms = 30000;
	config->pickers = 0;
}

/* How much of a CLUSTERADVISORCONFIG a caller built against an older
 * header passed (fields are only appended): the size of its version. */
static size_t
config_size(unsigned int version)
{
	if(version < 2)
	{
		return offsetof(CLUSTERADVISORCONFIG, status_writes_per_second);
	}
	if(version < 3)
	{
		return offsetof(CLUSTERADVISORCONFIG, hold_down_ms);
	}
	if(version < 4)
	{
		return offsetof(CLUSTERADVISORCONFIG, pickers);
	}
	return sizeof(CLUSTERADVISORCONFIG);
}

int
cluster_set_advisor_config(CLUSTER *cluster, const CLUSTERADVISORCONFIG *config)
{
	cluster__advisor *adv;
	const char *field, *rule;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	if(!config)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cluster_set_advisor_config() needs a configuration\n");
		return cluster__fail(cluster, EINVAL);
	}
	if(cluster__adv_config_check(config, &field, &rule))
	{
		cluster__log(cluster, LOG_ERR, "libcluster: advisor configuration field %s is invalid: it %s\n", field, rule);
		return cluster__fail(cluster, EINVAL);
	}
	want_statuses(cluster, 0);
	pthread_mutex_lock(&cluster->lock);
	if(config->version < CLUSTER_ADVISOR_CONFIG_VERSION)
	{
		/* a caller built against an older version passed the shorter
		 * structure: take its fields, keep the defaults of the newer ones */
		CLUSTERADVISORCONFIG full;

		cluster_advisor_config_init(&full);
		memcpy(&full, config, config_size(config->version));
		full.version = CLUSTER_ADVISOR_CONFIG_VERSION;
		cluster->advisor_config = full;
	}
	else
	{
		cluster->advisor_config = *config;
	}
	adv = cluster->advisor;
	pthread_mutex_unlock(&cluster->lock);
	if(adv)
	{
		/* re-arm the advisor thread's timer with the new interval */
		pthread_mutex_lock(&adv->mu);
		adv->reconfig = 1;
		pthread_cond_broadcast(&adv->cond);
		pthread_mutex_unlock(&adv->mu);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* advice                                                               */
/* ------------------------------------------------------------------ */

/* One line saying why this instance got these rows. */
static void
explain(CLUSTER *cluster, const snapshot *s, const cluster__adv_plan *p, const CLUSTERREDIRECT *rows, size_t nrows)
{
	char buf[1024], joins[96] = "";
	size_t off = 0, i, held = 0, ramping = 0;
	long self = s->view.self;
	const char *why;

	for(i = 0; i < s->view.count; i++)
	{
		int k = s->nodes[i].since_join_ms ? cluster__adv_ramp(&s->cfg, s->nodes[i].since_join_ms) : CLUSTER__ADV_RAMP_FULL;

		held += !k && p->role[i] == CLUSTER__ADV_OUT;
		ramping += k && k < CLUSTER__ADV_RAMP_FULL && p->role[i] == CLUSTER__ADV_MEMBER;
	}
	if(held || ramping)
	{
		snprintf(joins, sizeof(joins), "; %zu member(s) in their hold-down, %zu in their slow start", held, ramping);
	}

	if(p->balanced)
	{
		why = "balanced: every member is within its band";
	}
	else if(!p->moved)
	{
		why = "out of band, but limits allow no move this round";
	}
	else
	{
		why = "rebalancing";
	}
	if(self < 0 || p->role[self] == CLUSTER__ADV_OUT)
	{
		cluster__log(cluster, LOG_DEBUG, "libcluster: advice at revision %lld: this instance takes no part (no status, passive, or in its hold-down); cluster load %lld, %s%s\n",
			(long long) s->view.revision, p->total_load, why, joins);
		return;
	}
	for(i = 0; i < nrows && off < sizeof(buf) - 64; i++)
	{
		int n = snprintf(buf + off, sizeof(buf) - off, "%s%d -> %s", i ? ", " : "", rows[i].count, rows[i].target);

		if(n < 0)
		{
			break;
		}
		off += (size_t) n < sizeof(buf) - off ? (size_t) n : sizeof(buf) - off - 1;
	}
	buf[off] = 0;
	cluster__log(cluster, LOG_DEBUG, "libcluster: advice at revision %lld: load %lld, fair share %lld%s, band %lld, gap %lld (%s); cluster load %lld, minimum moves %lld, "
									 "plan wants %lld, round budget %lld, moving %lld this round; %s%s; redirect %s\n",
		(long long) s->view.revision, s->nodes[self].load, p->share[self], p->role[self] == CLUSTER__ADV_DRAINING ? " (draining)" : "",
		p->band[self], p->gap[self], p->out_of_band[self] ? "out of band" : "in band", p->total_load, p->minimum, p->wanted,
		p->round_budget, p->moved, why, joins, nrows ? buf : "nothing");
}

/* Hand the count of redirects in flight to the status the engine
 * publishes (cluster__get_status() adds it to the load), and tell the
 * engine when that changed it. */
static void
publish_inflight(CLUSTER *cluster, cluster__advisor *adv)
{
	long long u, base;
	int changed, joined;

	pthread_mutex_lock(&adv->mu);
	u = cluster__adv_inflight_total(&adv->inflight);
	base = adv->inflight.base;
	pthread_mutex_unlock(&adv->mu);
	pthread_mutex_lock(&cluster->lock);
	changed = cluster->status.unconfirmed != u || (u && cluster->status.unconfirmed_base != base);
	if(changed)
	{
		if(u < cluster->status.unconfirmed)
		{
			cluster->status.exact_seq++; /* confirmed: publish the drop exactly */
		}
		cluster->status.unconfirmed = u;
		cluster->status.unconfirmed_base = base;
		cluster->status.seq++;
	}
	joined = cluster->joined;
	pthread_mutex_unlock(&cluster->lock);
	if(changed)
	{
		status_changed(cluster, joined);
	}
}

/* Confirm what the targets have published since (the advisor thread
 * calls this between rounds while redirects are in flight). Returns
 * non-zero while some are still unconfirmed. */
static int
inflight_tick(CLUSTER *cluster, cluster__advisor *adv)
{
	snapshot s;
	long long u;

	if(take_snapshot(cluster, &s))
	{
		return 0;
	}
	pthread_mutex_lock(&adv->mu);
	u = cluster__adv_inflight_refresh(&adv->inflight, s.nodes, s.n, s.now, cluster__adv_inflight_settle(&s.cfg, s.view.count));
	pthread_mutex_unlock(&adv->mu);
	drop_snapshot(&s);
	publish_inflight(cluster, adv);
	return u > 0;
}

/*
 * This instance's rows of the plan for the current snapshot, less what
 * it sent since its own record last changed (advisor-inflight.h). With
 * record (the advisor thread's rounds, whose thread also confirms them
 * between rounds) the rows are recorded as in flight; cluster_advice()
 * only reads them: an application that only pulls advice has no thread
 * to confirm them, and its published load must not stay inflated.
 */
static int
compute_advice(CLUSTER *cluster, CLUSTERREDIRECT **out, size_t *count, int record)
{
	cluster__advisor *adv;
	snapshot s;
	cluster__adv_plan p;
	CLUSTERREDIRECT *rows = NULL;
	size_t i, n = 0;
	long long left;
	int r, oom = 0;

	*out = NULL;
	*count = 0;
	r = take_snapshot(cluster, &s);
	if(r)
	{
		return r;
	}
	adv = get_advisor(cluster);
	if(adv)
	{
		/* without it (out of memory) everyone counts as established */
		pthread_mutex_lock(&adv->mu);
		joins_fill(&adv->joins, &s);
		pthread_mutex_unlock(&adv->mu);
	}
	if(!s.fresh)
	{
		/* fail-static: a stale view must not move anybody */
		cluster__log(cluster, LOG_DEBUG, "libcluster: advice at revision %lld: no redirects: the view may be stale (registry unreachable)\n", (long long) s.view.revision);
		drop_snapshot(&s);
		return 0;
	}
	r = cluster__adv_plan_compute(&p, s.nodes, s.n, &s.cfg);
	if(r)
	{
		drop_snapshot(&s);
		return r;
	}
	left = s.view.self >= 0 ? p.shed[s.view.self] : 0;
	if(adv && s.view.self >= 0)
	{
		/* what is still in flight counts: send no more than the rows
		 * less what left since this member's record last changed */
		pthread_mutex_lock(&adv->mu);
		cluster__adv_inflight_refresh(&adv->inflight, s.nodes, s.n, s.now, cluster__adv_inflight_settle(&s.cfg, s.view.count));
		left = cluster__adv_inflight_allowance(&adv->inflight, &p, (size_t) s.view.self, s.nodes[s.view.self].received_ms);
		pthread_mutex_unlock(&adv->mu);
	}
	if(s.view.self >= 0)
	{
		for(i = 0; i < p.nrows; i++)
		{
			n += p.rows[i].from == (size_t) s.view.self;
		}
	}
	if(n)
	{
		rows = calloc(n, sizeof(*rows));
		if(!rows)
		{
			cluster__adv_plan_free(&p);
			drop_snapshot(&s);
			return ENOMEM;
		}
		n = 0;
		if(adv)
		{
			pthread_mutex_lock(&adv->mu);
		}
		for(i = 0; i < p.nrows; i++)
		{
			long long c = p.rows[i].count < left ? p.rows[i].count : left;

			if(p.rows[i].from != (size_t) s.view.self || c <= 0)
			{
				continue;
			}
			c = c > INT_MAX ? INT_MAX : c;
			left -= c;
			snprintf(rows[n].target, sizeof(rows[n].target), "%s", s.nodes[p.rows[i].to].id);
			snprintf(rows[n].address, sizeof(rows[n].address), "%s", s.members[p.rows[i].to].address);
			rows[n].count = (int) c;
			n++;
			if(adv && record && cluster__adv_inflight_add(&adv->inflight, &s.nodes[p.rows[i].to], c, s.local_load, s.now))
			{
				oom = 1; /* not counted in flight: the next round may see a deficit twice */
			}
		}
		if(adv)
		{
			pthread_mutex_unlock(&adv->mu);
		}
		if(!n)
		{
			free(rows);
			rows = NULL;
		}
	}
	if(oom)
	{
		cluster__log(cluster, LOG_WARNING, "libcluster: advisor: out of memory recording redirects in flight\n");
	}
	if(adv)
	{
		publish_inflight(cluster, adv);
	}
	explain(cluster, &s, &p, rows, n);
	cluster__adv_plan_free(&p);
	drop_snapshot(&s);
	*out = rows;
	*count = n;
	return 0;
}

int
cluster_advice(CLUSTER *cluster, CLUSTERREDIRECT **redirects, size_t *count)
{
	int r;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	if(!redirects || !count)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cluster_advice() needs an array pointer and a count pointer\n");
		return cluster__fail(cluster, EINVAL);
	}
	want_statuses(cluster, 1);
	r = compute_advice(cluster, redirects, count, 0);
	if(r == EPERM)
	{
		return cluster__fail_msg(cluster, EPERM, "libcluster: cluster_advice(): this instance has not joined a cluster");
	}
	return r ? cluster__fail(cluster, r) : 0;
}

void
cluster_redirects_free(CLUSTERREDIRECT *redirects)
{
	free(redirects);
}

/* The plan of compute_advice(), for every member rather than this
 * instance's rows: nothing is recorded. It applies the hold-down, the
 * slow start and the ghosts as the advice does, so that a dashboard shows
 * the plan the members act on. */
static int
compute_plan(CLUSTER *cluster, CLUSTERPLANENTRY **out, size_t *count)
{
	CLUSTERPLANENTRY *entries;
	cluster__advisor *adv;
	cluster__adv_plan p;
	snapshot s;
	size_t i, n;
	int r;

	*out = NULL;
	*count = 0;
	r = take_snapshot(cluster, &s);
	if(r)
	{
		return r;
	}
	n = s.view.count;
	if(!n)
	{
		drop_snapshot(&s);
		return 0;
	}
	adv = get_advisor(cluster);
	if(adv)
	{
		/* without it (out of memory) everyone counts as established */
		pthread_mutex_lock(&adv->mu);
		joins_fill(&adv->joins, &s);
		pthread_mutex_unlock(&adv->mu);
	}
	entries = calloc(n, sizeof(*entries));
	/* s.n: the ghost node, if any, after the view's n members */
	if(!entries || cluster__adv_plan_compute(&p, s.nodes, s.n, &s.cfg))
	{
		free(entries);
		drop_snapshot(&s);
		return ENOMEM;
	}
	for(i = 0; i < n; i++)
	{
		snprintf(entries[i].id, sizeof(entries[i].id), "%s", s.nodes[i].id);
		entries[i].member = p.role[i] != CLUSTER__ADV_OUT;
		entries[i].draining = p.role[i] == CLUSTER__ADV_DRAINING;
		entries[i].share = p.share[i];
		entries[i].load = s.nodes[i].has_status ? s.nodes[i].load : 0;
		/* fail-static: a stale view moves nobody */
		entries[i].shed = s.fresh ? p.shed[i] : 0;
		entries[i].inflow = s.fresh ? p.inflow[i] : 0;
	}
	cluster__adv_plan_free(&p);
	drop_snapshot(&s);
	*out = entries;
	*count = n;
	return 0;
}

int
cluster_plan(CLUSTER *cluster, CLUSTERPLANENTRY **entries, size_t *count)
{
	int r;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	if(!entries || !count)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cluster_plan() needs an array pointer and a count pointer\n");
		return cluster__fail(cluster, EINVAL);
	}
	want_statuses(cluster, 1);
	r = compute_plan(cluster, entries, count);
	if(r == EPERM)
	{
		return cluster__fail_msg(cluster, EPERM, "libcluster: cluster_plan(): this instance has not joined a cluster");
	}
	return r ? cluster__fail(cluster, r) : 0;
}

void
cluster_plan_free(CLUSTERPLANENTRY *entries)
{
	free(entries);
}

/* ------------------------------------------------------------------ */
/* where should a new client connect?                                   */
/* ------------------------------------------------------------------ */

/* What a pick copies out of the snapshot's members array (snap_member):
 * 16 bytes per member where that array takes 48. */
typedef struct pick_out pick_out;
struct pick_out
{
	const char *address; /* "" when none */
	int base;
};

/* What the pick reuses from one call to the next: a snapshot and the
 * picker built from it, with the key they were taken under. */
typedef struct pick_cache pick_cache;
struct pick_cache
{
	int valid;
	uint64_t view_gen;        /* cluster->view_gen */
	unsigned long status_seq; /* cluster->status.seq, or 0 when unused */
	CLUSTERADVISORCONFIG cfg; /* cluster->advisor_config */
	int64_t ramp_due;         /* local ms of the next step of someone's ramp */
	snapshot s;               /* without its members array once the picker is built */
	cluster__adv_picker picker;
	unsigned long long builds;
	pick_out *out;                              /* per node of s */
	char self_address[CLUSTER_ADDRESS_MAX + 1]; /* the snapshot's local stand-in (take_snapshot()) */
};

/* Every field of the tuning, compared one by one (no padding bytes). */
static int
same_config(const CLUSTERADVISORCONFIG *a, const CLUSTERADVISORCONFIG *b)
{
	return a->version == b->version && a->report_interval_ms == b->report_interval_ms && a->advice_interval_ms == b->advice_interval_ms &&
		   a->band_absolute == b->band_absolute && a->band_relative == b->band_relative && a->shed_fraction == b->shed_fraction &&
		   a->step_max == b->step_max && a->step_min == b->step_min && a->budget_per_second == b->budget_per_second && a->jitter == b->jitter &&
		   a->stale_ms == b->stale_ms && a->status_writes_per_second == b->status_writes_per_second && a->report_deadband == b->report_deadband &&
		   a->hold_down_ms == b->hold_down_ms && a->slow_start_ms == b->slow_start_ms && a->pickers == b->pickers;
}

/* When the first of the snapshot's members in their hold-down or slow
 * start takes its next step, or its first ghost expires (local ms),
 * INT64_MAX when none does. */
static int64_t
ramp_due(const snapshot *s)
{
	int64_t due = s->ghost_due ? s->ghost_due : INT64_MAX;
	size_t i;

	for(i = 0; i < s->view.count; i++)
	{
		int64_t d = s->nodes[i].since_join_ms ? cluster__adv_ramp_next(&s->cfg, s->nodes[i].since_join_ms) : -1;

		if(d > 0 && s->now + d < due)
		{
			due = s->now + d;
		}
	}
	return due;
}

/* Forget the cached snapshot and picker (the build count stays). Called
 * with adv->mu held. */
static void
cache_drop(cluster__advisor *adv)
{
	pick_cache *pc = adv->cache;

	if(pc && pc->valid)
	{
		cluster__adv_picker_sync(&pc->picker, &adv->prov);
		cluster__adv_picker_free(&pc->picker);
		drop_snapshot(&pc->s);
		free(pc->out);
		pc->out = NULL;
		pc->valid = 0;
	}
}

/*
 * Make the cache current: what it holds is reused while the view (its
 * generation), the tuning and, when this instance's record has no status
 * (the static engine, or before the first write), this instance's local
 * status (it stands in for the record's: take_snapshot()) are those it
 * was built under. Once the record carries a status, a local report
 * changes nothing the pick sees until it is written and comes back as a
 * new view: it does not cost a rebuild. The key is
 * read before the snapshot is taken, so the snapshot is never older than
 * its key: a change racing with the build only costs one more build.
 * Time is no key, but for one thing: the picker itself applies the
 * members going stale and the provisional picks expiring
 * (advisor-picker.h), but a member's hold-down and slow start
 * (since_join_ms) are taken at the snapshot, so the cache also expires
 * at the next step of anyone's ramp (ramp_due): at most 16 rebuilds per
 * joining member. Called with adv->mu held (it takes cluster->lock, in
 * that order). Returns 0, EPERM (not joined) or ENOMEM.
 */
static int
cache_refresh(CLUSTER *cluster, cluster__advisor *adv, int64_t now)
{
	pick_cache *pc = adv->cache;
	CLUSTERADVISORCONFIG cfg;
	uint64_t gen;
	unsigned long seq;
	long self;
	size_t i;
	int r;

	if(!pc)
	{
		pc = adv->cache = calloc(1, sizeof(*pc));
		if(!pc)
		{
			return ENOMEM;
		}
	}

	pthread_mutex_lock(&cluster->lock);
	if(!cluster->joined)
	{
		pthread_mutex_unlock(&cluster->lock);
		return EPERM;
	}
	gen = cluster->view_gen;
	seq = 0;
	if(cluster->view.self >= 0)
	{
		cluster__view_entry self_e;

		if(!cluster__view_at(&cluster->view, (size_t) cluster->view.self, &self_e) && !self_e.has_status)
		{
			seq = cluster->status.seq + 1; /* never 0 */
		}
	}
	cfg = cluster->advisor_config;
	pthread_mutex_unlock(&cluster->lock);
	if(pc->valid && pc->view_gen == gen && pc->status_seq == seq && same_config(&pc->cfg, &cfg) && now < pc->ramp_due)
	{
		return 0;
	}
	cache_drop(adv);
	r = take_snapshot(cluster, &pc->s);
	if(r)
	{
		return r;
	}
	joins_fill(&adv->joins, &pc->s);
	pc->ramp_due = ramp_due(&pc->s);
	/* this instance's position lets the pick follow its own plan rows and
	 * keep off the room other members' rows will fill */
	self = pc->s.view.self;
	r = cluster__adv_picker_build(&pc->picker, pc->s.nodes, pc->s.n, self >= 0 ? (size_t) self : CLUSTER__ADV_NO_SELF, &pc->s.cfg,
		&adv->prov, pc->s.now);
	if(r)
	{
		drop_snapshot(&pc->s);
		return r;
	}
	/* of the members array a pick needs only the address and the base:
	 * those are kept, the rest (32 bytes per member that an instance
	 * that picks would otherwise hold between views) goes */
	pc->out = malloc(pc->s.n * sizeof(*pc->out) + 1);
	if(!pc->out)
	{
		cluster__adv_picker_free(&pc->picker);
		drop_snapshot(&pc->s);
		return ENOMEM;
	}
	snprintf(pc->self_address, sizeof(pc->self_address), "%s", self >= 0 ? pc->s.members[self].address : "");
	for(i = 0; i < pc->s.n; i++)
	{
		pc->out[i].address = (long) i == self ? pc->self_address : pc->s.members[i].address;
		pc->out[i].base = pc->s.members[i].base;
	}
	free(pc->s.members);
	pc->s.members = NULL;
	pc->valid = 1;
	pc->view_gen = gen;
	pc->status_seq = seq;
	pc->cfg = cfg;
	pc->builds++;
	return 0;
}

/* One pick from the cache into *target. Called with adv->mu held.
 * Returns 0, EPERM, ENOENT or ENOMEM. */
static int
cached_pick(CLUSTER *cluster, cluster__advisor *adv, CLUSTERMEMBER *target)
{
	pick_cache *pc;
	const cluster__adv_node *m;
	const char *address;
	size_t at = 0;
	int r;

	int64_t now = cluster__now_ms();

	r = cache_refresh(cluster, adv, now);
	if(r)
	{
		return r;
	}
	pc = adv->cache;
	r = cluster__adv_picker_pick(&pc->picker, &adv->prov, now, &adv->rng, &at);
	if(r)
	{
		return r;
	}
	m = &pc->s.nodes[at];
	address = pc->out[at].address;
	memset(target, 0, sizeof(*target));
	/* only the bytes in use: the buffers are long */
	memcpy(target->id, m->id, strnlen(m->id, sizeof(target->id) - 1));
	target->workers = m->workers;
	target->base = pc->out[at].base;
	target->passive = m->passive;
	target->self = (long) at == pc->s.view.self;
	target->has_status = m->has_status;
	memcpy(target->address, address, strnlen(address, sizeof(target->address) - 1));
	target->load = m->load;
	target->capacity = m->capacity;
	/* the snapshot's age plus the time since the snapshot was taken */
	target->age_ms = m->age_ms + (pc->picker.now_ms > pc->s.now ? pc->picker.now_ms - pc->s.now : 0);
	return 0;
}

int
cluster_pick_target(CLUSTER *cluster, CLUSTERMEMBER *target)
{
	cluster__advisor *adv;
	int r;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	if(!target)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cluster_pick_target() needs a target buffer\n");
		return cluster__fail(cluster, EINVAL);
	}
	want_statuses(cluster, 1);
	adv = get_advisor(cluster);
	if(!adv)
	{
		return cluster__fail(cluster, ENOMEM);
	}
	pthread_mutex_lock(&adv->mu);
	r = cached_pick(cluster, adv, target);
	pthread_mutex_unlock(&adv->mu);
	if(r == EPERM)
	{
		return cluster__fail_msg(cluster, EPERM, "libcluster: cluster_pick_target(): this instance has not joined a cluster");
	}
	if(r == ENOENT)
	{
		/* a normal answer under load: logged for debugging only */
		cluster__log(cluster, LOG_DEBUG, "libcluster: pick: no member can take a client (all draining, full, stale, without a status or just (re)joined)\n");
		return cluster__fail_msg(cluster, ENOENT, "libcluster: pick: no member can take a client (all draining, full, stale, without a status or just (re)joined)");
	}
	return r ? cluster__fail(cluster, r) : 0;
}

unsigned long long
cluster__advisor_pick_builds(CLUSTER *cluster)
{
	cluster__advisor *adv = get_advisor(cluster);
	unsigned long long n = 0;

	if(adv)
	{
		pthread_mutex_lock(&adv->mu);
		n = adv->cache ? adv->cache->builds : 0;
		pthread_mutex_unlock(&adv->mu);
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* the advisor thread                                                   */
/* ------------------------------------------------------------------ */

/* One round: compute the rows and hand them to the callback, unlocked. */
static void
advice_round(CLUSTER *cluster)
{
	CLUSTERADVICE cb;
	CLUSTERREDIRECT *rows = NULL;
	size_t n = 0;
	int r;

	pthread_mutex_lock(&cluster->lock);
	cb = cluster->advice;
	pthread_mutex_unlock(&cluster->lock);
	if(!cb)
	{
		return;
	}
	r = compute_advice(cluster, &rows, &n, 1);
	if(r)
	{
		cluster__log(cluster, LOG_WARNING, "libcluster: advisor: cannot compute advice: %s\n", strerror(r));
		return;
	}
	cluster__callback_enter(cluster);
	cb(cluster, rows, n);
	cluster__callback_leave(cluster);
	free(rows);
}

/* Milliseconds from now to the next multiple of round on the wall clock:
 * every member's rounds fall on the same instants (hosts' clocks agree
 * to milliseconds), so they all plan from nearly the same statuses. A
 * wrong clock only moves this member's rounds. */
static int64_t
until_round(int64_t round)
{
	struct timespec now;
	int64_t ms;

	if(round <= 0 || clock_gettime(CLOCK_REALTIME, &now))
	{
		return round > 0 ? round : 1000;
	}
	ms = ((int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000) % round;
	return round - ms;
}

/* Wait for the next aligned round and run it, until stopped; while
 * redirects are in flight, wake every half second in between to confirm
 * them, so that this member's published load drops before the next
 * round. Each wait is re-armed when the configuration changes. */
static void *
advisor_main(void *arg)
{
	cluster__advisor *adv = arg;
	CLUSTER *cluster = adv->cluster;
	int64_t last = 0; /* monotonic time of the last round */
	int pending = 0;

	for(;;)
	{
		CLUSTERADVISORCONFIG cfg;
		struct timespec ts;
		int64_t wait, round;
		size_t n;
		int stop, again = 0, tick;

		pthread_mutex_lock(&cluster->lock);
		cfg = cluster->advisor_config;
		n = cluster->view.count;
		pthread_mutex_unlock(&cluster->lock);

		round = cluster__adv_round_interval(&cfg, n);
		wait = until_round(round);
		if(last && cluster__now_ms() + wait - last < round / 2)
		{
			wait += round; /* woken a little early: that boundary had its round */
		}
		tick = pending && wait > 500;
		pthread_mutex_lock(&adv->mu);
		adv->reconfig = 0;
		cluster__deadline(&ts, tick ? 500 : wait);
		while(!adv->stop && !adv->reconfig)
		{
			if(pthread_cond_timedwait(&adv->cond, &adv->mu, &ts) == ETIMEDOUT)
			{
				break;
			}
		}
		stop = adv->stop;
		again = adv->reconfig;
		pthread_mutex_unlock(&adv->mu);
		if(stop)
		{
			break;
		}
		if(tick)
		{
			pending = inflight_tick(cluster, adv);
		}
		else if(!again)
		{
			last = cluster__now_ms();
			advice_round(cluster);
			pthread_mutex_lock(&adv->mu);
			pending = cluster__adv_inflight_total(&adv->inflight) > 0;
			pthread_mutex_unlock(&adv->mu);
		}
	}
	return NULL;
}

/* Start the thread if the object is joined, a callback is installed and
 * no thread runs yet. Called with adv->mu held. */
static int
maybe_start(cluster__advisor *adv)
{
	CLUSTERADVICE cb;
	int r;

	if(!adv->active || adv->running || adv->stop)
	{
		return 0;
	}
	pthread_mutex_lock(&adv->cluster->lock);
	cb = adv->cluster->advice;
	pthread_mutex_unlock(&adv->cluster->lock);
	if(!cb)
	{
		return 0;
	}
	r = pthread_create(&adv->thread, NULL, advisor_main, adv);
	if(r)
	{
		return r;
	}
	adv->running = 1;
	return 0;
}

int
cluster_set_advisor(CLUSTER *cluster, CLUSTERADVICE callback)
{
	cluster__advisor *adv;
	int r;

	if(cluster__enter(cluster, __func__))
	{
		return -1;
	}
	want_statuses(cluster, 0);
	pthread_mutex_lock(&cluster->lock);
	cluster->advice = callback;
	pthread_mutex_unlock(&cluster->lock);
	if(!callback)
	{
		/* a running thread idles until leave: it may be this very thread */
		return 0;
	}
	adv = get_advisor(cluster);
	if(!adv)
	{
		return cluster__fail(cluster, ENOMEM);
	}
	pthread_mutex_lock(&adv->mu);
	r = maybe_start(adv);
	pthread_mutex_unlock(&adv->mu);
	if(r)
	{
		cluster__log(cluster, LOG_ERR, "libcluster: cannot start the advisor thread: %s\n", strerror(r));
		return cluster__fail(cluster, r);
	}
	return 0;
}

int
cluster__advisor_start(CLUSTER *cluster)
{
	cluster__advisor *adv = get_advisor(cluster);
	int r;

	if(!adv)
	{
		return ENOMEM;
	}
	pthread_mutex_lock(&adv->mu);
	adv->active = 1;
	adv->stop = 0;
	/* a new membership: nothing cached from a previous one, and who is
	 * established is decided by its first view (a snapshot of a view
	 * older than the join's is not applied) */
	cache_drop(adv);
	joins_reset(&adv->joins);
	pthread_mutex_lock(&cluster->lock);
	adv->joins.gen = cluster->view_gen;
	pthread_mutex_unlock(&cluster->lock);
	r = maybe_start(adv);
	pthread_mutex_unlock(&adv->mu);
	return r;
}

void
cluster__advisor_stop(CLUSTER *cluster)
{
	cluster__advisor *adv;
	int running;

	pthread_mutex_lock(&cluster->lock);
	adv = cluster->advisor;
	pthread_mutex_unlock(&cluster->lock);
	if(!adv)
	{
		return;
	}
	pthread_mutex_lock(&adv->mu);
	adv->active = 0;
	adv->stop = 1;
	running = adv->running;
	pthread_cond_broadcast(&adv->cond);
	pthread_mutex_unlock(&adv->mu);
	if(running)
	{
		pthread_join(adv->thread, NULL);
	}
	pthread_mutex_lock(&adv->mu);
	adv->running = 0;
	adv->stop = 0;
	/* picks made for the old membership mean nothing to the next one */
	cache_drop(adv); /* first: it writes its counts back into the table */
	cluster__adv_prov_free(&adv->prov);
	cluster__adv_inflight_free(&adv->inflight);
	joins_reset(&adv->joins);
	pthread_mutex_unlock(&adv->mu);
	pthread_mutex_lock(&cluster->lock);
	cluster->status.unconfirmed = 0;
	pthread_mutex_unlock(&cluster->lock);
}

/*
 * The join table holds the member table of the view it last applied, for
 * its ids. Statuses live in the member nodes (status-fold.h), so each
 * status change makes new nodes and the held version would keep the old
 * ones until the next advisor round (with every status changed, a second
 * copy of the table). When a delivered view has the same members
 * (members_gen), its table serves the join table as well: take it. O(1).
 */
void
cluster__advisor_view(CLUSTER *cluster, const cluster__view *view)
{
	cluster__advisor *adv;

	pthread_mutex_lock(&cluster->lock);
	adv = cluster->advisor;
	pthread_mutex_unlock(&cluster->lock);
	if(!adv || !view->members_gen)
	{
		return;
	}
	pthread_mutex_lock(&adv->mu);
	if(adv->joins.primed && adv->joins.members_gen == view->members_gen && adv->joins.members.root != view->members.root)
	{
		cluster__table_free(&adv->joins.members);
		cluster__table_share(&adv->joins.members, &view->members);
	}
	pthread_mutex_unlock(&adv->mu);
}

void
cluster__advisor_free(CLUSTER *cluster)
{
	cluster__advisor *adv;

	cluster__advisor_stop(cluster);
	pthread_mutex_lock(&cluster->lock);
	adv = cluster->advisor;
	cluster->advisor = NULL;
	pthread_mutex_unlock(&cluster->lock);
	if(!adv)
	{
		return;
	}
	cache_drop(adv);
	free(adv->cache);
	cluster__adv_prov_free(&adv->prov);
	cluster__adv_inflight_free(&adv->inflight);
	joins_reset(&adv->joins);
	pthread_cond_destroy(&adv->cond);
	pthread_mutex_destroy(&adv->mu);
	free(adv);
}
