/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The etcd engines, driven through the public API (cluster_join, the
 * running ping and balancer threads, cluster_leave), against a scripted
 * server that answers badly: garbage, truncated or oversized bodies, error
 * pages, dropped connections, hostile watch streams and member records a
 * real etcd would never hold. The fake server (tests/fakehttp.c) is used
 * only for that; real etcd behaviour is tested against a real etcd.
 *
 * Each case asserts what cluster_join() returns, what cluster_state() and
 * cluster_members() report, that every balancer callback saw a consistent
 * view (checked inside the callback), that the engine reconnects where it
 * should and that cluster_leave() stays within its one-second budget.
 * Leaks and memory errors are caught by the ASan/UBSan and valgrind runs.
 */
#ifdef HAVE_CONFIG_H
# include "config.h"
#endif
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "testutil.h"
#include "etcd3-proto.h"
#include "http.h"
#include "fakehttp.h"

/* ---- time ------------------------------------------------------------------ */

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
short_pause(void)
{
	struct timespec ts = { 0, 10 * 1000000L };

	nanosleep(&ts, NULL);
}

/* Poll cond (an expression) every 10 ms until it holds or ms (scaled)
 * pass; evaluates to its final value. */
#define WAIT_FOR(cond, ms) \
 ({ int64_t wf_end_ = now_ms() + tu_scaled_ms(ms); \
	   while(!(cond) && now_ms() < wf_end_) short_pause(); \
	   !!(cond); })

/* ---- strings that live until the end of the test ----------------------------- */

static char *arena[4096];
static size_t n_arena;

static char *
keep(char *s)
{
	assert_non_null(s);
	assert_true(n_arena < sizeof(arena) / sizeof(arena[0]));
	arena[n_arena++] = s;
	return s;
}

static const char *fmt(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* printf into a string kept until the end of the test. */
static const char *
fmt(const char *format, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, format);
	n = vsnprintf(NULL, 0, format, ap);
	va_end(ap);
	assert_true(n >= 0);
	s = keep(malloc((size_t) n + 1));
	va_start(ap, format);
	vsnprintf(s, (size_t) n + 1, format, ap);
	va_end(ap);
	return s;
}

static const char *
b64(const char *s)
{
	return keep(cluster__b64_encode(s, strlen(s)));
}

/* A complete HTTP answer with a Content-Length. */
static const char *
http_answer(int status, const char *reason, const char *ctype, const char *body)
{
	return fmt("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n%s", status, reason, ctype, strlen(body), body);
}

static const char *
ok_json(const char *body)
{
	return http_answer(200, "OK", "application/json", body);
}

/* The head of a chunked streaming answer followed by one chunk per line
 * (each line gets its '\n'); n lines from the NULL-terminated list. */
static const char *
stream(const char *first, ...)
{
	const char *head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
	const char *line;
	size_t len = strlen(head) + 1, off;
	va_list ap;
	char *s;

	va_start(ap, first);
	for(line = first; line; line = va_arg(ap, const char *))
	{
		len += strlen(line) + 32;
	}
	va_end(ap);
	s = keep(malloc(len));
	off = (size_t) sprintf(s, "%s", head);
	va_start(ap, first);
	for(line = first; line; line = va_arg(ap, const char *))
	{
		off += (size_t) sprintf(s + off, "%zx\r\n%s\n\r\n", strlen(line) + 1, line);
	}
	va_end(ap);
	return s;
}

/* A keepalive stream's answer as etcd sends it: one line per keepalive
 * (here one), the stream's end, and the connection closed (the fake does
 * not read the rest of a chunked request). */
static const char *
ka_answer(const char *line)
{
	return fmt("%s0\r\n\r\n", stream(line, NULL));
}

/* ---- etcd v3 bodies ------------------------------------------------------------ */

#define LEASE  "7587869785474965258"
#define PREFIX "/hk/production/"

static const char *
kv(const char *key, const char *value, long long rev)
{
	return fmt("{\"key\":\"%s\",\"create_revision\":\"%lld\",\"mod_revision\":\"%lld\",\"version\":\"1\",\"value\":\"%s\",\"lease\":\"7587869785474965260\"}",
		b64(key), rev, rev, b64(value));
}

static const char *
range_body(long long rev, const char *kvs)
{
	return fmt("{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"%lld\",\"raft_term\":\"2\"},\"kvs\":[%s],\"count\":\"3\"}", rev, kvs);
}

static const char *
created(long long rev)
{
	return fmt("{\"result\":{\"header\":{\"revision\":\"%lld\"},\"created\":true}}", rev);
}

/* One watch message with one PUT event. */
static const char *
ev_put(const char *key, const char *value, long long rev)
{
	return fmt("{\"result\":{\"header\":{\"revision\":\"%lld\"},\"events\":[{\"kv\":%s}]}}", rev, kv(key, value, rev));
}

/* ---- a fake etcd v3 gateway ------------------------------------------------------ */

enum
{
	R_GRANT,
	R_TXN,
	R_RANGE,
	R_KEEPALIVE,
	R_REVOKE,
	R_WATCH,
	R_N
};

static const char *const route_match[R_N] = {
	"POST /v3/lease/grant ",
	"POST /v3/kv/txn ",
	"POST /v3/kv/range ",
	"POST /v3/lease/keepalive ",
	"POST /v3/lease/revoke ",
	"POST /v3/watch ",
};

#define SCRIPT_MAX 8

/* The fake server of the running test. A failing assertion leaves the
 * test early; its server (whose scripts live in the test's frame) must
 * not outlive it, or it would serve the next test from a dead frame. */
static fakehttp *live_server;

static fakehttp *
started(fakehttp *f)
{
	live_server = f;
	return f;
}

static void
stop_server(fakehttp *f)
{
	if(f == live_server)
	{
		live_server = NULL;
	}
	fakehttp_stop(f);
}

typedef struct v3fake v3fake;
struct v3fake
{
	fakehttp_reply s[R_N][SCRIPT_MAX];
	fakehttp_reply good[R_N]; /* each route's good answer */
	fakehttp_route routes[R_N];
	fakehttp *f;
	char url[80];
};

/* Every route answers well: member "a" (2 workers) and "self" (1) at
 * revision 42, so this instance has base 2 of a total of 3. */
