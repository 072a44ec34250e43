/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The HTTP/1.1 response reader (the answer of a duplex stream over plain
 * HTTP), fed the input whole and again in slices whose sizes come from the
 * input itself: both readings agree on the result, the status, the body
 * and the end, and the body is never more than the input.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http1-reader.h"

struct got
{
	char *body;
	size_t len;
};

static int
on_body(void *ud, const char *data, size_t len)
{
	struct got *g = ud;

	FUZZ_CHECK(len > 0);
	memcpy(g->body + g->len, data, len);
	g->len += len;
	return 0;
}

/* Reads data[1..] in slices of 1..16 bytes chosen by data[0] (whole when
 * sliced is 0); returns the reader's result and then its end. */
static int
read_all(const uint8_t *data, size_t size, int sliced, cluster__h1 *p, struct got *g)
{
	size_t at, step;
	int r = 0;

	cluster__h1_init(p);
	for(at = 1; at < size && !r; at += step)
	{
		step = sliced ? 1 + (data[0] + at) % 16 : size - at;
		step = step > size - at ? size - at : step;
		r = cluster__h1_feed(p, (const char *) data + at, step, on_body, g);
	}
	FUZZ_CHECK(!r || r == EPROTO);
	FUZZ_CHECK(!r || p->error);
	return r ? r : cluster__h1_eof(p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cluster__h1 a, b;
	struct got ga, gb;
	int ra, rb;

	if(size < 1)
	{
		return 0;
	}
	ga.body = malloc(size);
	gb.body = malloc(size);
	ga.len = gb.len = 0;
	if(ga.body && gb.body)
	{
		ra = read_all(data, size, 0, &a, &ga);
		rb = read_all(data, size, 1, &b, &gb);
		FUZZ_CHECK(ra == rb);
		FUZZ_CHECK(ra == 0 || ra == EPROTO || ra == EPIPE);
		FUZZ_CHECK(a.status == b.status);
		FUZZ_CHECK(cluster__h1_done(&a) == cluster__h1_done(&b));
		FUZZ_CHECK(ga.len <= size - 1);
		if(!ra)
		{
			/* a body is all there only when both read the whole answer */
			FUZZ_CHECK(ga.len == gb.len && !memcmp(ga.body, gb.body, ga.len));
		}
	}
	free(ga.body);
	free(gb.body);
	return 0;
}
