/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The public contract of include/libcluster.h against a real etcd (a fresh
 * private etcd per test), as regression tests for reported defects:
 * - fork rule: a forked child's cluster_destroy() leaves the parent's
 *   membership (key, lease, keepalive) untouched;
 * - a join waiting for a predecessor's lease can be cancelled by
 *   cluster_leave() from another thread (ECANCELED), promptly;
 * - one slow registry answer does not fail a join: it retries within the
 *   join deadline;
 * - balancer callbacks never run inside libcurl (not inside a write
 *   callback of the watch stream);
 * - cluster_view_fresh() follows the registry: stale soon after etcd
 *   freezes, current again once it answers;
 * - the status lives in its own key beside the member key (outside the
 *   member prefix, under the same lease);
 * - the lease is kept alive on one keepalive stream (etcd starts no new
 *   LeaseKeepAlive stream per keepalive), an instance holds two
 *   connections, and leave revokes at once.
 * Every wait is bounded: on a broken library the tests fail, never hang.
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "etcdharness.h"
#include "etcdtest.h"

/* ------------------------------------------------------------------ */
/* a control call on its own thread, awaited with deadlines            */
/* ------------------------------------------------------------------ */

/*
 * Runs cluster_join() or cluster_leave() on a thread of its own so that
 * the test can time it and give up on it instead of hanging with it.
 */
typedef struct call call;
struct call
{
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int (*fn)(CLUSTER *);
	CLUSTER *c;
	int done;     /* (lock) fn returned */
	int rc;       /* (lock) its return value */
	int err;      /* (lock) errno after it */
	double start; /* etcdh_now() before the call */
	double end;   /* (lock) etcdh_now() after it */
};

static void *
call_main(void *arg)
{
	call *k = arg;
	int rc, err;
	double end;

	rc = k->fn(k->c);
	err = errno;
	end = etcdh_now();
	pthread_mutex_lock(&k->lock);
	k->rc = rc;
	k->err = err;
	k->end = end;
	k->done = 1;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

static void
call_start(call *k, int (*fn)(CLUSTER *), CLUSTER *c)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cond, NULL);
	k->fn = fn;
	k->c = c;
	k->start = etcdh_now();
	assert_int_equal(pthread_create(&k->thread, NULL, call_main, k), 0);
}

/* Wait until the call returned or the etcdh_now() deadline passed;
 * returns non-zero if it returned. */
static int
call_wait(call *k, double deadline)
{
	int done;

	pthread_mutex_lock(&k->lock);
	while(!k->done)
	{
		double left = deadline - etcdh_now();
		struct timespec ts;

		if(left <= 0)
		{
			break;
		}
		pthread_mutex_unlock(&k->lock);
		/* short naps: the deadline is on the monotonic clock */
		ts.tv_sec = 0;
		ts.tv_nsec = (long) ((left < 0.01 ? left : 0.01) * 1e9);
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&k->lock);
	}
	done = k->done;
	pthread_mutex_unlock(&k->lock);
	return done;
}

/*
 * Reap the call's thread before the test's assertions (a failed assertion
 * must not free the member under a running call). A call that has not
 * returned within the hard limit cannot be cleaned up: the program stops.
 */
static void
call_finish(call *k, const char *what, double hard_limit)
{
	if(!call_wait(k, k->start + et_t(hard_limit)))
	{
		fprintf(stderr, "# %s has not returned after %.1f s: giving up on the program\n", what, etcdh_now() - k->start);
		etcdh_resume(et_etcd);
		etcdh_destroy(et_etcd);
		_exit(1);
	}
	pthread_join(k->thread, NULL);
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->cond);
}

/* ------------------------------------------------------------------ */
/* 1. fork rule                                                         */
/* ------------------------------------------------------------------ */

/*
 * Wait for the child at most seconds, watching the parent's key in etcd
 * meanwhile (*gone_at: seconds after t0 when it was first seen missing, or
 * -1). kill -9 the child if it is still there; GDB_CHILD=1 in the
 * environment prints its stack first. Returns its wait status, or -1 if
 * it had to be killed.
 */