static void
v3_init(v3fake *v, const char *grant_ttl)
{
	int i;

	memset(v, 0, sizeof(*v));
	for(i = 0; i < R_N; i++)
	{
		v->routes[i].match = route_match[i];
		v->routes[i].script = v->s[i];
		v->routes[i].n = 1;
	}
	v->s[R_GRANT][0].raw = ok_json(fmt("{\"header\":{\"revision\":\"40\"},\"ID\":\"" LEASE "\",\"TTL\":\"%s\"}", grant_ttl));
	v->s[R_TXN][0].raw = ok_json("{\"header\":{\"revision\":\"41\"},\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":{\"revision\":\"41\"}}}]}");
	v->s[R_RANGE][0].raw = ok_json(range_body(42, fmt("%s,%s", kv(PREFIX "a", "{\"workers\":2}", 30), kv(PREFIX "self", "{\"workers\":1}", 41))));
	v->s[R_KEEPALIVE][0].raw = ka_answer(fmt("{\"result\":{\"header\":{\"revision\":\"42\"},\"ID\":\"" LEASE "\",\"TTL\":\"%s\"}}", grant_ttl));
	v->s[R_KEEPALIVE][0].close = 1;
	v->s[R_REVOKE][0].raw = ok_json("{\"header\":{\"revision\":\"43\"}}");
	v->s[R_WATCH][0].raw = stream(created(42), NULL);
	v->s[R_WATCH][0].hang_ms = -1;
	for(i = 0; i < R_N; i++)
	{
		v->good[i] = v->s[i][0];
	}
}

/* Make reply i of route r be raw, then hang until the client closes (or
 * the server stops) if hang, else close. Earlier unset replies are good. */
static void
v3_set(v3fake *v, int r, size_t i, const char *raw, int hang)
{
	size_t k;

	assert_true(i < SCRIPT_MAX);
	for(k = v->routes[r].n; k < i; k++)
	{
		v->s[r][k] = v->good[r];
	}
	if(v->routes[r].n <= i)
	{
		v->routes[r].n = i + 1;
	}
	memset(&v->s[r][i], 0, sizeof(v->s[r][i]));
	v->s[r][i].raw = raw;
	v->s[r][i].hang_ms = hang ? -1 : 0;
	v->s[r][i].close = !hang;
}

/* Append the good reply of route r after the scripted ones. */
static void
v3_then_good(v3fake *v, int r)
{
	size_t n = v->routes[r].n;

	assert_true(n < SCRIPT_MAX);
	v->s[r][n] = v->good[r];
	v->routes[r].n = n + 1;
}

static void
v3_start(v3fake *v)
{
	v->f = started(fakehttp_start_routes(v->routes, R_N));
	assert_non_null(v->f);
	snprintf(v->url, sizeof(v->url), "%s/", fakehttp_url(v->f));
}

static unsigned
count(v3fake *v, int r)
{
	return fakehttp_route_requests(v->f, route_match[r]);
}

static int
last_has(v3fake *v, int r, const char *needle)
{
	char buf[8192];

	fakehttp_route_last(v->f, route_match[r], buf, sizeof(buf));
	if(!strstr(buf, needle))
	{
		fprintf(stderr, "# last request of %s lacks '%s':\n%s\n", route_match[r], needle, buf);
		return 0;
	}
	return 1;
}

/* ---- a balancer callback that checks every view it is shown ----------------------- */

static int bad_views;

static void
bad_view(const char *why, const CLUSTERSTATE *st)
{
	fprintf(stderr, "# corrupt view (index %d, workers %d, total %d): %s\n", st->index, st->workers, st->total, why);
	pthread_mutex_lock(&tu_lock);
	bad_views++;
	pthread_mutex_unlock(&tu_lock);
}

/* The first callback of the current cluster: the view cluster_join()
 * delivered. Later ones may already have come from the balancer thread
 * by the time join returns (they do under valgrind). */
static CLUSTERSTATE first_state;

/* Record the call (tu_balancer) and check the state against the member
 * list: dense ascending bases, sorted unique ids, workers in range, the
 * total their sum and this instance's base the reported index. */
static int
check_balancer(CLUSTER *c, CLUSTERSTATE *st)
{
	CLUSTERMEMBER *m = NULL;
	size_t n = 0, i;
	long long sum = 0;
	int self_base = -2;

	pthread_mutex_lock(&tu_lock);
	if(!tu_calls)
	{
		first_state = *st;
	}
	pthread_mutex_unlock(&tu_lock);
	tu_balancer(c, st);
	if(st->index < 0)
	{
		return 0;
	}
	if(st->total < 1 || st->index + st->workers > st->total)
	{
		bad_view("index out of range", st);
	}
	if(cluster_members(c, &m, &n))
	{
		bad_view("cluster_members() failed", st);
		return 0;
	}
	for(i = 0; i < n; i++)
	{
		if(i && strcmp(m[i - 1].id, m[i].id) >= 0)
		{
			bad_view("ids not sorted and unique", st);
		}
		if(m[i].workers < 1 || m[i].workers > CLUSTER_WORKERS_MAX)
		{
			bad_view("worker count out of range", st);
		}
		if(m[i].passive)
		{
			continue;
		}
		if(m[i].base != sum)
		{
			bad_view("bases not dense", st);
		}
		sum += m[i].workers;
		if(m[i].self)
		{
			self_base = m[i].base;
		}
	}
	if(sum != st->total)
	{
		bad_view("total is not the sum of the members", st);
	}
	if(self_base != st->index)
	{
		bad_view("index is not this member's base", st);
	}
	cluster_members_free(m);
	return 0;
}

static int
calls(void)
{
	int n;

	pthread_mutex_lock(&tu_lock);
	n = tu_calls;
	pthread_mutex_unlock(&tu_lock);
	return n;
}

static CLUSTERSTATE
last_state(void)
{
	CLUSTERSTATE st;

	pthread_mutex_lock(&tu_lock);
	st = tu_last;
	pthread_mutex_unlock(&tu_lock);
	return st;
}

static int
total_is(CLUSTER *c, int want)
{
	CLUSTERSTATE st;

	return !cluster_state(c, &st) && st.total == want;
}

/* How many times needle appears in the log. */
static int
times_logged(const char *needle)
{
	const char *p;
	int n = 0;

	pthread_mutex_lock(&tu_lock);
	for(p = strstr(tu_log, needle); p; p = strstr(p + 1, needle))
	{
		n++;
	}
	pthread_mutex_unlock(&tu_lock);
	return n;
}

/* ---- common steps ---------------------------------------------------------------- */

static CLUSTER *
new_cluster(const char *url)
{
	CLUSTER *c;

	tu_reset();
	pthread_mutex_lock(&tu_lock);
	bad_views = 0;
	pthread_mutex_unlock(&tu_lock);
	c = tu_cluster("hk");
	assert_non_null(c);
	assert_int_equal(cluster_set_balancer(c, check_balancer), 0);
	assert_int_equal(cluster_set_instance(c, "self"), 0);
	assert_int_equal(cluster_set_registry(c, url), 0);
	/* these tests follow each event to its callback: no settling */
	assert_int_equal(cluster_set_settle(c, 0), 0);
	return c;
}

static void
assert_state(CLUSTER *c, int index, int total)
{
	CLUSTERSTATE st;

	assert_int_equal(cluster_state(c, &st), 0);
	if(st.index != index || st.total != total)
	{
		fail_msg("state is index %d total %d, want index %d total %d", st.index, st.total, index, total);
	}
}

/* The member ids, comma-separated, into buf. */
static const char *
member_ids(CLUSTER *c, char *buf, size_t size)
{
	CLUSTERMEMBER *m = NULL;
	size_t n = 0, i, off = 0;

	buf[0] = 0;
	assert_int_equal(cluster_members(c, &m, &n), 0);
	for(i = 0; i < n; i++)
	{
		off += (size_t) snprintf(buf + off, size - off, "%s%s:%d", i ? "," : "", m[i].id, m[i].workers);
		assert_true(off < size);
	}
	cluster_members_free(m);
	return buf;
}

static void
assert_members(CLUSTER *c, const char *want)
{
	char buf[1024];

	assert_string_equal(member_ids(c, buf, sizeof(buf)), want);
}

/* A failed join left nothing behind: no callback, not joined. */
static void
assert_not_joined(CLUSTER *c)
{
	CLUSTERMEMBER *m = NULL;
	size_t n = 7;

	assert_int_equal(calls(), 0);
	assert_state(c, -1, 0);
	errno = 0;
	assert_int_equal(cluster_total(c), 0);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_members(c, &m, &n), -1);
	assert_int_equal(errno, EPERM);
	assert_null(m);
}

/* cluster_join() fails with errno want (what names the case) and leaves
 * nothing behind. */
static void
assert_join_fails(CLUSTER *c, int want, const char *what)
{
	int r, e;

	errno = 0;
	r = cluster_join(c);
	e = errno;
	if(r != -1 || e != want)
	{
		fail_msg("%s: cluster_join() = %d errno %d (%s), want -1 errno %d (%s)", what, r, e, strerror(e), want, strerror(want));
	}
	assert_not_joined(c);
}

/* Leave within the one-second budget; the last callback says index -1. */
static void
leave_fast(CLUSTER *c)
{
	int64_t t0 = now_ms(), took;

	assert_int_equal(cluster_leave(c), 0);
	took = now_ms() - t0;
	if(took >= tu_scaled_ms(1000))
	{
		fail_msg("cluster_leave() took %lld ms", (long long) took);
	}
	assert_int_equal(last_state().index, -1);
	assert_int_equal(bad_views, 0);
}

