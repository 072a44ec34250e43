/* SPDX-License-Identifier: Apache-2.0 */
/* Views over member-table versions: exhaustive small cases, statuses kept
 * apart from membership, snapshots that later changes leave alone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"

static cluster__member
mk(const char *id, int workers, int passive)
{
	cluster__member m;

	memset(&m, 0, sizeof(m));
	snprintf(m.id, sizeof(m.id), "%s", id);
	m.workers = workers;
	m.passive = passive;
	return m;
}

/* A table of n records (any order). */
static cluster__table
table_of(const cluster__member *in, size_t n)
{
	cluster__table t;
	size_t i;

	memset(&t, 0, sizeof(t));
	for(i = 0; i < n; i++)
	{
		assert_int_equal(cluster__table_put(&t, &in[i], 1, NULL), 0);
	}
	return t;
}

/* The README's example: node1 x2, node2 x1, node3 x4 in any order. */
static void
test_readme_example(void **state)
{
	cluster__member in[3] = { mk("node3", 4, 0), mk("node1", 2, 0), mk("node2", 1, 0) };
	const char *ids[3] = { "node1", "node2", "node3" };
	int bases[3] = { 0, 2, 3 };
	cluster__table t = table_of(in, 3);
	cluster__view v;
	cluster__view_entry e;
	int i;

	(void) state;
	for(i = 0; i < 3; i++)
	{
		cluster__view_make(&v, &t, NULL, ids[i], 42);
		assert_int_equal(v.count, 3);
		assert_int_equal(v.total, 7);
		assert_int_equal(v.base, bases[i]);
		assert_int_equal(v.self, i);
		assert_int_equal(v.revision, 42);
		assert_int_equal(cluster__view_at(&v, (size_t) i, &e), 0);
		assert_string_equal(e.node->id, ids[i]);
		assert_int_equal(e.base, bases[i]);
		assert_int_equal(e.self, 1);
		assert_int_equal(e.pos, i);
		assert_int_equal(e.has_status, 0);
		assert_string_equal(e.address, "");
		cluster__view_free(&v);
	}
	cluster__table_free(&t);
}

static void
test_empty(void **state)
{
	cluster__table t;
	cluster__view v;
	cluster__view_iter it;
	cluster__view_entry e;

	(void) state;
	memset(&t, 0, sizeof(t));
	cluster__view_make(&v, &t, NULL, "x", 0);
	assert_int_equal(v.count, 0);
	assert_int_equal(v.total, 0);
	assert_int_equal(v.base, -1);
	assert_int_equal(v.self, -1);
	assert_int_equal(cluster__view_at(&v, 0, &e), -1);
	cluster__view_iter_init(&it, &v);
	assert_int_equal(cluster__view_next(&it, &e), 0);
	cluster__view_free(&v);
	/* a freed view is an empty one */
	assert_int_equal(v.self, -1);
	assert_int_equal(v.base, -1);
	assert_null(v.members.root);
	cluster__view_init(&v);
	cluster__view_free(&v);
}

static void
test_self_absent(void **state)
{
	cluster__member in[2] = { mk("a", 1, 0), mk("b", 3, 0) };
	cluster__table t = table_of(in, 2);
	cluster__view v;

	(void) state;
	cluster__view_make(&v, &t, NULL, "zz", 0);
	assert_int_equal(v.base, -1);
	assert_int_equal(v.self, -1);
	assert_int_equal(v.total, 4);
	cluster__view_free(&v);
	/* no self id at all */
	cluster__view_make(&v, &t, NULL, NULL, 0);
	assert_int_equal(v.base, -1);
	assert_int_equal(v.self, -1);
	assert_int_equal(v.count, 2);
	cluster__view_free(&v);
	cluster__table_free(&t);
}

