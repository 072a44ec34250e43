/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Connection-advisor public API: validation (EINVAL with a logged reason
 * naming the field, nothing changed), status storage and the engine hook,
 * advice rows from an injected view, fail-static, the pick on the static
 * engine, and the advisor thread's callback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "cluster-int.h"
#include "advisor.h"

/* ------------------------------------------------------------------ */

static void
test_config(void **state)
{
	CLUSTER *c = tu_cluster("advcfg");
	CLUSTERADVISORCONFIG cfg, before;

	(void) state;
	assert_non_null(c);
	cluster_advisor_config_init(&cfg);
	assert_int_equal(cfg.version, CLUSTER_ADVISOR_CONFIG_VERSION);
	assert_int_equal(cfg.report_interval_ms, 1000);
	assert_int_equal(cfg.advice_interval_ms, 5000);
	assert_int_equal(cfg.band_absolute, 10);
	assert_int_equal(cfg.step_min, 1);
	assert_int_equal(cfg.hold_down_ms, 15000);
	assert_int_equal(cfg.slow_start_ms, 30000);
	/* the core initialised the object's config the same way */
	assert_memory_equal(&c->advisor_config, &cfg, sizeof(cfg));
	before = c->advisor_config;

#define BAD(field, value) \
 do \
 { \
  cluster_advisor_config_init(&cfg); \
  cfg.field = value; \
  tu_reset(); \
  errno = 0; \
  assert_int_equal(cluster_set_advisor_config(c, &cfg), -1); \
  assert_int_equal(errno, EINVAL); \
  assert_true(tu_logged("field " #field " is invalid")); \
  assert_memory_equal(&c->advisor_config, &before, sizeof(before)); \
 } \
 while(0)
	BAD(version, 0);
	BAD(report_interval_ms, 0);
	BAD(advice_interval_ms, -5);
	BAD(band_absolute, -1);
	BAD(band_relative, -0.1);
	BAD(shed_fraction, 0.0);
	BAD(shed_fraction, 1.5);
	BAD(step_max, -1);
	BAD(step_min, -1);
	BAD(budget_per_second, -1.0);
	BAD(jitter, 0.75);
	BAD(stale_ms, -1);
	BAD(status_writes_per_second, -1.0);
	BAD(status_writes_per_second, NAN);
	BAD(status_writes_per_second, 2e6);
	BAD(report_deadband, -0.1);
	BAD(report_deadband, 1.5);
	BAD(report_deadband, NAN);
	BAD(hold_down_ms, -1);
	BAD(hold_down_ms, 3600001);
	BAD(slow_start_ms, -1);
	BAD(slow_start_ms, 3600001);
	BAD(pickers, -1);
	BAD(pickers, 1000001);
#undef BAD
	/* a caller built against version 1 passes the shorter structure:
	 * its fields are taken, the version 2 fields keep their defaults */
	{
		CLUSTERADVISORCONFIG v1, def;

		cluster_advisor_config_init(&def);
		memset(&v1, 0xff, sizeof(v1)); /* garbage past the v1 fields */
		memcpy(&v1, &def, offsetof(CLUSTERADVISORCONFIG, status_writes_per_second));
		v1.version = 1;
		v1.band_absolute = 7;
		assert_int_equal(cluster_set_advisor_config(c, &v1), 0);
		assert_int_equal(c->advisor_config.band_absolute, 7);
		assert_int_equal(c->advisor_config.version, CLUSTER_ADVISOR_CONFIG_VERSION);
		assert_true(c->advisor_config.status_writes_per_second == def.status_writes_per_second);
		assert_true(c->advisor_config.report_deadband == def.report_deadband);
		assert_int_equal(c->advisor_config.hold_down_ms, def.hold_down_ms);
		assert_int_equal(c->advisor_config.slow_start_ms, def.slow_start_ms);
	}
	assert_int_equal(cluster_set_advisor_config(c, NULL), -1);
	assert_int_equal(errno, EINVAL);
	cluster_advisor_config_init(&cfg);
	cfg.band_absolute = 3;
	assert_int_equal(cluster_set_advisor_config(c, &cfg), 0);
	assert_int_equal(c->advisor_config.band_absolute, 3);
	cluster_destroy(c);
}

/* Versions 3 (hold-down, slow start) and 4 (pickers): the bounds are inclusive, and a
 * caller built against version 2 passes the shorter structure: its
 * fields are taken, the version 3 ones keep their defaults and are not
 * even read (garbage there would be refused). */
static void
test_config_v3(void **state)
{
	CLUSTER *c = tu_cluster("advcfg3");
	CLUSTERADVISORCONFIG cfg, v2, def;

	(void) state;
	assert_non_null(c);
	cluster_advisor_config_init(&cfg);
	cfg.hold_down_ms = 0;
	cfg.slow_start_ms = 3600000;
	assert_int_equal(cluster_set_advisor_config(c, &cfg), 0);
	assert_int_equal(c->advisor_config.hold_down_ms, 0);
	assert_int_equal(c->advisor_config.slow_start_ms, 3600000);
	cfg.hold_down_ms = 3600000;
	cfg.slow_start_ms = 0;
	assert_int_equal(cluster_set_advisor_config(c, &cfg), 0);
	assert_int_equal(c->advisor_config.hold_down_ms, 3600000);
	assert_int_equal(c->advisor_config.slow_start_ms, 0);

	cluster_advisor_config_init(&def);
	memset(&v2, 0xff, sizeof(v2)); /* garbage past the v2 fields: -1 each */
	memcpy(&v2, &def, offsetof(CLUSTERADVISORCONFIG, hold_down_ms));
	v2.version = 2;
	v2.band_absolute = 9;
	v2.status_writes_per_second = 5.0;
	tu_reset();
	assert_int_equal(cluster_set_advisor_config(c, &v2), 0);
	assert_int_equal(c->advisor_config.version, CLUSTER_ADVISOR_CONFIG_VERSION);
	assert_int_equal(c->advisor_config.band_absolute, 9);
	assert_true(c->advisor_config.status_writes_per_second == 5.0);
	assert_int_equal(c->advisor_config.hold_down_ms, 15000);
	assert_int_equal(c->advisor_config.slow_start_ms, 30000);
	/* a caller built against version 3 passes no pickers: the default */
	{
		CLUSTERADVISORCONFIG v3;

		memset(&v3, 0xff, sizeof(v3));
		memcpy(&v3, &def, offsetof(CLUSTERADVISORCONFIG, pickers));
		v3.version = 3;
		v3.slow_start_ms = 1234;
		assert_int_equal(cluster_set_advisor_config(c, &v3), 0);
		assert_int_equal(c->advisor_config.version, CLUSTER_ADVISOR_CONFIG_VERSION);
		assert_int_equal(c->advisor_config.slow_start_ms, 1234);
		assert_int_equal(c->advisor_config.pickers, 0);
		cfg.pickers = 1000000;
		assert_int_equal(cluster_set_advisor_config(c, &cfg), 0);
		assert_int_equal(c->advisor_config.pickers, 1000000);
		assert_int_equal(cluster_set_advisor_config(c, &v2), 0);
	}
	/* the stored copy is complete: it passes the full check */
	{
		const char *field = NULL, *rule = NULL;

		assert_int_equal(cluster__adv_config_check(&c->advisor_config, &field, &rule), 0);
	}
	cluster_destroy(c);
}

static void
test_report_validation(void **state)
{
	CLUSTER *c = tu_cluster("advrep");
	unsigned long seq;

	(void) state;
	assert_non_null(c);
	tu_reset();
	assert_int_equal(cluster_report(c, -1, -1), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("load -1 is invalid"));
	assert_int_equal(cluster_report(c, 10, 5), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("capacity 5 is invalid"));
	assert_int_equal(cluster_report(c, 10, -2), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_report(c, CLUSTER__ADV_VALUE_MAX + 1, -1), -1);
	assert_int_equal(c->status.reported, 0);
	assert_int_equal(c->status.seq, 0);
	/* valid: unbounded, draining (even with load), a maximum equal to the load */
	assert_int_equal(cluster_report(c, 10, CLUSTER_CAPACITY_UNBOUNDED), 0);
	assert_int_equal(c->status.reported, 1);
	assert_int_equal(c->status.load, 10);
	assert_int_equal(c->status.capacity, -1);
	seq = c->status.seq;
	assert_int_equal(cluster_report(c, 10, CLUSTER_CAPACITY_UNBOUNDED), 0);
	assert_int_equal(c->status.seq, seq); /* unchanged: no write */
	assert_int_equal(cluster_report(c, 10, 0), 0);
	assert_int_equal(cluster_report(c, 10, 10), 0);
	assert_true(c->status.seq > seq);
	/* a failed report leaves the last good one */
	assert_int_equal(cluster_report(c, 11, 10), -1);
	assert_int_equal(c->status.load, 10);
	assert_int_equal(c->status.capacity, 10);
	assert_int_equal(cluster_report(NULL, 1, 1), -1);
	assert_int_equal(errno, EINVAL);
	cluster_destroy(c);
}

static void
test_address(void **state)
{
	CLUSTER *c = tu_cluster("advaddr");
	char longer[CLUSTER_ADDRESS_MAX + 2];

	(void) state;
	assert_non_null(c);
	assert_int_equal(cluster_set_address(c, "ws://host:8080/x"), 0);
	assert_string_equal(c->status.address, "ws://host:8080/x");
	tu_reset();
	assert_int_equal(cluster_set_address(c, "ws://a b"), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("address"));
	assert_int_equal(cluster_set_address(c, "ws://\x01"), -1);
	assert_int_equal(cluster_set_address(c, "ws://\xc3\xa9"), -1);
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = 0;
	assert_int_equal(cluster_set_address(c, longer), -1);
	assert_int_equal(errno, EINVAL);
	assert_string_equal(c->status.address, "ws://host:8080/x");
	longer[CLUSTER_ADDRESS_MAX] = 0; /* exactly the maximum is fine */
	assert_int_equal(cluster_set_address(c, longer), 0);
	assert_int_equal(cluster_set_address(c, NULL), 0);
	assert_string_equal(c->status.address, "");
	assert_int_equal(cluster_set_address(c, "x"), 0);
	assert_int_equal(cluster_set_address(c, ""), 0);
	assert_string_equal(c->status.address, "");
	cluster_destroy(c);
}

/* ------------------------------------------------------------------ */

static int hook_calls;

static void
counting_hook(void *engine)
{
	(void) engine;
	hook_calls++;
}

/* Static engine, one member: reports before and after join, the engine
 * hook only while joined, the pick returns this instance, no advice. */
static void
test_static_single(void **state)
{
	static cluster__engine hooked;
	CLUSTER *c = tu_cluster("advstatic");
	CLUSTERMEMBER t;
	CLUSTERREDIRECT *rows = (CLUSTERREDIRECT *) 1;
	size_t n = 99;

	(void) state;
	assert_non_null(c);
	assert_int_equal(cluster_pick_target(c, &t), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_advice(c, &rows, &n), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_pick_target(c, NULL), -1);
	assert_int_equal(errno, EINVAL);

	hooked = cluster__engine_static;
	hooked.status_changed = counting_hook;
	c->engine = &hooked;
	hook_calls = 0;
	assert_int_equal(cluster_set_address(c, "ws://me:1"), 0);
	assert_int_equal(cluster_report(c, 5, -1), 0);
	assert_int_equal(hook_calls, 0); /* not joined: the engine reads it at join */
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(cluster_report(c, 6, -1), 0);
	assert_int_equal(hook_calls, 1);
	assert_int_equal(cluster_report(c, 6, -1), 0);
	assert_int_equal(hook_calls, 1); /* unchanged */
	assert_int_equal(cluster_set_address(c, "ws://me:2"), 0);
	assert_int_equal(hook_calls, 2);

	memset(&t, 0, sizeof(t));
	assert_int_equal(cluster_pick_target(c, &t), 0);
	assert_string_equal(t.id, cluster_instance(c));
	assert_true(t.self);
	assert_true(t.has_status);
	assert_string_equal(t.address, "ws://me:2");
	assert_int_equal(t.load, 6);
	/* the record has no status: the local one stands in, and a new
	 * report reaches the (cached) pick */
	assert_int_equal(cluster_report(c, 8, -1), 0);
	assert_int_equal(cluster_pick_target(c, &t), 0);
	assert_int_equal(t.load, 8);
	assert_int_equal(cluster_set_address(c, "ws://me:3"), 0);
	assert_int_equal(cluster_pick_target(c, &t), 0);
	assert_string_equal(t.address, "ws://me:3");
	assert_int_equal(cluster_report(c, 6, -1), 0);
	assert_int_equal(cluster_set_address(c, "ws://me:2"), 0);
	assert_int_equal(cluster_advice(c, &rows, &n), 0);
	assert_int_equal(n, 0);
	assert_null(rows);
	/* draining: nobody can take a client */
	assert_int_equal(cluster_report(c, 6, 0), 0);
	assert_int_equal(cluster_pick_target(c, &t), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(cluster_leave(c), 0);
	assert_int_equal(cluster_report(c, 7, -1), 0);
	assert_int_equal(hook_calls, 7); /* four for the cache checks, the draining report; after leave, none */
	c->engine = &cluster__engine_static;
	cluster_destroy(c);
}

/* Three members injected as an etcd engine would publish them. */
static void
inject(CLUSTER *c, long long self_load, long long a_load, long long a_cap, long long b_load)
{
	cluster__member m[3];

	memset(m, 0, sizeof(m));
	snprintf(m[0].id, sizeof(m[0].id), "%s", cluster_instance(c));
	snprintf(m[1].id, sizeof(m[1].id), "peer-a");
	snprintf(m[2].id, sizeof(m[2].id), "peer-b");
	m[0].load = self_load;
	m[1].load = a_load;
	m[2].load = b_load;
	m[0].capacity = -1;
	m[1].capacity = a_cap;
	m[2].capacity = -1;
	snprintf(m[1].address, sizeof(m[1].address), "ws://a:1");
	snprintf(m[2].address, sizeof(m[2].address), "ws://b:1");
	for(int i = 0; i < 3; i++)
	{
		m[i].workers = 1;
		m[i].has_status = 1;
		m[i].mod_revision = 40 + i;
		m[i].received_ms = cluster__now_ms();
	}
	assert_int_equal(cluster__publish_view(c, m, 3, 42), 0);
}

static void
test_advice_rows_and_fail_static(void **state)
{
	CLUSTER *c = tu_cluster("advrows");
	CLUSTERREDIRECT *rows = NULL;
	CLUSTERMEMBER t;
	size_t n = 0;
	int i, got_a = 0;

	(void) state;
	assert_non_null(c);
	assert_int_equal(cluster_set_instance(c, "me"), 0);
	assert_int_equal(cluster_join(c), 0);
	/* 900 here, 0 and 0 there: 300 each */
	inject(c, 900, 0, -1, 0);
	tu_reset();
	assert_int_equal(cluster_advice(c, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].target, "peer-a");
	assert_string_equal(rows[0].address, "ws://a:1");
	/* down to the band edge, 300 + 15, and the deadband margin of 1
	 * inside it: 586 moved, split in proportion to the targets' room */
	assert_int_equal(rows[0].count + rows[1].count, 586);
	assert_int_equal(rows[0].count, 293);
	assert_string_equal(rows[1].target, "peer-b");
	cluster_redirects_free(rows);
	/* explained at debug level */
	assert_true(tu_logged("advice at revision 42"));
	assert_true(tu_logged("fair share 300"));
	assert_true(tu_logged("round budget 2500"));
	/* fail-static: a stale view advises nothing */
	cluster__set_fresh(c, 0);
	rows = (CLUSTERREDIRECT *) 1;
	assert_int_equal(cluster_advice(c, &rows, &n), 0);
	assert_int_equal(n, 0);
	assert_null(rows);
	assert_true(tu_logged("may be stale"));
	cluster__set_fresh(c, 1);
	/* a draining peer is evacuated by its own rows, not ours */
	inject(c, 100, 500, 0, 100);
	assert_int_equal(cluster_advice(c, &rows, &n), 0);
	assert_int_equal(n, 0);
	/* the pick never chooses a draining member and spreads by deficit */
	inject(c, 300, 0, 0, 0);
	for(i = 0; i < 50; i++)
	{
		assert_int_equal(cluster_pick_target(c, &t), 0);
		assert_string_not_equal(t.id, "peer-a");
		got_a += !strcmp(t.id, "peer-b");
	}
	assert_int_equal(got_a, 50); /* peer-b holds the only deficit (150) */
	assert_int_equal(cluster_leave(c), 0);
	assert_int_equal(cluster_advice(c, &rows, &n), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_advice(c, NULL, &n), -1);
	assert_int_equal(errno, EINVAL);
	cluster_destroy(c);
}

/* cluster_plan(): every member's line of the same plan cluster_advice()
 * takes its own rows from; stale: no moves; not joined, NULL: errors. */
static void
test_plan(void **state)
{
	CLUSTER *c = tu_cluster("advplan");
	CLUSTERPLANENTRY *e = NULL;
	CLUSTERREDIRECT *rows = NULL;
	size_t n = 0, nr = 0, i;
	long long shed = 0, inflow = 0;

	(void) state;
	assert_non_null(c);
	assert_int_equal(cluster_plan(c, &e, &n), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_set_instance(c, "me"), 0);
	assert_int_equal(cluster_join(c), 0);
	inject(c, 900, 0, -1, 0);
	assert_int_equal(cluster_plan(c, &e, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(e[0].id, "me");
	assert_string_equal(e[1].id, "peer-a");
	assert_string_equal(e[2].id, "peer-b");
	for(i = 0; i < n; i++)
	{
		assert_true(e[i].member);
		assert_false(e[i].draining);
		assert_int_equal(e[i].share, 300);
		shed += e[i].shed;
		inflow += e[i].inflow;
	}
	assert_int_equal(e[0].load, 900);
	/* what "me" sheds is what its own advice rows move */
	assert_int_equal(cluster_advice(c, &rows, &nr), 0);
	assert_int_equal(nr, 2);
	assert_int_equal(e[0].shed, rows[0].count + rows[1].count);
	assert_int_equal(e[1].inflow, rows[0].count);
	assert_int_equal(shed, inflow);
	assert_int_equal(e[1].shed + e[2].shed, 0);
	cluster_redirects_free(rows);
	cluster_plan_free(e);
	/* a draining peer: marked, no share, it sheds to the others */
	inject(c, 100, 500, 0, 100);
	assert_int_equal(cluster_plan(c, &e, &n), 0);
	assert_true(e[1].draining && e[1].member);
	assert_int_equal(e[1].share, 0);
	assert_true(e[1].shed > 0);
	assert_int_equal(e[0].share + e[2].share, 700);
	cluster_plan_free(e);
	/* fail-static */
	cluster__set_fresh(c, 0);
	assert_int_equal(cluster_plan(c, &e, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(e[1].shed + e[0].inflow + e[2].inflow, 0);
	cluster_plan_free(e);
	cluster__set_fresh(c, 1);
	assert_int_equal(cluster_plan(c, NULL, &n), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_leave(c), 0);
	assert_int_equal(cluster_plan(c, &e, &n), -1);
	assert_int_equal(errno, EPERM);
	cluster_destroy(c);
}

static void
sleep_ms(int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long) (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/* The pick's cache: built once per view, status and tuning, reused in
 * between; a new view with the same registry revision is still a new
 * view; members going stale with time need no new view. */
static void
test_pick_cache(void **state)
{
	CLUSTER *c = tu_cluster("advcache");
	CLUSTERADVISORCONFIG cfg;
	CLUSTERMEMBER t;
	unsigned long long b0;
	int i, got_a = 0, got_b = 0;

	(void) state;
	assert_non_null(c);
	assert_int_equal(cluster_set_instance(c, "me"), 0);
	assert_int_equal(cluster_join(c), 0);
	/* 900 here, 0 and 0 there: both peers have room (300 each) */
	inject(c, 900, 0, -1, 0);
	b0 = cluster__advisor_pick_builds(c);
	for(i = 0; i < 200; i++)
	{
		assert_int_equal(cluster_pick_target(c, &t), 0);
		got_a += !strcmp(t.id, "peer-a");
		got_b += !strcmp(t.id, "peer-b");
	}
	assert_int_equal(cluster__advisor_pick_builds(c), b0 + 1); /* one build, 200 picks */
	assert_int_equal(got_a + got_b, 200);
	assert_in_range(got_a, 60, 140);
	/* the same revision (42), different loads: peer-a drains (peer-b's
	 * room, 1500, is more than the three members' picks may claim of it
	 * while the earlier ones still count: 3 x about 100) */
	inject(c, 3000, 0, 0, 0);
	for(i = 0; i < 50; i++)
	{
		assert_int_equal(cluster_pick_target(c, &t), 0);
		assert_string_equal(t.id, "peer-b");
		assert_string_equal(t.address, "ws://b:1");
	}
	assert_int_equal(cluster__advisor_pick_builds(c), b0 + 2);
	/* the tuning and this instance's status are part of the key */
	cluster_advisor_config_init(&cfg);
	cfg.stale_ms = tu_scaled_ms(300);
	assert_int_equal(cluster_set_advisor_config(c, &cfg), 0);
	assert_int_equal(cluster_pick_target(c, &t), 0);
	assert_int_equal(cluster__advisor_pick_builds(c), b0 + 3);
	/* a local report while the record carries a status: the pick sees
	 * the record, so the cache stays */
	assert_int_equal(cluster_report(c, 300, -1), 0);
	assert_int_equal(cluster_pick_target(c, &t), 0);
	assert_int_equal(cluster__advisor_pick_builds(c), b0 + 3);
	assert_int_equal(cluster_report(c, 310, -1), 0);
	assert_int_equal(cluster_pick_target(c, &t), 0);
	assert_int_equal(cluster__advisor_pick_builds(c), b0 + 3);
	/* time alone: every record goes stale, the same cache says so */
	sleep_ms(tu_scaled_ms(300) + 100);
	assert_int_equal(cluster_pick_target(c, &t), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(cluster__advisor_pick_builds(c), b0 + 3);
	/* a fresh view brings them back */
	inject(c, 300, 0, 0, 0);
	assert_int_equal(cluster_pick_target(c, &t), 0);
	assert_true(t.age_ms >= 0 && t.age_ms < cfg.stale_ms);
	assert_int_equal(cluster_leave(c), 0);
	assert_int_equal(cluster_pick_target(c, &t), -1);
	assert_int_equal(errno, EPERM);
	cluster_destroy(c);
}

/* Several threads pick while views are replaced under them: every pick
 * answers from one consistent view. */
typedef struct picker_arg picker_arg;
struct picker_arg
{
	CLUSTER *c;
	int ok, bad;
};

static void *
picker_thread(void *p)
{
	picker_arg *a = p;
	CLUSTERMEMBER t;
	int i;

	for(i = 0; i < 3000; i++)
	{
		if(cluster_pick_target(a->c, &t) == 0 && (!strcmp(t.id, "peer-a") || !strcmp(t.id, "peer-b")))
		{
			a->ok++;
		}
		else
		{
			a->bad++;
		}
	}
	return NULL;
}

static void
test_pick_threads(void **state)
{
	CLUSTER *c = tu_cluster("advthreads");
	pthread_t th[4];
	picker_arg args[4];
	int i;

	(void) state;
	assert_non_null(c);
	assert_int_equal(cluster_set_instance(c, "me"), 0);
	assert_int_equal(cluster_join(c), 0);
	/* always plenty of room on both peers, none here */
	inject(c, 90000, 0, -1, 0);
	for(i = 0; i < 4; i++)
	{
		args[i].c = c;
		args[i].ok = args[i].bad = 0;
		assert_int_equal(pthread_create(&th[i], NULL, picker_thread, &args[i]), 0);
	}
	for(i = 0; i < 20; i++)
	{
		inject(c, 90000, i, -1, 20 - i);
		sleep_ms(1);
	}
	for(i = 0; i < 4; i++)
	{
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].bad, 0);
		assert_int_equal(args[i].ok, 3000);
	}
	assert_int_equal(cluster_leave(c), 0);
	cluster_destroy(c);
}

/* ------------------------------------------------------------------ */
/* hold-down and slow start                                             */
/* ------------------------------------------------------------------ */

/* One injected member: id ("me" is this instance), load, record
 * incarnation (create_revision, 0 unknown), local receipt time (0: now),
 * the age its status publishes (ms at the injection; 0: none; -1: no
 * status at all). */
typedef struct inj inj;
struct inj
{
	const char *id;
	long long load;
	int64_t create;
	int64_t received;
	int64_t age;
};

static void
inject_set(CLUSTER *c, const inj *in, size_t n, int64_t revision)
{
	cluster__member m[8];
	size_t i;

	assert_true(n <= 8);
	memset(m, 0, sizeof(m));
	for(i = 0; i < n; i++)
	{
		snprintf(m[i].id, sizeof(m[i].id), "%s", in[i].id);
		snprintf(m[i].address, sizeof(m[i].address), "ws://%s:1", in[i].id);
		m[i].workers = 1;
		m[i].has_status = in[i].age >= 0;
		m[i].load = in[i].load;
		m[i].capacity = -1;
		m[i].mod_revision = revision;
		m[i].create_revision = in[i].create;
		m[i].received_ms = in[i].received;
		if(in[i].age > 0)
		{
			m[i].has_up = 1;
			m[i].up_ms = in[i].age;
			m[i].joined_ms = cluster__now_ms() - in[i].age;
		}
	}
	assert_int_equal(cluster__publish_view(c, m, n, revision), 0);
}

/* This instance's advice must be exactly its rows of the plan of in[]
 * (sorted by id, this instance first) in which the members flagged in
 * held have no status: that is what a hold-down means, whatever the plan
 * makes of it. Returns the number of rows. */
static size_t
advice_as_if(CLUSTER *c, const inj *in, size_t n, const char *held)
{
	CLUSTERADVISORCONFIG cfg = c->advisor_config;
	CLUSTERREDIRECT *rows = NULL;
	cluster__adv_node v[8];
	cluster__adv_plan p;
	size_t nr = 0, i, k = 0;

	assert_true(n <= 8 && strlen(held) == n);
	assert_string_equal(in[0].id, cluster_instance(c));
	memset(v, 0, sizeof(v));
	for(i = 0; i < n; i++)
	{
		v[i].id = in[i].id;
		v[i].workers = 1;
		v[i].has_status = held[i] != 'h';
		v[i].load = in[i].load;
		v[i].capacity = -1;
	}
	assert_int_equal(cluster__adv_plan_compute(&p, v, n, &cfg), 0);
	assert_int_equal(cluster_advice(c, &rows, &nr), 0);
	for(i = 0; i < p.nrows; i++)
	{
		if(p.rows[i].from != 0)
		{
			continue;
		}
		assert_true(k < nr);
		assert_string_equal(rows[k].target, in[p.rows[i].to].id);
		assert_int_equal(rows[k].count, p.rows[i].count);
		k++;
	}
	assert_int_equal(k, nr);
	cluster__adv_plan_free(&p);
	cluster_redirects_free(rows);
	return nr;
}

/* cluster_plan() leaves out the members flagged 'h' in held (in view
 * order), as the advice does. */
static void
plan_held(CLUSTER *c, const char *held)
{
	CLUSTERPLANENTRY *e = NULL;
	size_t n = 0, i;

	assert_int_equal(cluster_plan(c, &e, &n), 0);
	assert_int_equal(n, strlen(held));
	for(i = 0; i < n; i++)
	{
		if(e[i].member != (held[i] != 'h'))
		{
			fail_msg("cluster_plan(): %s member %d, want %d", e[i].id, e[i].member, held[i] != 'h');
		}
	}
	cluster_plan_free(e);
}

/* Who is new, as this instance sees it: members of its first view since
 * joining are established; one that arrives later is held down (no rows
 * to it, never picked); so is one that comes back as another incarnation
 * (create_revision), or that left and came back; one whose record this
 * instance received long ago is not; a new join starts over. */
static void
test_hold_down_api(void **state)
{
	CLUSTER *c = tu_cluster("advhold");
	inj m[4] = { { "me", 900, 1, 0, 0 }, { "peer-a", 0, 2, 0, 0 }, { "peer-b", 0, 3, 0, 0 }, { "peer-c", 0, 4, 0, 0 } };
	inj without_b[3];
	CLUSTERMEMBER t;
	int i;

	(void) state;
	assert_non_null(c);
	assert_int_equal(cluster_set_instance(c, "me"), 0);
	assert_int_equal(cluster_join(c), 0);
	/* the first view: everyone established (default 15 s hold-down) */
	inject_set(c, m, 3, 50);
	assert_int_equal(advice_as_if(c, m, 3, "..."), 2);
	/* peer-c arrives: held down, the plan is the other three's */
	inject_set(c, m, 4, 51);
	tu_reset();
	assert_int_equal(advice_as_if(c, m, 4, "...h"), 2);
	assert_true(tu_logged("1 member(s) in their hold-down, 0 in their slow start"));
	plan_held(c, "...h");
	for(i = 0; i < 100; i++)
	{
		assert_int_equal(cluster_pick_target(c, &t), 0);
		assert_string_not_equal(t.id, "peer-c");
	}
	/* peer-a left and rejoined meanwhile (another incarnation): held down */
	m[1].create = 12;
	inject_set(c, m, 4, 52);
	assert_int_equal(advice_as_if(c, m, 4, ".h.h"), 1);
	/* peer-b leaves and comes back, same incarnation (or none known):
	 * new again once this instance saw it gone */
	without_b[0] = m[0];
	without_b[1] = m[1];
	without_b[2] = m[3];
	inject_set(c, without_b, 3, 53);
	assert_int_equal(advice_as_if(c, without_b, 3, ".hh"), 0);
	inject_set(c, m, 4, 54);
	tu_reset();
	assert_int_equal(advice_as_if(c, m, 4, ".hhh"), 0);
	assert_true(tu_logged("3 member(s) in their hold-down"));
	/* a record this instance received long ago is not new, even if no
	 * snapshot saw it yet */
	m[2].create = 13;
	inject_set(c, without_b, 3, 55);
	assert_int_equal(advice_as_if(c, without_b, 3, ".hh"), 0);
	m[2].received = cluster__now_ms() - 60000; /* past the hold-down and the slow start */
	inject_set(c, m, 4, 56);
	assert_int_equal(advice_as_if(c, m, 4, ".h.h"), 1);
	/* a new membership: its first view decides, everyone is established */
	assert_int_equal(cluster_leave(c), 0);
	assert_int_equal(cluster_join(c), 0);
	m[2].received = 0;
	inject_set(c, m, 4, 60);
	assert_int_equal(advice_as_if(c, m, 4, "...."), 3);
	assert_int_equal(cluster_leave(c), 0);
	cluster_destroy(c);
}

/* Join c as "me" with a hold-down of hold ms and no slow start. */
static void
join_held(CLUSTER *c, int hold)
{
	CLUSTERADVISORCONFIG cfg;

	assert_non_null(c);
	assert_int_equal(cluster_set_instance(c, "me"), 0);
	cluster_advisor_config_init(&cfg);
	cfg.hold_down_ms = hold;
	cfg.slow_start_ms = 0;
	assert_int_equal(cluster_set_advisor_config(c, &cfg), 0);
	assert_int_equal(cluster_join(c), 0);
}

/* A member's age is the one its status publishes, whenever this
 * instance first saw it: one in the first view is held down if it says
 * it is young, one that arrives later is established if it says it is
 * old, this instance too (also by its own join while its status has not
 * come back); cluster_plan() shows the same. */
static void
test_published_age(void **state)
{
	CLUSTER *c = tu_cluster("advage");
	inj m[5] = { { "me", 900, 1, 0, 60000 }, { "peer-a", 0, 2, 0, 60000 }, { "peer-b", 0, 3, 0, 2000 }, { "peer-c", 0, 4, 0, 0 },
		{ "peer-d", 0, 5, 0, 60000 } };

	(void) state;
	join_held(c, 10000);
	/* the first view: peer-b is young by its own word; peer-c says
	 * nothing, so it is established as before */
	inject_set(c, m, 4, 80);
	assert_int_equal(advice_as_if(c, m, 4, "..h."), 2);
	plan_held(c, "..h.");
	/* peer-d arrives later but has been up a minute: established */
	inject_set(c, m, 5, 81);
	assert_int_equal(advice_as_if(c, m, 5, "..h.."), 3);
	plan_held(c, "..h..");
	/* this instance holds itself down by the age it publishes */
	m[0].age = 3000;
	inject_set(c, m, 5, 82);
	assert_int_equal(advice_as_if(c, m, 5, "h.h.."), 0);
	plan_held(c, "h.h..");
	/* ages past the hold-down: everyone takes part */
	m[0].age = 10001;
	m[2].age = 10001;
	inject_set(c, m, 5, 83);
	assert_int_equal(advice_as_if(c, m, 5, "....."), 4);
	/* before its own status comes back, the one it reported stands in,
	 * dated by its own join (moments ago): held down */
	m[0].age = -1;
	assert_int_equal(cluster_report(c, 900, -1), 0);
	inject_set(c, m, 5, 84);
	assert_int_equal(advice_as_if(c, m, 5, "h...."), 0);
	plan_held(c, "h....");
	assert_int_equal(cluster_leave(c), 0);
	cluster_destroy(c);
}

/* The hold-down ends with time alone: the pick's cache, built while the
 * member was held down, expires then without a new view (one rebuild),
 * and the member is picked. The slow start is announced in the advice. */
static void
test_hold_down_expires(void **state)
{
	CLUSTER *c = tu_cluster("advholdexp");
	CLUSTERADVISORCONFIG cfg;
	inj m[3] = { { "me", 900, 1, 0, 0 }, { "peer-a", 0, 2, 0, 0 }, { "peer-c", 0, 3, 0, 0 } };
	CLUSTERREDIRECT *rows = NULL;
	size_t n = 0;
	CLUSTERMEMBER t;
	unsigned long long b1;
	int64_t t0;
	int i, held_picks = 0, got_c = 0, hold = tu_scaled_ms(400);

	(void) state;
	join_held(c, hold);
	inject_set(c, m, 2, 70);
	assert_int_equal(cluster_pick_target(c, &t), 0);
	assert_string_equal(t.id, "peer-a");
	t0 = cluster__now_ms();
	inject_set(c, m, 3, 71);
	while(cluster__now_ms() - t0 < hold / 2 && held_picks < 1000)
	{
		assert_int_equal(cluster_pick_target(c, &t), 0);
		assert_string_not_equal(t.id, "peer-c");
		held_picks++;
	}
	assert_true(held_picks > 0);
	b1 = cluster__advisor_pick_builds(c);
	sleep_ms(hold + 50);
	for(i = 0; i < 60; i++)
	{
		assert_int_equal(cluster_pick_target(c, &t), 0);
		got_c += !strcmp(t.id, "peer-c");
	}
	assert_true(got_c > 0);
	assert_int_equal(cluster__advisor_pick_builds(c), b1 + 1);
	/* slow start: said in the advice round's explanation */
	cfg = c->advisor_config;
	cfg.hold_down_ms = 0;
	cfg.slow_start_ms = 60000;
	assert_int_equal(cluster_set_advisor_config(c, &cfg), 0);
	tu_reset();
	assert_int_equal(cluster_advice(c, &rows, &n), 0);
	cluster_redirects_free(rows);
	assert_true(tu_logged("0 member(s) in their hold-down, 1 in their slow start"));
	assert_int_equal(cluster_leave(c), 0);
	cluster_destroy(c);
}

/* ------------------------------------------------------------------ */

static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cb_cond = PTHREAD_COND_INITIALIZER;
static int cb_calls;
static long long cb_total, cb_most; /* the last round's rows, the most of any round */
static int cb_deadlk;

static void
advice_cb(CLUSTER *cluster, const CLUSTERREDIRECT *rows, size_t n)
{
	long long sum = 0;
	size_t i;
	int r;

	for(i = 0; i < n; i++)
	{
		sum += rows[i].count;
	}
	/* control calls that would wait for this thread are refused */
	r = cluster_leave(cluster);
	pthread_mutex_lock(&cb_lock);
	cb_deadlk += r == -1 && errno == EDEADLK;
	cb_calls++;
	cb_total = sum;
	cb_most = sum > cb_most ? sum : cb_most;
	pthread_cond_broadcast(&cb_cond);
	pthread_mutex_unlock(&cb_lock);
}

static int
wait_calls(int want, double seconds)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t) (seconds * tu_timeout_mult()) + 1;
	pthread_mutex_lock(&cb_lock);
	while(cb_calls < want && r == 0)
	{
		r = pthread_cond_timedwait(&cb_cond, &cb_lock, &ts);
	}
	r = cb_calls >= want;
	pthread_mutex_unlock(&cb_lock);
	return r;
}

static void
test_advisor_thread(void **state)
{
	CLUSTER *c = tu_cluster("advthread");
	CLUSTERADVISORCONFIG cfg;
	int after;

	(void) state;
	assert_non_null(c);
	assert_int_equal(cluster_set_instance(c, "me"), 0);
	cluster_advisor_config_init(&cfg);
	cfg.advice_interval_ms = 20;
	cfg.jitter = 0;
	cfg.budget_per_second = 0;
	/* a slow run may take its first round before the peers are injected:
	 * they would then be new, and held down */
	cfg.hold_down_ms = 0;
	assert_int_equal(cluster_set_advisor_config(c, &cfg), 0);
	/* installed before join: the thread starts with the join */
	assert_int_equal(cluster_set_advisor(c, advice_cb), 0);
	assert_int_equal(cluster_join(c), 0);
	inject(c, 900, 0, -1, 0);
	assert_true(wait_calls(3, 5.0));
	pthread_mutex_lock(&cb_lock);
	/* a round advised 900 - (300 + its band of 15 - its margin of 1); the
	 * next ones less, while those are in flight */
	assert_int_equal(cb_most, 586);
	assert_true(cb_deadlk >= 1);
	pthread_mutex_unlock(&cb_lock);
	/* after leave, no more rounds */
	assert_int_equal(cluster_leave(c), 0);
	pthread_mutex_lock(&cb_lock);
	after = cb_calls;
	pthread_mutex_unlock(&cb_lock);
	assert_false(wait_calls(after + 1, 0.2));
	/* installed while joined: the thread starts then */
	assert_int_equal(cluster_set_advisor(c, NULL), 0);
	assert_int_equal(cluster_join(c), 0);
	assert_false(wait_calls(after + 1, 0.1));
	assert_int_equal(cluster_set_advisor(c, advice_cb), 0);
	assert_true(wait_calls(after + 2, 5.0));
	assert_int_equal(cluster_destroy(c), 0);
}

/* Wait until this instance's published load is want. */
static int
published_becomes(CLUSTER *c, long long want, double seconds)
{
	double deadline = (double) cluster__now_ms() / 1000.0 + seconds * tu_timeout_mult();
	cluster__status st;

	do
	{
		cluster__get_status(c, &st);
		if(st.load == want)
		{
			return 1;
		}
		usleep(5000);
	}
	while((double) cluster__now_ms() / 1000.0 < deadline);
	print_message("published load %lld, expected %lld\n", st.load, want);
	return 0;
}

/*
 * Redirects in flight, through the advice thread: the clients a round
 * redirected stay in the load this instance publishes (so nobody fills
 * the same deficit again) and are not advised again, until the targets
 * have written new statuses; then the published load is the reported one.
 */
static void
test_inflight_thread(void **state)
{
	CLUSTER *c = tu_cluster("advflight");
	CLUSTERADVISORCONFIG cfg;
	cluster__member m[3];
	int calls, i;

	(void) state;
	assert_non_null(c);
	assert_int_equal(cluster_set_instance(c, "me"), 0);
	cluster_advisor_config_init(&cfg);
	cfg.advice_interval_ms = 100;
	cfg.report_interval_ms = 20; /* rounds every 100 ms, confirmed after 50 */
	cfg.budget_per_second = 0;
	cfg.hold_down_ms = 0;
	assert_int_equal(cluster_set_advisor_config(c, &cfg), 0);
	assert_int_equal(cluster_report(c, 900, -1), 0);
	assert_int_equal(cluster_join(c), 0);
	pthread_mutex_lock(&cb_lock);
	cb_total = 0;
	pthread_mutex_unlock(&cb_lock);
	inject(c, 900, 0, -1, 0);
	assert_int_equal(cluster_set_advisor(c, advice_cb), 0);
	/* a round advises 586 away */
	for(i = 0; i < 50; i++)
	{
		pthread_mutex_lock(&cb_lock);
		calls = cb_calls;
		pthread_mutex_unlock(&cb_lock);
		assert_true(wait_calls(calls + 1, 2.0));
		pthread_mutex_lock(&cb_lock);
		calls = (int) cb_total;
		pthread_mutex_unlock(&cb_lock);
		if(calls)
		{
			break;
		}
	}
	assert_int_equal(calls, 586);
	/* the application follows: its load drops, what it publishes does not */
	assert_int_equal(cluster_report(c, 314, -1), 0);
	assert_true(published_becomes(c, 900, 1.0));
	/* the next rounds advise nothing more: those 586 are on their way */
	pthread_mutex_lock(&cb_lock);
	calls = cb_calls;
	pthread_mutex_unlock(&cb_lock);
	assert_true(wait_calls(calls + 1, 2.0));
	pthread_mutex_lock(&cb_lock);
	assert_int_equal(cb_total, 0);
	pthread_mutex_unlock(&cb_lock);
	assert_true(published_becomes(c, 900, 0.01));
	/* the targets publish what they received: confirmed, the published
	 * load is the reported one */
	memset(m, 0, sizeof(m));
	snprintf(m[0].id, sizeof(m[0].id), "me");
	snprintf(m[1].id, sizeof(m[1].id), "peer-a");
	snprintf(m[2].id, sizeof(m[2].id), "peer-b");
	m[0].load = 900;
	m[1].load = 293;
	m[2].load = 293;
	for(i = 0; i < 3; i++)
	{
		m[i].workers = 1;
		m[i].has_status = 1;
		m[i].capacity = -1;
		m[i].mod_revision = i ? 50 + i : 40;
		m[i].received_ms = cluster__now_ms();
	}
	assert_int_equal(cluster__publish_view(c, m, 3, 52), 0);
	assert_true(published_becomes(c, 314, 2.0));
	assert_int_equal(cluster_destroy(c), 0);
}

/* Compute advice (logged at debug level) and throw the rows away. */
static void
advise_quietly(CLUSTER *c)
{
	CLUSTERREDIRECT *rows = NULL;
	size_t n = 0;

	assert_int_equal(cluster_advice(c, &rows, &n), 0);
	cluster_redirects_free(rows);
}

/*
 * A member that leaves holding clients stays in everyone's shares (a
 * draining ghost node) for the hold-down: its clients, reconnecting to
 * the others, are expected, so the pick spreads them in proportion to
 * the room that makes, instead of sending all of them to whoever was
 * below the old share. Then it is forgotten (the pick's cache expires
 * with it, one rebuild). One that comes back is no ghost.
 */
static void
test_ghost(void **state)
{
	CLUSTER *c = tu_cluster("advghost");
	inj m[4] = { { "me", 300, 1, 0, 0 }, { "peer-a", 500, 2, 0, 0 }, { "peer-b", 100, 3, 0, 0 }, { "peer-c", 300, 4, 0, 0 } };
	CLUSTERMEMBER t;
	unsigned long long b1;
	int i, got_me = 0, got_a = 0, hold = tu_scaled_ms(500);

	(void) state;
	join_held(c, hold);
	inject_set(c, m, 4, 80);
	assert_int_equal(cluster_pick_target(c, &t), 0);
	/* peer-c leaves with 300: shares 400 (ghost counted), room 100 here,
	 * 300 at peer-b, none at peer-a (without the ghost: 300, 300, 300 and
	 * all of the room at peer-b). This caller claims a third of each
	 * room (three members may pick): 34 here and 100 at peer-b; 60
	 * picks stay within that (without the ghost they would all go to
	 * peer-b) */
	inject_set(c, m, 3, 81);
	for(i = 0; i < 60; i++)
	{
		assert_int_equal(cluster_pick_target(c, &t), 0);
		got_me += !strcmp(t.id, "me");
		got_a += !strcmp(t.id, "peer-a");
	}
	assert_int_equal(got_a, 0);
	assert_in_range(got_me, 5, 25); /* 60 x 34 / 134 = 15.2, drawn without replacement: sd about 3 */
	tu_reset();
	advise_quietly(c);
	assert_true(tu_logged("cluster load 1200,")); /* 900 and the ghost's 300 */
	b1 = cluster__advisor_pick_builds(c);
	/* the hold-down over, the ghost is forgotten; the pick's cache expires
	 * with it */
	sleep_ms(hold + 50);
	assert_int_equal(cluster_pick_target(c, &t), 0);
	assert_int_equal(cluster__advisor_pick_builds(c), b1 + 1);
	tu_reset();
	advise_quietly(c);
	assert_true(tu_logged("cluster load 900,"));
	/* it leaves again and comes back at once: no ghost */
	inject_set(c, m, 4, 82);
	inject_set(c, m, 3, 83);
	m[3].load = 0;
	inject_set(c, m, 4, 84);
	tu_reset();
	advise_quietly(c);
	assert_true(tu_logged("cluster load 900,"));
	assert_int_equal(cluster_leave(c), 0);
	cluster_destroy(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_config_v3),
		cmocka_unit_test(test_report_validation),
		cmocka_unit_test(test_address),
		cmocka_unit_test(test_static_single),
		cmocka_unit_test(test_advice_rows_and_fail_static),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_pick_cache),
		cmocka_unit_test(test_pick_threads),
		cmocka_unit_test(test_hold_down_api),
		cmocka_unit_test(test_published_age),
		cmocka_unit_test(test_hold_down_expires),
		cmocka_unit_test(test_advisor_thread),
		cmocka_unit_test(test_inflight_thread),
		cmocka_unit_test(test_ghost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
