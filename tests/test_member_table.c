/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The persistent member table against a naive model (a sorted array with
 * prefix sums): randomized operation sequences checked after every step,
 * old versions checked after later changes and released in any order,
 * the member limit, invalid records, allocation failures at every point
 * of an update, releases from another thread. Run it under valgrind or
 * ASan to see that every version is freed.
 *
 * Linked with -Wl,--wrap=malloc: malloc fails on demand (fail_after).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "member-table.h"
#include "failmalloc.h"
#include "testrng.h"

/* ------------------------------------------------------------------ */
/* the model                                                            */
/* ------------------------------------------------------------------ */

typedef struct mrec mrec;
struct mrec
{
	char id[CLUSTER_NAME_MAX + 1];
	int workers;
	int passive;
	int has_status;
	long long load;
	char address[CLUSTER_ADDRESS_MAX + 1];
	int64_t rev;
	int64_t recv;
};

typedef struct model model;
struct model
{
	mrec *r;
	size_t n;
};

static size_t
model_pos(const model *m, const char *id, int *found)
{
	size_t lo = 0, hi = m->n;

	*found = 0;
	while(lo < hi)
	{
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->r[mid].id, id);

		if(!c)
		{
			*found = 1;
			return mid;
		}
		if(c < 0)
		{
			lo = mid + 1;
		}
		else
		{
			hi = mid;
		}
	}
	return lo;
}

/* What the table promises for a put, done the obvious way. */
static int
model_put(model *m, const cluster__member *rec, int64_t now, int *changed)
{
	int found;
	size_t pos = model_pos(m, rec->id, &found);
	mrec x;

	memset(&x, 0, sizeof(x));
	snprintf(x.id, sizeof(x.id), "%s", rec->id);
	x.workers = rec->workers;
	x.passive = rec->passive;
	x.has_status = rec->has_status;
	if(x.has_status)
	{
		x.load = rec->load;
		snprintf(x.address, sizeof(x.address), "%s", rec->address);
	}
	x.rev = rec->mod_revision;
	x.recv = now;
	if(found)
	{
		mrec *o = &m->r[pos];
		int same = o->workers == x.workers && o->passive == x.passive && o->has_status == x.has_status &&
				   (!x.has_status || (o->load == x.load && !strcmp(o->address, x.address)));

		if(same)
		{
			x.recv = o->recv;
		}
		*changed = !same;
		*o = x;
		return 0;
	}
	if(m->n >= CLUSTER_MEMBERS_MAX)
	{
		return E2BIG;
	}
	m->r = realloc(m->r, (m->n + 1) * sizeof(*m->r));
	assert_non_null(m->r);
	memmove(&m->r[pos + 1], &m->r[pos], (m->n - pos) * sizeof(*m->r));
	m->r[pos] = x;
	m->n++;
	*changed = 1;
	return 0;
}

static int
model_del(model *m, const char *id)
{
	int found;
	size_t pos = model_pos(m, id, &found);

	if(!found)
	{
		return 0;
	}
	memmove(&m->r[pos], &m->r[pos + 1], (m->n - pos - 1) * sizeof(*m->r));
	m->n--;
	return 1;
}

static model
model_copy(const model *m)
{
	model c;

	c.n = m->n;
	c.r = malloc((m->n ? m->n : 1) * sizeof(*c.r));
	assert_non_null(c.r);
	if(m->n)
	{
		memcpy(c.r, m->r, m->n * sizeof(*c.r));
	}
	return c;
}

/* Everything the table can be asked, against the model. */
static void
check_against(const cluster__table *t, const model *m)
{
	cluster__table_iter it;
	const cluster__node *n;
	size_t i = 0;
	int sum = 0;

	assert_int_equal(cluster__table_check(t), 0);
	assert_int_equal(cluster__table_count(t), m->n);
	cluster__table_iter_init(&it, t);
	while((n = cluster__table_iter_next(&it)))
	{
		const mrec *x;
		int base = -7;

		assert_true(i < m->n);
		x = &m->r[i];
		assert_string_equal(n->id, x->id);
		assert_int_equal(n->workers, x->workers);
		assert_int_equal(n->passive, x->passive);
		assert_true(n->mod_revision == x->rev);
		assert_true(n->received_ms == x->recv);
		assert_int_equal(n->has_status, x->has_status);
		{
			const char *addr;
			long long load, cap;

			assert_int_equal(cluster__node_status(n, &addr, &load, &cap), x->has_status);
			assert_true(load == x->load);
			assert_true(cap == 0);
			assert_string_equal(addr, x->address);
		}
		assert_int_equal(cluster__table_rank(t, x->id, &base), (long) i);
		assert_int_equal(base, sum);
		assert_ptr_equal(cluster__table_at(t, i, &base), n);
		assert_int_equal(base, sum);
		assert_ptr_equal(cluster__table_find(t, x->id), n);
		sum += x->passive ? 0 : x->workers;
		i++;
	}
	assert_int_equal(i, m->n);
	assert_int_equal(cluster__table_total(t), sum);
	assert_null(cluster__table_at(t, m->n, NULL));
}

