/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The line splitter of streamed responses (etcd's watch): any slices in,
 * whole lines out, each bounded. Pure: no I/O, no locks.
 */
#include "util.h"
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>


static int
linesplit_deliver(cluster__linesplit *ls, const char *line, size_t len, cluster__http_line_cb cb, void *ctx)
{
	if(len && line[len - 1] == '\r')
	{
		len--;
	}
	ls->lines++;
	if(cb(ctx, line, len))
	{
		ls->stopped = 1;
	}
	return 0;
}

/*
 * Lines may be split across any number of slices, and one slice may hold
 * many lines: complete lines inside the slice are delivered straight from
 * it, only a partial tail is copied into the buffer.
 */
int
cluster__linesplit_feed(cluster__linesplit *ls, const char *data, size_t n, cluster__http_line_cb cb, void *ctx)
{
	size_t max = ls->max ? ls->max : CLUSTER__HTTP_MAX_BODY;

	while(n && !ls->stopped)
	{
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t) (nl - data) : n;

		if(ls->len + take > max)
		{
			return EIO;
		}
		if(nl && !ls->len)
		{
			/* whole line inside this slice */
			linesplit_deliver(ls, data, take, cb, ctx);
		}
		else
		{
			if(cluster__reserve(&ls->buf, &ls->cap, ls->len + take + 1, 256))
			{
				return ENOMEM;
			}
			memcpy(ls->buf + ls->len, data, take);
			ls->len += take;
			ls->buf[ls->len] = 0;
			if(nl)
			{
				size_t whole = ls->len;

				ls->len = 0;
				linesplit_deliver(ls, ls->buf, whole, cb, ctx);
			}
		}
		if(!nl)
		{
			break;
		}
		data = nl + 1;
		n -= take + 1;
	}
	return 0;
}

int
cluster__linesplit_finish(cluster__linesplit *ls, cluster__http_line_cb cb, void *ctx)
{
	size_t i;

	if(ls->stopped || !ls->len)
	{
		ls->len = 0;
		return 0;
	}
	for(i = 0; i < ls->len; i++)
	{
		if(!isspace((unsigned char) ls->buf[i]))
		{
			break;
		}
	}
	if(i < ls->len)
	{
		size_t len = ls->len;

		ls->len = 0;
		linesplit_deliver(ls, ls->buf, len, cb, ctx);
	}
	ls->len = 0;
	return 0;
}

void
cluster__linesplit_free(cluster__linesplit *ls)
{
	free(ls->buf);
	ls->buf = NULL;
	ls->len = ls->cap = 0;
}
