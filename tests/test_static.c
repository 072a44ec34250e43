/* SPDX-License-Identifier: Apache-2.0 */
/* Static engine: the original's rules, callbacks and the README example. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	struct
	{
		const char *id;
		int workers, index;
	} m[3] = { { "node1", 2, 0 }, { "node2", 1, 2 }, { "node3", 4, 3 } };
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

/* --- callbacks and the control lock ----------------------------------- */

typedef struct setter_probe setter_probe;
struct setter_probe
{
	CLUSTER *c;
	pthread_mutex_t m;
	pthread_cond_t cv;
	int done;
	int result;
};

static void *
probe_main(void *arg)
{
	setter_probe *p = arg;
	/* a control call from another thread: it needs the control lock */
	int r = cluster_set_workers(p->c, cluster_workers(p->c));

	pthread_mutex_lock(&p->m);
	p->done = 1;
	p->result = r;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->m);
	return NULL;
}

static setter_probe probe;
static int probe_ok, probe_runs;

/* From inside the callback, let another thread make a control call and
 * wait (bounded) for it: if the library held its control lock around the
 * callback, that call could not finish until the callback returned. */
static int
probing_balancer(CLUSTER *cluster, CLUSTERSTATE *state)
{
	struct timespec ts;
	pthread_t t;

	(void) state;
	probe.c = cluster;
	probe.done = 0;
	assert_int_equal(pthread_create(&t, NULL, probe_main, &probe), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 1 + tu_scaled_ms(1000) / 1000;
	pthread_mutex_lock(&probe.m);
	while(!probe.done)
	{
		if(pthread_cond_timedwait(&probe.cv, &probe.m, &ts))
		{
			break;
		}
	}
	probe_ok += probe.done && probe.result == 0;
	probe_runs++;
	pthread_mutex_unlock(&probe.m);
	/* not joined: with the old code it is still blocked on the lock */
	pthread_detach(t);
	return 0;
}

static void
test_callbacks_run_without_the_control_lock(void **state)
{
	CLUSTER *c = static_member("a", 1, 0, 1);

	(void) state;
	pthread_mutex_init(&probe.m, NULL);
	pthread_cond_init(&probe.cv, NULL);
	probe_ok = probe_runs = 0;
	cluster_set_balancer(c, probing_balancer);
	/* the first callback runs inside cluster_join, the last inside leave */
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(probe_runs, 1);
	assert_int_equal(probe_ok, 1);
	/* let a probe that was blocked (old code) finish before leaving */
	pthread_mutex_lock(&probe.m);
	while(!probe.done)
	{
		pthread_cond_wait(&probe.cv, &probe.m);
	}
	pthread_mutex_unlock(&probe.m);
	assert_int_equal(cluster_leave(c), 0);
	assert_int_equal(probe_runs, 2);
	assert_int_equal(probe_ok, 2);
	pthread_mutex_lock(&probe.m);
	while(!probe.done)
	{
		pthread_cond_wait(&probe.cv, &probe.m);
	}
	pthread_mutex_unlock(&probe.m);
	cluster_destroy(c);
	pthread_mutex_destroy(&probe.m);
	pthread_cond_destroy(&probe.cv);
}

static CLUSTER *other_handle;
static int other_result, other_errno;

static int
calls_other_handle(CLUSTER *cluster, CLUSTERSTATE *state)
{
	(void) cluster;
	if(state->index >= 0)
	{
		other_result = cluster_set_workers(other_handle, 3);
		other_errno = errno;
	}
	return 0;
}

/* The EDEADLK guard is per handle: a callback of A may configure B. */
static void
test_callback_may_configure_another_handle(void **state)
{
	CLUSTER *a = static_member("a", 1, 0, 1);
	CLUSTER *b = static_member("b", 1, 0, 1);

	(void) state;
	other_handle = b;
	other_result = -2;
	cluster_set_balancer(a, calls_other_handle);
	assert_int_equal(cluster_join(a), 0);
	if(other_result)
	{
		fail_msg("cluster_set_workers(B) from A's callback returned %d (%s)", other_result, strerror(other_errno));
	}
	assert_int_equal(cluster_workers(b), 3);
	cluster_destroy(a);
	cluster_destroy(b);
}

/* --- string getters against setters on another thread ----------------- */

static int churn_stop; /* atomic */

static void *
env_churn(void *arg)
{
	CLUSTER *c = arg;
	int i = 0;

	while(!__atomic_load_n(&churn_stop, __ATOMIC_ACQUIRE))
	{
		cluster_set_env(c, (i++ & 1) ? "envaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" : "envbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
		cluster_set_partition(c, (i & 2) ? "partaaaaaaaaaaaaaaaaaaaaaaaaaa" : NULL);
	}
	return NULL;
}

/* The header promises getters are safe from any thread: a string a getter
 * returned must stay readable (and hold a value that was set) while a
 * setter on another thread replaces it. Under ASan the old code reads
 * freed memory here. */
static void
test_string_getters_survive_setters(void **state)
{
	CLUSTER *c = static_member("a", 1, 0, 1);
	pthread_t t;
	int i, bad = 0;

	(void) state;
	__atomic_store_n(&churn_stop, 0, __ATOMIC_RELEASE);
	assert_int_equal(pthread_create(&t, NULL, env_churn, c), 0);
	for(i = 0; i < 200000; i++)
	{
		const char *e = cluster_env(c);
		const char *p = cluster_partition(c);
		size_t n = strlen(e);

		/* one of the values set (or the default, before the first set) */
		if(strcmp(e, "production") && (strncmp(e, "env", 3) || (n != 36 && n != 40)))
		{
			bad++;
		}
		if(p && strncmp(p, "part", 4))
		{
			bad++;
		}
		if(strcmp(cluster_instance(c), "a"))
		{
			bad++;
		}
	}
	__atomic_store_n(&churn_stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	assert_int_equal(bad, 0);
	cluster_destroy(c);
}

/* Leaving a static cluster leaves errno 0: nothing was left behind in a
 * registry (the etcd engines set the cause when they could not tell it). */
static void
test_leave_errno(void **state)
{
	CLUSTER *c;

	(void) state;
	c = tu_cluster("quiet");
	assert_non_null(c);
	errno = EINVAL;
	assert_int_equal(cluster_leave(c), 0);
	assert_int_equal(errno, 0);
	assert_int_equal(cluster_join(c), 0);
	errno = EINVAL;
	assert_int_equal(cluster_leave(c), 0);
	assert_int_equal(errno, 0);
	assert_int_equal(cluster_destroy(c), 0);
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
		cmocka_unit_test(test_callbacks_run_without_the_control_lock),
		cmocka_unit_test(test_callback_may_configure_another_handle),
		cmocka_unit_test(test_string_getters_survive_setters),
		cmocka_unit_test(test_leave_errno),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