static unsigned
rnd(unsigned n)
{
	return (unsigned) (rng64() >> 33) % n;
}

static cluster__member
rec_of(const char *id, int workers, int passive)
{
	cluster__member m;

	memset(&m, 0, sizeof(m));
	snprintf(m.id, sizeof(m.id), "%s", id);
	m.workers = workers;
	m.passive = passive;
	return m;
}

/* A random record for one of pool ids (ids of varying length and case,
 * so byte order matters). */
static cluster__member
random_rec(unsigned pool)
{
	static const char *stems[] = { "m", "M", "node-", "a.b", "z_" };
	unsigned k = rnd(pool);
	char id[24];
	cluster__member m;

	snprintf(id, sizeof(id), "%s%u", stems[k % 5], k);
	m = rec_of(id, 1 + (int) rnd(4), rnd(8) == 0);
	m.mod_revision = rnd(3);
	if(rnd(2))
	{
		m.has_status = 1;
		m.load = rnd(3);
		snprintf(m.address, sizeof(m.address), "ws://h%u", rnd(2));
	}
	return m;
}

/* A kept version and what it must still hold. */
typedef struct kept kept;
struct kept
{
	cluster__table t;
	model m;
};

/*
 * Random puts and deletes against the model, checked after every step;
 * every 50th version is kept and checked again at the end, then the
 * kept versions are released in a shuffled order while the live table
 * goes on changing.
 */
static void
run_random(uint64_t seed, unsigned pool, unsigned steps)
{
	cluster__table t;
	model m = { NULL, 0 };
	kept *keep = NULL;
	size_t nkeep = 0, i;
	unsigned s;

	rng_state = seed;
	memset(&t, 0, sizeof(t));
	for(s = 0; s < steps; s++)
	{
		cluster__member rec = random_rec(pool);

		if(rnd(3) == 0)
		{
			assert_int_equal(cluster__table_del(&t, rec.id), model_del(&m, rec.id));
		}
		else
		{
			int ch = -1, mch = -1;

			assert_int_equal(cluster__table_put(&t, &rec, (int64_t) s + 1000, &ch), model_put(&m, &rec, (int64_t) s + 1000, &mch));
			assert_int_equal(ch, mch);
		}
		check_against(&t, &m);
		if(s % 50 == 0)
		{
			keep = realloc(keep, (nkeep + 1) * sizeof(*keep));
			assert_non_null(keep);
			cluster__table_share(&keep[nkeep].t, &t);
			keep[nkeep].m = model_copy(&m);
			nkeep++;
		}
	}
	for(i = 0; i < nkeep; i++)
	{
		check_against(&keep[i].t, &keep[i].m);
	}
	/* release in a shuffled order, changing the live table in between */
	for(i = nkeep; i > 1; i--)
	{
		size_t j = rnd((unsigned) i);
		kept tmp = keep[i - 1];

		keep[i - 1] = keep[j];
		keep[j] = tmp;
	}
	for(i = 0; i < nkeep; i++)
	{
		cluster__member rec = random_rec(pool);
		int ch;

		cluster__table_free(&keep[i].t);
		assert_null(keep[i].t.root);
		free(keep[i].m.r);
		assert_int_equal(cluster__table_del(&t, rec.id), model_del(&m, rec.id));
		rec = random_rec(pool);
		assert_int_equal(cluster__table_put(&t, &rec, 5, &ch), model_put(&m, &rec, 5, &ch));
		if(i + 1 < nkeep)
		{
			check_against(&keep[i + 1].t, &keep[i + 1].m);
		}
		check_against(&t, &m);
	}
	free(keep);
	cluster__table_free(&t);
	free(m.r);
}