static int
teardown(void **state)
{
	(void) state;
	if(live_server)
	{
		stop_server(live_server);
	}
	while(n_arena)
	{
		free(arena[--n_arena]);
	}
	return 0;
}

/* ---- v3 join: bad answers to one request ------------------------------------------ */

typedef struct join_case join_case;
struct join_case
{
	const char *name;
	int route;            /* the request answered badly */
	fakehttp_reply reply; /* raw NULL: filled in by the test */
	int want;             /* errno of cluster_join() */
	const char *log;      /* expected in the log (NULL: anything) */
};

/* Join against a server whose answer to one request is bad: the join
 * fails with the case's errno, calls no callback and leaves the handle
 * unjoined; a lease it was granted is revoked; and a second join, now
 * answered well, succeeds. A malformed answer fails the join at once
 * (within the request timeout). A failing registry (no answer, a 5xx)
 * is retried until the join deadline, set short here. */
static void
run_join_case(const join_case *jc)
{
	int retried = jc->want == ETIMEDOUT || (jc->log && !strncmp(jc->log, "HTTP 5", 6));
	v3fake v;
	CLUSTER *c;
	int64_t t0, took;

	fprintf(stderr, "# join case: %s\n", jc->name);
	v3_init(&v, "6");
	v.s[jc->route][0] = jc->reply;
	if(!retried)
	{
		v3_then_good(&v, jc->route);
	}
	v3_start(&v);
	c = new_cluster(v.url);
	if(retried)
	{
		assert_int_equal(cluster_set_timeouts(c, 500, 1500), 0);
	}

	t0 = now_ms();
	assert_join_fails(c, jc->want, jc->name);
	took = now_ms() - t0;
	/* one request timeout (2 s) at most, plus the revoke */
	assert_true(took < tu_scaled_ms(4000));
	if(jc->log)
	{
		assert_true(tu_logged(jc->log));
	}
	if(retried)
	{
		/* retried until the join deadline, each granted lease handed back */
		assert_true(count(&v, jc->route) >= 2);
		assert_int_equal(count(&v, R_REVOKE), jc->route == R_GRANT ? 0 : jc->route == R_TXN ? count(&v, R_TXN) :
																							  1);
	}
	else
	{
		/* the bad answer was not retried in a loop */
		assert_int_equal(count(&v, jc->route), 1);
		/* a lease that was granted is handed back */
		assert_int_equal(count(&v, R_REVOKE), jc->route == R_GRANT ? 0 : 1);
	}
	if(jc->route != R_GRANT)
	{
		assert_true(last_has(&v, R_REVOKE, LEASE));
	}
	assert_int_equal(count(&v, R_WATCH), 0);
	if(retried)
	{
		/* a registry that answers again: the same handle joins */
		stop_server(v.f);
		v3_init(&v, "6");
		v3_start(&v);
		assert_int_equal(cluster_set_registry(c, v.url), 0);
	}

	/* and it can be retried */
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(calls(), 1);
	assert_state(c, 2, 3);
	assert_members(c, "a:2,self:1");
	leave_fast(c);
	assert_int_equal(cluster_destroy(c), 0);
	stop_server(v.f);
}

static void
test_v3_join_bad_grant(void **state)
{
	size_t big = CLUSTER__HTTP_MAX_BODY + 4096, n, i;
	char *huge = malloc(big + 200);
	join_case cases[] = {
		{ "garbage", R_GRANT, { NULL, 0, 0, 0, 0, 0 }, EIO, "malformed lease grant response" },
		{ "truncated JSON", R_GRANT, { NULL, 0, 0, 0, 0, 0 }, EIO, "malformed lease grant response" },
		{ "JSON array", R_GRANT, { NULL, 0, 0, 0, 0, 0 }, EIO, "malformed lease grant response" },
		{ "TTL not a number", R_GRANT, { NULL, 0, 0, 0, 0, 0 }, EIO, "malformed lease grant response" },
		{ "lease ID 0", R_GRANT, { NULL, 0, 0, 0, 0, 0 }, EIO, "malformed lease grant response" },
		{ "HTTP 500 with an HTML body", R_GRANT, { NULL, 0, 0, 0, 0, 0 }, EIO, "HTTP 500" },
		{ "200 with an empty body", R_GRANT, { NULL, 0, 0, 0, 0, 0 }, EIO, "malformed lease grant response" },
		{ "body larger than 4 MiB", R_GRANT, { NULL, 0, 0, 0, 0, 1 }, EIO, "cannot register" },
		{ "closed mid-body", R_GRANT, { NULL, 0, 0, 0, 0, 1 }, EIO, "cannot register" },
		{ "not HTTP at all", R_GRANT, { NULL, 0, 0, 0, 0, 1 }, EIO, "cannot register" },
		{ "HTTP 403 (no permission on the keys)", R_GRANT, { NULL, 0, 0, 0, 0, 0 }, EPERM, "HTTP 403" },
	};

	(void) state;
	assert_non_null(huge);
	n = (size_t) snprintf(huge, 200, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n{\"ID\":\"1\",\"TTL\":\"5\",\"x\":\"", big);
	memset(huge + n, 'a', big);
	cases[0].reply.raw = ok_json("<html><body>hello</body></html>");
	cases[1].reply.raw = ok_json("{\"header\":{\"revision\":\"40\"},\"ID\":\"75878697");
	cases[2].reply.raw = ok_json("[{\"ID\":\"" LEASE "\",\"TTL\":\"5\"}]");
	cases[3].reply.raw = ok_json("{\"header\":{\"revision\":\"40\"},\"ID\":\"" LEASE "\",\"TTL\":\"abc\"}");
	cases[4].reply.raw = ok_json("{\"header\":{\"revision\":\"40\"},\"ID\":\"0\",\"TTL\":\"5\"}");
	cases[5].reply.raw = http_answer(500, "Internal Server Error", "text/html", "<html><h1>500 Internal Server Error</h1></html>");
	cases[6].reply.raw = ok_json("");
	cases[7].reply.raw = huge;
	cases[7].reply.len = n + big;
	cases[8].reply.raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"header\":{\"revision\":";
	cases[9].reply.raw = "SSH-2.0-OpenSSH_9.2\r\n";
	cases[10].reply.raw = http_answer(403, "Forbidden", "application/json", "{\"error\":\"etcdserver: permission denied\",\"code\":7,\"message\":\"etcdserver: permission denied\"}");
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		run_join_case(&cases[i]);
	}
	free(huge);
}

/* No answer at all: ETIMEDOUT within the request timeout; nothing
 * listening: ECONNREFUSED; a host name that does not resolve: ENXIO
 * (it once said ECONNREFUSED). All can be retried. */
static void
test_v3_join_unreachable(void **state)
{
	join_case hang = { "no answer", R_GRANT, { "", 0, 0, 0, -1, 0 }, ETIMEDOUT, "cannot register" };
	fakehttp_reply none[] = { { "", 0, 0, 0, 0, 1 } };
	fakehttp *gone;
	CLUSTER *c;
	char url[80];

	(void) state;
	run_join_case(&hang);

	gone = fakehttp_start(none, 1);
	assert_non_null(gone);
	snprintf(url, sizeof(url), "%s/", fakehttp_url(gone));
	fakehttp_stop(gone);
	c = new_cluster(url);
	assert_join_fails(c, ECONNREFUSED, "nothing listening");
	assert_int_equal(cluster_destroy(c), 0);

	/* .invalid never resolves (RFC 6761) */
	c = new_cluster("http://nosuchhost.invalid:2379/");
	assert_int_equal(cluster_set_timeouts(c, 500, 1000), 0);
	assert_join_fails(c, ENXIO, "name not resolved");
	assert_true(tu_logged("Could not resolve host"));
	assert_int_equal(cluster_destroy(c), 0);
}

