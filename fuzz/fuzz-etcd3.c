/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The etcd v3 answers: the first byte chooses the parser (range, txn,
 * lease grant, keepalive, authenticate, error body, member value, status
 * value: the status record), the rest is the body.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "etcd3-proto.h"

/* A parsed key/value: decoded lengths match the NUL-terminated text. */
static void
check_kv(const cluster__etcd3_kv *kv)
{
	FUZZ_CHECK(kv->value != NULL);
	FUZZ_CHECK(kv->value[kv->value_len] == 0);
	FUZZ_CHECK(!kv->key || kv->key[kv->key_len] == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *) data + 1, *why = NULL;
	size_t len = size ? size - 1 : 0, i;
	cluster__etcd3_range range;
	cluster__etcd3_txn txn;
	cluster__member m;
	int64_t id, ttl;
	char *token = NULL, msg[64];
	int r, code;

	if(!size)
	{
		return 0;
	}
	switch(data[0] % 8)
	{
	case 0:
		memset(&range, 0, sizeof(range));
		r = cluster__etcd3_parse_range(body, len, &range);
		if(!r)
		{
			FUZZ_CHECK(range.revision > 0);
			FUZZ_CHECK(range.n_kvs <= CLUSTER_MEMBERS_MAX);
			for(i = 0; i < range.n_kvs; i++)
			{
				check_kv(&range.kvs[i]);
			}
		}
		cluster__etcd3_range_free(&range);
		break;
	case 1:
		memset(&txn, 0, sizeof(txn));
		r = cluster__etcd3_parse_txn(body, len, &txn);
		if(!r && txn.has_kv)
		{
			check_kv(&txn.kv);
		}
		cluster__etcd3_txn_free(&txn);
		break;
	case 2:
		r = cluster__etcd3_parse_grant(body, len, &id, &ttl);
		FUZZ_CHECK(r || (id != 0 && ttl > 0));
		break;
	case 3:
		r = cluster__etcd3_parse_keepalive(body, len, &id, &ttl);
		FUZZ_CHECK(r || ttl >= 0);
		break;
	case 4:
		r = cluster__etcd3_parse_auth(body, len, &token);
		FUZZ_CHECK(r || token != NULL);
		free(token);
		break;
	case 5:
		r = cluster__etcd3_parse_error(body, len, &code, msg, sizeof(msg));
		FUZZ_CHECK(r || memchr(msg, 0, sizeof(msg)) != NULL);
		break;
	case 6:
		memset(&m, 0, sizeof(m));
		r = cluster__etcd3_parse_member_value(body, len, &m, &why);
		FUZZ_CHECK(r || (m.workers >= 1 && m.workers <= CLUSTER_WORKERS_MAX));
		FUZZ_CHECK(!r || why != NULL);
		break;
	default:
		memset(&m, 0, sizeof(m));
		r = cluster__etcd3_parse_status_value(body, len, &m, &why);
		FUZZ_CHECK(r || m.has_status);
		FUZZ_CHECK(r || memchr(m.address, 0, sizeof(m.address)) != NULL);
		/* a published age is only ever one in range */
		FUZZ_CHECK(!m.has_up || (!r && m.up_ms >= 0 && m.up_ms <= CLUSTER__ETCD3_UP_MS_MAX));
		break;
	}
	return 0;
}
