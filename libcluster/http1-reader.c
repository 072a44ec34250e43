/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP/1.1 response reader (see http1-reader.h). Pure: no I/O, no
 * locks, no allocation. A hostile server cannot make it grow: head lines
 * are cut to a fixed buffer and the head (interim answers and trailers
 * included) is bounded in total.
 */
#include "http1-reader.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* The most head bytes (status lines, headers, chunk trailers) one
 * response may carry: a server that sends headers for ever is an error,
 * not a stream that stays alive. */
#define H1_MAX_HEAD 65536u

/* The largest chunk or body length accepted (2^60): no overflow when
 * adding it to a count. */
#define H1_MAX_SIZE (UINT64_C(1) << 60)

/* The longest chunk-size line (a size and its extensions). */
#define H1_MAX_LINE 4096u

enum
{
	H1_STATUS,   /* a status line (leading empty lines are skipped) */
	H1_HEADER,   /* a header line, or the empty line that ends the head */
	H1_SIZE,     /* a chunk-size line */
	H1_DATA,     /* chunk data: remaining bytes */
	H1_DATA_END, /* the CRLF after chunk data */
	H1_TRAILER,  /* trailer lines after the last chunk */
	H1_LENGTH,   /* a body of Content-Length: remaining bytes */
	H1_TO_EOF,   /* a body that ends with the connection */
	H1_DONE
};

void
cluster__h1_init(cluster__h1 *p)
{
	memset(p, 0, sizeof(*p));
	p->state = H1_STATUS;
}

int
cluster__h1_done(const cluster__h1 *p)
{
	return p->state == H1_DONE;
}

int
cluster__h1_head_done(const cluster__h1 *p)
{
	return p->state != H1_STATUS && p->state != H1_HEADER;
}

static int
h1_fail(cluster__h1 *p, const char *why)
{
	p->error = why;
	return EPROTO;
}

/* The value of "name: value" if the line's name is name (any case), with
 * blanks around it skipped; NULL if it is another header. */
static const char *
h1_header(const char *line, const char *name)
{
	size_t n = strlen(name);

	if(strncasecmp(line, name, n) || line[n] != ':')
	{
		return NULL;
	}
	line += n + 1;
	while(*line == ' ' || *line == '\t')
	{
		line++;
	}
	return line;
}

/* Whether the comma-separated list v holds token (any case). */
static int
h1_has_token(const char *v, const char *token)
{
	size_t n = strlen(token);

	while(*v)
	{
		while(*v == ' ' || *v == '\t' || *v == ',')
		{
			v++;
		}
		if(!strncasecmp(v, token, n) && (!v[n] || v[n] == ',' || v[n] == ' ' || v[n] == '\t' || v[n] == ';'))
		{
			return 1;
		}
		while(*v && *v != ',')
		{
			v++;
		}
	}
	return 0;
}