static void
test_v3_join_bad_txn(void **state)
{
	size_t i;
	join_case cases[] = {
		{ "txn garbage", R_TXN, { NULL, 0, 0, 0, 0, 0 }, EIO, "malformed txn response" },
		{ "txn JSON array", R_TXN, { NULL, 0, 0, 0, 0, 0 }, EIO, "malformed txn response" },
		{ "txn succeeded not a boolean", R_TXN, { NULL, 0, 0, 0, 0, 0 }, EIO, "malformed txn response" },
		{ "txn HTTP 500", R_TXN, { NULL, 0, 0, 0, 0, 0 }, EIO, "HTTP 500" },
		{ "txn closed mid-body", R_TXN, { NULL, 0, 0, 0, 0, 1 }, EIO, "cannot register" },
	};

	(void) state;
	cases[0].reply.raw = ok_json("}{ not json");
	cases[1].reply.raw = ok_json("[true]");
	cases[2].reply.raw = ok_json("{\"header\":{\"revision\":\"41\"},\"succeeded\":\"yes\"}");
	cases[3].reply.raw = http_answer(500, "Internal Server Error", "text/html", "<html>oops</html>");
	cases[4].reply.raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"header\":{\"revision\":\"41\"},\"succ";
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		run_join_case(&cases[i]);
	}
}

static void
test_v3_join_bad_range(void **state)
{
	size_t i;
	join_case cases[] = {
		{ "range garbage", R_RANGE, { NULL, 0, 0, 0, 0, 0 }, EIO, "malformed range response" },
		{ "range kvs not an array", R_RANGE, { NULL, 0, 0, 0, 0, 0 }, EIO, "malformed range response" },
		{ "range key not base64", R_RANGE, { NULL, 0, 0, 0, 0, 0 }, EIO, "malformed range response" },
		{ "range value not base64", R_RANGE, { NULL, 0, 0, 0, 0, 0 }, EIO, "malformed range response" },
		{ "range says more", R_RANGE, { NULL, 0, 0, 0, 0, 0 }, EIO, "incomplete" },
		{ "range HTTP 503", R_RANGE, { NULL, 0, 0, 0, 0, 0 }, EIO, "HTTP 503" },
	};

	(void) state;
	cases[0].reply.raw = ok_json("\x01\x02\xff garbage");
	cases[1].reply.raw = ok_json("{\"header\":{\"revision\":\"42\"},\"kvs\":{\"key\":\"x\"}}");
	cases[2].reply.raw = ok_json("{\"header\":{\"revision\":\"42\"},\"kvs\":[{\"key\":\"!!not base64!!\",\"value\":\"eyJ3b3JrZXJzIjoxfQ==\",\"mod_revision\":\"41\"}]}");
	cases[3].reply.raw = ok_json(fmt("{\"header\":{\"revision\":\"42\"},\"kvs\":[{\"key\":\"%s\",\"value\":\"e30\",\"mod_revision\":\"41\"}]}", b64(PREFIX "self")));
	cases[4].reply.raw = ok_json(fmt("{\"header\":{\"revision\":\"42\"},\"kvs\":[%s],\"more\":true,\"count\":\"9\"}", kv(PREFIX "self", "{\"workers\":1}", 41)));
	cases[5].reply.raw = http_answer(503, "Service Unavailable", "application/json", "{\"error\":\"etcdserver: no leader\",\"code\":14,\"message\":\"etcdserver: no leader\"}");
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		run_join_case(&cases[i]);
	}
}

/* The range holds members a real registry might hold but we cannot use:
 * bad JSON, workers 0 and 70000, an id that is not a valid name, a key
 * outside the prefix and a nested key. They are left out (the bad ones
 * with a log line) and the view is right for the rest. */
static void
test_v3_join_bad_members(void **state)
{
	v3fake v;
	CLUSTER *c;

	(void) state;
	v3_init(&v, "6");
	v.s[R_RANGE][0].raw = ok_json(range_body(42, fmt("%s,%s,%s,%s,%s,%s,%s,%s,%s",
													 kv(PREFIX "a", "{\"workers\":3,\"future\":[1,{}]}", 30),
													 kv(PREFIX "bad1", "{\"workers\":", 31),
													 kv(PREFIX "bad2", "{\"workers\":0}", 32),
													 kv(PREFIX "bad3", "{\"workers\":70000}", 33),
													 kv(PREFIX "bad4", "[2]", 34),
													 kv(PREFIX "bad id", "{\"workers\":2}", 35),
													 kv("/other/production/x", "{\"workers\":5}", 36),
													 kv(PREFIX "sub/nested", "{\"workers\":5}", 37),
													 kv(PREFIX "self", "{\"workers\":2}", 41))));
	v3_start(&v);
	c = new_cluster(v.url);
	assert_int_equal(cluster_set_workers(c, 2), 0);
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(calls(), 1);
	assert_state(c, 3, 5);
	assert_members(c, "a:3,self:2");
	assert_true(tu_logged("leaving out member bad1"));
	assert_true(tu_logged("leaving out member bad2"));
	assert_true(tu_logged("leaving out member bad3"));
	assert_true(tu_logged("leaving out member bad4"));
	assert_true(tu_logged("ignoring key /hk/production/bad id"));
	leave_fast(c);
	assert_int_equal(cluster_destroy(c), 0);
	stop_server(v.f);
}

/* ---- v3 watch stream after a good join ------------------------------------------- */

/* Join against a server whose first watch answer is first (then hang or
 * close); every later watch is a quiet good one. */
static CLUSTER *
watch_join(v3fake *v, const char *first, int hang)
{
	CLUSTERSTATE st;
	CLUSTER *c;

	v3_init(v, "6");
	v3_set(v, R_WATCH, 0, first, hang);
	v3_then_good(v, R_WATCH);
	v3_start(v);
	c = new_cluster(v->url);
	assert_int_equal(cluster_join(c), 0);
	/* the view join delivered, whatever the watch has applied since */
	assert_true(calls() >= 1);
	pthread_mutex_lock(&tu_lock);
	st = first_state;
	pthread_mutex_unlock(&tu_lock);
	if(st.index != 2 || st.total != 3)
	{
		fail_msg("join delivered index %d total %d, want index 2 total 3", st.index, st.total);
	}
	return c;
}

/* The watch reconnected (a second watch request) resuming from rev. */
static void
assert_resumed(v3fake *v, unsigned watches, long long rev)
{
	if(!WAIT_FOR(count(v, R_WATCH) >= watches, 5000))
	{
		fail_msg("the engine made %u watch requests, want %u", count(v, R_WATCH), watches);
	}
	assert_true(last_has(v, R_WATCH, fmt("\"start_revision\":\"%lld\"", rev)));
}

static void
finish(v3fake *v, CLUSTER *c)
{
	leave_fast(c);
	assert_int_equal(cluster_destroy(c), 0);
	stop_server(v->f);
}

/* Lines that end the stream without touching the view: the engine logs,
 * reconnects from the next revision and the view stays as it was. */
static void
test_v3_watch_bad_lines(void **state)
{
	struct
	{
		const char *name;
		const char *line;
		const char *log;
	} cases[] = {
		{ "garbage", "\x01garbage\xff}{", "malformed watch message" },
		{ "truncated object", "{\"result\":{\"header\":{\"revision\":\"43\"},\"events\":[{\"kv\":{\"key\":\"L2hr", "malformed watch message" },
		{ "JSON array", "[{\"result\":{}}]", "malformed watch message" },
		{ "stream error", "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"transport is closing\",\"http_status\":\"Service Unavailable\"}}",
			"transport is closing" },
		{ "canceled", "{\"result\":{\"header\":{\"revision\":\"42\"},\"canceled\":true,\"cancel_reason\":\"rpc error: code = Unavailable desc = gone fishing\"}}",
			"gone fishing" },
		{ "event key not base64", "{\"result\":{\"header\":{\"revision\":\"43\"},\"events\":[{\"kv\":{\"key\":\"*not base64*\",\"mod_revision\":\"43\",\"value\":\"e30=\"}}]}}",
			"malformed watch message" },
		{ "event type unknown", "{\"result\":{\"header\":{\"revision\":\"43\"},\"events\":[{\"type\":\"EXPLODE\",\"kv\":{\"key\":\"L2hrL3Byb2R1Y3Rpb24vYg==\",\"mod_revision\":\"43\"}}]}}",
			"malformed watch message" },
	};
	size_t i;

	(void) state;
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		v3fake v;
		CLUSTER *c;

		fprintf(stderr, "# watch case: %s\n", cases[i].name);
		c = watch_join(&v, stream(created(42), cases[i].line, NULL), 1);
		assert_resumed(&v, 2, 43);
		assert_true(tu_logged(cases[i].log));
		assert_int_equal(calls(), 1);
		assert_state(c, 2, 3);
		assert_members(c, "a:2,self:1");
		/* no re-read: the watch resumes by revision */
		assert_int_equal(count(&v, R_RANGE), 1);
		finish(&v, c);
	}
}

