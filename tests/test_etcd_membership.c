/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Membership against a real etcd (one private etcd for the whole program,
 * a fresh cluster key per test): the 2/1/4 cluster, graceful leave,
 * kill -9 of a member, duplicate ids, cluster_set_workers, a passive
 * observer, the member list, bad registry URIs and dead endpoints.
 * Every member's callback and cluster_state() are checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "etcdharness.h"
#include "etcdtest.h"

/* The stored value is a JSON object carrying the worker count. */
static void
check_registry_value(const char *key, const char *id, int workers)
{
	char *value = NULL;
	cJSON *json, *item;
	int found = 0;

	assert_int_equal(etcdh_get(et_etcd, et_member_key(key, id), &value), 1);
	json = cJSON_ParseWithLength(value, strlen(value));
	if(!cJSON_IsObject(json))
	{
		fail_msg("value of %s is not a JSON object: %s", et_member_key(key, id), value);
	}
	cJSON_ArrayForEach(item, json)
	{
		if(cJSON_IsNumber(item) && item->valueint == workers)
		{
			found = 1;
		}
	}
	if(!found)
	{
		fail_msg("value of %s does not carry %d workers: %s", et_member_key(key, id), workers, value);
	}
	cJSON_Delete(json);
	free(value);
}

struct expect
{
	const char *id;
	int workers;
	int base;
	int passive;
};

/* cluster_members() on m lists exactly the expected rows, sorted by id. */
static void
check_members(et_member *m, const struct expect *e, size_t n)
{
	CLUSTERMEMBER *rows = NULL;
	size_t count = 0, i;

	assert_int_equal(cluster_members(m->c, &rows, &count), 0);
	if(count != n)
	{
		for(i = 0; i < count; i++)
		{
			fprintf(stderr, "# %s sees %s workers %d base %d\n", m->id, rows[i].id, rows[i].workers, rows[i].base);
		}
		cluster_members_free(rows);
		fail_msg("%s sees %zu members, expected %zu", m->id, count, n);
	}
	for(i = 0; i < n; i++)
	{
		assert_string_equal(rows[i].id, e[i].id);
		assert_int_equal(rows[i].workers, e[i].workers);
		assert_int_equal(rows[i].base, e[i].base);
		assert_int_equal(rows[i].passive, e[i].passive);
		assert_int_equal(rows[i].self, strcmp(e[i].id, m->id) == 0);
	}
	cluster_members_free(rows);
}

/* The README cluster: node1 -n 2, node2, node3 -n 4 -> bases 0, 2, 3,
 * total 7; unlike et_join_214(), each join is checked as it happens. */
static void
join_214_in_turn(const char *key, et_member **m, int ttl)
{
	m[0] = et_new(key, "node1", 2, ttl);
	m[1] = et_new(key, "node2", 1, ttl);
	m[2] = et_new(key, "node3", 4, ttl);
	assert_int_equal(et_join(m[0]), 0);
	/* the first callback ran inside cluster_join() */
	assert_true(et_calls(m[0]) >= 1);
	et_check(m[0], 0, 2, 2, 0);
	assert_int_equal(et_join(m[1]), 0);
	et_check(m[1], 2, 1, 3, 0);
	et_check(m[0], 0, 2, 3, 3);
	assert_int_equal(et_join(m[2]), 0);
	et_check(m[2], 3, 4, 7, 0);
	et_check(m[0], 0, 2, 7, 3);
	et_check(m[1], 2, 1, 7, 3);
}

