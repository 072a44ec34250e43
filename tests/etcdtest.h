/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the etcd integration tests (cmocka programs): the program's
 * private etcd with cmocka set-up and teardown, in-process members whose
 * balancer callbacks are recorded and can be awaited with deadlines,
 * assertions on a member's view, registry key builders, and members run
 * as separate processes (tests/etcd-member) so that they can be killed
 * with SIGKILL. Written once here so that every etcd test program checks
 * the same things the same way.
 */
#ifndef ETCDTEST_H_
#define ETCDTEST_H_ 1

#include <pthread.h>
#include <sys/types.h>
#include <libcluster.h>

#define ET_HISTORY 64

typedef struct et_member et_member;
struct et_member
{
	CLUSTER *c;
	char id[CLUSTER_NAME_MAX + 1];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int calls;                     /* (lock) balancer callbacks so far */
	CLUSTERSTATE last;             /* (lock) state of the last callback */
	CLUSTERSTATE hist[ET_HISTORY]; /* (lock) first ET_HISTORY callbacks */
	double when[ET_HISTORY];       /* (lock) their etcdh_now() times */
};

/* Create and configure (key, id, workers, registry, ttl; ttl 0 keeps the
 * default). Fails the test on any error. */
et_member *et_member_new(const char *key, const char *id, int workers, const char *registry, int ttl);
/* cluster_destroy() and free. NULL ok. */
void et_member_free(et_member *m);

/* Free every member still alive (test teardown after a failure). */
void et_free_all(void);

/* Join actively / passively; returns what the library returned. */
int et_join(et_member *m);
int et_join_passive(et_member *m);

/* Callback count and last reported state, under the member's lock. */
int et_calls(et_member *m);
CLUSTERSTATE et_last(et_member *m);

/*
 * Wait until the member's last callback reports (index, total), at most
 * seconds x CLUSTER_TEST_TIMEOUT_MULTIPLIER. 0 when reached; -1 after
 * printing the member's callback history.
 */
int et_wait(et_member *m, int index, int total, double seconds);

/*
 * Wait until the member has had more than calls callbacks, at most
 * seconds x multiplier. 0 if it has, -1 on timeout (used to watch a
 * window in which nothing may happen).
 */
int et_wait_calls(et_member *m, int calls, double seconds);

/* Print the member's callback history to stderr. */
void et_dump(et_member *m);
/* Count the in-process members' log lines that contain needle (from now
 * on; NULL or "" stops counting), and wait until count of them were
 * logged, at most seconds (x the environment multiplier): 0, or -1. */
void et_log_watch(const char *needle);
int et_log_wait(int count, double seconds);

/* Seconds x CLUSTER_TEST_TIMEOUT_MULTIPLIER. */
double et_t(double seconds);

/*
 * Run tests/etcd-member as a child process that joins and then waits for
 * a signal. Returns its PID after it reported a successful join (its
 * index and total in *index / *total if non-NULL), or -1 (join failed:
 * errno set to the child's errno, or the child did not answer in time).
 */
pid_t et_spawn(const char *key, const char *id, int workers, const char *registry, int ttl, int *index, int *total);
/* The same with extra etcd-member arguments (NULL-terminated; NULL: none). */
pid_t et_spawn_ex(const char *key, const char *id, int workers, const char *registry, int ttl, const char *const *extra, int *index, int *total);
/* SIGKILL / SIGTERM the child and reap it; returns its wait status. */
int et_kill(pid_t pid, int sig);

/* Start a private etcd for a test group (extra etcd flags or NULL) and
 * say where it runs on stderr. 0, or -1 after printing why. */
struct etcdh;
int et_etcd_start(struct etcdh **h, const char *const *extra_args);

/* Start an etcd cluster of n members and say where each runs on
 * stderr. 0, or -1 after printing why. */
struct etcdh_cluster;
int et_cluster_start(struct etcdh_cluster **cl, int n);

/* The program's private etcd: et_setup() starts it, et_teardown() stops
 * it; NULL in between when set-up and teardown run per test. */
extern struct etcdh *et_etcd;

/* cmocka set-up (per test or per group): start et_etcd. 0 or -1. */
int et_setup(void **state);
/* cmocka teardown (per test or per group): wake et_etcd if a failed test
 * left it frozen, free the members still alive, stop et_etcd. 0. */
int et_teardown(void **state);
/* cmocka teardown between the tests of a group sharing one etcd: free
 * the members a failed test left behind, so that they do not run on into
 * the next test. 0. */
int et_teardown_members(void **state);

/* et_member_new() that fails the test instead of returning NULL; on
 * et_etcd, or (et_new_at) on registry (NULL: et_etcd). */
et_member *et_new(const char *key, const char *id, int workers, int ttl);
et_member *et_new_at(const char *key, const char *id, int workers, const char *registry, int ttl);

/*
 * Fail the test unless, within seconds x multiplier, the member's last
 * callback says (index, workers, total) and cluster_state(),
 * cluster_total() and cluster_index() agree with it (active member).
 * On failure, the member's callback history and et_etcd's log tail go to
 * stderr first.
 */
void et_check(et_member *m, int index, int workers, int total, double seconds);

/*
 * The README cluster: node1 -n 2, node2, node3 -n 4 on registry (NULL:
 * et_etcd) join one after the other into m[0..2]; each is then checked
 * at bases 0, 2, 3 of total 7 within seconds.
 */
/* One counter of et_etcd's /metrics (labels may be NULL). */
double et_metric(const char *name, const char *labels);

void et_join_214(const char *key, et_member **m, const char *registry, int ttl, double seconds);

/* et_member_free() each of m[0..n-1] (NULL entries ok). */
void et_free(et_member **m, int n);

/* A loopback port nobody listens on (found free, then released): an
 * endpoint that refuses every connection. Fails the test on error. */
int et_dead_port(void);

/* Unique cluster key for this test run: "it-<name>-<pid>". */
const char *et_key(const char *name);

/*
 * Registry paths (README: /<key>/[<partition>/]<env>/<id>) for the
 * default environment. Each call returns one of a ring of static buffers,
 * so a few results can be used together (main thread only):
 * et_root: "/<key>/" (everything the cluster stores);
 * et_prefix: "/<key>/production/" (its members);
 * et_member_key: "/<key>/production/<id>" (one member's record).
 */
const char *et_root(const char *key);
const char *et_prefix(const char *key);
const char *et_member_key(const char *key, const char *id);

#endif /*!ETCDTEST_H_*/
