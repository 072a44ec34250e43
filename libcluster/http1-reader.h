/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The reader of an HTTP/1.1 response that arrives in slices of any size:
 * status line, headers (skipping "100 Continue" and other interim
 * answers), then a body framed by chunks, by a length, or by the end of
 * the connection. Pure: no I/O, no locks, no allocation, so every split
 * of every input can be tested (tests/test_http1_reader.c).
 *
 * It serves the duplex streams the HTTP seam drives itself over a plain
 * connection (http-curl.c: a chunked request body that stays open while
 * the answer streams back, which libcurl 7.88 can only do by pausing the
 * upload, and every pause costs each handle's multi a 29 kB socket hash).
 */
#ifndef CLUSTER_HTTP1_READER_H_
#define CLUSTER_HTTP1_READER_H_ 1

#include <stddef.h>
#include <stdint.h>

/* Receives body bytes in order; returns 0 to go on, non-zero to stop the
 * reader (cluster__h1_feed() then returns that value). */
typedef int (*cluster__h1_body_cb)(void *ud, const char *data, size_t len);

typedef struct cluster__h1 cluster__h1;
struct cluster__h1
{
	int state;
	int status;         /* the final status, 0 until its line is read */
	int chunked;        /* Transfer-Encoding: chunked */
	int has_length;     /* Content-Length seen */
	int close;          /* Connection: close */
	uint64_t remaining; /* of the body (length) or of the current chunk */
	size_t head_bytes;  /* of the head so far (bounded) */
	size_t line_total;  /* bytes of the current line, kept or not */
	size_t line_len;    /* bytes of the current line kept in line[] */
	int line_long;      /* the current line was longer than line[] */
	char line[256];     /* a head line; longer ones are cut (only short
			     * headers matter here) */
	const char *error;  /* why the answer is malformed, or NULL */
};

/* Ready to read a new response. */
void cluster__h1_init(cluster__h1 *p);

/*
 * Reads len bytes. Returns 0, EPROTO when the answer is not HTTP/1.x
 * (p->error says what), or what cb returned. Bytes after the end of the
 * response are ignored.
 */
int cluster__h1_feed(cluster__h1 *p, const char *data, size_t len, cluster__h1_body_cb cb, void *ud);

/* Whether the whole response has been read. */
int cluster__h1_done(const cluster__h1 *p);

/* Whether the head (status and headers) has been read. */
int cluster__h1_head_done(const cluster__h1 *p);

/*
 * The connection ended: returns 0 when that completes the response (it
 * was complete, or its body runs to the end of the connection), else
 * EPIPE (p->error says where it was cut).
 */
int cluster__h1_eof(cluster__h1 *p);

#endif