static int
reap_bounded(pid_t pid, double seconds, const char *mk, double t0, double *gone_at)
{
	double deadline = etcdh_now() + et_t(seconds);
	const char *gdb = getenv("GDB_CHILD");
	int status;
	pid_t r;

	*gone_at = -1;
	do
	{
		r = waitpid(pid, &status, WNOHANG);
		if(r == pid)
		{
			return status;
		}
		if(*gone_at < 0 && etcdh_get(et_etcd, mk, NULL) == 0)
		{
			*gone_at = etcdh_now() - t0;
		}
		usleep(20000);
	}
	while(etcdh_now() < deadline);
	if(gdb && *gdb == '1')
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "gdb -q -batch -p %ld -ex 'thread apply all bt' >&2 </dev/null", (long) pid);
		if(system(cmd) == -1)
		{
			fprintf(stderr, "# cannot run gdb\n");
		}
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* The header: "library threads do not survive fork() ... the parent's
 * membership is untouched". A child that only destroys its copy of the
 * handle must neither revoke the parent's lease nor delete its key, and
 * must not hang doing so. */
static void
test_forked_child_destroy_keeps_parent_registered(void **state)
{
	const char *key = et_key("fork");
	const int ttl = 2;
	et_member *m;
	char mk[512];
	long long lease, now_lease;
	double t0, window_end, took, gone_at;
	int status, child_ok, calls;
	unsigned int alarm_s;
	pid_t pid;

	(void) state;
	m = et_new(key, "forker", 1, ttl);
	assert_int_equal(et_join(m), 0);
	assert_int_equal(et_wait(m, 0, 1, 3), 0);
	snprintf(mk, sizeof(mk), "%s", et_member_key(key, "forker"));
	assert_int_equal(etcdh_get(et_etcd, mk, NULL), 1);
	lease = etcdh_key_lease(et_etcd, mk);
	assert_true(lease > 0);
	fprintf(stderr, "# parent %ld joined as %s with lease %llx\n", (long) getpid(), mk, (unsigned long long) lease);

	calls = et_calls(m);
	/* the child's own bound; GDB_CHILD=1 leaves it to reap_bounded() */
	alarm_s = getenv("GDB_CHILD") && !strcmp(getenv("GDB_CHILD"), "1") ? 0 : (unsigned int) et_t(5);
	fflush(stdout);
	fflush(stderr);
	t0 = etcdh_now();
	pid = fork();
	assert_true(pid >= 0);
	if(pid == 0)
	{
		/* the child: destroy the inherited handle and nothing else */
		alarm(alarm_s);
		cluster_destroy(m->c);
		_exit(0);
	}
	status = reap_bounded(pid, 6, mk, t0, &gone_at);
	took = etcdh_now() - t0;
	child_ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if(status == -1)
	{
		fprintf(stderr, "# child's cluster_destroy() hung: killed after %.3f s\n", took);
	}
	else if(WIFSIGNALED(status))
	{
		fprintf(stderr, "# child died of signal %d (%s) after %.3f s\n", WTERMSIG(status), strsignal(WTERMSIG(status)), took);
	}
	else
	{
		fprintf(stderr, "# child exited with %d after %.3f s\n", WEXITSTATUS(status), took);
	}

	/* the parent's record: same key, same lease, all along */
	if(gone_at >= 0)
	{
		fail_msg("the parent's member key %s vanished %.3f s after the fork, during the child's cluster_destroy()", mk, gone_at);
	}
	if(etcdh_get(et_etcd, mk, NULL) != 1)
	{
		fail_msg("the parent's member key %s vanished after the child's cluster_destroy() (child took %.3f s)", mk, took);
	}
	now_lease = etcdh_key_lease(et_etcd, mk);
	if(now_lease != lease)
	{
		fail_msg("the parent's key %s now has lease %llx, was %llx", mk, (unsigned long long) now_lease, (unsigned long long) lease);
	}
	if(et_calls(m) != calls)
	{
		et_dump(m);
		fail_msg("the parent got %d balancer callback(s) while the child destroyed its copy of the handle", et_calls(m) - calls);
	}
	if(!child_ok)
	{
		fail_msg("the child's cluster_destroy() did not return within %.1f s (status %d)", et_t(5), status);
	}

	/* 2 x TTL later the key must still be there: the parent's keepalive
	 * is alive (watched throughout so that a loss fails at once) */
	window_end = etcdh_now() + 2.0 * ttl;
	while(etcdh_now() < window_end)
	{
		if(etcdh_get(et_etcd, mk, NULL) != 1)
		{
			fail_msg("the parent's key %s expired %.3f s after the fork (TTL %d s): its keepalive died", mk, etcdh_now() - t0, ttl);
		}
		usleep(100000);
	}
	assert_int_equal(etcdh_key_lease(et_etcd, mk), lease);
	assert_int_equal(et_calls(m), calls);
	assert_int_equal(cluster_total(m->c), 1);
	assert_int_equal(cluster_index(m->c, 0), 0);
	et_member_free(m);
}

