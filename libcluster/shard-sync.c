/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shard thread (see shard-sync.h). One loop: read the record, watch
 * it, and on every message or wake-up run one step:
 *
 *  1. apply: if this instance may hold shards (registered, its lease
 *     renewed within a TTL, the record readable), release what the record
 *     takes from it, acknowledge, acquire what it gives; otherwise release
 *     everything. The callback runs here, with no lock held.
 *  2. plan: the planner is the live member first in id order; it polls
 *     the acknowledgements while a hand-over is pending and writes the
 *     next assignment (shard-map.c) by compare-and-swap once membership
 *     has settled. Any other member does the same if the record has not
 *     moved for a while although it should (the first one is stuck), so
 *     no member is special and a dead one blocks nothing.
 *
 * Never two owners: an owner's shards move only after it acknowledged
 * their release, or a whole TTL after its key vanished (by then its lease
 * has run out, and so has its own hold time: step 1 released them).
 */
#include "shard-sync.h"
#include "shard-map.h"
#include "engine.h"
#include "util.h"
#include "waker.h"
#include "http.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* While a hand-over is pending the planner reads the acknowledgements
 * this often (ms). */
#define ACK_POLL_MS 40
/* A member other than the first waits this long per rank (ms, rank
 * capped at FALLBACK_RANKS) past the settle window before it plans for a
 * record that should have moved. */
#define FALLBACK_MS    1000
#define FALLBACK_RANKS 10
/* Pause after a failed request (ms). */
#define RETRY_MS 500
/* A membership burst is planned at most this many settle windows after
 * its first change. */
#define SETTLE_MAX_WINDOWS 5

#define WAKE_MEMBERS 0x1u

/* Tests only: every member plans as if it were first, so that writers
 * race (the compare-and-swap must let one win). Not exported. */
int cluster__shard_test_eager;

typedef struct missing_owner missing_owner;
struct missing_owner
{
	char *id;
	int64_t incarnation;
	int64_t since; /* local ms when this instance first saw it gone */
};

typedef struct ack_entry ack_entry;
struct ack_entry
{
	char *id;
	int64_t revision;
};

struct cluster__shard_sync
{
	CLUSTER *core;
	cluster__shard_store st;
	char *instance, *label;
	uint32_t shards;
	int settle_ms, ttl_ms, leave_ms;
	pthread_t thread;
	int running;

	cluster__waker w;          /* stop flag, WAKE_MEMBERS; its mutex guards: */
	cluster__table members_in; /* the newest membership */
	unsigned long members_gen;

	/* the thread's own state */
	cluster__table members;
	unsigned long seen_gen;
	cluster__shard_member *live;
	size_t n_live;
	int64_t self_inc; /* create revision of our member key, 0: not registered */
	long rank;        /* our position among the live members, -1: none */

	cluster__shard_map cur;
	int64_t cur_mod; /* the record's mod revision, 0: absent */
	int have;        /* cur is the registry's record */
	int64_t seen_rev;
	int64_t unknown_since; /* corrupt or deleted record seen (local ms), 0: no */
	int64_t bad_logged;    /* mod revision of the last bad record logged */
	int64_t changed_at;    /* local ms when the record last changed */
	int64_t confirmed_at;  /* local ms when the watch (or a read) last spoke */
	int reread;            /* the watch broke: read the record before watching again */
	int64_t members_at;    /* local ms when the membership last changed */

	missing_owner *missing;
	size_t n_missing;
	/* owners that handed their shards back (a clean leave): not planned
	 * for, even while the membership still lists them */
	missing_owner *departed;
	size_t n_departed;
	ack_entry *acks;
	size_t n_acks;
	int64_t acks_at;  /* when acks were last read */
	int64_t acked;    /* revision we acknowledged */
	int64_t plan_at;  /* membership settles then (0: nothing to settle) */
	int64_t burst_at; /* first change of the settling burst */
	int64_t retry_at; /* after a failed write or read */
	int64_t dry_at;   /* when a fallback planner last checked */
	int dry_needed;   /* ... and found the record should move */
	int lease_logged; /* released everything for want of a lease */
	int failing;      /* requests failing (logged once) */
};