static void
test_cluster_214(void **state)
{
	const char *key = et_key("c214");
	static const struct expect rows[3] = { { "node1", 2, 0, 0 }, { "node2", 1, 2, 0 }, { "node3", 4, 3, 0 } };
	et_member *m[3];
	CLUSTERMEMBER *peers;
	size_t n;
	int i;

	(void) state;
	join_214_in_turn(key, m, 3);
	for(i = 0; i < 3; i++)
	{
		check_members(m[i], rows, 3);
	}
	assert_int_equal(cluster_index(m[2]->c, 3), 6);
	assert_int_equal(cluster_index(m[2]->c, 4), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_peers(m[1]->c, &peers, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(peers[0].id, "node1");
	assert_string_equal(peers[1].id, "node3");
	assert_int_equal(peers[1].base, 3);
	cluster_members_free(peers);
	check_registry_value(key, "node1", 2);
	check_registry_value(key, "node2", 1);
	check_registry_value(key, "node3", 4);
	assert_int_equal(etcdh_count(et_etcd, et_prefix(key)), 3);
	et_free(m, 3);
	/* destroy left the cluster: nothing remains registered */
	assert_int_equal(etcdh_count(et_etcd, et_prefix(key)), 0);
}

static void
test_graceful_leave(void **state)
{
	const char *key = et_key("leave");
	et_member *m[3];
	CLUSTERSTATE st;
	double t0, took;

	(void) state;
	join_214_in_turn(key, m, 3);
	t0 = etcdh_now();
	errno = EINVAL;
	assert_int_equal(cluster_leave(m[0]->c), 0);
	/* errno 0: the registry knows (the lease was revoked) */
	assert_int_equal(errno, 0);
	took = etcdh_now() - t0;
	fprintf(stderr, "# cluster_leave took %.3f s\n", took);
	assert_true(took < et_t(1.0));
	/* the leaver's last callback reports index -1, from inside leave */
	assert_int_equal(et_last(m[0]).index, -1);
	assert_int_equal(cluster_state(m[0]->c, &st), 0);
	assert_int_equal(st.index, -1);
	assert_int_equal(cluster_total(m[0]->c), 0);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_index(m[0]->c, 0), -1);
	assert_int_equal(errno, EPERM);
	/* the lease was revoked: the key is gone at once, not after the TTL */
	assert_int_equal(etcdh_get(et_etcd, et_member_key(key, "node1"), NULL), 0);
	et_check(m[1], 0, 1, 5, 3);
	et_check(m[2], 1, 4, 5, 3);
	/* leaving twice is harmless */
	assert_int_equal(cluster_leave(m[0]->c), 0);
	/* and the same handle can join again */
	assert_int_equal(et_join(m[0]), 0);
	et_check(m[0], 0, 2, 7, 0);
	et_check(m[1], 2, 1, 7, 3);
	et_check(m[2], 3, 4, 7, 3);
	et_free(m, 3);
}

static void
test_kill9_member(void **state)
{
	const char *key = et_key("kill9");
	const int ttl = 2;
	et_member *m;
	int index = -2, total = -2;
	pid_t victim;
	double t0, took;

	(void) state;
	victim = et_spawn(key, "a-victim", 3, etcdh_endpoint(et_etcd), ttl, &index, &total);
	assert_true(victim > 0);
	assert_int_equal(index, 0);
	assert_int_equal(total, 3);
	m = et_new(key, "b-survivor", 1, ttl);
	assert_int_equal(et_join(m), 0);
	et_check(m, 3, 1, 4, 0);
	t0 = etcdh_now();
	et_kill(victim, SIGKILL);
	/* removed within TTL + 1 s of the crash */
	et_check(m, 0, 1, 1, ttl + 1.0);
	took = etcdh_now() - t0;
	fprintf(stderr, "# crashed member removed after %.3f s (TTL %d s)\n", took, ttl);
	assert_true(took < et_t(ttl + 1.0));
	assert_int_equal(etcdh_get(et_etcd, et_member_key(key, "a-victim"), NULL), 0);
	et_member_free(m);
}

static void
test_duplicate_live(void **state)
{
	const char *key = et_key("duplive");
	const int ttl = 3;
	et_member *a, *b, *c;
	long long lease;
	int calls;
	double t0, took;
	CLUSTERSTATE st;

	(void) state;
	a = et_new(key, "dup", 2, ttl);
	assert_int_equal(et_join(a), 0);
	et_check(a, 0, 2, 2, 0);
	lease = etcdh_key_lease(et_etcd, et_member_key(key, "dup"));
	assert_true(lease > 0);
	calls = et_calls(a);
	b = et_new(key, "dup", 1, ttl);
	t0 = etcdh_now();
	assert_int_equal(et_join(b), -1);
	assert_int_equal(errno, EEXIST);
	took = etcdh_now() - t0;
	fprintf(stderr, "# duplicate join refused after %.3f s\n", took);
	/* it may wait for a crashed predecessor, but only about TTL + 2 s */
	assert_true(took < et_t(ttl + 4.0));
	assert_int_equal(et_calls(b), 0);
	assert_int_equal(cluster_state(b->c, &st), 0);
	assert_int_equal(st.index, -1);
	assert_int_equal(cluster_total(b->c), 0);
	/* the live member's key, lease and view are untouched */
	assert_int_equal(etcdh_key_lease(et_etcd, et_member_key(key, "dup")), lease);
	check_registry_value(key, "dup", 2);
	assert_int_equal(et_calls(a), calls);
	et_check(a, 0, 2, 2, 0);
	/* and it is still a working member */
	c = et_new(key, "other", 1, ttl);
	assert_int_equal(et_join(c), 0);
	et_check(c, 2, 1, 3, 0);
	et_check(a, 0, 2, 3, 3);
	et_member_free(b);
	et_member_free(c);
	et_member_free(a);
}

static void
test_duplicate_crashed(void **state)
{
	const char *key = et_key("dupcrash");
	const int ttl = 3;
	et_member *b;
	long long old_lease, new_lease;
	pid_t first;
	double t0, took;

	(void) state;
	first = et_spawn(key, "phoenix", 2, etcdh_endpoint(et_etcd), ttl, NULL, NULL);
	assert_true(first > 0);
	old_lease = etcdh_key_lease(et_etcd, et_member_key(key, "phoenix"));
	assert_true(old_lease > 0);
	et_kill(first, SIGKILL);
	/* a restarted instance with the same id gets in once the crashed
	 * one's lease has run out, without the caller retrying */
	b = et_new(key, "phoenix", 1, ttl);
	t0 = etcdh_now();
	if(et_join(b))
	{
		fail_msg("join after a crashed predecessor failed: %s", strerror(errno));
	}
	took = etcdh_now() - t0;
	fprintf(stderr, "# join after crashed predecessor took %.3f s\n", took);
	assert_true(took < et_t(ttl + 2.0));
	et_check(b, 0, 1, 1, 0);
	new_lease = etcdh_key_lease(et_etcd, et_member_key(key, "phoenix"));
	assert_true(new_lease > 0);
	assert_true(new_lease != old_lease);
	check_registry_value(key, "phoenix", 1);
	et_member_free(b);
}

static void
test_set_workers(void **state)
{
	const char *key = et_key("workers");
	et_member *m[3];
	int calls;

	(void) state;
	join_214_in_turn(key, m, 3);
	assert_int_equal(cluster_set_workers(m[0]->c, 5), 0);
	assert_int_equal(cluster_workers(m[0]->c), 5);
	et_check(m[0], 0, 5, 10, 3);
	et_check(m[1], 5, 1, 10, 3);
	et_check(m[2], 6, 4, 10, 3);
	check_registry_value(key, "node1", 5);
	assert_int_equal(cluster_set_workers(m[2]->c, 1), 0);
	et_check(m[0], 0, 5, 7, 3);
	et_check(m[1], 5, 1, 7, 3);
	et_check(m[2], 6, 1, 7, 3);
	/* a bad count changes nothing */
	calls = et_calls(m[1]);
	assert_int_equal(cluster_set_workers(m[1]->c, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_set_workers(m[1]->c, CLUSTER_WORKERS_MAX + 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_workers(m[1]->c), 1);
	check_registry_value(key, "node2", 1);
	assert_int_equal(et_calls(m[1]), calls);
	et_free(m, 3);
}

static void
test_passive_observer(void **state)
{
	const char *key = et_key("passive");
	et_member *m[2], *obs, *n0;
	CLUSTERMEMBER *rows;
	CLUSTERSTATE st;
	size_t count, i, active = 0;
	int calls0, calls1;

	(void) state;
	m[0] = et_new(key, "node1", 2, 3);
	m[1] = et_new(key, "node2", 1, 3);
	assert_int_equal(et_join(m[0]), 0);
	assert_int_equal(et_join(m[1]), 0);
	et_check(m[0], 0, 2, 3, 3);
	et_check(m[1], 2, 1, 3, 3);
	calls0 = et_calls(m[0]);
	calls1 = et_calls(m[1]);
	obs = et_new(key, "obs", 1, 3);
	assert_int_equal(et_join_passive(obs), 0);
	assert_true(et_calls(obs) >= 1);
	assert_int_equal(et_last(obs).index, -1);
	assert_int_equal(et_last(obs).total, 3);
	assert_int_equal(et_last(obs).passive, 1);
	assert_int_equal(cluster_state(obs->c, &st), 0);
	assert_int_equal(st.index, -1);
	assert_int_equal(st.total, 3);
	assert_int_equal(st.passive, 1);
	assert_int_equal(cluster_total(obs->c), 3);
	assert_int_equal(cluster_index(obs->c, 0), -1);
	assert_int_equal(errno, ENOENT);
	/* the observer knows the peers and their bases */
	assert_int_equal(cluster_members(obs->c, &rows, &count), 0);
	for(i = 0; i < count; i++)
	{
		if(!rows[i].passive)
		{
			assert_string_equal(rows[i].id, active == 0 ? "node1" : "node2");
			assert_int_equal(rows[i].base, active == 0 ? 0 : 2);
			assert_int_equal(rows[i].self, 0);
			active++;
		}
	}
	cluster_members_free(rows);
	assert_int_equal(active, 2);
	/* the others do not count it: no callback, same totals */
	assert_int_equal(et_calls(m[0]), calls0);
	assert_int_equal(et_calls(m[1]), calls1);
	et_check(m[0], 0, 2, 3, 0);
	et_check(m[1], 2, 1, 3, 0);
	/* the observer follows later changes */
	n0 = et_new(key, "node0", 4, 3);
	assert_int_equal(et_join(n0), 0);
	et_check(n0, 0, 4, 7, 0);
	et_check(m[0], 4, 2, 7, 3);
	et_check(m[1], 6, 1, 7, 3);
	if(et_wait(obs, -1, 7, 3))
	{
		fail_msg("observer did not follow the new total");
	}
	/* and its leaving changes nobody's numbers */
	calls0 = et_calls(m[0]);
	assert_int_equal(cluster_leave(obs->c), 0);
	assert_int_equal(et_last(obs).index, -1);
	et_member_free(obs);
	/* a later change still reaches the others exactly once each */
	assert_int_equal(cluster_leave(n0->c), 0);
	et_check(m[0], 0, 2, 3, 3);
	assert_int_equal(et_calls(m[0]), calls0 + 1);
	et_member_free(n0);
	et_free(m, 2);
}

/* The header promises that cluster_members() includes passive members
 * and this instance: a passive observer lists itself (self, passive,
 * base -1), and the active members list it too. */
static void
test_passive_listed(void **state)
{
	const char *key = et_key("passlist");
	static const struct expect rows[1] = { { "node1", 2, 0, 0 } };
	et_member *m, *obs;

	(void) state;
	m = et_new(key, "node1", 2, 3);
	assert_int_equal(et_join(m), 0);
	obs = et_new(key, "obs", 1, 3);
	assert_int_equal(et_join_passive(obs), 0);
	/* the observer sees the members; it registers nothing, so it is listed
	 * by nobody, itself included, and no key exists for it */
	check_members(obs, rows, 1);
	check_members(m, rows, 1);
	assert_int_equal(etcdh_count(et_etcd, et_member_key(key, "obs")), 0);
	assert_int_equal(etcdh_count(et_etcd, et_member_key(key, "node1")), 1);
	et_member_free(obs);
	et_member_free(m);
}

static void
test_bad_registry(void **state)
{
	const char *key = et_key("baduri");
	static const char *const bad[] = {
		"",
		"ftp://127.0.0.1:2379/",
		"127.0.0.1:2379",
		"http://",
		"http://127.0.0.1:99999/",
		"etcd2+ftp://127.0.0.1/",
	};
	char uri[256];
	et_member *m;
	size_t i;

	(void) state;
	/* a fresh handle: every bad URI is refused and it stays static */
	m = et_member_new(key, "static", 1, NULL, 0);
	assert_non_null(m);
	for(i = 0; i < sizeof(bad) / sizeof(*bad); i++)
	{
		errno = 0;
		if(cluster_set_registry(m->c, bad[i]) != -1 || errno != EINVAL)
		{
			fail_msg("registry URI '%s' was not refused with EINVAL", bad[i]);
		}
	}
	assert_int_equal(et_join(m), 0);
	et_check(m, 0, 1, 1, 0);
	et_member_free(m);
	assert_int_equal(etcdh_count(et_etcd, et_prefix(key)), 0);
	/* a bad URI after a good one leaves the good one in place */
	m = et_new(key, "good", 2, 3);
	assert_int_equal(cluster_set_registry(m->c, "gopher://nowhere/"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(et_join(m), 0);
	et_check(m, 0, 2, 2, 0);
	assert_int_equal(etcdh_count(et_etcd, et_prefix(key)), 1);
	/* and a joined handle refuses to change its registry */
	snprintf(uri, sizeof(uri), "%s", etcdh_endpoint(et_etcd));
	assert_int_equal(cluster_set_registry(m->c, uri), -1);
	assert_int_equal(errno, EPERM);
	et_member_free(m);
}

static void
test_dead_endpoint(void **state)
{
	const char *key = et_key("dead");
	char uri[256];
	et_member *m;
	CLUSTERSTATE st;
	double t0, took;
	int e;

	(void) state;
	snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/", et_dead_port());
	m = et_member_new(key, "lonely", 1, uri, 3);
	assert_non_null(m);
	/* a refused connection is retried until the join deadline (2 s here) */
	assert_int_equal(cluster_set_timeouts(m->c, 1000, 2000), 0);
	t0 = etcdh_now();
	assert_int_equal(et_join(m), -1);
	e = errno;
	took = etcdh_now() - t0;
	fprintf(stderr, "# join against a dead endpoint failed after %.3f s: %s\n", took, strerror(e));
	assert_int_equal(e, ECONNREFUSED);
	assert_true(took >= 1.9);
	assert_true(took < et_t(4.0));
	assert_int_equal(et_calls(m), 0);
	assert_int_equal(cluster_state(m->c, &st), 0);
	assert_int_equal(st.index, -1);
	et_member_free(m);
	/* with a live endpoint after the dead one, the join fails over */
	snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/,%s", et_dead_port(), etcdh_endpoint(et_etcd));
	m = et_member_new(key, "failover", 1, uri, 3);
	assert_non_null(m);
	if(et_join(m))
	{
		fail_msg("join with a dead then a live endpoint failed: %s", strerror(errno));
	}
	et_check(m, 0, 1, 1, 0);
	assert_int_equal(etcdh_count(et_etcd, et_prefix(key)), 1);
	et_member_free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_cluster_214, et_teardown_members),
		cmocka_unit_test_teardown(test_graceful_leave, et_teardown_members),
		cmocka_unit_test_teardown(test_kill9_member, et_teardown_members),
		cmocka_unit_test_teardown(test_duplicate_live, et_teardown_members),
		cmocka_unit_test_teardown(test_duplicate_crashed, et_teardown_members),
		cmocka_unit_test_teardown(test_set_workers, et_teardown_members),
		cmocka_unit_test_teardown(test_passive_observer, et_teardown_members),
		cmocka_unit_test_teardown(test_passive_listed, et_teardown_members),
		cmocka_unit_test_teardown(test_bad_registry, et_teardown_members),
		cmocka_unit_test_teardown(test_dead_endpoint, et_teardown_members),
	};

	if(etcdh_skip())
	{
		return 0;
	}
	return cmocka_run_group_tests(tests, et_setup, et_teardown);
}
