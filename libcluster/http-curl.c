/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP seam on libcurl. Each cluster__http owns one multi handle and
 * one easy handle (so keepalive POSTs reuse their TCP connection). Requests
 * are driven with curl_multi_poll(), which cluster__http_cancel() and
 * cluster__http_interrupt() wake with curl_multi_wakeup() from any thread:
 * that is what lets cluster_leave() return at once even when the registry
 * is hung (SIGSTOPped) and a request or a watch stream is in progress.
 * A duplex stream over plain HTTP is framed here on a connection libcurl
 * makes (raw_stream()); over https libcurl drives it (HTTP/2 there).
 */
#include "util.h"
#include "http.h"
#include "http1-reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <curl/curl.h>

/* Endpoint base URLs are checked to be at most this long (endpoints.c). */
#define HTTP_MAX_URL 1024

/* libcurl's per-handle buffers. A process may run a thousand instances,
 * each with two handles, and libcurl's defaults (16 KiB to receive, 64
 * KiB to upload once a read callback is used, as our duplex streams do)
 * would be most of an instance's memory. Neither limits what we accept:
 * a received message of any size is assembled by the line splitter (up to
 * CLUSTER__HTTP_MAX_BODY), and what we send is a few hundred bytes at a
 * time. Both are libcurl's minimum: 1 KiB to receive holds a keepalive
 * answer or a watch event whole, and a large answer (the range of a big
 * cluster) only takes more reads (bench-memory 1000: 6 kB per instance
 * less than with 4 KiB). */
#define HTTP_RECV_BUFFER   1024L
#define HTTP_UPLOAD_BUFFER 16384L

/* Our own buffers that grew past this for one large answer (the range of
 * a big cluster, a long watch replay, a batch of statuses) are released
 * once it has been handed over: with a thousand instances in a process,
 * each keeping its largest answer ever would cost more than everything
 * else it holds. A keepalive answer or one watch event fits; at 16 KiB an
 * advisor user kept three buffers of status batches (bench-memory -a 300:
 * 278.7 kB per instance, 257.0 at 4 KiB). */
#define HTTP_KEEP_BUFFER 4096u

struct cluster__http
{
	struct cluster_struct *c;
	char **endpoints;
	size_t n_endpoints;
	size_t cur;
	int connect_timeout_ms;
	int timeout_ms;
	int keepalive_idle_s;
	int require_leader;
	int verbose;
	char *ca_file, *cert_file, *key_file;
	char *user, *password;
	char *token;
	CURLM *multi;
	CURL *easy;
	/* cross-thread signals (atomics) */
	int cancelled;
	unsigned long interrupts;
	/* per-request state, owned by the thread running the request */
	char *body;
	size_t len, cap;
	char *etcd_index;
	int xfer_err; /* set by the write callback: EIO, ENOMEM */
	int streaming;
	cluster__linesplit ls;
	cluster__http_line_cb cb;
	void *ctx;
	int64_t last_data_ms;
	int64_t deadline_ms; /* absolute limit of unary requests, 0: none */
	/* stream bytes received by libcurl, handed to cb by the transfer loop
	 * (so that callbacks never run inside libcurl) */
	char *in;
	size_t in_len, in_cap;
	/* duplex streams: bytes queued for the chunked request body */
	int duplex;
	int raw; /* the duplex stream is framed here (raw_stream()) */
	int upload_paused;
	int out_eof; /* end the chunked body once out is sent */
	char *out;
	size_t out_len, out_off, out_cap;
	/* the connections this handle's libcurl holds open (on_open_socket) */
	int n_socks;
	curl_socket_t sock; /* the last one opened, CURL_SOCKET_BAD: none */
	size_t sock_ep;     /* the endpoint it was opened to */
	/* why the last request failed on the way (curl's words), "" if not */
	char errbuf[CURL_ERROR_SIZE];
	char error[CURL_ERROR_SIZE + 320];
};

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_global_rc = CURLE_FAILED_INIT;

/* libcurl's global state is initialised once per process, thread-safely
 * (libcurl >= 7.84 makes curl_global_init itself thread-safe too). */