/* ------------------------------------------------------------------ */
/* small helpers                                                        */
/* ------------------------------------------------------------------ */


/* The live member with id, or NULL. */
static const cluster__shard_member *
find_live(const cluster__shard_sync *s, const char *id)
{
	long i = cluster__shard_find_member(s->live, s->n_live, id);

	return i < 0 ? NULL : &s->live[i];
}

static int
stopping(cluster__shard_sync *s)
{
	return cluster__waker_stopping(&s->w);
}

static void
fail_log(cluster__shard_sync *s, const char *what, const char *why)
{
	if(!s->failing)
	{
		cluster__log(s->core, LOG_WARNING, "libcluster: shards: cannot %s %s: %s\n", what, s->label, why);
		s->failing = 1;
	}
	else if(cluster__verbose(s->core))
	{
		cluster__log(s->core, LOG_DEBUG, "libcluster: shards: cannot %s %s: %s\n", what, s->label, why);
	}
}

static void
ok_log(cluster__shard_sync *s)
{
	if(s->failing)
	{
		cluster__log(s->core, LOG_NOTICE, "libcluster: shards: %s is readable again\n", s->label);
		s->failing = 0;
	}
}

static int
pending(const cluster__shard_map *m)
{
	size_t i;

	for(i = 0; i < m->n_runs; i++)
	{
		if(m->runs[i].next >= 0)
		{
			return 1;
		}
	}
	return 0;
}

/* Hand the core a copy of the record for its getters. */
static void
publish_map(cluster__shard_sync *s)
{
	cluster__shard_map copy;

	memset(&copy, 0, sizeof(copy));
	if(cluster__shard_map_copy(&copy, &s->cur))
	{
		return;
	}
	cluster__shards_set_map(s->core, &copy);
	cluster__shard_map_free(&copy);
}

static int
is_departed(const cluster__shard_sync *s, const char *id, int64_t incarnation)
{
	size_t i;

	for(i = 0; i < s->n_departed; i++)
	{
		if(s->departed[i].incarnation == incarnation && !strcmp(s->departed[i].id, id))
		{
			return 1;
		}
	}
	return 0;
}

/*
 * Shards that went from an owner straight to nobody were handed back by
 * a clean leave (the planner's own expiry only frees owners that are not
 * live). The leaver's key may still be in our membership for a moment:
 * remember it as departed, or the next plan would give the shards right
 * back to it, and they would wait a TTL for its grace.
 */
static void
note_departed(cluster__shard_sync *s, const cluster__shard_map *old, const cluster__shard_map *now)
{
	size_t i = 0, j = 0;

	while(i < old->n_runs && j < now->n_runs)
	{
		const cluster__shard_run *a = &old->runs[i], *b = &now->runs[j];
		uint32_t a_end = a->start + a->len, b_end = b->start + b->len;

		if(a->owner >= 0 && b->owner < 0)
		{
			const cluster__shard_owner *o = &old->owners[a->owner];

			if(!is_departed(s, o->id, o->incarnation))
			{
				missing_owner *d = realloc(s->departed, (s->n_departed + 1) * sizeof(*d));

				if(d)
				{
					s->departed = d;
					d[s->n_departed].id = strdup(o->id);
					d[s->n_departed].incarnation = o->incarnation;
					d[s->n_departed].since = cluster__now_ms();
					if(d[s->n_departed].id)
					{
						s->n_departed++;
					}
				}
			}
		}
		if(a_end <= b_end)
		{
			i++;
		}
		if(b_end <= a_end)
		{
			j++;
		}
	}
}

