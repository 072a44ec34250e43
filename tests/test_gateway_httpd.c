/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway/httpd.c, the HTTP/1.1 server, over a real loopback
 * socket with a stub in place of the endpoints: pipelined requests split
 * at every byte boundary are each answered once, in order; HEAD, HTTP/1.0,
 * chunked bodies, Expect: 100-continue; the size limits and malformed
 * requests are refused and closed; a client that pipelines without
 * reading is answered completely, in order, once it reads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "gateway.h"

/* answers of this size for GET /big */
#define BIG (100 * 1024)

static struct gw gw;
static struct gw_options opts;
static char big[BIG];

/* The endpoints' stand-in: "METHOD PATH QUERY BODY" back, or a large
 * body for /big. */
void
gw_http_handle(struct gw *g, struct gw_http_request *req)
{
	char text[2048];
	int n;

	(void) g;
	if(req->path && !strcmp(req->path, "/big"))
	{
		gw_http_respond(req, 200, "text/plain", big, sizeof(big));
		return;
	}
	if(req->path && !strcmp(req->path, "/redirect"))
	{
		req->location = "http://127.0.0.1:1/";
		gw_http_respond(req, 307, NULL, "", 0);
		return;
	}
	n = snprintf(text, sizeof(text), "%s %s %s %.*s", req->method_name, req->path ? req->path : "(none)", req->query ? req->query : "(none)",
		(int) req->body_len, req->body);
	gw_http_respond(req, 200, "text/plain", text, (size_t) n);
}

static int
setup(void **state)
{
	(void) state;
	memset(&gw, 0, sizeof(gw));
	memset(&opts, 0, sizeof(opts));
	memset(big, 'b', sizeof(big));
	snprintf(opts.http_host, sizeof(opts.http_host), "127.0.0.1");
	opts.http_port = 0;
	gw.opts = &opts;
	gw.base = event_base_new();
	assert_non_null(gw.base);
	assert_int_equal(gw_http_start(&gw), 0);
	return 0;
}

static int
teardown(void **state)
{
	(void) state;
	gw_http_free(&gw);
	event_base_free(gw.base);
	return 0;
}

static int
dial(void)
{
	char bound[300];
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	const char *colon;

	assert_true(fd >= 0);
	assert_int_equal(gw_http_bound(&gw, bound, sizeof(bound)), 0);
	colon = strrchr(bound, ':');
	assert_non_null(colon);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short) atoi(colon + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	/* let the server accept it */
	event_base_loop(gw.base, EVLOOP_NONBLOCK);
	return fd;
}

static void
send_all(int fd, const char *data, size_t len)
{
	while(len)
	{
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if(n < 0 && errno == EAGAIN)
		{
			event_base_loop(gw.base, EVLOOP_NONBLOCK);
			continue;
		}
		assert_true(n > 0);
		data += n;
		len -= (size_t) n;
	}
	event_base_loop(gw.base, EVLOOP_NONBLOCK);
}

static void
send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

/* Run the server and read until want bytes came, or end of stream, or
 * 5 s. Returns the bytes read into out (NUL-terminated); *eof set when
 * the server closed. */
static size_t
receive(int fd, char *out, size_t size, size_t want, int *eof)
{
	size_t got = 0;
	time_t deadline = time(NULL) + 5;

	*eof = 0;
	while(got < want && got < size - 1 && time(NULL) < deadline)
	{
		ssize_t n;

		event_base_loop(gw.base, EVLOOP_NONBLOCK);
		n = recv(fd, out + got, size - 1 - got, 0);
		if(n == 0)
		{
			*eof = 1;
			break;
		}
		if(n > 0)
		{
			got += (size_t) n;
		}
		else
		{
			usleep(100);
		}
	}
	out[got] = '\0';
	return got;
}

/* The answer's body for each response in text, in order, joined with
 * "|"; the status codes the same way into codes. */