/* ------------------------------------------------------------------ */
/* 2. cancelling a join                                                 */
/* ------------------------------------------------------------------ */

/* A join waiting for a crashed predecessor's lease must be cancellable:
 * cluster_leave() from another thread returns promptly and the join fails
 * with ECANCELED. */
static void
test_leave_cancels_a_waiting_join(void **state)
{
	const char *key = et_key("cancel");
	const double bound = et_t(1.5);
	et_member *m;
	call join, leave;
	pid_t pid;
	int leave_done, join_done;
	double t_leave, join_at;

	(void) state;
	pid = et_spawn(key, "dup", 1, etcdh_endpoint(et_etcd), 10, NULL, NULL);
	assert_true(pid > 0);
	et_kill(pid, SIGKILL);
	/* the predecessor's key lingers until its lease runs out (~10 s) */
	assert_int_equal(etcdh_get(et_etcd, et_member_key(key, "dup"), NULL), 1);

	m = et_new(key, "dup", 1, 10);
	call_start(&join, cluster_join, m->c);
	usleep(500000);
	pthread_mutex_lock(&join.lock);
	join_done = join.done;
	pthread_mutex_unlock(&join.lock);
	if(join_done)
	{
		call_finish(&join, "cluster_join", 1);
		fail_msg("cluster_join() returned %d (%s) before it could be cancelled: it did not wait for the predecessor", join.rc, strerror(join.err));
	}

	call_start(&leave, cluster_leave, m->c);
	leave_done = call_wait(&leave, leave.start + bound);
	join_done = call_wait(&join, leave.start + bound);
	/* on a library that cannot cancel, both end when the join gives up */
	call_finish(&leave, "cluster_leave", 20);
	call_finish(&join, "cluster_join", 20);
	t_leave = leave.end - leave.start;
	join_at = join.end - leave.start;
	fprintf(stderr, "# cluster_leave() took %.3f s; cluster_join() returned %d (%s) %.3f s after the leave started (bound %.3f s)\n",
		t_leave, join.rc, join.rc ? strerror(join.err) : "ok", join_at, bound);
	if(!leave_done)
	{
		fail_msg("cluster_leave() blocked behind the waiting join for %.3f s (bound %.3f s)", t_leave, bound);
	}
	if(!join_done)
	{
		fail_msg("the cancelled cluster_join() returned only %.3f s after cluster_leave() (bound %.3f s)", join_at, bound);
	}
	assert_int_equal(leave.rc, 0);
	if(join.rc != -1 || join.err != ECANCELED)
	{
		fail_msg("cancelled cluster_join() returned %d errno %d (%s), expected -1 ECANCELED", join.rc, join.err, strerror(join.err));
	}
	et_member_free(m);
}

/* ------------------------------------------------------------------ */
/* 3. a slow registry                                                   */
/* ------------------------------------------------------------------ */

