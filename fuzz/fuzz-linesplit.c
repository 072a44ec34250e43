/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The stream line splitter, fed the input in slices whose sizes come from
 * the input itself: every line handed over is free of newlines and no
 * longer than the limit, and the lines and their newlines never add up to
 * more than the input.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

#define MAX_LINE 64

struct seen
{
	size_t bytes, lines;
};

static int
on_line(void *ctx, const char *line, size_t len)
{
	struct seen *s = ctx;

	FUZZ_CHECK(memchr(line, '\n', len) == NULL);
	FUZZ_CHECK(len <= MAX_LINE);
	s->bytes += len;
	s->lines++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cluster__linesplit ls;
	struct seen s = { 0, 0 };
	size_t at = 0, step, newlines = 0, i;
	int r = 0;

	if(size < 1)
	{
		return 0;
	}
	memset(&ls, 0, sizeof(ls));
	ls.max = MAX_LINE;
	/* the first byte: slice sizes 1..16 in turn */
	for(at = 1; at < size && !r; at += step)
	{
		step = 1 + (data[0] + at) % 16;
		step = step > size - at ? size - at : step;
		r = cluster__linesplit_feed(&ls, (const char *) data + at, step, on_line, &s);
	}
	if(!r)
	{
		cluster__linesplit_finish(&ls, on_line, &s);
		for(i = 1; i < size; i++)
		{
			newlines += data[i] == '\n';
		}
		FUZZ_CHECK(s.bytes + newlines <= size - 1);
		FUZZ_CHECK(s.lines <= newlines + 1);
	}
	else
	{
		FUZZ_CHECK(r == EIO || r == ENOMEM);
	}
	cluster__linesplit_free(&ls);
	return 0;
}