/* Events that arrive before "created" are not applied. */
static void
test_v3_watch_events_before_created(void **state)
{
	v3fake v;
	CLUSTER *c;

	(void) state;
	c = watch_join(&v, stream(ev_put(PREFIX "b", "{\"workers\":4}", 43), created(42), NULL), 1);
	assert_resumed(&v, 2, 43);
	assert_true(tu_logged("before \"created\""));
	assert_int_equal(calls(), 1);
	assert_state(c, 2, 3);
	assert_members(c, "a:2,self:1");
	finish(&v, c);
}

/* Member values that cannot be read: a new member with one is not
 * counted, a known member that gets one is left out (and logged); good
 * events in the same stream still apply, and after a broken line the
 * watch resumes after the last revision it saw. */
static void
test_v3_watch_bad_values(void **state)
{
	v3fake v;
	CLUSTER *c;
	const char *s;

	(void) state;
	s = stream(created(42),
		ev_put(PREFIX "b", "{\"workers\":4}", 43),
		ev_put(PREFIX "c", "{\"workers\":0}", 44),
		ev_put(PREFIX "d", "not json at all", 45),
		ev_put(PREFIX "e", "{\"workers\":70000}", 46),
		ev_put(PREFIX "a", "{\"workers\":\"many\"}", 47),
		ev_put(PREFIX "bad id!", "{\"workers\":1}", 48),
		"}garbage to make it reconnect{",
		NULL);
	c = watch_join(&v, s, 1);
	assert_resumed(&v, 2, 49);
	/* b joined (total 7, base 6), then a was left out (total 5, base 4) */
	assert_int_equal(calls(), 3);
	assert_state(c, 4, 5);
	assert_members(c, "b:4,self:1");
	assert_true(tu_logged("leaving out member c"));
	assert_true(tu_logged("leaving out member d"));
	assert_true(tu_logged("leaving out member e"));
	assert_true(tu_logged("leaving out member a"));
	assert_true(tu_logged("ignoring key /hk/production/bad id!"));
	finish(&v, c);
}

/* Keys outside the prefix (another cluster, a nested key) never enter the
 * view, whether put or deleted. */
static void
test_v3_watch_foreign_keys(void **state)
{
	v3fake v;
	CLUSTER *c;
	const char *s;

	(void) state;
	s = stream(created(42),
		ev_put("/other/production/x", "{\"workers\":5}", 43),
		ev_put(PREFIX "sub/nested", "{\"workers\":5}", 44),
		ev_put("/hk/productionx", "{\"workers\":5}", 45),
		fmt("{\"result\":{\"header\":{\"revision\":\"46\"},\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"%s\",\"mod_revision\":\"46\"}}]}}", b64("/other/production/a")),
		ev_put(PREFIX "b", "{\"workers\":4}", 47),
		NULL);
	c = watch_join(&v, s, 1);
	if(!WAIT_FOR(total_is(c, 7), 5000))
	{
		fail_msg("the good event after the foreign ones was not applied");
	}
	assert_state(c, 6, 7);
	assert_members(c, "a:2,b:4,self:1");
	assert_int_equal(calls(), 2);
	assert_int_equal(count(&v, R_WATCH), 1);
	finish(&v, c);
}

/* A line longer than the 4 MiB limit ends the stream (bounded memory);
 * so does a connection closed in the middle of a chunk. */
static void
test_v3_watch_long_line_and_drop(void **state)
{
	const char *head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
	size_t big = CLUSTER__HTTP_MAX_BODY + 4096, n;
	char *raw;
	const char *cr;
	v3fake v;
	CLUSTER *c;

	(void) state;
	cr = created(42);
	raw = keep(malloc(big + 512));
	n = (size_t) sprintf(raw, "%s%zx\r\n%s\n\r\n%zx\r\n{\"result\":\"", head, strlen(cr) + 1, cr, big);
	memset(raw + n, 'x', big - 11);
	n += big - 11;
	sprintf(raw + n, "\r\n");
	c = watch_join(&v, raw, 1);
	assert_resumed(&v, 2, 43);
	assert_true(tu_logged("broke"));
	assert_int_equal(calls(), 1);
	assert_state(c, 2, 3);
	finish(&v, c);

	/* dropped mid-chunk, after one good event */
	cr = stream(created(42), ev_put(PREFIX "b", "{\"workers\":4}", 43), NULL);
	raw = keep(malloc(strlen(cr) + 64));
	sprintf(raw, "%s40\r\n{\"result\":{\"header\":", cr);
	c = watch_join(&v, raw, 0);
	assert_resumed(&v, 2, 44);
	assert_int_equal(calls(), 2);
	assert_state(c, 6, 7);
	assert_members(c, "a:2,b:4,self:1");
	finish(&v, c);
}

/* Revisions at the very end of the int64 range (a hostile server) must
 * not overflow when the watch resumes. */
static void
test_v3_watch_huge_revision(void **state)
{
	v3fake v;
	CLUSTER *c;

	(void) state;
	c = watch_join(&v, stream(created(42), ev_put(PREFIX "b", "{\"workers\":4}", INT64_MAX), "garbage", NULL), 1);
	assert_resumed(&v, 2, INT64_MAX);
	assert_int_equal(calls(), 2);
	assert_state(c, 6, 7);
	finish(&v, c);
}

/* The id is held under another lease (says a txn at revision INT64_MAX):
 * the join revokes its new lease, watches the key from a revision that
 * does not overflow, and takes the id once the key is deleted. */
static void
test_v3_join_id_taken_huge_revision(void **state)
{
	v3fake v;
	CLUSTER *c;

	(void) state;
	v3_init(&v, "6");
	v3_set(&v, R_TXN, 0, ok_json(fmt("{\"header\":{\"revision\":\"%lld\"},\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"9\"},"
									 "\"kvs\":[%s],\"count\":\"1\"}}]}",
							 (long long) INT64_MAX, kv(PREFIX "self", "{\"workers\":1}", 9))),
		0);
	v3_then_good(&v, R_TXN);
	v3_set(&v, R_WATCH, 0, stream(created(42), fmt("{\"result\":{\"header\":{\"revision\":\"50\"},\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"%s\",\"mod_revision\":\"50\"}}]}}", b64(PREFIX "self")), NULL), 1);
	v3_then_good(&v, R_WATCH);
	v3_start(&v);
	c = new_cluster(v.url);
	assert_int_equal(cluster_set_ttl(c, 2), 0);
	assert_int_equal(cluster_join(c), 0);
	assert_true(tu_logged("is already registered"));
	assert_int_equal(count(&v, R_GRANT), 2);
	assert_int_equal(count(&v, R_REVOKE), 1);
	assert_int_equal(calls(), 1);
	assert_state(c, 2, 3);
	/* the key watch, then the balancer's prefix watch */
	if(!WAIT_FOR(count(&v, R_WATCH) >= 2, 5000))
	{
		fail_msg("no prefix watch");
	}
	assert_true(fakehttp_seen(v.f, "\"start_revision\":\"9223372036854775807\""));
	finish(&v, c);
}

/* A compaction makes the engine re-read the prefix; a malformed re-read
 * is logged and retried, and the good one is applied as a difference. */
