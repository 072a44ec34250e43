/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Churn: for two minutes, member processes (tests/etcd-member) join and
 * leave at random, 100 of them in all: a graceful leave (SIGTERM) or a
 * crash (SIGKILL) each time one goes. Two long-lived members in this
 * process watch it all. At the end every survivor's view must be what
 * etcd holds: the two here list exactly the live ids, and each surviving
 * process, asked (SIGUSR1), reports the index and total its application
 * holds (its base among the live ids in order, the sum of their workers);
 * no key of a member that left or crashed may outlive its lease; and the
 * long-lived members' process must not have grown: its RSS and open
 * descriptors, printed at the start and at the end.
 * CLUSTER_CHURN_SECONDS shortens it (the sanitizer runs: the plain run
 * does the two minutes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "etcdharness.h"
#include "etcdtest.h"

#define CHURN_TOTAL 100
#define MAX_ALIVE   20
#define TTL         2

struct proc
{
	char id[16];
	pid_t pid; /* 0: gone */
	int workers;
	int crashed;
	double gone_at;
};

static struct proc procs[CHURN_TOTAL];

/* This process's resident set (kB) and open descriptors. */
static void
usage_now(long *rss_kb, int *fds)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	DIR *d;
	struct dirent *e;

	*rss_kb = -1;
	*fds = 0;
	while(f && fgets(line, sizeof(line), f))
	{
		if(!strncmp(line, "VmRSS:", 6))
		{
			*rss_kb = atol(line + 6);
		}
	}
	if(f)
	{
		fclose(f);
	}
	d = opendir("/proc/self/fd");
	while(d && (e = readdir(d)))
	{
		*fds += e->d_name[0] != '.';
	}
	if(d)
	{
		*fds -= 1; /* the directory's own descriptor */
		closedir(d);
	}
}

/* etcd-member's -V VIEWFILE for member id (a static buffer: used at
 * once). */
static const char *const *
view_args(const char *id)
{
	static char path[PATH_MAX];
	static const char *args[3] = { "-V", path, NULL };

	snprintf(path, sizeof(path), "%s/view-%s", etcdh_dir(et_etcd), id);
	return args;
}

/* Ask surviving process p for its view (SIGUSR1) and read its answer:
 * index and total, or -2 -2 if none came within 5 s. */
static void
reported_view(const struct proc *p, int *index, int *total)
{
	double deadline = etcdh_now() + et_t(5);
	FILE *f = NULL;

	*index = *total = -2;
	remove(view_args(p->id)[1]);
	kill(p->pid, SIGUSR1);
	while(!(f = fopen(view_args(p->id)[1], "r")) && etcdh_now() < deadline)
	{
		usleep(20000);
	}
	if(f)
	{
		if(fscanf(f, "%d %d", index, total) != 2)
		{
			*index = *total = -2;
		}
		fclose(f);
	}
}

/* Wait until m's view is (index, total) and lists exactly the ids in
 * want (n of them), at most seconds. 0 or -1 (after printing it). */
static int
view_is(et_member *m, int index, int total, const char **want, size_t n, double seconds)
{
	CLUSTERMEMBER *ms = NULL;
	size_t count = 0, i, j, found;
	int ok = 0;
	double deadline = etcdh_now() + et_t(seconds);

	do
	{
		if(et_wait(m, index, total, (deadline - etcdh_now()) / etcdh_timeout_mult()) == 0 &&
			cluster_members(m->c, &ms, &count) == 0)
		{
			for(i = 0, found = 0; i < n; i++)
			{
				for(j = 0; j < count; j++)
				{
					found += !strcmp(ms[j].id, want[i]);
				}
			}
			ok = found == n && count == n;
			cluster_members_free(ms);
			ms = NULL;
		}
		if(!ok)
		{
			usleep(100000);
		}
	}
	while(!ok && etcdh_now() < deadline);
	if(!ok)
	{
		fprintf(stderr, "# %s: the view is not (%d, %d) with exactly the %zu live members (it lists %zu)\n", m->id, index, total,
			n, count);
		et_dump(m);
	}
	return ok ? 0 : -1;
}