static void
test_passive_not_counted(void **state)
{
	cluster__member in[3] = { mk("a", 2, 0), mk("b", 5, 1), mk("c", 3, 0) };
	cluster__table t = table_of(in, 3);
	cluster__view v;
	cluster__view_entry e;

	(void) state;
	cluster__view_make(&v, &t, NULL, "b", 0);
	assert_int_equal(v.total, 5);
	assert_int_equal(v.base, -1);
	assert_int_equal(v.self, 1);
	assert_int_equal(cluster__view_at(&v, 1, &e), 0);
	assert_int_equal(e.base, -1);
	assert_int_equal(cluster__view_at(&v, 2, &e), 0);
	assert_int_equal(e.base, 2);
	cluster__view_free(&v);
	cluster__view_make(&v, &t, NULL, "c", 0);
	assert_int_equal(v.base, 2);
	cluster__view_free(&v);
	cluster__table_free(&t);
}

/* Byte order, not locale order: upper case sorts before lower case. */
static void
test_byte_order(void **state)
{
	cluster__member in[4] = { mk("b", 1, 0), mk("B", 1, 0), mk("a-1", 1, 0), mk("a.1", 1, 0) };
	const char *order[4] = { "B", "a-1", "a.1", "b" };
	cluster__table t = table_of(in, 4);
	cluster__view v;
	cluster__view_iter it;
	cluster__view_entry e;
	size_t i = 0;

	(void) state;
	cluster__view_make(&v, &t, NULL, "b", 0);
	cluster__view_iter_init(&it, &v);
	while(cluster__view_next(&it, &e))
	{
		assert_string_equal(e.node->id, order[i]);
		assert_int_equal(e.pos, i);
		assert_int_equal(e.base, (int) i);
		i++;
	}
	assert_int_equal(i, 4);
	assert_int_equal(v.base, 3);
	assert_int_equal(cluster__table_rank(&v.members, "a.1", NULL), 2);
	assert_int_equal(cluster__table_rank(&v.members, "zzz", NULL), -1);
	assert_int_equal(cluster__table_rank(&v.members, "A", NULL), -1);
	cluster__view_free(&v);
	cluster__table_free(&t);
}

/*
 * Exhaustive: every subset of 5 ids, every worker assignment from {1,2,3},
 * every passive flag pattern, put in reversed order: the view must equal
 * the prefix-sum definition computed independently here, walked and
 * looked up by position alike.
 */
static void
test_exhaustive_small(void **state)
{
	const char *ids[5] = { "e", "d", "c", "b", "a" };
	unsigned mask, wcode, pmask;
	size_t cases = 0;

	(void) state;
	for(mask = 0; mask < 32; mask++)
	{
		unsigned nsel = (unsigned) __builtin_popcount(mask);
		unsigned wmax = 1;
		unsigned k;

		for(k = 0; k < nsel; k++)
		{
			wmax *= 3;
		}
		for(wcode = 0; wcode < wmax; wcode++)
		{
			for(pmask = 0; pmask < (1u << nsel); pmask++)
			{
				cluster__member in[5];
				int expect_base[5];
				size_t n = 0;
				unsigned w = wcode, bit;
				int sum = 0, j;
				cluster__table t;
				cluster__view v;
				cluster__view_iter it;
				cluster__view_entry e, at;

				for(bit = 0; bit < 5; bit++)
				{
					if(mask & (1u << bit))
					{
						in[n] = mk(ids[bit], (int) (w % 3) + 1, (pmask >> n) & 1);
						w /= 3;
						n++;
					}
				}
				/* expected: ascending id order is reverse of ids[] order */
				for(j = (int) n - 1; j >= 0; j--)
				{
					if(in[j].passive)
					{
						expect_base[j] = -1;
					}
					else
					{
						expect_base[j] = sum;
						sum += in[j].workers;
					}
				}
				t = table_of(in, n);
				cluster__view_make(&v, &t, NULL, n ? in[0].id : NULL, 7);
				cluster__table_free(&t);
				assert_int_equal(v.count, n);
				assert_int_equal(v.total, sum);
				cluster__view_iter_init(&it, &v);
				for(j = (int) n - 1; j >= 0; j--)
				{
					assert_int_equal(cluster__view_next(&it, &e), 1);
					assert_string_equal(e.node->id, in[j].id);
					assert_int_equal(e.base, expect_base[j]);
					assert_int_equal(cluster__view_at(&v, e.pos, &at), 0);
					assert_ptr_equal(at.node, e.node);
					assert_int_equal(at.base, e.base);
				}
				assert_int_equal(cluster__view_next(&it, &e), 0);
				if(n)
				{
					assert_int_equal(v.base, expect_base[0]);
					assert_int_equal(v.self, (long) n - 1);
				}
				cluster__view_free(&v);
				cases++;
			}
		}
	}
	assert_true(cases > 1000);
}

