/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PURE: parsers for the etcd v2 keys API (see etcd2-proto.h). Every field
 * is checked for its type; anything unexpected is skipped or reported,
 * never trusted.
 */
#include "etcd2-proto.h"
#include "etcd3-proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cJSON.h>

int
cluster__etcd2_parse_workers(const char *text, size_t len)
{
	long v = 0;
	size_t i;

	/* the original wrote plain decimal; accept exactly that */
	if(!text || !len || len > 5 || text[0] == '0')
	{
		return 0;
	}
	for(i = 0; i < len; i++)
	{
		if(text[i] < '0' || text[i] > '9')
		{
			return 0;
		}
		v = v * 10 + (text[i] - '0');
	}
	return v <= CLUSTER_WORKERS_MAX ? (int) v : 0;
}

/* "dir" -> "dir/" for the shared key-to-id rule. */
static char *
dir_prefix(const char *dir)
{
	size_t len = strlen(dir);
	char *p = malloc(len + 2);

	if(p)
	{
		memcpy(p, dir, len);
		p[len] = '/';
		p[len + 1] = 0;
	}
	return p;
}

/* A child node -> member record. Returns 1 if it is a usable member. */
static int
node_member(const cJSON *node, const char *prefix, cluster__member *m)
{
	const cJSON *key = cJSON_GetObjectItemCaseSensitive(node, "key");
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(node, "value");
	const cJSON *mi = cJSON_GetObjectItemCaseSensitive(node, "modifiedIndex");

	memset(m, 0, sizeof(*m));
	if(!cJSON_IsString(key) || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(node, "dir")))
	{
		return 0;
	}
	if(cluster__etcd3_member_id(prefix, key->valuestring, strlen(key->valuestring), m->id))
	{
		return 0;
	}
	if(!cJSON_IsString(value) || !(m->workers = cluster__etcd2_parse_workers(value->valuestring, strlen(value->valuestring))))
	{
		return 0;
	}
	if(cJSON_IsNumber(mi) && mi->valuedouble >= 0 && mi->valuedouble < 9007199254740992.0)
	{
		m->mod_revision = (int64_t) mi->valuedouble;
	}
	return 1;
}

int
cluster__etcd2_parse_list(const char *body, size_t len, const char *dir, cluster__member **out, size_t *n, size_t *skipped)
{
	cJSON *root, *node, *nodes, *child;
	cluster__member *list = NULL;
	char *prefix;
	size_t count = 0, cap, bad = 0;

	*out = NULL;
	*n = 0;
	*skipped = 0;
	root = body ? cJSON_ParseWithLength(body, len) : NULL;
	node = cJSON_GetObjectItemCaseSensitive(root, "node");
	if(!cJSON_IsObject(node))
	{
		cJSON_Delete(root);
		return EPROTO;
	}
	nodes = cJSON_GetObjectItemCaseSensitive(node, "nodes");
	if(nodes && !cJSON_IsArray(nodes))
	{
		cJSON_Delete(root);
		return EPROTO;
	}
	cap = (size_t) cJSON_GetArraySize(nodes);
	if(cap > CLUSTER_MEMBERS_MAX)
	{
		cJSON_Delete(root);
		return E2BIG;
	}
	prefix = dir_prefix(dir);
	if(!prefix || (cap && !(list = calloc(cap, sizeof(*list)))))
	{
		free(prefix);
		cJSON_Delete(root);
		return ENOMEM;
	}
	cJSON_ArrayForEach(child, nodes)
	{
		if(count < cap && node_member(child, prefix, &list[count]))
		{
			count++;
		}
		else
		{
			bad++;
		}
	}
	free(prefix);
	cJSON_Delete(root);
	if(!count)
	{
		free(list);
		list = NULL;
	}
	*out = list;
	*n = count;
	*skipped = bad;
	return 0;
}

int
cluster__etcd2_parse_event(const char *body, size_t len, const char *dir, cluster__etcd2_event *ev)
{
	cJSON *root, *action, *node, *key, *value, *mi;
	char *prefix;

	memset(ev, 0, sizeof(*ev));
	root = body ? cJSON_ParseWithLength(body, len) : NULL;
	action = cJSON_GetObjectItemCaseSensitive(root, "action");
	node = cJSON_GetObjectItemCaseSensitive(root, "node");
	key = cJSON_GetObjectItemCaseSensitive(node, "key");
	mi = cJSON_GetObjectItemCaseSensitive(node, "modifiedIndex");
	if(!cJSON_IsString(action) || !cJSON_IsObject(node) || !cJSON_IsString(key) ||
		!cJSON_IsNumber(mi) || mi->valuedouble < 1 || mi->valuedouble >= 9007199254740992.0)
	{
		cJSON_Delete(root);
		return EPROTO;
	}
	ev->modified_index = (uint64_t) mi->valuedouble;
	prefix = dir_prefix(dir);
	if(!prefix)
	{
		cJSON_Delete(root);
		return ENOMEM;
	}
	if(!cluster__etcd3_member_id(prefix, key->valuestring, strlen(key->valuestring), ev->id) &&
		!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(node, "dir")))
	{
		const char *a = action->valuestring;

		ev->relevant = 1;
		if(!strcmp(a, "delete") || !strcmp(a, "expire") || !strcmp(a, "compareAndDelete"))
		{
			ev->removed = 1;
		}
		else
		{
			value = cJSON_GetObjectItemCaseSensitive(node, "value");
			if(cJSON_IsString(value))
			{
				ev->workers = cluster__etcd2_parse_workers(value->valuestring, strlen(value->valuestring));
			}
		}
	}
	free(prefix);
	cJSON_Delete(root);
	return 0;
}

int
cluster__etcd2_parse_error(const char *body, size_t len, int *error_code, uint64_t *index)
{
	cJSON *root, *code, *idx;

	*error_code = 0;
	*index = 0;
	root = body ? cJSON_ParseWithLength(body, len) : NULL;
	code = cJSON_GetObjectItemCaseSensitive(root, "errorCode");
	idx = cJSON_GetObjectItemCaseSensitive(root, "index");
	if(!cJSON_IsNumber(code) || code->valuedouble < 0 || code->valuedouble > 100000)
	{
		cJSON_Delete(root);
		return EPROTO;
	}
	*error_code = (int) code->valuedouble;
	if(cJSON_IsNumber(idx) && idx->valuedouble >= 0 && idx->valuedouble < 9007199254740992.0)
	{
		*index = (uint64_t) idx->valuedouble;
	}
	cJSON_Delete(root);
	return 0;
}