static void
http_global_init(void)
{
	http_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int
http_verbose(cluster__http *h)
{
	return h->verbose || (h->c && cluster__verbose(h->c));
}

/* ---------------------------------------------------------------------- */
/* handle                                                                   */
/* ---------------------------------------------------------------------- */

cluster__http *
cluster__http_create(const cluster__http_config *config, struct cluster_struct *c)
{
	cluster__http *h;
	size_t i;

	pthread_once(&http_once, http_global_init);
	if(http_global_rc != CURLE_OK)
	{
		errno = EIO;
		return NULL;
	}
	if(!config || !config->n_endpoints || !config->endpoints)
	{
		errno = EINVAL;
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if(!h)
	{
		return NULL;
	}
	h->c = c;
	h->endpoints = calloc(config->n_endpoints, sizeof(char *));
	if(!h->endpoints)
	{
		goto fail;
	}
	for(i = 0; i < config->n_endpoints; i++)
	{
		h->endpoints[i] = strdup(config->endpoints[i]);
		if(!h->endpoints[i])
		{
			goto fail;
		}
		h->n_endpoints++;
	}
	h->connect_timeout_ms = config->connect_timeout_ms > 0 ? config->connect_timeout_ms : CLUSTER_CONNECT_TIMEOUT_MS;
	h->timeout_ms = config->timeout_ms > 0 ? config->timeout_ms : CLUSTER_REQUEST_TIMEOUT_DEFAULT_MS;
	h->keepalive_idle_s = config->keepalive_idle_s > 0 ? config->keepalive_idle_s : 2;
	h->require_leader = config->require_leader;
	h->verbose = config->verbose;
	if((config->ca_file && !(h->ca_file = strdup(config->ca_file))) ||
		(config->cert_file && !(h->cert_file = strdup(config->cert_file))) ||
		(config->key_file && !(h->key_file = strdup(config->key_file))) ||
		(config->user && !(h->user = strdup(config->user))) ||
		(config->password && !(h->password = strdup(config->password))))
	{
		goto fail;
	}
	h->sock = CURL_SOCKET_BAD;
	h->multi = curl_multi_init();
	h->easy = curl_easy_init();
	if(!h->multi || !h->easy)
	{
		goto fail;
	}
	return h;
fail:
	cluster__http_destroy(h);
	errno = ENOMEM;
	return NULL;
}

void
cluster__http_destroy(cluster__http *h)
{
	if(!h)
	{
		return;
	}
	if(h->easy)
	{
		curl_easy_cleanup(h->easy);
	}
	if(h->multi)
	{
		curl_multi_cleanup(h->multi);
	}
	cluster__http_endpoints_free(h->endpoints, h->n_endpoints);
	free(h->ca_file);
	free(h->cert_file);
	free(h->key_file);
	free(h->user);
	if(h->password)
	{
		memset(h->password, 0, strlen(h->password));
	}
	free(h->password);
	if(h->token)
	{
		memset(h->token, 0, strlen(h->token));
	}
	free(h->token);
	free(h->body);
	free(h->etcd_index);
	free(h->in);
	free(h->out);
	cluster__linesplit_free(&h->ls);
	free(h);
}

void
cluster__http_next_endpoint(cluster__http *h)
{
	h->cur = (h->cur + 1) % h->n_endpoints;
}

const char *
cluster__http_endpoint(const cluster__http *h)
{
	return h->endpoints[h->cur];
}

size_t
cluster__http_endpoint_index(const cluster__http *h)
{
	return h->cur;
}

void
cluster__http_use_endpoint(cluster__http *h, size_t index)
{
	h->cur = index % h->n_endpoints;
}

void
cluster__http_set_timeout(cluster__http *h, int timeout_ms)
{
	if(timeout_ms < 1)
	{
		timeout_ms = 1;
	}
	h->timeout_ms = timeout_ms;
	if(h->connect_timeout_ms > timeout_ms)
	{
		h->connect_timeout_ms = timeout_ms;
	}
}

int
cluster__http_set_token(cluster__http *h, const char *token)
{
	char *t = NULL;

	if(token && !(t = strdup(token)))
	{
		return ENOMEM;
	}
	if(h->token)
	{
		memset(h->token, 0, strlen(h->token));
	}
	free(h->token);
	h->token = t;
	return 0;
}

void
cluster__http_cancel(cluster__http *h)
{
	__atomic_store_n(&h->cancelled, 1, __ATOMIC_SEQ_CST);
	curl_multi_wakeup(h->multi);
}

void
cluster__http_reset_cancel(cluster__http *h)
{
	__atomic_store_n(&h->cancelled, 0, __ATOMIC_SEQ_CST);
}

void
cluster__http_interrupt(cluster__http *h)
{
	__atomic_add_fetch(&h->interrupts, 1, __ATOMIC_SEQ_CST);
	curl_multi_wakeup(h->multi);
}

void
cluster__http_response_free(cluster__http_response *resp)
{
	if(!resp)
	{
		return;
	}
	free(resp->body);
	free(resp->etcd_index);
	memset(resp, 0, sizeof(*resp));
}

/* ---------------------------------------------------------------------- */
/* transfers                                                                */
/* ---------------------------------------------------------------------- */

static size_t
on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	cluster__http *h = ud;
	size_t n = size * nmemb;

	h->last_data_ms = cluster__now_ms();
	if(h->streaming)
	{
		/* only buffered here: the transfer loop splits and delivers the
		 * lines once libcurl has returned. What one turn of the loop may
		 * receive is bounded like any line. */
		if(h->in_len + n > 2 * (size_t) CLUSTER__HTTP_MAX_BODY)
		{
			h->xfer_err = EIO;
			return 0;
		}
		if(cluster__reserve(&h->in, &h->in_cap, h->in_len + n, 4096))
		{
			h->xfer_err = ENOMEM;
			return 0;
		}
		memcpy(h->in + h->in_len, ptr, n);
		h->in_len += n;
		return n;
	}
	if(h->len + n > CLUSTER__HTTP_MAX_BODY)
	{
		h->xfer_err = EIO;
		return 0;
	}
	if(cluster__reserve(&h->body, &h->cap, h->len + n + 1, 1024))
	{
		h->xfer_err = ENOMEM;
		return 0;
	}
	memcpy(h->body + h->len, ptr, n);
	h->len += n;
	h->body[h->len] = 0;
	return n;
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	cluster__http *h = ud;
	size_t n = size * nmemb;
	static const char name[] = "X-Etcd-Index:";

	if(n > sizeof(name) - 1 && n < 256 && !strncasecmp(ptr, name, sizeof(name) - 1))
	{
		const char *v = ptr + sizeof(name) - 1;
		size_t vl = n - (sizeof(name) - 1);

		while(vl && (*v == ' ' || *v == '\t'))
		{
			v++;
			vl--;
		}
		while(vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		{
			vl--;
		}
		free(h->etcd_index);
		h->etcd_index = strndup(v, vl);
	}
	return n;
}

/* The chunked request body of a duplex stream: what is queued, then a
 * pause until the transfer loop queues more (cluster__http_stream_send). */
static size_t
on_read(char *buf, size_t size, size_t nitems, void *ud)
{
	cluster__http *h = ud;
	size_t room = size * nitems, n = h->out_len - h->out_off;

	if(!n)
	{
		if(h->out_eof)
		{
			/* the last chunk: the server sees the end of the request body */
			return 0;
		}
		h->upload_paused = 1;
		return CURL_READFUNC_PAUSE;
	}
	if(n > room)
	{
		n = room;
	}
	memcpy(buf, h->out + h->out_off, n);
	h->out_off += n;
	if(h->out_off == h->out_len)
	{
		h->out_off = h->out_len = 0;
	}
	return n;
}

static int
out_append(cluster__http *h, const char *data, size_t n)
{
	if(cluster__reserve(&h->out, &h->out_cap, h->out_len + n + 1, 256))
	{
		return ENOMEM;
	}
	memcpy(h->out + h->out_len, data, n);
	h->out_len += n;
	return 0;
}

/* Queue data for the request body. libcurl frames what on_read() gives
 * it as chunks; a raw stream's bytes go out as they are, so each message
 * is framed here as one chunk (an empty one would end the body). */
int
cluster__http_stream_send(cluster__http *h, const char *data)
{
	size_t n = strlen(data);
	char size[24];

	if(!h->duplex || h->out_eof)
	{
		return EINVAL;
	}
	if(!h->raw)
	{
		return out_append(h, data, n);
	}
	if(!n)
	{
		return 0;
	}
	snprintf(size, sizeof(size), "%zx\r\n", n);
	if(cluster__reserve(&h->out, &h->out_cap, h->out_len + strlen(size) + n + 3, 256))
	{
		return ENOMEM;
	}
	return out_append(h, size, strlen(size)) || out_append(h, data, n) || out_append(h, "\r\n", 2) ? ENOMEM : 0;
}

void
cluster__http_stream_end(cluster__http *h)
{
	if(h->duplex && !h->out_eof)
	{
		/* a raw stream's last chunk (out of memory fails the stream) */
		if(h->raw && out_append(h, "0\r\n\r\n", 5))
		{
			h->xfer_err = ENOMEM;
		}
		h->out_eof = 1;
	}
}

void
cluster__http_wake(cluster__http *h)
{
	curl_multi_wakeup(h->multi);
}

void
cluster__http_set_deadline(cluster__http *h, int64_t deadline_ms)
{
	h->deadline_ms = deadline_ms;
}

static int
map_curl_error(CURLcode cc)
{
	switch(cc)
	{
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_CONNECT:
		return ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		/* "No such device or address": no address for the name */
		return ENXIO;
	case CURLE_OPERATION_TIMEDOUT:
		return ETIMEDOUT;
	case CURLE_OUT_OF_MEMORY:
		return ENOMEM;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_USE_SSL_FAILED:
#if LIBCURL_VERSION_NUM >= 0x074d00
	case CURLE_SSL_CLIENTCERT:
#endif
		return EPROTO;
	case CURLE_LOGIN_DENIED:
		return EACCES;
	default:
		return EIO;
	}
}

/*
 * The errno value of a failed transfer, and its cause in curl's words in
 * h->error. TLS failures are EPROTO. Two of them reach curl as plain
 * transport errors:
 * - a server that requires a client certificate checks ours only after
 *   the handshake has completed on our side (TLS 1.3), then sends an
 *   alert and drops the connection: curl sees a failed send or receive
 *   (or an HTTP/2 error) on a connection it has just made, before any
 *   answer, with or without the alert's text depending on the race;
 * - http:// to a TLS port gets an empty reply (etcd drops the
 *   connection), which says so.
 */
static int
transfer_error(cluster__http *h, CURLcode cc)
{
	const char *detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc);
	const char *ep = h->endpoints[h->cur];
	int https = !strncmp(ep, "https:", 6), r = map_curl_error(cc);
	long fresh = 0, status = 0;
	char where[96] = "";

	if(h->n_endpoints > 1)
	{
		/* the caller may have moved on to the next endpoint */
		snprintf(where, sizeof(where), "%s: ", ep);
	}
	if(cc == CURLE_GOT_NOTHING && !https)
	{
		snprintf(h->error, sizeof(h->error), "%s%s (a TLS endpoint answers http:// this way: use https://)", where, detail);
		return EPROTO;
	}
	curl_easy_getinfo(h->easy, CURLINFO_NUM_CONNECTS, &fresh);
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
	if(r == EIO && https && !status && fresh > 0 &&
		(cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR || cc == CURLE_HTTP2 || cc == CURLE_HTTP2_STREAM || cc == CURLE_GOT_NOTHING))
	{
		snprintf(h->error, sizeof(h->error),
			"%sTLS: the server ended a new connection right after the handshake (%s): a server that requires a "
			"client certificate does this when ours is missing, expired, or signed by a CA it does not trust",
			where, detail);
		return EPROTO;
	}
	snprintf(h->error, sizeof(h->error), "%s%s%s", where, r == EPROTO ? "TLS: " : "", detail);
	return r;
}

const char *
cluster__http_error(const cluster__http *h, int r)
{
	return h->error[0] ? h->error : strerror(r);
}

/* libcurl's sockets, opened and closed here so that the handle knows
 * its connection (peer_closed()); close-on-exec, so that a child the
 * application forks does not hold our connections open. */
static curl_socket_t
on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	cluster__http *h = ud;
	curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);

	(void) purpose;
	if(fd != CURL_SOCKET_BAD)
	{
		h->n_socks++;
		h->sock = fd;
		h->sock_ep = h->cur;
	}
	return fd;
}

