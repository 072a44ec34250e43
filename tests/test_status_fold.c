/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Members with their separate statuses folded into one node per member
 * (status-fold.h) against the two raw tables the etcd v3 engine used to
 * keep: after every step of randomized sequences (member and status
 * writes and deletions, whole prefixes read again) the view of the folded
 * pair equals the view of the raw pair, member by member. Allocation
 * failures at every point leave the pair as it was. And the one
 * documented difference: a member record's own status hidden by a
 * separate one is not kept.
 *
 * Linked with -Wl,--wrap=malloc: malloc fails on demand (fail_after).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status-fold.h"
#include "view.h"
#include "failmalloc.h"
#include "testrng.h"

static unsigned
rnd(unsigned n)
{
	return (unsigned) (rng64() >> 33) % n;
}

/* The two ways of holding the same registry. */
typedef struct pair pair;
struct pair
{
	cluster__table raw_members, raw_statuses; /* as before: two tables */
	cluster__table members, orphans;          /* folded */
	int64_t rev;
};

#define POOL 12

static void
id_of(unsigned k, char *id)
{
	snprintf(id, CLUSTER_NAME_MAX + 1, "m%02u", k);
}

/* Ids 0..2 are written by an older writer: their member records carry a
 * status of their own and they never have a separate one. */
static int
legacy(unsigned k)
{
	return k < 3;
}

static cluster__member
member_rec(pair *p, unsigned k)
{
	cluster__member m;

	memset(&m, 0, sizeof(m));
	id_of(k, m.id);
	m.workers = 1 + (int) rnd(3);
	m.mod_revision = ++p->rev;
	m.create_revision = rnd(2) ? p->rev : 1 + k;
	if(legacy(k) && rnd(2))
	{
		m.has_status = 1;
		m.load = rnd(5);
		m.capacity = rnd(2) ? -1 : 10;
		snprintf(m.address, sizeof(m.address), "own-%u", rnd(3));
	}
	return m;
}

static cluster__member
status_rec(pair *p, unsigned k)
{
	cluster__member s;

	memset(&s, 0, sizeof(s));
	id_of(k, s.id);
	s.has_status = 1;
	s.load = rnd(5);
	s.capacity = rnd(3) ? -1 : (long long) rnd(20);
	snprintf(s.address, sizeof(s.address), "ws://h%u:%u", k, rnd(2));
	s.has_up = (int) rnd(2);
	s.joined_ms = s.has_up ? 1000 + rnd(50) : 0;
	s.mod_revision = ++p->rev;
	return s;
}

/* Both views, entry by entry (revisions and receipt times aside: the
 * folded node keeps the later revision of a deleted status). */
static void
check_same(const pair *p)
{
	cluster__view a, b;
	cluster__view_iter ia, ib;
	cluster__view_entry ea, eb;
	cluster__table_iter it;
	const cluster__node *n;

	assert_int_equal(cluster__table_check(&p->members), 0);
	assert_int_equal(cluster__table_check(&p->orphans), 0);
	cluster__view_make(&a, &p->raw_members, &p->raw_statuses, "m05", 7);
	cluster__view_make(&b, &p->members, &p->orphans, "m05", 7);
	assert_int_equal(a.count, b.count);
	assert_int_equal(a.self, b.self);
	assert_int_equal(a.base, b.base);
	assert_int_equal(a.total, b.total);
	cluster__view_iter_init(&ia, &a);
	cluster__view_iter_init(&ib, &b);
	while(cluster__view_next(&ia, &ea))
	{
		assert_int_equal(cluster__view_next(&ib, &eb), 1);
		assert_string_equal(ea.node->id, eb.node->id);
		assert_int_equal(ea.node->workers, eb.node->workers);
		assert_int_equal(ea.node->passive, eb.node->passive);
		assert_int_equal(ea.node->create_revision, eb.node->create_revision);
		assert_int_equal(ea.has_status, eb.has_status);
		assert_string_equal(ea.address, eb.address);
		assert_int_equal(ea.load, eb.load);
		assert_int_equal(ea.capacity, eb.capacity);
		assert_int_equal(ea.has_joined, eb.has_joined);
		assert_int_equal(ea.joined_ms, eb.joined_ms);
		assert_int_equal(ea.pos, eb.pos);
		assert_int_equal(ea.base, eb.base);
		assert_true(eb.mod_revision >= ea.mod_revision);
	}
	assert_int_equal(cluster__view_next(&ib, &eb), 0);
	cluster__view_free(&a);
	cluster__view_free(&b);
	/* an orphan is never a member */
	cluster__table_iter_init(&it, &p->orphans);
	while((n = cluster__table_iter_next(&it)))
	{
		assert_null(cluster__table_find(&p->members, n->id));
		assert_non_null(cluster__table_find(&p->raw_statuses, n->id));
	}
}

