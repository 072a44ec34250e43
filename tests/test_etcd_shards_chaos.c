/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shard chaos run: for CLUSTER_CHAOS_SECONDS (default 60) members
 * join, leave, change their worker count and are killed with SIGKILL,
 * and etcd is restarted, at random moments (seed printed; set
 * CLUSTER_CHAOS_SEED to replay). Every fourth change starts from a
 * settled cluster and is checked on its own: balance, and movement within
 * 1.1 x the minimum (not for an etcd restart, which is no membership
 * change: members that cannot renew their lease release their shards and
 * may see them move). At the end the referee proves from every recorded
 * acquire and release that no shard was ever held twice at once.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <libcluster.h>
#include "etcdharness.h"
#include "etcdtest.h"
#include "shardcheck.h"

#define S     256
#define TTL   2
#define SLOTS 8 /* in-process members m0..m3, processes p4..p7 */
#define WAIT  30.0

typedef struct slot slot;
struct slot
{
	int live;
	int gen;
	int workers;
	et_member *m; /* in-process */
	pid_t pid;    /* process */
	char id[16];
	char who[32];
};

static slot slots[SLOTS];
static const char *key;

static int
is_process(int i)
{
	return i >= SLOTS / 2;
}

static void
start(int i, int workers)
{
	slot *s = &slots[i];

	s->gen++;
	s->workers = workers;
	snprintf(s->id, sizeof(s->id), "%c%d", is_process(i) ? 'p' : 'm', i);
	snprintf(s->who, sizeof(s->who), "%c%d-%d", is_process(i) ? 'p' : 'm', i, s->gen);
	if(is_process(i))
	{
		char sbuf[16];
		const char *extra[] = { "-s", sbuf, "-E", sc_event_file(s->who), NULL };

		snprintf(sbuf, sizeof(sbuf), "%d", S);
		s->pid = et_spawn_ex(key, s->id, workers, etcdh_endpoint(et_etcd), TTL, extra, NULL, NULL);
		assert_true(s->pid > 0);
	}
	else
	{
		s->m = et_new(key, s->id, workers, TTL);
		sc_attach(s->m->c, s->who);
		assert_int_equal(cluster_set_shard_settle(s->m->c, 200), 0);
		assert_int_equal(et_join(s->m), 0);
	}
	s->live = 1;
}

static void
stop(int i, int kill9)
{
	slot *s = &slots[i];

	if(is_process(i))
	{
		if(kill9)
		{
			sc_killed(s->who);
		}
		et_kill(s->pid, kill9 ? SIGKILL : SIGTERM);
		s->pid = 0;
	}
	else
	{
		et_member_free(s->m);
		s->m = NULL;
	}
	s->live = 0;
}

static size_t
live_set(sc_live *out)
{
	size_t n = 0;
	int i;

	for(i = 0; i < SLOTS; i++)
	{
		if(slots[i].live)
		{
			out[n].who = slots[i].who;
			out[n].workers = slots[i].workers;
			n++;
		}
	}
	return n;
}

static int
n_live(void)
{
	int i, n = 0;

	for(i = 0; i < SLOTS; i++)
	{
		n += slots[i].live;
	}
	return n;
}

/* One random change; returns what it did, for the log. *last_kill
 * becomes now after a kill or an etcd restart (a member may then linger in
 * the registry, or lose its lease, up to a TTL later). */
static const char *
change(double *last_restart, double *last_kill)
{
	int i = rand() % SLOTS, k = rand() % 10;

	/* at least every 15 s (so at least once in any run of 20 s or
	 * more), else now and then */
	if((k < 1 && etcdh_now() - *last_restart > 10) || etcdh_now() - *last_restart > 15)
	{
		*last_restart = etcdh_now();
		assert_int_equal(etcdh_restart(et_etcd), 0);
		*last_kill = etcdh_now();
		return "etcd restarted";
	}
	if(!slots[i].live)
	{
		start(i, 1 + rand() % 3);
		return is_process(i) ? "process joined" : "member joined";
	}
	if(n_live() <= 1)
	{
		return "nothing (last member stays)";
	}
	if(k < 4 && is_process(i))
	{
		stop(i, 1);
		*last_kill = etcdh_now();
		return "process killed -9";
	}
	if(k < 6 && !is_process(i))
	{
		int w = 1 + rand() % 3;

		if(w != slots[i].workers)
		{
			assert_int_equal(cluster_set_workers(slots[i].m->c, w), 0);
			slots[i].workers = w;
			return "worker count changed";
		}
	}
	stop(i, 0);
	return is_process(i) ? "process left" : "member left";
}

