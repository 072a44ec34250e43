/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the HTTP seam: endpoint list parsing, the stream line
 * splitter (random slicing), and requests/streams against a scripted fake
 * server that sends what a real etcd never would: oversized bodies,
 * truncated or non-HTTP replies, silence. Also checks that cancel and
 * interrupt from another thread end a hung request at once.
 */
#ifdef HAVE_CONFIG_H
# include "config.h"
#endif
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "cluster-int.h"
#include "testutil.h"
#include "http.h"
#include "fakehttp.h"

static int64_t
now_ms(void)
{
	return cluster__now_ms();
}

static cluster__http *
make_http(char **eps, size_t n, int timeout_ms)
{
	cluster__http_config cfg;
	cluster__http *h;

	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoints = eps;
	cfg.n_endpoints = n;
	cfg.connect_timeout_ms = tu_scaled_ms(1000);
	cfg.timeout_ms = timeout_ms;
	cfg.require_leader = 1;
	h = cluster__http_create(&cfg, NULL);
	assert_non_null(h);
	return h;
}

/* ---- endpoints ----------------------------------------------------------- */

static void
test_endpoints(void **state)
{
	static const char *bad[] = {
		"",
		"127.0.0.1:2379",
		"ftp://a:1/",
		"http://",
		"http://:2379",
		"http://a",
		"http://a/",
		"http://a:0/",
		"http://a:65536/",
		"http://a:12x/",
		"http://a:1,",
		",http://a:1",
		"http://a:1,,http://b:2",
		"http://u:p@a:1/",
		"http://a b:1/",
		"http://a:1/x?y",
		"http://a:1/#f",
		"http://[::1/",
		"http://[]:1/",
		"etcd2+http://a:1/",
		"http://a:1/p q",
	};
	char **eps;
	const char *why;
	size_t n, i;

	(void) state;
	assert_int_equal(cluster__http_parse_endpoints("http://127.0.0.1:2379/", &eps, &n, &why), 0);
	assert_int_equal(n, 1);
	assert_string_equal(eps[0], "http://127.0.0.1:2379");
	cluster__http_endpoints_free(eps, n);

	assert_int_equal(cluster__http_parse_endpoints(" http://a:1/ , HTTPS://b.example-x.org:2379,http://[::1]:3/,http://c:4/proxy/etcd//", &eps, &n, &why), 0);
	assert_int_equal(n, 4);
	assert_string_equal(eps[0], "http://a:1");
	assert_string_equal(eps[1], "https://b.example-x.org:2379");
	assert_string_equal(eps[2], "http://[::1]:3");
	assert_string_equal(eps[3], "http://c:4/proxy/etcd");
	cluster__http_endpoints_free(eps, n);

	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		eps = (char **) 1;
		why = NULL;
		if(cluster__http_parse_endpoints(bad[i], &eps, &n, &why) != EINVAL)
		{
			fail_msg("<%s> was accepted", bad[i]);
		}
		assert_null(eps);
		assert_int_equal(n, 0);
		assert_non_null(why);
		assert_true(strlen(why) > 5);
	}
	assert_int_equal(cluster__http_parse_endpoints(NULL, &eps, &n, &why), EINVAL);

	/* credentials in the URI: named as such (it once said "port must be
	 * a number") */
	assert_int_equal(cluster__http_parse_endpoints("http://user:pw@host:2379/", &eps, &n, &why), EINVAL);
	assert_non_null(strstr(why, "user name or password"));
	assert_int_equal(cluster__http_parse_endpoints("http://a:1/,https://u@b:2", &eps, &n, &why), EINVAL);
	assert_non_null(strstr(why, "user name or password"));
}

/* ---- line splitter ------------------------------------------------------- */

typedef struct lines lines;
struct lines
{
	char **v;
	size_t n;
	size_t stop_after; /* 0: never */
};

static int
collect(void *ctx, const char *line, size_t len)
{
	lines *l = ctx;

	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	assert_non_null(l->v);
	l->v[l->n] = malloc(len + 1);
	assert_non_null(l->v[l->n]);
	memcpy(l->v[l->n], line, len);
	l->v[l->n][len] = 0;
	l->n++;
	return l->stop_after && l->n >= l->stop_after;
}

