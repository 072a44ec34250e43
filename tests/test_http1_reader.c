/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP/1.1 response reader (libcluster/http1-reader.c), pure: every
 * answer read whole, split in two at every byte, and a byte at a time
 * must give the same status, body and end; malformed and hostile answers
 * fail with EPROTO and a reason that names the problem; a connection cut
 * short is told from a body that runs to its end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http1-reader.h"

typedef struct sink
{
	char body[70000];
	size_t len;
	int stop_at; /* return 7 once the body reaches this length (0: never) */
} sink;

static int
to_sink(void *ud, const char *data, size_t len)
{
	sink *s = ud;

	assert_true(len > 0);
	assert_true(s->len + len < sizeof(s->body));
	memcpy(s->body + s->len, data, len);
	s->len += len;
	return s->stop_at && (int) s->len >= s->stop_at ? 7 : 0;
}

/* Feed in at most three slices split at a and b; returns the first
 * non-zero result of a feed. */
static int
feed3(cluster__h1 *p, sink *s, const char *in, size_t len, size_t a, size_t b)
{
	size_t cut[4] = { 0, a, b, len };
	int i, r;

	for(i = 0; i < 3; i++)
	{
		if(cut[i + 1] > cut[i] && (r = cluster__h1_feed(p, in + cut[i], cut[i + 1] - cut[i], to_sink, s)))
		{
			return r;
		}
	}
	return 0;
}

typedef struct good
{
	const char *in;
	int status;
	const char *body;
	int done_before_eof; /* complete without the end of the connection */
	int close;
} good;

static const good goods[] = {
	/* etcd's gateway: "100 Continue", then a chunked stream */
	{ "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "5\r\nhello\r\n7;ext=1\r\n world\n\r\n0\r\nTrailer: x\r\n\r\n",
		200, "hello world\n", 1, 0 },
	{ "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: keep-alive, close\r\n\r\nnot found", 404, "not found", 1, 1 },
	{ "HTTP/1.0 200 OK\r\n\r\nabc", 200, "abc", 0, 0 },
	{ "HTTP/1.1 204 No Content\r\n\r\n", 204, "", 1, 0 },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, "", 1, 0 },
	{ "HTTP/1.1 200 OK\r\ncontent-length:  3 \r\nCONTENT-LENGTH: 3\r\n\r\nxyz", 200, "xyz", 1, 0 },
	/* bare LF line ends, empty lines before the status line */
	{ "\r\n\nHTTP/1.1 200 OK\nTransfer-Encoding: gzip, chunked\n\n3\nabc\n0\n\n", 200, "abc", 1, 0 },
	/* upper-case hex, a long header ignored, a folded line ignored */
	{ "HTTP/1.1 500 Internal Server Error\r\nX-Long: "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
	  " folded: Content-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n",
		500, "0123456789", 1, 0 },
	/* a body split across many chunks, then bytes after the end */
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n2\r\ncd\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n", 200, "abcd", 1, 0 },
};

/* Every good answer, read at every split into three slices (which
 * includes whole, and every split in two): same status, body, end. */
static void
test_good_every_split(void **state)
{
	size_t g;

	(void) state;
	for(g = 0; g < sizeof(goods) / sizeof(goods[0]); g++)
	{
		size_t len = strlen(goods[g].in), a, b;

		for(a = 0; a <= len; a++)
		{
			for(b = a; b <= len; b += (len > 200 ? 7 : 1))
			{
				static cluster__h1 p;
				static sink s;

				cluster__h1_init(&p);
				memset(&s, 0, sizeof(s));
				assert_int_equal(feed3(&p, &s, goods[g].in, len, a, b), 0);
				assert_int_equal(cluster__h1_head_done(&p), 1);
				assert_int_equal(cluster__h1_done(&p), goods[g].done_before_eof);
				assert_int_equal(cluster__h1_eof(&p), 0);
				assert_int_equal(cluster__h1_done(&p), 1);
				assert_int_equal(p.status, goods[g].status);
				assert_int_equal(p.close, goods[g].close);
				assert_int_equal(s.len, strlen(goods[g].body));
				assert_memory_equal(s.body, goods[g].body, s.len);
			}
		}
	}
}

/* A byte at a time, the same. */
static void
test_good_bytewise(void **state)
{
	size_t g, i;

	(void) state;
	for(g = 0; g < sizeof(goods) / sizeof(goods[0]); g++)
	{
		static cluster__h1 p;
		static sink s;

		cluster__h1_init(&p);
		memset(&s, 0, sizeof(s));
		for(i = 0; goods[g].in[i]; i++)
		{
			assert_int_equal(cluster__h1_feed(&p, goods[g].in + i, 1, to_sink, &s), 0);
		}
		assert_int_equal(cluster__h1_eof(&p), 0);
		assert_int_equal(p.status, goods[g].status);
		assert_int_equal(s.len, strlen(goods[g].body));
		assert_memory_equal(s.body, goods[g].body, s.len);
	}
}

typedef struct bad
{
	const char *in;
	const char *why; /* a word of p->error */
} bad;

