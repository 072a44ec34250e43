/* SPDX-License-Identifier: Apache-2.0 */
/* Pure view computation: exhaustive small cases and edge cases. */
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

/* The README's example: node1 x2, node2 x1, node3 x4 in any order. */
static void
test_readme_example(void **state)
{
	cluster__member in[3] = { mk("node3", 4, 0), mk("node1", 2, 0), mk("node2", 1, 0) };
	const char *ids[3] = { "node1", "node2", "node3" };
	int bases[3] = { 0, 2, 3 };
	cluster__view v;
	int i;

	(void) state;
	for(i = 0; i < 3; i++)
	{
		assert_int_equal(cluster__view_compute(&v, in, 3, ids[i], 42), 0);
		assert_int_equal(v.count, 3);
		assert_int_equal(v.total, 7);
		assert_int_equal(v.base, bases[i]);
		assert_int_equal(v.self, i);
		assert_int_equal(v.revision, 42);
		assert_string_equal(v.members[i].id, ids[i]);
		assert_int_equal(v.members[i].base, bases[i]);
		cluster__view_free(&v);
	}
}

static void
test_empty(void **state)
{
	cluster__view v;

	(void) state;
	assert_int_equal(cluster__view_compute(&v, NULL, 0, "x", 0), 0);
	assert_int_equal(v.count, 0);
	assert_null(v.members);
	assert_int_equal(v.total, 0);
	assert_int_equal(v.base, -1);
	assert_int_equal(v.self, -1);
	cluster__view_free(&v);
}

static void
test_self_absent(void **state)
{
	cluster__member in[2] = { mk("a", 1, 0), mk("b", 3, 0) };
	cluster__view v;

	(void) state;
	assert_int_equal(cluster__view_compute(&v, in, 2, "zz", 0), 0);
	assert_int_equal(v.base, -1);
	assert_int_equal(v.self, -1);
	assert_int_equal(v.total, 4);
	cluster__view_free(&v);
	/* no self id at all */
	assert_int_equal(cluster__view_compute(&v, in, 2, NULL, 0), 0);
	assert_int_equal(v.base, -1);
	cluster__view_free(&v);
}

static void
test_duplicates_rejected(void **state)
{
	cluster__member in[3] = { mk("a", 1, 0), mk("b", 1, 0), mk("a", 2, 0) };
	cluster__view v;

	(void) state;
	assert_int_equal(cluster__view_compute(&v, in, 3, "a", 0), EINVAL);
	assert_int_equal(v.count, 0);
	assert_null(v.members);
}

static void
test_bad_records_rejected(void **state)
{
	cluster__member in[2] = { mk("a", 1, 0), mk("", 1, 0) };
	cluster__view v;

	(void) state;
	assert_int_equal(cluster__view_compute(&v, in, 2, "a", 0), EINVAL);
	in[1] = mk("b", 0, 0);
	assert_int_equal(cluster__view_compute(&v, in, 2, "a", 0), EINVAL);
	in[1] = mk("b", -4, 0);
	assert_int_equal(cluster__view_compute(&v, in, 2, "a", 0), EINVAL);
	in[1] = mk("b", CLUSTER_WORKERS_MAX + 1, 0);
	assert_int_equal(cluster__view_compute(&v, in, 2, "a", 0), EINVAL);
	in[1] = mk("b", CLUSTER_WORKERS_MAX, 0);
	assert_int_equal(cluster__view_compute(&v, in, 2, "a", 0), 0);
	assert_int_equal(v.total, CLUSTER_WORKERS_MAX + 1);
	cluster__view_free(&v);
	/* n > 0 with no array */
	assert_int_equal(cluster__view_compute(&v, NULL, 1, "a", 0), EINVAL);
}

/* More than CLUSTER_MEMBERS_MAX records never make a view (E2BIG, checked
 * before anything is copied); the limit also keeps the largest possible
 * total, CLUSTER_MEMBERS_MAX maximal members, below INT_MAX, so the
 * EOVERFLOW check is a second line of defence. */
