/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shard ownership against a real etcd: join, leave, kill -9, etcd
 * restart, a lease revoked behind a member's back, a corrupt and a
 * foreign record, members racing to write the next assignment. After
 * every step the referee (shardcheck.c) proves from the recorded acquire
 * and release times that no shard had two holders at once, and, once
 * settled, that every shard has one balanced owner and that the movement
 * stayed within 1.1 x the minimum.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <libcluster.h>
#include "etcdharness.h"
#include "etcdtest.h"
#include "shardcheck.h"

/* Every member plans at once, as if first (shard-sync.c): the race. */
extern int cluster__shard_test_eager;

#define S    64
#define TTL  2
#define WAIT 20.0


/* A fresh run: its own key, referee reset. */
static const char *
begin(const char *name)
{
	sc_free();
	sc_init(S, sc_dir_path());
	cluster__shard_test_eager = 0;
	return et_key(name);
}

static et_member *
member(const char *key, const char *id, const char *who, int workers)
{
	et_member *m = et_new(key, id, workers, TTL);

	sc_attach(m->c, who);
	assert_int_equal(cluster_set_shard_settle(m->c, 100), 0);
	assert_int_equal(et_join(m), 0);
	return m;
}

static pid_t
process(const char *key, const char *id, const char *who, int workers)
{
	char sbuf[16];
	const char *extra[] = { "-s", sbuf, "-E", sc_event_file(who), NULL };
	pid_t pid;

	snprintf(sbuf, sizeof(sbuf), "%d", S);
	pid = et_spawn_ex(key, id, workers, etcdh_endpoint(et_etcd), TTL, extra, NULL, NULL);
	assert_true(pid > 0);
	return pid;
}

/* Settle, then check the intervals and (when before is given) the
 * movement against the minimum for live. */
static void
settle(const sc_live *live, size_t n, sc_snapshot **before, const char *what)
{
	sc_snapshot *now;

	assert_int_equal(sc_wait_settled(live, n, WAIT), 0);
	assert_int_equal(sc_check_intervals(), 0);
	now = sc_snapshot_take();
	if(before && *before)
	{
		size_t moves = sc_moves(*before, now), min = sc_min_moves(*before, live, n);

		fprintf(stderr, "# %s: %zu shards moved, minimum %zu\n", what, moves, min);
		assert_true(moves * 10 <= min * 11);
	}
	if(before)
	{
		sc_snapshot_free(*before);
		*before = now;
	}
	else
	{
		sc_snapshot_free(now);
	}
}

static void
test_join_leave(void **state)
{
	const char *key = begin("sh-join");
	sc_live live[3] = { { "a", 1 }, { "b", 1 }, { "c", 2 } };
	sc_snapshot *snap = NULL;
	et_member *a, *b, *c;
	CLUSTERSHARD *owned;
	size_t n;
	char id[CLUSTER_NAME_MAX + 1];
	long long token;
	double t0;

	(void) state;
	a = member(key, "a", "a", 1);
	settle(live, 1, &snap, "first member");
	b = member(key, "b", "b", 1);
	settle(live, 2, &snap, "second joins");
	c = member(key, "c", "c", 2);
	settle(live, 3, &snap, "third (2 workers) joins");

	/* the getters agree with the callbacks */
	assert_int_equal(cluster_owned_shards(c->c, &owned, &n), 0);
	assert_int_equal(n, S / 2);
	assert_int_equal(cluster_shard_owner(a->c, (int) owned[0].shard, id, sizeof(id), &token), 0);
	assert_string_equal(id, "c");
	assert_int_equal(token, owned[0].token);
	cluster_shards_free(owned);
	assert_int_equal(cluster_shard_owner(a->c, S, id, sizeof(id), NULL), -1);
	assert_int_equal(errno, ERANGE);
	assert_int_equal(cluster_set_shards(a->c, 8), -1);
	assert_int_equal(errno, EPERM);

	/* a graceful leave hands back at once: settled well within the TTL
	 * (a shard given back to the leaver would wait a TTL for its grace) */
	t0 = etcdh_now();
	assert_int_equal(cluster_leave(b->c), 0);
	live[1] = live[2];
	assert_int_equal(sc_wait_settled(live, 2, TTL * 0.6), 0);
	fprintf(stderr, "# graceful leave settled in %.3f s\n", etcdh_now() - t0);
	settle(live, 2, &snap, "second leaves");
	sc_snapshot_free(snap);
	et_member_free(a);
	et_member_free(b);
	et_member_free(c);
	assert_int_equal(sc_check_intervals(), 0);
}

