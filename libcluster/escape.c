/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PURE: quote caller or registry bytes for a log line (see cluster-int.h).
 * A value that reaches a log message must not be able to forge a line
 * (a raw '\n'), drive the reader's terminal (ESC sequences) or be mistaken
 * for other text, so everything but printable ASCII is written as \xHH.
 * No I/O, no locks, no globals.
 */
#include "util.h"

#include <string.h>

static const char hex[] = "0123456789abcdef";

/* Bytes written for ch: printable ASCII stands for itself, except the
 * backslash, which would make "\x41" ambiguous. */
static size_t
unit_len(unsigned char ch)
{
	return (ch >= 0x20 && ch < 0x7f && ch != '\\') ? 1 : 4;
}

/*
 * Two passes over the input: the first finds how many whole units fit
 * (all of them, or as many as leave room for "..."), the second writes
 * them. A unit is never cut, so the output is always a valid escaping.
 */
const char *
cluster__escape(char *out, size_t outsz, const char *in, size_t len)
{
	const unsigned char *s = (const unsigned char *) in;
	size_t i, need = 0, take, room, o = 0;

	if(!outsz)
	{
		return out;
	}
	if(!in)
	{
		s = (const unsigned char *) "(null)";
		len = 6;
	}
	for(i = 0; i < len && need + unit_len(s[i]) < outsz; i++)
	{
		need += unit_len(s[i]);
	}
	take = i;
	if(take < len)
	{
		/* cut: drop units until "..." fits after them */
		room = outsz > 4 ? outsz - 4 : 0;
		while(take && need > room)
		{
			need -= unit_len(s[--take]);
		}
	}
	for(i = 0; i < take; i++)
	{
		if(unit_len(s[i]) == 1)
		{
			out[o++] = (char) s[i];
		}
		else
		{
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[s[i] >> 4];
			out[o++] = hex[s[i] & 0x0f];
		}
	}
	if(take < len)
	{
		for(i = 0; i < 3 && o + 1 < outsz; i++)
		{
			out[o++] = '.';
		}
	}
	out[o] = 0;
	return out;
}

const char *
cluster__escape_uri(char out[CLUSTER__ESCAPE_SIZE(200)], const char *uri)
{
	char masked[201];
	size_t i, o = 0, len;

	if(!uri)
	{
		return cluster__escape(out, CLUSTER__ESCAPE_SIZE(200), NULL, 0);
	}
	len = strlen(uri);
	len = len > 200 ? 200 : len;
	for(i = 0; i < len && o < 200; i++)
	{
		masked[o++] = uri[i];
		if(uri[i] == '/' && i >= 2 && uri[i - 1] == '/' && uri[i - 2] == ':')
		{
			/* an authority starts: is there an '@' before its end? */
			size_t j = i + 1;

			while(j < len && uri[j] != '@' && uri[j] != '/' && uri[j] != ',')
			{
				j++;
			}
			if(j < len && uri[j] == '@' && o + 3 <= 200)
			{
				memcpy(masked + o, "***", 3);
				o += 3;
				i = j - 1;
			}
		}
	}
	return cluster__escape(out, CLUSTER__ESCAPE_SIZE(200), masked, o);
}