static void
test_random_small_pool(void **state)
{
	(void) state;
	run_random(0x9e3779b97f4a7c15ULL, 12, 3000);
}

static void
test_random_large_pool(void **state)
{
	(void) state;
	run_random(12345, 400, 4000);
}

/* ------------------------------------------------------------------ */
/* put semantics                                                        */
/* ------------------------------------------------------------------ */

static void
test_put_semantics(void **state)
{
	cluster__table t, old;
	cluster__member rec;
	const cluster__node *n;
	const char *addr;
	long long load;
	int changed = -1;

	(void) state;
	memset(&t, 0, sizeof(t));
	rec = rec_of("q", 5, 0);
	rec.has_status = 1;
	rec.load = 3;
	snprintf(rec.address, sizeof(rec.address), "ws://q:1");
	assert_int_equal(cluster__table_put(&t, &rec, 100, &changed), 0);
	assert_int_equal(changed, 1);
	/* the very same record again: nothing changes, not even the version */
	cluster__table_share(&old, &t);
	assert_int_equal(cluster__table_put(&t, &rec, 200, &changed), 0);
	assert_int_equal(changed, 0);
	assert_ptr_equal(t.root, old.root);
	/* same content, new revision: stored, receipt time kept */
	rec.mod_revision = 99;
	assert_int_equal(cluster__table_put(&t, &rec, 300, &changed), 0);
	assert_int_equal(changed, 0);
	n = cluster__table_find(&t, "q");
	assert_true(n->received_ms == 100);
	assert_true(n->mod_revision == 99);
	assert_ptr_not_equal(t.root, old.root);
	assert_true(cluster__table_find(&old, "q")->mod_revision == 0);
	/* workers change: a change; the status stays */
	rec.workers = 6;
	assert_int_equal(cluster__table_put(&t, &rec, 400, &changed), 0);
	assert_int_equal(changed, 1);
	n = cluster__table_find(&t, "q");
	assert_true(n->received_ms == 400);
	assert_int_equal(cluster__node_status(n, &addr, &load, NULL), 1);
	assert_true(load == 3);
	assert_string_equal(addr, "ws://q:1");
	/* status change is a change */
	rec.load = 4;
	assert_int_equal(cluster__table_put(&t, &rec, 500, &changed), 0);
	assert_int_equal(changed, 1);
	cluster__node_status(cluster__table_find(&t, "q"), NULL, &load, NULL);
	assert_true(load == 4);
	cluster__node_status(cluster__table_find(&old, "q"), NULL, &load, NULL);
	assert_true(load == 3);
	/* status dropped */
	rec.has_status = 0;
	assert_int_equal(cluster__table_put(&t, &rec, 600, &changed), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(cluster__node_status(cluster__table_find(&t, "q"), &addr, &load, NULL), 0);
	assert_string_equal(addr, "");
	assert_true(load == 0);
	/* passive: kept, not counted */
	rec = rec_of("p", 7, 1);
	assert_int_equal(cluster__table_put(&t, &rec, 700, &changed), 0);
	assert_int_equal(cluster__table_count(&t), 2);
	assert_int_equal(cluster__table_total(&t), 6);
	{
		int base;

		assert_int_equal(cluster__table_rank(&t, "q", &base), 1);
		assert_int_equal(base, 0);
		assert_int_equal(cluster__table_rank(&t, "zz", &base), -1);
		assert_int_equal(base, 6);
		assert_int_equal(cluster__table_rank(&t, "a", &base), -1);
		assert_int_equal(base, 0);
	}
	assert_int_equal(cluster__table_del(&t, "p"), 1);
	assert_int_equal(cluster__table_del(&t, "p"), 0);
	assert_int_equal(cluster__table_del(&t, "q"), 1);
	assert_null(t.root);
	assert_int_equal(cluster__table_count(&t), 0);
	assert_int_equal(cluster__table_total(&t), 0);
	assert_int_equal(cluster__table_check(&t), 0);
	cluster__table_free(&t);
	cluster__table_free(&old);
}

/* Bad records are refused and leave the table as it was. */
static void
test_invalid_records(void **state)
{
	cluster__table t;
	cluster__member rec;
	cluster__node *root;

	(void) state;
	memset(&t, 0, sizeof(t));
	rec = rec_of("ok", 1, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 1, NULL), 0);
	root = t.root;
	rec = rec_of("", 1, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 1, NULL), EINVAL);
	rec = rec_of("w0", 0, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 1, NULL), EINVAL);
	rec = rec_of("w-1", -1, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 1, NULL), EINVAL);
	rec = rec_of("wbig", CLUSTER_WORKERS_MAX + 1, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 1, NULL), EINVAL);
	/* an existing member with a bad worker count is refused too */
	rec = rec_of("ok", 0, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 1, NULL), EINVAL);
	/* unterminated buffers are never over-read */
	rec = rec_of("x", 1, 0);
	memset(rec.id, 'x', sizeof(rec.id));
	assert_int_equal(cluster__table_put(&t, &rec, 1, NULL), EINVAL);
	rec = rec_of("y", 1, 0);
	rec.has_status = 1;
	memset(rec.address, 'y', sizeof(rec.address));
	assert_int_equal(cluster__table_put(&t, &rec, 1, NULL), EINVAL);
	/* the longest id and address fit */
	memset(rec.id, 'i', CLUSTER_NAME_MAX);
	rec.id[CLUSTER_NAME_MAX] = 0;
	rec.address[CLUSTER_ADDRESS_MAX] = 0;
	assert_ptr_equal(t.root, root);
	assert_int_equal(cluster__table_put(&t, &rec, 1, NULL), 0);
	assert_int_equal(strlen(cluster__table_find(&t, rec.id)->id), CLUSTER_NAME_MAX);
	{
		const char *addr;

		assert_int_equal(cluster__node_status(cluster__table_find(&t, rec.id), &addr, NULL, NULL), 1);
		assert_int_equal(strlen(addr), CLUSTER_ADDRESS_MAX);
	}
	/* a status record needs a status */
	rec = rec_of("s", 1, 0);
	assert_int_equal(cluster__table_put_status(&t, &rec, 1, NULL), EINVAL);
	assert_int_equal(cluster__table_count(&t), 2);
	assert_int_equal(cluster__table_check(&t), 0);
	cluster__table_free(&t);
}

