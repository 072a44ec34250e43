/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Redirects in flight (libcluster/advisor-inflight.c): when a redirect is
 * confirmed, what a member publishes meanwhile, and how much of its plan
 * it may still send.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "advisor-inflight.h"

static void
node(cluster__adv_node *m, const char *id, long long load, int64_t rev)
{
	memset(m, 0, sizeof(*m));
	m->id = id;
	m->workers = 1;
	m->has_status = 1;
	m->load = load;
	m->capacity = CLUSTER_CAPACITY_UNBOUNDED;
	m->mod_revision = rev;
	m->received_ms = 1;
}

/* A redirect is confirmed only once its target's record changed after it
 * and the settle time has passed; or when the target left; or after four
 * settle times in any case. */
static void
test_confirmation(void **state)
{
	cluster__adv_inflight f;
	cluster__adv_node v[3];

	(void) state;
	memset(&f, 0, sizeof(f));
	node(&v[0], "a", 100, 5);
	node(&v[1], "b", 0, 7);
	node(&v[2], "c", 0, 9);
	assert_int_equal(cluster__adv_inflight_add(&f, &v[1], 60, 100, 1000), 0);
	assert_int_equal(cluster__adv_inflight_add(&f, &v[2], 30, 40, 1000), 0);
	assert_int_equal(cluster__adv_inflight_total(&f), 90);
	assert_int_equal(f.base, 100); /* the load before the first of them */
	/* nothing changed yet */
	assert_int_equal(cluster__adv_inflight_refresh(&f, v, 3, 5000, 3000), 90);
	/* b reported, but too soon: its clients may still be on their way */
	v[1].mod_revision = 8;
	assert_int_equal(cluster__adv_inflight_refresh(&f, v, 3, 3999, 3000), 90);
	/* settle time passed: b's are confirmed, c's (unchanged) are not */
	assert_int_equal(cluster__adv_inflight_refresh(&f, v, 3, 4000, 3000), 30);
	/* c never reports: forgotten after four settle times */
	assert_int_equal(cluster__adv_inflight_refresh(&f, v, 3, 12999, 3000), 30);
	assert_int_equal(cluster__adv_inflight_refresh(&f, v, 3, 13000, 3000), 0);
	/* a target that left the view confirms nothing but ends the wait */
	assert_int_equal(cluster__adv_inflight_add(&f, &v[2], 10, 50, 20000), 0);
	assert_int_equal(f.base, 50);
	assert_int_equal(cluster__adv_inflight_refresh(&f, v, 2, 20001, 3000), 0);
	/* a later send to the same target restarts its wait */
	assert_int_equal(cluster__adv_inflight_add(&f, &v[1], 5, 50, 30000), 0);
	v[1].mod_revision = 10;
	assert_int_equal(cluster__adv_inflight_add(&f, &v[1], 5, 45, 32000), 0);
	assert_int_equal(cluster__adv_inflight_total(&f), 10);
	assert_int_equal(cluster__adv_inflight_refresh(&f, v, 3, 34000, 3000), 10);
	v[1].mod_revision = 11;
	assert_int_equal(cluster__adv_inflight_refresh(&f, v, 3, 35000, 3000), 0);
	assert_int_equal(cluster__adv_inflight_add(&f, &v[1], 0, 45, 36000), 0); /* nothing sent: nothing changes */
	assert_int_equal(f.sent.count, 1);
	/* a confirmed entry is kept (for the allowance) until 4 settle times
	 * after its send, then forgotten */
	assert_int_equal(cluster__adv_inflight_refresh(&f, v, 3, 43999, 3000), 0);
	assert_int_equal(f.sent.count, 1);
	assert_int_equal(cluster__adv_inflight_refresh(&f, v, 3, 44000, 3000), 0);
	assert_int_equal(f.sent.count, 0);
	cluster__adv_inflight_free(&f);
}

/* The published load counts the unconfirmed redirects, but never more
 * than the member held before the advice (an application that ignored the
 * advice publishes its own load), nor more than a bounded capacity. */
static void
test_published(void **state)
{
	cluster__adv_inflight f;
	cluster__adv_node t;

	(void) state;
	memset(&f, 0, sizeof(f));
	node(&t, "t", 0, 1);
	assert_int_equal(cluster__adv_inflight_published(&f, 70, -1), 70);
	assert_int_equal(cluster__adv_inflight_add(&f, &t, 30, 100, 1), 0);
	assert_int_equal(cluster__adv_inflight_published(&f, 70, -1), 100);  /* followed the advice */
	assert_int_equal(cluster__adv_inflight_published(&f, 100, -1), 100); /* ignored it */
	assert_int_equal(cluster__adv_inflight_published(&f, 85, -1), 100);  /* half of it */
	assert_int_equal(cluster__adv_inflight_published(&f, 60, -1), 90);   /* and others left too */
	assert_int_equal(cluster__adv_inflight_published(&f, 120, -1), 120); /* new clients came */
	assert_int_equal(cluster__adv_inflight_published(&f, 70, 80), 80);   /* a capacity bounds it */
	assert_int_equal(cluster__adv_inflight_published(&f, 70, 0), 100);   /* draining: evacuating, counted the same way */
	cluster__adv_inflight_free(&f);
}

/* What a member may still send: its shed minus what it sent after its own
 * record (the one the plan used) last changed. */
static void
test_allowance(void **state)
{
	cluster__adv_inflight f;
	cluster__adv_plan p;
	cluster__adv_node t;
	long long shed[2] = { 50, 0 };

	(void) state;
	memset(&f, 0, sizeof(f));
	memset(&p, 0, sizeof(p));
	p.n = 2;
	p.shed = shed;
	node(&t, "t", 0, 1);
	assert_int_equal(cluster__adv_inflight_allowance(&f, &p, 0, 1000), 50);
	assert_int_equal(cluster__adv_inflight_allowance(&f, &p, 1, 1000), 0);
	assert_int_equal(cluster__adv_inflight_allowance(&f, &p, 7, 1000), 0); /* not in the plan */
	assert_int_equal(cluster__adv_inflight_add(&f, &t, 20, 100, 2000), 0);
	/* the record is older than the send: the plan still counts those 20 */
	assert_int_equal(cluster__adv_inflight_allowance(&f, &p, 0, 1000), 30);
	/* a record written after the send already shows them gone */
	assert_int_equal(cluster__adv_inflight_allowance(&f, &p, 0, 2001), 50);
	assert_int_equal(cluster__adv_inflight_add(&f, &t, 40, 80, 3000), 0);
	assert_int_equal(cluster__adv_inflight_allowance(&f, &p, 0, 1000), 0); /* never negative */
	/* confirmed, but the record the plan used is still the old one: the
	 * plan still counts them, so they still count here */
	t.mod_revision = 2;
	assert_int_equal(cluster__adv_inflight_refresh(&f, &t, 1, 6000, 3000), 0);
	assert_int_equal(cluster__adv_inflight_allowance(&f, &p, 0, 1000), 0);
	assert_int_equal(cluster__adv_inflight_allowance(&f, &p, 0, 3001), 50);
	cluster__adv_inflight_free(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_confirmation),
		cmocka_unit_test(test_published),
		cmocka_unit_test(test_allowance),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