static void
test_chaos(void **state)
{
	const char *env = getenv("CLUSTER_CHAOS_SECONDS"), *senv = getenv("CLUSTER_CHAOS_SEED");
	double seconds = env ? atof(env) : 60, end, last_restart = 0;
	unsigned seed = senv ? (unsigned) strtoul(senv, NULL, 10) : (unsigned) time(NULL);
	size_t checked = 0, moves_total = 0, min_total = 0, n, changes = 0;
	double last_kill = 0; /* the last kill or etcd restart */
	sc_live live[SLOTS];
	int i;

	(void) state;
	fprintf(stderr, "# chaos: %.0f s, seed %u (CLUSTER_CHAOS_SEED to replay)\n", seconds, seed);
	srand(seed);
	key = et_key("sh-chaos");
	sc_init(S, sc_dir_path());
	start(0, 1);
	start(SLOTS / 2, 2);
	end = etcdh_now() + seconds;
	last_restart = etcdh_now();
	while(etcdh_now() < end)
	{
		const char *what;

		if(changes % 4 == 0)
		{
			/* a checked change: from settled to settled */
			sc_snapshot *before, *after;
			size_t moves, min;

			n = live_set(live);
			assert_int_equal(sc_wait_settled(live, n, WAIT), 0);
			if(etcdh_now() - last_kill < TTL + 1)
			{
				/* a process killed lately is still a member in the
				 * registry until its lease runs out, and a member that
				 * could not renew its lease during an etcd restart may
				 * still lose it: that leave would fall inside the change
				 * and not in its minimum */
				struct timespec w = { TTL + 1, 0 };

				nanosleep(&w, NULL);
				assert_int_equal(sc_wait_settled(live, n, WAIT), 0);
			}
			before = sc_snapshot_take();
			what = change(&last_restart, &last_kill);
			n = live_set(live);
			assert_int_equal(sc_wait_settled(live, n, WAIT), 0);
			after = sc_snapshot_take();
			moves = sc_moves(before, after);
			min = sc_min_moves(before, live, n);
			fprintf(stderr, "# chaos %.1f s: %s (checked): %zu moved, minimum %zu\n", seconds - (end - etcdh_now()), what, moves, min);
			if(!strcmp(what, "etcd restarted"))
			{
				/* an outage is no membership change: a member that could
				 * not renew its lease for the TTL (2 s; a slow restart, a
				 * slow sanitizer build) releases its shards, for safety,
				 * and gets them back or sees them moved; "never two
				 * owners" is what holds there, checked all along */
				fprintf(stderr, "# (an etcd restart: movement not judged)\n");
			}
			else
			{
				assert_true(moves * 10 <= min * 11);
				moves_total += moves;
				min_total += min;
				checked++;
			}
			sc_snapshot_free(before);
			sc_snapshot_free(after);
		}
		else
		{
			struct timespec ts = { 0, (long) (100 + rand() % 1500) * 1000000L };

			what = change(&last_restart, &last_kill);
			fprintf(stderr, "# chaos %.1f s: %s\n", seconds - (end - etcdh_now()), what);
			nanosleep(&ts, NULL);
		}
		changes++;
	}
	n = live_set(live);
	assert_int_equal(sc_wait_settled(live, n, WAIT), 0);
	fprintf(stderr, "# chaos: %zu changes, %zu checked: %zu shards moved against a minimum of %zu\n", changes, checked, moves_total, min_total);
	for(i = 0; i < SLOTS; i++)
	{
		if(slots[i].live)
		{
			stop(i, 0);
		}
	}
	assert_int_equal(sc_check_intervals(), 0);
	sc_free();
}


int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chaos),
	};

	return cmocka_run_group_tests(tests, sc_setup, sc_teardown);
}