/* One random step on both sides. With fail set, the folded side runs
 * with malloc failing after fail calls: on error it must be unchanged,
 * and the raw side is then not changed either. Returns the folded
 * side's result. */
static int
step(pair *p, long fail)
{
	unsigned k = rnd(POOL), op = rnd(12);
	char id[CLUSTER_NAME_MAX + 1];
	cluster__member rec;
	cluster__table raw, before_m, before_o;
	int r = 0, rr = 0, i;

	id_of(k, id);
	memset(&raw, 0, sizeof(raw));
	if(op >= 10)
	{
		/* a whole prefix read again: a random subset, fresh records */
		for(i = 0; i < POOL; i++)
		{
			if(rnd(3))
			{
				if(op == 10)
				{
					rec = member_rec(p, (unsigned) i);
					assert_int_equal(cluster__table_put(&raw, &rec, 5, NULL), 0);
				}
				else if(!legacy((unsigned) i))
				{
					rec = status_rec(p, (unsigned) i);
					assert_int_equal(cluster__table_put_status(&raw, &rec, 5, NULL), 0);
				}
			}
		}
	}
	else if(op < 4)
	{
		rec = member_rec(p, k);
	}
	else if(op < 8)
	{
		if(legacy(k))
		{
			cluster__table_free(&raw);
			return 0;
		}
		rec = status_rec(p, k);
	}
	cluster__table_share(&before_m, &p->members);
	cluster__table_share(&before_o, &p->orphans);
	fail_after = fail;
	switch(op)
	{
	case 0:
	case 1:
	case 2:
	case 3:
		r = cluster__fold_member_put(&p->members, &p->orphans, &rec, 9);
		break;
	case 4:
	case 5:
	case 6:
	case 7:
		r = cluster__fold_status_put(&p->members, &p->orphans, &rec, 9);
		break;
	case 8:
		r = cluster__fold_member_del(&p->members, &p->orphans, id);
		break;
	case 9:
		r = cluster__fold_status_del(&p->members, &p->orphans, id, 9);
		break;
	case 10:
		r = cluster__fold_prefixes(&p->members, &p->orphans, &raw, NULL, 9);
		break;
	default:
		r = cluster__fold_prefixes(&p->members, &p->orphans, NULL, &raw, 9);
		break;
	}
	fail_after = -1;
	if(r)
	{
		assert_int_equal(r, ENOMEM);
		assert_ptr_equal(p->members.root, before_m.root);
		assert_ptr_equal(p->orphans.root, before_o.root);
	}
	else
	{
		switch(op)
		{
		case 0:
		case 1:
		case 2:
		case 3:
			rr = cluster__table_put(&p->raw_members, &rec, 9, NULL);
			break;
		case 4:
		case 5:
		case 6:
		case 7:
			rr = cluster__table_put_status(&p->raw_statuses, &rec, 9, NULL);
			break;
		case 8:
			rr = cluster__table_del(&p->raw_members, id) < 0;
			break;
		case 9:
			rr = cluster__table_del(&p->raw_statuses, id) < 0;
			break;
		case 10:
			cluster__table_free(&p->raw_members);
			cluster__table_share(&p->raw_members, &raw);
			break;
		default:
			cluster__table_free(&p->raw_statuses);
			cluster__table_share(&p->raw_statuses, &raw);
			break;
		}
		assert_int_equal(rr, 0);
	}
	cluster__table_free(&before_m);
	cluster__table_free(&before_o);
	cluster__table_free(&raw);
	return r;
}

