/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the etcd integration tests (see etcdtest.h): the one copy
 * of what every etcd test program needs around its scenarios.
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "etcdtest.h"
#include "etcdharness.h"

#define ET_MAX_MEMBERS 256

static pthread_mutex_t et_table_lock = PTHREAD_MUTEX_INITIALIZER;
static et_member *et_table[ET_MAX_MEMBERS];

etcdh *et_etcd;

double
et_t(double seconds)
{
	return seconds * etcdh_timeout_mult();
}

/* The log text et_log_wait() counts (et_log_watch()), and its count. */
static pthread_mutex_t et_log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t et_log_cond = PTHREAD_COND_INITIALIZER;
static char et_log_needle[256];
static int et_log_hits;

/* Library log lines go to stderr with a timestamp, so a failed test's
 * log shows what each member did and when; lines holding the watched
 * text are counted. */
static void
et_logger(int priority, const char *format, va_list ap)
{
	char line[2048];
	int n;

	n = snprintf(line, sizeof(line), "# %.3f libcluster<%d>: ", etcdh_now(), priority);
	vsnprintf(line + n, sizeof(line) - (size_t) n, format, ap);
	fputs(line, stderr);
	pthread_mutex_lock(&et_log_lock);
	if(et_log_needle[0] && strstr(line + n, et_log_needle))
	{
		et_log_hits++;
		pthread_cond_broadcast(&et_log_cond);
	}
	pthread_mutex_unlock(&et_log_lock);
}

void
et_log_watch(const char *needle)
{
	pthread_mutex_lock(&et_log_lock);
	snprintf(et_log_needle, sizeof(et_log_needle), "%s", needle ? needle : "");
	et_log_hits = 0;
	pthread_mutex_unlock(&et_log_lock);
}

static et_member *
et_find(CLUSTER *c)
{
	et_member *m = NULL;
	int i;

	pthread_mutex_lock(&et_table_lock);
	for(i = 0; i < ET_MAX_MEMBERS; i++)
	{
		if(et_table[i] && et_table[i]->c == c)
		{
			m = et_table[i];
			break;
		}
	}
	pthread_mutex_unlock(&et_table_lock);
	return m;
}

static int
et_balancer(CLUSTER *c, CLUSTERSTATE *state)
{
	et_member *m = et_find(c);

	if(!m)
	{
		fprintf(stderr, "# callback for an unknown handle %p\n", (void *) c);
		return 0;
	}
	pthread_mutex_lock(&m->lock);
	if(m->calls < ET_HISTORY)
	{
		m->hist[m->calls] = *state;
		m->when[m->calls] = etcdh_now();
	}
	m->calls++;
	m->last = *state;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	fprintf(stderr, "# %.3f %s: callback index %d workers %d total %d passive %d\n",
		etcdh_now(), m->id, state->index, state->workers, state->total, state->passive);
	return 0;
}

