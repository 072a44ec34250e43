/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The etcd test harness on its own (no libcluster involved): if these
 * fail, the integration tests' verdicts mean nothing.
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
#include <sys/stat.h>
#include <sys/types.h>

#include <curl/curl.h>

#include "etcdharness.h"

static etcdh *H;
static etcdh_cluster *CL;

static int
setup(void **state)
{
	(void) state;
	return etcdh_start(&H) ? -1 : 0;
}

static int
teardown(void **state)
{
	(void) state;
	etcdh_destroy(H);
	H = NULL;
	return 0;
}

static int
setup_auth(void **state)
{
	/* simple tokens expire after 1 s idle: the harness must log in again */
	static const char *const args[] = { "--auth-token-ttl=1", NULL };

	(void) state;
	return etcdh_start_opts(&H, NULL, 0, args) ? -1 : 0;
}

static int
teardown_cluster(void **state)
{
	(void) state;
	etcdh_cluster_destroy(CL);
	CL = NULL;
	return 0;
}

/* Plain GET /health through url; returns the HTTP status (0: no answer). */
static long
health(const char *url, long timeout_ms)
{
	char full[256];

	snprintf(full, sizeof(full), "%shealth", url);
	return etcdh_request(NULL, full, NULL, timeout_ms, NULL);
}

static void
test_start_and_kv(void **state)
{
	char *v = NULL, *metrics = NULL;
	long long rev, lease;
	struct stat sb;
	char dir[4096];

	(void) state;
	assert_true(strncmp(etcdh_endpoint(H), "http://127.0.0.1:", 17) == 0);
	assert_true(etcdh_endpoint(H)[strlen(etcdh_endpoint(H)) - 1] == '/');
	assert_true(etcdh_pid(H) > 0);
	assert_int_equal(kill(etcdh_pid(H), 0), 0);
	snprintf(dir, sizeof(dir), "%s", etcdh_dir(H));
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(health(etcdh_endpoint(H), 1000), 200);

	rev = etcdh_revision(H);
	assert_true(rev >= 1);
	assert_int_equal(etcdh_put(H, "/h/a", "one"), 0);
	assert_int_equal(etcdh_put(H, "/h/b", "{\"workers\":2}"), 0);
	assert_int_equal(etcdh_put(H, "/h0", "outside"), 0);
	assert_int_equal(etcdh_revision(H), rev + 3);
	assert_int_equal(etcdh_get(H, "/h/a", &v), 1);
	assert_string_equal(v, "one");
	free(v);
	assert_int_equal(etcdh_get(H, "/h/b", &v), 1);
	assert_string_equal(v, "{\"workers\":2}");
	free(v);
	assert_int_equal(etcdh_get(H, "/h/none", &v), 0);
	assert_null(v);
	assert_int_equal(etcdh_count(H, "/h/"), 2);
	lease = etcdh_key_lease(H, "/h/a");
	assert_int_equal(lease, 0);
	assert_int_equal(etcdh_delete(H, "/h/a"), 1);
	assert_int_equal(etcdh_delete(H, "/h/a"), 0);
	assert_int_equal(etcdh_count(H, "/h/"), 1);
	assert_int_equal(etcdh_compact(H), 0);
	assert_int_equal(etcdh_revoke_all(H), 0);

	assert_int_equal(etcdh_metrics(H, &metrics), 0);
	assert_true(etcdh_metric(metrics, "grpc_server_started_total", "grpc_method=\"Put\"") >= 3);
	assert_true(etcdh_metric(metrics, "grpc_server_started_total", "grpc_method=\"Range\",grpc_type=\"unary\"") >= 1);
	assert_true(etcdh_metric(metrics, "etcd_server_has_leader", NULL) == 1);
	assert_true(etcdh_metric(metrics, "no_such_metric", NULL) == 0);
	free(metrics);

	/* destroy removes the temporary directory and stops etcd */
	etcdh_destroy(H);
	H = NULL;
	assert_int_equal(stat(dir, &sb), -1);
}

