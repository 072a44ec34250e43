/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry trouble against a real etcd (a fresh private etcd per test):
 * etcd restarted within the TTL (SIGTERM and SIGKILL), etcd down for
 * longer than the TTL, leases revoked and keys deleted behind the
 * members' backs, compaction while watches are cut off, and etcd frozen
 * with SIGSTOP (leave and getters must not wait for it).
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

#include "etcdharness.h"
#include "etcdtest.h"

static void
check_214(et_member **m, double seconds)
{
	et_check(m[0], 0, 2, 7, seconds);
	et_check(m[1], 2, 1, 7, seconds);
	et_check(m[2], 3, 4, 7, seconds);
}

/* A newcomer sorting first shifts everyone: proof that every watch is
 * live again after an outage. */
static void
check_newcomer(const char *key, et_member **m, int ttl)
{
	et_member *n0 = et_new(key, "node0", 1, ttl);

	assert_int_equal(et_join(n0), 0);
	et_check(n0, 0, 1, 8, 0);
	et_check(m[0], 1, 2, 8, 5);
	et_check(m[1], 3, 1, 8, 5);
	et_check(m[2], 4, 4, 8, 5);
	et_member_free(n0);
	check_214(m, 5);
}

/* Poll until n keys live under the cluster's prefix. */
static int
wait_keys(const char *key, long long n, double seconds)
{
	double deadline = etcdh_now() + et_t(seconds);

	do
	{
		if(etcdh_count(et_etcd, et_prefix(key)) == n)
		{
			return 0;
		}
		usleep(50000);
	}
	while(etcdh_now() < deadline);
	fprintf(stderr, "# %lld keys under %s, expected %lld\n", etcdh_count(et_etcd, et_prefix(key)), et_prefix(key), n);
	return -1;
}

/* Poll until m lists n members. */
static int
wait_listed(et_member *m, size_t n, double seconds)
{
	double deadline = etcdh_now() + et_t(seconds);
	CLUSTERMEMBER *rows;
	size_t count;

	do
	{
		if(cluster_members(m->c, &rows, &count) == 0)
		{
			cluster_members_free(rows);
			if(count == n)
			{
				return 0;
			}
		}
		usleep(20000);
	}
	while(etcdh_now() < deadline);
	return -1;
}

/* etcd goes away and comes back before any lease could expire: nobody
 * may notice (no callback at all), and the watches must resume. */
static void
restart_within_ttl(int hard)
{
	const char *key = et_key(hard ? "killrestart" : "restart");
	const int ttl = 5;
	et_member *m[3];
	int calls[3], i;
	double t0, down;

	et_join_214(key, m, NULL, ttl, 3);
	for(i = 0; i < 3; i++)
	{
		calls[i] = et_calls(m[i]);
	}
	t0 = etcdh_now();
	assert_int_equal(hard ? etcdh_kill(et_etcd) : etcdh_stop(et_etcd), 0);
	assert_int_equal(etcdh_restart(et_etcd), 0);
	down = etcdh_now() - t0;
	fprintf(stderr, "# etcd was down for %.3f s (TTL %d s)\n", down, ttl);
	assert_true(down < ttl);
	/* a window of TTL + 1 s in which nothing may be reported */
	if(et_wait_calls(m[0], calls[0], ttl + 1.0) == 0)
	{
		et_dump(m[0]);
		fail_msg("node1 got a callback although etcd came back within the TTL");
	}
	for(i = 0; i < 3; i++)
	{
		if(et_calls(m[i]) != calls[i])
		{
			et_dump(m[i]);
			fail_msg("%s got a callback although etcd came back within the TTL", m[i]->id);
		}
	}
	check_214(m, 0);
	assert_int_equal(etcdh_count(et_etcd, et_prefix(key)), 3);
	check_newcomer(key, m, ttl);
	et_free(m, 3);
}

static void
test_restart_within_ttl(void **state)
{
	(void) state;
	restart_within_ttl(0);
}

static void
test_kill_restart_within_ttl(void **state)
{
	(void) state;
	restart_within_ttl(1);
}

/* Time one getter call; they must never wait for the registry. */
#define TIMED(worst, expr) \
 do \
 { \
  double t_ = etcdh_now(); \
  (void) (expr); \
  t_ = etcdh_now() - t_; \
  if(t_ > (worst)) \
  { \
   (worst) = t_; \
  } \
 } \
 while(0)