static void
test_members_limit(void **state)
{
	size_t n = (size_t) INT_MAX / CLUSTER_WORKERS_MAX + 1, i;
	cluster__member *in;
	cluster__view v;

	(void) state;
	assert_true((long long) CLUSTER_MEMBERS_MAX * CLUSTER_WORKERS_MAX <= INT_MAX);
	assert_true(n > CLUSTER_MEMBERS_MAX);
	in = calloc(n, sizeof(*in));
	assert_non_null(in);
	for(i = 0; i < n; i++)
	{
		snprintf(in[i].id, sizeof(in[i].id), "m%06zu", i);
		in[i].workers = CLUSTER_WORKERS_MAX;
	}
	/* enough maximal members to pass INT_MAX: refused for their number */
	assert_int_equal(cluster__view_compute(&v, in, n, NULL, 0), E2BIG);
	assert_null(v.members);
	assert_int_equal(cluster__view_compute(&v, in, CLUSTER_MEMBERS_MAX + 1, NULL, 0), E2BIG);
	assert_null(v.members);
	assert_int_equal(v.count, 0);
	/* exactly the limit: the total fits */
	assert_int_equal(cluster__view_compute(&v, in, CLUSTER_MEMBERS_MAX, "m000001", 0), 0);
	assert_int_equal(v.count, CLUSTER_MEMBERS_MAX);
	assert_int_equal(v.total, (int) (CLUSTER_MEMBERS_MAX * CLUSTER_WORKERS_MAX));
	assert_int_equal(v.base, CLUSTER_WORKERS_MAX);
	cluster__view_free(&v);
	free(in);
}

static void
test_passive_not_counted(void **state)
{
	cluster__member in[3] = { mk("a", 2, 0), mk("b", 5, 1), mk("c", 1, 0) };
	cluster__view v;

	(void) state;
	assert_int_equal(cluster__view_compute(&v, in, 3, "c", 0), 0);
	assert_int_equal(v.total, 3);
	assert_int_equal(v.base, 2);
	assert_int_equal(v.members[1].base, -1);
	cluster__view_free(&v);
	assert_int_equal(cluster__view_compute(&v, in, 3, "b", 0), 0);
	assert_int_equal(v.base, -1);
	assert_int_equal(v.self, 1);
	cluster__view_free(&v);
}

/* Byte order, not locale order: upper case sorts before lower case. */
static void
test_byte_order(void **state)
{
	cluster__member in[4] = { mk("b", 1, 0), mk("B", 1, 0), mk("a-1", 1, 0), mk("a.1", 1, 0) };
	cluster__view v;

	(void) state;
	assert_int_equal(cluster__view_compute(&v, in, 4, "b", 0), 0);
	assert_string_equal(v.members[0].id, "B");
	assert_string_equal(v.members[1].id, "a-1");
	assert_string_equal(v.members[2].id, "a.1");
	assert_string_equal(v.members[3].id, "b");
	assert_int_equal(v.base, 3);
	assert_int_equal(cluster__view_find(&v, "a.1"), 2);
	assert_int_equal(cluster__view_find(&v, "zzz"), -1);
	assert_int_equal(cluster__view_find(&v, "A"), -1);
	cluster__view_free(&v);
}