static void
test_v3_watch_compaction_bad_reread(void **state)
{
	v3fake v;
	CLUSTER *c;

	(void) state;
	c = NULL;
	v3_init(&v, "6");
	v3_set(&v, R_WATCH, 0, stream(created(42), "{\"result\":{\"header\":{\"revision\":\"60\"},\"canceled\":true,\"compact_revision\":\"55\"}}", NULL), 1);
	v3_then_good(&v, R_WATCH);
	v3_then_good(&v, R_RANGE);
	v3_set(&v, R_RANGE, 1, ok_json("{\"header\":{\"revision\":\"60\"},\"kvs\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["), 0);
	v3_set(&v, R_RANGE, 2, ok_json(range_body(60, fmt("%s,%s,%s", kv(PREFIX "a", "{\"workers\":2}", 30), kv(PREFIX "b", "{\"workers\":4}", 58), kv(PREFIX "self", "{\"workers\":1}", 41)))), 0);
	v3_start(&v);
	c = new_cluster(v.url);
	assert_int_equal(cluster_join(c), 0);
	if(!WAIT_FOR(total_is(c, 7), 5000))
	{
		fail_msg("the re-read was not applied (%u range requests)", count(&v, R_RANGE));
	}
	assert_true(tu_logged("compacted at revision 55"));
	assert_true(tu_logged("cannot re-read"));
	assert_int_equal(count(&v, R_RANGE), 3);
	assert_state(c, 6, 7);
	assert_members(c, "a:2,b:4,self:1");
	assert_int_equal(calls(), 2);
	assert_resumed(&v, 2, 61);
	finish(&v, c);
}

/* A join whose range answer (kvs) holds more members than the library
 * keeps: it fails with E2BIG and leaves nothing behind (the granted lease
 * is revoked), and the same handle then joins a registry answering well. */
static void
join_over_limit(const char *kvs)
{
	v3fake v;
	CLUSTER *c;

	v3_init(&v, "6");
	v.s[R_RANGE][0].raw = ok_json(range_body(42, kvs));
	v3_then_good(&v, R_RANGE);
	v3_start(&v);
	c = new_cluster(v.url);
	assert_join_fails(c, E2BIG, "over the limit");
	assert_int_equal(count(&v, R_REVOKE), 1);
	assert_int_equal(cluster_join(c), 0);
	assert_state(c, 2, 3);
	assert_members(c, "a:2,self:1");
	finish(&v, c);
}

/* Member values nested far deeper than any parser stack should go, and
 * a range whose worker counts add up past INT_MAX: a clean failure or the
 * member left out, never a crash or a wrapped total. */
static void
test_v3_join_absurd_members(void **state)
{
	size_t n = 40000, i, off = 0, cap = n * 120 + 256;
	char *deep = keep(malloc(200001)), *kvs = keep(malloc(cap));
	const char *value;
	v3fake v;
	CLUSTER *c;

	(void) state;
	memset(deep, '[', 200000);
	deep[200000] = 0;
	v3_init(&v, "6");
	v.s[R_RANGE][0].raw = ok_json(range_body(42, fmt("%s,%s,%s", kv(PREFIX "a", "{\"workers\":2}", 30), kv(PREFIX "deep", deep, 31),
													 kv(PREFIX "self", "{\"workers\":1}", 41))));
	v3_start(&v);
	c = new_cluster(v.url);
	assert_int_equal(cluster_join(c), 0);
	assert_state(c, 2, 3);
	assert_true(tu_logged("leaving out member deep"));
	finish(&v, c);

	/* 40000 members of 65535 workers: more than CLUSTER_MEMBERS_MAX (refused
	 * by the parser) and past INT_MAX in all */
	value = b64("{\"workers\":65535}");
	for(i = 0; i < n; i++)
	{
		char key[64];
		char *k;

		snprintf(key, sizeof(key), PREFIX "m%05zu", i);
		k = cluster__b64_encode(key, strlen(key));
		assert_non_null(k);
		off += (size_t) snprintf(kvs + off, cap - off, "%s{\"key\":\"%s\",\"value\":\"%s\",\"mod_revision\":\"9\"}", i ? "," : "", k, value);
		free(k);
	}
	join_over_limit(kvs);
}

/* ---- v3: more members than CLUSTER_MEMBERS_MAX ------------------------------------ */

/* n minimal member kvs "PREFIX mNNNNNN" (1 worker), comma-separated; as
 * watch events ({"kv":..}) when events is set. */
static const char *
many_kvs(size_t n, int events, long long rev)
{
	size_t cap = n * 120 + 64, off = 0, i;
	const char *value = b64("{\"workers\":1}");
	char *s = keep(malloc(cap));

	s[0] = 0;
	for(i = 0; i < n; i++)
	{
		char key[64], *k;

		snprintf(key, sizeof(key), PREFIX "m%06zu", i);
		k = cluster__b64_encode(key, strlen(key));
		assert_non_null(k);
		off += (size_t) snprintf(s + off, cap - off, "%s%s{\"key\":\"%s\",\"value\":\"%s\",\"mod_revision\":\"%lld\"}%s", i ? "," : "",
			events ? "{\"kv\":" : "", k, value, rev, events ? "}" : "");
		free(k);
		assert_true(off < cap);
	}
	return s;
}

/* A range answer holding CLUSTER_MEMBERS_MAX + 1 members: the parser
 * refuses it before decoding a record, the join fails and hands its lease
 * back, nothing is published, and a later join that reads a sane answer
 * works. */
static void
test_v3_join_over_limit(void **state)
{
	(void) state;
	join_over_limit(fmt("%s,%s", kv(PREFIX "self", "{\"workers\":1}", 41), many_kvs(CLUSTER_MEMBERS_MAX, 0, 30)));
}

/* Watch events that would take the table past CLUSTER_MEMBERS_MAX: the
 * process never holds more than the limit, every view it shows is
 * consistent, and it leaves cleanly. */
static void
test_v3_watch_over_limit(void **state)
{
	v3fake v;
	CLUSTER *c;
	CLUSTERMEMBER *m = NULL;
	size_t n = 0;

	(void) state;
	/* a and self, then one message with CLUSTER_MEMBERS_MAX - 1 puts */
	c = watch_join(&v, stream(created(42), fmt("{\"result\":{\"header\":{\"revision\":\"43\"},\"events\":[%s]}}", many_kvs(CLUSTER_MEMBERS_MAX - 1, 1, 43)), NULL), 1);
	/* the stream is abandoned and the prefix read again; nothing of the
	 * refused message is shown, the previous member set stays */
	if(!WAIT_FOR(count(&v, R_WATCH) >= 2 && count(&v, R_RANGE) >= 2, 10000))
	{
		fail_msg("the watch message was not refused (calls %d, watches %u, ranges %u)", calls(), count(&v, R_WATCH), count(&v, R_RANGE));
	}
	assert_int_equal(cluster_members(c, &m, &n), 0);
	cluster_members_free(m);
	if(n > CLUSTER_MEMBERS_MAX)
	{
		fail_msg("the view holds %zu members, more than CLUSTER_MEMBERS_MAX (%d)", n, CLUSTER_MEMBERS_MAX);
	}
	assert_int_equal(calls(), 1);
	assert_members(c, "a:2,self:1");
	assert_true(tu_logged("more than CLUSTER_MEMBERS_MAX"));
	finish(&v, c);
}

/* ---- v3 ping thread -------------------------------------------------------------- */

/* Keepalives answered with garbage: logged, the view is untouched, and
 * when the answers are good again the watch is made to reconnect. */
