/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The etcd v2 answers: the first byte chooses the parser (directory
 * listing, long-poll event, error body, worker count value).
 */
#include <string.h>

#include "fuzz.h"
#include "etcd2-proto.h"

#define DIR "/app/production"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *) data + 1;
	size_t len = size ? size - 1 : 0, n = 0, skipped = 0, i;
	cluster__member *members = NULL;
	cluster__etcd2_event ev;
	uint64_t index;
	int r, code;

	if(!size)
	{
		return 0;
	}
	switch(data[0] % 4)
	{
	case 0:
		r = cluster__etcd2_parse_list(body, len, DIR, &members, &n, &skipped);
		if(!r)
		{
			FUZZ_CHECK(n <= CLUSTER_MEMBERS_MAX);
			for(i = 0; i < n; i++)
			{
				FUZZ_CHECK(members[i].workers >= 1 && members[i].workers <= CLUSTER_WORKERS_MAX);
				FUZZ_CHECK(memchr(members[i].id, 0, sizeof(members[i].id)) != NULL);
			}
		}
		free(members);
		break;
	case 1:
		memset(&ev, 0, sizeof(ev));
		r = cluster__etcd2_parse_event(body, len, DIR, &ev);
		FUZZ_CHECK(r || memchr(ev.id, 0, sizeof(ev.id)) != NULL);
		break;
	case 2:
		r = cluster__etcd2_parse_error(body, len, &code, &index);
		(void) r;
		break;
	default:
		r = cluster__etcd2_parse_workers(body, len);
		FUZZ_CHECK(r >= 0 && r <= CLUSTER_WORKERS_MAX);
		break;
	}
	return 0;
}