static void
test_kill9(void **state)
{
	const char *key = begin("sh-kill");
	sc_live live[3] = { { "a", 1 }, { "b", 1 }, { "p1", 1 } };
	sc_snapshot *snap = NULL;
	et_member *a, *b;
	pid_t p;

	(void) state;
	a = member(key, "a", "a", 1);
	b = member(key, "b", "b", 1);
	p = process(key, "p", "p1", 1);
	settle(live, 3, &snap, "three members");
	sc_killed("p1");
	et_kill(p, SIGKILL);
	/* its shards move one TTL after its lease ran out */
	settle(live, 2, &snap, "one killed");
	/* it comes back under the same id: a new incarnation */
	p = process(key, "p", "p2", 1);
	live[2].who = "p2";
	settle(live, 3, &snap, "it restarts");
	et_kill(p, SIGTERM);
	settle(live, 2, &snap, "it leaves");
	sc_snapshot_free(snap);
	et_member_free(a);
	et_member_free(b);
}

static void
test_etcd_restart(void **state)
{
	const char *key = begin("sh-restart");
	sc_live live[3] = { { "a", 1 }, { "b", 3 }, { "c", 1 } };
	et_member *m[3];

	(void) state;
	m[0] = member(key, "a", "a", 1);
	m[1] = member(key, "b", "b", 3);
	m[2] = member(key, "c", "c", 1);
	settle(live, 3, NULL, NULL);
	assert_int_equal(etcdh_restart(et_etcd), 0);
	settle(live, 3, NULL, NULL);
	/* and a change after it still works */
	et_member_free(m[2]);
	settle(live, 2, NULL, NULL);
	et_member_free(m[0]);
	et_member_free(m[1]);
}

/* Revoke b's lease behind its back: its key vanishes at once, yet b may
 * still be working; its shards must not move before it let them go. */
static void
test_revoked(void **state)
{
	const char *key = begin("sh-revoke");
	sc_live live[3] = { { "a", 1 }, { "b", 1 }, { "c", 1 } };
	et_member *m[3];
	long long lease;
	size_t before;
	double end;

	(void) state;
	m[0] = member(key, "a", "a", 1);
	m[1] = member(key, "b", "b", 1);
	m[2] = member(key, "c", "c", 1);
	settle(live, 3, NULL, NULL);
	lease = etcdh_key_lease(et_etcd, et_member_key(key, "b"));
	assert_true(lease > 0);
	before = sc_event_count("b");
	assert_int_equal(etcdh_revoke(et_etcd, lease), 0);
	/* b lets its shards go (it sees its key vanish, or its lease run out)
	 * and re-registers: a new incarnation, whose share comes back only
	 * after the old one's grace; it ends with its share again */
	end = etcdh_now() + et_t(WAIT);
	while(sc_event_count("b") < before + 2 * (S / 3) && etcdh_now() < end)
	{
		usleep(20000);
	}
	assert_true(sc_event_count("b") >= before + 2 * (S / 3));
	assert_true(etcdh_key_lease(et_etcd, et_member_key(key, "b")) != lease);
	settle(live, 3, NULL, NULL);
	et_free(m, 3);
	assert_int_equal(sc_check_intervals(), 0);
}

/* b is cut off from etcd and its lease revoked meanwhile: the others
 * take its shards a TTL after its key vanished; b, which cannot renew,
 * has let them go by its own deadline before that. */