static void
test_v3_keepalive_garbage(void **state)
{
	v3fake v;
	CLUSTER *c;

	(void) state;
	v3_init(&v, "3");
	v3_set(&v, R_KEEPALIVE, 0, ka_answer("{\"result\":[1,2,3]}"), 0);
	v3_set(&v, R_KEEPALIVE, 1, ka_answer("\xff\xfe"), 0);
	v3_then_good(&v, R_KEEPALIVE);
	v3_start(&v);
	c = new_cluster(v.url);
	assert_int_equal(cluster_join(c), 0);
	if(!WAIT_FOR(count(&v, R_KEEPALIVE) >= 3 && count(&v, R_WATCH) >= 2, 8000))
	{
		fail_msg("keepalives %u, watches %u", count(&v, R_KEEPALIVE), count(&v, R_WATCH));
	}
	assert_true(tu_logged("malformed keepalive response"));
	assert_true(tu_logged("reachable again"));
	assert_int_equal(count(&v, R_GRANT), 1);
	assert_int_equal(calls(), 1);
	assert_state(c, 2, 3);
	finish(&v, c);
}

/* ---- v2 engine ------------------------------------------------------------------- */

enum
{
	V2_WATCH,
	V2_LIST,
	V2_PUT,
	V2_DELETE,
	V2_N
};

static const char *const v2_match[V2_N] = {
	"GET /v2/keys/hk/production?wait=true",
	"GET /v2/keys/hk/production ",
	"PUT /v2/keys/hk/production/self?",
	"DELETE /v2/keys/hk/production/self ",
};

typedef struct v2fake v2fake;
struct v2fake
{
	fakehttp_reply s[V2_N][SCRIPT_MAX];
	fakehttp_route routes[V2_N];
	fakehttp *f;
	char url[96];
};

static const char *
v2_answer(int status, const char *reason, const char *index, const char *body)
{
	return fmt("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n%s%s%sContent-Length: %zu\r\n\r\n%s", status, reason,
		index ? "X-Etcd-Index: " : "", index ? index : "", index ? "\r\n" : "", strlen(body), body);
}

static const char *
v2_listing(void)
{
	return v2_answer(200, "OK", "10", "{\"action\":\"get\",\"node\":{\"key\":\"/hk/production\",\"dir\":true,\"nodes\":["
									  "{\"key\":\"/hk/production/a\",\"value\":\"2\",\"modifiedIndex\":5,\"createdIndex\":5},"
									  "{\"key\":\"/hk/production/self\",\"value\":\"1\",\"modifiedIndex\":9,\"createdIndex\":9}],\"modifiedIndex\":2,\"createdIndex\":2}}");
}

static const char *
v2_event(const char *id, const char *value, int index)
{
	return v2_answer(200, "OK", fmt("%d", index), fmt("{\"action\":\"set\",\"node\":{\"key\":\"/hk/production/%s\",\"value\":\"%s\",\"modifiedIndex\":%d,\"createdIndex\":%d}}", id, value, index, index));
}

static void
v2_init(v2fake *v)
{
	int i;

	memset(v, 0, sizeof(*v));
	for(i = 0; i < V2_N; i++)
	{
		v->routes[i].match = v2_match[i];
		v->routes[i].script = v->s[i];
		v->routes[i].n = 1;
	}
	v->s[V2_WATCH][0].raw = "";
	v->s[V2_WATCH][0].hang_ms = -1;
	v->s[V2_LIST][0].raw = v2_listing();
	v->s[V2_PUT][0].raw = v2_answer(201, "Created", "9", "{\"action\":\"create\",\"node\":{\"key\":\"/hk/production/self\",\"value\":\"1\",\"modifiedIndex\":9,\"createdIndex\":9}}");
	v->s[V2_DELETE][0].raw = v2_answer(200, "OK", "11", "{\"action\":\"delete\",\"node\":{\"key\":\"/hk/production/self\",\"modifiedIndex\":11,\"createdIndex\":9}}");
}

static void
v2_start(v2fake *v)
{
	v->f = started(fakehttp_start_routes(v->routes, V2_N));
	assert_non_null(v->f);
	snprintf(v->url, sizeof(v->url), "etcd2+%s/", fakehttp_url(v->f));
}

static unsigned
v2_count(v2fake *v, int r)
{
	return fakehttp_route_requests(v->f, v2_match[r]);
}

/* A listing that is not a v2 directory (or lacks its index): the join
 * fails with EIO, removes the key it created, and can be retried. */
static void
test_v2_bad_listing(void **state)
{
	struct
	{
		const char *name;
		const char *raw;
		const char *log;
	} cases[] = {
		{ "HTML", NULL, "not a v2 directory" },
		{ "JSON array", NULL, "not a v2 directory" },
		{ "v3 range answer", NULL, "not a v2 directory" },
		{ "truncated", NULL, "not a v2 directory" },
		{ "no X-Etcd-Index", NULL, "carried no X-Etcd-Index" },
		{ "HTTP 500", NULL, "HTTP status 500" },
	};
	size_t i;

	(void) state;
	cases[0].raw = v2_answer(200, "OK", "10", "<html>proxy error</html>");
	cases[1].raw = v2_answer(200, "OK", "10", "[\"/hk/production/a\"]");
	cases[2].raw = v2_answer(200, "OK", "10", range_body(42, kv(PREFIX "self", "{\"workers\":1}", 41)));
	cases[3].raw = v2_answer(200, "OK", "10", "{\"action\":\"get\",\"node\":{\"key\":\"/hk/production\",\"dir\":true,\"nodes\":[{\"key\"");
	cases[4].raw = v2_answer(200, "OK", NULL, "{\"action\":\"get\",\"node\":{\"key\":\"/hk/production\",\"dir\":true,\"nodes\":[]}}");
	cases[5].raw = v2_answer(500, "Internal Server Error", "10", "oops");
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		v2fake v;
		CLUSTER *c;

		fprintf(stderr, "# v2 listing case: %s\n", cases[i].name);
		v2_init(&v);
		v.s[V2_LIST][0].raw = cases[i].raw;
		v.s[V2_LIST][1].raw = v2_listing();
		v.routes[V2_LIST].n = 2;
		v2_start(&v);
		c = new_cluster(v.url);
		assert_join_fails(c, EIO, cases[i].name);
		assert_true(tu_logged(cases[i].log));
		assert_int_equal(v2_count(&v, V2_LIST), 1);
		assert_int_equal(v2_count(&v, V2_DELETE), 1);
		assert_int_equal(v2_count(&v, V2_WATCH), 0);

		assert_int_equal(cluster_join(c), 0);
		assert_int_equal(calls(), 1);
		assert_state(c, 2, 3);
		assert_members(c, "a:2,self:1");
		leave_fast(c);
		assert_int_equal(cluster_destroy(c), 0);
		stop_server(v.f);
	}
}

/* Listings a real etcd would never send: an X-Etcd-Index at the end of
 * the integer range (no overflow when the view's revision is derived from
 * it), and more than CLUSTER_MEMBERS_MAX members (here of 65535 workers,
 * past INT_MAX in all): the join fails with E2BIG, says why once, removes
 * its key and can be retried. */
static void
test_v2_absurd_listing(void **state)
{
	size_t n = CLUSTER_MEMBERS_MAX + 1, i, off = 0, cap = n * 100 + 512;
	char *body = keep(malloc(cap));
	v2fake v;
	CLUSTER *c;

	(void) state;
	v2_init(&v);
	v.s[V2_LIST][0].raw = v2_answer(200, "OK", "9223372036854775807", strstr(v2_listing(), "\r\n\r\n") + 4);
	v2_start(&v);
	c = new_cluster(v.url);
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(calls(), 1);
	assert_state(c, 2, 3);
	if(!WAIT_FOR(v2_count(&v, V2_WATCH) >= 1, 5000))
	{
		fail_msg("no watch");
	}
	leave_fast(c);
	assert_int_equal(cluster_destroy(c), 0);
	assert_true(fakehttp_seen(v.f, "waitIndex=9223372036854775808 "));
	stop_server(v.f);

	off = (size_t) snprintf(body, cap, "{\"action\":\"get\",\"node\":{\"key\":\"/hk/production\",\"dir\":true,\"nodes\":[");
	for(i = 0; i < n; i++)
	{
		off += (size_t) snprintf(body + off, cap - off, "%s{\"key\":\"/hk/production/m%05zu\",\"value\":\"65535\",\"modifiedIndex\":5}", i ? "," : "", i);
	}
	snprintf(body + off, cap - off, "]}}");
	v2_init(&v);
	v.s[V2_LIST][0].raw = v2_answer(200, "OK", "10", body);
	v.s[V2_LIST][1].raw = v2_listing();
	v.routes[V2_LIST].n = 2;
	v2_start(&v);
	c = new_cluster(v.url);
	assert_join_fails(c, E2BIG, "v2 over the limit");
	assert_true(tu_logged(fmt("<3>libcluster: etcd2: /hk/production holds more than CLUSTER_MEMBERS_MAX (%d) members", CLUSTER_MEMBERS_MAX)));
	assert_int_equal(times_logged("cannot read"), 0);
	assert_int_equal(v2_count(&v, V2_DELETE), 1);
	assert_int_equal(cluster_join(c), 0);
	assert_state(c, 2, 3);
	leave_fast(c);
	assert_int_equal(cluster_destroy(c), 0);
	stop_server(v.f);
}

