/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection advisor against a real etcd (one private etcd for the
 * program, a fresh cluster key per test): three members report; every
 * member sees every status; each member's advice equals its rows of the
 * pure plan computed from the same snapshot; a draining member is
 * evacuated; a dead member's status disappears with its lease; garbage
 * values are left out. Statuses reach only members that use the advisor
 * (others hold no status watch at all), also one that starts using it
 * after its join; status writes are spaced by the report policy.
 * Members that join at different times agree on who is held down (by the
 * age each status publishes), and an idle member keeps that age fresh
 * through its hold-down, then stops writing.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <cjson/cJSON.h>

#include "etcdharness.h"
#include "etcdtest.h"
#include "report-policy.h"
#include "testutil.h"
#include "advisor.h"

static int key_seq;

static const char *
new_key(char *buf, size_t size)
{
	snprintf(buf, size, "itadv-%ld-%d", (long) getpid(), ++key_seq);
	return buf;
}

/* A joined advisor user with the advisor configuration cfg. */
static CLUSTER *
member_with(const char *key, const char *id, const CLUSTERADVISORCONFIG *cfg)
{
	CLUSTER *c = tu_cluster(key);

	assert_non_null(c);
	assert_int_equal(cluster_set_instance(c, id), 0);
	assert_int_equal(cluster_set_registry(c, etcdh_endpoint(et_etcd)), 0);
	assert_int_equal(cluster_set_ttl(c, 3), 0);
	assert_int_equal(cluster_set_advisor_config(c, cfg), 0);
	if(cluster_join(c))
	{
		fail_msg("%s cannot join: %s", id, strerror(errno));
	}
	return c;
}

/* The same with the defaults, reports every 100 ms. */
static CLUSTER *
member(const char *key, const char *id)
{
	CLUSTERADVISORCONFIG cfg;

	cluster_advisor_config_init(&cfg);
	cfg.report_interval_ms = 100;
	return member_with(key, id, &cfg);
}

/* The member list as advisor nodes (ids point into the list). */
static void
nodes_of(const CLUSTERMEMBER *m, size_t n, cluster__adv_node *v)
{
	size_t i;

	for(i = 0; i < n; i++)
	{
		memset(&v[i], 0, sizeof(v[i]));
		v[i].id = m[i].id;
		v[i].workers = m[i].workers;
		v[i].passive = m[i].passive;
		v[i].has_status = m[i].has_status;
		v[i].load = m[i].load;
		v[i].capacity = m[i].capacity;
	}
}

/* Wait until c sees exactly the n (id, load, capacity) statuses given. */
static int
sees(CLUSTER *c, size_t n, const char *const *id, const long long *load, const long long *cap, double seconds)
{
	double deadline = etcdh_now() + seconds * etcdh_timeout_mult();

	do
	{
		CLUSTERMEMBER *m = NULL;
		size_t count = 0, i, ok = 0;

		if(!cluster_members(c, &m, &count) && count == n)
		{
			for(i = 0; i < n; i++)
			{
				/* each member is checked from every member, so the registry has it */
				ok += !strcmp(m[i].id, id[i]) && m[i].has_status == (load[i] >= 0) && (load[i] < 0 || (m[i].load == load[i] && m[i].capacity == cap[i]));
			}
		}
		cluster_members_free(m);
		if(ok == n)
		{
			return 1;
		}
		usleep(20000);
	}
	while(etcdh_now() < deadline);
	{
		/* say what was seen instead */
		CLUSTERMEMBER *m = NULL;
		size_t count = 0, i;

		if(!cluster_members(c, &m, &count))
		{
			for(i = 0; i < count; i++)
			{
				fprintf(stderr, "# seen: %s status %d load %lld capacity %lld address '%s' self %d\n", m[i].id, m[i].has_status, m[i].load, m[i].capacity, m[i].address, m[i].self);
			}
			cluster_members_free(m);
		}
	}
	return 0;
}

/* This member's advice equals its rows of the plan from its own snapshot. */
static long long
advice_matches_plan(CLUSTER *c, const char *self, long long *rows_total)
{
	CLUSTERMEMBER *m = NULL;
	CLUSTERREDIRECT *r = NULL;
	cluster__adv_node v[16];
	cluster__adv_plan p;
	CLUSTERADVISORCONFIG cfg;
	size_t n = 0, nr = 0, i, k = 0;
	long long sum = 0;

	cluster_advisor_config_init(&cfg);
	cfg.report_interval_ms = 100;
	assert_int_equal(cluster_members(c, &m, &n), 0);
	assert_true(n <= 16);
	nodes_of(m, n, v);
	assert_int_equal(cluster__adv_plan_compute(&p, v, n, &cfg), 0);
	assert_int_equal(cluster_advice(c, &r, &nr), 0);
	for(i = 0; i < p.nrows; i++)
	{
		if(strcmp(m[p.rows[i].from].id, self))
		{
			continue;
		}
		assert_true(k < nr);
		assert_string_equal(r[k].target, m[p.rows[i].to].id);
		assert_string_equal(r[k].address, m[p.rows[i].to].address);
		assert_int_equal(r[k].count, p.rows[i].count);
		sum += r[k].count;
		k++;
	}
	assert_int_equal(k, nr);
	cluster__adv_plan_free(&p);
	cluster_redirects_free(r);
	cluster_members_free(m);
	*rows_total = sum;
	return (long long) nr;
}