et_member *
et_member_new(const char *key, const char *id, int workers, const char *registry, int ttl)
{
	et_member *m = calloc(1, sizeof(*m));
	const char *verbose = getenv("CLUSTER_TEST_VERBOSE");
	int i, ok = 0;

	if(!m)
	{
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->last.index = -1;
	m->c = cluster_create(key);
	if(!m->c ||
		cluster_set_logger(m->c, et_logger) ||
		cluster_set_balancer(m->c, et_balancer) ||
		cluster_set_instance(m->c, id) ||
		cluster_set_workers(m->c, workers) ||
		(registry && cluster_set_registry(m->c, registry)) ||
		(ttl && cluster_set_ttl(m->c, ttl)))
	{
		fprintf(stderr, "# cannot configure member %s: %s\n", id, strerror(errno));
		cluster_destroy(m->c);
		free(m);
		return NULL;
	}
	if(verbose && *verbose)
	{
		cluster_set_verbose(m->c, 1);
	}
	pthread_mutex_lock(&et_table_lock);
	for(i = 0; i < ET_MAX_MEMBERS; i++)
	{
		if(!et_table[i])
		{
			et_table[i] = m;
			ok = 1;
			break;
		}
	}
	pthread_mutex_unlock(&et_table_lock);
	if(!ok)
	{
		cluster_destroy(m->c);
		free(m);
		return NULL;
	}
	return m;
}

void
et_member_free(et_member *m)
{
	int i;

	if(!m)
	{
		return;
	}
	cluster_destroy(m->c);
	pthread_mutex_lock(&et_table_lock);
	for(i = 0; i < ET_MAX_MEMBERS; i++)
	{
		if(et_table[i] == m)
		{
			et_table[i] = NULL;
		}
	}
	pthread_mutex_unlock(&et_table_lock);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

void
et_free_all(void)
{
	et_member *m;
	int i;

	for(;;)
	{
		m = NULL;
		pthread_mutex_lock(&et_table_lock);
		for(i = 0; i < ET_MAX_MEMBERS && !m; i++)
		{
			m = et_table[i];
		}
		pthread_mutex_unlock(&et_table_lock);
		if(!m)
		{
			break;
		}
		fprintf(stderr, "# cleaning up member %s\n", m->id);
		et_member_free(m);
	}
}

int
et_join(et_member *m)
{
	return cluster_join(m->c);
}

int
et_join_passive(et_member *m)
{
	return cluster_join_passive(m->c);
}

int
et_calls(et_member *m)
{
	int n;

	pthread_mutex_lock(&m->lock);
	n = m->calls;
	pthread_mutex_unlock(&m->lock);
	return n;
}

CLUSTERSTATE
et_last(et_member *m)
{
	CLUSTERSTATE s;

	pthread_mutex_lock(&m->lock);
	s = m->last;
	pthread_mutex_unlock(&m->lock);
	return s;
}

void
et_dump(et_member *m)
{
	int i;

	pthread_mutex_lock(&m->lock);
	fprintf(stderr, "# %s: %d callback(s):", m->id, m->calls);
	for(i = 0; i < m->calls && i < ET_HISTORY; i++)
	{
		fprintf(stderr, " (%d,%d,%d)", m->hist[i].index, m->hist[i].workers, m->hist[i].total);
	}
	fprintf(stderr, "\n");
	pthread_mutex_unlock(&m->lock);
}

/* Absolute CLOCK_REALTIME deadline for pthread_cond_timedwait(). */
static struct timespec
et_deadline(double seconds)
{
	struct timespec ts;
	double deadline;

	clock_gettime(CLOCK_REALTIME, &ts);
	deadline = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9 + et_t(seconds);
	ts.tv_sec = (time_t) deadline;
	ts.tv_nsec = (long) ((deadline - (double) ts.tv_sec) * 1e9);
	return ts;
}

int
et_log_wait(int count, double seconds)
{
	struct timespec ts = et_deadline(seconds);
	int hits;

	pthread_mutex_lock(&et_log_lock);
	while(et_log_hits < count)
	{
		if(pthread_cond_timedwait(&et_log_cond, &et_log_lock, &ts) == ETIMEDOUT)
		{
			break;
		}
	}
	hits = et_log_hits;
	pthread_mutex_unlock(&et_log_lock);
	return hits >= count ? 0 : -1;
}

int
et_wait_calls(et_member *m, int calls, double seconds)
{
	struct timespec ts = et_deadline(seconds);
	int more;

	pthread_mutex_lock(&m->lock);
	while(m->calls <= calls)
	{
		if(pthread_cond_timedwait(&m->cond, &m->lock, &ts) == ETIMEDOUT)
		{
			break;
		}
	}
	more = m->calls > calls;
	pthread_mutex_unlock(&m->lock);
	return more ? 0 : -1;
}

int
et_wait(et_member *m, int index, int total, double seconds)
{
	struct timespec ts = et_deadline(seconds);
	int ok;

	pthread_mutex_lock(&m->lock);
	while(!(m->calls > 0 && m->last.index == index && m->last.total == total))
	{
		if(pthread_cond_timedwait(&m->cond, &m->lock, &ts) == ETIMEDOUT)
		{
			break;
		}
	}
	ok = m->calls > 0 && m->last.index == index && m->last.total == total;
	pthread_mutex_unlock(&m->lock);
	if(!ok)
	{
		fprintf(stderr, "# %s: no callback with index %d total %d within %.1f s\n", m->id, index, total, et_t(seconds));
		et_dump(m);
	}
	return ok ? 0 : -1;
}

int
et_cluster_start(etcdh_cluster **cl, int n)
{
	int i;

	if(etcdh_cluster_start(cl, n, NULL))
	{
		fprintf(stderr, "# cannot start a %d-member etcd cluster\n", n);
		return -1;
	}
	for(i = 0; i < n; i++)
	{
		fprintf(stderr, "# etcd member %d at %s (pid %ld)\n", i, etcdh_endpoint(etcdh_cluster_member(*cl, i)),
			(long) etcdh_pid(etcdh_cluster_member(*cl, i)));
	}
	return 0;
}

int
et_dead_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &sl), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

const char *
et_key(const char *name)
{
	static char key[ET_MAX_MEMBERS][CLUSTER_NAME_MAX + 1];
	static int next;
	char *k;

	pthread_mutex_lock(&et_table_lock);
	k = key[next++ % ET_MAX_MEMBERS];
	pthread_mutex_unlock(&et_table_lock);
	snprintf(k, CLUSTER_NAME_MAX + 1, "it-%s-%ld", name, (long) getpid());
	return k;
}

/* Where the member helper program lives: the build tree. */
static void
et_member_path(char *out, size_t size)
{
	const char *b = getenv("top_builddir");
	char self[PATH_MAX];
	ssize_t n;
	char *slash;

	snprintf(out, size, "%s/tests/etcd-member", b && *b ? b : ".");
	if(access(out, X_OK) == 0)
	{
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if(n > 0)
	{
		self[n] = '\0';
		slash = strrchr(self, '/');
		if(slash)
		{
			*slash = '\0';
			snprintf(out, size, "%.*s/etcd-member", (int) (size - 16), self);
		}
	}
}

pid_t
et_spawn(const char *key, const char *id, int workers, const char *registry, int ttl, int *index, int *total)
{
	return et_spawn_ex(key, id, workers, registry, ttl, NULL, index, total);
}

pid_t
et_spawn_ex(const char *key, const char *id, int workers, const char *registry, int ttl, const char *const *extra, int *index, int *total)
{
	char path[PATH_MAX], wbuf[16], tbuf[16], line[256];
	const char *argv[32];
	int fds[2], argc = 0, status, e = 0;
	pid_t pid, parent = getpid();
	sigset_t none;
	struct pollfd pfd;
	size_t len = 0;
	ssize_t r;
	double deadline;

	et_member_path(path, sizeof(path));
	snprintf(wbuf, sizeof(wbuf), "%d", workers);
	snprintf(tbuf, sizeof(tbuf), "%d", ttl);
	argv[argc++] = path;
	argv[argc++] = "-k";
	argv[argc++] = key;
	argv[argc++] = "-i";
	argv[argc++] = id;
	argv[argc++] = "-n";
	argv[argc++] = wbuf;
	argv[argc++] = "-r";
	argv[argc++] = registry;
	argv[argc++] = "-t";
	argv[argc++] = tbuf;
	while(extra && *extra && argc < 31)
	{
		argv[argc++] = *extra++;
	}
	argv[argc] = NULL;
	if(pipe2(fds, O_CLOEXEC))
	{
		return -1;
	}
	sigemptyset(&none);
	pid = fork();
	if(pid < 0)
	{
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if(pid == 0)
	{
		/* only async-signal-safe calls: the parent has threads */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if(getppid() != parent)
		{
			_exit(127);
		}
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(fds[1], 1);
		execv(path, (char *const *) argv);
		_exit(127);
	}
	close(fds[1]);
	/* The child says "joined INDEX TOTAL" or "failed ERRNO". */
	deadline = etcdh_now() + et_t(15);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	while(len < sizeof(line) - 1 && !memchr(line, '\n', len) && etcdh_now() < deadline)
	{
		if(poll(&pfd, 1, 100) <= 0)
		{
			continue;
		}
		r = read(fds[0], line + len, sizeof(line) - 1 - len);
		if(r <= 0)
		{
			break;
		}
		len += (size_t) r;
	}
	close(fds[0]);
	line[len] = '\0';
	if(sscanf(line, "joined %d %d", index ? index : &status, total ? total : &status) == 2)
	{
		return pid;
	}
	if(sscanf(line, "failed %d", &e) == 1)
	{
		waitpid(pid, &status, 0);
		errno = e;
		return -1;
	}
	fprintf(stderr, "# etcd-member %s did not report a join in time (said '%s')\n", id, line);
	et_kill(pid, SIGKILL);
	errno = ETIMEDOUT;
	return -1;
}

int
et_kill(pid_t pid, int sig)
{
	int status = -1;

	if(pid <= 0)
	{
		return -1;
	}
	kill(pid, sig);
	while(waitpid(pid, &status, 0) < 0 && errno == EINTR)
	{
	}
	return status;
}

int
et_etcd_start(etcdh **h, const char *const *extra_args)
{
	if(etcdh_start_opts(h, NULL, 0, extra_args))
	{
		fprintf(stderr, "# cannot start etcd\n");
		return -1;
	}
	fprintf(stderr, "# etcd at %s (pid %ld, dir %s)\n", etcdh_endpoint(*h), (long) etcdh_pid(*h), etcdh_dir(*h));
	return 0;
}

int
et_setup(void **state)
{
	(void) state;
	return et_etcd_start(&et_etcd, NULL);
}

/* Also used per group: a frozen etcd would make every leave wait. */
int
et_teardown(void **state)
{
	(void) state;
	/* a test that failed while etcd was frozen must not freeze cleanup */
	if(et_etcd && etcdh_pid(et_etcd) > 0)
	{
		etcdh_resume(et_etcd);
	}
	et_free_all();
	etcdh_destroy(et_etcd);
	et_etcd = NULL;
	return 0;
}

int
et_teardown_members(void **state)
{
	(void) state;
	et_free_all();
	return 0;
}

et_member *
et_new(const char *key, const char *id, int workers, int ttl)
{
	return et_new_at(key, id, workers, NULL, ttl);
}

/* A member that cannot even be configured makes the rest of a test
 * meaningless: stop it there. */
et_member *
et_new_at(const char *key, const char *id, int workers, const char *registry, int ttl)
{
	et_member *m = et_member_new(key, id, workers, registry ? registry : etcdh_endpoint(et_etcd), ttl);

	assert_non_null(m);
	return m;
}

/* The callback alone could be right while the getters lag (or the other
 * way round): every view of the member is compared. */
void
et_check(et_member *m, int index, int workers, int total, double seconds)
{
	CLUSTERSTATE st;

	if(et_wait(m, index, total, seconds))
	{
		if(et_etcd)
		{
			etcdh_log_tail(et_etcd, stderr, 20);
		}
		fail_msg("%s: expected index %d total %d", m->id, index, total);
	}
	assert_int_equal(et_last(m).workers, workers);
	assert_int_equal(cluster_state(m->c, &st), 0);
	assert_int_equal(st.index, index);
	assert_int_equal(st.workers, workers);
	assert_int_equal(st.total, total);
	assert_int_equal(st.passive, 0);
	assert_int_equal(cluster_total(m->c), total);
	assert_int_equal(cluster_index(m->c, 0), index);
	assert_int_equal(cluster_index(m->c, workers - 1), index + workers - 1);
}

void
et_join_214(const char *key, et_member **m, const char *registry, int ttl, double seconds)
{
	m[0] = et_new_at(key, "node1", 2, registry, ttl);
	m[1] = et_new_at(key, "node2", 1, registry, ttl);
	m[2] = et_new_at(key, "node3", 4, registry, ttl);
	assert_int_equal(et_join(m[0]), 0);
	assert_int_equal(et_join(m[1]), 0);
	assert_int_equal(et_join(m[2]), 0);
	et_check(m[0], 0, 2, 7, seconds);
	et_check(m[1], 2, 1, 7, seconds);
	et_check(m[2], 3, 4, 7, seconds);
}

void
et_free(et_member **m, int n)
{
	int i;

	for(i = 0; i < n; i++)
	{
		et_member_free(m[i]);
	}
}

/* printf into the next of a few static buffers: the path builders'
 * results stay valid while a handful of others are built. */
static const char *et_path(const char *format, ...) __attribute__((format(printf, 1, 2)));

static const char *
et_path(const char *format, ...)
{
	static char ring[8][512];
	static int next;
	char *p = ring[next++ % 8];
	va_list ap;

	va_start(ap, format);
	vsnprintf(p, sizeof(ring[0]), format, ap);
	va_end(ap);
	return p;
}

const char *
et_root(const char *key)
{
	return et_path("/%s/", key);
}

const char *
et_prefix(const char *key)
{
	return et_path("/%s/production/", key);
}

const char *
et_member_key(const char *key, const char *id)
{
	return et_path("/%s/production/%s", key, id);
}

/* One counter of et_etcd's /metrics (as etcdh_metric() reads it;
 * labels may be NULL). */
double
et_metric(const char *name, const char *labels)
{
	char *text = NULL;
	double v;

	assert_int_equal(etcdh_metrics(et_etcd, &text), 0);
	v = etcdh_metric(text, name, labels);
	free(text);
	return v;
}
