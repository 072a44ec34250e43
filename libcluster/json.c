/* SPDX-License-Identifier: Apache-2.0 */
/* The shared cJSON helpers (see json.h). */
#include "json.h"

#include <stdint.h>

/* 2^53: every integer of smaller magnitude is exact in a double. */
#define EXACT_DOUBLE_MAX 9007199254740992.0

int
cluster__json_exact_integer(double d)
{
	return d > -EXACT_DOUBLE_MAX && d < EXACT_DOUBLE_MAX && (double) (int64_t) d == d;
}

cJSON *
cluster__json_parse_whole(const char *text, size_t len)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);

	if(!root)
	{
		return NULL;
	}
	while(end && end < text + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
	{
		end++;
	}
	if(!end || end != text + len)
	{
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}