static void
test_three_members(void **state)
{
	static const char *const ids[3] = { "a", "b", "c" };
	char key[64];
	CLUSTER *c[3];
	long long load[3] = { 900, 0, 0 }, cap[3] = { -1, -1, -1 }, total;
	int i;

	(void) state;
	new_key(key, sizeof(key));
	for(i = 0; i < 3; i++)
	{
		char addr[32];

		c[i] = member(key, ids[i]);
		snprintf(addr, sizeof(addr), "ws://%s:80", ids[i]);
		assert_int_equal(cluster_set_address(c[i], addr), 0);
		assert_int_equal(cluster_report(c[i], load[i], cap[i]), 0);
	}
	for(i = 0; i < 3; i++)
	{
		assert_true(sees(c[i], 3, ids, load, cap, 10));
	}
	{
		/* addresses travel too */
		CLUSTERMEMBER *m = NULL;
		size_t n = 0;

		assert_int_equal(cluster_peers(c[1], &m, &n), 0);
		assert_int_equal(n, 2);
		assert_string_equal(m[0].address, "ws://a:80");
		assert_string_equal(m[1].address, "ws://c:80");
		cluster_members_free(m);
	}
	/* a sends 586 (down to its band edge, 300 + 15, less the deadband
	 * margin of 1) to b and c; b and c send nothing */
	assert_int_equal(advice_matches_plan(c[0], "a", &total), 2);
	assert_int_equal(total, 586);
	assert_int_equal(advice_matches_plan(c[1], "b", &total), 0);
	assert_int_equal(advice_matches_plan(c[2], "c", &total), 0);

	/* draining: b holds 300 and goes out of service; its rows evacuate it */
	load[0] = 300;
	load[1] = 300;
	load[2] = 300;
	cap[1] = 0;
	assert_int_equal(cluster_report(c[0], 300, -1), 0);
	assert_int_equal(cluster_report(c[1], 300, 0), 0);
	assert_int_equal(cluster_report(c[2], 300, -1), 0);
	for(i = 0; i < 3; i++)
	{
		assert_true(sees(c[i], 3, ids, load, cap, 10));
	}
	assert_int_equal(advice_matches_plan(c[1], "b", &total), 2);
	assert_int_equal(total, 300);
	assert_int_equal(advice_matches_plan(c[0], "a", &total), 0);
	{
		/* nobody picks the draining member */
		CLUSTERMEMBER t;

		for(i = 0; i < 20; i++)
		{
			assert_int_equal(cluster_pick_target(c[2], &t), 0);
			assert_string_not_equal(t.id, "b");
		}
	}
	/* b leaves: its status goes with it */
	assert_int_equal(cluster_destroy(c[1]), 0);
	{
		static const char *const ids2[2] = { "a", "c" };
		long long l2[2] = { 300, 300 }, c2[2] = { -1, -1 };

		assert_true(sees(c[0], 2, ids2, l2, c2, 10));
	}
	cluster_destroy(c[0]);
	cluster_destroy(c[2]);
}

/* ------------------------------------------------------------------ */
/* a dead member: a lease-bound record nobody keeps alive              */
/* ------------------------------------------------------------------ */

static char *
b64(const char *s)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s), i, o = 0;
	char *out = malloc(4 * (n / 3 + 1) + 1);
	const unsigned char *u = (const unsigned char *) s;

	assert_non_null(out);
	for(i = 0; i < n; i += 3)
	{
		unsigned v = (unsigned) u[i] << 16 | (i + 1 < n ? (unsigned) u[i + 1] << 8 : 0) | (i + 2 < n ? u[i + 2] : 0);

		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = 0;
	return out;
}

/* POST body to etcd's path; its answer (truncated to 4 KiB) into out.
 * 0 when etcd answered, -1 when it did not. */
static int
post(const char *path, const char *body, char *out)
{
	char url[512], *reply = NULL;
	long status;

	snprintf(url, sizeof(url), "%s%s", etcdh_endpoint(et_etcd), path);
	status = etcdh_request(NULL, url, body, 5000L, &reply);
	snprintf(out, 4096, "%s", reply ? reply : "");
	free(reply);
	return status ? 0 : -1;
}

static void
put_with_lease(const char *key, const char *value, int ttl)
{
	char out[4096], body[1024];
	cJSON *j, *id;
	char *k = b64(key), *v = b64(value);

	snprintf(body, sizeof(body), "{\"TTL\":%d}", ttl);
	assert_int_equal(post("v3/lease/grant", body, out), 0);
	j = cJSON_Parse(out);
	assert_non_null(j);
	id = cJSON_GetObjectItemCaseSensitive(j, "ID");
	assert_true(cJSON_IsString(id));
	snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"%s\"}", k, v, id->valuestring);
	cJSON_Delete(j);
	assert_int_equal(post("v3/kv/put", body, out), 0);
	assert_non_null(strstr(out, "header"));
	free(k);
	free(v);
}