static double
time_getters(et_member **m, int n)
{
	CLUSTERSTATE st;
	CLUSTERMEMBER *rows;
	size_t count;
	double worst = 0;
	int i;

	for(i = 0; i < n; i++)
	{
		TIMED(worst, cluster_index(m[i]->c, 0));
		TIMED(worst, cluster_total(m[i]->c));
		TIMED(worst, cluster_state(m[i]->c, &st));
		TIMED(worst, cluster_workers(m[i]->c));
		rows = NULL;
		TIMED(worst, cluster_members(m[i]->c, &rows, &count));
		cluster_members_free(rows);
	}
	return worst;
}

static void
test_down_longer_than_ttl(void **state)
{
	const char *key = et_key("longdown");
	const int ttl = 2;
	et_member *m[3];
	double worst, t0;

	(void) state;
	et_join_214(key, m, NULL, ttl, 3);
	assert_int_equal(etcdh_stop(et_etcd), 0);
	t0 = etcdh_now();
	worst = time_getters(m, 3);
	fprintf(stderr, "# slowest getter with etcd down: %.6f s\n", worst);
	assert_true(worst < et_t(0.1));
	/* stay down well past the TTL (this wait is the scenario itself) */
	usleep((useconds_t) ((2 * ttl + 1) * 1000000));
	worst = time_getters(m, 3);
	fprintf(stderr, "# slowest getter after %.1f s down: %.6f s\n", etcdh_now() - t0, worst);
	assert_true(worst < et_t(0.1));
	assert_int_equal(etcdh_restart(et_etcd), 0);
	/* everyone is registered again and agrees */
	assert_int_equal(wait_keys(key, 3, 3 * ttl + 5), 0);
	assert_int_equal(wait_listed(m[0], 3, 3 * ttl + 5), 0);
	assert_int_equal(wait_listed(m[1], 3, 3 * ttl + 5), 0);
	assert_int_equal(wait_listed(m[2], 3, 3 * ttl + 5), 0);
	check_214(m, 3 * ttl + 5);
	/* and stays so: the registrations are alive, not leftovers that
	 * expire a TTL later */
	usleep((useconds_t) (2 * ttl * 1000000));
	assert_int_equal(etcdh_count(et_etcd, et_prefix(key)), 3);
	check_214(m, 0);
	check_newcomer(key, m, ttl);
	et_free(m, 3);
}

/* Leases revoked behind the members' backs (what an operator or a lease
 * expiry during a long partition does): they register again. */
static void
test_lease_revoked(void **state)
{
	const char *key = et_key("revoked");
	const int ttl = 3;
	et_member *m[3];
	char k[600];
	long long before;

	(void) state;
	et_join_214(key, m, NULL, ttl, 3);
	snprintf(k, sizeof(k), "%snode2", et_prefix(key));
	before = etcdh_key_lease(et_etcd, k);
	assert_true(before > 0);
	/* (the members may be back before we could count them gone) */
	assert_true(etcdh_revoke_all(et_etcd) >= 3);
	assert_int_equal(wait_keys(key, 3, ttl + 3), 0);
	assert_true(etcdh_key_lease(et_etcd, k) > 0);
	assert_true(etcdh_key_lease(et_etcd, k) != before);
	assert_int_equal(wait_listed(m[0], 3, ttl + 3), 0);
	assert_int_equal(wait_listed(m[1], 3, ttl + 3), 0);
	assert_int_equal(wait_listed(m[2], 3, ttl + 3), 0);
	check_214(m, ttl + 3);
	check_newcomer(key, m, ttl);
	et_free(m, 3);
}

/* A member's key deleted while its process lives (the original's worst
 * defect left it ejected for good): it must come back. */
static void
test_key_deleted(void **state)
{
	const char *key = et_key("deleted");
	const int ttl = 3;
	et_member *m[3];
	char k[600];

	(void) state;
	et_join_214(key, m, NULL, ttl, 3);
	snprintf(k, sizeof(k), "%snode2", et_prefix(key));
	assert_int_equal(etcdh_delete(et_etcd, k), 1);
	assert_int_equal(wait_keys(key, 3, ttl + 3), 0);
	assert_int_equal(etcdh_get(et_etcd, k, NULL), 1);
	assert_int_equal(wait_listed(m[0], 3, ttl + 3), 0);
	assert_int_equal(wait_listed(m[2], 3, ttl + 3), 0);
	check_214(m, ttl + 3);
	check_newcomer(key, m, ttl);
	et_free(m, 3);
}

/* Two members reach etcd through a proxy that is cut; meanwhile others
 * come and go, and the history is compacted away. When the link returns
 * their watches cannot resume from their last revision: they must
 * re-read, and miss nothing. */