/* A statuses table: one status per id, nobody counted. */
static void
test_status_table(void **state)
{
	cluster__table s;
	cluster__member rec;
	int changed;

	(void) state;
	memset(&s, 0, sizeof(s));
	rec = rec_of("b", 9, 0);
	rec.has_status = 1;
	rec.load = 5;
	rec.mod_revision = 3;
	assert_int_equal(cluster__table_put_status(&s, &rec, 10, &changed), 0);
	assert_int_equal(changed, 1);
	/* workers are ignored: same status, same content */
	rec.workers = 2;
	rec.mod_revision = 4;
	assert_int_equal(cluster__table_put_status(&s, &rec, 20, &changed), 0);
	assert_int_equal(changed, 0);
	assert_true(cluster__table_find(&s, "b")->received_ms == 10);
	assert_int_equal(cluster__table_find(&s, "b")->workers, 0);
	assert_int_equal(cluster__table_find(&s, "b")->passive, 1);
	assert_int_equal(cluster__table_total(&s), 0);
	assert_int_equal(cluster__table_check(&s), 0);
	cluster__table_free(&s);
}

/*
 * The join age lives with the status: a status record that published one
 * gives it back (and keeps it through rotations and a new version of
 * another member), a new write dates the join afresh without being a
 * change of content, and a record without a status carries none (the
 * bytes of a plain member hold no status: the fixed part stays 56).
 */