/* Forget departed owners once the membership no longer lists them. */
static void
prune_departed(cluster__shard_sync *s)
{
	size_t i, n = 0;

	for(i = 0; i < s->n_departed; i++)
	{
		const cluster__shard_member *m = find_live(s, s->departed[i].id);

		if(m && m->incarnation == s->departed[i].incarnation)
		{
			s->departed[n++] = s->departed[i];
		}
		else
		{
			free(s->departed[i].id);
		}
	}
	s->n_departed = n;
}

/* A version of the record arrived (value NULL: absent or deleted). */
static void
load(cluster__shard_sync *s, const char *value, size_t len, int64_t mod_rev)
{
	cluster__shard_map m;
	char why[300];
	int r;

	memset(&m, 0, sizeof(m));
	s->changed_at = cluster__now_ms();
	s->retry_at = 0; /* a new version: plan on it at once */
	if(mod_rev > s->seen_rev)
	{
		s->seen_rev = mod_rev;
	}
	if(!value)
	{
		if(s->have && s->cur_mod)
		{
			/* deleted behind our back: owners may still be working; treat
			 * it like a corrupt record (wait a TTL, then rebuild) */
			cluster__log(s->core, LOG_WARNING, "libcluster: shards: %s was deleted; every member releases its shards and the assignment is rebuilt after one TTL\n", s->label);
			s->unknown_since = s->changed_at;
		}
		cluster__shard_map_free(&s->cur);
		cluster__shard_map_init(&s->cur, s->shards);
		s->cur_mod = 0;
		s->have = 1;
		publish_map(s);
		return;
	}
	r = cluster__shard_map_decode(value, len, s->shards, mod_rev, &m, why, sizeof(why));
	s->cur_mod = mod_rev;
	s->have = 1;
	if(r)
	{
		if(s->bad_logged != mod_rev)
		{
			cluster__log(s->core, LOG_ERR, "libcluster: shards: ignoring the record %s at revision %lld: %s; every member releases its shards and it is rebuilt after one TTL\n",
				s->label, (long long) mod_rev, why);
			s->bad_logged = mod_rev;
		}
		if(!s->unknown_since)
		{
			s->unknown_since = s->changed_at;
		}
		cluster__shard_map_free(&s->cur);
		cluster__shard_map_init(&s->cur, s->shards);
		publish_map(s);
		return;
	}
	s->unknown_since = 0;
	note_departed(s, &s->cur, &m);
	cluster__shard_map_free(&s->cur);
	s->cur = m;
	publish_map(s);
}

/* Take the newest membership: the live members in id order, our own
 * incarnation and rank. */
static void
take_members(cluster__shard_sync *s, int64_t now)
{
	cluster__table_iter it;
	const cluster__node *n;
	unsigned long gen;
	size_t count;

	cluster__waker_lock(&s->w);
	gen = s->members_gen;
	if(gen != s->seen_gen)
	{
		cluster__table_free(&s->members);
		cluster__table_share(&s->members, &s->members_in);
	}
	cluster__waker_unlock(&s->w);
	if(gen == s->seen_gen)
	{
		return;
	}
	s->seen_gen = gen;
	s->members_at = now;
	count = cluster__table_count(&s->members);
	free(s->live);
	s->live = count ? calloc(count, sizeof(*s->live)) : NULL;
	s->n_live = 0;
	s->self_inc = 0;
	s->rank = -1;
	if(count && !s->live)
	{
		cluster__log(s->core, LOG_ERR, "libcluster: shards: out of memory reading the membership\n");
		return;
	}
	cluster__table_iter_init(&it, &s->members);
	while((n = cluster__table_iter_next(&it)))
	{
		cluster__shard_member *m;

		if(n->passive)
		{
			continue;
		}
		m = &s->live[s->n_live];
		m->id = n->id;
		m->incarnation = n->create_revision;
		m->weight = n->workers;
		if(!strcmp(n->id, s->instance))
		{
			s->self_inc = n->create_revision;
			s->rank = (long) s->n_live;
		}
		s->n_live++;
	}
	prune_departed(s);
	/* settle: plan once the burst is quiet, but not later than a few
	 * windows after it began */
	if(!s->plan_at)
	{
		s->burst_at = now;
	}
	s->plan_at = now + s->settle_ms;
	if(s->plan_at > s->burst_at + (int64_t) s->settle_ms * SETTLE_MAX_WINDOWS)
	{
		s->plan_at = s->burst_at + (int64_t) s->settle_ms * SETTLE_MAX_WINDOWS;
	}
	if(s->plan_at <= now)
	{
		s->plan_at = now;
	}
}


