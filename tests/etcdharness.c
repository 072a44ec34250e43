/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd test harness (see etcdharness.h). Plain libcurl + cJSON; nothing
 * from libcluster, so a broken library cannot make the harness lie.
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <curl/curl.h>
#include <cjson/cJSON.h>

#include "etcdharness.h"

#define ETCDH_START_TRIES       5
#define ETCDH_HEALTH_SECONDS    15.0
#define ETCDH_STOP_SECONDS      10.0
#define ETCDH_HTTP_TIMEOUT_MS   3000L
#define ETCDH_MAX_EXTRA         16
#define ETCDH_CLUSTER_MAX       5
#define ETCDH_TOKEN_MAX         256

struct etcdh
{
	char dir[PATH_MAX];          /* working directory */
	int own_dir;                 /* created by us: removed at destroy */
	char datadir[PATH_MAX + 16];
	char logpath[PATH_MAX + 16];
	char name[64];               /* member name, unique per start */
	char endpoint[64];
	char base[64];               /* endpoint without the trailing slash */
	int client_port;
	int peer_port;
	pid_t pid;                   /* 0: not running */
	int is_child;                /* we can waitpid() it */
	int detached;
	int paused;
	char *extra[ETCDH_MAX_EXTRA + 1];
	/* --initial-cluster: this member alone, or every member of its cluster */
	char initial_cluster[ETCDH_CLUSTER_MAX * 96];
	etcdh_cluster *cluster;      /* the cluster this member belongs to, or NULL */
	char *root_password;         /* auth on: requests authenticate as root */
	char token[ETCDH_TOKEN_MAX]; /* root's token ("" none yet) */
};

struct etcdh_cluster
{
	char dir[PATH_MAX];          /* temporary directory: one subdirectory per member */
	int n;
	etcdh *m[ETCDH_CLUSTER_MAX];
	char endpoints[ETCDH_CLUSTER_MAX * 32];
};

static void etcdh__err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Every harness complaint goes to stderr with one prefix, so a failed
 * test's log shows which side (harness or library) went wrong. */
static void
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
static void
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

/* ------------------------------------------------------------------ */
/* HTTP                                                                 */
/* ------------------------------------------------------------------ */

struct etcdh__buf
{
	char *data;
	size_t len;
};

static size_t
etcdh__write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct etcdh__buf *b = userdata;
	size_t n = size * nmemb;
	char *p = realloc(b->data, b->len + n + 1);

	if(!p)
	{
		return 0;
	}
	memcpy(p + b->len, ptr, n);
	b->len += n;
	p[b->len] = '\0';
	b->data = p;
	return n;
}

static pthread_once_t etcdh__curl_once = PTHREAD_ONCE_INIT;

