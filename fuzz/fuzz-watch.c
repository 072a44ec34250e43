/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One line of the etcd v3 watch stream (events, created, canceled,
 * compaction, progress, stream errors).
 */
#include <string.h>

#include "fuzz.h"
#include "etcd3-proto.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cluster__etcd3_watch_msg msg;
	size_t i;
	int r;

	memset(&msg, 0, sizeof(msg));
	r = cluster__etcd3_parse_watch((const char *) data, size, &msg);
	if(!r)
	{
		FUZZ_CHECK(msg.n_events == 0 || msg.events != NULL);
		for(i = 0; i < msg.n_events; i++)
		{
			FUZZ_CHECK(msg.events[i].type == CLUSTER__ETCD3_PUT || msg.events[i].type == CLUSTER__ETCD3_DELETE);
			FUZZ_CHECK(!msg.events[i].kv.key || msg.events[i].kv.key[msg.events[i].kv.key_len] == 0);
		}
	}
	cluster__etcd3_watch_msg_free(&msg);
	return 0;
}
