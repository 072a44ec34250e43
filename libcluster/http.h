/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one HTTP seam. Every request the library makes to a registry goes
 * through these functions (implemented with libcurl in http-curl.c, which
 * reads the answer of a duplex stream over plain HTTP with
 * http1-reader.c).
 *
 * A cluster__http object is used by one thread at a time; each library
 * thread owns its own. cluster__http_cancel() and cluster__http_interrupt()
 * are the exceptions: they may be called from any thread. Cancel makes the
 * request in progress (and every later one until cluster__http_reset_cancel())
 * return ECANCELED at once; interrupt aborts only the request in progress.
 *
 * Every request has a connect timeout and an overall (or idle) timeout;
 * CURLOPT_NOSIGNAL is always set. Requests carry
 * "Grpc-Metadata-Hasleader: true" when the config asks for it (etcd v3).
 * A response body (or one line of a stream) larger than
 * CLUSTER__HTTP_MAX_BODY fails the call with EIO: a hostile server cannot
 * make us allocate without limit.
 */
#ifndef CLUSTER_HTTP_H_
#define CLUSTER_HTTP_H_ 1

#include <stddef.h>
#include <stdint.h>

/* Largest response body or stream line we accept (bytes). */
#define CLUSTER__HTTP_MAX_BODY (4u * 1024u * 1024u)

typedef struct cluster__http cluster__http;

typedef struct cluster__http_config cluster__http_config;
struct cluster__http_config
{
	char **endpoints; /* base URLs without trailing '/', e.g. "http://127.0.0.1:2379" */
	size_t n_endpoints;
	int connect_timeout_ms;
	int timeout_ms;      /* overall limit of a unary request */
	const char *ca_file; /* TLS (may be NULL) */
	const char *cert_file;
	const char *key_file;
	const char *user; /* HTTP basic auth (etcd v2) or NULL */
	const char *password;
	int require_leader;   /* send Grpc-Metadata-Hasleader: true */
	int verbose;          /* log request lines at LOG_DEBUG */
	int keepalive_idle_s; /* TCP keepalive idle time (0: 2 s) */
};

typedef struct cluster__http_response cluster__http_response;
struct cluster__http_response
{
	long status; /* HTTP status, 0 if no response */
	char *body;  /* NUL-terminated, owned; may be NULL */
	size_t len;
	char *etcd_index; /* value of an X-Etcd-Index header (v2), owned; may be NULL */
};

/* Receives each complete line of a streamed response (without the '\n'),
 * and whatever is left unterminated at the end of the stream. Return
 * non-zero to stop the stream (the call then returns 0). */
typedef int (*cluster__http_line_cb)(void *ctx, const char *line, size_t len);

struct cluster_struct;

/* The config is copied. c is used only for logging (may be NULL). */
cluster__http *cluster__http_create(const cluster__http_config *config, struct cluster_struct *c);
void cluster__http_destroy(cluster__http *http);

/*
 * A unary request (method "POST", "PUT", "GET" or "DELETE") to path on the
 * current endpoint. body may be NULL; content_type NULL means JSON.
 * On a transport error or a 5xx status the next endpoint is tried (each at
 * most once per call). Returns 0 when an HTTP response arrived (any status;
 * see resp->status), or an errno value: ECONNREFUSED, ETIMEDOUT, EIO,
 * EPROTO (TLS: handshake, certificates, or http:// to a TLS port),
 * ECANCELED, ENOMEM; cluster__http_error() then says why.
 * resp must be released with cluster__http_response_free().
 */
int cluster__http_request(cluster__http *http, const char *method, const char *path, const char *content_type, const char *body, cluster__http_response *resp);

/*
 * A streamed POST (etcd watch). Lines are passed to cb as they arrive. The
 * stream is abandoned with ETIMEDOUT if no byte arrives for idle_timeout_ms
 * (0: no idle limit). Returns 0 when the stream ended normally or cb asked
 * to stop, else an errno value as above. *status_out gets the HTTP status.
 * Does not fail over: the caller decides (cluster__http_next_endpoint()).
 */
int cluster__http_stream(cluster__http *http, const char *path, const char *body, cluster__http_line_cb cb, void *ctx, int idle_timeout_ms, long *status_out);

/*
 * As cluster__http_stream(), with two more limits (0: none):
 * first_line_timeout_ms fails with ETIMEDOUT unless a complete first line
 * arrives in time (an etcd watch must answer "created" promptly), and
 * total_timeout_ms bounds the whole stream (then ETIMEDOUT).
 */
int cluster__http_stream_ex(cluster__http *http, const char *path, const char *body, cluster__http_line_cb cb, void *ctx, int idle_timeout_ms, int first_line_timeout_ms, int total_timeout_ms, long *status_out);

/* A stream's tick: called from the transfer loop between turns of
 * libcurl (never inside it). Returns the longest wait (ms) before it
 * wants to run again, -1 for no limit, or CLUSTER__HTTP_STOP to end the
 * stream (the call then returns 0). */
typedef int64_t (*cluster__http_tick_cb)(void *ctx);
#define CLUSTER__HTTP_STOP (-2)