static void
test_churn(void **state)
{
	const char *key = et_key("churn");
	const char *ids[CHURN_TOTAL + 2];
	et_member *a1, *a2;
	double t0, now, last_kill = 0;
	long rss0, rss1;
	int fds0, fds1, spawned = 0, alive = 0, left = 0, crashed = 0, total, i, k, stale = 0;
	size_t n_live = 0;
	unsigned seed = (unsigned) getpid();
	const char *env = getenv("CLUSTER_CHURN_SECONDS");
	double seconds = env && atof(env) > 0 ? atof(env) : 120;

	(void) state;
	fprintf(stderr, "# churn for %.0f s, seed %u\n", seconds, seed);
	srand(seed);
	a1 = et_new(key, "anchor1", 1, TTL);
	a2 = et_new(key, "anchor2", 2, TTL);
	assert_int_equal(et_join(a1), 0);
	assert_int_equal(et_join(a2), 0);
	assert_int_equal(et_wait(a1, 0, 3, 5), 0);
	usage_now(&rss0, &fds0);
	t0 = etcdh_now();
	while((now = etcdh_now()) - t0 < seconds)
	{
		int join = alive == 0 || (spawned < CHURN_TOTAL && alive < MAX_ALIVE && rand() % 10 < 6);

		if(join && spawned < CHURN_TOTAL)
		{
			struct proc *p = &procs[spawned];

			snprintf(p->id, sizeof(p->id), "c%03d", spawned);
			p->workers = 1 + rand() % 3;
			p->pid = et_spawn_ex(key, p->id, p->workers, etcdh_endpoint(et_etcd), TTL, view_args(p->id), NULL, NULL);
			if(p->pid <= 0)
			{
				fail_msg("member %s could not join: %s", p->id, strerror(errno));
			}
			spawned++;
			alive++;
		}
		else if(alive > (spawned < CHURN_TOTAL ? 0 : 5))
		{
			/* a random live one goes: a crash two times in five */
			do
			{
				k = rand() % spawned;
			}
			while(!procs[k].pid);
			procs[k].crashed = rand() % 5 < 2;
			et_kill(procs[k].pid, procs[k].crashed ? SIGKILL : SIGTERM);
			procs[k].pid = 0;
			procs[k].gone_at = etcdh_now();
			last_kill = procs[k].crashed ? procs[k].gone_at : last_kill;
			crashed += procs[k].crashed;
			left += !procs[k].crashed;
			alive--;
		}
		usleep((useconds_t) (200000 + rand() % 800000));
	}
	fprintf(stderr, "# %.0f s of churn: %d member processes joined, %d left (SIGTERM), %d crashed (SIGKILL), %d still live\n",
		etcdh_now() - t0, spawned, left, crashed, alive);

	/* the crashed members' leases run out within TTL */
	now = etcdh_now();
	if(last_kill + TTL + 1.0 > now)
	{
		usleep((useconds_t) ((last_kill + TTL + 1.0 - now) * 1e6));
	}
	total = 3;
	ids[n_live++] = "anchor1";
	ids[n_live++] = "anchor2";
	for(i = 0; i < spawned; i++)
	{
		int present = etcdh_get(et_etcd, et_member_key(key, procs[i].id), NULL) == 1;

		if(procs[i].pid)
		{
			total += procs[i].workers;
			ids[n_live++] = procs[i].id;
			if(!present)
			{
				fprintf(stderr, "# %s is live but not registered\n", procs[i].id);
				stale++;
			}
		}
		else if(present)
		{
			fprintf(stderr, "# %s %s %.1f s ago; its key is still there (TTL %d s)\n", procs[i].id,
				procs[i].crashed ? "crashed" : "left", etcdh_now() - procs[i].gone_at, TTL);
			stale++;
		}
	}
	assert_int_equal(stale, 0);
	assert_int_equal(etcdh_count(et_etcd, et_prefix(key)), (long long) n_live);
	/* every survivor in this process sees exactly the live members */
	assert_int_equal(view_is(a1, 0, total, ids, n_live, 5), 0);
	assert_int_equal(view_is(a2, 1, total, ids, n_live, 5), 0);
	usage_now(&rss1, &fds1);
	fprintf(stderr, "# the long-lived members' process: RSS %ld kB -> %ld kB (%+ld kB), descriptors %d -> %d\n", rss0, rss1,
		rss1 - rss0, fds0, fds1);
	/* the surviving processes: each one's base is the workers of the live
	 * ids before its own (the ids sort as anchor1, anchor2, c000, ...) */
	for(i = 0, k = 3; i < spawned; i++)
	{
		int index, got_total;

		if(!procs[i].pid)
		{
			continue;
		}
		reported_view(&procs[i], &index, &got_total);
		fprintf(stderr, "# survivor %s: held (%d, %d), expected (%d, %d)\n", procs[i].id, index, got_total, k, total);
		stale += index != k || got_total != total;
		k += procs[i].workers;
	}
	for(i = 0; i < spawned; i++)
	{
		if(procs[i].pid)
		{
			et_kill(procs[i].pid, SIGTERM);
		}
	}
	assert_int_equal(stale, 0);
	/* flat: the same descriptors (two connections per member, maybe
	 * reopened), and no growth a leak per event would make (about a
	 * thousand membership events went by) */
	assert_true(fds1 <= fds0 + 2);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	/* (the sanitizers keep freed memory in quarantine: printed only) */
	assert_true(rss1 - rss0 <= 1024);
#endif
	et_member_free(a1);
	et_member_free(a2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_churn),
	};

	if(etcdh_skip())
	{
		return 0;
	}
	return cmocka_run_group_tests(tests, et_setup, et_teardown);
}