static void
test_joined_with_status(void **state)
{
	cluster__table t, old;
	cluster__member rec;
	const cluster__node *n;
	const char *addr;
	long long load, cap;
	int changed, i;
	char id[8];

	(void) state;
	assert_true(offsetof(cluster__node, id) <= 56);
	memset(&t, 0, sizeof(t));
	rec = rec_of("m", 2, 0);
	rec.has_up = 1; /* no status: the age is not kept */
	rec.joined_ms = 777;
	assert_int_equal(cluster__table_put(&t, &rec, 10, &changed), 0);
	n = cluster__table_find(&t, "m");
	assert_int_equal(n->has_joined, 0);
	assert_true(cluster__node_joined_ms(n) == 0);
	rec.has_status = 1;
	snprintf(rec.address, sizeof(rec.address), "ws://m:1");
	rec.load = 3;
	rec.capacity = 9;
	rec.mod_revision = 2;
	assert_int_equal(cluster__table_put(&t, &rec, 20, &changed), 0);
	assert_int_equal(changed, 1);
	n = cluster__table_find(&t, "m");
	assert_int_equal(n->has_joined, 1);
	assert_true(cluster__node_joined_ms(n) == 777);
	assert_int_equal(cluster__node_status(n, &addr, &load, &cap), 1);
	assert_string_equal(addr, "ws://m:1");
	assert_true(load == 3 && cap == 9);
	/* many more members: rotations copy the node with its tail */
	for(i = 0; i < 40; i++)
	{
		cluster__member other;

		snprintf(id, sizeof(id), "a%02d", i);
		other = rec_of(id, 1, 0);
		assert_int_equal(cluster__table_put(&t, &other, 30, NULL), 0);
	}
	n = cluster__table_find(&t, "m");
	assert_true(cluster__node_joined_ms(n) == 777);
	assert_int_equal(cluster__node_status(n, &addr, &load, &cap), 1);
	assert_string_equal(addr, "ws://m:1");
	assert_true(load == 3 && cap == 9);
	/* a later write with a new age: same content, the old version keeps its own */
	cluster__table_share(&old, &t);
	rec.joined_ms = 780;
	rec.mod_revision = 3;
	assert_int_equal(cluster__table_put(&t, &rec, 40, &changed), 0);
	assert_int_equal(changed, 0);
	assert_true(cluster__node_joined_ms(cluster__table_find(&t, "m")) == 780);
	assert_true(cluster__node_joined_ms(cluster__table_find(&old, "m")) == 777);
	/* a write without an age */
	rec.has_up = 0;
	rec.mod_revision = 4;
	assert_int_equal(cluster__table_put(&t, &rec, 50, &changed), 0);
	assert_int_equal(cluster__table_find(&t, "m")->has_joined, 0);
	assert_true(cluster__node_joined_ms(cluster__table_find(&t, "m")) == 0);
	assert_int_equal(cluster__table_check(&t), 0);
	assert_int_equal(cluster__table_check(&old), 0);
	cluster__table_free(&old);
	cluster__table_free(&t);
}

/* ------------------------------------------------------------------ */
/* shape and the limit                                                  */
/* ------------------------------------------------------------------ */

static int
height(const cluster__node *n)
{
	int l, r;

	if(!n)
	{
		return 0;
	}
	l = height(n->left);
	r = height(n->right);
	return 1 + (l > r ? l : r);
}

/*
 * CLUSTER_MEMBERS_MAX members in ascending id order (the worst order for
 * an unbalanced tree): the height stays logarithmic, a new id is refused
 * with E2BIG and leaves the table as it was, an existing member may
 * change at the limit, and a delete makes room again.
 */