static void
test_dead_and_garbage(void **state)
{
	static const char *const with_ghost[4] = { "a", "bad", "ghost", "ghost2" };
	static const char *const alone[2] = { "a", "bad" };
	long long l3[4] = { 10, -1, 5, 6 }, c3[4] = { -1, -1, -1, -1 };
	long long l2[2] = { 10, -1 }, c2[2] = { -1, -1 };
	char key[64], path[256];
	CLUSTER *a;
	long long total;

	(void) state;
	new_key(key, sizeof(key));
	a = member(key, "a");
	assert_int_equal(cluster_report(a, 10, -1), 0);
	tu_reset();
	/* garbage: not JSON at all (left out, logged) and a bad status (kept
	 * as a member without a status) */
	snprintf(path, sizeof(path), "/%s/production/junk", key);
	assert_int_equal(etcdh_put(et_etcd, path, "not json {"), 0);
	snprintf(path, sizeof(path), "/%s/production/bad", key);
	assert_int_equal(etcdh_put(et_etcd, path, "{\"workers\":1,\"load\":-5,\"capacity\":3}"), 0);
	/* ... and a status key that is not JSON: ignored (logged), the member
	 * stays, without a status */
	snprintf(path, sizeof(path), "/%s/production@status/bad", key);
	assert_int_equal(etcdh_put(et_etcd, path, "not json {"), 0);
	/* a member that dies: its lease is never kept alive; one written by a
	 * version from before the status keys (status in the member value),
	 * one with a status key of its own */
	snprintf(path, sizeof(path), "/%s/production/ghost", key);
	put_with_lease(path, "{\"workers\":1,\"address\":\"ws://ghost\",\"load\":5,\"capacity\":-1}", 2);
	snprintf(path, sizeof(path), "/%s/production/ghost2", key);
	put_with_lease(path, "{\"workers\":1}", 2);
	snprintf(path, sizeof(path), "/%s/production@status/ghost2", key);
	put_with_lease(path, "{\"address\":\"ws://ghost2\",\"load\":6,\"capacity\":-1}", 2);
	assert_true(sees(a, 4, with_ghost, l3, c3, 10));
	assert_true(tu_logged("junk"));
	assert_true(tu_logged("ignoring the status of bad"));
	/* garbage never reaches the plan: a's advice is computed without it */
	assert_int_equal(advice_matches_plan(a, "a", &total), 0);
	/* the ghosts and their statuses disappear with their leases (TTL 2 s) */
	assert_true(sees(a, 2, alone, l2, c2, 10));
	cluster_destroy(a);
}

/* cluster_report() from another thread while the object joins, leaves
 * and switches registries (which frees the engine's data): the engine
 * hook the report triggers must never run on freed data (ASan/TSan runs
 * of this test catch it if it does). */
static int stop_reporting; /* atomic builtins only */
static int report_failures;

/* Runs on its own thread: no cmocka asserts here (they longjmp into the
 * main thread's context); failures are counted and checked after join. */
static void *
reporter(void *arg)
{
	CLUSTER *c = arg;
	long long i = 0;

	while(!__atomic_load_n(&stop_reporting, __ATOMIC_ACQUIRE))
	{
		/* thousands of reports per join/leave cycle, but paced: a thread
		 * spinning flat out starves the library's threads under valgrind */
		struct timespec pace = { 0, 50000 };

		if(cluster_report(c, i++ % 100, CLUSTER_CAPACITY_UNBOUNDED))
		{
			__atomic_add_fetch(&report_failures, 1, __ATOMIC_RELAXED);
		}
		nanosleep(&pace, NULL);
	}
	return NULL;
}