/*
 * Statuses kept apart: a member's status is the statuses table's record
 * when there is one, else its own; statuses of non-members are ignored;
 * revision and receipt time are the later of the two records'.
 */
static void
test_statuses(void **state)
{
	cluster__member in[4] = { mk("a", 1, 0), mk("b", 2, 0), mk("c", 3, 0), mk("e", 4, 0) };
	cluster__member st;
	cluster__table t, s;
	cluster__view v;
	cluster__view_iter it;
	cluster__view_entry e, at;
	size_t i = 0;

	(void) state;
	in[1].has_status = 1; /* b: own status, overridden below */
	in[1].load = 1;
	in[2].has_status = 1; /* c: own status only */
	in[2].load = 2;
	snprintf(in[2].address, sizeof(in[2].address), "ws://c");
	in[3].mod_revision = 50;
	t = table_of(in, 4);
	memset(&s, 0, sizeof(s));
	st = mk("b", 1, 0);
	st.has_status = 1;
	st.load = 10;
	st.mod_revision = 20;
	snprintf(st.address, sizeof(st.address), "ws://b");
	assert_int_equal(cluster__table_put_status(&s, &st, 500, NULL), 0);
	st = mk("d", 1, 0); /* not a member */
	st.has_status = 1;
	st.load = 11;
	assert_int_equal(cluster__table_put_status(&s, &st, 500, NULL), 0);
	st = mk("e", 1, 0);
	st.has_status = 1;
	st.load = 12;
	st.mod_revision = 7;
	assert_int_equal(cluster__table_put_status(&s, &st, 0, NULL), 0);
	st = mk("zz", 1, 0); /* not a member, after the last one */
	st.has_status = 1;
	assert_int_equal(cluster__table_put_status(&s, &st, 500, NULL), 0);
	cluster__view_make(&v, &t, &s, "c", 9);
	cluster__table_free(&s);
	assert_int_equal(v.count, 4);
	assert_int_equal(v.total, 10);
	assert_int_equal(v.base, 3);
	cluster__view_iter_init(&it, &v);
	while(cluster__view_next(&it, &e))
	{
		assert_int_equal(cluster__view_at(&v, e.pos, &at), 0);
		assert_int_equal(at.has_status, e.has_status);
		assert_ptr_equal(at.address, e.address);
		assert_true(at.load == e.load);
		assert_true(at.mod_revision == e.mod_revision);
		assert_true(at.received_ms == e.received_ms);
		switch(i++)
		{
		case 0:
			assert_int_equal(e.has_status, 0);
			break;
		case 1:
			assert_int_equal(e.has_status, 1);
			assert_true(e.load == 10);
			assert_string_equal(e.address, "ws://b");
			assert_true(e.mod_revision == 20);
			assert_true(e.received_ms == 500);
			break;
		case 2:
			assert_true(e.load == 2);
			assert_string_equal(e.address, "ws://c");
			assert_true(e.received_ms == 1);
			break;
		default:
			assert_string_equal(e.node->id, "e");
			assert_true(e.load == 12);
			assert_true(e.mod_revision == 50);
			assert_true(e.received_ms == 1);
			break;
		}
	}
	assert_int_equal(i, 4);
	cluster__view_free(&v);
	cluster__table_free(&t);
}

