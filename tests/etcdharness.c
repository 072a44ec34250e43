/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd test harness, process supervision (see etcdharness.h): find etcd,
 * start it on free ports (alone or as a cluster), wait for its health,
 * stop, kill, restart, freeze and clean up after it. The HTTP client is
 * in etcdclient.c, the TCP proxy in etcdproxy.c. Nothing from libcluster,
 * so a broken library cannot make the harness lie.
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "etcdharness-private.h"

/* Every harness complaint goes to stderr with one prefix, so a failed
 * test's log shows which side (harness or library) went wrong. */
void
etcdh__err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("etcd-harness: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

double
etcdh_timeout_mult(void)
{
	const char *s = getenv("CLUSTER_TEST_TIMEOUT_MULTIPLIER");
	char *end;
	double m;

	if(!s || !*s)
	{
		return 1.0;
	}
	m = strtod(s, &end);
	if(end == s || m <= 0.0)
	{
		return 1.0;
	}
	return m;
}

double
etcdh_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Short sleeps between polls of something we cannot be notified about
 * (another process becoming healthy or exiting). */
void
etcdh__nap(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while(nanosleep(&ts, &ts) == -1 && errno == EINTR)
	{
	}
}

/* ------------------------------------------------------------------ */
/* Finding etcd                                                         */
/* ------------------------------------------------------------------ */

/* ETCD from the environment (configure's AC_PATH_PROG) wins, then PATH,
 * then Debian's location. Writes the path to out; 0 found, -1 not. */
static int
etcdh__find(char *out, size_t size)
{
	const char *env = getenv("ETCD");
	const char *path = getenv("PATH");
	const char *p, *colon;
	size_t len;

	if(env && *env && access(env, X_OK) == 0)
	{
		snprintf(out, size, "%s", env);
		return 0;
	}
	for(p = path; p && *p; p = colon ? colon + 1 : NULL)
	{
		colon = strchr(p, ':');
		len = colon ? (size_t) (colon - p) : strlen(p);
		if(len && len + 6 < size)
		{
			snprintf(out, size, "%.*s/etcd", (int) len, p);
			if(access(out, X_OK) == 0)
			{
				return 0;
			}
		}
		if(!colon)
		{
			break;
		}
	}
	if(access("/usr/bin/etcd", X_OK) == 0)
	{
		snprintf(out, size, "/usr/bin/etcd");
		return 0;
	}
	return -1;
}

int
etcdh_available(void)
{
	char path[PATH_MAX];

	return etcdh__find(path, sizeof(path)) == 0;
}

int
etcdh_required(void)
{
	const char *s = getenv("CLUSTER_REQUIRE_ETCD");

	return s && *s && strcmp(s, "0") != 0;
}

/* One rule and one message for every test program that needs etcd. */
int
etcdh_skip(void)
{
	if(etcdh_available() || etcdh_required())
	{
		return 0;
	}
	printf("1..0 # SKIP etcd is not installed (Debian package etcd-server)\n");
	return 1;
}

/* ------------------------------------------------------------------ */
/* Ports, processes                                                     */
/* ------------------------------------------------------------------ */

/* Ask the kernel for n (at most 2 x ETCDH_CLUSTER_MAX) distinct free
 * loopback ports. All sockets stay open until all numbers are known, so
 * they differ; someone may still
 * take one before etcd binds it, hence the retries in the caller. */
static int
etcdh__free_ports(int *ports, int n)
{
	int fds[2 * ETCDH_CLUSTER_MAX], i, rc = 0;
	struct sockaddr_in sa;
	socklen_t sl;

	for(i = 0; i < n; i++)
	{
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(sa);
		if(fds[i] < 0 || bind(fds[i], (struct sockaddr *) &sa, sizeof(sa)) ||
			getsockname(fds[i], (struct sockaddr *) &sa, &sl))
		{
			rc = -1;
			ports[i] = 0;
		}
		else
		{
			ports[i] = ntohs(sa.sin_port);
		}
	}
	for(i = 0; i < n; i++)
	{
		if(fds[i] >= 0)
		{
			close(fds[i]);
		}
	}
	return rc;
}

/* Has the process gone? Reaps it if it is our child. */
static int
etcdh__gone(etcdh *h)
{
	int status;
	pid_t r;

	if(!h->pid)
	{
		return 1;
	}
	if(h->is_child)
	{
		r = waitpid(h->pid, &status, WNOHANG);
		if(r == h->pid || (r < 0 && errno == ECHILD))
		{
			h->pid = 0;
			return 1;
		}
		return 0;
	}
	if(kill(h->pid, 0) < 0 && errno == ESRCH)
	{
		h->pid = 0;
		return 1;
	}
	return 0;
}

/* The clients' URL scheme of this etcd. */
static const char *
etcdh__scheme(const etcdh *h)
{
	return h->tls ? "https" : "http";
}

/* Its endpoint and base URL from its scheme and client port. */
static void
etcdh__set_urls(etcdh *h)
{
	snprintf(h->endpoint, sizeof(h->endpoint), "%s://127.0.0.1:%d/", etcdh__scheme(h), h->client_port);
	snprintf(h->base, sizeof(h->base), "%s://127.0.0.1:%d", etcdh__scheme(h), h->client_port);
}

/* Save what etcd-harness needs to find this etcd again. */
static void
etcdh__write_state(etcdh *h)
{
	char path[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/etcd.state", h->dir);
	if((f = fopen(path, "w")))
	{
		fprintf(f, "%ld %d %d %s %s\n", (long) h->pid, h->client_port, h->peer_port, h->name, etcdh__scheme(h));
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/etcd.pid", h->dir);
	if((f = fopen(path, "w")))
	{
		fprintf(f, "%ld\n", (long) h->pid);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/endpoint", h->dir);
	if((f = fopen(path, "w")))
	{
		fprintf(f, "%s\n", h->endpoint);
		fclose(f);
	}
}

/* fork + exec etcd with every string prepared beforehand: between fork()
 * and exec() a threaded parent's child may only make async-signal-safe
 * calls. The child closes every inherited descriptor (the library's
 * sockets to an old etcd must not live on inside the new one). */
static int
etcdh__spawn(etcdh *h, const char *binary)
{
	char client[64], peer[64];
	const char *argv[32 + ETCDH_MAX_EXTRA];
	int argc = 0, i, logfd, nullfd;
	pid_t parent = getpid(), pid;
	sigset_t none;
	long maxfd = sysconf(_SC_OPEN_MAX);

	if(maxfd < 0 || maxfd > 65536)
	{
		maxfd = 65536;
	}
	snprintf(client, sizeof(client), "%s://127.0.0.1:%d", etcdh__scheme(h), h->client_port);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", h->peer_port);
	argv[argc++] = binary;
	argv[argc++] = "--name";
	argv[argc++] = h->name;
	argv[argc++] = "--data-dir";
	argv[argc++] = h->datadir;
	argv[argc++] = "--listen-client-urls";
	argv[argc++] = client;
	argv[argc++] = "--advertise-client-urls";
	argv[argc++] = client;
	argv[argc++] = "--listen-peer-urls";
	argv[argc++] = peer;
	argv[argc++] = "--initial-advertise-peer-urls";
	argv[argc++] = peer;
	argv[argc++] = "--initial-cluster";
	argv[argc++] = h->initial_cluster;
	argv[argc++] = "--unsafe-no-fsync";
	for(i = 0; h->extra[i]; i++)
	{
		argv[argc++] = h->extra[i];
	}
	argv[argc] = NULL;
	logfd = open(h->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if(logfd < 0 || nullfd < 0)
	{
		etcdh__err("cannot open %s: %s", h->logpath, strerror(errno));
		if(logfd >= 0)
		{
			close(logfd);
		}
		if(nullfd >= 0)
		{
			close(nullfd);
		}
		return -1;
	}
	sigemptyset(&none);
	pid = fork();
	if(pid < 0)
	{
		etcdh__err("fork: %s", strerror(errno));
		close(logfd);
		close(nullfd);
		return -1;
	}
	if(pid == 0)
	{
		if(h->detached)
		{
			setsid();
		}
		else
		{
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if(getppid() != parent)
			{
				_exit(127);
			}
		}
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(nullfd, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
#ifdef SYS_close_range
		if(syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
		{
			for(i = 3; i < maxfd; i++)
			{
				close(i);
			}
		}
		execv(binary, (char *const *) argv);
		_exit(127);
	}
	close(logfd);
	close(nullfd);
	h->pid = pid;
	h->is_child = 1;
	h->paused = 0;
	return 0;
}

/* Our etcd answers /health with "true" and lists our member name (so an
 * unrelated etcd that grabbed the port first cannot fool us). */
static int
etcdh__healthy_once(etcdh *h)
{
	char *reply = NULL;
	long status;
	int ok;

	status = etcdh__http(h->base, "/health", NULL, 500, NULL, &reply);
	ok = status == 200 && reply && strstr(reply, "true");
	free(reply);
	if(!ok)
	{
		return 0;
	}
	status = etcdh__http(h->base, "/v3/cluster/member/list", "{}", 1000, NULL, &reply);
	ok = status == 200 && reply && strstr(reply, h->name);
	free(reply);
	return ok;
}

int
etcdh_wait_healthy(etcdh *h, double seconds)
{
	double deadline = etcdh_now() + seconds * etcdh_timeout_mult();

	while(etcdh_now() < deadline)
	{
		if(etcdh__gone(h))
		{
			return -1;
		}
		if(etcdh__healthy_once(h))
		{
			return 0;
		}
		etcdh__nap(50);
	}
	return -1;
}

/* Send sig, then poll for the end until the deadline; 0 if it ended. */
static int
etcdh__signal_wait(etcdh *h, int sig, double seconds)
{
	double deadline = etcdh_now() + seconds * etcdh_timeout_mult();

	if(etcdh__gone(h))
	{
		return 0;
	}
	if(kill(h->pid, sig) < 0 && errno != ESRCH)
	{
		return -1;
	}
	if(h->paused && sig != SIGKILL)
	{
		kill(h->pid, SIGCONT);
	}
	h->paused = 0;
	while(etcdh_now() < deadline)
	{
		if(etcdh__gone(h))
		{
			return 0;
		}
		etcdh__nap(20);
	}
	return -1;
}

static int
etcdh__terminate(etcdh *h, int graceful)
{
	if(!h || !h->pid)
	{
		return 0;
	}
	if(graceful && etcdh__signal_wait(h, SIGTERM, ETCDH_STOP_SECONDS) == 0)
	{
		return 0;
	}
	if(etcdh__signal_wait(h, SIGKILL, ETCDH_STOP_SECONDS) == 0)
	{
		return 0;
	}
	etcdh__err("etcd (pid %ld) did not exit", (long) h->pid);
	return -1;
}

/* Spawn etcd on the configured ports without waiting for it: the members
 * of a cluster only become healthy once a quorum of them runs. */
static int
etcdh__launch(etcdh *h)
{
	char binary[PATH_MAX];

	if(etcdh__find(binary, sizeof(binary)))
	{
		etcdh__err("etcd not found (set ETCD or install the Debian package etcd-server)");
		return -1;
	}
	etcdh__set_urls(h);
	/* a restarted etcd has forgotten every simple token */
	h->token[0] = '\0';
	return etcdh__spawn(h, binary);
}

/* One start attempt on the configured ports. */
static int
etcdh__start_once(etcdh *h)
{
	if(etcdh__launch(h))
	{
		return -1;
	}
	if(etcdh_wait_healthy(h, ETCDH_HEALTH_SECONDS) == 0)
	{
		etcdh__write_state(h);
		return 0;
	}
	etcdh__terminate(h, 0);
	return -1;
}

static int
etcdh__rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void) sb;
	(void) flag;
	(void) ftw;
	remove(path);
	return 0;
}

static void
etcdh__free(etcdh *h)
{
	int i;

	for(i = 0; h->extra[i]; i++)
	{
		free(h->extra[i]);
	}
	free(h->root_password);
	free(h);
}

/* Is etcd there to be started? 0 yes, else what the start functions
 * return: ETCDH_SKIP, or -1 when CLUSTER_REQUIRE_ETCD insists. */
static int
etcdh__check_available(void)
{
	if(etcdh_available())
	{
		return 0;
	}
	if(etcdh_required())
	{
		etcdh__err("etcd is not installed but CLUSTER_REQUIRE_ETCD is set "
				   "(install the Debian package etcd-server)");
		return -1;
	}
	return ETCDH_SKIP;
}

/* A fresh temporary directory under $TMPDIR (or /tmp) into out. 0/-1. */
static int
etcdh__mktemp(char *out, size_t size)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(out, size, "%s/libcluster-etcd.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if(!mkdtemp(out))
	{
		etcdh__err("mkdtemp %s: %s", out, strerror(errno));
		return -1;
	}
	return 0;
}

/* A handle for an etcd not yet started whose files live in dir (made
 * if missing); the caller decides who owns the directory. */
static etcdh *
etcdh__new(const char *dir, int detached, const char *const *extra_args)
{
	etcdh *h = calloc(1, sizeof(*h));
	int i;

	if(!h)
	{
		return NULL;
	}
	h->detached = detached;
	for(i = 0; extra_args && extra_args[i] && i < ETCDH_MAX_EXTRA; i++)
	{
		h->extra[i] = strdup(extra_args[i]);
		h->tls |= !strcmp(extra_args[i], "--cert-file");
	}
	snprintf(h->dir, sizeof(h->dir), "%s", dir);
	mkdir(h->dir, 0700);
	snprintf(h->datadir, sizeof(h->datadir), "%s/data", h->dir);
	snprintf(h->logpath, sizeof(h->logpath), "%s/etcd.log", h->dir);
	return h;
}

/* Give a handle new ports and a new member name, for a new start
 * attempt. A failed attempt may have left a half-made data directory
 * that names another member: each attempt starts clean. */
static void
etcdh__assign(etcdh *h, int client_port, int peer_port)
{
	static unsigned counter;

	h->client_port = client_port;
	h->peer_port = peer_port;
	snprintf(h->name, sizeof(h->name), "h%ldx%u", (long) getpid(), counter++);
	nftw(h->datadir, etcdh__rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(h->initial_cluster, sizeof(h->initial_cluster), "%s=http://127.0.0.1:%d", h->name, h->peer_port);
}

int
etcdh_start_opts(etcdh **out, const char *dir, int detached, const char *const *extra_args)
{
	etcdh *h;
	int ports[2], attempt, rc;
	char tmp[PATH_MAX];

	*out = NULL;
	if((rc = etcdh__check_available()))
	{
		return rc;
	}
	if(!dir && etcdh__mktemp(tmp, sizeof(tmp)))
	{
		return -1;
	}
	h = etcdh__new(dir ? dir : tmp, detached, extra_args);
	if(!h)
	{
		if(!dir)
		{
			rmdir(tmp);
		}
		return -1;
	}
	h->own_dir = !dir;
	for(attempt = 0; attempt < ETCDH_START_TRIES; attempt++)
	{
		if(etcdh__free_ports(ports, 2))
		{
			etcdh__err("cannot find free loopback ports: %s", strerror(errno));
			break;
		}
		etcdh__assign(h, ports[0], ports[1]);
		if(etcdh__start_once(h) == 0)
		{
			*out = h;
			return 0;
		}
		etcdh__err("etcd did not start on ports %d/%d (attempt %d)", ports[0], ports[1], attempt + 1);
	}
	etcdh_log_tail(h, stderr, 30);
	etcdh_destroy(h);
	return -1;
}

int
etcdh_start(etcdh **out)
{
	return etcdh_start_opts(out, NULL, 0, NULL);
}

int
etcdh_attach(etcdh **out, const char *dir)
{
	char path[PATH_MAX + 16], cmd[8192], want[PATH_MAX + 16];
	etcdh *h;
	FILE *f;
	char scheme[8] = "http";
	long pid = 0;
	size_t n, i;
	int fd, ok = 0;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if(!h)
	{
		return -1;
	}
	snprintf(h->dir, sizeof(h->dir), "%s", dir);
	snprintf(h->datadir, sizeof(h->datadir), "%s/data", h->dir);
	snprintf(h->logpath, sizeof(h->logpath), "%s/etcd.log", h->dir);
	snprintf(path, sizeof(path), "%s/etcd.state", dir);
	f = fopen(path, "r");
	if(!f || fscanf(f, "%ld %d %d %63s %7s", &pid, &h->client_port, &h->peer_port, h->name, scheme) < 4)
	{
		etcdh__err("no etcd state in %s", dir);
		if(f)
		{
			fclose(f);
		}
		free(h);
		return -1;
	}
	fclose(f);
	h->tls = !strcmp(scheme, "https");
	etcdh__set_urls(h);
	snprintf(h->initial_cluster, sizeof(h->initial_cluster), "%s=http://127.0.0.1:%d", h->name, h->peer_port);
	h->detached = 1;
	/* Only ever signal the etcd we started: its command line must name
	 * this data directory (a recycled PID would not). */
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	snprintf(want, sizeof(want), "%s", h->datadir);
	fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if(fd >= 0)
	{
		ssize_t r = read(fd, cmd, sizeof(cmd) - 1);

		close(fd);
		n = r > 0 ? (size_t) r : 0;
		cmd[n] = '\0';
		for(i = 0; i < n; i += strlen(cmd + i) + 1)
		{
			if(strcmp(cmd + i, want) == 0)
			{
				ok = 1;
			}
		}
	}
	h->pid = ok ? (pid_t) pid : 0;
	*out = h;
	return 0;
}

const char *
etcdh_endpoint(etcdh *h)
{
	return h->endpoint;
}

int
etcdh_port(etcdh *h)
{
	return h->client_port;
}

pid_t
etcdh_pid(etcdh *h)
{
	return h->pid;
}

const char *
etcdh_dir(etcdh *h)
{
	return h->dir;
}

int
etcdh_stop(etcdh *h)
{
	return etcdh__terminate(h, 1);
}

int
etcdh_kill(etcdh *h)
{
	return etcdh__terminate(h, 0);
}

int
etcdh_restart(etcdh *h)
{
	int attempt;

	if(h->pid && etcdh_stop(h))
	{
		return -1;
	}
	/* Same ports and data: the old listening sockets are gone, but a
	 * brief retry covers a port that is slow to free up. */
	for(attempt = 0; attempt < ETCDH_START_TRIES; attempt++)
	{
		if(etcdh__start_once(h) == 0)
		{
			return 0;
		}
		etcdh__nap(200);
	}
	etcdh__err("etcd did not restart on port %d", h->client_port);
	etcdh_log_tail(h, stderr, 30);
	return -1;
}

/* Non-zero once every thread of pid is in the stopped state ('T' in
 * /proc/PID/task/TID/stat). */
static int
all_threads_stopped(pid_t pid)
{
	char path[64];
	DIR *d;
	struct dirent *de;
	int all = 1, seen = 0;

	snprintf(path, sizeof(path), "/proc/%ld/task", (long) pid);
	d = opendir(path);
	if(!d)
	{
		return 1;
	}
	while(all && (de = readdir(d)))
	{
		char stat[384], buf[512], *p;
		FILE *f;

		if(de->d_name[0] == '.')
		{
			continue;
		}
		snprintf(stat, sizeof(stat), "/proc/%ld/task/%s/stat", (long) pid, de->d_name);
		f = fopen(stat, "r");
		if(!f)
		{
			continue;
		}
		p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		fclose(f);
		/* the state follows the command name: "... (etcd) T ..." */
		if(p && p[1] == ' ' && p[2] != 'T' && p[2] != 't')
		{
			all = 0;
		}
		seen++;
	}
	closedir(d);
	return all && seen;
}

int
etcdh_pause(etcdh *h)
{
	double end;

	if(!h->pid || kill(h->pid, SIGSTOP) < 0)
	{
		return -1;
	}
	h->paused = 1;
	/* kill() returns before every thread has stopped: wait until they
	 * all have, so that no request sent next is still served */
	end = etcdh_now() + 2.0 * etcdh_timeout_mult();
	while(!all_threads_stopped(h->pid) && etcdh_now() < end)
	{
		struct timespec ts = { 0, 1000000L };

		nanosleep(&ts, NULL);
	}
	return 0;
}

int
etcdh_resume(etcdh *h)
{
	if(!h->pid || kill(h->pid, SIGCONT) < 0)
	{
		return -1;
	}
	h->paused = 0;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Multi-member clusters                                                */
/* ------------------------------------------------------------------ */

/* Launch every member, then wait for each to be healthy (none is before
 * a quorum runs). 0, or -1 with every member stopped again. */
static int
etcdh__cluster_start_once(etcdh_cluster *cl)
{
	int i, ok = 1;

	for(i = 0; i < cl->n && ok; i++)
	{
		ok = etcdh__launch(cl->m[i]) == 0;
	}
	for(i = 0; i < cl->n && ok; i++)
	{
		ok = etcdh_wait_healthy(cl->m[i], ETCDH_HEALTH_SECONDS) == 0;
	}
	for(i = 0; i < cl->n; i++)
	{
		if(ok)
		{
			etcdh__write_state(cl->m[i]);
		}
		else
		{
			etcdh__terminate(cl->m[i], 0);
		}
	}
	return ok ? 0 : -1;
}

int
etcdh_cluster_start(etcdh_cluster **out, int n, const char *const *extra_args)
{
	etcdh_cluster *cl;
	int ports[2 * ETCDH_CLUSTER_MAX], attempt, i, rc;
	char sub[PATH_MAX + 16], ic[ETCDH_CLUSTER_MAX * 96];
	size_t len;

	*out = NULL;
	if(n < 1 || n > ETCDH_CLUSTER_MAX)
	{
		etcdh__err("a cluster has 1 to %d members, not %d", ETCDH_CLUSTER_MAX, n);
		return -1;
	}
	if((rc = etcdh__check_available()))
	{
		return rc;
	}
	cl = calloc(1, sizeof(*cl));
	if(!cl)
	{
		return -1;
	}
	if(etcdh__mktemp(cl->dir, sizeof(cl->dir)))
	{
		free(cl);
		return -1;
	}
	for(cl->n = 0; cl->n < n; cl->n++)
	{
		snprintf(sub, sizeof(sub), "%s/m%d", cl->dir, cl->n);
		cl->m[cl->n] = etcdh__new(sub, 0, extra_args);
		if(!cl->m[cl->n])
		{
			etcdh_cluster_destroy(cl);
			return -1;
		}
		cl->m[cl->n]->cluster = cl;
	}
	for(attempt = 0; attempt < ETCDH_START_TRIES; attempt++)
	{
		if(etcdh__free_ports(ports, 2 * n))
		{
			etcdh__err("cannot find free loopback ports: %s", strerror(errno));
			break;
		}
		ic[0] = '\0';
		for(i = 0, len = 0; i < n; i++)
		{
			etcdh__assign(cl->m[i], ports[2 * i], ports[2 * i + 1]);
			len += (size_t) snprintf(ic + len, sizeof(ic) - len, "%s%s", i ? "," : "", cl->m[i]->initial_cluster);
		}
		for(i = 0; i < n; i++)
		{
			snprintf(cl->m[i]->initial_cluster, sizeof(cl->m[i]->initial_cluster), "%s", ic);
		}
		if(etcdh__cluster_start_once(cl) == 0)
		{
			cl->endpoints[0] = '\0';
			for(i = 0, len = 0; i < n; i++)
			{
				len += (size_t) snprintf(cl->endpoints + len, sizeof(cl->endpoints) - len, "%s%s", i ? "," : "", cl->m[i]->endpoint);
			}
			*out = cl;
			return 0;
		}
		etcdh__err("etcd cluster of %d did not start (attempt %d)", n, attempt + 1);
	}
	for(i = 0; i < n; i++)
	{
		etcdh_log_tail(cl->m[i], stderr, 10);
	}
	etcdh_cluster_destroy(cl);
	return -1;
}

etcdh *
etcdh_cluster_member(etcdh_cluster *cl, int i)
{
	return i >= 0 && i < cl->n ? cl->m[i] : NULL;
}

int
etcdh_cluster_size(etcdh_cluster *cl)
{
	return cl->n;
}

const char *
etcdh_cluster_endpoints(etcdh_cluster *cl)
{
	return cl->endpoints;
}

void
etcdh_cluster_destroy(etcdh_cluster *cl)
{
	int i;

	if(!cl)
	{
		return;
	}
	for(i = 0; i < cl->n; i++)
	{
		etcdh__terminate(cl->m[i], 1);
	}
	for(i = 0; i < cl->n; i++)
	{
		etcdh__free(cl->m[i]);
	}
	nftw(cl->dir, etcdh__rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(cl);
}

void
etcdh_log_tail(etcdh *h, FILE *f, int lines)
{
	FILE *in;
	char *buf;
	long size, start, i;
	int seen = 0;

	if(!h || !(in = fopen(h->logpath, "r")))
	{
		return;
	}
	fseek(in, 0, SEEK_END);
	size = ftell(in);
	start = size > 65536 ? size - 65536 : 0;
	buf = malloc(65537);
	if(buf && size > 0 && fseek(in, start, SEEK_SET) == 0)
	{
		size = (long) fread(buf, 1, 65536, in);
		buf[size] = '\0';
		for(i = size - 1; i > 0; i--)
		{
			if(buf[i - 1] == '\n' && ++seen >= lines)
			{
				break;
			}
		}
		fprintf(f, "---- last lines of %s ----\n%s---- end of etcd log ----\n", h->logpath, buf + (i > 0 ? i : 0));
	}
	free(buf);
	fclose(in);
}

void
etcdh_destroy(etcdh *h)
{
	if(!h)
	{
		return;
	}
	etcdh__terminate(h, 1);
	if(h->own_dir)
	{
		nftw(h->dir, etcdh__rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	}
	etcdh__free(h);
}

void
etcdh_detach(etcdh *h)
{
	if(h)
	{
		etcdh__free(h);
	}
}

/* ---- a throw-away PKI ---------------------------------------------------- */

/* The openssl commands of etcdh_pki_make(), run by /bin/sh in the PKI
 * directory ($1 is unused). Each certificate: "cert NAME CA SUBJECT DAYS
 * EXT". */
static const char etcdh__pki_script[] =
	"set -e\n"
	"key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \"$1.key\" 2>/dev/null; }\n"
	"ca() { key \"$1\"; openssl req -x509 -new -key \"$1.key\" -out \"$1.crt\" -days 30 -subj \"/CN=$2\"; }\n"
	"cert() {\n"
	"  key \"$1\"\n"
	"  openssl req -new -key \"$1.key\" -out \"$1.csr\" -subj \"$3\"\n"
	"  printf '%b' \"$5\" > \"$1.ext\"\n"
	"  openssl x509 -req -in \"$1.csr\" -CA \"$2.crt\" -CAkey \"$2.key\" -CAcreateserial -out \"$1.crt\" "
	"-days \"$4\" -extfile \"$1.ext\" 2>/dev/null\n"
	"  rm -f \"$1.csr\" \"$1.ext\"\n"
	"}\n"
	"usage='keyUsage=digitalSignature,keyEncipherment\\n'\n"
	"ca ca libcluster-test-ca\n"
	"ca other-ca libcluster-stranger-ca\n"
	"cert server ca /CN=etcd-server 30 "
	"\"subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth,clientAuth\\n$usage\"\n"
	"cert client ca /O=libcluster-test-client 30 \"extendedKeyUsage=clientAuth\\n$usage\"\n"
	"cert other-client other-ca /O=libcluster-stranger 30 \"extendedKeyUsage=clientAuth\\n$usage\"\n"
	"cert expired-client ca /O=libcluster-test-client -1 \"extendedKeyUsage=clientAuth\\n$usage\"\n"
	"cert expired-server ca /CN=etcd-server -1 "
	"\"subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth,clientAuth\\n$usage\"\n"
	"chmod 600 *.key\n";

int
etcdh_pki_make(const char *dir)
{
	char log[PATH_MAX + 16];
	pid_t pid;
	int status, fd;

	if(mkdir(dir, 0700) && errno != EEXIST)
	{
		etcdh__err("mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(log, sizeof(log), "%s/pki.log", dir);
	pid = fork();
	if(pid < 0)
	{
		etcdh__err("fork: %s", strerror(errno));
		return -1;
	}
	if(pid == 0)
	{
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if(fd < 0 || chdir(dir))
		{
			_exit(126);
		}
		dup2(fd, 1);
		dup2(fd, 2);
		execl("/bin/sh", "sh", "-c", etcdh__pki_script, "pki", (char *) NULL);
		_exit(127);
	}
	while(waitpid(pid, &status, 0) < 0)
	{
		if(errno != EINTR)
		{
			etcdh__err("waitpid: %s", strerror(errno));
			return -1;
		}
	}
	if(!WIFEXITED(status) || WEXITSTATUS(status))
	{
		etcdh__err("making a PKI in %s failed (is openssl installed?); see %s", dir, log);
		return -1;
	}
	return 0;
}
