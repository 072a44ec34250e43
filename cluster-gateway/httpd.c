/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway: the HTTP/1.1 server under the endpoints (http.c), on
 * the loop thread. Requests are parsed by http-parser (Debian's
 * libhttp-parser, the parser Node.js used for a decade); this file owns
 * the sockets: accept, read, hand each complete request to
 * gw_http_handle(), write the answers, keep-alive and pipelining, limits
 * and timeouts.
 *
 * Why not evhttp: under load the gateway's own work was about 1 % of its
 * CPU and evhttp's objects (a request, two header lists and evbuffers per
 * request, an ioctl per read, a change of epoll interest per answer) most
 * of the rest. Here a connection is one small object with a read event
 * that stays armed: a request costs one recv() and one send(), and an
 * idle connection holds no buffer.
 *
 * Limits: a request line plus headers over MAX_HEADERS_SIZE is refused
 * with 431, a body over MAX_BODY_SIZE with 413, anything http-parser
 * rejects with 400; each refusal closes the connection. A connection idle
 * (or trickling a request) for HTTP_TIMEOUT_S, or not reading its answers
 * for as long, is closed. Pipelined requests are answered in order; while
 * OUT_HIGH bytes of answers wait for a client that does not read, its
 * further requests are not parsed.
 */
#include "gateway.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <http_parser.h>

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* No endpoint takes a large body; the header limit leaves room for
 * cookies. */
#define MAX_HEADERS_SIZE 8192
#define MAX_BODY_SIZE    1024
/* a limit as text, for the refusals' messages */
#define STR_(x)        #x
#define STR(x)         STR_(x)
#define HTTP_TIMEOUT_S 10
/* what one recv() takes (one static buffer: one loop thread) */
#define READ_CHUNK (64 * 1024)
/* answers waiting beyond this stop the parsing of pipelined requests */
#define OUT_HIGH (256 * 1024)
/* after an answer that closes the connection, what the client still sends
 * is read and dropped for this long (at most LINGER_MAX bytes), so that
 * closing with unread bytes does not reset the answer away */
#define LINGER_MS  2000
#define LINGER_MAX (256 * 1024)

struct gw_http_conn
{
	struct gw *gw;
	struct gw_http_conn *prev, *next;
	evutil_socket_t fd;
	struct event rd, wr;
	http_parser parser;
	/* the request being read: its target, a NUL, then its body */
	char *req;
	size_t req_len, req_cap;
	/* bytes of target (0 until the headers are complete) */
	size_t target_len;
	/* request line and header bytes so far */
	size_t header_bytes;
	/* answers not yet written: out[out_off..out_len) */
	char *out;
	size_t out_len, out_off, out_cap;
	/* received bytes not parsed yet (kept while answers wait) */
	char *held;
	size_t held_len;
	/* bytes dropped while lingering */
	size_t lingered;
	/* the status to refuse the current request with (413, 431), or 0 */
	int refuse;
	/* matching the Expect header: the field so far is "expect", its
	 * value so far "100-continue" */
	size_t field_len, value_len;
	unsigned field_is_expect : 1, value_is_continue : 1, in_value : 1;
	unsigned expect_continue : 1;
	/* a whole request is parsed and waits to be answered */
	unsigned complete : 1;
	unsigned keep_alive : 1;
	/* close once the answers are written */
	unsigned close_after : 1;
	unsigned writing : 1, reading : 1, lingering : 1;
};

static char scratch[READ_CHUNK];
static const char expect_name[] = "expect", continue_value[] = "100-continue";
static const struct timeval *idle_timeout, *linger_timeout;
static struct event *accept_resume;

static const char *
reason_phrase(int code)
{
	switch(code)
	{
	case 100: return "Continue";
	case 200: return "OK";
	case 202: return "Accepted";
	case 307: return "Temporary Redirect";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	}
	return code < 300 ? "OK" : code < 400 ? "Redirect" :
						   code < 500     ? "Client Error" :
											"Server Error";
}