/* "HTTP/1.x NNN reason": the status, or -1. */
static int
h1_status_line(const char *l)
{
	if(strncmp(l, "HTTP/1.", 7) || l[7] < '0' || l[7] > '9' || l[8] != ' ')
	{
		return -1;
	}
	l += 9;
	if(l[0] < '1' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9' || (l[3] && l[3] != ' '))
	{
		return -1;
	}
	return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
}

/* The end of the head: where the body starts, by its framing. */
static void
h1_head_end(cluster__h1 *p)
{
	if(p->status < 200)
	{
		/* an interim answer ("100 Continue"): the real one follows */
		p->status = 0;
		p->chunked = p->has_length = p->close = 0;
		p->remaining = 0;
		p->state = H1_STATUS;
	}
	else if(p->status == 204 || p->status == 304)
	{
		p->state = H1_DONE;
	}
	else if(p->chunked)
	{
		p->state = H1_SIZE;
	}
	else if(p->has_length)
	{
		p->state = p->remaining ? H1_LENGTH : H1_DONE;
	}
	else
	{
		p->state = H1_TO_EOF;
	}
}

static int
h1_header_line(cluster__h1 *p, const char *l)
{
	const char *v;

	if(!*l)
	{
		h1_head_end(p);
		return 0;
	}
	if(*l == ' ' || *l == '\t')
	{
		/* an obsolete folded continuation: of no header we read */
		return 0;
	}
	if(!strchr(l, ':'))
	{
		return h1_fail(p, "a header line without a colon");
	}
	if((v = h1_header(l, "transfer-encoding")))
	{
		p->chunked = h1_has_token(v, "chunked");
	}
	else if((v = h1_header(l, "connection")))
	{
		p->close |= h1_has_token(v, "close");
	}
	else if((v = h1_header(l, "content-length")))
	{
		uint64_t n = 0;
		const char *d = v;

		if(p->line_long)
		{
			return h1_fail(p, "a Content-Length too long to read");
		}
		while(*d >= '0' && *d <= '9')
		{
			n = n * 10 + (uint64_t) (*d++ - '0');
			if(n > H1_MAX_SIZE)
			{
				return h1_fail(p, "a Content-Length too large");
			}
		}
		while(*d == ' ' || *d == '\t')
		{
			d++;
		}
		if(d == v || *d)
		{
			return h1_fail(p, "a Content-Length that is not a number");
		}
		if(p->has_length && p->remaining != n)
		{
			return h1_fail(p, "two different Content-Length headers");
		}
		p->has_length = 1;
		p->remaining = n;
	}
	return 0;
}

static int
h1_size_line(cluster__h1 *p, const char *l)
{
	uint64_t n = 0;
	const char *d = l;

	for(;; d++)
	{
		int x;

		if(*d >= '0' && *d <= '9')
		{
			x = *d - '0';
		}
		else if((*d | 0x20) >= 'a' && (*d | 0x20) <= 'f')
		{
			x = (*d | 0x20) - 'a' + 10;
		}
		else
		{
			break;
		}
		n = n * 16 + (uint64_t) x;
		if(n > H1_MAX_SIZE)
		{
			return h1_fail(p, "a chunk size too large");
		}
	}
	while(*d == ' ' || *d == '\t')
	{
		d++;
	}
	if(d == l || (*d && *d != ';'))
	{
		return h1_fail(p, "a chunk size that is not a hexadecimal number");
	}
	if(p->line_long && !*d)
	{
		return h1_fail(p, "a chunk size too long to read");
	}
	p->remaining = n;
	p->state = n ? H1_DATA : H1_TRAILER;
	return 0;
}

/* One complete line of a line state, without its CR LF. */
static int
h1_line(cluster__h1 *p, const char *l)
{
	switch(p->state)
	{
	case H1_STATUS:
		if(!*l)
		{
			return 0;
		}
		if((p->status = h1_status_line(l)) < 0)
		{
			p->status = 0;
			return h1_fail(p, "not an HTTP/1.x status line");
		}
		p->state = H1_HEADER;
		return 0;
	case H1_HEADER:
		return h1_header_line(p, l);
	case H1_SIZE:
		return h1_size_line(p, l);
	case H1_DATA_END:
		if(*l)
		{
			return h1_fail(p, "chunk data longer than its size");
		}
		p->state = H1_SIZE;
		return 0;
	default: /* H1_TRAILER */
		if(!*l)
		{
			p->state = H1_DONE;
		}
		return 0;
	}
}

/*
 * The line states keep a line's first bytes in p->line until its '\n';
 * the body states hand bytes to cb straight from the slice.
 */
int
cluster__h1_feed(cluster__h1 *p, const char *data, size_t len, cluster__h1_body_cb cb, void *ud)
{
	while(len && !p->error)
	{
		size_t take;
		int r;

		switch(p->state)
		{
		case H1_DONE:
			return 0;
		case H1_TO_EOF:
			return cb(ud, data, len);
		case H1_DATA:
		case H1_LENGTH:
			take = len < p->remaining ? len : (size_t) p->remaining;
			p->remaining -= take;
			if(!p->remaining)
			{
				p->state = p->state == H1_DATA ? H1_DATA_END : H1_DONE;
			}
			if((r = cb(ud, data, take)))
			{
				return r;
			}
			data += take;
			len -= take;
			break;
		default:
		{
			const char *nl = memchr(data, '\n', len);
			size_t room = sizeof(p->line) - 1 - p->line_len, text, keep;

			take = nl ? (size_t) (nl - data) + 1 : len;
			text = take - (nl != NULL);
			if(p->state != H1_SIZE && p->state != H1_DATA_END)
			{
				/* head bytes, unlike chunk framing, carry nothing
				 * of the stream: bounded in total */
				if(take > H1_MAX_HEAD - p->head_bytes)
				{
					return h1_fail(p, "a response head longer than 64 KiB");
				}
				p->head_bytes += take;
			}
			else if(take > H1_MAX_LINE - p->line_total)
			{
				return h1_fail(p, "a chunk-size line longer than 4 KiB");
			}
			p->line_total += take;
			keep = text < room ? text : room;
			p->line_long |= text > room;
			memcpy(p->line + p->line_len, data, keep);
			p->line_len += keep;
			data += take;
			len -= take;
			if(!nl)
			{
				break;
			}
			if(p->line_len && p->line[p->line_len - 1] == '\r' && !p->line_long)
			{
				p->line_len--;
			}
			p->line[p->line_len] = 0;
			r = h1_line(p, p->line);
			p->line_len = 0;
			p->line_total = 0;
			p->line_long = 0;
			if(r)
			{
				return r;
			}
			break;
		}
		}
	}
	return p->error ? EPROTO : 0;
}

int
cluster__h1_eof(cluster__h1 *p)
{
	switch(p->state)
	{
	case H1_DONE:
		return 0;
	case H1_TO_EOF:
		p->state = H1_DONE;
		return 0;
	case H1_STATUS:
		p->error = p->head_bytes ? "the server closed the connection in the middle of its status line" : "the server closed the connection without answering";
		return EPIPE;
	case H1_HEADER:
		p->error = "the server closed the connection in the middle of its headers";
		return EPIPE;
	default:
		p->error = "the server closed the connection before the end of its answer";
		return EPIPE;
	}
}