static void
pair_free(pair *p)
{
	cluster__table_free(&p->raw_members);
	cluster__table_free(&p->raw_statuses);
	cluster__table_free(&p->members);
	cluster__table_free(&p->orphans);
}

/* Random sequences, compared after every step. */
static void
test_random_same_view(void **state)
{
	uint64_t seed;

	(void) state;
	for(seed = 1; seed <= 200; seed++)
	{
		pair p;
		int s;

		memset(&p, 0, sizeof(p));
		rng_state = seed * 0x9E3779B97F4A7C15ULL;
		for(s = 0; s < 300; s++)
		{
			assert_int_equal(step(&p, -1), 0);
			check_same(&p);
		}
		pair_free(&p);
	}
}

/* Every step also tried with malloc failing after 0, 1, 2, ... calls
 * (replayed from the same random state) until it succeeds. */
static void
test_allocation_failures(void **state)
{
	uint64_t seed;

	(void) state;
	for(seed = 1; seed <= 20; seed++)
	{
		pair p;
		int s;

		memset(&p, 0, sizeof(p));
		rng_state = seed * 0xD1B54A32D192ED03ULL;
		for(s = 0; s < 120; s++)
		{
			uint64_t at = rng_state;
			int64_t rev = p.rev;
			long fail;

			for(fail = 0;; fail++)
			{
				rng_state = at;
				p.rev = rev;
				if(!step(&p, fail))
				{
					break;
				}
				check_same(&p);
			}
			check_same(&p);
		}
		pair_free(&p);
	}
}

/* A member's status arrives before its member record, stays when the
 * member record changes, outlives the member key as an orphan and
 * returns with it; one node per member holds it meanwhile. */
static void
test_orphan_round_trip(void **state)
{
	pair p;
	cluster__member m, s;
	const cluster__node *n;
	const char *addr;
	long long load;

	(void) state;
	memset(&p, 0, sizeof(p));
	memset(&s, 0, sizeof(s));
	snprintf(s.id, sizeof(s.id), "a");
	s.has_status = 1;
	s.load = 42;
	s.capacity = -1;
	snprintf(s.address, sizeof(s.address), "ws://a:1");
	s.mod_revision = 5;
	assert_int_equal(cluster__fold_status_put(&p.members, &p.orphans, &s, 100), 0);
	assert_int_equal(cluster__table_count(&p.members), 0);
	assert_int_equal(cluster__table_count(&p.orphans), 1);

	memset(&m, 0, sizeof(m));
	snprintf(m.id, sizeof(m.id), "a");
	m.workers = 2;
	m.mod_revision = 6;
	m.create_revision = 6;
	assert_int_equal(cluster__fold_member_put(&p.members, &p.orphans, &m, 200), 0);
	assert_int_equal(cluster__table_count(&p.orphans), 0);
	n = cluster__table_find(&p.members, "a");
	assert_non_null(n);
	assert_int_equal(cluster__node_status(n, &addr, &load, NULL), 1);
	assert_int_equal(load, 42);
	assert_string_equal(addr, "ws://a:1");
	assert_int_equal(n->status_apart, 1);
	assert_int_equal(n->workers, 2);
	assert_int_equal(n->create_revision, 6);

	/* the member record changes: the status stays, the revision moves */
	m.workers = 3;
	m.mod_revision = 8;
	assert_int_equal(cluster__fold_member_put(&p.members, &p.orphans, &m, 300), 0);
	n = cluster__table_find(&p.members, "a");
	assert_int_equal(cluster__node_status(n, NULL, &load, NULL), 1);
	assert_int_equal(load, 42);
	assert_int_equal(n->mod_revision, 8);
	assert_int_equal(n->received_ms, 300);

	/* an unchanged status written again keeps the receipt time */
	s.mod_revision = 9;
	assert_int_equal(cluster__fold_status_put(&p.members, &p.orphans, &s, 400), 0);
	n = cluster__table_find(&p.members, "a");
	assert_int_equal(n->received_ms, 300);
	assert_int_equal(n->mod_revision, 9);

	/* the member key goes, the status stays as an orphan, and comes back */
	assert_int_equal(cluster__fold_member_del(&p.members, &p.orphans, "a"), 0);
	assert_int_equal(cluster__table_count(&p.members), 0);
	assert_int_equal(cluster__table_count(&p.orphans), 1);
	m.mod_revision = 10;
	m.create_revision = 10;
	assert_int_equal(cluster__fold_member_put(&p.members, &p.orphans, &m, 500), 0);
	n = cluster__table_find(&p.members, "a");
	assert_int_equal(cluster__node_status(n, NULL, &load, NULL), 1);
	assert_int_equal(load, 42);
	assert_int_equal(n->create_revision, 10);

	/* the status key goes */
	assert_int_equal(cluster__fold_status_del(&p.members, &p.orphans, "a", 600), 0);
	n = cluster__table_find(&p.members, "a");
	assert_int_equal(cluster__node_status(n, NULL, NULL, NULL), 0);
	assert_int_equal(n->status_apart, 0);
	assert_int_equal(n->received_ms, 600);
	assert_int_equal(cluster__table_count(&p.orphans), 0);
	pair_free(&p);
}