typedef struct cluster__http_stream_opts cluster__http_stream_opts;
struct cluster__http_stream_opts
{
	cluster__http_line_cb on_line;
	cluster__http_tick_cb on_tick; /* may be NULL */
	void *ctx;                     /* passed to both */
	int idle_timeout_ms;           /* as cluster__http_stream_ex() */
	int first_line_timeout_ms;
	int total_timeout_ms;
	/* Send the body as the first chunk of a chunked request that stays
	 * open: on_line and on_tick may queue more with
	 * cluster__http_stream_send() (etcd's watch progress requests). */
	int duplex;
};

/*
 * The general stream: as cluster__http_stream_ex(), with the options
 * above. Lines are delivered by the transfer loop after libcurl returns,
 * so on_line runs outside libcurl (it may take locks and call back into
 * the library's core).
 */
int cluster__http_stream_run(cluster__http *http, const char *path, const char *body, const cluster__http_stream_opts *opts, long *status_out);

/* During a duplex stream, from its on_line or on_tick: queue data for the
 * request body. Returns 0, ENOMEM, or EINVAL when no duplex stream runs
 * or its body was ended (cluster__http_stream_end()). Over http:// the
 * seam frames the stream itself (one chunk per call; see http1-reader.h),
 * over https:// libcurl does. */
int cluster__http_stream_send(cluster__http *http, const char *data);

/* During a duplex stream, from its on_line or on_tick: end the request
 * body once what is queued has been sent (the last chunk). The stream
 * then runs until the server ends its answer (etcd's keepalive stream
 * ends when its request body does). Whether the connection can carry the
 * next request is the server's choice: Go's HTTP/1.1 server closes it
 * after a duplex exchange, HTTP/2 should keep it. */
void cluster__http_stream_end(cluster__http *http);

/* Thread-safe: make the transfer loop of the request in progress run its
 * tick now (nothing is aborted). */
void cluster__http_wake(cluster__http *http);

/* Limit later unary requests to end by this monotonic time (ms; 0: no
 * limit beyond the per-request one): a request that would start after it
 * fails with ETIMEDOUT, one that starts before gets what is left. */
void cluster__http_set_deadline(cluster__http *http, int64_t deadline_ms);

/* Why the last request on this handle failed on the way: curl's words
 * (naming the endpoint when there are several), or strerror(r) when the
 * failure was ours (a timeout of ours, a cancel). Valid until the next
 * request. */
const char *cluster__http_error(const cluster__http *http, int r);

/* Move to the next endpoint (round robin). */
void cluster__http_next_endpoint(cluster__http *http);
/* The endpoint currently in use. */
const char *cluster__http_endpoint(const cluster__http *http);
/* Its position in the configured list (handles made from one config
 * list their endpoints in the same order). */
size_t cluster__http_endpoint_index(const cluster__http *http);
/* Move to the endpoint at that position (modulo their number). */
void cluster__http_use_endpoint(cluster__http *http, size_t index);

/* Override the overall limit of later unary requests (ms, > 0); the connect
 * timeout is capped to it too. Used to fit a request into a deadline. */
void cluster__http_set_timeout(cluster__http *http, int timeout_ms);

/* Send "Authorization: <token>" (etcd v3 auth) on later requests; NULL
 * stops sending it. Returns 0 or ENOMEM. */
int cluster__http_set_token(cluster__http *http, const char *token);

/* Thread-safe: abort the request in progress and refuse new ones. */
void cluster__http_cancel(cluster__http *http);
void cluster__http_reset_cancel(cluster__http *http);

/* Thread-safe: abort only the request in progress (ECANCELED), if any;
 * later requests run normally. Used to make a stream reconnect. */
void cluster__http_interrupt(cluster__http *http);

void cluster__http_response_free(cluster__http_response *resp);

/* Parse a registry URI list ("http://a:1/,https://b:2") into endpoint base
 * URLs (scheme://host:port, path dropped unless it is not "/"). Returns 0
 * or EINVAL (with a reason in *why, a static string), ENOMEM. The caller
 * frees with cluster__http_endpoints_free(). */
int cluster__http_parse_endpoints(const char *uri, char ***endpoints, size_t *n, const char **why);
void cluster__http_endpoints_free(char **endpoints, size_t n);

/*
 * Line splitter used for streams (exposed for tests): feed it arbitrary
 * slices; each complete line (without "\n" or "\r\n") goes to cb. Lines
 * longer than max bytes fail with EIO. Initialise with {0} and set max.
 */
typedef struct cluster__linesplit cluster__linesplit;
struct cluster__linesplit
{
	char *buf;
	size_t len;
	size_t cap;
	size_t max;          /* 0: CLUSTER__HTTP_MAX_BODY */
	int stopped;         /* cb asked to stop: later input is ignored */
	unsigned long lines; /* lines delivered so far */
};
/* Returns 0, EIO (line too long) or ENOMEM. */
int cluster__linesplit_feed(cluster__linesplit *ls, const char *data, size_t n, cluster__http_line_cb cb, void *ctx);
/* Deliver an unterminated rest (if not blank); returns 0. */
int cluster__linesplit_finish(cluster__linesplit *ls, cluster__http_line_cb cb, void *ctx);
void cluster__linesplit_free(cluster__linesplit *ls);

#endif /*!CLUSTER_HTTP_H_*/