static void
lines_free(lines *l)
{
	size_t i;

	for(i = 0; i < l->n; i++)
	{
		free(l->v[i]);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void
test_linesplit_random(void **state)
{
	unsigned int seed = 12345;
	int round;

	(void) state;
	for(round = 0; round < 200; round++)
	{
		char *stream = malloc(200000), **want = calloc(300, sizeof(char *));
		size_t slen = 0, nwant = 0, off = 0, i;
		cluster__linesplit ls;
		lines got;
		int k, nlines = (int) (rand_r(&seed) % 60);

		memset(&ls, 0, sizeof(ls));
		memset(&got, 0, sizeof(got));
		for(k = 0; k < nlines; k++)
		{
			size_t len = (size_t) (rand_r(&seed) % (k % 7 == 0 ? 3000 : 80)) + 1;

			want[nwant] = malloc(len + 1);
			for(i = 0; i < len; i++)
			{
				want[nwant][i] = (char) ('!' + rand_r(&seed) % 90);
			}
			want[nwant][len] = 0;
			memcpy(stream + slen, want[nwant], len);
			slen += len;
			/* CRLF now and then: the CR is dropped */
			if(rand_r(&seed) % 5 == 0)
			{
				stream[slen++] = '\r';
			}
			stream[slen++] = '\n';
			nwant++;
		}
		/* a final object without newline, as etcd's stream error comes */
		if(round % 2)
		{
			want[nwant] = strdup("{\"error\":{\"grpc_code\":14}}");
			memcpy(stream + slen, want[nwant], strlen(want[nwant]));
			slen += strlen(want[nwant]);
			nwant++;
		}
		while(off < slen)
		{
			size_t n = (size_t) (rand_r(&seed) % (round % 3 ? 17 : 4000)) + 1;

			if(n > slen - off)
			{
				n = slen - off;
			}
			assert_int_equal(cluster__linesplit_feed(&ls, stream + off, n, collect, &got), 0);
			off += n;
		}
		assert_int_equal(cluster__linesplit_finish(&ls, collect, &got), 0);
		assert_int_equal(got.n, nwant);
		for(i = 0; i < nwant; i++)
		{
			assert_string_equal(got.v[i], want[i]);
			free(want[i]);
		}
		lines_free(&got);
		cluster__linesplit_free(&ls);
		free(want);
		free(stream);
	}
}

static void
test_linesplit_limits(void **state)
{
	cluster__linesplit ls;
	lines got;
	char big[100];

	(void) state;
	/* a line longer than the cap fails, whether it comes whole or in slices */
	memset(&ls, 0, sizeof(ls));
	memset(&got, 0, sizeof(got));
	ls.max = 10;
	memset(big, 'a', sizeof(big));
	assert_int_equal(cluster__linesplit_feed(&ls, "0123456789\n", 11, collect, &got), 0);
	assert_int_equal(cluster__linesplit_feed(&ls, big, 6, collect, &got), 0);
	assert_int_equal(cluster__linesplit_feed(&ls, big, 6, collect, &got), EIO);
	cluster__linesplit_free(&ls);
	memset(&ls, 0, sizeof(ls));
	ls.max = 10;
	assert_int_equal(cluster__linesplit_feed(&ls, big, sizeof(big), collect, &got), EIO);
	cluster__linesplit_free(&ls);
	assert_int_equal(got.n, 1);
	lines_free(&got);

	/* stop: nothing is delivered after the callback says so */
	memset(&ls, 0, sizeof(ls));
	got.stop_after = 2;
	assert_int_equal(cluster__linesplit_feed(&ls, "a\nb\nc\nd", 7, collect, &got), 0);
	assert_int_equal(cluster__linesplit_finish(&ls, collect, &got), 0);
	assert_int_equal(got.n, 2);
	assert_int_equal(ls.stopped, 1);
	lines_free(&got);
	cluster__linesplit_free(&ls);

	/* a blank tail is not a line */
	memset(&ls, 0, sizeof(ls));
	assert_int_equal(cluster__linesplit_feed(&ls, "x\n \r\n  ", 7, collect, &got), 0);
	assert_int_equal(cluster__linesplit_finish(&ls, collect, &got), 0);
	assert_int_equal(got.n, 2);
	assert_string_equal(got.v[1], " ");
	lines_free(&got);
	cluster__linesplit_free(&ls);
}

/* ---- requests against the fake server -------------------------------------- */

static const char ok_reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";

static void
test_request_ok_and_headers(void **state)
{
	fakehttp_reply script[] = { { ok_reply, 0, 0, 0, 0, 0 } };
	fakehttp *f = fakehttp_start(script, 1);
	cluster__http_response resp;
	cluster__http *h;
	char *ep, req[8192];

	(void) state;
	assert_non_null(f);
	ep = strdup(fakehttp_url(f));
	h = make_http(&ep, 1, tu_scaled_ms(2000));
	assert_int_equal(cluster__http_set_token(h, "tok.1"), 0);
	assert_int_equal(cluster__http_request(h, "POST", "/v3/kv/range", NULL, "{\"key\":\"YQ==\"}", &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.len, 11);
	assert_string_equal(resp.body, "{\"ok\":true}");
	cluster__http_response_free(&resp);
	fakehttp_last_request(f, req, sizeof(req));
	assert_non_null(strstr(req, "POST /v3/kv/range HTTP/1.1\r\n"));
	assert_non_null(strstr(req, "\r\nGrpc-Metadata-Hasleader: true\r\n"));
	assert_non_null(strstr(req, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strstr(req, "\r\nAuthorization: tok.1\r\n"));
	assert_null(strstr(req, "Expect:"));
	assert_non_null(strstr(req, "\r\n\r\n{\"key\":\"YQ==\"}"));
	/* a second request reuses the connection and still works */
	assert_int_equal(cluster__http_request(h, "POST", "/v3/lease/keepalive", NULL, NULL, &resp), 0);
	assert_int_equal(resp.status, 200);
	cluster__http_response_free(&resp);
	assert_int_equal(fakehttp_requests(f), 2);
	cluster__http_destroy(h);
	fakehttp_stop(f);
	free(ep);
}

static void
test_request_failover(void **state)
{
	fakehttp_reply s503[] = { { "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}", 0, 0, 0, 0, 0 } };
	fakehttp_reply sok[] = { { ok_reply, 0, 0, 0, 0, 0 } };
	fakehttp *bad = fakehttp_start(s503, 1), *good = fakehttp_start(sok, 1), *dead = fakehttp_start(sok, 1);
	cluster__http_response resp;
	cluster__http *h;
	char *eps[3];

	(void) state;
	assert_non_null(bad);
	assert_non_null(good);
	assert_non_null(dead);
	/* a port nobody listens on any more: connection refused */
	eps[0] = strdup(fakehttp_url(dead));
	fakehttp_stop(dead);
	eps[1] = strdup(fakehttp_url(bad));
	eps[2] = strdup(fakehttp_url(good));
	h = make_http(eps, 3, tu_scaled_ms(2000));
	assert_int_equal(cluster__http_request(h, "POST", "/v3/kv/put", NULL, "{}", &resp), 0);
	assert_int_equal(resp.status, 200);
	cluster__http_response_free(&resp);
	assert_string_equal(cluster__http_endpoint(h), eps[2]);
	assert_int_equal(fakehttp_requests(bad), 1);
	/* sticks to the healthy endpoint */
	assert_int_equal(cluster__http_request(h, "POST", "/v3/kv/put", NULL, "{}", &resp), 0);
	cluster__http_response_free(&resp);
	assert_int_equal(fakehttp_requests(bad), 1);
	assert_int_equal(fakehttp_requests(good), 2);
	cluster__http_destroy(h);

	/* all endpoints answer 5xx: the last answer is returned */
	h = make_http(&eps[1], 1, tu_scaled_ms(2000));
	assert_int_equal(cluster__http_request(h, "POST", "/v3/kv/put", NULL, "{}", &resp), 0);
	assert_int_equal(resp.status, 503);
	cluster__http_response_free(&resp);
	cluster__http_destroy(h);
	/* nobody listens at all */
	h = make_http(&eps[0], 1, tu_scaled_ms(2000));
	assert_int_equal(cluster__http_request(h, "POST", "/v3/kv/put", NULL, "{}", &resp), ECONNREFUSED);
	assert_null(resp.body);
	cluster__http_destroy(h);
	fakehttp_stop(bad);
	fakehttp_stop(good);
	free(eps[0]);
	free(eps[1]);
	free(eps[2]);
}

/* Each hostile reply must end in a clean error, never a crash or a leak. */
static void
test_request_hostile(void **state)
{
	size_t big = CLUSTER__HTTP_MAX_BODY + 1000;
	char *huge = malloc(big + 200);
	int n = snprintf(huge, 200, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", big);
	struct
	{
		fakehttp_reply r;
		int want;
	} cases[] = {
		{ { NULL, 0, 0, 0, 0, 1 }, EIO },                                                            /* oversized body */
		{ { "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\":1", 0, 0, 0, 0, 1 }, EIO },        /* truncated */
		{ { "SSH-2.0-OpenSSH_9.2\r\n", 0, 0, 0, 0, 1 }, EIO },                                       /* not HTTP */
		{ { "", 0, 0, 0, 0, 1 }, EPROTO },                                                           /* empty reply: what a TLS port answers to http:// */
		{ { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx", 0, 0, 0, 0, 1 }, EIO }, /* bad chunking */
	};
	size_t i;

	(void) state;
	memset(huge + n, 'a', big);
	cases[0].r.raw = huge;
	cases[0].r.len = (size_t) n + big;
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		fakehttp *f = fakehttp_start(&cases[i].r, 1);
		cluster__http_response resp;
		cluster__http *h;
		char *ep = strdup(fakehttp_url(f));
		int r;

		h = make_http(&ep, 1, tu_scaled_ms(3000));
		r = cluster__http_request(h, "POST", "/v3/kv/range", NULL, "{}", &resp);
		if(r != cases[i].want)
		{
			fail_msg("case %zu: got %d (%s), want %d", i, r, strerror(r), cases[i].want);
		}
		assert_null(resp.body);
		cluster__http_destroy(h);
		fakehttp_stop(f);
		free(ep);
	}
	free(huge);
}

static void
test_request_timeout(void **state)
{
	fakehttp_reply script[] = { { "", 0, 0, 0, -1, 0 } };
	fakehttp *f = fakehttp_start(script, 1);
	cluster__http_response resp;
	cluster__http *h;
	char *ep = strdup(fakehttp_url(f));
	int64_t t0;

	(void) state;
	h = make_http(&ep, 1, 300);
	t0 = now_ms();
	assert_int_equal(cluster__http_request(h, "POST", "/v3/kv/range", NULL, "{}", &resp), ETIMEDOUT);
	assert_true(now_ms() - t0 >= 250);
	assert_true(now_ms() - t0 < tu_scaled_ms(2000));
	cluster__http_destroy(h);
	fakehttp_stop(f);
	free(ep);
}

typedef struct canceller canceller;
struct canceller
{
	cluster__http *h;
	int delay_ms;
	int interrupt;
};

static void *
cancel_main(void *arg)
{
	canceller *c = arg;
	struct timespec ts = { 0, (long) c->delay_ms * 1000000L };

	nanosleep(&ts, NULL);
	if(c->interrupt)
	{
		cluster__http_interrupt(c->h);
	}
	else
	{
		cluster__http_cancel(c->h);
	}
	return NULL;
}

static void
test_cancel_and_interrupt(void **state)
{
	fakehttp_reply script[] = { { "", 0, 0, 0, -1, 0 } };
	fakehttp_reply sok[] = { { ok_reply, 0, 0, 0, 0, 0 } };
	fakehttp *f = fakehttp_start(script, 1), *good = fakehttp_start(sok, 1);
	cluster__http_response resp;
	cluster__http *h;
	char *ep = strdup(fakehttp_url(f)), *ep2 = strdup(fakehttp_url(good));
	canceller c;
	pthread_t t;
	int64_t t0;
	long status;

	(void) state;
	/* a unary request to a hung server, cancelled from another thread */
	h = make_http(&ep, 1, 60000);
	c.h = h;
	c.delay_ms = 100;
	c.interrupt = 0;
	t0 = now_ms();
	assert_int_equal(pthread_create(&t, NULL, cancel_main, &c), 0);
	assert_int_equal(cluster__http_request(h, "POST", "/v3/kv/range", NULL, "{}", &resp), ECANCELED);
	assert_true(now_ms() - t0 < tu_scaled_ms(600));
	pthread_join(t, NULL);
	/* sticky until reset */
	assert_int_equal(cluster__http_request(h, "POST", "/v3/kv/range", NULL, "{}", &resp), ECANCELED);
	cluster__http_reset_cancel(h);
	cluster__http_destroy(h);

	/* a stream interrupted: only that stream ends */
	h = make_http(&ep, 1, 60000);
	c.h = h;
	c.interrupt = 1;
	t0 = now_ms();
	assert_int_equal(pthread_create(&t, NULL, cancel_main, &c), 0);
	assert_int_equal(cluster__http_stream(h, "/v3/watch", "{}", collect, NULL, 0, &status), ECANCELED);
	assert_true(now_ms() - t0 < tu_scaled_ms(600));
	pthread_join(t, NULL);
	cluster__http_destroy(h);
	h = make_http(&ep2, 1, 2000);
	cluster__http_interrupt(h);
	assert_int_equal(cluster__http_request(h, "POST", "/v3/kv/range", NULL, "{}", &resp), 0);
	cluster__http_response_free(&resp);
	cluster__http_destroy(h);
	fakehttp_stop(f);
	fakehttp_stop(good);
	free(ep);
	free(ep2);
}

/* Chunk-encode payload into a full HTTP response in slices of size k. */
static char *
chunked(const char *payload, size_t k, int terminate)
{
	size_t len = strlen(payload), off = 0;
	char *out = malloc(len * 2 + 4096), *p = out;

	p += sprintf(p, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
	while(off < len)
	{
		size_t n = len - off < k ? len - off : k;

		p += sprintf(p, "%zx\r\n", n);
		memcpy(p, payload + off, n);
		p += n;
		p += sprintf(p, "\r\n");
		off += n;
	}
	if(terminate)
	{
		p += sprintf(p, "0\r\n\r\n");
	}
	*p = 0;
	return out;
}

static void
test_stream_lines(void **state)
{
	const char *payload = "{\"result\":{\"created\":true}}\n{\"result\":{\"events\":[1]}}\n\n{\"error\":{\"grpc_code\":14}}";
	char *raw = chunked(payload, 7, 1);
	fakehttp_reply script[] = { { raw, 0, 5, 1, 0, 1 } };
	fakehttp *f = fakehttp_start(script, 1);
	char *ep = strdup(fakehttp_url(f));
	cluster__http *h = make_http(&ep, 1, 2000);
	lines got;
	long status = 0;

	(void) state;
	memset(&got, 0, sizeof(got));
	assert_int_equal(cluster__http_stream_ex(h, "/v3/watch", "{}", collect, &got, tu_scaled_ms(2000), tu_scaled_ms(2000), 0, &status), 0);
	assert_int_equal(status, 200);
	assert_int_equal(got.n, 4);
	assert_string_equal(got.v[0], "{\"result\":{\"created\":true}}");
	assert_string_equal(got.v[1], "{\"result\":{\"events\":[1]}}");
	assert_string_equal(got.v[2], "");
	assert_string_equal(got.v[3], "{\"error\":{\"grpc_code\":14}}");
	lines_free(&got);
	cluster__http_destroy(h);
	fakehttp_stop(f);
	free(raw);
	free(ep);

	/* the callback stops the stream: success, nothing more delivered */
	raw = chunked("a\nb\nc\n", 2, 0);
	script[0].raw = raw;
	script[0].hang_ms = -1;
	f = fakehttp_start(script, 1);
	ep = strdup(fakehttp_url(f));
	h = make_http(&ep, 1, 2000);
	got.stop_after = 2;
	assert_int_equal(cluster__http_stream(h, "/v3/watch", "{}", collect, &got, 0, &status), 0);
	assert_int_equal(got.n, 2);
	lines_free(&got);
	cluster__http_destroy(h);
	fakehttp_stop(f);
	free(raw);
	free(ep);
}

/* ---- duplex streams over plain HTTP (framed by the seam itself) ---------- */

typedef struct duplex_ctx duplex_ctx;
struct duplex_ctx
{
	cluster__http *h;
	fakehttp *f;
	lines got;
	int step; /* 0: wait for 2 lines; 1: second message sent; 2: ended */
	int send_after_end;
	int end_at_once; /* end the body at the first tick, then await the answer's end */
};

static int
duplex_line(void *ctx, const char *line, size_t len)
{
	duplex_ctx *d = ctx;

	return collect(&d->got, line, len);
}

/* Once two lines are in: a second message, then the end of the body, and
 * stop when the server has seen both on the wire, framed as chunks. */
static int64_t
duplex_tick(void *ctx)
{
	duplex_ctx *d = ctx;

	if(d->end_at_once && d->step == 0)
	{
		cluster__http_stream_end(d->h);
		d->step = 3;
	}
	else if(d->step == 0 && d->got.n >= 2)
	{
		assert_int_equal(cluster__http_stream_send(d->h, "{\"ID\":2}\n"), 0);
		d->step = 1;
	}
	else if(d->step == 1 && fakehttp_seen(d->f, "9\r\n{\"ID\":2}\n\r\n"))
	{
		cluster__http_stream_end(d->h);
		d->send_after_end = cluster__http_stream_send(d->h, "late\n");
		d->step = 2;
	}
	else if(d->step == 2 && fakehttp_seen(d->f, "{\"ID\":2}\n\r\n0\r\n\r\n"))
	{
		return CLUSTER__HTTP_STOP;
	}
	return 10;
}

static int
run_duplex(cluster__http *h, duplex_ctx *d, int idle_ms, long *status)
{
	cluster__http_stream_opts o;

	memset(&o, 0, sizeof(o));
	o.on_line = duplex_line;
	o.on_tick = duplex_tick;
	o.ctx = d;
	o.duplex = 1;
	o.idle_timeout_ms = idle_ms;
	o.total_timeout_ms = tu_scaled_ms(10000);
	return cluster__http_stream_run(h, "/v3/lease/keepalive", "{\"ID\":1}\n", &o, status);
}

/* A fake server with the script, a handle on it, a fresh context. */
static cluster__http *
duplex_setup(const fakehttp_reply *script, size_t n, fakehttp **f, char **ep, duplex_ctx *d)
{
	*f = fakehttp_start(script, n);
	assert_non_null(*f);
	*ep = strdup(fakehttp_url(*f));
	memset(d, 0, sizeof(*d));
	d->h = make_http(ep, 1, 2000);
	d->f = *f;
	return d->h;
}

static void
duplex_teardown(cluster__http *h, fakehttp *f, char *ep, duplex_ctx *d)
{
	lines_free(&d->got);
	cluster__http_destroy(h);
	fakehttp_stop(f);
	free(ep);
}

/* A POST on h that must be answered 200 (the fake server's ok_reply). */
static void
post_answered(cluster__http *h, const char *path)
{
	cluster__http_response resp;

	assert_int_equal(cluster__http_request(h, "POST", path, NULL, "{}", &resp), 0);
	assert_int_equal(resp.status, 200);
	cluster__http_response_free(&resp);
}

/* A duplex stream over http:// is written and read by the seam (not
 * libcurl's paused upload): the head libcurl would send, each message one
 * chunk, the last chunk on end, an answer in slices after "100 Continue";
 * and each way it can end, named. */
static void
test_duplex_plain(void **state)
{
	char *raw = chunked("{\"result\":1}\n{\"result\":2}\n", 5, 0), *ep, req[2048], host[64];
	fakehttp_reply script[] = { { raw, 0, 7, 1, 0, 0 } };
	fakehttp *f;
	cluster__http *h;
	duplex_ctx d;
	long status = 0;
	int64_t t0;
	canceller c;
	pthread_t t;

	(void) state;
	h = duplex_setup(script, 1, &f, &ep, &d);
	assert_int_equal(run_duplex(h, &d, 0, &status), 0);
	assert_int_equal(status, 200);
	assert_int_equal(d.got.n, 2);
	assert_string_equal(d.got.v[0], "{\"result\":1}");
	assert_string_equal(d.got.v[1], "{\"result\":2}");
	assert_int_equal(d.step, 2);
	assert_int_equal(d.send_after_end, EINVAL);
	fakehttp_last_request(f, req, sizeof(req));
	snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", fakehttp_port(f));
	assert_non_null(strstr(req, "POST /v3/lease/keepalive HTTP/1.1\r\n"));
	assert_non_null(strstr(req, host));
	assert_non_null(strstr(req, "\r\nTransfer-Encoding: chunked\r\n"));
	assert_non_null(strstr(req, "\r\nExpect: 100-continue\r\n"));
	assert_non_null(strstr(req, "\r\nGrpc-Metadata-Hasleader: true\r\n"));
	assert_non_null(strstr(req, "\r\n\r\n{\"ID\":1}\n"));
	assert_false(fakehttp_seen(f, "late"));
	duplex_teardown(h, f, ep, &d);
	free(raw);

	/* the server ends its answer: the stream ends, no error */
	raw = chunked("{\"result\":1}\n", 4, 1);
	script[0].raw = raw;
	h = duplex_setup(script, 1, &f, &ep, &d);
	assert_int_equal(run_duplex(h, &d, 0, &status), 0);
	assert_int_equal(d.got.n, 1);
	duplex_teardown(h, f, ep, &d);
	free(raw);

	/* the server closes the connection in the middle of its answer */
	raw = chunked("{\"result\":1}\n", 4, 0);
	script[0].raw = raw;
	script[0].close = 1;
	h = duplex_setup(script, 1, &f, &ep, &d);
	assert_int_equal(run_duplex(h, &d, 0, &status), EIO);
	assert_non_null(strstr(cluster__http_error(h, EIO), "closed the connection before the end of its answer"));
	assert_int_equal(d.got.n, 1);
	duplex_teardown(h, f, ep, &d);
	free(raw);

	/* a request before the stream leaves its connection to the stream
	 * (as libcurl would reuse it); a stream that ends unclean (here the
	 * idle limit, the server still reading) leaves no connection behind
	 * for libcurl to reuse: the next request makes a new one and is
	 * answered (on the old one the server would not answer it) */
	script[0].close = 0;
	script[0].raw = ok_reply;
	{
		fakehttp_reply two[] = { { ok_reply, 0, 0, 0, 0, 0 }, { NULL, 0, 0, 0, 0, 0 }, { ok_reply, 0, 0, 0, 0, 0 } };

		raw = chunked("{\"result\":1}\n", 4, 0);
		two[1].raw = raw;
		h = duplex_setup(two, 3, &f, &ep, &d);
		post_answered(h, "/v3/lease/grant");
		assert_int_equal(run_duplex(h, &d, 300, &status), ETIMEDOUT);
		assert_int_equal(d.got.n, 1);
		assert_int_equal(fakehttp_accepted(f), 1);
		assert_int_equal(fakehttp_requests(f), 2);
		post_answered(h, "/v3/lease/revoke");
		assert_int_equal(fakehttp_accepted(f), 2);
		duplex_teardown(h, f, ep, &d);
		free(raw);
	}

	/* an exchange that ends cleanly on both sides, but whose answer says
	 * "Connection: close" (etcd's gateway after every duplex exchange):
	 * libcurl must not reuse the connection for the next request, though
	 * this server would still answer on it */
	{
		const char *close_reply = "HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
								  "d\r\n{\"result\":1}\n\r\n0\r\n\r\n";
		fakehttp_reply two[] = { { ok_reply, 0, 0, 0, 0, 0 }, { close_reply, 0, 16, 0, 0, 0 }, { ok_reply, 0, 0, 0, 0, 0 } };

		/* the answer comes in slices, so the body has ended before it does */
		two[1].slice_pause_ms = tu_scaled_ms(100);
		h = duplex_setup(two, 3, &f, &ep, &d);
		d.end_at_once = 1;
		post_answered(h, "/v3/lease/grant");
		assert_int_equal(run_duplex(h, &d, 0, &status), 0);
		assert_int_equal(status, 200);
		assert_int_equal(d.got.n, 1);
		assert_int_equal(d.step, 3);
		assert_int_equal(fakehttp_accepted(f), 1);
		post_answered(h, "/v3/lease/revoke");
		assert_int_equal(fakehttp_accepted(f), 2);
		duplex_teardown(h, f, ep, &d);
	}

	/* not HTTP at all */
	script[0].raw = "SSH-2.0-OpenSSH_9.2\r\n";
	h = duplex_setup(script, 1, &f, &ep, &d);
	assert_int_equal(run_duplex(h, &d, 0, &status), EIO);
	assert_non_null(strstr(cluster__http_error(h, EIO), "not an HTTP answer: not an HTTP/1.x status line"));
	assert_int_equal(d.got.n, 0);
	duplex_teardown(h, f, ep, &d);

	/* silence after the head: the idle limit, then an interrupt */
	raw = chunked("", 4, 0);
	script[0].raw = raw;
	script[0].close = 0;
	script[0].hang_ms = -1;
	h = duplex_setup(script, 1, &f, &ep, &d);
	t0 = now_ms();
	assert_int_equal(run_duplex(h, &d, 300, &status), ETIMEDOUT);
	assert_true(now_ms() - t0 >= 250 && now_ms() - t0 < tu_scaled_ms(2000));
	c.h = h;
	c.delay_ms = 100;
	c.interrupt = 1;
	t0 = now_ms();
	assert_int_equal(pthread_create(&t, NULL, cancel_main, &c), 0);
	assert_int_equal(run_duplex(h, &d, 0, &status), ECANCELED);
	assert_true(now_ms() - t0 < tu_scaled_ms(600));
	pthread_join(t, NULL);
	duplex_teardown(h, f, ep, &d);
	free(raw);
}

static void
test_stream_timeouts_and_limits(void **state)
{
	char *raw;
	fakehttp_reply script[] = { { NULL, 0, 0, 0, -1, 0 } };
	fakehttp *f;
	cluster__http *h;
	char *ep;
	lines got;
	long status;
	int64_t t0;

	(void) state;
	memset(&got, 0, sizeof(got));
	/* headers, one line, then silence: idle timeout */
	raw = chunked("{\"created\":true}\n", 100, 0);
	script[0].raw = raw;
	f = fakehttp_start(script, 1);
	ep = strdup(fakehttp_url(f));
	h = make_http(&ep, 1, 2000);
	t0 = now_ms();
	assert_int_equal(cluster__http_stream_ex(h, "/v3/watch", "{}", collect, &got, 300, 0, 0, &status), ETIMEDOUT);
	assert_true(now_ms() - t0 >= 250 && now_ms() - t0 < tu_scaled_ms(2000));
	assert_int_equal(got.n, 1);
	lines_free(&got);
	cluster__http_destroy(h);
	fakehttp_stop(f);
	free(raw);
	free(ep);
	/* no complete first line in time */
	raw = chunked("{\"created\":", 100, 0);
	script[0].raw = raw;
	f = fakehttp_start(script, 1);
	ep = strdup(fakehttp_url(f));
	h = make_http(&ep, 1, 2000);
	t0 = now_ms();
	assert_int_equal(cluster__http_stream_ex(h, "/v3/watch", "{}", collect, &got, 0, 300, 0, &status), ETIMEDOUT);
	assert_true(now_ms() - t0 < tu_scaled_ms(2000));
	assert_int_equal(got.n, 0);
	/* the total limit */
	t0 = now_ms();
	assert_int_equal(cluster__http_stream_ex(h, "/v3/watch", "{}", collect, &got, 0, 0, 300, &status), ETIMEDOUT);
	assert_true(now_ms() - t0 < tu_scaled_ms(2000));
	cluster__http_destroy(h);
	fakehttp_stop(f);
	free(raw);
	free(ep);

	/* a line that never ends: bounded, EIO */
	{
		size_t n = CLUSTER__HTTP_MAX_BODY + 4096;
		char *payload = malloc(n + 1);

		memset(payload, 'x', n);
		payload[n] = 0;
		raw = chunked(payload, 65536, 1);
		free(payload);
	}
	script[0].raw = raw;
	script[0].hang_ms = 0;
	script[0].close = 1;
	f = fakehttp_start(script, 1);
	ep = strdup(fakehttp_url(f));
	h = make_http(&ep, 1, 2000);
	assert_int_equal(cluster__http_stream(h, "/v3/watch", "{}", collect, &got, tu_scaled_ms(5000), &status), EIO);
	assert_int_equal(got.n, 0);
	cluster__http_destroy(h);
	fakehttp_stop(f);
	free(raw);
	free(ep);

	/* connection reset mid-stream (etcd killed): an error, lines so far delivered */
	raw = chunked("{\"a\":1}\n{\"b\":", 100, 0);
	script[0].raw = raw;
	f = fakehttp_start(script, 1);
	ep = strdup(fakehttp_url(f));
	h = make_http(&ep, 1, 2000);
	assert_int_equal(cluster__http_stream(h, "/v3/watch", "{}", collect, &got, tu_scaled_ms(5000), &status), EIO);
	assert_int_equal(got.n, 1);
	lines_free(&got);
	cluster__http_destroy(h);
	fakehttp_stop(f);
	free(raw);
	free(ep);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_linesplit_random),
		cmocka_unit_test(test_linesplit_limits),
		cmocka_unit_test(test_request_ok_and_headers),
		cmocka_unit_test(test_request_failover),
		cmocka_unit_test(test_request_hostile),
		cmocka_unit_test(test_request_timeout),
		cmocka_unit_test(test_cancel_and_interrupt),
		cmocka_unit_test(test_stream_lines),
		cmocka_unit_test(test_stream_timeouts_and_limits),
		cmocka_unit_test(test_duplex_plain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