/* The documented difference: an older writer's own status, hidden by a
 * separate one, is not restored when the separate one is deleted (the
 * raw tables would show it again); its next member write brings it
 * back. */
static void
test_hidden_own_status_not_kept(void **state)
{
	pair p;
	cluster__member m, s;
	const cluster__node *n;
	long long load;

	(void) state;
	memset(&p, 0, sizeof(p));
	memset(&m, 0, sizeof(m));
	snprintf(m.id, sizeof(m.id), "old");
	m.workers = 1;
	m.has_status = 1;
	m.load = 7;
	m.mod_revision = 1;
	assert_int_equal(cluster__fold_member_put(&p.members, &p.orphans, &m, 1), 0);
	s = m;
	s.load = 9;
	s.mod_revision = 2;
	assert_int_equal(cluster__fold_status_put(&p.members, &p.orphans, &s, 2), 0);
	n = cluster__table_find(&p.members, "old");
	assert_int_equal(cluster__node_status(n, NULL, &load, NULL), 1);
	assert_int_equal(load, 9);
	assert_int_equal(cluster__fold_status_del(&p.members, &p.orphans, "old", 3), 0);
	assert_int_equal(cluster__node_status(cluster__table_find(&p.members, "old"), NULL, NULL, NULL), 0);
	m.mod_revision = 4;
	assert_int_equal(cluster__fold_member_put(&p.members, &p.orphans, &m, 4), 0);
	assert_int_equal(cluster__node_status(cluster__table_find(&p.members, "old"), NULL, &load, NULL), 1);
	assert_int_equal(load, 7);
	pair_free(&p);
}

/* A status without has_status is refused and changes nothing. */
static void
test_invalid_status(void **state)
{
	pair p;
	cluster__member s;

	(void) state;
	memset(&p, 0, sizeof(p));
	memset(&s, 0, sizeof(s));
	snprintf(s.id, sizeof(s.id), "x");
	assert_int_equal(cluster__fold_status_put(&p.members, &p.orphans, &s, 1), EINVAL);
	assert_null(p.members.root);
	assert_null(p.orphans.root);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_same_view),
		cmocka_unit_test(test_allocation_failures),
		cmocka_unit_test(test_orphan_round_trip),
		cmocka_unit_test(test_hidden_own_status_not_kept),
		cmocka_unit_test(test_invalid_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
