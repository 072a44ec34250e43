/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd v3 JSON gateway, pure part (see etcd3-proto.h). Everything a
 * registry sends is treated as hostile: types are checked, numbers are
 * range-checked, base64 is decoded strictly, and any surprise is EBADMSG
 * with nothing leaked.
 */
#include "etcd3-proto.h"
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

/* 2^53: a JSON number this large may already have been rounded by the
 * parser, so numbers must stay strictly below it. */

/* ---------------------------------------------------------------------- */
/* base64                                                                   */
/* ---------------------------------------------------------------------- */

static const char b64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
cluster__b64_encode(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i, o = 0;
	char *out;

	if(len > (SIZE_MAX - 1) / 4 * 3 - 3)
	{
		errno = ENOMEM;
		return NULL;
	}
	out = malloc((len + 2) / 3 * 4 + 1);
	if(!out)
	{
		return NULL;
	}
	for(i = 0; i + 2 < len; i += 3)
	{
		unsigned long v = ((unsigned long) p[i] << 16) | ((unsigned long) p[i + 1] << 8) | p[i + 2];

		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if(i < len)
	{
		unsigned long v = (unsigned long) p[i] << 16;

		if(i + 1 < len)
		{
			v |= (unsigned long) p[i + 1] << 8;
		}
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = 0;
	return out;
}

static int
b64_value(unsigned char ch)
{
	if(ch >= 'A' && ch <= 'Z')
	{
		return ch - 'A';
	}
	if(ch >= 'a' && ch <= 'z')
	{
		return ch - 'a' + 26;
	}
	if(ch >= '0' && ch <= '9')
	{
		return ch - '0' + 52;
	}
	if(ch == '+')
	{
		return 62;
	}
	if(ch == '/')
	{
		return 63;
	}
	return -1;
}

int
cluster__b64_decode(const char *in, size_t inlen, char **out, size_t *outlen)
{
	unsigned char *buf;
	size_t i, o = 0;

	*out = NULL;
	*outlen = 0;
	if(inlen % 4)
	{
		return EBADMSG;
	}
	buf = malloc(inlen / 4 * 3 + 1);
	if(!buf)
	{
		return ENOMEM;
	}
	for(i = 0; i < inlen; i += 4)
	{
		int v[4], k, pad = 0;
		unsigned long w;

		for(k = 0; k < 4; k++)
		{
			unsigned char ch = (unsigned char) in[i + k];

			if(ch == '=' && i + 4 == inlen && k >= 2)
			{
				/* padding only at the very end, and "x=y=" is not padding */
				if(k == 2 && in[i + 3] != '=')
				{
					free(buf);
					return EBADMSG;
				}
				v[k] = 0;
				pad++;
				continue;
			}
			v[k] = b64_value(ch);
			if(v[k] < 0 || pad)
			{
				free(buf);
				return EBADMSG;
			}
		}
		w = ((unsigned long) v[0] << 18) | ((unsigned long) v[1] << 12) | ((unsigned long) v[2] << 6) | (unsigned long) v[3];
		buf[o++] = (unsigned char) (w >> 16);
		if(pad < 2)
		{
			buf[o++] = (unsigned char) (w >> 8);
		}
		if(pad < 1)
		{
			buf[o++] = (unsigned char) w;
		}
	}
	buf[o] = 0;
	*out = (char *) buf;
	*outlen = o;
	return 0;
}

size_t
cluster__etcd3_range_end(const unsigned char *prefix, size_t len, unsigned char *end)
{
	size_t i;

	if(len)
	{
		memcpy(end, prefix, len);
	}
	for(i = len; i-- > 0;)
	{
		if(end[i] < 0xff)
		{
			end[i]++;
			return i + 1;
		}
	}
	end[0] = 0;
	return 1;
}

/* ---------------------------------------------------------------------- */
/* builders                                                                 */
/* ---------------------------------------------------------------------- */

/* Add a bytes field (base64) of len bytes. */
static int
add_bytes(cJSON *obj, const char *name, const void *data, size_t len)
{
	char *b = cluster__b64_encode(data, len);
	cJSON *s;

	if(!b)
	{
		return -1;
	}
	s = cJSON_AddStringToObject(obj, name, b);
	free(b);
	return s ? 0 : -1;
}

/* int64 fields go out as decimal strings, exactly as etcd prints them. */
static int
add_i64(cJSON *obj, const char *name, int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", (long long) v);
	return cJSON_AddStringToObject(obj, name, buf) ? 0 : -1;
}

static int
add_raw_ll(cJSON *obj, const char *name, long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	return cJSON_AddRawToObject(obj, name, buf) ? 0 : -1;
}

static char *
finish(cJSON *root, int failed)
{
	char *s = NULL;

	if(!failed && root)
	{
		s = cJSON_PrintUnformatted(root);
	}
	cJSON_Delete(root);
	if(!s)
	{
		errno = ENOMEM;
	}
	return s;
}

static int
add_prefix_range(cJSON *obj, const char *prefix)
{
	size_t len = strlen(prefix);
	unsigned char *end = malloc(len ? len : 1);
	size_t elen;
	int r;

	if(!end)
	{
		return -1;
	}
	elen = cluster__etcd3_range_end((const unsigned char *) prefix, len, end);
	r = add_bytes(obj, "key", prefix, len) || add_bytes(obj, "range_end", end, elen);
	free(end);
	return r ? -1 : 0;
}

char *
cluster__etcd3_build_range(const char *prefix)
{
	cJSON *root = cJSON_CreateObject();

	return finish(root, !root || add_prefix_range(root, prefix));
}

char *
cluster__etcd3_build_grant(int ttl)
{
	cJSON *root = cJSON_CreateObject();

	return finish(root, !root || !cJSON_AddNumberToObject(root, "TTL", ttl));
}

char *
cluster__etcd3_build_lease_id(int64_t id)
{
	cJSON *root = cJSON_CreateObject();

	return finish(root, !root || add_i64(root, "ID", id));
}

/* Add one success op of a write txn: put key = value under lease, or
 * delete key when value is NULL. Returns 0 or -1 (out of memory). */
static int
add_write_op(cJSON *succ, const char *key, const char *value, int64_t lease)
{
	cJSON *op = cJSON_CreateObject(), *req;
	int bad = 0;

	if(!op)
	{
		return -1;
	}
	cJSON_AddItemToArray(succ, op);
	req = cJSON_AddObjectToObject(op, value ? "request_put" : "request_delete_range");
	if(!req)
	{
		return -1;
	}
	bad |= add_bytes(req, "key", key, strlen(key));
	if(value)
	{
		bad |= add_bytes(req, "value", value, strlen(value));
		if(lease)
		{
			bad |= add_i64(req, "lease", lease);
		}
	}
	return bad ? -1 : 0;
}

/*
 * The frame of a guarded txn: compare target(guard_key) == value (field
 * names the value), with a range of guard_key as the failure branch (so
 * the caller learns who holds it). *succ gets the success array for the
 * caller's ops. NULL when out of memory.
 */
static cJSON *
guarded_txn(const char *guard_key, const char *target, const char *field, int64_t value, cJSON **succ)
{
	cJSON *root, *cmp, *c, *fail, *op, *rng;
	int bad = 0;

	root = cJSON_CreateObject();
	if(!root)
	{
		return NULL;
	}
	cmp = cJSON_AddArrayToObject(root, "compare");
	*succ = cJSON_AddArrayToObject(root, "success");
	fail = cJSON_AddArrayToObject(root, "failure");
	c = cJSON_CreateObject();
	op = cJSON_CreateObject();
	if(!cmp || !*succ || !fail || !c || !op)
	{
		cJSON_Delete(c);
		cJSON_Delete(op);
		cJSON_Delete(root);
		return NULL;
	}
	cJSON_AddItemToArray(cmp, c);
	bad |= add_bytes(c, "key", guard_key, strlen(guard_key));
	bad |= !cJSON_AddStringToObject(c, "target", target);
	bad |= !cJSON_AddStringToObject(c, "result", "EQUAL");
	bad |= add_i64(c, field, value);
	cJSON_AddItemToArray(fail, op);
	rng = cJSON_AddObjectToObject(op, "request_range");
	bad |= !rng || add_bytes(rng, "key", guard_key, strlen(guard_key));
	if(bad)
	{
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* Add a range of prefix to a txn's success ops. 0 or -1 (out of memory). */
static int
add_range_op(cJSON *succ, const char *prefix)
{
	cJSON *op = cJSON_CreateObject(), *req;

	if(!op)
	{
		return -1;
	}
	cJSON_AddItemToArray(succ, op);
	req = cJSON_AddObjectToObject(op, "request_range");
	return !req || add_prefix_range(req, prefix) ? -1 : 0;
}

char *
cluster__etcd3_build_write_read(const char *guard_key, int64_t guard_lease, const char *key1, const char *value1, const char *key2, const char *value2, int64_t lease,
	const char *prefix1, const char *prefix2)
{
	cJSON *succ = NULL, *root = guarded_txn(guard_key, guard_lease ? "LEASE" : "CREATE", guard_lease ? "lease" : "create_revision", guard_lease, &succ);
	int bad = !root;

	if(root && key1)
	{
		bad |= add_write_op(succ, key1, value1, lease);
	}
	if(root && key2)
	{
		bad |= add_write_op(succ, key2, value2, lease);
	}
	if(root && prefix1)
	{
		bad |= add_range_op(succ, prefix1);
	}
	if(root && prefix2)
	{
		bad |= add_range_op(succ, prefix2);
	}
	return finish(root, bad);
}

char *
cluster__etcd3_build_write(const char *guard_key, int64_t guard_lease, const char *key1, const char *value1, const char *key2, const char *value2, int64_t lease)
{
	return cluster__etcd3_build_write_read(guard_key, guard_lease, key1, value1, key2, value2, lease, NULL, NULL);
}

char *
cluster__etcd3_build_create(const char *key, const char *value, int64_t lease)
{
	return cluster__etcd3_build_write(key, 0, key, value, NULL, NULL, lease);
}

char *
cluster__etcd3_build_update(const char *key, const char *value, int64_t lease, int64_t compare_lease)
{
	return cluster__etcd3_build_write(key, compare_lease, key, value, NULL, NULL, lease);
}

char *
cluster__etcd3_build_put(const char *key, const char *value, int64_t lease)
{
	cJSON *root = cJSON_CreateObject();
	int bad = !root;

	if(root)
	{
		bad |= add_bytes(root, "key", key, strlen(key));
		bad |= add_bytes(root, "value", value, strlen(value));
		if(lease)
		{
			bad |= add_i64(root, "lease", lease);
		}
	}
	return finish(root, bad);
}

char *
cluster__etcd3_build_get(const char *key)
{
	cJSON *root = cJSON_CreateObject();

	return finish(root, !root || add_bytes(root, "key", key, strlen(key)));
}

/* A compare-and-swap: put key = value (no lease) if its mod revision is
 * still expect (0: the key is absent), else range it. */
char *
cluster__etcd3_build_cas(const char *key, const char *value, int64_t expect)
{
	cJSON *succ = NULL, *root = guarded_txn(key, expect ? "MOD" : "CREATE", expect ? "mod_revision" : "create_revision", expect, &succ);

	return finish(root, !root || add_write_op(succ, key, value, 0));
}

char *
cluster__etcd3_build_watch(const char *key, int prefix, int64_t start_revision)
{
	cJSON *root = cJSON_CreateObject(), *cr;
	int bad = 0;

	if(!root || !(cr = cJSON_AddObjectToObject(root, "create_request")))
	{
		return finish(root, 1);
	}
	if(prefix)
	{
		bad |= add_prefix_range(cr, key);
	}
	else
	{
		bad |= add_bytes(cr, "key", key, strlen(key));
	}
	if(start_revision > 0)
	{
		bad |= add_i64(cr, "start_revision", start_revision);
	}
	bad |= !cJSON_AddTrueToObject(cr, "progress_notify");
	return finish(root, bad);
}

char *
cluster__etcd3_build_cancel(int64_t watch_id)
{
	cJSON *root = cJSON_CreateObject(), *cr;

	if(!root || !(cr = cJSON_AddObjectToObject(root, "cancel_request")))
	{
		return finish(root, 1);
	}
	return finish(root, add_i64(cr, "watch_id", watch_id));
}

char *
cluster__etcd3_build_auth(const char *user, const char *password)
{
	cJSON *root = cJSON_CreateObject();

	return finish(root, !root || !cJSON_AddStringToObject(root, "name", user) || !cJSON_AddStringToObject(root, "password", password));
}

char *
cluster__etcd3_build_member_value(int workers, int has_status, const char *address, long long load, long long capacity)
{
	cJSON *root = cJSON_CreateObject();
	int bad = !root;

	if(root)
	{
		bad |= add_raw_ll(root, "workers", workers);
		if(has_status)
		{
			bad |= !cJSON_AddStringToObject(root, "address", address ? address : "");
			bad |= add_raw_ll(root, "load", load);
			bad |= add_raw_ll(root, "capacity", capacity);
		}
	}
	return finish(root, bad);
}

char *
cluster__etcd3_build_status_value(const char *address, long long load, long long capacity, long long up_ms)
{
	cJSON *root = cJSON_CreateObject();
	int bad = !root;

	if(root)
	{
		bad |= !cJSON_AddStringToObject(root, "address", address ? address : "");
		bad |= add_raw_ll(root, "load", load);
		bad |= add_raw_ll(root, "capacity", capacity);
		if(up_ms >= 0)
		{
			bad |= add_raw_ll(root, "up_ms", up_ms);
		}
	}
	return finish(root, bad);
}

/* ---------------------------------------------------------------------- */
/* parsing helpers                                                          */
/* ---------------------------------------------------------------------- */

static cJSON *
parse_object(const char *body, size_t len)
{
	cJSON *root;

	if(!body || !len)
	{
		return NULL;
	}
	root = cluster__json_parse_whole(body, len);
	if(root && !cJSON_IsObject(root))
	{
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

/* An int64 field: absent = 0; a decimal string (etcd's form) or an
 * integral number no larger than 2^53; anything else EBADMSG. */
static int
get_i64(const cJSON *obj, const char *name, int64_t *out)
{
	const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;

	*out = 0;
	if(!it || cJSON_IsNull(it))
	{
		return 0;
	}
	if(cJSON_IsString(it) && it->valuestring)
	{
		const char *s = it->valuestring;
		char *end;
		long long v;
		size_t i = 0;

		if(s[0] == '-')
		{
			i = 1;
		}
		if(!s[i] || strlen(s + i) > 19)
		{
			return EBADMSG;
		}
		for(; s[i]; i++)
		{
			if(s[i] < '0' || s[i] > '9')
			{
				return EBADMSG;
			}
		}
		errno = 0;
		v = strtoll(s, &end, 10);
		if(errno || *end)
		{
			return EBADMSG;
		}
		*out = (int64_t) v;
		return 0;
	}
	if(cJSON_IsNumber(it))
	{
		double d = it->valuedouble;

		if(!cluster__json_exact_integer(d))
		{
			return EBADMSG;
		}
		*out = (int64_t) d;
		return 0;
	}
	return EBADMSG;
}

/* A bool field: absent = false; only JSON booleans are accepted. */
static int
get_bool(const cJSON *obj, const char *name, int *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

	*out = 0;
	if(!it || cJSON_IsNull(it))
	{
		return 0;
	}
	if(!cJSON_IsBool(it))
	{
		return EBADMSG;
	}
	*out = cJSON_IsTrue(it) ? 1 : 0;
	return 0;
}

/* An optional string field: absent = NULL; *out is a copy. */
static int
get_string(const cJSON *obj, const char *name, char **out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

	*out = NULL;
	if(!it || cJSON_IsNull(it))
	{
		return 0;
	}
	if(!cJSON_IsString(it) || !it->valuestring)
	{
		return EBADMSG;
	}
	*out = strdup(it->valuestring);
	return *out ? 0 : ENOMEM;
}

/* An optional object field: absent = NULL (ok); wrong type = EBADMSG. */
static int
get_object(const cJSON *obj, const char *name, const cJSON **out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

	*out = NULL;
	if(!it || cJSON_IsNull(it))
	{
		return 0;
	}
	if(!cJSON_IsObject(it))
	{
		return EBADMSG;
	}
	*out = it;
	return 0;
}

static int
get_array(const cJSON *obj, const char *name, const cJSON **out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

	*out = NULL;
	if(!it || cJSON_IsNull(it))
	{
		return 0;
	}
	if(!cJSON_IsArray(it))
	{
		return EBADMSG;
	}
	*out = it;
	return 0;
}

static int
get_header_revision(const cJSON *obj, int64_t *rev)
{
	const cJSON *hdr;
	int r;

	*rev = 0;
	r = get_object(obj, "header", &hdr);
	if(r || !hdr)
	{
		return r;
	}
	r = get_i64(hdr, "revision", rev);
	if(!r && *rev < 0)
	{
		r = EBADMSG;
	}
	return r;
}

/* A bytes field: absent = empty; must be strict base64. */
static int
get_bytes(const cJSON *obj, const char *name, char **out, size_t *len)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);

	*out = NULL;
	*len = 0;
	if(!it || cJSON_IsNull(it))
	{
		*out = calloc(1, 1);
		return *out ? 0 : ENOMEM;
	}
	if(!cJSON_IsString(it) || !it->valuestring)
	{
		return EBADMSG;
	}
	return cluster__b64_decode(it->valuestring, strlen(it->valuestring), out, len);
}

static void
kv_free(cluster__etcd3_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

/* A KeyValue object; the key must be present and non-empty. */
static int
parse_kv(const cJSON *o, cluster__etcd3_kv *kv)
{
	int r;

	memset(kv, 0, sizeof(*kv));
	if(!cJSON_IsObject(o))
	{
		return EBADMSG;
	}
	r = get_bytes(o, "key", &kv->key, &kv->key_len);
	if(!r && !kv->key_len)
	{
		r = EBADMSG;
	}
	if(!r)
	{
		r = get_bytes(o, "value", &kv->value, &kv->value_len);
	}
	if(!r)
	{
		r = get_i64(o, "create_revision", &kv->create_revision);
	}
	if(!r)
	{
		r = get_i64(o, "mod_revision", &kv->mod_revision);
	}
	if(!r)
	{
		r = get_i64(o, "version", &kv->version);
	}
	if(!r)
	{
		r = get_i64(o, "lease", &kv->lease);
	}
	if(!r && (kv->create_revision < 0 || kv->mod_revision < 0 || kv->version < 0))
	{
		r = EBADMSG;
	}
	if(r)
	{
		kv_free(kv);
	}
	return r;
}

static int
parse_kvs(const cJSON *arr, cluster__etcd3_kv **out, size_t *n)
{
	const cJSON *it;
	size_t count = 0, i = 0;
	int r;

	*out = NULL;
	*n = 0;
	if(!arr)
	{
		return 0;
	}
	cJSON_ArrayForEach(it, arr)
	{
		count++;
	}
	if(!count)
	{
		return 0;
	}
	/* no member set may be larger: refuse before decoding any record */
	if(count > CLUSTER_MEMBERS_MAX)
	{
		return E2BIG;
	}
	*out = calloc(count, sizeof(**out));
	if(!*out)
	{
		return ENOMEM;
	}
	cJSON_ArrayForEach(it, arr)
	{
		r = parse_kv(it, &(*out)[i]);
		if(r)
		{
			while(i-- > 0)
			{
				kv_free(&(*out)[i]);
			}
			free(*out);
			*out = NULL;
			return r;
		}
		i++;
	}
	*n = count;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* responses                                                                */
/* ---------------------------------------------------------------------- */

void
cluster__etcd3_range_free(cluster__etcd3_range *rg)
{
	size_t i;

	for(i = 0; i < rg->n_kvs; i++)
	{
		kv_free(&rg->kvs[i]);
	}
	free(rg->kvs);
	memset(rg, 0, sizeof(*rg));
}

/* Open a KV reply (range, txn): a JSON object whose header carries a
 * positive revision. *root must be released with cJSON_Delete() (NULL
 * when the body is not an object). Returns 0 or EBADMSG. */
static int
open_reply(const char *body, size_t len, cJSON **root, int64_t *revision)
{
	int r;

	*root = parse_object(body, len);
	if(!*root)
	{
		return EBADMSG;
	}
	r = get_header_revision(*root, revision);
	if(!r && *revision <= 0)
	{
		r = EBADMSG;
	}
	return r;
}

/* The body of a range answer (a RangeResponse, alone or inside a txn's
 * responses): "more" and the kvs into *out; revision is left alone. */
static int
parse_range_body(const cJSON *obj, cluster__etcd3_range *out)
{
	const cJSON *arr;
	int r;

	r = get_bool(obj, "more", &out->more);
	if(!r)
	{
		r = get_array(obj, "kvs", &arr);
	}
	if(!r)
	{
		r = parse_kvs(arr, &out->kvs, &out->n_kvs);
	}
	return r;
}

int
cluster__etcd3_parse_range(const char *body, size_t len, cluster__etcd3_range *out)
{
	cJSON *root;
	int r;

	memset(out, 0, sizeof(*out));
	r = open_reply(body, len, &root, &out->revision);
	if(!r)
	{
		r = parse_range_body(root, out);
	}
	cJSON_Delete(root);
	if(r)
	{
		cluster__etcd3_range_free(out);
	}
	return r;
}

/* The range answers among a succeeded txn's responses, into t->ranges.
 * Returns 0, or why they cannot be used (t->ranges left empty). */
static int
parse_txn_ranges(const cJSON *arr, cluster__etcd3_txn *t)
{
	const cJSON *it, *rr;
	int r = 0;

	cJSON_ArrayForEach(it, arr)
	{
		if(!cJSON_IsObject(it))
		{
			r = EBADMSG;
			break;
		}
		r = get_object(it, "response_range", &rr);
		if(r)
		{
			break;
		}
		if(!rr)
		{
			/* a put's answer */
			continue;
		}
		if(t->n_ranges == CLUSTER__ETCD3_TXN_RANGES)
		{
			r = EBADMSG;
			break;
		}
		t->ranges[t->n_ranges].revision = t->revision;
		r = parse_range_body(rr, &t->ranges[t->n_ranges]);
		if(!r && t->ranges[t->n_ranges].more)
		{
			/* we never set a limit: a paged answer is not etcd's */
			r = EBADMSG;
		}
		t->n_ranges++;
		if(r)
		{
			break;
		}
	}
	if(r)
	{
		while(t->n_ranges > 0)
		{
			cluster__etcd3_range_free(&t->ranges[--t->n_ranges]);
		}
	}
	return r;
}

void
cluster__etcd3_txn_free(cluster__etcd3_txn *t)
{
	size_t i;

	kv_free(&t->kv);
	for(i = 0; i < t->n_ranges; i++)
	{
		cluster__etcd3_range_free(&t->ranges[i]);
	}
	memset(t, 0, sizeof(*t));
}

int
cluster__etcd3_parse_txn(const char *body, size_t len, cluster__etcd3_txn *out)
{
	const cJSON *arr, *first, *rr, *kvs;
	cJSON *root;
	int r;

	memset(out, 0, sizeof(*out));
	r = open_reply(body, len, &root, &out->revision);
	if(!r)
	{
		r = get_bool(root, "succeeded", &out->succeeded);
	}
	if(!r)
	{
		r = get_array(root, "responses", &arr);
	}
	if(!r && out->succeeded && arr)
	{
		out->ranges_err = parse_txn_ranges(arr, out);
	}
	if(!r && !out->succeeded && arr && (first = cJSON_GetArrayItem(arr, 0)))
	{
		if(!cJSON_IsObject(first))
		{
			r = EBADMSG;
		}
		if(!r)
		{
			r = get_object(first, "response_range", &rr);
		}
		if(!r && rr)
		{
			r = get_array(rr, "kvs", &kvs);
			if(!r && kvs && cJSON_GetArraySize(kvs) > 0)
			{
				r = parse_kv(cJSON_GetArrayItem(kvs, 0), &out->kv);
				out->has_kv = !r;
			}
		}
	}
	cJSON_Delete(root);
	if(r)
	{
		cluster__etcd3_txn_free(out);
	}
	return r;
}

int
cluster__etcd3_parse_grant(const char *body, size_t len, int64_t *id, int64_t *ttl)
{
	cJSON *root;
	int r;

	*id = 0;
	*ttl = 0;
	root = parse_object(body, len);
	if(!root)
	{
		return EBADMSG;
	}
	r = get_i64(root, "ID", id);
	if(!r)
	{
		r = get_i64(root, "TTL", ttl);
	}
	if(!r && (*id == 0 || *ttl <= 0))
	{
		r = EBADMSG;
	}
	cJSON_Delete(root);
	if(r)
	{
		*id = 0;
		*ttl = 0;
	}
	return r;
}

int
cluster__etcd3_parse_keepalive(const char *body, size_t len, int64_t *id, int64_t *ttl)
{
	const cJSON *res;
	cJSON *root;
	int r;

	*id = 0;
	*ttl = 0;
	root = parse_object(body, len);
	if(!root)
	{
		return EBADMSG;
	}
	if(cJSON_GetObjectItemCaseSensitive(root, "error"))
	{
		cJSON_Delete(root);
		return EIO;
	}
	r = get_object(root, "result", &res);
	if(!r && !res)
	{
		r = EBADMSG;
	}
	if(!r)
	{
		r = get_i64(res, "ID", id);
	}
	if(!r)
	{
		r = get_i64(res, "TTL", ttl);
	}
	if(!r && *ttl < 0)
	{
		/* TimeToLive says -1 for an unknown lease: the same as gone */
		*ttl = 0;
	}
	cJSON_Delete(root);
	if(r)
	{
		*id = 0;
		*ttl = 0;
	}
	return r;
}

int
cluster__etcd3_parse_auth(const char *body, size_t len, char **token)
{
	cJSON *root;
	int r;

	*token = NULL;
	root = parse_object(body, len);
	if(!root)
	{
		return EBADMSG;
	}
	r = get_string(root, "token", token);
	if(!r && (!*token || !**token || strpbrk(*token, "\r\n")))
	{
		r = EBADMSG;
	}
	cJSON_Delete(root);
	if(r)
	{
		free(*token);
		*token = NULL;
	}
	return r;
}

int
cluster__etcd3_parse_error(const char *body, size_t len, int *code, char *msg, size_t msgsz)
{
	const cJSON *e, *m, *c;
	cJSON *root;

	*code = 0;
	if(msgsz)
	{
		msg[0] = 0;
	}
	root = parse_object(body, len);
	if(!root)
	{
		return EBADMSG;
	}
	e = cJSON_GetObjectItemCaseSensitive(root, "error");
	m = cJSON_GetObjectItemCaseSensitive(root, "message");
	c = cJSON_GetObjectItemCaseSensitive(root, "code");
	if(cJSON_IsObject(e))
	{
		/* stream error shape */
		m = cJSON_GetObjectItemCaseSensitive(e, "message");
		c = cJSON_GetObjectItemCaseSensitive(e, "grpc_code");
	}
	else if(!cJSON_IsString(e))
	{
		cJSON_Delete(root);
		return EBADMSG;
	}
	if(!cJSON_IsString(m))
	{
		m = cJSON_IsString(e) ? e : NULL;
	}
	if(cJSON_IsNumber(c) && c->valuedouble >= 0 && c->valuedouble < 1000)
	{
		*code = (int) c->valuedouble;
	}
	if(msgsz && m && m->valuestring)
	{
		snprintf(msg, msgsz, "%s", m->valuestring);
	}
	cJSON_Delete(root);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* watch                                                                    */
/* ---------------------------------------------------------------------- */

void
cluster__etcd3_watch_msg_free(cluster__etcd3_watch_msg *m)
{
	size_t i;

	for(i = 0; i < m->n_events; i++)
	{
		kv_free(&m->events[i].kv);
	}
	free(m->events);
	free(m->error_message);
	free(m->cancel_reason);
	memset(m, 0, sizeof(*m));
}

static int
parse_event(const cJSON *o, cluster__etcd3_event *ev)
{
	const cJSON *type, *kv;
	int r;

	memset(ev, 0, sizeof(*ev));
	if(!cJSON_IsObject(o))
	{
		return EBADMSG;
	}
	type = cJSON_GetObjectItemCaseSensitive(o, "type");
	if(!type || cJSON_IsNull(type))
	{
		ev->type = CLUSTER__ETCD3_PUT;
	}
	else if(cJSON_IsString(type) && type->valuestring && !strcmp(type->valuestring, "PUT"))
	{
		ev->type = CLUSTER__ETCD3_PUT;
	}
	else if(cJSON_IsString(type) && type->valuestring && !strcmp(type->valuestring, "DELETE"))
	{
		ev->type = CLUSTER__ETCD3_DELETE;
	}
	else if(cJSON_IsNumber(type) && (type->valuedouble == 0 || type->valuedouble == 1))
	{
		ev->type = type->valuedouble == 1 ? CLUSTER__ETCD3_DELETE : CLUSTER__ETCD3_PUT;
	}
	else
	{
		return EBADMSG;
	}
	r = get_object(o, "kv", &kv);
	if(!r && !kv)
	{
		r = EBADMSG;
	}
	if(!r)
	{
		r = parse_kv(kv, &ev->kv);
	}
	return r;
}

int
cluster__etcd3_parse_watch(const char *line, size_t len, cluster__etcd3_watch_msg *out)
{
	const cJSON *res, *err, *arr, *it;
	cJSON *root;
	int r = 0;

	memset(out, 0, sizeof(*out));
	root = parse_object(line, len);
	if(!root)
	{
		return EBADMSG;
	}
	err = cJSON_GetObjectItemCaseSensitive(root, "error");
	if(err && !cJSON_IsNull(err))
	{
		char msg[512];
		int code;

		/* {"error":{grpc_code,message,..}} ends a stream; {"error":"..",
		 * "code":N} is a unary-style failure (HTTP 500) of the create */
		if(cluster__etcd3_parse_error(line, len, &code, msg, sizeof(msg)))
		{
			cJSON_Delete(root);
			return EBADMSG;
		}
		out->error = 1;
		out->error_code = code;
		out->error_message = strdup(msg);
		cJSON_Delete(root);
		if(!out->error_message)
		{
			memset(out, 0, sizeof(*out));
			return ENOMEM;
		}
		return 0;
	}
	r = get_object(root, "result", &res);
	if(!r && !res)
	{
		r = EBADMSG;
	}
	if(!r)
	{
		r = get_header_revision(res, &out->revision);
	}
	if(!r)
	{
		r = get_i64(res, "watch_id", &out->watch_id);
	}
	if(!r)
	{
		r = get_bool(res, "created", &out->created);
	}
	if(!r)
	{
		r = get_bool(res, "canceled", &out->canceled);
	}
	if(!r)
	{
		r = get_i64(res, "compact_revision", &out->compact_revision);
		if(!r && out->compact_revision < 0)
		{
			r = EBADMSG;
		}
	}
	if(!r)
	{
		r = get_string(res, "cancel_reason", &out->cancel_reason);
	}
	if(!r)
	{
		r = get_array(res, "events", &arr);
	}
	if(!r && arr)
	{
		size_t count = (size_t) cJSON_GetArraySize(arr), i = 0;

		if(count)
		{
			out->events = calloc(count, sizeof(*out->events));
			if(!out->events)
			{
				r = ENOMEM;
			}
			else
			{
				cJSON_ArrayForEach(it, arr)
				{
					r = parse_event(it, &out->events[i]);
					if(r)
					{
						break;
					}
					i++;
					out->n_events = i;
				}
			}
		}
	}
	cJSON_Delete(root);
	if(r)
	{
		cluster__etcd3_watch_msg_free(out);
	}
	return r;
}

/* ---------------------------------------------------------------------- */
/* member records                                                           */
/* ---------------------------------------------------------------------- */

int
cluster__etcd3_member_id(const char *prefix, const char *key, size_t key_len, char id[CLUSTER_NAME_MAX + 1])
{
	size_t plen = strlen(prefix), n;
	const char *s;

	id[0] = 0;
	if(key_len <= plen || memcmp(key, prefix, plen))
	{
		return ENOENT;
	}
	s = key + plen;
	n = key_len - plen;
	if(memchr(s, '/', n))
	{
		return ENOENT;
	}
	if(cluster__name_check(s, n, NULL) != CLUSTER__NAME_OK)
	{
		return EINVAL;
	}
	memcpy(id, s, n);
	id[n] = 0;
	return 0;
}

/* An integral JSON number within [lo, hi]. */
static int
get_ll(const cJSON *it, long long lo, long long hi, long long *out)
{
	double d;

	if(!cJSON_IsNumber(it))
	{
		return EINVAL;
	}
	d = it->valuedouble;
	if(!cluster__json_exact_integer(d) || d < (double) lo || d > (double) hi)
	{
		return EINVAL;
	}
	*out = (long long) d;
	return 0;
}

/* Read the advisor status fields (address, load, capacity) of a parsed
 * value into m. Returns 0 when they are absent or valid (has_status says
 * which), EINVAL when some are present but malformed (has_status 0). */
static int
status_fields(const cJSON *root, cluster__member *m)
{
	const cJSON *a, *l, *c;
	long long load, cap;

	m->has_status = 0;
	m->address[0] = 0;
	m->load = 0;
	m->capacity = 0;
	a = cJSON_GetObjectItemCaseSensitive(root, "address");
	l = cJSON_GetObjectItemCaseSensitive(root, "load");
	c = cJSON_GetObjectItemCaseSensitive(root, "capacity");
	if(l && c && !get_ll(l, 0, LLONG_MAX, &load) && !get_ll(c, CLUSTER_CAPACITY_UNBOUNDED, LLONG_MAX, &cap))
	{
		int ok = 1;

		if(a && !cJSON_IsNull(a))
		{
			size_t i, alen;

			ok = cJSON_IsString(a) && a->valuestring && (alen = strlen(a->valuestring)) <= CLUSTER_ADDRESS_MAX;
			for(i = 0; ok && a->valuestring[i]; i++)
			{
				unsigned char ch = (unsigned char) a->valuestring[i];

				ok = ch > ' ' && ch < 0x7f;
			}
			if(ok)
			{
				memcpy(m->address, a->valuestring, alen + 1);
			}
		}
		if(ok)
		{
			m->has_status = 1;
			m->load = load;
			m->capacity = cap;
		}
		else
		{
			m->address[0] = 0;
		}
	}
	return !m->has_status && (a || l || c) ? EINVAL : 0;
}

int
cluster__etcd3_parse_status_value(const char *value, size_t len, cluster__member *m, const char **why)
{
	cJSON *root;

	*why = "";
	root = value && len ? cluster__json_parse_whole(value, len) : NULL;
	if(!root || !cJSON_IsObject(root))
	{
		cJSON_Delete(root);
		m->has_status = 0;
		*why = "the status is not a JSON object";
		return EINVAL;
	}
	m->has_up = 0;
	m->up_ms = 0;
	if(status_fields(root, m) || !m->has_status)
	{
		cJSON_Delete(root);
		m->has_status = 0;
		*why = "the status (address, load >= 0, capacity >= -1) is missing or malformed";
		return EINVAL;
	}
	{
		/* optional, from newer writers: a bad one only goes unused (the
		 * observers then time this member's join themselves) */
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "up_ms");
		long long up;

		if(u && !get_ll(u, 0, CLUSTER__ETCD3_UP_MS_MAX, &up))
		{
			m->has_up = 1;
			m->up_ms = up;
		}
	}
	cJSON_Delete(root);
	return 0;
}

int
cluster__etcd3_parse_member_value(const char *value, size_t len, cluster__member *m, const char **why)
{
	const cJSON *w;
	long long workers;
	cJSON *root;

	*why = "";
	if(!value || !len)
	{
		*why = "the value is empty";
		return EINVAL;
	}
	root = cluster__json_parse_whole(value, len);
	if(!root || !cJSON_IsObject(root))
	{
		cJSON_Delete(root);
		*why = "the value is not a JSON object";
		return EINVAL;
	}
	w = cJSON_GetObjectItemCaseSensitive(root, "workers");
	if(!w)
	{
		cJSON_Delete(root);
		*why = "the value has no \"workers\" field";
		return EINVAL;
	}
	if(get_ll(w, 1, CLUSTER_WORKERS_MAX, &workers))
	{
		cJSON_Delete(root);
		*why = "\"workers\" is not an integer between 1 and 65535";
		return EINVAL;
	}
	m->workers = (int) workers;
	if(status_fields(root, m))
	{
		/* the member counts; only its advisor status is unusable */
		*why = "its status (address, load >= 0, capacity >= -1) is malformed; its status is ignored";
	}
	cJSON_Delete(root);
	return 0;
}