static void
test_report_races_registry_switch(void **state)
{
	char key[64];
	CLUSTER *c;
	pthread_t t;
	int i;

	(void) state;
	c = member(new_key(key, sizeof(key)), "racer");
	stop_reporting = 0;
	report_failures = 0;
	assert_int_equal(pthread_create(&t, NULL, reporter, c), 0);
	for(i = 0; i < 15; i++)
	{
		if(cluster_join(c))
		{
			fail_msg("join %d failed: %s", i, strerror(errno));
		}
		assert_int_equal(cluster_total(c), 1);
		assert_int_equal(cluster_leave(c), 0);
		assert_int_equal(cluster_set_registry(c, NULL), 0);
		assert_int_equal(cluster_set_registry(c, etcdh_endpoint(et_etcd)), 0);
	}
	__atomic_store_n(&stop_reporting, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	assert_int_equal(report_failures, 0);
	cluster_destroy(c);
}

/* ------------------------------------------------------------------ */
/* who watches statuses, and how often they are written                */
/* ------------------------------------------------------------------ */

/* A member that never touches the advisor (only joins; may report). */
static CLUSTER *
plain_member(const char *key, const char *id)
{
	CLUSTER *c = tu_cluster(key);

	assert_non_null(c);
	assert_int_equal(cluster_set_instance(c, id), 0);
	assert_int_equal(cluster_set_registry(c, etcdh_endpoint(et_etcd)), 0);
	assert_int_equal(cluster_set_ttl(c, 3), 0);
	if(cluster_join(c))
	{
		fail_msg("%s cannot join: %s", id, strerror(errno));
	}
	return c;
}

/* Wait until the metric equals want; its last value. */
static double
await_metric_eq(const char *name, double want, double seconds)
{
	double deadline = etcdh_now() + seconds * etcdh_timeout_mult(), v;

	while((v = et_metric(name, NULL)) != want && etcdh_now() < deadline)
	{
		usleep(20000);
	}
	return v;
}

/* Wait until etcd holds key with a value containing needle. */
static int
await_value(const char *key, const char *needle, double seconds)
{
	double deadline = etcdh_now() + seconds * etcdh_timeout_mult();

	do
	{
		char *v = NULL;
		int hit = etcdh_get(et_etcd, key, &v) == 1 && strstr(v, needle);

		free(v);
		if(hit)
		{
			return 1;
		}
		usleep(20000);
	}
	while(etcdh_now() < deadline);
	return 0;
}

/* The status c's view shows for id: 1 with *load set, 0 none, -1 no such
 * member. */
static int
status_seen(CLUSTER *c, const char *id, long long *load)
{
	CLUSTERMEMBER *m = NULL;
	size_t n = 0, i;
	int r = -1;

	assert_int_equal(cluster_members(c, &m, &n), 0);
	for(i = 0; i < n; i++)
	{
		if(!strcmp(m[i].id, id))
		{
			r = m[i].has_status;
			*load = m[i].load;
		}
	}
	cluster_members_free(m);
	return r;
}

/*
 * A member's status storm reaches only members that use the advisor:
 * two members that never use it hold one watch each (members) and none
 * on statuses, and their views carry no statuses while one of them
 * reports; a third member that starts using the advisor after its join
 * sees the statuses from its first pick on (the pick waits for the first
 * status read) and holds the second watch. (Before statuses had keys of
 * their own, every report went to every member.)
 */
static void
test_status_storm_reaches_only_advisor_users(void **state)
{
	const char *watchers = "etcd_debugging_mvcc_watcher_total";
	char key[64], skey[256], want[64];
	CLUSTER *quiet, *busy, *late;
	CLUSTERMEMBER t;
	double w0;
	long long k, load = -1;

	(void) state;
	new_key(key, sizeof(key));
	snprintf(skey, sizeof(skey), "/%s/production@status/busy", key);
	w0 = et_metric(watchers, NULL);
	quiet = plain_member(key, "quiet");
	busy = plain_member(key, "busy");
	assert_int_equal(cluster_set_address(busy, "ws://busy:1"), 0);
	assert_true(await_metric_eq(watchers, w0 + 2, 5) == w0 + 2);
	for(k = 1; k <= 30; k++)
	{
		struct timespec pace = { 0, 20 * 1000000L };

		assert_int_equal(cluster_report(busy, k * 1000, -1), 0);
		nanosleep(&pace, NULL);
	}
	/* the default policy writes the last report within a second or so */
	assert_true(await_value(skey, "\"load\":30000", 10));
	assert_int_equal(status_seen(quiet, "busy", &load), 0);
	assert_true(et_metric(watchers, NULL) == w0 + 2);

	late = plain_member(key, "late");
	assert_int_equal(status_seen(late, "busy", &load), 0);
	assert_int_equal(cluster_pick_target(late, &t), 0);
	/* the only member with a status, and seen right away */
	assert_string_equal(t.id, "busy");
	assert_int_equal(status_seen(late, "busy", &load), 1);
	assert_int_equal(load, 30000);
	assert_true(await_metric_eq(watchers, w0 + 4, 5) == w0 + 4);
	/* later reports reach it through its status watch */
	assert_int_equal(cluster_report(busy, 77, -1), 0);
	snprintf(want, sizeof(want), "\"load\":77");
	assert_true(await_value(skey, want, 10));
	{
		double deadline = etcdh_now() + 5 * etcdh_timeout_mult();

		while((status_seen(late, "busy", &load) != 1 || load != 77) && etcdh_now() < deadline)
		{
			usleep(20000);
		}
		assert_int_equal(load, 77);
	}
	assert_int_equal(status_seen(quiet, "busy", &load), 0);
	cluster_destroy(late);
	cluster_destroy(busy);
	cluster_destroy(quiet);
}

#define BATCH_N 60

/* Whether every one of the n members in c shows its status with load
 * base + its index (ids "s00".."s59" in order, capacity unbounded). */
static int
all_loads_seen(CLUSTER **c, size_t n, long long base, double seconds)
{
	char idbuf[BATCH_N][8];
	const char *id[BATCH_N];
	long long load[BATCH_N], cap[BATCH_N];
	double deadline = etcdh_now() + seconds * etcdh_timeout_mult();
	size_t i;

	assert_true(n <= BATCH_N);
	for(i = 0; i < n; i++)
	{
		snprintf(idbuf[i], sizeof(idbuf[i]), "s%02zu", i);
		id[i] = idbuf[i];
		load[i] = base + (long long) i;
		cap[i] = CLUSTER_CAPACITY_UNBOUNDED;
	}
	for(i = 0; i < n; i++)
	{
		/* one deadline for all of them, as sees() scales it */
		double left = (deadline - etcdh_now()) / etcdh_timeout_mult();

		if(!sees(c[i], n, id, load, cap, left > 0 ? left : 0))
		{
			fprintf(stderr, "# member %zu does not see every last load\n", i);
			return 0;
		}
	}
	return 1;
}

/*
 * From 25 members on a status watcher takes the statuses in batches
 * (cluster__report_poll_ms(): 600 ms here): 60 members whose loads jump by more than
 * the band five times cost etcd far fewer watch messages than one per
 * write and watcher (what a live watch costs: about 60 per write here;
 * the test allows half of that),
 * and every member still ends seeing every member's last load.
 */
static void
test_status_batches_past_fifty(void **state)
{
	const char *sent = "grpc_server_msg_sent_total";
	const char *watch = "grpc_method=\"Watch\"";
	char key[64], id[BATCH_N][8];
	CLUSTER *c[BATCH_N];
	CLUSTERADVISORCONFIG cfg;
	cluster__report_policy pol;
	double m0, p0, msgs, puts;
	int i, k;

	(void) state;
	cluster_advisor_config_init(&cfg);
	cfg.report_interval_ms = 100; /* as member() */
	cluster__report_policy_of(&pol, &cfg);
	assert_true(cluster__report_poll_ms(&pol, BATCH_N) > 0);
	new_key(key, sizeof(key));
	for(i = 0; i < BATCH_N; i++)
	{
		snprintf(id[i], sizeof(id[i]), "s%02d", i);
		c[i] = member(key, id[i]);
		assert_int_equal(cluster_report(c[i], 1000 + i, -1), 0);
	}
	/* the first writes settled before counting */
	assert_true(all_loads_seen(c, BATCH_N, 1000, 15));
	m0 = et_metric(sent, watch);
	p0 = et_metric("etcd_mvcc_put_total", NULL);
	for(k = 1; k <= 5; k++)
	{
		struct timespec pace = { 0, 200 * 1000000L };

		for(i = 0; i < BATCH_N; i++)
		{
			assert_int_equal(cluster_report(c[i], (k % 2 ? 3000 : 1000) + i, -1), 0);
		}
		nanosleep(&pace, NULL);
	}
	for(i = 0; i < BATCH_N; i++)
	{
		assert_int_equal(cluster_report(c[i], 9000 + i, -1), 0);
	}
	assert_true(all_loads_seen(c, BATCH_N, 9000, 15));
	msgs = et_metric(sent, watch) - m0;
	puts = et_metric("etcd_mvcc_put_total", NULL) - p0;
	fprintf(stderr, "# %d members: %.0f status writes, %.0f watch messages (%.1f per write; live: about %d)\n", BATCH_N, puts, msgs, msgs / puts, BATCH_N);
	assert_true(puts >= BATCH_N);
	/* at most half of a live watch's cost (one message per write and
	 * watcher); about a tenth here on an idle machine, a third under
	 * ThreadSanitizer beside another test, where the writes stretch over
	 * more polls */
	assert_true(msgs < 0.5 * BATCH_N * puts);
	for(i = 0; i < BATCH_N; i++)
	{
		cluster_destroy(c[i]);
	}
}

/*
 * Where a member saves less than one write token (cluster__report_burst()
 * < 1: past 200 members by default; here 10 members at 0.8 writes/s,
 * interval 12.5 s, slot period 13.3 s) every status write waits for the
 * member's slot, its
 * first one too: 10 members reporting at once write their statuses
 * spread over one interval, each at its own phase, and every one of them
 * within the interval (a first write whose slot was counted from each
 * new look at the clock would wait for ever).
 */
#define SLOT_N 10
static void
test_first_writes_in_slots(void **state)
{
	char key[64], id[SLOT_N][8], skey[256];
	CLUSTER *c[SLOT_N];
	CLUSTERADVISORCONFIG cfg;
	cluster__report_policy pol;
	double t0, seen[SLOT_N], first = 1e300, last = 0, deadline;
	int64_t interval, phase[SLOT_N], gap = 0;
	int i, j, left = SLOT_N;

	(void) state;
	cluster_advisor_config_init(&cfg);
	cfg.report_interval_ms = 100;
	cfg.status_writes_per_second = 0.8;
	cluster__report_policy_of(&pol, &cfg);
	assert_true(cluster__report_burst(&pol, SLOT_N) < 1.0);
	assert_int_equal(cluster__report_interval_for(&pol, SLOT_N), 12500);
	interval = cluster__report_grid(&pol, SLOT_N, 0); /* the slots' period: 12.5 s rounded up */
	assert_int_equal(interval, 13312);
	new_key(key, sizeof(key));
	for(i = 0; i < SLOT_N; i++)
	{
		snprintf(id[i], sizeof(id[i]), "f%d", i);
		phase[i] = (int64_t) (cluster__report_phase(id[i]) % (uint64_t) interval);
		c[i] = member_with(key, id[i], &cfg);
		seen[i] = 0;
	}
	/* the ids' slots lie several seconds apart wherever the clock cuts
	 * the interval: the largest gap between two phases, going round,
	 * leaves at least 4 s for the others */
	for(i = 0; i < SLOT_N; i++)
	{
		int64_t next = interval; /* the nearest phase after phase[i], round */

		for(j = 0; j < SLOT_N; j++)
		{
			int64_t d = (phase[j] - phase[i] + interval) % interval;

			next = d > 0 && d < next ? d : next;
		}
		gap = next > gap ? next : gap;
	}
	assert_true(interval - gap >= 4000);
	t0 = etcdh_now();
	for(i = 0; i < SLOT_N; i++)
	{
		assert_int_equal(cluster_report(c[i], 100 + i, -1), 0);
	}
	deadline = t0 + (double) interval / 1000.0 + 2.0 * etcdh_timeout_mult();
	while(left > 0 && etcdh_now() < deadline)
	{
		for(i = 0; i < SLOT_N; i++)
		{
			char *v = NULL;

			snprintf(skey, sizeof(skey), "/%s/production@status/%s", key, id[i]);
			if(!seen[i] && etcdh_get(et_etcd, skey, &v) == 1)
			{
				seen[i] = etcdh_now();
				left--;
			}
			free(v);
		}
		usleep(50000);
	}
	for(i = 0; i < SLOT_N; i++)
	{
		if(!seen[i])
		{
			fail_msg("%s never wrote its first status (interval %lld ms)", id[i], (long long) interval);
		}
		first = seen[i] < first ? seen[i] : first;
		last = seen[i] > last ? seen[i] : last;
	}
	fprintf(stderr, "# first statuses of %d members written %.1f .. %.1f s after the reports (their slots cover at least %.1f s)\n", SLOT_N, first - t0, last - t0,
		(double) (interval - gap) / 1000.0);
	/* spread, not all at once */
	assert_true(last - first >= 2.0);
	for(i = 0; i < SLOT_N; i++)
	{
		cluster_destroy(c[i]);
	}
}

/* With a low cluster-wide budget (status_writes_per_second), a member
 * whose load changes every 20 ms writes its status at most once per
 * members / budget seconds, and still writes the final value; a member
 * that starts draining (capacity 0) writes that at once. */
static void
test_report_policy_spaces_writes(void **state)
{
	char key[64], skey[256];
	CLUSTER *c;
	CLUSTERADVISORCONFIG cfg;
	double puts0, puts, t0, took, allowed;
	long long k;

	(void) state;
	new_key(key, sizeof(key));
	snprintf(skey, sizeof(skey), "/%s/production@status/p", key);
	c = tu_cluster(key);
	assert_non_null(c);
	assert_int_equal(cluster_set_instance(c, "p"), 0);
	assert_int_equal(cluster_set_registry(c, etcdh_endpoint(et_etcd)), 0);
	assert_int_equal(cluster_set_ttl(c, 3), 0);
	cluster_advisor_config_init(&cfg);
	cfg.report_interval_ms = 100;
	cfg.status_writes_per_second = 2.0; /* one member: every 500 ms */
	cfg.report_deadband = 0.0;          /* the last report must show exactly */
	assert_int_equal(cluster_set_advisor_config(c, &cfg), 0);
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(cluster_report(c, 1, -1), 0);
	assert_true(await_value(skey, "\"load\":1,", 5));
	puts0 = et_metric("etcd_mvcc_put_total", NULL);
	t0 = etcdh_now();
	for(k = 2; k <= 100; k++)
	{
		struct timespec pace = { 0, 20 * 1000000L };

		assert_int_equal(cluster_report(c, k * 1000, -1), 0);
		nanosleep(&pace, NULL);
	}
	took = etcdh_now() - t0;
	assert_true(await_value(skey, "\"load\":100000", 5));
	puts = et_metric("etcd_mvcc_put_total", NULL) - puts0;
	/* one write per 500 ms of the storm, plus the tokens saved before it
	 * (the burst), plus the last one after it; unpaced it would be 99 */
	allowed = took / 0.5 + CLUSTER__REPORT_BURST + 1;
	fprintf(stderr, "# %lld reports in %.2f s: %.0f status writes (at most %.1f allowed)\n", k - 2, took, puts, allowed);
	assert_true(puts >= 2);
	assert_true(puts <= allowed);

	/* draining is written at once, whatever the interval (here 20 s) */
	cfg.status_writes_per_second = 0.05;
	assert_int_equal(cluster_set_advisor_config(c, &cfg), 0);
	assert_int_equal(cluster_report(c, 5, -1), 0);
	assert_int_equal(cluster_report(c, 5, 0), 0);
	t0 = etcdh_now();
	assert_true(await_value(skey, "\"capacity\":0", 3));
	fprintf(stderr, "# draining written after %.3f s (interval 20 s)\n", etcdh_now() - t0);
	cluster_destroy(c);
}

/* A passive observer that uses the advisor (a load balancer, say) watches
 * statuses through a proxy; the proxy cuts its connections while a
 * member reports twice; once they are back, the status watch resumes
 * from the revision it had reached, so the observer ends with the last
 * report without any re-read of the prefix. After a cut during which the
 * history was compacted, it reads both prefixes again. */
static void
test_status_watch_resumes_after_a_cut(void **state)
{
	char key[64], skey[256];
	CLUSTER *busy, *lb;
	CLUSTERMEMBER t;
	etcdh_proxy *p;
	double deadline;
	long long load = -1, ranges0;

	(void) state;
	new_key(key, sizeof(key));
	snprintf(skey, sizeof(skey), "/%s/production@status/busy", key);
	busy = plain_member(key, "busy");
	assert_int_equal(cluster_report(busy, 10, -1), 0);
	assert_true(await_value(skey, "\"load\":10,", 5));

	assert_int_equal(etcdh_proxy_start(et_etcd, &p), 0);
	lb = tu_cluster(key);
	assert_non_null(lb);
	assert_int_equal(cluster_set_instance(lb, "lb"), 0);
	assert_int_equal(cluster_set_registry(lb, etcdh_proxy_endpoint(p)), 0);
	assert_int_equal(cluster_set_ttl(lb, 3), 0);
	assert_int_equal(cluster_join_passive(lb), 0);
	assert_int_equal(cluster_pick_target(lb, &t), 0);
	assert_string_equal(t.id, "busy");
	assert_int_equal(status_seen(lb, "busy", &load), 1);
	assert_int_equal(load, 10);

	etcdh_proxy_cut(p);
	assert_int_equal(cluster_report(busy, 20, -1), 0);
	assert_true(await_value(skey, "\"load\":20,", 5));
	assert_int_equal(cluster_report(busy, 30, -1), 0);
	assert_true(await_value(skey, "\"load\":30,", 5));
	/* (the harness's own reads are ranges too: counted from here) */
	ranges0 = (long long) et_metric("grpc_server_started_total", "grpc_method=\"Range\"");
	etcdh_proxy_restore(p);
	deadline = etcdh_now() + 10 * etcdh_timeout_mult();
	while((status_seen(lb, "busy", &load) != 1 || load != 30) && etcdh_now() < deadline)
	{
		usleep(20000);
	}
	assert_int_equal(load, 30);
	/* resumed by revision: nobody re-read a prefix */
	assert_int_equal((long long) et_metric("grpc_server_started_total", "grpc_method=\"Range\""), ranges0);

	/* again, but the history is compacted meanwhile: both prefixes are
	 * read again, and the last report shows */
	tu_reset();
	etcdh_proxy_cut(p);
	assert_int_equal(cluster_report(busy, 40, -1), 0);
	assert_true(await_value(skey, "\"load\":40,", 5));
	assert_int_equal(etcdh_compact(et_etcd), 0);
	etcdh_proxy_restore(p);
	deadline = etcdh_now() + 10 * etcdh_timeout_mult();
	while((status_seen(lb, "busy", &load) != 1 || load != 40) && etcdh_now() < deadline)
	{
		usleep(20000);
	}
	assert_int_equal(load, 40);
	assert_true(tu_logged("was compacted"));
	cluster_destroy(lb);
	etcdh_proxy_stop(p);
	cluster_destroy(busy);
}

/* ------------------------------------------------------------------ */
/* hold-down: one age per member, whoever looks                         */
/* ------------------------------------------------------------------ */

/* Every member's whole plan, as c computes it now. */
static void
plan_of(CLUSTER *c, CLUSTERPLANENTRY **e, size_t *n)
{
	assert_int_equal(cluster_plan(c, e, n), 0);
}

/* Members from..to-1 join with cfg, publish ws://ID:80 and report their
 * load and capacity. */
static void
join_reporting(CLUSTER **c, const char *key, const char *const *ids, const long long *load, const long long *cap, const CLUSTERADVISORCONFIG *cfg,
	int from, int to)
{
	int i;

	for(i = from; i < to; i++)
	{
		char addr[32];

		c[i] = member_with(key, ids[i], cfg);
		snprintf(addr, sizeof(addr), "ws://%s:80", ids[i]);
		assert_int_equal(cluster_set_address(c[i], addr), 0);
		assert_int_equal(cluster_report(c[i], load[i], cap[i]), 0);
	}
}

/*
 * Two members run past their hold-down, then two more join while the
 * first two already watch: all four must hold down the newcomers, and
 * only them, from the first plan on, and their advice rows must add up
 * to the plan's moves. Before the published age each instance timed
 * joins itself: the newcomers counted everyone in their first view as
 * established (themselves too) and planned among four while the first
 * two planned between two (the demo's rows 239 + 318 + 477 against a
 * plan of 716).
 */
static void
test_newcomers_held_down_alike(void **state)
{
	static const char *const ids[4] = { "a", "b", "c", "d" };
	long long load[4] = { 900, 100, 0, 0 }, cap[4] = { -1, -1, -1, -1 };
	CLUSTERADVISORCONFIG cfg;
	CLUSTERPLANENTRY *ref = NULL;
	size_t nref = 0;
	long long rows = 0, shed = 0;
	double hold_s, joined;
	char key[64];
	CLUSTER *c[4];
	int i, k;

	(void) state;
	new_key(key, sizeof(key));
	cluster_advisor_config_init(&cfg);
	cfg.report_interval_ms = 100;
	/* long enough for the newcomers to be seen everywhere within it */
	cfg.hold_down_ms = (int) (4000 * etcdh_timeout_mult());
	cfg.slow_start_ms = 0;
	hold_s = cfg.hold_down_ms / 1000.0;
	joined = etcdh_now();
	join_reporting(c, key, ids, load, cap, &cfg, 0, 2);
	for(i = 0; i < 2; i++)
	{
		assert_true(sees(c[i], 2, ids, load, cap, 10));
		/* the first two take their first plan now, with each other */
		plan_of(c[i], &ref, &nref);
		cluster_plan_free(ref);
	}
	/* the first two are past their hold-down (a time, not an event) */
	while(etcdh_now() < joined + hold_s + 1.0)
	{
		usleep(50000);
	}
	joined = etcdh_now();
	join_reporting(c, key, ids, load, cap, &cfg, 2, 4);
	for(i = 0; i < 4; i++)
	{
		assert_true(sees(c[i], 4, ids, load, cap, 10));
	}
	plan_of(c[0], &ref, &nref);
	assert_int_equal(nref, 4);
	for(i = 0; i < 4; i++)
	{
		CLUSTERPLANENTRY *e = NULL;
		CLUSTERREDIRECT *r = NULL;
		size_t n = 0, nr = 0, j;

		plan_of(c[i], &e, &n);
		assert_int_equal(n, 4);
		for(k = 0; k < 4; k++)
		{
			if(e[k].member != ref[k].member || e[k].share != ref[k].share || e[k].shed != ref[k].shed || e[k].inflow != ref[k].inflow)
			{
				fail_msg("%s and a plan %s differently: member %d/%d share %lld/%lld shed %lld/%lld inflow %lld/%lld", ids[i], e[k].id, e[k].member,
					ref[k].member, e[k].share, ref[k].share, e[k].shed, ref[k].shed, e[k].inflow, ref[k].inflow);
			}
			/* the first two take part, the newcomers are held down */
			assert_int_equal(e[k].member, k < 2);
		}
		assert_int_equal(cluster_advice(c[i], &r, &nr), 0);
		for(j = 0; j < nr; j++)
		{
			rows += r[j].count;
		}
		cluster_redirects_free(r);
		cluster_plan_free(e);
	}
	for(k = 0; k < 4; k++)
	{
		shed += ref[k].shed;
	}
	cluster_plan_free(ref);
	/* a sends b its excess between the two of them, nothing more */
	assert_true(shed > 0);
	assert_int_equal(rows, shed);
	if(etcdh_now() >= joined + hold_s)
	{
		fail_msg("too slow: the newcomers' hold-down ended before every plan was taken (raise the timeout multiplier)");
	}
	for(i = 0; i < 4; i++)
	{
		cluster_destroy(c[i]);
	}
}

/* The age ("up_ms") c's status key holds now; -1 when none. */
static long long
status_up_ms(const char *skey)
{
	char *v = NULL, *at;
	long long up = -1;

	if(etcdh_get(et_etcd, skey, &v) == 1 && (at = strstr(v, "\"up_ms\":")))
	{
		up = strtoll(at + 8, NULL, 10);
	}
	free(v);
	return up;
}

/*
 * An idle member's status is rewritten while the age it publishes is
 * inside its hold-down (here 600 ms, no slow start), so that a member
 * reading it later is not told an old age; the first write past the
 * window is the last one.
 */
static void
test_status_age_refreshed_then_left(void **state)
{
	CLUSTERADVISORCONFIG cfg;
	char key[64], skey[256];
	long long up, last = -1, first;
	int distinct = 0, hold = tu_scaled_ms(600);
	double deadline;
	char *v1 = NULL, *v2 = NULL;
	CLUSTER *c;

	(void) state;
	new_key(key, sizeof(key));
	snprintf(skey, sizeof(skey), "/%s/production@status/old", key);
	cluster_advisor_config_init(&cfg);
	cfg.report_interval_ms = 100;
	cfg.status_writes_per_second = 0; /* the interval alone: 100 ms */
	cfg.hold_down_ms = hold;
	cfg.slow_start_ms = 0;
	c = member_with(key, "old", &cfg);
	assert_int_equal(cluster_report(c, 5, -1), 0);
	deadline = etcdh_now() + 10 * etcdh_timeout_mult();
	while((first = status_up_ms(skey)) < 0 && etcdh_now() < deadline)
	{
		usleep(10000);
	}
	assert_true(first >= 0 && first < hold);
	/* rewritten, unchanged but for its age, until the age passes the
	 * hold-down */
	while((up = status_up_ms(skey)) < hold && etcdh_now() < deadline)
	{
		distinct += up != last;
		last = up;
		usleep(10000);
	}
	fprintf(stderr, "# age written %d time(s) below the hold-down of %d ms, then %lld\n", distinct, hold, up);
	assert_true(up >= hold);
	assert_true(distinct >= 2);
	/* and then left alone: several intervals bring no write */
	assert_int_equal(etcdh_get(et_etcd, skey, &v1), 1);
	usleep(500000);
	assert_int_equal(etcdh_get(et_etcd, skey, &v2), 1);
	assert_string_equal(v1, v2);
	assert_non_null(strstr(v2, "\"load\":5,"));
	free(v1);
	free(v2);
	cluster_destroy(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_three_members),
		cmocka_unit_test(test_dead_and_garbage),
		cmocka_unit_test(test_report_races_registry_switch),
		cmocka_unit_test(test_status_storm_reaches_only_advisor_users),
		cmocka_unit_test(test_report_policy_spaces_writes),
		cmocka_unit_test(test_status_batches_past_fifty),
		cmocka_unit_test(test_first_writes_in_slots),
		cmocka_unit_test(test_status_watch_resumes_after_a_cut),
		cmocka_unit_test(test_newcomers_held_down_alike),
		cmocka_unit_test(test_status_age_refreshed_then_left),
	};

	if(etcdh_skip())
	{
		return 0;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, et_setup, et_teardown);
}