/* The Date header's value, formatted once a second. */
static const char *
http_date(void)
{
	static time_t cached = -1;
	static char text[64];
	time_t now = time(NULL);
	struct tm tm;

	if(now != cached && gmtime_r(&now, &tm))
	{
		static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
		static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

		/* not strftime: the names must not follow the locale */
		snprintf(text, sizeof(text), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
			tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
		cached = now;
	}
	return text;
}

/* Room for len more bytes in *buf (capacity *cap, used *used). */
static int
reserve(char **buf, size_t *cap, size_t used, size_t len)
{
	size_t want = *cap ? *cap : 1024;
	char *p;

	if(used + len <= *cap)
	{
		return 0;
	}
	while(want < used + len)
	{
		want *= 2;
	}
	p = realloc(*buf, want);
	if(!p)
	{
		return -1;
	}
	*buf = p;
	*cap = want;
	return 0;
}

/* Append len bytes to *buf (capacity *cap, used *used). 0 or -1. */
static int
append(char **buf, size_t *cap, size_t *used, const void *data, size_t len)
{
	if(reserve(buf, cap, *used, len))
	{
		return -1;
	}
	memcpy(*buf + *used, data, len);
	*used += len;
	return 0;
}

static int
out_add(struct gw_http_conn *c, const void *data, size_t len)
{
	return append(&c->out, &c->out_cap, &c->out_len, data, len);
}

static int __attribute__((format(printf, 2, 3)))
out_printf(struct gw_http_conn *c, const char *format, ...)
{
	va_list ap;
	int n;

	for(;;)
	{
		size_t room = c->out_cap - c->out_len;

		va_start(ap, format);
		n = vsnprintf(c->out ? c->out + c->out_len : NULL, room, format, ap);
		va_end(ap);
		if(n < 0)
		{
			return -1;
		}
		if((size_t) n < room)
		{
			c->out_len += (size_t) n;
			return 0;
		}
		if(reserve(&c->out, &c->out_cap, c->out_len, (size_t) n + 1))
		{
			return -1;
		}
	}
}

static void
conn_free(struct gw_http_conn *c)
{
	struct gw *gw = c->gw;

	event_del(&c->rd);
	event_del(&c->wr);
	evutil_closesocket(c->fd);
	if(c->prev)
	{
		c->prev->next = c->next;
	}
	else
	{
		gw->http_conns = c->next;
	}
	if(c->next)
	{
		c->next->prev = c->prev;
	}
	free(c->req);
	free(c->out);
	free(c->held);
	free(c);
}

void
gw_http_respond(struct gw_http_request *r, int code, const char *content_type, const char *body, size_t len)
{
	struct gw_http_conn *c = r->conn;
	size_t mark = c->out_len;
	int err;

	r->answered = 1;
	if(code >= 400)
	{
		c->gw->errors++;
	}
	if(r->target && gw_log_on(LOG_DEBUG))
	{
		/* an endpoint's answer (a refusal has no target) */
		char shown[4 * 200 + 4];

		gw_log(LOG_DEBUG, "%s %s -> %d", r->method_name, cli_escape(shown, sizeof(shown), r->target), code);
	}
	/* no-store: a redirect or a member list is true only now */
	err = out_printf(c, "HTTP/1.1 %d %s\r\nDate: %s\r\nCache-Control: no-store\r\nContent-Length: %zu\r\n", code, reason_phrase(code), http_date(),
		len);
	if(!err && content_type)
	{
		err = out_printf(c, "Content-Type: %s\r\n", content_type);
	}
	if(!err && r->location)
	{
		err = out_printf(c, "Location: %s\r\n", r->location);
	}
	if(!err && r->allow)
	{
		err = out_printf(c, "Allow: %s\r\n", r->allow);
	}
	if(!err && !c->keep_alive)
	{
		err = out_add(c, "Connection: close\r\n", 19);
	}
	else if(!err && c->parser.http_major == 1 && c->parser.http_minor == 0)
	{
		err = out_add(c, "Connection: keep-alive\r\n", 24);
	}
	err = err || out_add(c, "\r\n", 2);
	/* HEAD: the headers of the GET answer, no body */
	if(!err && len && r->method != GW_HTTP_HEAD)
	{
		err = out_add(c, body, len);
	}
	if(err)
	{
		/* no memory for the answer: drop it and the connection */
		c->out_len = mark;
		c->keep_alive = 0;
		c->close_after = 1;
		gw_log(LOG_ERR, "cannot answer an HTTP request: out of memory");
	}
}

/* The request's method as the endpoints see it (also for a refusal, where
 * the parser may not have read one: HEAD then only drops the body). */
static void
request_method(struct gw_http_conn *c, struct gw_http_request *r)
{
	enum http_method m = (enum http_method) c->parser.method;

	r->method_name = http_method_str(m);
	r->method = m == HTTP_GET ? GW_HTTP_GET : m == HTTP_HEAD ? GW_HTTP_HEAD :
										  m == HTTP_POST     ? GW_HTTP_POST :
															   GW_HTTP_OTHER;
}

/* A refusal by the server itself (before any handler): a JSON error, and
 * the connection closes after it. */
static void
refuse(struct gw_http_conn *c, int code, const char *message)
{
	struct gw_http_request r;
	char body[300];
	int n;

	memset(&r, 0, sizeof(r));
	r.conn = c;
	request_method(c, &r);
	c->keep_alive = 0;
	c->close_after = 1;
	n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", message);
	gw_http_respond(&r, code, "application/json", body, n > 0 && (size_t) n < sizeof(body) ? (size_t) n : 0);
}

static int
req_add(struct gw_http_conn *c, const char *at, size_t len)
{
	return append(&c->req, &c->req_cap, &c->req_len, at, len);
}

/* The request line and headers together stay under MAX_HEADERS_SIZE. */
static int
count_header_bytes(struct gw_http_conn *c, size_t len)
{
	c->header_bytes += len;
	if(c->header_bytes > MAX_HEADERS_SIZE)
	{
		c->refuse = 431;
		return -1;
	}
	return 0;
}

static int
on_message_begin(http_parser *p)
{
	struct gw_http_conn *c = p->data;

	c->req_len = c->target_len = c->header_bytes = 0;
	c->field_len = c->value_len = 0;
	c->field_is_expect = c->value_is_continue = c->in_value = c->expect_continue = 0;
	c->refuse = 0;
	return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
	struct gw_http_conn *c = p->data;

	return count_header_bytes(c, len) || req_add(c, at, len);
}

/* A header name or value arrives in pieces: does want (matched so far
 * for its first done bytes) still match after the piece at[0..len)? */
static unsigned
still_matches(unsigned so_far, const char *want, size_t done, const char *at, size_t len)
{
	return so_far && done + len <= strlen(want) && !strncasecmp(at, want + done, len);
}

/* The header just read was "Expect: 100-continue". */
static void
header_end(struct gw_http_conn *c)
{
	if(c->in_value && c->field_is_expect && c->field_len == sizeof(expect_name) - 1 && c->value_is_continue && c->value_len == sizeof(continue_value) - 1)
	{
		c->expect_continue = 1;
	}
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
	struct gw_http_conn *c = p->data;

	if(c->in_value || !c->field_len)
	{
		header_end(c);
		c->in_value = 0;
		c->field_len = 0;
		c->field_is_expect = 1;
	}
	c->field_is_expect = still_matches(c->field_is_expect, expect_name, c->field_len, at, len);
	c->field_len += len;
	return count_header_bytes(c, len);
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
	struct gw_http_conn *c = p->data;

	if(!c->in_value)
	{
		c->in_value = 1;
		c->value_len = 0;
		c->value_is_continue = 1;
	}
	c->value_is_continue = still_matches(c->value_is_continue, continue_value, c->value_len, at, len);
	c->value_len += len;
	return count_header_bytes(c, len);
}

static int
on_headers_complete(http_parser *p)
{
	struct gw_http_conn *c = p->data;

	header_end(c);
	/* the target, NUL-terminated; the body follows */
	if(req_add(c, "", 1))
	{
		return -1;
	}
	c->target_len = c->req_len - 1;
	if((p->flags & F_CHUNKED) == 0 && p->content_length > MAX_BODY_SIZE && p->content_length != ULLONG_MAX)
	{
		c->refuse = 413;
		return -1;
	}
	if(c->expect_continue && ((p->flags & F_CHUNKED) || (p->content_length && p->content_length != ULLONG_MAX)))
	{
		/* the client waits for this before it sends the body */
		return out_add(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	}
	return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
	struct gw_http_conn *c = p->data;

	if(c->req_len - c->target_len - 1 + len > MAX_BODY_SIZE)
	{
		c->refuse = 413;
		return -1;
	}
	return req_add(c, at, len);
}

/* One request at a time: the parser stops after each, so that it is
 * answered before the next is read. */
static int
on_message_complete(http_parser *p)
{
	struct gw_http_conn *c = p->data;

	c->complete = 1;
	c->keep_alive = http_should_keep_alive(p) ? 1 : 0;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* Hand the parsed request to the endpoints. */
static void
dispatch(struct gw_http_conn *c)
{
	static char parts[2 * (MAX_HEADERS_SIZE + 1)];
	struct http_parser_url u;
	struct gw_http_request r;
	const char *target = c->req;
	size_t n = c->target_len;

	memset(&r, 0, sizeof(r));
	r.conn = c;
	request_method(c, &r);
	r.target = target;
	r.body = c->req + c->target_len + 1;
	r.body_len = c->req_len - c->target_len - 1;
	http_parser_url_init(&u);
	if(http_parser_parse_url(target, n, c->parser.method == HTTP_CONNECT, &u) == 0)
	{
		/* path and query as sent (not decoded), each NUL-terminated */
		size_t plen = u.field_set & (1 << UF_PATH) ? u.field_data[UF_PATH].len : 0;

		memcpy(parts, target + u.field_data[UF_PATH].off, plen);
		parts[plen] = '\0';
		r.path = parts;
		if(u.field_set & (1 << UF_QUERY))
		{
			memcpy(parts + plen + 1, target + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
			parts[plen + 1 + u.field_data[UF_QUERY].len] = '\0';
			r.query = parts + plen + 1;
		}
	}
	gw_http_handle(c->gw, &r);
	if(!r.answered)
	{
		refuse(c, 500, "the request was not answered");
	}
	/* an idle connection holds no buffer: a small allocation per
	 * request costs less than 2 kB held by each of 10,000 idle
	 * keep-alive connections (flush() frees the answers' buffer) */
	free(c->req);
	c->req = NULL;
	c->req_cap = 0;
}

/* Parse and answer what data holds, one request at a time, until it is
 * used up, the connection is to close, or too much waits to be written.
 * Returns the bytes used. */
static size_t
parse(struct gw_http_conn *c, const char *data, size_t len)
{
	size_t used = 0;

	while(used < len && !c->close_after && c->out_len - c->out_off < OUT_HIGH)
	{
		size_t n = http_parser_execute(&c->parser, &settings, data + used, len - used);
		enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

		used += n;
		if(c->complete)
		{
			c->complete = 0;
			http_parser_pause(&c->parser, 0);
			dispatch(c);
			if(c->parser.upgrade || !c->keep_alive)
			{
				/* an upgrade is not followed; nothing after it is HTTP */
				c->close_after = 1;
			}
			continue;
		}
		if(e != HPE_OK)
		{
			if(c->refuse == 413)
			{
				refuse(c, 413, "the request body is larger than " STR(MAX_BODY_SIZE) " bytes");
			}
			else if(c->refuse == 431 || e == HPE_HEADER_OVERFLOW)
			{
				refuse(c, 431, "the request line and headers are larger than " STR(MAX_HEADERS_SIZE) " bytes");
			}
			else if(e == HPE_INVALID_URL)
			{
				refuse(c, 400, "malformed request: the request target (path or query) has a byte that is not allowed in a URL");
			}
			else if(e == HPE_CB_headers_complete || e == HPE_CB_url || e == HPE_CB_body)
			{
				refuse(c, 500, "out of memory");
			}
			else
			{
				char message[200];

				snprintf(message, sizeof(message), "malformed request: %s", http_errno_description(e));
				refuse(c, 400, message);
			}
			break;
		}
		if(n == 0)
		{
			break;
		}
	}
	return used;
}

static void conn_events(struct gw_http_conn *c);

/* Write what waits. -1 when the connection broke (and is freed). */
static int
flush(struct gw_http_conn *c)
{
	while(c->out_off < c->out_len)
	{
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if(n < 0)
		{
			if(errno == EINTR)
			{
				continue;
			}
			if(errno == EAGAIN || errno == EWOULDBLOCK)
			{
				return 0;
			}
			conn_free(c);
			return -1;
		}
		c->out_off += (size_t) n;
	}
	c->out_off = c->out_len = 0;
	free(c->out);
	c->out = NULL;
	c->out_cap = 0;
	return 0;
}

/* Keep received bytes to parse later. -1 (and the connection freed)
 * when out of memory. */
static int
hold(struct gw_http_conn *c, const char *data, size_t len)
{
	char *p = realloc(c->held, c->held_len + len);

	if(!p)
	{
		conn_free(c);
		return -1;
	}
	memcpy(p + c->held_len, data, len);
	c->held = p;
	c->held_len += len;
	return 0;
}

/* Parse data (and what was held), write the answers, and arm the events
 * for what is left. The connection may be freed. */
static void
progress(struct gw_http_conn *c, const char *data, size_t len)
{
	if(c->held_len && len)
	{
		/* (not expected: reading stops while bytes are held) */
		if(hold(c, data, len))
		{
			return;
		}
		len = 0;
	}
	for(;;)
	{
		if(c->held_len)
		{
			size_t used = parse(c, c->held, c->held_len);

			memmove(c->held, c->held + used, c->held_len - used);
			c->held_len -= used;
		}
		if(!c->held_len && len)
		{
			size_t used = parse(c, data, len);

			data += used;
			len -= used;
			/* too much waits to be written: keep the rest */
			if(len && !c->close_after && hold(c, data, len))
			{
				return;
			}
			len = 0;
		}
		if(c->close_after)
		{
			free(c->held);
			c->held = NULL;
			c->held_len = 0;
		}
		if(flush(c))
		{
			return;
		}
		if(c->out_len || !c->held_len)
		{
			break;
		}
	}
	if(!c->held_len)
	{
		free(c->held);
		c->held = NULL;
	}
	conn_events(c);
}

/* Arm the read or the write event for the connection's state: reading
 * while nothing waits to be written, writing while something does. */
static void
conn_events(struct gw_http_conn *c)
{
	if(c->out_len)
	{
		if(c->reading)
		{
			event_del(&c->rd);
			c->reading = 0;
		}
		if(!c->writing)
		{
			event_add(&c->wr, idle_timeout);
			c->writing = 1;
		}
		return;
	}
	if(c->writing)
	{
		event_del(&c->wr);
		c->writing = 0;
	}
	if(c->close_after && !c->lingering)
	{
		/* answered; the client's further bytes are read and dropped
		 * until it closes */
		shutdown(c->fd, SHUT_WR);
		c->lingering = 1;
		if(c->reading)
		{
			event_del(&c->rd);
		}
		event_add(&c->rd, linger_timeout);
		c->reading = 1;
		return;
	}
	if(!c->reading)
	{
		event_add(&c->rd, idle_timeout);
		c->reading = 1;
	}
}

static void
on_read(evutil_socket_t fd, short what, void *arg)
{
	struct gw_http_conn *c = arg;
	ssize_t n;

	if(what & EV_TIMEOUT)
	{
		/* idle too long, or lingered long enough */
		conn_free(c);
		return;
	}
	n = recv(fd, scratch, sizeof(scratch), 0);
	if(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
	{
		return;
	}
	if(n <= 0 || c->lingering)
	{
		if(n <= 0 || (c->lingered += (size_t) n) > LINGER_MAX)
		{
			conn_free(c);
		}
		return;
	}
	progress(c, scratch, (size_t) n);
}

static void
on_write(evutil_socket_t fd, short what, void *arg)
{
	struct gw_http_conn *c = arg;

	(void) fd;
	if(what & EV_TIMEOUT)
	{
		/* the client has not read its answers for HTTP_TIMEOUT_S */
		conn_free(c);
		return;
	}
	if(flush(c) == 0)
	{
		if(!c->out_len && c->held_len)
		{
			progress(c, NULL, 0);
		}
		else
		{
			conn_events(c);
		}
	}
}

int
gw_http_adopt(struct gw *gw, evutil_socket_t fd)
{
	struct gw_http_conn *c = calloc(1, sizeof(*c));

	if(!c || event_assign(&c->rd, gw->base, fd, EV_READ | EV_PERSIST, on_read, c) ||
		event_assign(&c->wr, gw->base, fd, EV_WRITE | EV_PERSIST, on_write, c))
	{
		gw_log(LOG_ERR, "cannot take an HTTP client: out of memory");
		evutil_closesocket(fd);
		free(c);
		return -1;
	}
	c->gw = gw;
	c->fd = fd;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->next = gw->http_conns;
	if(c->next)
	{
		c->next->prev = c;
	}
	gw->http_conns = c;
	event_add(&c->rd, idle_timeout);
	c->reading = 1;
	return 0;
}

static void
on_accept(struct evconnlistener *listener, evutil_socket_t fd, struct sockaddr *sa, int socklen, void *arg)
{
	int one = 1;

	(void) listener;
	(void) sa;
	(void) socklen;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	gw_http_adopt(arg, fd);
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct gw *gw = arg;

	(void) fd;
	(void) what;
	if(gw->http_listener)
	{
		evconnlistener_enable(gw->http_listener);
	}
}

static void
on_accept_error(struct evconnlistener *listener, void *arg)
{
	(void) arg;
	gw_accept_pause(listener, accept_resume, "HTTP");
}

int
gw_http_init(struct gw *gw)
{
	struct timeval idle = { HTTP_TIMEOUT_S, 0 }, linger = { LINGER_MS / 1000, (LINGER_MS % 1000) * 1000 };

	/* every connection's timer is one of two durations: libevent keeps
	 * such timers in a queue instead of its heap */
	idle_timeout = event_base_init_common_timeout(gw->base, &idle);
	linger_timeout = event_base_init_common_timeout(gw->base, &linger);
	accept_resume = evtimer_new(gw->base, on_resume, gw);
	if(!idle_timeout || !linger_timeout || !accept_resume)
	{
		gw_log(LOG_ERR, "cannot create the HTTP server: out of memory");
		return -1;
	}
	return 0;
}

int
gw_http_start(struct gw *gw)
{
	const struct gw_options *o = gw->opts;

	if(gw_http_init(gw))
	{
		return -1;
	}
	gw->http_listener = gw_listen(gw, "HTTP", o->http_host, o->http_port, on_accept);
	if(!gw->http_listener)
	{
		return -1;
	}
	evconnlistener_set_error_cb(gw->http_listener, on_accept_error);
	return 0;
}

void
gw_http_stop_accepting(struct gw *gw)
{
	if(gw->http_listener)
	{
		evconnlistener_free(gw->http_listener);
		gw->http_listener = NULL;
	}
}

void
gw_http_free(struct gw *gw)
{
	gw_http_stop_accepting(gw);
	while(gw->http_conns)
	{
		conn_free(gw->http_conns);
	}
	if(accept_resume)
	{
		event_free(accept_resume);
		accept_resume = NULL;
	}
}

/* The bound address, read back from the socket: with --http ...:0 only
 * the kernel knows the port. */
int
gw_http_bound(struct gw *gw, char *out, size_t size)
{
	return gw->http_listener ? gw_socket_address(evconnlistener_get_fd(gw->http_listener), out, size) : -1;
}