static const bad bads[] = {
	{ "SSH-2.0-OpenSSH_9.2\r\n", "status line" },
	{ "HTTP/2 200\r\n\r\n", "status line" },
	{ "HTTP/1.1 2x0 OK\r\n\r\n", "status line" },
	{ "HTTP/1.1 200OK\r\n\r\n", "status line" },
	{ "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "colon" },
	{ "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", "not a number" },
	{ "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", "not a number" },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 12 34\r\n\r\n", "not a number" },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "too large" },
	{ "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "two different" },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "hexadecimal" },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "hexadecimal" },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", "hexadecimal" },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n", "too large" },
	{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", "longer than its size" },
};

static void
test_bad(void **state)
{
	size_t i, k;

	(void) state;
	for(i = 0; i < sizeof(bads) / sizeof(bads[0]); i++)
	{
		size_t len = strlen(bads[i].in);

		/* whole and at every split in two: the same failure */
		for(k = 0; k <= len; k++)
		{
			cluster__h1 p;
			sink s;

			cluster__h1_init(&p);
			memset(&s, 0, sizeof(s));
			assert_int_equal(feed3(&p, &s, bads[i].in, len, k, k), EPROTO);
			assert_non_null(p.error);
			if(!strstr(p.error, bads[i].why))
			{
				fail_msg("%s: \"%s\" does not say \"%s\"", bads[i].in, p.error, bads[i].why);
			}
			/* and it stays failed */
			assert_int_equal(cluster__h1_feed(&p, "x", 1, to_sink, &s), EPROTO);
			assert_int_equal(cluster__h1_done(&p), 0);
		}
	}
}

/* A server cannot make the reader wait for ever on a head or a chunk
 * size that never ends, nor on interim answers without end. */
static void
test_hostile_limits(void **state)
{
	static char buf[200000];
	cluster__h1 p;
	sink s;
	size_t n, i;

	(void) state;
	/* 72 000 bytes of headers */
	n = (size_t) sprintf(buf, "HTTP/1.1 200 OK\r\n");
	for(i = 0; i < 4000; i++)
	{
		n += (size_t) sprintf(buf + n, "X-Header-%04zu: 0\r\n", i);
	}
	cluster__h1_init(&p);
	memset(&s, 0, sizeof(s));
	assert_int_equal(cluster__h1_feed(&p, buf, n, to_sink, &s), EPROTO);
	assert_non_null(strstr(p.error, "64 KiB"));

	/* one header line of 100 000 bytes, in slices */
	cluster__h1_init(&p);
	assert_int_equal(cluster__h1_feed(&p, "HTTP/1.1 200 OK\r\nX: ", 20, to_sink, &s), 0);
	memset(buf, 'y', 1000);
	for(i = 0, n = 0; i < 100 && !n; i++)
	{
		n = (size_t) cluster__h1_feed(&p, buf, 1000, to_sink, &s);
	}
	assert_int_equal(n, EPROTO);
	assert_non_null(strstr(p.error, "64 KiB"));

	/* "100 Continue" for ever */
	cluster__h1_init(&p);
	for(i = 0, n = 0; i < 10000 && !n; i++)
	{
		n = (size_t) cluster__h1_feed(&p, "HTTP/1.1 100 Continue\r\n\r\n", 25, to_sink, &s);
	}
	assert_int_equal(n, EPROTO);
	assert_true(i < 10000);

	/* a chunk size with endless extensions */
	cluster__h1_init(&p);
	n = (size_t) sprintf(buf, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;");
	memset(buf + n, 'e', 5000);
	assert_int_equal(cluster__h1_feed(&p, buf, n + 5000, to_sink, &s), EPROTO);
	assert_non_null(strstr(p.error, "4 KiB"));

	/* but a stream of many small chunks is no head: it may run for ever */
	cluster__h1_init(&p);
	memset(&s, 0, sizeof(s));
	n = (size_t) sprintf(buf, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	assert_int_equal(cluster__h1_feed(&p, buf, n, to_sink, &s), 0);
	for(i = 0; i < 20000; i++)
	{
		assert_int_equal(cluster__h1_feed(&p, "3;x=1\r\nab\n\r\n", 12, to_sink, &s), 0);
		if(s.len > 60000)
		{
			s.len = 0;
		}
	}
	assert_int_equal(cluster__h1_done(&p), 0);
}

/* Where the connection ends: complete, or cut (EPIPE, named). */
static void
test_eof(void **state)
{
	static const struct
	{
		const char *in;
		const char *why; /* NULL: complete */
	} cases[] = {
		{ "", "without answering" },
		{ "HTTP/1.1 2", "status line" },
		{ "HTTP/1.1 200 OK\r\nContent-", "headers" },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", "before the end" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "before the end" },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", "before the end" },
		{ "HTTP/1.1 200 OK\r\n\r\nto the end", NULL },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", NULL },
	};
	size_t i;

	(void) state;
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		cluster__h1 p;
		sink s;

		cluster__h1_init(&p);
		memset(&s, 0, sizeof(s));
		assert_int_equal(cluster__h1_feed(&p, cases[i].in, strlen(cases[i].in), to_sink, &s), 0);
		if(cases[i].why)
		{
			assert_int_equal(cluster__h1_eof(&p), EPIPE);
			if(!strstr(p.error, cases[i].why))
			{
				fail_msg("%s: \"%s\" does not say \"%s\"", cases[i].in, p.error, cases[i].why);
			}
		}
		else
		{
			assert_int_equal(cluster__h1_eof(&p), 0);
			assert_int_equal(cluster__h1_done(&p), 1);
		}
	}
}

/* The body callback can stop the reader; its value comes back. */
static void
test_callback_stops(void **state)
{
	static const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
	cluster__h1 p;
	sink s;

	(void) state;
	cluster__h1_init(&p);
	memset(&s, 0, sizeof(s));
	s.stop_at = 1;
	assert_int_equal(cluster__h1_feed(&p, in, sizeof(in) - 1, to_sink, &s), 7);
	assert_int_equal(s.len, 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_every_split),
		cmocka_unit_test(test_good_bytewise),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_hostile_limits),
		cmocka_unit_test(test_eof),
		cmocka_unit_test(test_callback_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