static void
test_stop_restart_keeps_data(void **state)
{
	char ep[128], *v = NULL;
	pid_t old;

	(void) state;
	snprintf(ep, sizeof(ep), "%s", etcdh_endpoint(H));
	assert_int_equal(etcdh_put(H, "/keep", "me"), 0);
	old = etcdh_pid(H);
	assert_int_equal(etcdh_stop(H), 0);
	assert_int_equal(etcdh_pid(H), 0);
	assert_int_equal(kill(old, 0), -1);
	assert_int_equal(health(ep, 300), 0);
	assert_int_equal(etcdh_restart(H), 0);
	assert_string_equal(etcdh_endpoint(H), ep);
	assert_true(etcdh_pid(H) > 0 && etcdh_pid(H) != old);
	assert_int_equal(etcdh_get(H, "/keep", &v), 1);
	assert_string_equal(v, "me");
	free(v);
	/* kill -9 and restart too */
	assert_int_equal(etcdh_kill(H), 0);
	assert_int_equal(etcdh_restart(H), 0);
	assert_int_equal(etcdh_get(H, "/keep", NULL), 1);
}

static void
test_pause_resume(void **state)
{
	double t0;

	(void) state;
	assert_int_equal(etcdh_pause(H), 0);
	t0 = etcdh_now();
	assert_int_equal(health(etcdh_endpoint(H), 300), 0);
	assert_true(etcdh_now() - t0 < 2.0);
	assert_int_equal(etcdh_resume(H), 0);
	assert_int_equal(etcdh_wait_healthy(H, 5), 0);
	/* stop works on a paused etcd too */
	assert_int_equal(etcdh_pause(H), 0);
	assert_int_equal(etcdh_stop(H), 0);
	assert_int_equal(etcdh_pid(H), 0);
}

static void
test_proxy(void **state)
{
	etcdh_proxy *p;

	(void) state;
	assert_int_equal(etcdh_proxy_start(H, &p), 0);
	assert_true(strcmp(etcdh_proxy_endpoint(p), etcdh_endpoint(H)) != 0);
	assert_int_equal(health(etcdh_proxy_endpoint(p), 1000), 200);
	assert_true(etcdh_proxy_accepted(p) >= 1);
	etcdh_proxy_cut(p);
	assert_int_equal(health(etcdh_proxy_endpoint(p), 1000), 0);
	/* etcd itself is fine meanwhile */
	assert_int_equal(health(etcdh_endpoint(H), 1000), 200);
	etcdh_proxy_restore(p);
	assert_int_equal(health(etcdh_proxy_endpoint(p), 1000), 200);
	etcdh_proxy_stop(p);
}

/* Plain v3 put with no token: returns the HTTP status (0: no answer). */
static long
anonymous_put(const char *url)
{
	char full[256];

	snprintf(full, sizeof(full), "%sv3/kv/put", url);
	return etcdh_request(NULL, full, "{\"key\":\"L2Fub24=\",\"value\":\"MQ==\"}", 3000L, NULL);
}