static void
test_limit(void **state)
{
	cluster__table t, half;
	cluster__member rec;
	cluster__node *root;
	size_t i;
	int changed = 7, base;

	(void) state;
	memset(&t, 0, sizeof(t));
	memset(&half, 0, sizeof(half));
	for(i = 0; i < CLUSTER_MEMBERS_MAX; i++)
	{
		char id[16];

		snprintf(id, sizeof(id), "m%06zu", i + 1);
		rec = rec_of(id, 2, 0);
		assert_int_equal(cluster__table_put(&t, &rec, 100, NULL), 0);
		if(i + 1 == CLUSTER_MEMBERS_MAX / 2)
		{
			cluster__table_share(&half, &t);
		}
	}
	assert_int_equal(cluster__table_count(&t), CLUSTER_MEMBERS_MAX);
	assert_int_equal(cluster__table_total(&t), 2 * CLUSTER_MEMBERS_MAX);
	assert_int_equal(cluster__table_check(&t), 0);
	assert_true(height(t.root) <= 35);
	root = t.root;
	rec = rec_of("m000000", 1, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 200, &changed), E2BIG);
	assert_int_equal(changed, 7);
	rec = rec_of("z", 1, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 200, NULL), E2BIG);
	rec = rec_of("m000001x", 1, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 200, NULL), E2BIG);
	assert_ptr_equal(t.root, root);
	assert_null(cluster__table_find(&t, "m000000"));
	assert_string_equal(cluster__table_at(&t, 0, NULL)->id, "m000001");
	/* a member already held may change at the limit */
	rec = rec_of("m000002", 9, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 300, &changed), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(cluster__table_find(&t, "m000002")->workers, 9);
	assert_int_equal(cluster__table_rank(&t, "m000003", &base), 2);
	assert_int_equal(base, 11);
	/* below the limit again, a new member fits */
	assert_int_equal(cluster__table_del(&t, "m000003"), 1);
	rec = rec_of("z", 1, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 400, NULL), 0);
	assert_int_equal(cluster__table_put(&t, &rec, 400, NULL), 0);
	rec = rec_of("m000003", 1, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 400, NULL), E2BIG);
	assert_int_equal(cluster__table_check(&t), 0);
	/* the version kept at half way never saw any of it */
	assert_int_equal(cluster__table_count(&half), CLUSTER_MEMBERS_MAX / 2);
	assert_int_equal(cluster__table_find(&half, "m000002")->workers, 2);
	assert_non_null(cluster__table_find(&half, "m000003"));
	assert_int_equal(cluster__table_check(&half), 0);
	/* delete everything, in ascending order again */
	cluster__table_free(&half);
	for(i = 0; i < CLUSTER_MEMBERS_MAX; i++)
	{
		char id[16];

		snprintf(id, sizeof(id), "m%06zu", i + 1);
		cluster__table_del(&t, id);
		if(i % 1024 == 0)
		{
			assert_int_equal(cluster__table_check(&t), 0);
		}
	}
	assert_int_equal(cluster__table_count(&t), 1);
	assert_string_equal(cluster__table_at(&t, 0, NULL)->id, "z");
	cluster__table_free(&t);
}

/*
 * Exhaustive over small sets: every insertion order of 6 ids gives the
 * same members in the same order with the same bases, and deleting any
 * one afterwards leaves a valid tree.
 */
static void
test_every_order(void **state)
{
	const char *ids[6] = { "f", "B", "a-1", "a.1", "b", "c" };
	const char *sorted[6] = { "B", "a-1", "a.1", "b", "c", "f" };
	int perm[6] = { 0, 1, 2, 3, 4, 5 };
	size_t orders = 0;

	(void) state;
	for(;;)
	{
		cluster__table t;
		int i, k;

		memset(&t, 0, sizeof(t));
		for(i = 0; i < 6; i++)
		{
			cluster__member rec = rec_of(ids[perm[i]], perm[i] + 1, perm[i] == 2);

			assert_int_equal(cluster__table_put(&t, &rec, 1, NULL), 0);
			assert_int_equal(cluster__table_check(&t), 0);
		}
		for(i = 0; i < 6; i++)
		{
			assert_string_equal(cluster__table_at(&t, (size_t) i, NULL)->id, sorted[i]);
		}
		for(k = 0; k < 6; k++)
		{
			cluster__table c;

			cluster__table_share(&c, &t);
			assert_int_equal(cluster__table_del(&c, ids[perm[k]]), 1);
			assert_int_equal(cluster__table_check(&c), 0);
			assert_int_equal(cluster__table_count(&c), 5);
			cluster__table_free(&c);
		}
		assert_int_equal(cluster__table_count(&t), 6);
		cluster__table_free(&t);
		orders++;
		/* next permutation */
		for(i = 4; i >= 0 && perm[i] > perm[i + 1]; i--)
		{
		}
		if(i < 0)
		{
			break;
		}
		for(k = 5; perm[k] < perm[i]; k--)
		{
		}
		{
			int tmp = perm[i];

			perm[i] = perm[k];
			perm[k] = tmp;
		}
		for(k = 5, i++; i < k; i++, k--)
		{
			int tmp = perm[i];

			perm[i] = perm[k];
			perm[k] = tmp;
		}
	}
	assert_int_equal(orders, 720);
}

/*
 * Out of memory at every point of an update: for each operation, fail
 * the k-th allocation for k = 0, 1, ... until the operation succeeds.
 * Every failure must leave the table exactly as it was (same version)
 * and free whatever half-built nodes it made (valgrind/ASan see leaks).
 */