static void
test_compaction_while_disconnected(void **state)
{
	const char *key = et_key("compact");
	const int ttl = 5;
	etcdh_proxy *proxy;
	et_member *viaproxy[2], *leaver, *joiner;
	long long rev_before, rev_after;

	(void) state;
	assert_int_equal(etcdh_proxy_start(et_etcd, &proxy), 0);
	viaproxy[0] = et_new_at(key, "node1", 2, etcdh_proxy_endpoint(proxy), ttl);
	viaproxy[1] = et_new_at(key, "node2", 1, etcdh_proxy_endpoint(proxy), ttl);
	leaver = et_new(key, "node9", 1, ttl);
	assert_int_equal(et_join(viaproxy[0]), 0);
	assert_int_equal(et_join(viaproxy[1]), 0);
	assert_int_equal(et_join(leaver), 0);
	et_check(viaproxy[0], 0, 2, 4, 3);
	et_check(viaproxy[1], 2, 1, 4, 3);
	et_check(leaver, 3, 1, 4, 3);
	assert_true(etcdh_proxy_accepted(proxy) > 0);

	etcdh_proxy_cut(proxy);
	rev_before = etcdh_revision(et_etcd);
	joiner = et_new(key, "node0", 3, ttl);
	assert_int_equal(et_join(joiner), 0);
	et_check(joiner, 0, 3, 7, 0);
	assert_int_equal(cluster_leave(leaver->c), 0);
	et_check(joiner, 0, 3, 6, 3);
	/* more history beyond the members' prefix, then compact it all */
	assert_int_equal(etcdh_put(et_etcd, "/it-garbage/a", "1"), 0);
	assert_int_equal(etcdh_put(et_etcd, "/it-garbage/a", "2"), 0);
	assert_int_equal(etcdh_compact(et_etcd), 0);
	rev_after = etcdh_revision(et_etcd);
	fprintf(stderr, "# compacted at %lld (cut at %lld)\n", rev_after, rev_before);
	assert_true(rev_after >= rev_before + 4);
	/* the cut members have not seen any of it */
	assert_int_equal(et_last(viaproxy[0]).total, 4);
	etcdh_proxy_restore(proxy);

	et_check(viaproxy[0], 3, 2, 6, 10);
	et_check(viaproxy[1], 5, 1, 6, 10);
	et_check(joiner, 0, 3, 6, 0);
	assert_int_equal(wait_listed(viaproxy[0], 3, 3), 0);
	assert_int_equal(wait_listed(viaproxy[1], 3, 3), 0);
	assert_int_equal(etcdh_count(et_etcd, et_prefix(key)), 3);
	et_member_free(viaproxy[0]);
	et_member_free(viaproxy[1]);
	et_member_free(leaver);
	et_member_free(joiner);
	etcdh_proxy_stop(proxy);
}

/* etcd frozen (SIGSTOP: connections open, nothing answers): getters
 * return at once and leave/destroy return within a second. */
static void
test_sigstop(void **state)
{
	const char *key = et_key("sigstop");
	const int ttl = 3;
	et_member *m[3];
	double worst, t0, took;
	int e;

	(void) state;
	et_join_214(key, m, NULL, ttl, 3);
	assert_int_equal(etcdh_pause(et_etcd), 0);
	worst = time_getters(m, 3);
	fprintf(stderr, "# slowest getter with etcd frozen: %.6f s\n", worst);
	assert_true(worst < et_t(0.1));
	t0 = etcdh_now();
	errno = 0;
	assert_int_equal(cluster_leave(m[0]->c), 0);
	e = errno;
	took = etcdh_now() - t0;
	fprintf(stderr, "# cluster_leave with etcd frozen took %.3f s, errno %s\n", took, strerror(e));
	/* left, and says the registry was not told (it once looked like a
	 * clean leave) */
	assert_int_equal(e, ETIMEDOUT);
	assert_true(took < et_t(1.0));
	assert_int_equal(et_last(m[0]).index, -1);
	t0 = etcdh_now();
	et_member_free(m[1]);
	m[1] = NULL;
	took = etcdh_now() - t0;
	fprintf(stderr, "# cluster_destroy with etcd frozen took %.3f s\n", took);
	assert_true(took < et_t(1.0));
	worst = time_getters(&m[2], 1);
	assert_true(worst < et_t(0.1));
	assert_int_equal(etcdh_resume(et_etcd), 0);
	/* the leavers' keys go (revoked late or expired) and node3 follows */
	et_check(m[2], 0, 4, 4, ttl + 3);
	assert_int_equal(wait_keys(key, 1, 3), 0);
	et_free(m, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_restart_within_ttl, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_kill_restart_within_ttl, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_down_longer_than_ttl, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_lease_revoked, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_key_deleted, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_compaction_while_disconnected, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_sigstop, et_setup, et_teardown),
	};

	if(etcdh_skip())
	{
		return 0;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