/* etcd frozen for 2.5 s at join time (longer than one request timeout,
 * well within the join deadline of at least 10 s): the join retries and
 * succeeds. */
static void
test_join_survives_a_slow_registry(void **state)
{
	const char *key = et_key("slowjoin");
	et_member *m;
	call join;
	double t0, resumed;
	int done;

	(void) state;
	m = et_new(key, "slow", 1, 5);
	assert_int_equal(etcdh_pause(et_etcd), 0);
	t0 = etcdh_now();
	call_start(&join, cluster_join, m->c);
	usleep(2500000);
	assert_int_equal(etcdh_resume(et_etcd), 0);
	resumed = etcdh_now() - t0;
	done = call_wait(&join, t0 + et_t(15));
	call_finish(&join, "cluster_join", 30);
	fprintf(stderr, "# etcd resumed after %.3f s; cluster_join() returned %d (%s) after %.3f s\n",
		resumed, join.rc, join.rc ? strerror(join.err) : "ok", join.end - join.start);
	if(!done)
	{
		fail_msg("cluster_join() did not return within %.1f s of etcd freezing", et_t(15));
	}
	if(join.rc != 0)
	{
		fail_msg("cluster_join() failed with %s after %.3f s although etcd answered again after %.3f s",
			strerror(join.err), join.end - join.start, resumed);
	}
	assert_int_equal(etcdh_get(et_etcd, et_member_key(key, "slow"), NULL), 1);
	assert_int_equal(et_wait(m, 0, 1, 3), 0);
	et_member_free(m);
}

/* ------------------------------------------------------------------ */
/* 4. callbacks outside libcurl                                         */
/* ------------------------------------------------------------------ */

#define CB_MAX 16

static pthread_mutex_t cb_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cb_cond = PTHREAD_COND_INITIALIZER;
static int cb_calls;                  /* (cb_lock) */
static int cb_in_curl[CB_MAX];        /* (cb_lock) call i ran inside libcurl */
static int cb_main[CB_MAX];           /* (cb_lock) call i ran on the test's thread */
static CLUSTERSTATE cb_state[CB_MAX]; /* (cb_lock) */
static char cb_frame[CB_MAX][256];    /* (cb_lock) the libcurl frame seen */
static pthread_t cb_test_thread;

/* Whether a libcurl frame is on this thread's stack: the unwinder's view
 * of the return addresses, each mapped to its object file. */
static int
inside_libcurl(char *frame, size_t size)
{
	void *pcs[128];
	int n, i;

	n = backtrace(pcs, 128);
	for(i = 0; i < n; i++)
	{
		Dl_info info;

		if(dladdr(pcs[i], &info) && info.dli_fname && strstr(info.dli_fname, "libcurl"))
		{
			snprintf(frame, size, "frame %d: %s(%s)", i, info.dli_fname, info.dli_sname ? info.dli_sname : "?");
			return 1;
		}
	}
	return 0;
}

/* Balancer callback of member A: records where it ran. */
static int
curl_probe(CLUSTER *c, CLUSTERSTATE *st)
{
	char frame[256] = "";
	int in = inside_libcurl(frame, sizeof(frame));

	(void) c;
	pthread_mutex_lock(&cb_lock);
	if(cb_calls < CB_MAX)
	{
		cb_in_curl[cb_calls] = in;
		cb_main[cb_calls] = pthread_equal(pthread_self(), cb_test_thread);
		cb_state[cb_calls] = *st;
		snprintf(cb_frame[cb_calls], sizeof(cb_frame[cb_calls]), "%s", frame);
	}
	cb_calls++;
	pthread_cond_broadcast(&cb_cond);
	pthread_mutex_unlock(&cb_lock);
	fprintf(stderr, "# %.3f a: callback index %d total %d on the %s thread%s%s\n", etcdh_now(), st->index, st->total,
		pthread_equal(pthread_self(), cb_test_thread) ? "test's" : "library's", in ? ", inside libcurl: " : "", frame);
	return 0;
}