static int
on_close_socket(void *ud, curl_socket_t fd)
{
	cluster__http *h = ud;

	h->n_socks--;
	if(h->sock == fd)
	{
		h->sock = CURL_SOCKET_BAD;
	}
	return close(fd);
}

/* The request's headers: the content type, no "Expect" delay (except a
 * duplex stream, see below), etcd's leader requirement and the auth
 * token. Returns the list, or NULL when out of memory. */
static struct curl_slist *
request_headers(cluster__http *h, const char *content_type, int stream)
{
	struct curl_slist *l = NULL, *t;
	char line[64];

	snprintf(line, sizeof(line), "Content-Type: %s", content_type ? content_type : "application/json");
	if(!(t = curl_slist_append(l, line)))
	{
		goto oom;
	}
	l = t;
	/* Never wait a second for "100 Continue" on larger bodies; except on
	 * a duplex stream, where asking for it is what makes etcd's gateway
	 * (Go's HTTP/1 server) leave the rest of the body unread while it
	 * answers, instead of trying to consume it first and hanging. */
	if(!(t = curl_slist_append(l, stream && h->duplex ? "Expect: 100-continue" : "Expect:")))
	{
		goto oom;
	}
	l = t;
	if(stream && h->duplex)
	{
		if(!(t = curl_slist_append(l, "Transfer-Encoding: chunked")))
		{
			goto oom;
		}
		l = t;
	}
	if(h->require_leader)
	{
		if(!(t = curl_slist_append(l, "Grpc-Metadata-Hasleader: true")))
		{
			goto oom;
		}
		l = t;
	}
	if(h->token)
	{
		char *a = malloc(strlen(h->token) + 16);

		if(!a)
		{
			goto oom;
		}
		sprintf(a, "Authorization: %s", h->token);
		t = curl_slist_append(l, a);
		memset(a, 0, strlen(a));
		free(a);
		if(!t)
		{
			goto oom;
		}
		l = t;
	}
	return l;
oom:
	curl_slist_free_all(l);
	return NULL;
}

