/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A tiny scripted HTTP server for tests, used ONLY to feed the library
 * malformed or hostile responses (and to hang) in ways a real etcd never
 * would. It listens on 127.0.0.1 on a free port; each request it reads
 * gets the next scripted reply (the last one repeats).
 */
#ifndef CLUSTER_FAKEHTTP_H_
#define CLUSTER_FAKEHTTP_H_ 1

#include <stddef.h>

typedef struct fakehttp fakehttp;

typedef struct fakehttp_reply fakehttp_reply;
struct fakehttp_reply
{
	const char *raw;    /* exact bytes to send (status line, headers, body) */
	size_t len;         /* 0: strlen(raw) */
	size_t slice;       /* send in slices of this many bytes (0: at once) */
	int slice_pause_ms; /* pause between slices */
	int hang_ms;        /* then keep the connection open this long (-1: until stopped) */
	int close;          /* then close the connection */
};

/* Start serving the script (copied by reference: keep it alive). */
fakehttp *fakehttp_start(const fakehttp_reply *script, size_t n);

/* One route of a routed server: requests whose request line ("POST
 * /v3/watch HTTP/1.1") starts with match get the route's replies in turn
 * (the last repeats). */
typedef struct fakehttp_route fakehttp_route;
struct fakehttp_route
{
	const char *match;
	const fakehttp_reply *script;
	size_t n;
};

/* Serve per-route scripts (kept by reference), each connection on its own
 * thread, so a held stream does not stall other requests (an engine's
 * ping and watch connections). The first matching route wins; a request
 * no route matches gets a 404. */
fakehttp *fakehttp_start_routes(const fakehttp_route *routes, size_t n);
/* Requests so far answered by the route whose match is exactly match
 * (0 if there is none). */
unsigned fakehttp_route_requests(fakehttp *f, const char *match);
/* Copy of the last request answered by that route ("" if none). */
void fakehttp_route_last(fakehttp *f, const char *match, char *buf, size_t size);
int fakehttp_port(fakehttp *f);
/* "http://127.0.0.1:PORT" in a static-per-server buffer. */
const char *fakehttp_url(fakehttp *f);
/* Number of connections accepted so far. */
unsigned fakehttp_accepted(fakehttp *f);
/* Number of requests read so far. */
unsigned fakehttp_requests(fakehttp *f);
/* Copy of the last request (head and body) into buf. */
void fakehttp_last_request(fakehttp *f, char *buf, size_t size);
/* Non-zero if any request so far contained needle. */
int fakehttp_seen(fakehttp *f, const char *needle);
void fakehttp_stop(fakehttp *f);

#endif /*!CLUSTER_FAKEHTTP_H_*/