static void
split_answers(const char *text, char *bodies, char *codes)
{
	const char *p = text;

	bodies[0] = codes[0] = '\0';
	while(*p)
	{
		const char *end = strstr(p, "\r\n\r\n"), *cl;
		long len;

		assert_non_null(end);
		assert_memory_equal(p, "HTTP/1.1 ", 9);
		strncat(codes, p + 9, 3);
		strcat(codes, "|");
		if(!strncmp(p + 9, "100", 3))
		{
			p = end + 4;
			continue;
		}
		cl = strstr(p, "Content-Length: ");
		assert_true(cl && cl < end);
		len = atol(cl + 16);
		if(!strncmp(end + 4, "HTTP/1.1 ", 9))
		{
			/* an answer to HEAD: the length, no body */
			len = 0;
		}
		strncat(bodies, end + 4, (size_t) len);
		strcat(bodies, "|");
		p = end + 4 + len;
	}
}

static const char pipelined[] = "GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
								"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
								"HEAD /c HTTP/1.1\r\nHost: h\r\n\r\n"
								"POST /d HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
								"GET http://example.com/e?y HTTP/1.1\r\nHost: h\r\n\r\n";
static const char pipelined_bodies[] = "GET /a x=1 |POST /b (none) hello||POST /d (none) abcde|GET /e y |";

/* Every split of five pipelined requests into two writes gives the same
 * five answers in order (HEAD's without its body). */
static void
test_pipelined_every_split(void **state)
{
	char got[8192], bodies[4096], codes[64];
	size_t i, len = sizeof(pipelined) - 1, n;
	int eof;

	(void) state;
	for(i = 1; i < len; i++)
	{
		int fd = dial();

		send_all(fd, pipelined, i);
		send_all(fd, pipelined + i, len - i);
		/* five answers: read until the fifth body is in */
		n = 0;
		for(;;)
		{
			n += receive(fd, got + n, sizeof(got) - n, 1, &eof);
			if(eof || strstr(got, "GET /e y") || n == 0)
			{
				break;
			}
		}
		split_answers(got, bodies, codes);
		if(strcmp(bodies, pipelined_bodies) || strcmp(codes, "200|200|200|200|200|"))
		{
			fail_msg("split at %zu: bodies '%s' codes '%s'", i, bodies, codes);
		}
		/* HEAD's answer has the GET length but no body */
		assert_non_null(strstr(got, "Content-Length: 15\r\n"));
		assert_false(eof);
		close(fd);
	}
}