/* Configure the easy handle from scratch for one request (the connection
 * cache lives in the multi handle, so reset does not lose connections). */
static int
setup(cluster__http *h, const char *method, const char *path, const char *content_type, const char *body, int stream, int total_ms, struct curl_slist **hdrs)
{
	char url[HTTP_MAX_URL + 512];
	struct curl_slist *l;
	long timeout = stream ? total_ms : h->timeout_ms;
	long connect = h->connect_timeout_ms;

	/* Over https a connect includes the TLS handshake, which costs more
	 * than a TCP connect (loading the CA store, a busy server): it gets
	 * half of a request's time even where a TCP connect is capped lower,
	 * so that a slow handshake is not retried as a timeout for ever. */
	if(!strncmp(h->endpoints[h->cur], "https:", 6) && connect < h->timeout_ms / 2)
	{
		connect = h->timeout_ms / 2;
	}
	if(snprintf(url, sizeof(url), "%s%s", h->endpoints[h->cur], path) >= (int) sizeof(url))
	{
		return EINVAL;
	}
	curl_easy_reset(h->easy);
	curl_easy_setopt(h->easy, CURLOPT_ERRORBUFFER, h->errbuf);
	h->errbuf[0] = 0;
	h->error[0] = 0;
	h->len = 0;
	if(h->body)
	{
		h->body[0] = 0;
	}
	free(h->etcd_index);
	h->etcd_index = NULL;
	h->xfer_err = 0;
	h->streaming = stream;
	h->ls.len = 0;
	h->ls.stopped = 0;
	h->ls.lines = 0;
	h->ls.max = CLUSTER__HTTP_MAX_BODY;
	h->in_len = 0;
	h->out_len = h->out_off = 0;
	h->out_eof = 0;
	h->upload_paused = 0;
	if(!stream && h->deadline_ms)
	{
		int64_t left = h->deadline_ms - cluster__now_ms();

		if(left < 1)
		{
			return ETIMEDOUT;
		}
		timeout = left < timeout ? (long) left : timeout;
		connect = connect < timeout ? connect : timeout;
	}

	l = request_headers(h, content_type, stream);
	if(!l)
	{
		return ENOMEM;
	}
	*hdrs = l;

	curl_easy_setopt(h->easy, CURLOPT_URL, url);
	curl_easy_setopt(h->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
	curl_easy_setopt(h->easy, CURLOPT_OPENSOCKETDATA, h);
	curl_easy_setopt(h->easy, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
	curl_easy_setopt(h->easy, CURLOPT_CLOSESOCKETDATA, h);
	curl_easy_setopt(h->easy, CURLOPT_CONNECTTIMEOUT_MS, connect);
	curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(h->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h->easy, CURLOPT_TCP_KEEPIDLE, (long) h->keepalive_idle_s);
	curl_easy_setopt(h->easy, CURLOPT_TCP_KEEPINTVL, 1L);
	curl_easy_setopt(h->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h->easy, CURLOPT_BUFFERSIZE, HTTP_RECV_BUFFER);
	curl_easy_setopt(h->easy, CURLOPT_UPLOAD_BUFFERSIZE, HTTP_UPLOAD_BUFFER);
	curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, l);
	curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h->easy, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(h->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h->easy, CURLOPT_HEADERDATA, h);
	if(!strcmp(method, "GET"))
	{
		curl_easy_setopt(h->easy, CURLOPT_HTTPGET, 1L);
	}
	else if(stream && h->duplex)
	{
		/* the body so far is the first message; more follow as chunks */
		curl_easy_setopt(h->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(h->easy, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(h->easy, CURLOPT_READDATA, h);
		if(body && cluster__http_stream_send(h, body))
		{
			curl_slist_free_all(l);
			*hdrs = NULL;
			return ENOMEM;
		}
	}
	else
	{
		curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, body ? body : "");
		curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE, (long) (body ? strlen(body) : 0));
		if(strcmp(method, "POST"))
		{
			curl_easy_setopt(h->easy, CURLOPT_CUSTOMREQUEST, method);
		}
	}
	if(h->ca_file)
	{
		curl_easy_setopt(h->easy, CURLOPT_CAINFO, h->ca_file);
	}
	if(h->cert_file)
	{
		curl_easy_setopt(h->easy, CURLOPT_SSLCERT, h->cert_file);
	}
	if(h->key_file)
	{
		curl_easy_setopt(h->easy, CURLOPT_SSLKEY, h->key_file);
	}
	if(h->user && h->password)
	{
		curl_easy_setopt(h->easy, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
		curl_easy_setopt(h->easy, CURLOPT_USERNAME, h->user);
		curl_easy_setopt(h->easy, CURLOPT_PASSWORD, h->password);
	}
	if(http_verbose(h) && h->c)
	{
		cluster__log(h->c, LOG_DEBUG, "libcluster: http: %s %s%s\n", method, url, stream ? " (stream)" : "");
	}
	return 0;
}

/* Release buf if it holds nothing (used 0) and has grown past
 * HTTP_KEEP_BUFFER. */
static void
trim(char **buf, size_t *cap, size_t used)
{
	if(!used && *cap > HTTP_KEEP_BUFFER)
	{
		free(*buf);
		*buf = NULL;
		*cap = 0;
	}
}

/* Hand what the stream received to its line callback, outside libcurl.
 * Returns 0, or EIO/ENOMEM (a line too long, out of memory). */
static int
deliver_lines(cluster__http *h)
{
	int r = 0;

	if(h->in_len && !h->ls.stopped)
	{
		r = cluster__linesplit_feed(&h->ls, h->in, h->in_len, h->cb, h->ctx);
	}
	h->in_len = 0;
	trim(&h->in, &h->in_cap, 0);
	trim(&h->ls.buf, &h->ls.cap, h->ls.len);
	return r;
}

/*
 * Whether the server has closed the connection of a duplex stream whose
 * upload is paused. libcurl 7.88 does not notice that by itself: with the
 * upload paused it sees the end of the connection only when it sends
 * again (curl issue 11769, fixed in 8.8), and a watch that sends nothing
 * for a while (its heartbeats left to the keepalive stream) would sit on
 * a dead connection. The connection is known when it is the handle's
 * only one (CURLINFO_ACTIVESOCKET says nothing during a transfer).
 * Everything curl read was delivered before this is asked, so an orderly
 * end with nothing left to read is the end of the stream. Returns 0 (open
 * or not known), EPIPE (closed by the server) or the socket's error (a
 * reset, a TCP keepalive timeout).
 */
static int
peer_closed(cluster__http *h)
{
	char c;
	ssize_t n;

	if(h->n_socks != 1 || h->sock == CURL_SOCKET_BAD)
	{
		return 0;
	}
	n = recv(h->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if(n == 0)
	{
		return EPIPE;
	}
	return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR ? errno : 0;
}

/* Whether cancel (sticky) or an interrupt since gen0 ends the transfer. */
static int
stopped_by_caller(cluster__http *h, unsigned long gen0)
{
	return __atomic_load_n(&h->cancelled, __ATOMIC_SEQ_CST) || __atomic_load_n(&h->interrupts, __ATOMIC_SEQ_CST) != gen0;
}

/* A stream's tick, if it has one: lowers *wait to what it asks for;
 * returns non-zero (the stream stopped, as success) on CLUSTER__HTTP_STOP. */
static int
run_tick(cluster__http *h, cluster__http_tick_cb tick, void *ctx, int *wait)
{
	int64_t t = tick ? tick(ctx) : -1;

	if(t == CLUSTER__HTTP_STOP)
	{
		h->ls.stopped = 1;
		return 1;
	}
	if(t >= 0 && t < *wait)
	{
		*wait = (int) t;
	}
	return 0;
}

/* The limits of a transfer that started at start: ETIMEDOUT once one has
 * passed, else 0 with *wait lowered to the time left to the nearest. */
static int
limits(cluster__http *h, int64_t start, int idle_ms, int first_line_ms, int total_ms, int *wait)
{
	int64_t now = cluster__now_ms(), end[3] = { INT64_MAX, INT64_MAX, INT64_MAX };
	int i;

	if(idle_ms > 0)
	{
		end[0] = h->last_data_ms + idle_ms;
	}
	if(first_line_ms > 0 && h->streaming && !h->ls.lines)
	{
		end[1] = start + first_line_ms;
	}
	if(total_ms > 0)
	{
		end[2] = start + total_ms;
	}
	for(i = 0; i < 3; i++)
	{
		if(end[i] <= now)
		{
			return ETIMEDOUT;
		}
		if(end[i] - now < *wait)
		{
			*wait = (int) (end[i] - now);
		}
	}
	return 0;
}

/*
 * Drive one transfer to its end. Waits in curl_multi_poll() so that a
 * cancel or interrupt from another thread (curl_multi_wakeup) is seen at
 * once; the idle / first-line / total limits are enforced here because
 * libcurl has no notion of them for a stream. A stream's lines are
 * delivered here, between turns of libcurl, and its tick runs here too.
 */
static int
perform(cluster__http *h, int idle_ms, int first_line_ms, int total_ms, cluster__http_tick_cb tick, long *status, CURLcode *ccout, int keep)
{
	unsigned long gen0 = __atomic_load_n(&h->interrupts, __ATOMIC_SEQ_CST);
	int64_t start = cluster__now_ms();
	CURLcode cc = CURLE_OK;
	int running = 1, done = 0, r = 0;

	*status = 0;
	*ccout = CURLE_OK;
	if(__atomic_load_n(&h->cancelled, __ATOMIC_SEQ_CST))
	{
		return ECANCELED;
	}
	if(curl_multi_add_handle(h->multi, h->easy) != CURLM_OK)
	{
		return EIO;
	}
	h->last_data_ms = start;
	while(!done)
	{
		CURLMsg *msg;
		int q, closed, wait = 1000;

		if(stopped_by_caller(h, gen0))
		{
			r = ECANCELED;
			break;
		}
		if(curl_multi_perform(h->multi, &running) != CURLM_OK)
		{
			r = EIO;
			break;
		}
		while((msg = curl_multi_info_read(h->multi, &q)))
		{
			if(msg->msg == CURLMSG_DONE)
			{
				cc = msg->data.result;
				done = 1;
			}
		}
		if(h->streaming)
		{
			if(!h->xfer_err)
			{
				h->xfer_err = deliver_lines(h);
			}
			if(h->xfer_err || h->ls.stopped)
			{
				/* a stop request ends the transfer (reported as success) */
				done = 1;
				break;
			}
		}
		if(done || !running)
		{
			done = 1;
			break;
		}
		if(h->duplex && h->upload_paused && (closed = peer_closed(h)))
		{
			snprintf(h->error, sizeof(h->error), "%s: %s", h->endpoints[h->cur], closed == EPIPE ? "the server closed the connection" : strerror(closed));
			r = EIO;
			break;
		}
		if(run_tick(h, tick, h->ctx, &wait))
		{
			break;
		}
		if(h->duplex && h->upload_paused && (h->out_len > h->out_off || h->out_eof))
		{
			h->upload_paused = 0;
			curl_easy_pause(h->easy, CURLPAUSE_CONT);
			wait = 0;
		}
		if((r = limits(h, start, idle_ms, first_line_ms, total_ms, &wait)))
		{
			break;
		}
		if(curl_multi_poll(h->multi, NULL, 0, wait, NULL) != CURLM_OK)
		{
			r = EIO;
			break;
		}
	}
	curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, status);
	if(!keep || r || h->xfer_err || cc != CURLE_OK)
	{
		curl_multi_remove_handle(h->multi, h->easy);
	}
	*ccout = cc;
	if(r)
	{
		return r;
	}
	if(h->xfer_err)
	{
		return h->xfer_err;
	}
	if(h->streaming && h->ls.stopped)
	{
		return 0;
	}
	return cc == CURLE_OK ? 0 : transfer_error(h, cc);
}

int
cluster__http_request(cluster__http *h, const char *method, const char *path, const char *content_type, const char *body, cluster__http_response *resp)
{
	size_t attempt;
	int r = EIO;

	memset(resp, 0, sizeof(*resp));
	for(attempt = 0; attempt < h->n_endpoints; attempt++)
	{
		struct curl_slist *hdrs = NULL;
		CURLcode cc;
		long status = 0;

		r = setup(h, method, path, content_type, body, 0, 0, &hdrs);
		if(r)
		{
			return r;
		}
		r = perform(h, 0, 0, 0, NULL, &status, &cc, 0);
		curl_slist_free_all(hdrs);
		if(r == ECANCELED || r == ENOMEM)
		{
			return r;
		}
		if(!r)
		{
			if(status < 500 || attempt + 1 == h->n_endpoints)
			{
				resp->status = status;
				resp->len = h->len;
				resp->body = malloc(h->len + 1);
				if(!resp->body)
				{
					return ENOMEM;
				}
				if(h->len)
				{
					memcpy(resp->body, h->body, h->len);
				}
				resp->body[h->len] = 0;
				resp->etcd_index = h->etcd_index;
				h->etcd_index = NULL;
				h->len = 0;
				trim(&h->body, &h->cap, 0);
				return 0;
			}
			if(http_verbose(h) && h->c)
			{
				cluster__log(h->c, LOG_DEBUG, "libcluster: http: %s%s answered %ld; trying the next endpoint\n", h->endpoints[h->cur], path, status);
			}
		}
		else if(http_verbose(h) && h->c)
		{
			cluster__log(h->c, LOG_DEBUG, "libcluster: http: %s%s failed: %s; trying the next endpoint\n", h->endpoints[h->cur], path,
				cluster__http_error(h, r));
		}
		cluster__http_next_endpoint(h);
	}
	return r ? r : EIO;
}

/* The body bytes of a raw stream's answer, to the stream's buffer. */
static int
raw_body(void *ud, const char *data, size_t len)
{
	cluster__http *h = ud;

	if(on_write((char *) data, 1, len, h) != len)
	{
		return h->xfer_err ? h->xfer_err : EIO;
	}
	return 0;
}

/* The request head of a raw stream, queued before its first chunk:
 * the endpoint's host and base path, and the headers libcurl would send. */
static int
raw_head(cluster__http *h, const char *path, const struct curl_slist *hdrs)
{
	const char *ep = h->endpoints[h->cur] + 7; /* after "http://" */
	const char *slash = strchr(ep, '/');
	size_t host = slash ? (size_t) (slash - ep) : strlen(ep);
	char line[HTTP_MAX_URL + 64];
	int n;

	n = snprintf(line, sizeof(line), "POST %s%s HTTP/1.1\r\nHost: %.*s\r\n", slash ? slash : "", path, (int) host, ep);
	if(n < 0 || (size_t) n >= sizeof(line))
	{
		return EINVAL;
	}
	if(out_append(h, line, (size_t) n))
	{
		return ENOMEM;
	}
	for(; hdrs; hdrs = hdrs->next)
	{
		if(out_append(h, hdrs->data, strlen(hdrs->data)) || out_append(h, "\r\n", 2))
		{
			return ENOMEM;
		}
	}
	return out_append(h, "\r\n", 2);
}

/* A close-on-exec copy of a socket. dup() rather than F_DUPFD_CLOEXEC:
 * ThreadSanitizer knows that dup() makes a descriptor, not that fcntl()
 * does, and took each later use of a copy whose number had been used in
 * another thread (cluster-gateway's libevent) for a race. The dup() itself
 * is still checked against that number's last use: the one suppression in
 * tests/tsan.supp. The cost: a fork and exec in another thread between
 * the two calls here inherits the copy. */
static int
raw_dup(int sock)
{
	int fd = dup(sock);

	if(fd >= 0)
	{
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	return fd;
}

/*
 * The connection of a raw stream, as a descriptor of our own (close-on-
 * exec). The idle connection libcurl keeps from this handle's last request
 * to the same endpoint is shared (a duplicate of its socket), as libcurl
 * would reuse it for the stream: a member's join and its keepalive stream
 * are one connection. libcurl's copy is closed by libcurl once it finds the
 * connection ended (etcd's gateway ends it after a duplex exchange; a raw
 * stream that did not end cleanly shuts it down). Without one, libcurl
 * makes a connection (CURLOPT_CONNECT_ONLY: its resolve, connect timeout
 * and error words) and hands it over. Returns the descriptor, or -1 with
 * *r set.
 */
static int
raw_connect(cluster__http *h, int total_ms, long *status, int *r)
{
	curl_socket_t sock = CURL_SOCKET_BAD;
	CURLcode cc;
	int fd, err;

	if(h->n_socks == 1 && h->sock != CURL_SOCKET_BAD && h->sock_ep == h->cur && !peer_closed(h) && (fd = raw_dup(h->sock)) >= 0)
	{
		return fd;
	}
	curl_easy_setopt(h->easy, CURLOPT_CONNECT_ONLY, 1L);
	if((*r = perform(h, 0, 0, total_ms, NULL, status, &cc, 1)))
	{
		return -1;
	}
	curl_easy_getinfo(h->easy, CURLINFO_ACTIVESOCKET, &sock);
	fd = sock == CURL_SOCKET_BAD ? -1 : raw_dup(sock);
	err = sock == CURL_SOCKET_BAD ? ENOTCONN : errno;
	/* closes libcurl's copy: one made for CONNECT_ONLY is never reused */
	curl_multi_remove_handle(h->multi, h->easy);
	if(fd < 0)
	{
		snprintf(h->error, sizeof(h->error), "%s: the connection is gone (%s)", h->endpoints[h->cur], strerror(err));
		*r = EIO;
	}
	return fd;
}

/* A failed send or receive on a raw stream's connection, named. */
static int
raw_io_error(cluster__http *h, const char *what, int err)
{
	snprintf(h->error, sizeof(h->error), "%s: %s: %s", h->endpoints[h->cur], what, strerror(err));
	return err == ETIMEDOUT ? ETIMEDOUT : EIO;
}

/*
 * A duplex stream over a plain connection, framed here instead of by
 * libcurl. libcurl 7.88 sends a request body that stays open only by
 * pausing its upload, and the first curl_easy_pause() of a handle makes
 * its multi allocate a socket hash of 911 slots (29 kB, heaptrack): most
 * of what a plain member's two threads cost beyond their buffers. The head
 * and the chunks are written here and the answer is read by
 * http1-reader.c, on a connection from raw_connect(). Waits in
 * curl_multi_poll() on the socket, so cancel, interrupt and wake work as
 * in perform(), and the same limits apply. Over https libcurl keeps the
 * stream (HTTP/2 there keeps the connection for the next request, which
 * Go's HTTP/1.1 server never does after a duplex exchange).
 */
static int
raw_stream(cluster__http *h, const char *path, const char *body, const struct curl_slist *hdrs, const cluster__http_stream_opts *o, long *status)
{
	unsigned long gen0 = __atomic_load_n(&h->interrupts, __ATOMIC_SEQ_CST);
	int64_t start;
	cluster__h1 p;
	int r = 0, eof = 0, fd;

	/* the head and the first message, framed, before anything is sent */
	h->out_len = h->out_off = 0;
	if((r = raw_head(h, path, hdrs)) || (body && (r = cluster__http_stream_send(h, body))))
	{
		return r;
	}
	if((fd = raw_connect(h, o->total_timeout_ms, status, &r)) < 0)
	{
		return r;
	}
	*status = 0;
	cluster__h1_init(&p);
	start = h->last_data_ms = cluster__now_ms();
	while(!r)
	{
		struct curl_waitfd wfd;
		char buf[1024];
		ssize_t n;
		int wait = 1000, reads = 0, e = 0;

		if(stopped_by_caller(h, gen0))
		{
			r = ECANCELED;
			break;
		}
		while(h->out_off < h->out_len && (n = send(fd, h->out + h->out_off, h->out_len - h->out_off, MSG_NOSIGNAL | MSG_DONTWAIT)) != 0)
		{
			if(n < 0)
			{
				if(errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				{
					r = raw_io_error(h, "sending", errno);
				}
				break;
			}
			h->out_off += (size_t) n;
		}
		if(h->out_off == h->out_len)
		{
			h->out_off = h->out_len = 0;
			trim(&h->out, &h->out_cap, 0);
		}
		/* what arrived, a bounded amount per turn: the lines are handed
		 * over between turns */
		while(!r && !e && !eof && !cluster__h1_done(&p) && reads++ < 64)
		{
			n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if(n < 0)
			{
				if(errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				{
					r = raw_io_error(h, "receiving", errno);
				}
				break;
			}
			if(!n)
			{
				eof = 1;
				break;
			}
			h->last_data_ms = cluster__now_ms();
			e = cluster__h1_feed(&p, buf, (size_t) n, raw_body, h);
		}
		if(r)
		{
			break;
		}
		if(!h->xfer_err && e == EPROTO && p.error)
		{
			snprintf(h->error, sizeof(h->error), "%s: not an HTTP answer: %s", h->endpoints[h->cur], p.error);
			r = EIO;
			break;
		}
		if(!h->xfer_err)
		{
			h->xfer_err = deliver_lines(h);
		}
		if(h->xfer_err || h->ls.stopped || cluster__h1_done(&p))
		{
			break;
		}
		if(eof)
		{
			if(cluster__h1_eof(&p))
			{
				snprintf(h->error, sizeof(h->error), "%s: %s", h->endpoints[h->cur], p.error);
				r = EIO;
			}
			break;
		}
		if(run_tick(h, o->on_tick, o->ctx, &wait))
		{
			break;
		}
		if((r = limits(h, start, o->idle_timeout_ms, o->first_line_timeout_ms, o->total_timeout_ms, &wait)) || reads > 64)
		{
			/* a limit passed, or more to read at once */
			continue;
		}
		wfd.fd = fd;
		wfd.events = CURL_WAIT_POLLIN | (h->out_off < h->out_len ? CURL_WAIT_POLLOUT : 0);
		wfd.revents = 0;
		if(curl_multi_poll(h->multi, &wfd, 1, wait, NULL) != CURLM_OK)
		{
			r = EIO;
		}
	}
	*status = p.status;
	if(!cluster__h1_done(&p) || h->out_len || !h->out_eof || p.close)
	{
		/* the exchange did not end cleanly, or the server ends the
		 * connection ("Connection: close", as etcd's gateway does after
		 * a duplex exchange): libcurl, which may hold a copy, must not
		 * send its next request there */
		shutdown(fd, SHUT_RDWR);
	}
	close(fd);
	return r ? r : h->xfer_err;
}

int
cluster__http_stream_run(cluster__http *h, const char *path, const char *body, const cluster__http_stream_opts *o, long *status_out)
{
	struct curl_slist *hdrs = NULL;
	CURLcode cc;
	long status = 0;
	int r;

	if(status_out)
	{
		*status_out = 0;
	}
	h->cb = o->on_line;
	h->ctx = o->ctx;
	h->duplex = o->duplex;
	r = setup(h, "POST", path, NULL, body, 1, o->total_timeout_ms, &hdrs);
	if(!r)
	{
		/* a duplex stream over plain HTTP is framed here (raw_stream()) */
		h->raw = o->duplex && !strncmp(h->endpoints[h->cur], "http://", 7) && !h->user;
		if(h->raw)
		{
			r = raw_stream(h, path, body, hdrs, o, &status);
		}
		else
		{
			r = perform(h, o->idle_timeout_ms, o->first_line_timeout_ms, o->total_timeout_ms, o->on_tick, &status, &cc, 0);
		}
		curl_slist_free_all(hdrs);
		if(!r)
		{
			/* the last object may come without its newline (etcd's stream error) */
			cluster__linesplit_finish(&h->ls, h->cb, h->ctx);
		}
		else if(http_verbose(h) && h->c && r != ECANCELED)
		{
			cluster__log(h->c, LOG_DEBUG, "libcluster: http: stream %s%s ended: %s\n", h->endpoints[h->cur], path,
				cluster__http_error(h, r));
		}
	}
	h->streaming = 0;
	h->duplex = 0;
	h->raw = 0;
	h->out_len = h->out_off = 0;
	h->out_eof = 0;
	trim(&h->out, &h->out_cap, 0);
	h->cb = NULL;
	h->ctx = NULL;
	h->ls.len = 0;
	trim(&h->ls.buf, &h->ls.cap, 0);
	if(status_out)
	{
		*status_out = status;
	}
	return r;
}

int
cluster__http_stream_ex(cluster__http *h, const char *path, const char *body, cluster__http_line_cb cb, void *ctx, int idle_timeout_ms, int first_line_timeout_ms, int total_timeout_ms, long *status_out)
{
	cluster__http_stream_opts o;

	memset(&o, 0, sizeof(o));
	o.on_line = cb;
	o.ctx = ctx;
	o.idle_timeout_ms = idle_timeout_ms;
	o.first_line_timeout_ms = first_line_timeout_ms;
	o.total_timeout_ms = total_timeout_ms;
	return cluster__http_stream_run(h, path, body, &o, status_out);
}

int
cluster__http_stream(cluster__http *h, const char *path, const char *body, cluster__http_line_cb cb, void *ctx, int idle_timeout_ms, long *status_out)
{
	return cluster__http_stream_ex(h, path, body, cb, ctx, idle_timeout_ms, 0, 0, status_out);
}