/* Track the record's owners that are not live, and since when. */
static void
update_missing(cluster__shard_sync *s, int64_t now)
{
	missing_owner *nm;
	size_t i, j, n = 0;

	nm = s->cur.n_owners ? calloc(s->cur.n_owners, sizeof(*nm)) : NULL;
	if(s->cur.n_owners && !nm)
	{
		return; /* keep the old list: expiry only gets later */
	}
	for(i = 0; i < s->cur.n_owners; i++)
	{
		const cluster__shard_owner *o = &s->cur.owners[i];
		const cluster__shard_member *m = find_live(s, o->id);

		if(m && m->incarnation == o->incarnation)
		{
			continue;
		}
		nm[n].incarnation = o->incarnation;
		nm[n].since = now;
		for(j = 0; j < s->n_missing; j++)
		{
			if(s->missing[j].incarnation == o->incarnation && !strcmp(s->missing[j].id, o->id))
			{
				nm[n].since = s->missing[j].since;
				break;
			}
		}
		nm[n].id = strdup(o->id);
		if(!nm[n].id)
		{
			break;
		}
		n++;
	}
	for(j = 0; j < s->n_missing; j++)
	{
		free(s->missing[j].id);
	}
	free(s->missing);
	s->missing = nm;
	s->n_missing = n;
}