/* A view is a snapshot: changes to the table after it was made (or
 * copied) do not show in it, and copies share rather than copy. */
static void
test_snapshot(void **state)
{
	cluster__member in[3] = { mk("a", 1, 0), mk("b", 2, 0), mk("c", 3, 0) };
	cluster__member rec;
	cluster__table t = table_of(in, 3);
	cluster__view v, c;
	cluster__view_entry e;

	(void) state;
	cluster__view_make(&v, &t, NULL, "c", 1);
	cluster__view_copy(&c, &v);
	assert_ptr_equal(c.members.root, v.members.root);
	assert_int_equal(cluster__table_del(&t, "a"), 1);
	rec = mk("b", 7, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 2, NULL), 0);
	rec = mk("0", 4, 0);
	assert_int_equal(cluster__table_put(&t, &rec, 2, NULL), 0);
	cluster__table_free(&t);
	assert_int_equal(v.count, 3);
	assert_int_equal(v.base, 3);
	assert_int_equal(cluster__view_at(&v, 1, &e), 0);
	assert_int_equal(e.node->workers, 2);
	cluster__view_free(&v);
	assert_int_equal(cluster__view_at(&c, 0, &e), 0);
	assert_string_equal(e.node->id, "a");
	assert_int_equal(cluster__table_check(&c.members), 0);
	cluster__view_free(&c);
}

/* The static engine's view: the base offset moves every counted base. */
static void
test_offset(void **state)
{
	cluster__member in[1] = { mk("s", 3, 0) };
	cluster__table t = table_of(in, 1);
	cluster__view v;
	cluster__view_entry e;

	(void) state;
	cluster__view_make(&v, &t, NULL, "s", 0);
	v.offset = 5;
	v.base = 5;
	assert_int_equal(cluster__view_at(&v, 0, &e), 0);
	assert_int_equal(e.base, 5);
	cluster__view_free(&v);
	cluster__table_free(&t);
}

/* The one name rule, shared by the setters and the engines' key parsing. */
static void
test_name_rule(void **state)
{
	char big[CLUSTER_NAME_MAX + 1];
	size_t bad = 99;

	(void) state;
	memset(big, 'a', sizeof(big));
	assert_int_equal(cluster__name_check("node-1_A.b", 10, NULL), CLUSTER__NAME_OK);
	assert_int_equal(cluster__name_check("...", 3, NULL), CLUSTER__NAME_OK);
	assert_int_equal(cluster__name_check(big, CLUSTER_NAME_MAX, NULL), CLUSTER__NAME_OK);
	assert_int_equal(cluster__name_check(big, CLUSTER_NAME_MAX + 1, NULL), CLUSTER__NAME_LENGTH);
	assert_int_equal(cluster__name_check("", 0, NULL), CLUSTER__NAME_LENGTH);
	assert_int_equal(cluster__name_check(".", 1, NULL), CLUSTER__NAME_DOTS);
	assert_int_equal(cluster__name_check("..", 2, NULL), CLUSTER__NAME_DOTS);
	assert_int_equal(cluster__name_check("ab/c", 4, &bad), CLUSTER__NAME_BYTE);
	assert_int_equal(bad, 2);
	assert_int_equal(cluster__name_check("x\xc3\xa9", 3, &bad), CLUSTER__NAME_BYTE);
	assert_int_equal(bad, 1);
	/* only len bytes count: a NUL inside is a bad byte, not an end */
	assert_int_equal(cluster__name_check("a\0b", 3, &bad), CLUSTER__NAME_BYTE);
	assert_int_equal(bad, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readme_example),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_self_absent),
		cmocka_unit_test(test_passive_not_counted),
		cmocka_unit_test(test_byte_order),
		cmocka_unit_test(test_exhaustive_small),
		cmocka_unit_test(test_statuses),
		cmocka_unit_test(test_snapshot),
		cmocka_unit_test(test_offset),
		cmocka_unit_test(test_name_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
