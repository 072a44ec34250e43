/* SPDX-License-Identifier: Apache-2.0 */
/* Static engine: the original's rules, callbacks and the README example. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static CLUSTER *
static_member(const char *id, int workers, int index, int total)
{
	CLUSTER *c = tu_cluster("cluster-test");

	assert_non_null(c);
	assert_int_equal(cluster_set_instance(c, id), 0);
	assert_int_equal(cluster_set_workers(c, workers), 0);
	if(index)
	{
		assert_int_equal(cluster_static_set_index(c, index), 0);
	}
	if(total)
	{
		assert_int_equal(cluster_static_set_total(c, total), 0);
	}
	return c;
}

/* node1 -n 2 -> 0, node2 -> 2, node3 -n 4 -> 3, total 7 (given -I/-T). */
static void
test_readme_cluster(void **state)
{
	struct { const char *id; int workers, index; } m[3] = { { "node1", 2, 0 }, { "node2", 1, 2 }, { "node3", 4, 3 } };
	int i;

	(void) state;
	for(i = 0; i < 3; i++)
	{
		CLUSTER *c = static_member(m[i].id, m[i].workers, m[i].index, 7);
		CLUSTERSTATE st;

		tu_reset();
		assert_int_equal(cluster_join(c), 0);
		/* the callback ran exactly once, inside cluster_join */
		assert_int_equal(tu_calls, 1);
		assert_int_equal(tu_last.index, m[i].index);
		assert_int_equal(tu_last.workers, m[i].workers);
		assert_int_equal(tu_last.total, 7);
		assert_int_equal(tu_last.passive, 0);
		assert_int_equal(cluster_index(c, 0), m[i].index);
		assert_int_equal(cluster_index(c, m[i].workers - 1), m[i].index + m[i].workers - 1);
		assert_int_equal(cluster_total(c), 7);
		assert_int_equal(cluster_state(c, &st), 0);
		assert_int_equal(st.index, m[i].index);
		assert_int_equal(st.total, 7);
		assert_true(tu_logged("static: successfully joined the cluster"));
		assert_int_equal(cluster_leave(c), 0);
		assert_int_equal(tu_calls, 2);
		assert_int_equal(tu_last.index, -1);
		assert_int_equal(cluster_state(c, &st), 0);
		assert_int_equal(st.index, -1);
		cluster_destroy(c);
	}
}

static void
test_rules(void **state)
{
	CLUSTER *c;

	(void) state;
	/* index must be < total */
	c = static_member("a", 1, 5, 5);
	tu_reset();
	assert_int_equal(cluster_join(c), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("instance index (5) is not less than the total number of workers in the cluster (5)"));
	assert_int_equal(tu_calls, 0);
	assert_int_equal(cluster_total(c), 0);
	cluster_destroy(c);
	/* index + workers must be <= total */
	c = static_member("a", 2, 4, 5);
	tu_reset();
	assert_int_equal(cluster_join(c), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("highest worker index (5) is not less than the total number of workers in the cluster (5)"));
	cluster_destroy(c);
	/* exactly filling the cluster is fine */
	c = static_member("a", 2, 3, 5);
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(cluster_index(c, 1), 4);
	cluster_destroy(c);
	/* total unset -> 1 */
	c = static_member("a", 1, 0, 0);
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(cluster_total(c), 1);
	assert_int_equal(cluster_index(c, 0), 0);
	cluster_destroy(c);
	c = static_member("a", 2, 0, 0);
	assert_int_equal(cluster_join(c), -1);
	assert_int_equal(errno, EINVAL);
	cluster_destroy(c);
}

static void
test_passive(void **state)
{
	CLUSTER *c = static_member("watcher", 1, 0, 7);
	CLUSTERSTATE st;

	(void) state;
	tu_reset();
	assert_int_equal(cluster_join_passive(c), 0);
	assert_int_equal(tu_calls, 1);
	assert_int_equal(tu_last.index, -1);
	assert_int_equal(tu_last.total, 7);
	assert_int_equal(tu_last.passive, 1);
	assert_int_equal(cluster_state(c, &st), 0);
	assert_int_equal(st.passive, 1);
	assert_int_equal(st.index, -1);
	assert_int_equal(cluster_total(c), 7);
	errno = 0;
	assert_int_equal(cluster_index(c, 0), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(cluster_leave(c), 0);
	assert_int_equal(cluster_state(c, &st), 0);
	assert_int_equal(st.passive, 0);
	cluster_destroy(c);
}

/* Changing the worker count while joined re-checks the rules; a refused
 * change keeps the old count and state. */
static void
test_workers_while_joined(void **state)
{
	CLUSTER *c = static_member("a", 2, 2, 6);

	(void) state;
	assert_int_equal(cluster_join(c), 0);
	tu_reset();
	assert_int_equal(cluster_set_workers(c, 4), 0);
	assert_int_equal(cluster_workers(c), 4);
	assert_int_equal(cluster_index(c, 3), 5);
	/* base and total unchanged: no callback */
	assert_int_equal(tu_calls, 0);
	assert_int_equal(cluster_set_workers(c, 5), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_workers(c), 4);
	assert_true(tu_logged("highest worker index (6)"));
	cluster_destroy(c);
}

static void
test_members(void **state)
{
	CLUSTER *c = static_member("solo", 3, 1, 4);
	CLUSTERMEMBER *m;
	size_t n;

	(void) state;
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(cluster_members(c, &m, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(m[0].id, "solo");
	assert_int_equal(m[0].workers, 3);
	assert_int_equal(m[0].base, 1);
	assert_int_equal(m[0].self, 1);
	assert_int_equal(m[0].has_status, 0);
	cluster_members_free(m);
	assert_int_equal(cluster_peers(c, &m, &n), 0);
	assert_int_equal(n, 0);
	assert_null(m);
	cluster_members_free(m);
	cluster_destroy(c);
}

/* destroy while joined leaves first and reports -1 */
static void
test_destroy_joined(void **state)
{
	CLUSTER *c = static_member("a", 1, 0, 1);

	(void) state;
	assert_int_equal(cluster_join(c), 0);
	tu_reset();
	assert_int_equal(cluster_destroy(c), 0);
	assert_int_equal(tu_calls, 1);
	assert_int_equal(tu_last.index, -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_readme_cluster),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_passive),
		cmocka_unit_test(test_workers_while_joined),
		cmocka_unit_test(test_members),
		cmocka_unit_test(test_destroy_joined),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