/* Wait until A has had at least n callbacks; 0 or -1 on timeout. */
static int
cb_wait(int n, double seconds)
{
	double deadline = etcdh_now() + et_t(seconds);
	int got;

	pthread_mutex_lock(&cb_lock);
	while(cb_calls < n && etcdh_now() < deadline)
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000000L;
		if(ts.tv_nsec >= 1000000000L)
		{
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&cb_cond, &cb_lock, &ts);
	}
	got = cb_calls;
	pthread_mutex_unlock(&cb_lock);
	return got >= n ? 0 : -1;
}

/* A's first callback runs inside cluster_join() on the test's thread; the
 * one for B's arrival runs on A's balancer thread. Neither may run inside
 * libcurl (a callback inside curl's write callback stalls the watch and
 * may not re-enter libcurl on that handle). */
static void
test_watch_callbacks_run_outside_libcurl(void **state)
{
	const char *key = et_key("curlcb");
	et_member *a, *b;
	int i, n;

	(void) state;
	pthread_mutex_lock(&cb_lock);
	cb_calls = 0;
	cb_test_thread = pthread_self();
	pthread_mutex_unlock(&cb_lock);
	a = et_new(key, "a", 1, 5);
	assert_int_equal(cluster_set_balancer(a->c, curl_probe), 0);
	b = et_new(key, "b", 1, 5);
	assert_int_equal(et_join(a), 0);
	assert_int_equal(cb_wait(1, 3), 0);
	assert_int_equal(et_join(b), 0);
	if(cb_wait(2, 5))
	{
		fail_msg("member a got no callback for b's arrival within %.1f s", et_t(5));
	}
	pthread_mutex_lock(&cb_lock);
	n = cb_calls < CB_MAX ? cb_calls : CB_MAX;
	pthread_mutex_unlock(&cb_lock);
	/* the join and the watch thread must both have been exercised */
	assert_true(cb_main[0]);
	assert_int_equal(cb_state[1].total, 2);
	assert_false(cb_main[1]);
	for(i = 0; i < n; i++)
	{
		if(cb_in_curl[i])
		{
			fail_msg("balancer callback %d of %d (index %d total %d, on the %s thread) ran inside libcurl: %s",
				i + 1, n, cb_state[i].index, cb_state[i].total, cb_main[i] ? "test's" : "balancer", cb_frame[i]);
		}
	}
	et_member_free(b);
	et_member_free(a);
}

/* Poll cluster_view_fresh() until it says want, at most seconds (x the
 * multiplier); returns the time it took, or -1. */
static double
await_fresh(CLUSTER *c, int want, double seconds)
{
	double t0 = etcdh_now(), limit = et_t(seconds);

	while(etcdh_now() - t0 < limit)
	{
		if(cluster_view_fresh(c, NULL) == want)
		{
			return etcdh_now() - t0;
		}
		usleep(10000);
	}
	return -1;
}

/* The view says whether it is current: fresh after the join (with the
 * registry's revision), stale within two thirds of the TTL of etcd
 * freezing (the watch heartbeat goes unanswered), fresh again once etcd
 * answers; and an unjoined handle says EPERM. */
