/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway's HTTP server (cluster-gateway/httpd.c) fed hostile
 * clients: each input is one connection (one end of a socketpair handed
 * to gw_http_adopt()). Its first byte sets how the rest is cut into
 * writes; the server's loop runs between writes, then the client closes
 * its side and reads everything. A stand-in for the endpoints checks what
 * the server promises each request (a NUL-terminated target within the
 * header limit, a body within the body limit, path and query inside the
 * target) and answers with a small body or, for /big, 200 kB, so that
 * answers pile up when the client pipelines. Every answer must start with
 * a status line; nothing may crash, leak (the connection is closed or
 * freed at the end of each input) or hang.
 */
#include "fuzz.h"

#include "gateway.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BIG (200 * 1024)

static struct gw gw;
static struct gw_options opts;
static char big[BIG];

void
gw_http_handle(struct gw *g, struct gw_http_request *req)
{
	char text[64];
	size_t tlen;

	(void) g;
	FUZZ_CHECK(req->target && req->method_name);
	tlen = strlen(req->target);
	FUZZ_CHECK(tlen <= 8192);
	FUZZ_CHECK(req->body_len <= 1024);
	if(req->path)
	{
		FUZZ_CHECK(strlen(req->path) <= tlen);
		FUZZ_CHECK(!req->query || strlen(req->query) <= tlen);
		if(!strcmp(req->path, "/big"))
		{
			gw_http_respond(req, 200, "text/plain", big, sizeof(big));
			return;
		}
	}
	if(req->method == GW_HTTP_POST)
	{
		req->location = "http://127.0.0.1:1/";
	}
	snprintf(text, sizeof(text), "%zu %zu", tlen, req->body_len);
	gw_http_respond(req, req->path ? 200 : 400, "text/plain", text, strlen(text));
}

static void
setup(void)
{
	opts.http_port = 0;
	gw.opts = &opts;
	gw.base = event_base_new();
	FUZZ_CHECK(gw.base && gw_http_init(&gw) == 0);
	memset(big, 'b', sizeof(big));
}

/* Read what the server sent; -1 at end of stream. */
static ssize_t
drain(int fd, char *first, size_t *have)
{
	char buf[65536];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

	if(n > 0 && *have < 9)
	{
		size_t take = (size_t) n < 9 - *have ? (size_t) n : 9 - *have;

		memcpy(first + *have, buf, take);
		*have += take;
	}
	return n == 0 ? -1 : n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2], i;
	size_t off = 1, chunk, have = 0;
	char first[9];

	if(!gw.base)
	{
		setup();
	}
	if(size < 1 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
	{
		return 0;
	}
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	FUZZ_CHECK(gw_http_adopt(&gw, sv[0]) == 0);
	/* 0: all at once; else pieces of 1..data[0] bytes */
	chunk = data[0] ? data[0] : size;
	while(off < size)
	{
		size_t n = size - off < chunk ? size - off : chunk;
		ssize_t w = send(sv[1], data + off, n, MSG_NOSIGNAL);

		if(w < 0 && errno != EAGAIN)
		{
			break;
		}
		off += w > 0 ? (size_t) w : 0;
		event_base_loop(gw.base, EVLOOP_NONBLOCK);
		drain(sv[1], first, &have);
	}
	shutdown(sv[1], SHUT_WR);
	/* the server answers, then closes (end of stream, or its linger) */
	for(i = 0; i < 100000; i++)
	{
		event_base_loop(gw.base, EVLOOP_NONBLOCK);
		if(drain(sv[1], first, &have) < 0)
		{
			break;
		}
		if(!gw.http_conns)
		{
			break;
		}
	}
	FUZZ_CHECK(have == 0 || !memcmp(first, "HTTP/1.1 ", have < 9 ? have : 9));
	close(sv[1]);
	/* a connection still open (lingering) goes with the input */
	if(gw.http_conns)
	{
		gw_http_free(&gw);
		FUZZ_CHECK(gw_http_init(&gw) == 0);
	}
	return 0;
}