/* Watch answers that are garbage or carry a bad worker count change
 * nothing; the engine polls again from the same index, applies the next
 * good event and moves its index past it. */
static void
test_v2_bad_watch(void **state)
{
	v2fake v;
	CLUSTER *c;
	char last[8192];

	(void) state;
	v2_init(&v);
	v.s[V2_WATCH][0].raw = v2_answer(200, "OK", "10", "\x01 this is not json");
	v.s[V2_WATCH][1].raw = v2_answer(200, "OK", "10", "[{\"action\":\"set\"}]");
	v.s[V2_WATCH][2].raw = "HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n{\"action\":\"set\",\"node\":{";
	v.s[V2_WATCH][2].close = 1;
	v.s[V2_WATCH][3].raw = v2_event("b", "abc", 11);
	v.s[V2_WATCH][4].raw = v2_event("c", "70000", 12);
	v.s[V2_WATCH][5].raw = v2_event("b", "4", 13);
	v.s[V2_WATCH][6].raw = "";
	v.s[V2_WATCH][6].hang_ms = -1;
	v.routes[V2_WATCH].n = 7;
	v2_start(&v);
	c = new_cluster(v.url);
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(calls(), 1);
	assert_state(c, 2, 3);
	if(!WAIT_FOR(v2_count(&v, V2_WATCH) >= 7, 10000))
	{
		fail_msg("the engine made %u watch requests, want 7", v2_count(&v, V2_WATCH));
	}
	fakehttp_route_last(v.f, v2_match[V2_WATCH], last, sizeof(last));
	assert_non_null(strstr(last, "waitIndex=14 "));
	assert_true(tu_logged("unexpected watch answer"));
	assert_true(tu_logged("member b has an invalid worker count"));
	assert_true(tu_logged("member c has an invalid worker count"));
	assert_int_equal(calls(), 2);
	assert_state(c, 6, 7);
	assert_members(c, "a:2,b:4,self:1");
	leave_fast(c);
	assert_int_equal(cluster_destroy(c), 0);
	stop_server(v.f);
}

/* A v2 listing of a, self and n - 2 minimal members m000000... */
static const char *
v2_listing_of(size_t n)
{
	size_t cap = n * 90 + 512, off = 0, i;
	char *body = keep(malloc(cap));

	off = (size_t) snprintf(body, cap, "{\"action\":\"get\",\"node\":{\"key\":\"/hk/production\",\"dir\":true,\"nodes\":["
									   "{\"key\":\"/hk/production/a\",\"value\":\"2\",\"modifiedIndex\":5},{\"key\":\"/hk/production/self\",\"value\":\"1\",\"modifiedIndex\":9}");
	for(i = 0; i + 2 < n; i++)
	{
		off += (size_t) snprintf(body + off, cap - off, ",{\"key\":\"/hk/production/m%06zu\",\"value\":\"1\",\"modifiedIndex\":5}", i);
	}
	snprintf(body + off, cap - off, "]}}");
	return v2_answer(200, "OK", "10", body);
}

/* A watch event that adds a member to a full table: refused, said once
 * (LOG_ERR, naming the limit and the directory), the view stays the
 * previous one (not a partial list), and the engine re-lists until the
 * directory is back within the limit, then publishes what it holds. */
static void
test_v2_watch_over_limit(void **state)
{
	v2fake v;
	CLUSTER *c;
	const char *said;

	(void) state;
	v2_init(&v);
	v.s[V2_LIST][0].raw = v2_listing_of(CLUSTER_MEMBERS_MAX);
	v.s[V2_LIST][1].raw = v2_listing_of(CLUSTER_MEMBERS_MAX + 1);
	v.s[V2_LIST][2].raw = v2_listing();
	v.routes[V2_LIST].n = 3;
	v.s[V2_WATCH][0].raw = v2_event("zz", "1", 11);
	v.s[V2_WATCH][1].raw = "";
	v.s[V2_WATCH][1].hang_ms = -1;
	v.routes[V2_WATCH].n = 2;
	v2_start(&v);
	c = new_cluster(v.url);
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(calls(), 1);
	assert_int_equal(cluster_total(c), CLUSTER_MEMBERS_MAX + 1);
	if(!WAIT_FOR(v2_count(&v, V2_LIST) >= 3 && calls() >= 2, 10000))
	{
		fail_msg("listings %u, calls %d: no re-list after the refused member", v2_count(&v, V2_LIST), calls());
	}
	/* the full table was never shown with a member left out: the only
	 * views were the joined one and the re-listed one */
	assert_int_equal(calls(), 2);
	assert_state(c, 2, 3);
	assert_members(c, "a:2,self:1");
	said = fmt("<3>libcluster: etcd2: /hk/production holds more than CLUSTER_MEMBERS_MAX (%d) members", CLUSTER_MEMBERS_MAX);
	assert_true(tu_logged(said));
	assert_int_equal(times_logged(said), 1);
	if(!WAIT_FOR(v2_count(&v, V2_WATCH) >= 2, 5000))
	{
		fail_msg("no watch after the re-list");
	}
	assert_true(fakehttp_seen(v.f, "waitIndex=11 "));
	leave_fast(c);
	assert_int_equal(cluster_destroy(c), 0);
	stop_server(v.f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_v3_join_bad_grant, teardown),
		cmocka_unit_test_teardown(test_v3_join_unreachable, teardown),
		cmocka_unit_test_teardown(test_v3_join_bad_txn, teardown),
		cmocka_unit_test_teardown(test_v3_join_bad_range, teardown),
		cmocka_unit_test_teardown(test_v3_join_bad_members, teardown),
		cmocka_unit_test_teardown(test_v3_join_id_taken_huge_revision, teardown),
		cmocka_unit_test_teardown(test_v3_join_absurd_members, teardown),
		cmocka_unit_test_teardown(test_v3_join_over_limit, teardown),
		cmocka_unit_test_teardown(test_v3_watch_over_limit, teardown),
		cmocka_unit_test_teardown(test_v3_watch_bad_lines, teardown),
		cmocka_unit_test_teardown(test_v3_watch_events_before_created, teardown),
		cmocka_unit_test_teardown(test_v3_watch_bad_values, teardown),
		cmocka_unit_test_teardown(test_v3_watch_foreign_keys, teardown),
		cmocka_unit_test_teardown(test_v3_watch_long_line_and_drop, teardown),
		cmocka_unit_test_teardown(test_v3_watch_huge_revision, teardown),
		cmocka_unit_test_teardown(test_v3_watch_compaction_bad_reread, teardown),
		cmocka_unit_test_teardown(test_v3_keepalive_garbage, teardown),
		cmocka_unit_test_teardown(test_v2_bad_listing, teardown),
		cmocka_unit_test_teardown(test_v2_absurd_listing, teardown),
		cmocka_unit_test_teardown(test_v2_bad_watch, teardown),
		cmocka_unit_test_teardown(test_v2_watch_over_limit, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