static void
test_view_freshness_follows_the_registry(void **state)
{
	et_member *m;
	long long rev = 0;
	double took;

	(void) state;
	m = et_new(et_key("fresh"), "f", 1, 3);
	errno = 0;
	assert_int_equal(cluster_view_fresh(m->c, &rev), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(et_join(m), 0);
	if(await_fresh(m->c, 1, 2.0) < 0)
	{
		fail_msg("the view is not fresh after the join");
	}
	assert_int_equal(cluster_view_fresh(m->c, &rev), 1);
	assert_true(rev > 0);
	assert_int_equal(etcdh_pause(et_etcd), 0);
	took = await_fresh(m->c, 0, 3.0);
	fprintf(stderr, "# etcd frozen: the view was marked stale after %.3f s (TTL 3 s)\n", took);
	assert_int_equal(etcdh_resume(et_etcd), 0);
	if(took < 0)
	{
		fail_msg("the view still claims to be current 3 s after etcd froze");
	}
	took = await_fresh(m->c, 1, 10.0);
	fprintf(stderr, "# etcd resumed: the view was current again after %.3f s\n", took);
	assert_true(took >= 0);
	assert_int_equal(cluster_view_fresh(NULL, NULL), -1);
	assert_int_equal(errno, EINVAL);
	et_member_free(m);
}

/* ------------------------------------------------------------------ */
/* key layout and connections                                          */
/* ------------------------------------------------------------------ */

/* Wait until the metric reaches at least want; its last value. */
static double
await_metric(const char *name, const char *labels, double want, double seconds)
{
	double deadline = etcdh_now() + et_t(seconds), v;

	while((v = et_metric(name, labels)) < want && etcdh_now() < deadline)
	{
		usleep(20000);
	}
	return v;
}

/*
 * A join reads the member set, and an advisor user's join the statuses
 * too, inside its registration transaction: etcd handles no Range for
 * it, and its first view is whole (the other member, its worker count
 * and its status). Before, each was a request of its own after the
 * transaction, on the way to the joiner's first callback.
 */
static void
test_join_reads_in_its_registration(void **state)
{
	const char *key = et_key("joinread");
	const char *range = "grpc_method=\"Range\"";
	CLUSTERADVISORCONFIG cfg;
	CLUSTERMEMBER *ms = NULL;
	size_t n = 0, i;
	et_member *a, *b;
	double r0, r1;
	int seen = 0;

	(void) state;
	a = et_new(key, "a", 3, 5);
	assert_int_equal(cluster_set_address(a->c, "ws://a:1"), 0);
	assert_int_equal(cluster_report(a->c, 7, 100), 0);
	assert_int_equal(et_join(a), 0);
	et_check(a, 0, 3, 3, 5);
	b = et_new(key, "b", 1, 5);
	/* an advisor user: it keeps everyone's status from its join on */
	cluster_advisor_config_init(&cfg);
	assert_int_equal(cluster_set_advisor_config(b->c, &cfg), 0);
	r0 = et_metric("grpc_server_started_total", range);
	assert_int_equal(et_join(b), 0);
	r1 = et_metric("grpc_server_started_total", range);
	et_check(b, 3, 1, 4, 5);
	assert_int_equal(cluster_peers(b->c, &ms, &n), 0);
	for(i = 0; i < n; i++)
	{
		seen |= !strcmp(ms[i].id, "a") && ms[i].workers == 3 && ms[i].has_status && ms[i].load == 7;
	}
	cluster_members_free(ms);
	fprintf(stderr, "# Range requests during the join: %.0f\n", r1 - r0);
	assert_true(seen);
	assert_true(r1 == r0);
	et_member_free(b);
	et_member_free(a);
}

/* The status is written beside the member key, not into it: under
 * /<key>/production@status/<id> (outside the member prefix, so a member
 * watch never sees it), under the member's lease; the member value keeps
 * only the worker count. Leave removes both. */
static void
test_status_key_beside_member_key(void **state)
{
	const char *key = et_key("statuskey");
	char skey[256], *v = NULL;
	double deadline;
	et_member *m;
	long long lease;

	(void) state;
	snprintf(skey, sizeof(skey), "/%s/production@status/s1", key);
	m = et_new(key, "s1", 2, 3);
	assert_int_equal(et_join(m), 0);
	assert_int_equal(cluster_set_address(m->c, "ws://s1:1"), 0);
	assert_int_equal(cluster_report(m->c, 7, 10), 0);
	deadline = etcdh_now() + et_t(5);
	while(etcdh_get(et_etcd, skey, NULL) != 1 && etcdh_now() < deadline)
	{
		usleep(10000);
	}
	assert_int_equal(etcdh_get(et_etcd, skey, &v), 1);
	assert_non_null(strstr(v, "\"address\":\"ws://s1:1\""));
	assert_non_null(strstr(v, "\"load\":7"));
	assert_non_null(strstr(v, "\"capacity\":10"));
	assert_null(strstr(v, "workers"));
	free(v);
	v = NULL;
	assert_int_equal(etcdh_get(et_etcd, et_member_key(key, "s1"), &v), 1);
	assert_string_equal(v, "{\"workers\":2}");
	free(v);
	/* the member prefix holds the member key only */
	assert_int_equal(etcdh_count(et_etcd, et_prefix(key)), 1);
	lease = etcdh_key_lease(et_etcd, et_member_key(key, "s1"));
	assert_true(lease > 0);
	assert_int_equal(etcdh_key_lease(et_etcd, skey), lease);
	assert_int_equal(cluster_leave(m->c), 0);
	assert_int_equal(etcdh_count(et_etcd, et_root(key)), 0);
	et_member_free(m);
}

/*
 * The lease lives on one keepalive stream: over several TTLs etcd counts
 * keepalive messages but no new LeaseKeepAlive streams (the old engine
 * started one per keepalive). The instance holds two connections (watch
 * and ping, counted by a proxy in front of etcd), and leave revokes the
 * lease: the key is gone at once (revoked, not expired).
 */
static void
test_keepalive_stream_and_leave_connections(void **state)
{
	const char *key = et_key("kastream");
	const char *ka = "grpc_method=\"LeaseKeepAlive\"";
	const int ttl = 2;
	etcdh_proxy *p;
	et_member *m;
	double streams0, streams1, msgs0, msgs1, revoked0;
	unsigned long conns;

	(void) state;
	assert_int_equal(etcdh_proxy_start(et_etcd, &p), 0);
	m = et_new_at(key, "k1", 1, etcdh_proxy_endpoint(p), ttl);
	assert_int_equal(et_join(m), 0);
	et_check(m, 0, 1, 1, 5);
	streams0 = await_metric("grpc_server_started_total", ka, 1, ttl);
	msgs0 = et_metric("grpc_server_msg_received_total", ka);
	assert_true(streams0 >= 1);
	/* a keepalive every TTL/3: six of them span two TTLs at least */
	msgs1 = await_metric("grpc_server_msg_received_total", ka, msgs0 + 6, 4 * ttl);
	streams1 = et_metric("grpc_server_started_total", ka);
	fprintf(stderr, "# keepalive messages %.0f -> %.0f, LeaseKeepAlive streams %.0f -> %.0f, connections %lu\n", msgs0, msgs1, streams0, streams1,
		etcdh_proxy_accepted(p));
	assert_true(msgs1 >= msgs0 + 6);
	assert_true(streams1 == streams0);
	assert_int_equal(etcdh_count(et_etcd, et_prefix(key)), 1);
	conns = etcdh_proxy_accepted(p);
	assert_int_equal(conns, 2);

	/* leave revokes at once (the key is gone now, not after the TTL). Its
	 * revoke cannot reuse the keepalive stream's connection over plain
	 * HTTP/1.1 (etcd answers a duplex stream with "Connection: close"),
	 * so it opens one, and only one */
	revoked0 = et_metric("etcd_debugging_lease_revoked_total", NULL);
	assert_int_equal(cluster_leave(m->c), 0);
	assert_int_equal(etcdh_count(et_etcd, et_prefix(key)), 0);
	assert_true(et_metric("etcd_debugging_lease_revoked_total", NULL) >= revoked0 + 1);
	fprintf(stderr, "# connections after leave: %lu\n", etcdh_proxy_accepted(p));
	assert_true(etcdh_proxy_accepted(p) <= conns + 1);
	et_member_free(m);
	etcdh_proxy_stop(p);
}

/* A quiet member's watch sends etcd no heartbeat of its own while its
 * keepalives are answered by the same endpoint (issue 13: each progress
 * request cost etcd as much as a keepalive). Without the keepalives'
 * word it would send one every TTL/3: six or more over the same window. */
static void
test_quiet_watch_leans_on_the_keepalives(void **state)
{
	const char *ka = "grpc_method=\"LeaseKeepAlive\"";
	const char *watch = "grpc_method=\"Watch\"";
	const int ttl = 2;
	et_member *m;
	double ka0, ka1, w0, w1;

	(void) state;
	m = et_new(et_key("lean"), "l1", 1, ttl);
	assert_int_equal(et_join(m), 0);
	et_check(m, 0, 1, 1, 5);
	ka0 = await_metric("grpc_server_msg_received_total", ka, 1, ttl);
	w0 = et_metric("grpc_server_msg_received_total", watch);
	ka1 = await_metric("grpc_server_msg_received_total", ka, ka0 + 6, 4 * ttl);
	w1 = et_metric("grpc_server_msg_received_total", watch);
	fprintf(stderr, "# keepalive messages %.0f -> %.0f; watch messages received %.0f -> %.0f\n", ka0, ka1, w0, w1);
	assert_true(ka1 >= ka0 + 6);
	assert_true(w1 - w0 <= 1);
	assert_int_equal(cluster_view_fresh(m->c, NULL), 1);
	et_member_free(m);
}

/* A member whose status changes faster than its keepalives come does
 * not open a connection per write: after the first write has ended the
 * keepalive stream (and, over HTTP/1.1, its connection), keepalives go
 * as plain requests on the same connection as the writes. */
static void
test_frequent_writes_keep_their_connection(void **state)
{
	const char *key = et_key("kawrites");
	const int ttl = 3;
	CLUSTERADVISORCONFIG cfg;
	etcdh_proxy *p;
	et_member *m;
	double puts0, puts, t_end;
	unsigned long conns;
	long long k = 0;

	(void) state;
	assert_int_equal(etcdh_proxy_start(et_etcd, &p), 0);
	m = et_new_at(key, "w1", 1, etcdh_proxy_endpoint(p), ttl);
	cluster_advisor_config_init(&cfg);
	cfg.report_interval_ms = 200;
	cfg.status_writes_per_second = 0;
	assert_int_equal(cluster_set_advisor_config(m->c, &cfg), 0);
	assert_int_equal(et_join(m), 0);
	et_check(m, 0, 1, 1, 5);
	/* settle into the pattern: a write every 200 ms for two keepalives */
	t_end = etcdh_now() + 2.0;
	while(etcdh_now() < t_end)
	{
		assert_int_equal(cluster_report(m->c, ++k * 100, -1), 0);
		usleep(50000);
	}
	conns = etcdh_proxy_accepted(p);
	puts0 = et_metric("etcd_mvcc_put_total", NULL);
	t_end = etcdh_now() + 4.0;
	while(etcdh_now() < t_end)
	{
		assert_int_equal(cluster_report(m->c, ++k * 100, -1), 0);
		usleep(50000);
	}
	puts = et_metric("etcd_mvcc_put_total", NULL) - puts0;
	fprintf(stderr, "# %.0f status writes in 4 s: %lu new connections\n", puts, etcdh_proxy_accepted(p) - conns);
	assert_true(puts >= 8);
	assert_true(etcdh_proxy_accepted(p) - conns <= 1);
	assert_int_equal(etcdh_count(et_etcd, et_prefix(key)), 1);
	et_member_free(m);
	etcdh_proxy_stop(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_forked_child_destroy_keeps_parent_registered, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_leave_cancels_a_waiting_join, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_join_survives_a_slow_registry, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_watch_callbacks_run_outside_libcurl, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_view_freshness_follows_the_registry, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_status_key_beside_member_key, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_join_reads_in_its_registration, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_keepalive_stream_and_leave_connections, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_quiet_watch_leans_on_the_keepalives, et_setup, et_teardown),
		cmocka_unit_test_setup_teardown(test_frequent_writes_keep_their_connection, et_setup, et_teardown),
	};

	if(etcdh_skip())
	{
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