static int
expired(void *ctx, const char *id, int64_t incarnation)
{
	cluster__shard_sync *s = ctx;
	int64_t now = cluster__now_ms();
	size_t i;

	for(i = 0; i < s->n_missing; i++)
	{
		if(s->missing[i].incarnation == incarnation && !strcmp(s->missing[i].id, id))
		{
			return now >= s->missing[i].since + s->ttl_ms;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* step 1: apply                                                        */
/* ------------------------------------------------------------------ */

static void
release_all(cluster__shard_sync *s)
{
	CLUSTERSHARD *held = NULL;
	size_t n = 0;

	if(!cluster__shards_held(s->core, &held, &n) && n)
	{
		cluster__shards_deliver(s->core, NULL, 0, held, n);
	}
	free(held);
}

/* Returns the time (ms from now) by which apply must run again, -1: none. */
static int64_t
apply(cluster__shard_sync *s, int64_t now)
{
	CLUSTERSHARD *held = NULL, *acq = NULL, *rel = NULL;
	size_t nh = 0, na = 0, nr = 0;
	int64_t hold = s->st.hold_until(s->st.ctx);
	int must_ack = 0;
	char why[300];

	if(!s->have || s->unknown_since || !s->self_inc || now >= hold || now >= s->confirmed_at + s->ttl_ms)
	{
		if(!cluster__shards_held(s->core, &held, &nh) && nh)
		{
			if(s->have && s->self_inc && !s->lease_logged && (now >= hold || now >= s->confirmed_at + s->ttl_ms))
			{
				cluster__log(s->core, LOG_WARNING, "libcluster: shards: %s for a whole TTL: releasing all %zu shards until it is back\n",
					now >= hold ? "the lease was not renewed" : "the assignment could not be watched", nh);
				s->lease_logged = 1;
			}
			cluster__shards_deliver(s->core, NULL, 0, held, nh);
		}
		free(held);
		return -1;
	}
	s->lease_logged = 0;
	if(cluster__shards_held(s->core, &held, &nh) ||
		cluster__shard_diff(&s->cur, s->instance, s->self_inc, held, nh, &acq, &na, &rel, &nr, &must_ack))
	{
		cluster__log(s->core, LOG_ERR, "libcluster: shards: out of memory comparing the assignment\n");
		free(held);
		return RETRY_MS;
	}
	cluster__shards_deliver(s->core, acq, na, rel, nr);
	free(held);
	free(acq);
	free(rel);
	if(must_ack && s->acked < s->cur_mod)
	{
		if(s->st.ack(s->st.ctx, s->cur_mod, why, sizeof(why)))
		{
			if(!stopping(s))
			{
				fail_log(s, "acknowledge a hand-over in", why);
			}
			return RETRY_MS;
		}
		s->acked = s->cur_mod;
	}
	/* hold no longer than the lease, and the record's last word, allow */
	if(!cluster__shard_map_count(&s->cur, s->instance, s->self_inc))
	{
		return -1;
	}
	return hold < s->confirmed_at + s->ttl_ms ? hold - now : s->confirmed_at + s->ttl_ms - now;
}

/* ------------------------------------------------------------------ */
/* step 2: plan                                                         */
/* ------------------------------------------------------------------ */

static void
ack_seen(void *fctx, const char *id, int64_t revision)
{
	cluster__shard_sync *s = fctx;
	ack_entry *a;

	a = realloc(s->acks, (s->n_acks + 1) * sizeof(*a));
	if(!a)
	{
		return;
	}
	s->acks = a;
	a[s->n_acks].id = strdup(id);
	if(a[s->n_acks].id)
	{
		a[s->n_acks].revision = revision;
		s->n_acks++;
	}
}

static void
clear_acks(cluster__shard_sync *s)
{
	size_t i;

	for(i = 0; i < s->n_acks; i++)
	{
		free(s->acks[i].id);
	}
	free(s->acks);
	s->acks = NULL;
	s->n_acks = 0;
}

static int
read_acks(cluster__shard_sync *s, int64_t now)
{
	char why[300];
	int r;

	clear_acks(s);
	r = s->st.acks(s->st.ctx, ack_seen, s, why, sizeof(why));
	if(r)
	{
		if(!stopping(s))
		{
			fail_log(s, "read the acknowledgements beside", why);
		}
		return r;
	}
	s->acks_at = now;
	return 0;
}

static int64_t
acked_by(const cluster__shard_sync *s, const char *id)
{
	size_t i;

	for(i = 0; i < s->n_acks; i++)
	{
		if(!strcmp(s->acks[i].id, id))
		{
			return s->acks[i].revision;
		}
	}
	return 0;
}

/* The next assignment from cur (or from nothing after a bad record). */
static int
compute(cluster__shard_sync *s, cluster__shard_map *next, int *changed, size_t *moves)
{
	cluster__shard_map empty;
	cluster__shard_member *live;
	size_t i, n = 0;
	int r;

	live = s->n_live ? malloc(s->n_live * sizeof(*live)) : NULL;
	if(s->n_live && !live)
	{
		return ENOMEM;
	}
	for(i = 0; i < s->n_live; i++)
	{
		if(!is_departed(s, s->live[i].id, s->live[i].incarnation))
		{
			live[n] = s->live[i];
			live[n].acked = acked_by(s, s->live[i].id);
			n++;
		}
	}
	if(!s->unknown_since)
	{
		r = cluster__shard_plan(&s->cur, live, n, expired, s, next, changed, moves);
	}
	else
	{
		r = cluster__shard_map_init(&empty, s->shards);
		if(!r)
		{
			r = cluster__shard_plan(&empty, live, n, expired, s, next, changed, moves);
			cluster__shard_map_free(&empty);
			*changed = 1;
		}
	}
	free(live);
	return r;
}

/* Write next over cur (compare-and-swap on cur's revision). */
static void
write_next(cluster__shard_sync *s, const cluster__shard_map *next, size_t moves, int64_t now)
{
	char *text = NULL, why[300];
	size_t len = 0;
	int64_t rev = 0;
	int won = 0, r;

	r = cluster__shard_map_encode(next, &text, &len);
	if(r)
	{
		cluster__log(s->core, LOG_ERR, "libcluster: shards: out of memory encoding the assignment\n");
		s->retry_at = now + RETRY_MS;
		return;
	}
	r = s->st.cas(s->st.ctx, text, s->cur_mod, &won, &rev, why, sizeof(why));
	if(r)
	{
		if(!stopping(s))
		{
			fail_log(s, "write", why);
		}
		s->retry_at = now + RETRY_MS;
	}
	else if(won)
	{
		ok_log(s);
		if(cluster__verbose(s->core))
		{
			cluster__log(s->core, LOG_DEBUG, "libcluster: shards: wrote the assignment at revision %lld (%zu shards to move, %zu bytes)\n", (long long) rev, moves, len);
		}
		load(s, text, len, rev);
	}
	else
	{
		/* lost: somebody else wrote first; the watch brings their
		 * version (which clears retry_at), so do not try again on this
		 * one meanwhile */
		s->retry_at = now + RETRY_MS;
	}
	free(text);
}

/* Returns ms until the planner wants to run again, -1: not before the
 * next change. */
static int64_t
plan(cluster__shard_sync *s, int64_t now)
{
	cluster__shard_map next;
	int64_t wait = -1, due;
	size_t moves = 0, i;
	int changed = 0, pend;

	if(!s->have || s->rank < 0 || stopping(s))
	{
		return -1;
	}
	if(now < s->retry_at)
	{
		return s->retry_at - now;
	}
	if(s->unknown_since && now < s->unknown_since + s->ttl_ms)
	{
		return s->unknown_since + s->ttl_ms - now;
	}
	if(s->plan_at && now < s->plan_at)
	{
		return s->plan_at - now;
	}
	pend = pending(&s->cur);
	if(s->rank > 0 && !__atomic_load_n(&cluster__shard_test_eager, __ATOMIC_RELAXED))
	{
		/* a fallback: only for a record that has not moved for long
		 * although it should */
		long rank = s->rank < FALLBACK_RANKS ? s->rank : FALLBACK_RANKS;

		due = (s->changed_at > s->members_at ? s->changed_at : s->members_at) + s->settle_ms + FALLBACK_MS * rank;
		if(now < due)
		{
			return due - now;
		}
		if(!pend && now - s->dry_at < FALLBACK_MS && !s->dry_needed)
		{
			return FALLBACK_MS - (now - s->dry_at);
		}
	}
	if(pend && now - s->acks_at >= ACK_POLL_MS)
	{
		if(read_acks(s, now))
		{
			s->retry_at = now + RETRY_MS;
			return RETRY_MS;
		}
	}
	memset(&next, 0, sizeof(next));
	if(compute(s, &next, &changed, &moves))
	{
		cluster__log(s->core, LOG_ERR, "libcluster: shards: out of memory planning the assignment\n");
		s->retry_at = now + RETRY_MS;
		return RETRY_MS;
	}
	s->plan_at = 0;
	s->dry_at = now;
	s->dry_needed = changed;
	if(changed)
	{
		write_next(s, &next, moves, now);
	}
	cluster__shard_map_free(&next);
	if(pending(&s->cur))
	{
		wait = ACK_POLL_MS;
	}
	/* a vanished owner's shards move when its grace ends */
	for(i = 0; i < s->n_missing; i++)
	{
		int64_t t = s->missing[i].since + s->ttl_ms - now;

		if(t < 0)
		{
			t = 0;
		}
		if(wait < 0 || t < wait)
		{
			wait = t;
		}
	}
	return wait;
}

/* ------------------------------------------------------------------ */
/* the thread                                                           */
/* ------------------------------------------------------------------ */

static int64_t
min_wait(int64_t a, int64_t b)
{
	if(a < 0)
	{
		return b;
	}
	if(b < 0)
	{
		return a;
	}
	return a < b ? a : b;
}

/* One step; returns ms until the next one (-1: on the next change). */
static int64_t
step(cluster__shard_sync *s)
{
	int64_t now = cluster__now_ms(), a, p;

	take_members(s, now);
	update_missing(s, now);
	a = apply(s, now);
	p = plan(s, now);
	if(p == 0)
	{
		p = 1;
	}
	if(a == 0)
	{
		a = 1;
	}
	return min_wait(a, p);
}

static int
on_record(void *ctx, const char *value, size_t len, int64_t mod_rev)
{
	cluster__shard_sync *s = ctx;

	if(mod_rev > s->cur_mod || !value)
	{
		load(s, value, len, mod_rev);
	}
	return 0;
}

static void
on_alive(void *ctx)
{
	cluster__shard_sync *s = ctx;

	s->confirmed_at = cluster__now_ms();
}

static int64_t
on_tick(void *ctx)
{
	cluster__shard_sync *s = ctx;

	if(stopping(s))
	{
		return CLUSTER__HTTP_STOP;
	}
	cluster__waker_take(&s->w, WAKE_MEMBERS);
	return step(s);
}

/* Wait up to ms while still stepping (the lease may run out meanwhile). */
static void
idle(cluster__shard_sync *s, int64_t ms)
{
	int64_t end = cluster__now_ms() + ms;

	while(!stopping(s))
	{
		int64_t left = end - cluster__now_ms(), next;

		if(left <= 0)
		{
			return;
		}
		cluster__waker_take(&s->w, WAKE_MEMBERS);
		next = min_wait(step(s), left);
		cluster__waker_nap(&s->w, next, WAKE_MEMBERS);
	}
}

static int
read_record(cluster__shard_sync *s)
{
	char *value = NULL, why[300];
	size_t len = 0;
	int64_t mod = 0, rev = 0;
	int r;

	r = s->st.get(s->st.ctx, &value, &len, &mod, &rev, why, sizeof(why));
	if(r)
	{
		if(!stopping(s))
		{
			fail_log(s, "read", why);
		}
		return r;
	}
	ok_log(s);
	s->confirmed_at = cluster__now_ms();
	s->reread = 0;
	load(s, value, len, mod);
	free(value);
	if(rev > s->seen_rev)
	{
		s->seen_rev = rev;
	}
	return 0;
}

static void *
run(void *arg)
{
	cluster__shard_sync *s = arg;
	int backoff = 50;

	while(!stopping(s))
	{
		char why[300];
		int r;

		if(!s->have || s->reread)
		{
			if(read_record(s))
			{
				idle(s, backoff);
				backoff = backoff * 2 > RETRY_MS * 2 ? RETRY_MS * 2 : backoff * 2;
				continue;
			}
		}
		r = s->st.watch(s->st.ctx, s->seen_rev + 1, on_record, on_alive, on_tick, s, why, sizeof(why));
		if(stopping(s))
		{
			break;
		}
		/* the last record read stays valid meanwhile: a hand-over needs
		 * our acknowledgement, an expiry our lease, and apply() lets go
		 * once the watch has been silent for a TTL */
		if(r == ERANGE)
		{
			s->reread = 1;
			continue;
		}
		if(r)
		{
			fail_log(s, "watch", why);
			s->reread = 1;
			idle(s, backoff);
			backoff = backoff * 2 > RETRY_MS * 2 ? RETRY_MS * 2 : backoff * 2;
			continue;
		}
		backoff = 50;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* entry points                                                         */
/* ------------------------------------------------------------------ */

static void
sync_free(cluster__shard_sync *s)
{
	size_t i;

	for(i = 0; i < s->n_missing; i++)
	{
		free(s->missing[i].id);
	}
	free(s->missing);
	for(i = 0; i < s->n_departed; i++)
	{
		free(s->departed[i].id);
	}
	free(s->departed);
	clear_acks(s);
	free(s->live);
	cluster__table_free(&s->members);
	cluster__table_free(&s->members_in);
	cluster__shard_map_free(&s->cur);
	cluster__waker_destroy(&s->w);
	free(s->instance);
	free(s->label);
	free(s);
}

int
cluster__shard_sync_start(CLUSTER *core, const cluster__shard_store *store, const cluster__shard_sync_config *cfg, cluster__shard_sync **out)
{
	cluster__shard_sync *s = calloc(1, sizeof(*s));
	int r;

	*out = NULL;
	if(!s)
	{
		return ENOMEM;
	}
	cluster__waker_init(&s->w);
	s->core = core;
	s->st = *store;
	s->instance = strdup(cfg->instance);
	s->label = strdup(cfg->label);
	s->shards = cfg->shards;
	s->settle_ms = cfg->settle_ms;
	s->ttl_ms = cfg->ttl_ms;
	s->leave_ms = cfg->leave_ms;
	s->rank = -1;
	if(!s->instance || !s->label || cluster__shard_map_init(&s->cur, s->shards))
	{
		sync_free(s);
		return ENOMEM;
	}
	r = pthread_create(&s->thread, NULL, run, s);
	if(r)
	{
		sync_free(s);
		return r;
	}
	s->running = 1;
	*out = s;
	return 0;
}

void
cluster__shard_sync_members(cluster__shard_sync *s, const cluster__table *members)
{
	if(!s)
	{
		return;
	}
	cluster__waker_lock(&s->w);
	cluster__table_free(&s->members_in);
	cluster__table_share(&s->members_in, members);
	s->members_gen++;
	cluster__waker_raise_locked(&s->w, WAKE_MEMBERS);
	cluster__waker_unlock(&s->w);
	s->st.wake(s->st.ctx);
}

void
cluster__shard_sync_wake(cluster__shard_sync *s)
{
	if(s)
	{
		cluster__waker_raise(&s->w, WAKE_MEMBERS);
		s->st.wake(s->st.ctx);
	}
}

/*
 * Leave: release everything here first (the application stops working on
 * its shards), then hand them back in the record so that the others need
 * not wait a TTL: our runs pass to their pending next or become unowned.
 */
void
cluster__shard_sync_stop(cluster__shard_sync *s)
{
	int64_t end;
	int attempt;

	if(!s)
	{
		return;
	}
	end = cluster__now_ms() + s->leave_ms;
	cluster__waker_stop(&s->w);
	s->st.wake(s->st.ctx);
	if(s->running)
	{
		pthread_join(s->thread, NULL);
		s->running = 0;
	}
	release_all(s);
	take_members(s, cluster__now_ms());
	for(attempt = 0; s->self_inc && attempt < 3 && cluster__now_ms() < end; attempt++)
	{
		cluster__shard_map next;
		char *text = NULL, why[300];
		size_t len = 0;
		int64_t rev = 0;
		int changed = 0, won = 0, r;

		if((!s->have || attempt > 0) && read_record(s))
		{
			break;
		}
		if(s->unknown_since)
		{
			break; /* nothing to hand back in a record we cannot read */
		}
		memset(&next, 0, sizeof(next));
		r = cluster__shard_map_leave(&s->cur, s->instance, s->self_inc, &next, &changed);
		if(!r && changed)
		{
			r = cluster__shard_map_encode(&next, &text, &len);
		}
		cluster__shard_map_free(&next);
		if(r || !changed)
		{
			break;
		}
		r = s->st.cas(s->st.ctx, text, s->cur_mod, &won, &rev, why, sizeof(why));
		free(text);
		if(r)
		{
			cluster__log(s->core, LOG_NOTICE, "libcluster: shards: cannot hand back our shards in %s: %s; the others take them over one TTL after our lease ends\n", s->label, why);
			break;
		}
		if(won)
		{
			break;
		}
	}
	cluster__shards_set_map(s->core, NULL);
	sync_free(s);
}