static void
etcdh__curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* One request on a fresh handle: POST body (or GET when body is NULL) to
 * base + path, with an Authorization header when token is not NULL or "".
 * Returns the HTTP status (0 on a transport error) and hands the reply
 * body to *out (malloc'd, may be NULL). */
static long
etcdh__http(const char *base, const char *path, const char *body, long timeout_ms, const char *token, char **out)
{
	CURL *curl;
	struct etcdh__buf b = { NULL, 0 };
	struct curl_slist *headers = NULL;
	char url[256], auth[ETCDH_TOKEN_MAX + 32];
	long status = 0;
	CURLcode rc;

	pthread_once(&etcdh__curl_once, etcdh__curl_init);
	if(out)
	{
		*out = NULL;
	}
	curl = curl_easy_init();
	if(!curl)
	{
		return 0;
	}
	snprintf(url, sizeof(url), "%s%s", base, path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, etcdh__write_cb);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	if(body)
	{
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	}
	if(token && *token)
	{
		/* the raw token: "Bearer ..." is refused by etcd */
		snprintf(auth, sizeof(auth), "Authorization: %s", token);
		headers = curl_slist_append(NULL, auth);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	}
	rc = curl_easy_perform(curl);
	if(rc == CURLE_OK)
	{
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	}
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	if(out)
	{
		*out = b.data;
	}
	else
	{
		free(b.data);
	}
	return status;
}

/*
 * Log in as root (when auth was turned on through the harness) and keep
 * the token in the handle. An etcd without auth says so: no token is
 * needed then. 0 or -1.
 */
static int
etcdh__login(etcdh *h)
{
	cJSON *body = cJSON_CreateObject(), *r = NULL, *tok;
	char *text = NULL, *reply = NULL;
	long status = 0;
	int rc = -1;

	h->token[0] = '\0';
	if(body)
	{
		cJSON_AddStringToObject(body, "name", "root");
		cJSON_AddStringToObject(body, "password", h->root_password);
		text = cJSON_PrintUnformatted(body);
	}
	if(text)
	{
		status = etcdh__http(h->base, "/v3/auth/authenticate", text, ETCDH_HTTP_TIMEOUT_MS, NULL, &reply);
	}
	if(status == 200 && reply)
	{
		r = cJSON_Parse(reply);
		tok = cJSON_GetObjectItemCaseSensitive(r, "token");
		if(cJSON_IsString(tok) && tok->valuestring && strlen(tok->valuestring) < sizeof(h->token))
		{
			snprintf(h->token, sizeof(h->token), "%s", tok->valuestring);
			rc = 0;
		}
	}
	else if(reply && strstr(reply, "authentication is not enabled"))
	{
		rc = 0;
	}
	if(rc)
	{
		etcdh__err("authenticate as root: HTTP %ld %s", status, reply ? reply : "(no reply)");
	}
	cJSON_Delete(r);
	cJSON_Delete(body);
	free(text);
	free(reply);
	return rc;
}

/* A reply that asks for a (new) token: expired (401) or none (400). */
static int
etcdh__wants_login(long status, const char *reply)
{
	return status == 401 || (status == 400 && reply && strstr(reply, "user name is empty"));
}

/*
 * POST a v3 call and parse the JSON reply; NULL unless HTTP 200. With auth
 * on, the call carries root's token, and an expired token (simple tokens
 * die after --auth-token-ttl idle seconds) is renewed once.
 */
static cJSON *
etcdh__call(etcdh *h, const char *path, const char *body)
{
	char *reply = NULL;
	long status = 0;
	cJSON *json;
	int attempt;

	for(attempt = 0; attempt < 2; attempt++)
	{
		if(h->root_password && !h->token[0] && etcdh__login(h))
		{
			return NULL;
		}
		status = etcdh__http(h->base, path, body, ETCDH_HTTP_TIMEOUT_MS, h->token, &reply);
		if(attempt > 0 || !h->root_password || !etcdh__wants_login(status, reply))
		{
			break;
		}
		h->token[0] = '\0';
		free(reply);
		reply = NULL;
	}
	if(status != 200 || !reply)
	{
		etcdh__err("%s: HTTP %ld %s", path, status, reply ? reply : "(no reply)");
		free(reply);
		return NULL;
	}
	json = cJSON_ParseWithLength(reply, strlen(reply));
	if(!json)
	{
		etcdh__err("%s: unparsable reply %s", path, reply);
	}
	free(reply);
	return json;
}

/* ------------------------------------------------------------------ */
/* base64 (standard alphabet, padded: what the v3 gateway insists on)   */
/* ------------------------------------------------------------------ */

static const char etcdh__b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *
etcdh__b64enc(const unsigned char *in, size_t len)
{
	char *out = malloc(((len + 2) / 3) * 4 + 1), *o = out;
	size_t i;
	unsigned v;

	if(!out)
	{
		return NULL;
	}
	for(i = 0; i + 2 < len; i += 3)
	{
		v = (unsigned) in[i] << 16 | (unsigned) in[i + 1] << 8 | in[i + 2];
		*o++ = etcdh__b64[v >> 18];
		*o++ = etcdh__b64[(v >> 12) & 63];
		*o++ = etcdh__b64[(v >> 6) & 63];
		*o++ = etcdh__b64[v & 63];
	}
	if(i < len)
	{
		v = (unsigned) in[i] << 16 | (i + 1 < len ? (unsigned) in[i + 1] << 8 : 0);
		*o++ = etcdh__b64[v >> 18];
		*o++ = etcdh__b64[(v >> 12) & 63];
		*o++ = i + 1 < len ? etcdh__b64[(v >> 6) & 63] : '=';
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

static char *
etcdh__b64dec(const char *in)
{
	size_t len = strlen(in), n = 0, i;
	char *out = malloc(len / 4 * 3 + 4);
	unsigned v = 0;
	int bits = 0;
	const char *p;

	if(!out)
	{
		return NULL;
	}
	for(i = 0; i < len && in[i] != '='; i++)
	{
		p = strchr(etcdh__b64, in[i]);
		if(!p || !*p)
		{
			free(out);
			return NULL;
		}
		v = (v << 6) | (unsigned) (p - etcdh__b64);
		bits += 6;
		if(bits >= 8)
		{
			bits -= 8;
			out[n++] = (char) ((v >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	return out;
}

/* range_end for a prefix: last byte below 0xff incremented, the rest cut. */
static char *
etcdh__prefix_end_b64(const char *prefix)
{
	size_t len = strlen(prefix);
	unsigned char end[512];
	size_t i;

	if(len == 0 || len >= sizeof(end))
	{
		end[0] = 0;
		return etcdh__b64enc(end, 1);
	}
	memcpy(end, prefix, len);
	for(i = len; i-- > 0; )
	{
		if(end[i] < 0xff)
		{
			end[i]++;
			return etcdh__b64enc(end, i + 1);
		}
	}
	end[0] = 0;
	return etcdh__b64enc(end, 1);
}

/* int64 fields come back as JSON strings (or are omitted when zero). */
static long long
etcdh__int(const cJSON *obj, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

	if(cJSON_IsString(item) && item->valuestring)
	{
		return strtoll(item->valuestring, NULL, 10);
	}
	if(cJSON_IsNumber(item))
	{
		return (long long) item->valuedouble;
	}
	return 0;
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

/* Save what etcd-harness needs to find this etcd again. */
static void
etcdh__write_state(etcdh *h)
{
	char path[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/etcd.state", h->dir);
	if((f = fopen(path, "w")))
	{
		fprintf(f, "%ld %d %d %s\n", (long) h->pid, h->client_port, h->peer_port, h->name);
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
	snprintf(client, sizeof(client), "http://127.0.0.1:%d", h->client_port);
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
	snprintf(h->endpoint, sizeof(h->endpoint), "http://127.0.0.1:%d/", h->client_port);
	snprintf(h->base, sizeof(h->base), "http://127.0.0.1:%d", h->client_port);
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
	if(!f || fscanf(f, "%ld %d %d %63s", &pid, &h->client_port, &h->peer_port, h->name) != 4)
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
	snprintf(h->endpoint, sizeof(h->endpoint), "http://127.0.0.1:%d/", h->client_port);
	snprintf(h->base, sizeof(h->base), "http://127.0.0.1:%d", h->client_port);
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

int
etcdh_pause(etcdh *h)
{
	if(!h->pid || kill(h->pid, SIGSTOP) < 0)
	{
		return -1;
	}
	h->paused = 1;
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

/* Member IDs are uint64 and sent as strings: too big for etcdh__int(). */
static unsigned long long
etcdh__u64(const cJSON *obj, const char *name)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);

	if(cJSON_IsString(item) && item->valuestring)
	{
		return strtoull(item->valuestring, NULL, 10);
	}
	return 0;
}

int
etcdh_cluster_leader(etcdh_cluster *cl)
{
	unsigned long long id[ETCDH_CLUSTER_MAX], leader = 0;
	cJSON *r;
	int i;

	for(i = 0; i < cl->n; i++)
	{
		id[i] = 0;
		/* a stopped or frozen member cannot answer: do not wait for it */
		if(!cl->m[i]->pid || cl->m[i]->paused)
		{
			continue;
		}
		r = etcdh__call(cl->m[i], "/v3/maintenance/status", "{}");
		if(!r)
		{
			continue;
		}
		id[i] = etcdh__u64(cJSON_GetObjectItemCaseSensitive(r, "header"), "member_id");
		if(!leader)
		{
			leader = etcdh__u64(r, "leader");
		}
		cJSON_Delete(r);
	}
	for(i = 0; i < cl->n && leader; i++)
	{
		if(id[i] == leader)
		{
			return i;
		}
	}
	return -1;
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

/* ------------------------------------------------------------------ */
/* Raw v3 operations                                                    */
/* ------------------------------------------------------------------ */

long long
etcdh_revision(etcdh *h)
{
	cJSON *r = etcdh__call(h, "/v3/kv/range", "{\"key\":\"AA==\"}");
	long long rev;

	if(!r)
	{
		return -1;
	}
	rev = etcdh__int(cJSON_GetObjectItemCaseSensitive(r, "header"), "revision");
	cJSON_Delete(r);
	return rev > 0 ? rev : -1;
}

int
etcdh_compact(etcdh *h)
{
	long long rev = etcdh_revision(h);
	char body[128];
	cJSON *r;

	if(rev < 0)
	{
		return -1;
	}
	snprintf(body, sizeof(body), "{\"revision\":\"%lld\",\"physical\":true}", rev);
	r = etcdh__call(h, "/v3/kv/compaction", body);
	if(!r)
	{
		return -1;
	}
	cJSON_Delete(r);
	return 0;
}

int
etcdh_put(etcdh *h, const char *key, const char *value)
{
	char *k = etcdh__b64enc((const unsigned char *) key, strlen(key));
	char *v = etcdh__b64enc((const unsigned char *) value, strlen(value));
	cJSON *body = cJSON_CreateObject(), *r = NULL;
	char *text = NULL;

	if(k && v && body)
	{
		cJSON_AddStringToObject(body, "key", k);
		cJSON_AddStringToObject(body, "value", v);
		text = cJSON_PrintUnformatted(body);
	}
	if(text)
	{
		r = etcdh__call(h, "/v3/kv/put", text);
	}
	free(k);
	free(v);
	free(text);
	cJSON_Delete(body);
	if(!r)
	{
		return -1;
	}
	cJSON_Delete(r);
	return 0;
}

/* Range over key (or the prefix when prefix is set); returns the reply. */
static cJSON *
etcdh__range(etcdh *h, const char *key, int prefix, int count_only)
{
	char *k = etcdh__b64enc((const unsigned char *) key, strlen(key));
	char *e = prefix ? etcdh__prefix_end_b64(key) : NULL;
	cJSON *body = cJSON_CreateObject(), *r = NULL;
	char *text = NULL;

	if(k && body && (!prefix || e))
	{
		cJSON_AddStringToObject(body, "key", k);
		if(e)
		{
			cJSON_AddStringToObject(body, "range_end", e);
		}
		if(count_only)
		{
			cJSON_AddBoolToObject(body, "count_only", 1);
		}
		text = cJSON_PrintUnformatted(body);
	}
	if(text)
	{
		r = etcdh__call(h, "/v3/kv/range", text);
	}
	free(k);
	free(e);
	free(text);
	cJSON_Delete(body);
	return r;
}

int
etcdh_get(etcdh *h, const char *key, char **value)
{
	cJSON *r = etcdh__range(h, key, 0, 0), *kvs, *kv, *v;
	int found = 0;

	if(value)
	{
		*value = NULL;
	}
	if(!r)
	{
		return -1;
	}
	kvs = cJSON_GetObjectItemCaseSensitive(r, "kvs");
	kv = cJSON_IsArray(kvs) ? cJSON_GetArrayItem(kvs, 0) : NULL;
	if(kv)
	{
		found = 1;
		if(value)
		{
			v = cJSON_GetObjectItemCaseSensitive(kv, "value");
			*value = cJSON_IsString(v) ? etcdh__b64dec(v->valuestring) : strdup("");
		}
	}
	cJSON_Delete(r);
	return found;
}

long long
etcdh_key_lease(etcdh *h, const char *key)
{
	cJSON *r = etcdh__range(h, key, 0, 0), *kvs, *kv;
	long long lease = 0;

	if(!r)
	{
		return -1;
	}
	kvs = cJSON_GetObjectItemCaseSensitive(r, "kvs");
	kv = cJSON_IsArray(kvs) ? cJSON_GetArrayItem(kvs, 0) : NULL;
	if(kv)
	{
		lease = etcdh__int(kv, "lease");
	}
	cJSON_Delete(r);
	return lease;
}

long long
etcdh_count(etcdh *h, const char *prefix)
{
	cJSON *r = etcdh__range(h, prefix, 1, 1);
	long long n;

	if(!r)
	{
		return -1;
	}
	n = etcdh__int(r, "count");
	cJSON_Delete(r);
	return n;
}

int
etcdh_delete(etcdh *h, const char *key)
{
	char *k = etcdh__b64enc((const unsigned char *) key, strlen(key));
	char body[1024];
	cJSON *r;
	int n;

	if(!k || strlen(k) > 900)
	{
		free(k);
		return -1;
	}
	snprintf(body, sizeof(body), "{\"key\":\"%s\"}", k);
	free(k);
	r = etcdh__call(h, "/v3/kv/deleterange", body);
	if(!r)
	{
		return -1;
	}
	n = (int) etcdh__int(r, "deleted");
	cJSON_Delete(r);
	return n;
}

int
etcdh_revoke_all(etcdh *h)
{
	cJSON *r = etcdh__call(h, "/v3/lease/leases", "{}"), *leases, *l, *rr;
	char body[128];
	int n = 0;

	if(!r)
	{
		return -1;
	}
	leases = cJSON_GetObjectItemCaseSensitive(r, "leases");
	cJSON_ArrayForEach(l, leases)
	{
		snprintf(body, sizeof(body), "{\"ID\":\"%lld\"}", etcdh__int(l, "ID"));
		rr = etcdh__call(h, "/v3/lease/revoke", body);
		if(rr)
		{
			n++;
			cJSON_Delete(rr);
		}
	}
	cJSON_Delete(r);
	return n;
}

/* ------------------------------------------------------------------ */
/* v3 authentication                                                    */
/* ------------------------------------------------------------------ */

/* From now on the handle (and every member of its cluster, which share
 * one auth store) authenticates as root. */
static int
etcdh__set_root(etcdh *h, const char *root_password)
{
	etcdh *m;
	int i, n = h->cluster ? h->cluster->n : 1;

	for(i = 0; i < n; i++)
	{
		m = h->cluster ? h->cluster->m[i] : h;
		free(m->root_password);
		m->root_password = strdup(root_password);
		m->token[0] = '\0';
		if(!m->root_password)
		{
			return -1;
		}
	}
	return 0;
}

/* POST an auth call whose body is a cJSON object (deleted here); 0/-1. */
static int
etcdh__auth_call(etcdh *h, const char *path, cJSON *body)
{
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	cJSON *r = text ? etcdh__call(h, path, text) : NULL;

	free(text);
	cJSON_Delete(body);
	if(!r)
	{
		return -1;
	}
	cJSON_Delete(r);
	return 0;
}

/* {"<k1>":"<v1>","<k2>":"<v2>"}: what most auth calls take. */
static cJSON *
etcdh__pair(const char *k1, const char *v1, const char *k2, const char *v2)
{
	cJSON *o = cJSON_CreateObject();

	if(o)
	{
		cJSON_AddStringToObject(o, k1, v1);
		if(k2)
		{
			cJSON_AddStringToObject(o, k2, v2);
		}
	}
	return o;
}

int
etcdh_enable_auth(etcdh *h, const char *root_password)
{
	if(etcdh__auth_call(h, "/v3/auth/user/add", etcdh__pair("name", "root", "password", root_password)) ||
	   etcdh__auth_call(h, "/v3/auth/role/add", etcdh__pair("name", "root", NULL, NULL)) ||
	   etcdh__auth_call(h, "/v3/auth/user/grant", etcdh__pair("user", "root", "role", "root")) ||
	   etcdh__auth_call(h, "/v3/auth/enable", cJSON_CreateObject()) ||
	   etcdh__set_root(h, root_password))
	{
		return -1;
	}
	return etcdh__login(h);
}

int
etcdh_add_user(etcdh *h, const char *root_password, const char *user, const char *password, const char *prefix)
{
	char *k, *e;
	cJSON *grant, *perm;
	int rc = -1;

	/* an etcd whose auth was turned on elsewhere: learn root's password */
	if(root_password && !h->root_password && etcdh__set_root(h, root_password))
	{
		return -1;
	}
	if(etcdh__auth_call(h, "/v3/auth/role/add", etcdh__pair("name", user, NULL, NULL)))
	{
		return -1;
	}
	k = etcdh__b64enc((const unsigned char *) prefix, strlen(prefix));
	e = etcdh__prefix_end_b64(prefix);
	grant = etcdh__pair("name", user, NULL, NULL);
	perm = grant ? cJSON_AddObjectToObject(grant, "perm") : NULL;
	if(k && e && perm)
	{
		cJSON_AddStringToObject(perm, "permType", "READWRITE");
		cJSON_AddStringToObject(perm, "key", k);
		cJSON_AddStringToObject(perm, "range_end", e);
		rc = etcdh__auth_call(h, "/v3/auth/role/grant", grant);
	}
	else
	{
		cJSON_Delete(grant);
	}
	free(k);
	free(e);
	if(rc ||
	   etcdh__auth_call(h, "/v3/auth/user/add", etcdh__pair("name", user, "password", password)) ||
	   etcdh__auth_call(h, "/v3/auth/user/grant", etcdh__pair("user", user, "role", user)))
	{
		return -1;
	}
	return 0;
}

int
etcdh_metrics(etcdh *h, char **text)
{
	long status = etcdh__http(h->base, "/metrics", NULL, ETCDH_HTTP_TIMEOUT_MS, NULL, text);

	if(status != 200 || !*text)
	{
		free(*text);
		*text = NULL;
		return -1;
	}
	return 0;
}

/* Does the label block [lb, le) hold every "k=\"v\"" of the comma list? */
static int
etcdh__labels_match(const char *lb, const char *le, const char *labels)
{
	char want[256];
	const char *p = labels, *comma;
	size_t len;
	char *block;
	int ok = 1;

	if(!labels || !*labels)
	{
		return 1;
	}
	block = strndup(lb, (size_t) (le - lb));
	if(!block)
	{
		return 0;
	}
	while(ok && p && *p)
	{
		/* split on commas that are outside quotes */
		comma = p;
		{
			int inq = 0;

			while(*comma && (inq || *comma != ','))
			{
				if(*comma == '"')
				{
					inq = !inq;
				}
				comma++;
			}
		}
		len = (size_t) (comma - p);
		if(len >= sizeof(want))
		{
			len = sizeof(want) - 1;
		}
		memcpy(want, p, len);
		want[len] = '\0';
		if(!strstr(block, want))
		{
			ok = 0;
		}
		p = *comma ? comma + 1 : NULL;
	}
	free(block);
	return ok;
}

double
etcdh_metric(const char *text, const char *name, const char *labels)
{
	const char *line = text, *next, *p, *lb, *le;
	size_t nlen = strlen(name);
	double sum = 0;

	for(; line && *line; line = next)
	{
		next = strchr(line, '\n');
		next = next ? next + 1 : NULL;
		if(*line == '#' || strncmp(line, name, nlen) != 0)
		{
			continue;
		}
		p = line + nlen;
		if(*p == '{')
		{
			lb = p + 1;
			le = strchr(lb, '}');
			if(!le || (next && le > next))
			{
				continue;
			}
			if(!etcdh__labels_match(lb, le, labels))
			{
				continue;
			}
			p = le + 1;
		}
		else if(*p != ' ')
		{
			continue;
		}
		else if(labels && *labels)
		{
			continue;
		}
		sum += strtod(p, NULL);
	}
	return sum;
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

/* ------------------------------------------------------------------ */
/* Connection-cutting TCP proxy                                         */
/* ------------------------------------------------------------------ */

#define ETCDH_PROXY_MAX 256

struct etcdh_proxy
{
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int listen_fd;
	int wake[2];
	int upstream_port;
	char endpoint[64];
	int cut;                     /* (lock) reset connections */
	int stop;                    /* (lock) */
	unsigned long gen_req;       /* (lock) cut requests made */
	unsigned long gen_done;      /* (lock) cut requests applied */
	unsigned long accepted;      /* (lock) */
	int fds[ETCDH_PROXY_MAX][2]; /* thread only: client, upstream */
	int npairs;
};

static void
etcdh__close_pair(etcdh_proxy *p, int i)
{
	struct linger lg = { 1, 0 };

	/* A reset, not a polite close: the client must see a dead link. */
	setsockopt(p->fds[i][0], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(p->fds[i][0]);
	close(p->fds[i][1]);
	p->fds[i][0] = p->fds[p->npairs - 1][0];
	p->fds[i][1] = p->fds[p->npairs - 1][1];
	p->npairs--;
}

static int
etcdh__connect_upstream(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if(fd < 0)
	{
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((unsigned short) port);
	if(connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
	{
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Forward one readable side to the other; 0 ok, -1 the pair is done. */
static int
etcdh__pump(int from, int to)
{
	char buf[16384];
	ssize_t n = recv(from, buf, sizeof(buf), 0), off = 0, w;

	if(n <= 0)
	{
		return -1;
	}
	while(off < n)
	{
		w = send(to, buf + off, (size_t) (n - off), MSG_NOSIGNAL);
		if(w <= 0)
		{
			return -1;
		}
		off += w;
	}
	return 0;
}

static void *
etcdh__proxy_main(void *arg)
{
	etcdh_proxy *p = arg;
	struct pollfd pfd[2 + 2 * ETCDH_PROXY_MAX];
	int i, n, fd, up, cut, stop, one = 1;
	unsigned long gen;
	char drain[64];

	for(;;)
	{
		pthread_mutex_lock(&p->lock);
		cut = p->cut;
		stop = p->stop;
		gen = p->gen_req;
		pthread_mutex_unlock(&p->lock);
		if(stop)
		{
			break;
		}
		if(cut)
		{
			while(p->npairs)
			{
				etcdh__close_pair(p, 0);
			}
		}
		pthread_mutex_lock(&p->lock);
		p->gen_done = gen;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);

		pfd[0].fd = p->listen_fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = p->wake[0];
		pfd[1].events = POLLIN;
		for(i = 0; i < p->npairs; i++)
		{
			pfd[2 + 2 * i].fd = p->fds[i][0];
			pfd[2 + 2 * i].events = POLLIN;
			pfd[3 + 2 * i].fd = p->fds[i][1];
			pfd[3 + 2 * i].events = POLLIN;
		}
		n = poll(pfd, (nfds_t) (2 + 2 * p->npairs), -1);
		if(n < 0)
		{
			continue;
		}
		if(pfd[1].revents)
		{
			while(read(p->wake[0], drain, sizeof(drain)) > 0)
			{
			}
		}
		/* Pairs first (indices shift when one closes: walk backwards). */
		for(i = p->npairs - 1; i >= 0; i--)
		{
			short a = pfd[2 + 2 * i].revents, b = pfd[3 + 2 * i].revents;

			if((a && etcdh__pump(p->fds[i][0], p->fds[i][1])) ||
			   (b && etcdh__pump(p->fds[i][1], p->fds[i][0])))
			{
				etcdh__close_pair(p, i);
			}
		}
		if(pfd[0].revents & POLLIN)
		{
			fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if(fd < 0)
			{
				continue;
			}
			pthread_mutex_lock(&p->lock);
			cut = p->cut;
			if(!cut)
			{
				p->accepted++;
			}
			pthread_mutex_unlock(&p->lock);
			up = (!cut && p->npairs < ETCDH_PROXY_MAX) ? etcdh__connect_upstream(p->upstream_port) : -1;
			if(up < 0)
			{
				struct linger lg = { 1, 0 };

				setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
				close(fd);
				continue;
			}
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			p->fds[p->npairs][0] = fd;
			p->fds[p->npairs][1] = up;
			p->npairs++;
		}
	}
	while(p->npairs)
	{
		etcdh__close_pair(p, 0);
	}
	return NULL;
}

int
etcdh_proxy_start(etcdh *h, etcdh_proxy **out)
{
	etcdh_proxy *p = calloc(1, sizeof(*p));
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;

	*out = NULL;
	if(!p)
	{
		return -1;
	}
	p->upstream_port = h->client_port;
	p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if(p->listen_fd < 0 ||
	   setsockopt(p->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	   bind(p->listen_fd, (struct sockaddr *) &sa, sizeof(sa)) ||
	   listen(p->listen_fd, 64) ||
	   getsockname(p->listen_fd, (struct sockaddr *) &sa, &sl) ||
	   pipe2(p->wake, O_CLOEXEC | O_NONBLOCK))
	{
		etcdh__err("proxy: %s", strerror(errno));
		if(p->listen_fd >= 0)
		{
			close(p->listen_fd);
		}
		free(p);
		return -1;
	}
	snprintf(p->endpoint, sizeof(p->endpoint), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if(pthread_create(&p->thread, NULL, etcdh__proxy_main, p))
	{
		close(p->listen_fd);
		close(p->wake[0]);
		close(p->wake[1]);
		free(p);
		return -1;
	}
	*out = p;
	return 0;
}

const char *
etcdh_proxy_endpoint(etcdh_proxy *p)
{
	return p->endpoint;
}

/* Set the mode and wait until the proxy thread has applied it, so that
 * after etcdh_proxy_cut() returns no old connection is still open. */
static void
etcdh__proxy_set(etcdh_proxy *p, int cut)
{
	unsigned long gen;

	pthread_mutex_lock(&p->lock);
	p->cut = cut;
	gen = ++p->gen_req;
	pthread_mutex_unlock(&p->lock);
	if(write(p->wake[1], "x", 1) < 0)
	{
		/* the pipe is full: the thread is awake anyway */
	}
	pthread_mutex_lock(&p->lock);
	while(p->gen_done < gen)
	{
		pthread_cond_wait(&p->cond, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
}

void
etcdh_proxy_cut(etcdh_proxy *p)
{
	etcdh__proxy_set(p, 1);
}

void
etcdh_proxy_restore(etcdh_proxy *p)
{
	etcdh__proxy_set(p, 0);
}

unsigned long
etcdh_proxy_accepted(etcdh_proxy *p)
{
	unsigned long n;

	pthread_mutex_lock(&p->lock);
	n = p->accepted;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void
etcdh_proxy_stop(etcdh_proxy *p)
{
	if(!p)
	{
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_mutex_unlock(&p->lock);
	if(write(p->wake[1], "x", 1) < 0)
	{
		/* ignored: see etcdh__proxy_set() */
	}
	pthread_join(p->thread, NULL);
	close(p->listen_fd);
	close(p->wake[0]);
	close(p->wake[1]);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}