static void
test_out_of_memory(void **state)
{
	cluster__table t;
	model m = { NULL, 0 };
	unsigned op, failures = 0;

	(void) state;
	memset(&t, 0, sizeof(t));
	rng_state = 4242;
	for(op = 0; op < 300; op++)
	{
		cluster__member rec = random_rec(150);
		int del = op > 150 && rnd(3) == 0;
		long k;

		for(k = 0;; k++)
		{
			cluster__node *before = t.root;
			int r, ch, mch;

			fail_after = k;
			r = del ? cluster__table_del(&t, rec.id) : cluster__table_put(&t, &rec, op, &ch);
			fail_after = -1;
			if(r == (del ? -1 : ENOMEM))
			{
				assert_ptr_equal(t.root, before);
				check_against(&t, &m);
				failures++;
				continue;
			}
			if(del)
			{
				assert_int_equal(r, model_del(&m, rec.id));
			}
			else
			{
				assert_int_equal(r, model_put(&m, &rec, op, &mch));
				assert_int_equal(ch, mch);
			}
			check_against(&t, &m);
			break;
		}
	}
	assert_true(failures > 300);
	cluster__table_free(&t);
	free(m.r);
}

/* ------------------------------------------------------------------ */
/* versions released by another thread                                  */
/* ------------------------------------------------------------------ */

#define HANDOFF 8

typedef struct handoff handoff;
struct handoff
{
	pthread_mutex_t mu;
	pthread_cond_t cv;
	cluster__table slot[HANDOFF];
	size_t head, tail;
	int done;
	size_t seen;
};

/* The reader: walks each version it gets and releases it, while the
 * writer goes on changing (and releasing) versions sharing its nodes. */
static void *
reader(void *arg)
{
	handoff *h = arg;

	for(;;)
	{
		cluster__table t;
		cluster__table_iter it;
		size_t n = 0;

		pthread_mutex_lock(&h->mu);
		while(h->head == h->tail && !h->done)
		{
			pthread_cond_wait(&h->cv, &h->mu);
		}
		if(h->head == h->tail)
		{
			pthread_mutex_unlock(&h->mu);
			return NULL;
		}
		t = h->slot[h->tail++ % HANDOFF];
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		cluster__table_iter_init(&it, &t);
		while(cluster__table_iter_next(&it))
		{
			n++;
		}
		if(n != cluster__table_count(&t))
		{
			abort();
		}
		cluster__table_free(&t);
		h->seen++;
	}
}

static void
test_release_from_another_thread(void **state)
{
	handoff h;
	pthread_t th;
	cluster__table t;
	unsigned s;

	(void) state;
	memset(&h, 0, sizeof(h));
	memset(&t, 0, sizeof(t));
	pthread_mutex_init(&h.mu, NULL);
	pthread_cond_init(&h.cv, NULL);
	assert_int_equal(pthread_create(&th, NULL, reader, &h), 0);
	rng_state = 77;
	for(s = 0; s < 2000; s++)
	{
		cluster__member rec = random_rec(64);

		if(rnd(3) == 0)
		{
			cluster__table_del(&t, rec.id);
		}
		else
		{
			assert_int_equal(cluster__table_put(&t, &rec, s, NULL), 0);
		}
		pthread_mutex_lock(&h.mu);
		while(h.head - h.tail == HANDOFF)
		{
			pthread_cond_wait(&h.cv, &h.mu);
		}
		cluster__table_share(&h.slot[h.head++ % HANDOFF], &t);
		pthread_cond_broadcast(&h.cv);
		pthread_mutex_unlock(&h.mu);
	}
	pthread_mutex_lock(&h.mu);
	h.done = 1;
	pthread_cond_broadcast(&h.cv);
	pthread_mutex_unlock(&h.mu);
	pthread_join(th, NULL);
	assert_int_equal(h.seen, 2000);
	assert_int_equal(cluster__table_check(&t), 0);
	cluster__table_free(&t);
	pthread_cond_destroy(&h.cv);
	pthread_mutex_destroy(&h.mu);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_small_pool),
		cmocka_unit_test(test_random_large_pool),
		cmocka_unit_test(test_put_semantics),
		cmocka_unit_test(test_invalid_records),
		cmocka_unit_test(test_status_table),
		cmocka_unit_test(test_joined_with_status),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_every_order),
		cmocka_unit_test(test_out_of_memory),
		cmocka_unit_test(test_release_from_another_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