static void
test_http10_closes(void **state)
{
	char got[4096];
	int fd = dial(), eof;

	(void) state;
	send_str(fd, "GET /x HTTP/1.0\r\n\r\n");
	receive(fd, got, sizeof(got), sizeof(got), &eof);
	assert_true(eof);
	assert_non_null(strstr(got, "Connection: close\r\n"));
	assert_non_null(strstr(got, "GET /x (none) "));
	close(fd);
	/* with keep-alive asked for, the connection stays for the next */
	fd = dial();
	send_str(fd, "GET /y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	receive(fd, got, sizeof(got), 1, &eof);
	assert_false(eof);
	assert_non_null(strstr(got, "Connection: keep-alive\r\n"));
	assert_non_null(strstr(got, "GET /y (none) "));
	send_str(fd, "GET /z HTTP/1.0\r\n\r\n");
	receive(fd, got, sizeof(got), sizeof(got), &eof);
	assert_true(eof);
	assert_non_null(strstr(got, "GET /z (none) "));
	close(fd);
}

static void
test_expect_continue(void **state)
{
	char got[4096], bodies[256], codes[64];
	int fd = dial(), eof;
	size_t n;

	(void) state;
	send_str(fd, "POST /p HTTP/1.1\r\nHost: h\r\nexpect: 100-Continue\r\nContent-Length: 3\r\n\r\n");
	n = receive(fd, got, sizeof(got), 25, &eof);
	assert_int_equal(n, 25);
	assert_string_equal(got, "HTTP/1.1 100 Continue\r\n\r\n");
	send_all(fd, "xyz", 3);
	receive(fd, got + n, sizeof(got) - n, 1, &eof);
	split_answers(got, bodies, codes);
	assert_string_equal(codes, "100|200|");
	assert_string_equal(bodies, "POST /p (none) xyz|");
	close(fd);
}

/* A refusal is one answer with a JSON error, then the server closes.
 * (len 0: strlen(request)) */
static void
refused(const char *request, size_t len, const char *code, const char *words)
{
	char got[4096];
	int fd = dial(), eof;

	send_all(fd, request, len ? len : strlen(request));
	receive(fd, got, sizeof(got), sizeof(got), &eof);
	if(!eof || strncmp(got, "HTTP/1.1 ", 9) || strncmp(got + 9, code, 3) || !strstr(got, words) || !strstr(got, "{\"error\":"))
	{
		fail_msg("expected %s naming '%s' and a close, got%s '%.300s'", code, words, eof ? "" : " (no close)", got);
	}
	close(fd);
}

static void
test_refusals(void **state)
{
	static char headers[12000];
	char body[2100];
	int n;

	(void) state;
	n = snprintf(headers, sizeof(headers), "GET / HTTP/1.1\r\nX-Big: ");
	memset(headers + n, 'a', 9000);
	memcpy(headers + n + 9000, "\r\n\r\n", 4);
	refused(headers, (size_t) n + 9004, "431", "larger than 8192");
	refused("POST /p HTTP/1.1\r\nContent-Length: 2000\r\n\r\n", 0, "413", "larger than 1024");
	/* a chunked body over the limit */
	n = snprintf(body, sizeof(body), "POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n600\r\n");
	memset(body + n, 'z', 0x600);
	refused(body, (size_t) n + 0x600, "413", "larger than 1024");
	refused("BREW /pot HTTP/1.1\r\n\r\n", 0, "400", "malformed request");
	refused("GET /a\001b HTTP/1.1\r\n\r\n", 0, "400", "not allowed in a URL");
	refused("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 0, "400", "malformed request");
}

/* 200 requests for a 100 KiB answer, sent before reading any: all 200
 * come back whole and in order once the client reads. */
static void
test_unread_answers(void **state)
{
	static char request[] = "GET /big HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t total = 0, want = 0, size = 200 * (BIG + 512), i;
	int fd = dial(), eof = 0;
	char *got = malloc(size);
	time_t deadline = time(NULL) + 30;

	(void) state;
	assert_non_null(got);
	for(i = 0; i < 200; i++)
	{
		send_all(fd, request, sizeof(request) - 1);
	}
	while(!eof && time(NULL) < deadline && (!want || total < want))
	{
		total += receive(fd, got + total, size - total, 1, &eof);
		if(!want && total > 200)
		{
			/* every answer has the same header length (the Date too) */
			got[total] = '\0';
			want = 200 * ((size_t) (strstr(got, "\r\n\r\n") + 4 - got) + BIG);
		}
	}
	assert_false(eof);
	assert_int_equal(total, want);
	for(i = 0; i < 200; i++)
	{
		assert_memory_equal(got + i * (want / 200), "HTTP/1.1 200 OK\r\n", 17);
	}
	free(got);
	close(fd);
}

static void
test_redirect_headers(void **state)
{
	char got[4096];
	int fd = dial(), eof;

	(void) state;
	send_str(fd, "GET /redirect HTTP/1.1\r\nHost: h\r\n\r\n");
	receive(fd, got, sizeof(got), 1, &eof);
	assert_memory_equal(got, "HTTP/1.1 307 Temporary Redirect\r\n", 33);
	assert_non_null(strstr(got, "\r\nLocation: http://127.0.0.1:1/\r\n"));
	assert_non_null(strstr(got, "\r\nContent-Length: 0\r\n"));
	assert_non_null(strstr(got, "\r\nDate: "));
	assert_null(strstr(got, "Content-Type"));
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pipelined_every_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http10_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unread_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redirect_headers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