static void
test_partitioned_revoked(void **state)
{
	const char *key = begin("sh-cut");
	sc_live live[3] = { { "a", 1 }, { "c", 1 }, { "b", 1 } };
	etcdh_proxy *proxy;
	et_member *m[3];
	long long lease;

	(void) state;
	assert_int_equal(etcdh_proxy_start(et_etcd, &proxy), 0);
	m[0] = member(key, "a", "a", 1);
	m[1] = member(key, "c", "c", 1);
	m[2] = et_new_at(key, "b", 1, etcdh_proxy_endpoint(proxy), TTL);
	sc_attach(m[2]->c, "b");
	assert_int_equal(cluster_set_shard_settle(m[2]->c, 100), 0);
	assert_int_equal(et_join(m[2]), 0);
	settle(live, 3, NULL, NULL);
	lease = etcdh_key_lease(et_etcd, et_member_key(key, "b"));
	assert_true(lease > 0);
	etcdh_proxy_cut(proxy);
	assert_int_equal(etcdh_revoke(et_etcd, lease), 0);
	settle(live, 2, NULL, NULL);
	etcdh_proxy_restore(proxy);
	settle(live, 3, NULL, NULL);
	et_free(m, 3);
	etcdh_proxy_stop(proxy);
	assert_int_equal(sc_check_intervals(), 0);
}

/* Garbage, then a record for another shard count: logged, everything
 * released, rebuilt after a TTL; never two owners. */
static void
test_bad_record(void **state)
{
	const char *key = begin("sh-bad");
	sc_live live[2] = { { "a", 1 }, { "b", 1 } };
	char rec[300];
	et_member *m[2];

	(void) state;
	m[0] = member(key, "a", "a", 1);
	m[1] = member(key, "b", "b", 1);
	settle(live, 2, NULL, NULL);
	snprintf(rec, sizeof(rec), "/%s/production@shards", key);
	assert_int_equal(etcdh_put(et_etcd, rec, "{\"v\":1,\"shards\":\x01 garbage"), 0);
	settle(live, 2, NULL, NULL);
	assert_int_equal(etcdh_put(et_etcd, rec, "{\"v\":1,\"shards\":7,\"owners\":[],\"runs\":[[7,-1,-1,0,0]]}"), 0);
	settle(live, 2, NULL, NULL);
	et_free(m, 2);
	assert_int_equal(sc_check_intervals(), 0);
}

/* Every member writes the next assignment the moment it sees a change:
 * compare-and-swap lets one win each time. */
static void
test_race(void **state)
{
	const char *key = begin("sh-race");
	sc_live live[4] = { { "a", 1 }, { "b", 2 }, { "c", 1 }, { "d", 1 } };
	sc_snapshot *snap = NULL;
	et_member *m[4];

	(void) state;
	cluster__shard_test_eager = 1;
	m[0] = member(key, "a", "a", 1);
	m[1] = member(key, "b", "b", 2);
	m[2] = member(key, "c", "c", 1);
	settle(live, 3, &snap, "three racing");
	m[3] = member(key, "d", "d", 1);
	settle(live, 4, &snap, "fourth joins while all race");
	et_member_free(m[0]);
	m[0] = NULL;
	settle(live + 1, 3, &snap, "first leaves while all race");
	sc_snapshot_free(snap);
	et_free(m, 4);
	cluster__shard_test_eager = 0;
	assert_int_equal(sc_check_intervals(), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_join_leave, et_teardown_members),
		cmocka_unit_test_teardown(test_kill9, et_teardown_members),
		cmocka_unit_test_teardown(test_revoked, et_teardown_members),
		cmocka_unit_test_teardown(test_partitioned_revoked, et_teardown_members),
		cmocka_unit_test_teardown(test_bad_record, et_teardown_members),
		cmocka_unit_test_teardown(test_race, et_teardown_members),
		cmocka_unit_test_teardown(test_etcd_restart, et_teardown_members),
	};

	return cmocka_run_group_tests(tests, sc_setup, sc_teardown);
}