static void
test_cluster(void **state)
{
	etcdh_cluster *cl;
	char eps[512], dir[4096], *v = NULL;
	struct stat sb;
	int i, leader, other;

	(void) state;
	assert_int_equal(etcdh_cluster_start(&CL, 3, NULL), 0);
	cl = CL;
	assert_int_equal(etcdh_cluster_size(cl), 3);
	assert_null(etcdh_cluster_member(cl, 3));
	snprintf(eps, sizeof(eps), "%s,%s,%s", etcdh_endpoint(etcdh_cluster_member(cl, 0)),
		etcdh_endpoint(etcdh_cluster_member(cl, 1)), etcdh_endpoint(etcdh_cluster_member(cl, 2)));
	assert_string_equal(etcdh_cluster_endpoints(cl), eps);
	for(i = 0; i < 3; i++)
	{
		assert_true(etcdh_pid(etcdh_cluster_member(cl, i)) > 0);
		assert_int_equal(health(etcdh_endpoint(etcdh_cluster_member(cl, i)), 1000), 200);
	}
	leader = etcdh_cluster_leader(cl);
	assert_true(leader >= 0 && leader < 3);
	/* written through one member, read through another */
	other = (leader + 1) % 3;
	assert_int_equal(etcdh_put(etcdh_cluster_member(cl, leader), "/c/k", "v1"), 0);
	assert_int_equal(etcdh_get(etcdh_cluster_member(cl, other), "/c/k", &v), 1);
	assert_string_equal(v, "v1");
	free(v);
	assert_int_equal(etcdh_put(etcdh_cluster_member(cl, other), "/c/k", "v2"), 0);
	assert_int_equal(etcdh_get(etcdh_cluster_member(cl, (leader + 2) % 3), "/c/k", &v), 1);
	assert_string_equal(v, "v2");
	free(v);
	/* a frozen follower: the others still serve, the leader is found */
	assert_int_equal(etcdh_pause(etcdh_cluster_member(cl, other)), 0);
	assert_int_equal(etcdh_cluster_leader(cl), leader);
	assert_int_equal(etcdh_put(etcdh_cluster_member(cl, leader), "/c/k", "v3"), 0);
	assert_int_equal(etcdh_resume(etcdh_cluster_member(cl, other)), 0);
	/* a member restarts and catches up */
	assert_int_equal(etcdh_stop(etcdh_cluster_member(cl, other)), 0);
	assert_int_equal(etcdh_put(etcdh_cluster_member(cl, leader), "/c/k", "v4"), 0);
	assert_int_equal(etcdh_restart(etcdh_cluster_member(cl, other)), 0);
	assert_int_equal(etcdh_get(etcdh_cluster_member(cl, other), "/c/k", &v), 1);
	assert_string_equal(v, "v4");
	free(v);
	snprintf(dir, sizeof(dir), "%s", etcdh_dir(etcdh_cluster_member(cl, 0)));
	etcdh_cluster_destroy(cl);
	CL = NULL;
	assert_int_equal(stat(dir, &sb), -1);
}

static void
test_auth(void **state)
{
	etcdh *a = H;
	char *v = NULL;

	(void) state;
	assert_int_equal(etcdh_add_user(a, NULL, "app", "apppw", "/app/"), 0);
	assert_int_equal(anonymous_put(etcdh_endpoint(a)), 200);
	assert_int_equal(etcdh_enable_auth(a, "rootpw"), 0);
	assert_int_equal(anonymous_put(etcdh_endpoint(a)), 400);
	assert_int_equal(etcdh_put(a, "/app/x", "1"), 0);
	assert_int_equal(etcdh_get(a, "/app/x", &v), 1);
	assert_string_equal(v, "1");
	free(v);
	/* the root token expires after 1 s idle: the harness logs in again */
	sleep(3);
	assert_int_equal(etcdh_count(a, "/app/"), 1);
	assert_int_equal(etcdh_revoke_all(a), 0);
	/* restarted etcd forgets tokens; health and requests still work */
	assert_int_equal(etcdh_restart(a), 0);
	assert_int_equal(etcdh_get(a, "/app/x", NULL), 1);
}

static void
test_timeout_mult(void **state)
{
	(void) state;
	setenv("CLUSTER_TEST_TIMEOUT_MULTIPLIER", "2.5", 1);
	assert_true(etcdh_timeout_mult() == 2.5);
	setenv("CLUSTER_TEST_TIMEOUT_MULTIPLIER", "junk", 1);
	assert_true(etcdh_timeout_mult() == 1.0);
	unsetenv("CLUSTER_TEST_TIMEOUT_MULTIPLIER");
	assert_true(etcdh_timeout_mult() == 1.0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start_and_kv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_restart_keeps_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_proxy, setup, teardown),
		cmocka_unit_test_teardown(test_cluster, teardown_cluster),
		cmocka_unit_test_setup_teardown(test_auth, setup_auth, teardown),
		/* last: it changes the multiplier */
		cmocka_unit_test(test_timeout_mult),
	};
	int rc;

	if(etcdh_skip())
	{
		return 0;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