/*
 * Exhaustive: every subset of 5 ids, every worker assignment from {1,2,3},
 * every passive flag pattern, presented in reversed order: the result must
 * equal the prefix-sum definition computed independently here.
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
				cluster__view v;

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
				assert_int_equal(cluster__view_compute(&v, in, n, n ? in[0].id : NULL, 7), 0);
				assert_int_equal(v.count, n);
				assert_int_equal(v.total, sum);
				for(j = 0; j < (int) n; j++)
				{
					long pos = cluster__view_find(&v, in[j].id);

					assert_true(pos >= 0);
					assert_int_equal(v.members[pos].base, expect_base[j]);
				}
				if(n)
				{
					assert_int_equal(v.base, expect_base[0]);
				}
				cluster__view_free(&v);
				cases++;
			}
		}
	}
	assert_true(cases > 1000);
}

static void
test_diff(void **state)
{
	cluster__member a[3] = { mk("a", 2, 0), mk("b", 1, 0), mk("c", 4, 0) };
	cluster__member b[3] = { mk("a", 2, 0), mk("c", 5, 0), mk("d", 1, 0) };
	cluster__view va, vb, ve, vc;
	cluster__view_diff d;

	(void) state;
	assert_int_equal(cluster__view_compute(&va, a, 3, "c", 1), 0);
	assert_int_equal(cluster__view_compute(&vb, b, 3, "c", 2), 0);
	cluster__view_diff_compute(&va, &vb, &d);
	assert_int_equal(d.added, 1);
	assert_int_equal(d.removed, 1);
	assert_int_equal(d.changed, 1);
	assert_int_equal(d.status_changed, 0);
	assert_int_equal(d.base_changed, 1);  /* 3 -> 2 */
	assert_int_equal(d.total_changed, 1); /* 7 -> 8 */

	/* status-only change moves nobody */
	b[1] = mk("c", 4, 0);
	b[2] = mk("b", 1, 0);
	b[2].has_status = 1;
	b[2].load = 10;
	cluster__view_free(&vb);
	assert_int_equal(cluster__view_compute(&vb, b, 3, "c", 3), 0);
	cluster__view_diff_compute(&va, &vb, &d);
	assert_int_equal(d.added + d.removed + d.changed, 0);
	assert_int_equal(d.status_changed, 1);
	assert_false(d.base_changed);
	assert_false(d.total_changed);

	/* against empty */
	assert_int_equal(cluster__view_compute(&ve, NULL, 0, "c", 0), 0);
	cluster__view_diff_compute(&ve, &va, &d);
	assert_int_equal(d.added, 3);
	assert_int_equal(d.base_changed, 1);
	cluster__view_diff_compute(&va, &ve, &d);
	assert_int_equal(d.removed, 3);

	/* copy is deep and equal */
	assert_int_equal(cluster__view_copy(&vc, &va), 0);
	assert_ptr_not_equal(vc.members, va.members);
	cluster__view_diff_compute(&va, &vc, &d);
	assert_int_equal(d.added + d.removed + d.changed + d.status_changed, 0);
	cluster__view_free(&vc);
	assert_int_equal(cluster__view_copy(&vc, &ve), 0);
	assert_null(vc.members);
	cluster__view_free(&vc);

	cluster__view_free(&va);
	cluster__view_free(&vb);
	cluster__view_free(&ve);
}

/* Unterminated id buffers from a careless engine must not be over-read. */
static void
test_unterminated_id(void **state)
{
	cluster__member in[1];
	cluster__view v;

	(void) state;
	memset(in, 0, sizeof(in));
	memset(in[0].id, 'x', sizeof(in[0].id));
	memset(in[0].address, 'y', sizeof(in[0].address));
	in[0].workers = 1;
	assert_int_equal(cluster__view_compute(&v, in, 1, NULL, 0), 0);
	assert_int_equal(strlen(v.members[0].id), CLUSTER_NAME_MAX);
	assert_int_equal(strlen(v.members[0].address), CLUSTER_ADDRESS_MAX);
	cluster__view_free(&v);
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
		cmocka_unit_test(test_duplicates_rejected),
		cmocka_unit_test(test_bad_records_rejected),
		cmocka_unit_test(test_members_limit),
		cmocka_unit_test(test_passive_not_counted),
		cmocka_unit_test(test_byte_order),
		cmocka_unit_test(test_exhaustive_small),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_unterminated_id),
		cmocka_unit_test(test_name_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
