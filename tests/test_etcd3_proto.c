/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests of the pure etcd v3 protocol module: base64, request
 * builders (compared with what etcd expects), response and watch parsers
 * on canned answers from etcd 3.4 (tests/data/etcd3) and on every
 * malformed or hostile input we could think of. No etcd needed.
 */
#ifdef HAVE_CONFIG_H
# include "config.h"
#endif
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "etcd3-proto.h"
#include "member-table.h"

/* a string literal and its length */
#define S(x) (x), strlen(x)

/* ---- helpers ---------------------------------------------------------- */

static char *
load(const char *name, size_t *len)
{
	const char *dir = getenv("CLUSTER_TEST_DATADIR");
	char path[1024];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/etcd3/%s", dir ? dir : "tests/data", name);
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t) n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
	buf[n] = 0;
	fclose(f);
	*len = (size_t) n;
	return buf;
}

static char *
b64(const char *s)
{
	char *r = cluster__b64_encode(s, strlen(s));

	assert_non_null(r);
	return r;
}

/* Parse JSON text and return the string at a path of object keys. */
static const char *
jstr(cJSON *root, const char *a, const char *b, const char *c)
{
	cJSON *it = cJSON_GetObjectItemCaseSensitive(root, a);

	if(b)
	{
		it = cJSON_GetObjectItemCaseSensitive(it, b);
	}
	if(c)
	{
		it = cJSON_GetObjectItemCaseSensitive(it, c);
	}
	return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* ---- base64 ------------------------------------------------------------- */

static void
test_b64_round_trip(void **state)
{
	static const char *vec[][2] = {
		{ "", "" },
		{ "f", "Zg==" },
		{ "fo", "Zm8=" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
		{ "/members/", "L21lbWJlcnMv" },
		{ "/members0", "L21lbWJlcnMw" },
	};
	unsigned char all[256];
	size_t i, n;
	char *e, *d;

	(void) state;
	for(i = 0; i < sizeof(vec) / sizeof(vec[0]); i++)
	{
		e = cluster__b64_encode(vec[i][0], strlen(vec[i][0]));
		assert_string_equal(e, vec[i][1]);
		assert_int_equal(cluster__b64_decode(e, strlen(e), &d, &n), 0);
		assert_int_equal(n, strlen(vec[i][0]));
		assert_memory_equal(d, vec[i][0], n);
		assert_int_equal(d[n], 0);
		free(e);
		free(d);
	}
	/* every byte value, every length 0..256 */
	for(i = 0; i < 256; i++)
	{
		all[i] = (unsigned char) (255 - i);
	}
	for(i = 0; i <= 256; i++)
	{
		e = cluster__b64_encode(all, i);
		assert_non_null(e);
		assert_int_equal(strlen(e) % 4, 0);
		assert_int_equal(cluster__b64_decode(e, strlen(e), &d, &n), 0);
		assert_int_equal(n, i);
		if(i)
		{
			assert_memory_equal(d, all, i);
		}
		free(e);
		free(d);
	}
}

static void
test_b64_rejects(void **state)
{
	static const char *bad[] = {
		"eA",       /* unpadded: etcd refuses it too */
		"Zm9v-A==", /* URL-safe alphabet */
		"Zm9v_A==",
		"Zg=a", /* data after padding */
		"Z===", /* too much padding */
		"====",
		"Zg==Zg==", /* padding in the middle */
		"Zm 9v",
		"Zm9v\n",
		"Zm9",
		"Z\x80==",
	};
	size_t i, n;
	char *d = (char *) 1;

	(void) state;
	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		assert_int_equal(cluster__b64_decode(bad[i], strlen(bad[i]), &d, &n), EBADMSG);
		assert_null(d);
	}
	/* an embedded NUL is not base64 either */
	assert_int_equal(cluster__b64_decode("Zg\0=", 4, &d, &n), EBADMSG);
}

static void
test_range_end(void **state)
{
	unsigned char end[16];
	size_t n;

	(void) state;
	n = cluster__etcd3_range_end((const unsigned char *) "/members/", 9, end);
	assert_int_equal(n, 9);
	assert_memory_equal(end, "/members0", 9);
	n = cluster__etcd3_range_end((const unsigned char *) "a\xff", 2, end);
	assert_int_equal(n, 1);
	assert_int_equal(end[0], 'b');
	n = cluster__etcd3_range_end((const unsigned char *) "a\xfe\xff\xff", 4, end);
	assert_int_equal(n, 2);
	assert_int_equal(end[0], 'a');
	assert_int_equal(end[1], 0xff);
	n = cluster__etcd3_range_end((const unsigned char *) "\xff\xff", 2, end);
	assert_int_equal(n, 1);
	assert_int_equal(end[0], 0);
	n = cluster__etcd3_range_end((const unsigned char *) "", 0, end);
	assert_int_equal(n, 1);
	assert_int_equal(end[0], 0);
}

/* ---- builders ------------------------------------------------------------ */

static void
test_build_range_and_watch(void **state)
{
	cJSON *root;
	char *s, *k;

	(void) state;
	s = cluster__etcd3_build_range("/members/");
	assert_string_equal(s, "{\"key\":\"L21lbWJlcnMv\",\"range_end\":\"L21lbWJlcnMw\"}");
	free(s);

	s = cluster__etcd3_build_watch("/members/", 1, 43);
	assert_string_equal(s, "{\"create_request\":{\"key\":\"L21lbWJlcnMv\",\"range_end\":\"L21lbWJlcnMw\",\"start_revision\":\"43\",\"progress_notify\":true}}");
	free(s);

	/* single key, no start revision */
	s = cluster__etcd3_build_watch("/k/p/e/id", 0, 0);
	root = cJSON_Parse(s);
	assert_non_null(root);
	k = b64("/k/p/e/id");
	assert_string_equal(jstr(root, "create_request", "key", NULL), k);
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "create_request"), "range_end"));
	assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "create_request"), "start_revision"));
	free(k);
	cJSON_Delete(root);
	free(s);

	/* one watch of a stream ended; ids are strings, as every int64 */
	s = cluster__etcd3_build_cancel(7);
	assert_string_equal(s, "{\"cancel_request\":{\"watch_id\":\"7\"}}");
	free(s);
}

static void
test_build_lease(void **state)
{
	char *s;

	(void) state;
	s = cluster__etcd3_build_grant(5);
	assert_string_equal(s, "{\"TTL\":5}");
	free(s);
	/* lease IDs beyond 2^53 stay exact */
	s = cluster__etcd3_build_lease_id(INT64_C(7587869785474965259));
	assert_string_equal(s, "{\"ID\":\"7587869785474965259\"}");
	free(s);
	s = cluster__etcd3_build_lease_id(INT64_MAX);
	assert_string_equal(s, "{\"ID\":\"9223372036854775807\"}");
	free(s);
	s = cluster__etcd3_build_auth("app", "pw\"x");
	assert_string_equal(s, "{\"name\":\"app\",\"password\":\"pw\\\"x\"}");
	free(s);
}

static void
test_build_txn(void **state)
{
	char *s, *k, *v, *want;

	(void) state;
	k = b64("/svc/production/a");
	v = b64("{\"workers\":2}");
	want = malloc(1024);
	s = cluster__etcd3_build_create("/svc/production/a", "{\"workers\":2}", INT64_C(7587869785474965258));
	snprintf(want, 1024, "{\"compare\":[{\"key\":\"%s\",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":\"0\"}],"
						 "\"success\":[{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"7587869785474965258\"}}],"
						 "\"failure\":[{\"request_range\":{\"key\":\"%s\"}}]}",
		k, k, v, k);
	assert_string_equal(s, want);
	free(s);

	s = cluster__etcd3_build_update("/svc/production/a", "{\"workers\":2}", 12, 11);
	snprintf(want, 1024, "{\"compare\":[{\"key\":\"%s\",\"target\":\"LEASE\",\"result\":\"EQUAL\",\"lease\":\"11\"}],"
						 "\"success\":[{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"12\"}}],"
						 "\"failure\":[{\"request_range\":{\"key\":\"%s\"}}]}",
		k, k, v, k);
	assert_string_equal(s, want);
	free(s);
	free(want);
	free(k);
	free(v);
}

/* The shard record's requests: an exact-key get, a compare-and-swap on
 * the mod revision (or on absence), and the acknowledgement's plain put. */
static void
test_build_shard_requests(void **state)
{
	char *s, *k, *v, *want;

	(void) state;
	k = b64("/svc/production@shards");
	v = b64("{\"v\":1}");
	want = malloc(1024);
	s = cluster__etcd3_build_get("/svc/production@shards");
	snprintf(want, 1024, "{\"key\":\"%s\"}", k);
	assert_string_equal(s, want);
	free(s);
	s = cluster__etcd3_build_cas("/svc/production@shards", "{\"v\":1}", 0);
	snprintf(want, 1024, "{\"compare\":[{\"key\":\"%s\",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":\"0\"}],"
						 "\"success\":[{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\"}}],"
						 "\"failure\":[{\"request_range\":{\"key\":\"%s\"}}]}",
		k, k, v, k);
	assert_string_equal(s, want);
	free(s);
	s = cluster__etcd3_build_cas("/svc/production@shards", "{\"v\":1}", 42);
	snprintf(want, 1024, "{\"compare\":[{\"key\":\"%s\",\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":\"42\"}],"
						 "\"success\":[{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\"}}],"
						 "\"failure\":[{\"request_range\":{\"key\":\"%s\"}}]}",
		k, k, v, k);
	assert_string_equal(s, want);
	free(s);
	s = cluster__etcd3_build_put("/svc/production@shards", "{\"v\":1}", 7);
	snprintf(want, 1024, "{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"7\"}", k, v);
	assert_string_equal(s, want);
	free(s);
	free(want);
	free(k);
	free(v);
}

/* The guarded two-key write: the member key and the status key put under
 * one lease (or the status key deleted), guarded by the member key. */
static void
test_build_write(void **state)
{
	char *s, *k, *v, *sk, *sv, *want;

	(void) state;
	k = b64("/svc/production/a");
	v = b64("{\"workers\":2}");
	sk = b64("/svc/production@status/a");
	sv = b64("{\"address\":\"x:1\",\"load\":3,\"capacity\":-1}");
	want = malloc(2048);
	s = cluster__etcd3_build_write("/svc/production/a", 0, "/svc/production/a", "{\"workers\":2}", "/svc/production@status/a",
		"{\"address\":\"x:1\",\"load\":3,\"capacity\":-1}", 7);
	snprintf(want, 2048, "{\"compare\":[{\"key\":\"%s\",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":\"0\"}],"
						 "\"success\":[{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"7\"}},"
						 "{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"7\"}}],"
						 "\"failure\":[{\"request_range\":{\"key\":\"%s\"}}]}",
		k, k, v, sk, sv, k);
	assert_string_equal(s, want);
	free(s);

	/* status only, removed: the member key is only compared */
	s = cluster__etcd3_build_write("/svc/production/a", 9, NULL, NULL, "/svc/production@status/a", NULL, 9);
	snprintf(want, 2048, "{\"compare\":[{\"key\":\"%s\",\"target\":\"LEASE\",\"result\":\"EQUAL\",\"lease\":\"9\"}],"
						 "\"success\":[{\"request_delete_range\":{\"key\":\"%s\"}}],"
						 "\"failure\":[{\"request_range\":{\"key\":\"%s\"}}]}",
		k, sk, k);
	assert_string_equal(s, want);
	free(s);

	/* a join's: the writes, then a range of each prefix */
	s = cluster__etcd3_build_write_read("/svc/production/a", 0, "/svc/production/a", "{\"workers\":2}", NULL, NULL, 7, "/svc/production/",
		"/svc/production@status/");
	free(sk);
	free(sv);
	sk = b64("/svc/production/");
	sv = b64("/svc/production@status/");
	{
		char *e1 = b64("/svc/production0"), *e2 = b64("/svc/production@status0");

		snprintf(want, 2048, "{\"compare\":[{\"key\":\"%s\",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":\"0\"}],"
							 "\"success\":[{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"7\"}},"
							 "{\"request_range\":{\"key\":\"%s\",\"range_end\":\"%s\"}},"
							 "{\"request_range\":{\"key\":\"%s\",\"range_end\":\"%s\"}}],"
							 "\"failure\":[{\"request_range\":{\"key\":\"%s\"}}]}",
			k, k, v, sk, e1, sv, e2, k);
		free(e1);
		free(e2);
	}
	assert_string_equal(s, want);
	free(s);
	free(want);
	free(k);
	free(v);
	free(sk);
	free(sv);
}

/* Status values: built and read back; a status key never carries
 * workers, and a malformed one is refused as a whole. */
static void
test_status_value(void **state)
{
	static const char *const bad[] = {
		"",
		"not json",
		"[]",
		"{}",
		"{\"address\":\"a\"}",
		"{\"load\":-1,\"capacity\":5}",
		"{\"load\":1,\"capacity\":-2}",
		"{\"address\":\"a b\",\"load\":1,\"capacity\":5}",
		"{\"address\":7,\"load\":1,\"capacity\":5}",
	};
	cluster__member m;
	const char *why;
	size_t i;
	char *s;

	(void) state;
	s = cluster__etcd3_build_status_value("10.1.2.3:8080", 12, 0, -1);
	assert_string_equal(s, "{\"address\":\"10.1.2.3:8080\",\"load\":12,\"capacity\":0}");
	memset(&m, 0, sizeof(m));
	m.has_up = 1; /* a record without an age says so */
	assert_int_equal(cluster__etcd3_parse_status_value(s, strlen(s), &m, &why), 0);
	assert_int_equal(m.has_status, 1);
	assert_string_equal(m.address, "10.1.2.3:8080");
	assert_true(m.load == 12 && m.capacity == 0);
	assert_int_equal(m.has_up, 0);
	free(s);
	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		memset(&m, 0, sizeof(m));
		assert_int_equal(cluster__etcd3_parse_status_value(bad[i], strlen(bad[i]), &m, &why), EINVAL);
		assert_int_equal(m.has_status, 0);
		assert_true(*why);
	}
}

/* The age a status publishes ("up_ms"): written when known, read back;
 * a hostile one (negative, fractional, not a number, past 100 years) is
 * left out and the status stands, as a record without one. */
static void
test_status_up_ms(void **state)
{
	static const char *const ignored[] = {
		"{\"address\":\"x:1\",\"load\":3,\"capacity\":-1,\"up_ms\":-1}",
		"{\"address\":\"x:1\",\"load\":3,\"capacity\":-1,\"up_ms\":1.5}",
		"{\"address\":\"x:1\",\"load\":3,\"capacity\":-1,\"up_ms\":\"15\"}",
		"{\"address\":\"x:1\",\"load\":3,\"capacity\":-1,\"up_ms\":null}",
		"{\"address\":\"x:1\",\"load\":3,\"capacity\":-1,\"up_ms\":[1]}",
		"{\"address\":\"x:1\",\"load\":3,\"capacity\":-1,\"up_ms\":true}",
		"{\"address\":\"x:1\",\"load\":3,\"capacity\":-1,\"up_ms\":3155760000001}",
		"{\"address\":\"x:1\",\"load\":3,\"capacity\":-1,\"up_ms\":1e300}",
		"{\"address\":\"x:1\",\"load\":3,\"capacity\":-1,\"up_ms\":-1e300}",
	};
	cluster__member m;
	const char *why;
	size_t i;
	char *s;

	(void) state;
	s = cluster__etcd3_build_status_value("10.1.2.3:8080", 12, -1, 15000);
	assert_string_equal(s, "{\"address\":\"10.1.2.3:8080\",\"load\":12,\"capacity\":-1,\"up_ms\":15000}");
	memset(&m, 0, sizeof(m));
	assert_int_equal(cluster__etcd3_parse_status_value(s, strlen(s), &m, &why), 0);
	assert_true(m.has_status && m.load == 12 && m.capacity == -1);
	assert_int_equal(m.has_up, 1);
	assert_int_equal(m.up_ms, 15000);
	free(s);
	/* 0 (just joined) and the largest accepted */
	s = cluster__etcd3_build_status_value("", 0, 5, 0);
	assert_string_equal(s, "{\"address\":\"\",\"load\":0,\"capacity\":5,\"up_ms\":0}");
	assert_int_equal(cluster__etcd3_parse_status_value(s, strlen(s), &m, &why), 0);
	assert_true(m.has_up && m.up_ms == 0);
	free(s);
	s = cluster__etcd3_build_status_value("", 0, 5, CLUSTER__ETCD3_UP_MS_MAX);
	assert_int_equal(cluster__etcd3_parse_status_value(s, strlen(s), &m, &why), 0);
	assert_true(m.has_up && m.up_ms == CLUSTER__ETCD3_UP_MS_MAX);
	free(s);
	for(i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
	{
		memset(&m, 0, sizeof(m));
		m.up_ms = 77;
		assert_int_equal(cluster__etcd3_parse_status_value(ignored[i], strlen(ignored[i]), &m, &why), 0);
		assert_true(m.has_status && m.load == 3 && m.capacity == -1);
		assert_string_equal(m.address, "x:1");
		assert_int_equal(m.has_up, 0);
		assert_int_equal(m.up_ms, 0);
	}
	/* an age does not rescue a bad status */
	memset(&m, 0, sizeof(m));
	assert_int_equal(cluster__etcd3_parse_status_value(S("{\"load\":-1,\"capacity\":5,\"up_ms\":10}"), &m, &why), EINVAL);
	assert_int_equal(m.has_status, 0);
	assert_int_equal(m.has_up, 0);
}

static void
test_build_member_value(void **state)
{
	cluster__member m;
	const char *why;
	char *s;

	(void) state;
	s = cluster__etcd3_build_member_value(3, 0, NULL, 0, 0);
	assert_string_equal(s, "{\"workers\":3}");
	free(s);
	s = cluster__etcd3_build_member_value(65535, 1, "10.1.2.3:8080", 123456789012345LL, -1);
	assert_string_equal(s, "{\"workers\":65535,\"address\":\"10.1.2.3:8080\",\"load\":123456789012345,\"capacity\":-1}");
	memset(&m, 0, sizeof(m));
	assert_int_equal(cluster__etcd3_parse_member_value(s, strlen(s), &m, &why), 0);
	assert_int_equal(m.workers, 65535);
	assert_int_equal(m.has_status, 1);
	assert_string_equal(m.address, "10.1.2.3:8080");
	assert_true(m.load == 123456789012345LL);
	assert_true(m.capacity == -1);
	free(s);
}

/* ---- responses ----------------------------------------------------------- */

static void
test_parse_range(void **state)
{
	cluster__etcd3_range rg;
	size_t len;
	char *body = load("range-members.json", &len);

	(void) state;
	assert_int_equal(cluster__etcd3_parse_range(body, len, &rg), 0);
	assert_true(rg.revision == 42);
	assert_int_equal(rg.n_kvs, 7);
	assert_string_equal(rg.kvs[0].key, "/svc/production/a");
	assert_string_equal(rg.kvs[0].value, "{\"workers\":2}");
	assert_true(rg.kvs[0].lease == INT64_C(7587869785474965258));
	assert_true(rg.kvs[1].lease == INT64_C(7587869785474965259));
	assert_true(rg.kvs[2].lease == INT64_MAX);
	assert_true(rg.kvs[1].mod_revision == 12);
	assert_true(rg.kvs[3].lease == 0);
	assert_int_equal(rg.more, 0);
	cluster__etcd3_range_free(&rg);
	free(body);

	body = load("range-empty.json", &len);
	assert_int_equal(cluster__etcd3_parse_range(body, len, &rg), 0);
	assert_true(rg.revision == 5);
	assert_int_equal(rg.n_kvs, 0);
	assert_null(rg.kvs);
	cluster__etcd3_range_free(&rg);
	free(body);
}

static void
test_parse_range_hostile(void **state)
{
	static const char *bad[] = {
		"",
		"{",
		"[]",
		"null",
		"\"x\"",
		"{}", /* no header/revision */
		"{\"header\":{\"revision\":\"0\"}}",
		"{\"header\":{\"revision\":\"-3\"}}",
		"{\"header\":{\"revision\":\"abc\"}}",
		"{\"header\":{\"revision\":\"99999999999999999999\"}}", /* > int64 */
		"{\"header\":{\"revision\":1e300}}",
		"{\"header\":{\"revision\":1.5}}",
		"{\"header\":{\"revision\":9007199254740993}}", /* number beyond 2^53 */
		"{\"header\":{\"revision\":true}}",
		"{\"header\":[],\"kvs\":[]}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":{}}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[1]}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{}]}", /* kv without key */
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"\"}]}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"eA\"}]}", /* unpadded base64 */
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"YQ==\",\"value\":\"!!!!\"}]}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"YQ==\",\"value\":5}]}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"YQ==\",\"lease\":\"12x\"}]}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"-1\"}]}",
		"{\"header\":{\"revision\":\"1\"},\"kvs\":[{\"key\":\"YQ==\"},{\"key\":7}]}", /* second kv bad: no leak */
		"{\"header\":{\"revision\":\"1\"},\"more\":\"true\"}",
		"{\"header\":{\"revision\":\"1\"}} trailing",
	};
	cluster__etcd3_range rg;
	size_t i;

	(void) state;
	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		int r = cluster__etcd3_parse_range(bad[i], strlen(bad[i]), &rg);

		if(r != EBADMSG)
		{
			print_error("case %zu <%s> returned %d\n", i, bad[i], r);
		}
		assert_int_equal(r, EBADMSG);
		assert_int_equal(rg.n_kvs, 0);
		assert_null(rg.kvs);
	}
	/* NULL / empty bodies */
	assert_int_equal(cluster__etcd3_parse_range(NULL, 0, &rg), EBADMSG);
	/* a revision number (not string) is accepted when exact */
	assert_int_equal(cluster__etcd3_parse_range(S("{\"header\":{\"revision\":7}}"), &rg), 0);
	assert_true(rg.revision == 7);
	cluster__etcd3_range_free(&rg);
}

static void
test_parse_deep_nesting(void **state)
{
	cluster__etcd3_range rg;
	cluster__etcd3_watch_msg msg;
	size_t depth = 100000, i;
	char *s = malloc(depth * 2 + 64);

	(void) state;
	/* {"header":{"revision":"1"},"x":[[[[...]]]]} far beyond cJSON's limit */
	strcpy(s, "{\"header\":{\"revision\":\"1\"},\"x\":");
	{
		size_t off = strlen(s);

		for(i = 0; i < depth; i++)
		{
			s[off++] = '[';
		}
		for(i = 0; i < depth; i++)
		{
			s[off++] = ']';
		}
		s[off++] = '}';
		s[off] = 0;
	}
	assert_int_equal(cluster__etcd3_parse_range(s, strlen(s), &rg), EBADMSG);
	assert_int_equal(cluster__etcd3_parse_watch(s, strlen(s), &msg), EBADMSG);
	free(s);
}

static void
test_parse_txn(void **state)
{
	cluster__etcd3_txn t;
	size_t len;
	char *body = load("txn-succeeded.json", &len);

	(void) state;
	assert_int_equal(cluster__etcd3_parse_txn(body, len, &t), 0);
	assert_int_equal(t.succeeded, 1);
	assert_true(t.revision == 7);
	assert_int_equal(t.has_kv, 0);
	cluster__etcd3_txn_free(&t);
	free(body);

	body = load("txn-failed.json", &len);
	assert_int_equal(cluster__etcd3_parse_txn(body, len, &t), 0);
	assert_int_equal(t.succeeded, 0);
	assert_int_equal(t.has_kv, 1);
	assert_string_equal(t.kv.key, "/svc/production/a");
	assert_true(t.kv.lease == INT64_C(7587869785474965258));
	cluster__etcd3_txn_free(&t);
	free(body);

	/* failed, key vanished meanwhile: no kv */
	assert_int_equal(cluster__etcd3_parse_txn(S("{\"header\":{\"revision\":\"9\"},\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"9\"}}}]}"), &t), 0);
	assert_int_equal(t.has_kv, 0);
	cluster__etcd3_txn_free(&t);

	assert_int_equal(cluster__etcd3_parse_txn(S("{\"header\":{\"revision\":\"9\"},\"succeeded\":\"true\"}"), &t), EBADMSG);
	assert_int_equal(cluster__etcd3_parse_txn(S("{\"header\":{\"revision\":\"9\"},\"responses\":[7]}"), &t), EBADMSG);
	assert_int_equal(cluster__etcd3_parse_txn(S("{\"header\":{\"revision\":\"9\"},\"responses\":[{\"response_range\":{\"kvs\":[{\"key\":1}]}}]}"), &t), EBADMSG);
	assert_int_equal(cluster__etcd3_parse_txn(S("{\"succeeded\":true}"), &t), EBADMSG);
}

/* A join's txn answer (etcd 3.4's own, for build_write_read()): the
 * ranges in order at the txn's revision. A range that cannot be used
 * leaves none, with its cause, and never fails the txn: the write went
 * through whatever its reads say. */
static void
test_parse_txn_ranges(void **state)
{
	cluster__etcd3_txn t;
	size_t len;
	char *body = load("txn-read.json", &len);

	(void) state;
	assert_int_equal(cluster__etcd3_parse_txn(body, len, &t), 0);
	assert_int_equal(t.succeeded, 1);
	assert_true(t.revision == 4);
	assert_int_equal(t.ranges_err, 0);
	assert_int_equal(t.n_ranges, 2);
	assert_true(t.ranges[0].revision == 4);
	assert_int_equal(t.ranges[0].n_kvs, 2);
	assert_string_equal(t.ranges[0].kvs[0].key, "/svc/production/a");
	assert_string_equal(t.ranges[0].kvs[1].key, "/svc/production/b");
	assert_string_equal(t.ranges[0].kvs[1].value, "{\"workers\":1}");
	assert_int_equal(t.ranges[1].n_kvs, 1);
	assert_string_equal(t.ranges[1].kvs[0].key, "/svc/production@status/a");
	cluster__etcd3_txn_free(&t);
	assert_int_equal(t.n_ranges, 0);
	free(body);

	/* an empty prefix is a range with no kvs */
	assert_int_equal(cluster__etcd3_parse_txn(S("{\"header\":{\"revision\":\"5\"},\"succeeded\":true,\"responses\":[{\"response_put\":{}},"
												"{\"response_range\":{\"header\":{\"revision\":\"5\"}}}]}"),
						 &t),
		0);
	assert_int_equal(t.n_ranges, 1);
	assert_int_equal(t.ranges[0].n_kvs, 0);
	cluster__etcd3_txn_free(&t);

	/* unusable ranges: the txn stands, the ranges are dropped */
	{
		static const char *const bad[] = {
			/* a kv without a key */
			"{\"header\":{\"revision\":\"5\"},\"succeeded\":true,\"responses\":[{\"response_range\":{\"kvs\":[{\"value\":\"eA==\"}]}}]}",
			/* paged, though no limit was asked */
			"{\"header\":{\"revision\":\"5\"},\"succeeded\":true,\"responses\":[{\"response_range\":{\"kvs\":[],\"more\":true}}]}",
			/* the first good, the second not an object */
			"{\"header\":{\"revision\":\"5\"},\"succeeded\":true,\"responses\":[{\"response_range\":{\"kvs\":[{\"key\":\"L2E=\"}]}},"
			"{\"response_range\":7}]}",
			/* more ranges than any request of ours asks for */
			"{\"header\":{\"revision\":\"5\"},\"succeeded\":true,\"responses\":[{\"response_range\":{}},{\"response_range\":{}},"
			"{\"response_range\":{}}]}",
			/* a response that is not an object */
			"{\"header\":{\"revision\":\"5\"},\"succeeded\":true,\"responses\":[{\"response_range\":{}},\"x\"]}",
		};
		size_t i;

		for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		{
			assert_int_equal(cluster__etcd3_parse_txn(bad[i], strlen(bad[i]), &t), 0);
			assert_int_equal(t.succeeded, 1);
			assert_int_equal(t.n_ranges, 0);
			assert_int_equal(t.ranges_err, EBADMSG);
			cluster__etcd3_txn_free(&t);
		}
	}
}

static void
test_parse_lease(void **state)
{
	int64_t id, ttl;
	size_t len;
	char *body;

	(void) state;
	body = load("lease-grant.json", &len);
	assert_int_equal(cluster__etcd3_parse_grant(body, len, &id, &ttl), 0);
	assert_true(id == INT64_C(7587869785474965258));
	assert_true(ttl == 5);
	free(body);
	assert_int_equal(cluster__etcd3_parse_grant(S("{\"ID\":\"0\",\"TTL\":\"5\"}"), &id, &ttl), EBADMSG);
	assert_int_equal(cluster__etcd3_parse_grant(S("{\"ID\":\"12\"}"), &id, &ttl), EBADMSG);
	assert_int_equal(cluster__etcd3_parse_grant(S("{\"ID\":7587869785474965258,\"TTL\":5}"), &id, &ttl), EBADMSG); /* inexact double */

	body = load("keepalive-ok.json", &len);
	assert_int_equal(cluster__etcd3_parse_keepalive(body, len, &id, &ttl), 0);
	assert_true(id == INT64_C(7587869785474965258));
	assert_true(ttl == 5);
	free(body);
	body = load("keepalive-gone.json", &len);
	assert_int_equal(cluster__etcd3_parse_keepalive(body, len, &id, &ttl), 0);
	assert_true(ttl == 0);
	free(body);
	assert_int_equal(cluster__etcd3_parse_keepalive(S("{\"result\":{\"ID\":\"1\",\"TTL\":\"0\"}}"), &id, &ttl), 0);
	assert_true(ttl == 0);
	assert_int_equal(cluster__etcd3_parse_keepalive(S("{\"result\":{\"ID\":\"1\",\"TTL\":\"-1\"}}"), &id, &ttl), 0);
	assert_true(ttl == 0);
	body = load("keepalive-noleader.json", &len);
	assert_int_equal(cluster__etcd3_parse_keepalive(body, len, &id, &ttl), EIO);
	free(body);
	assert_int_equal(cluster__etcd3_parse_keepalive(S("{}"), &id, &ttl), EBADMSG);
	assert_int_equal(cluster__etcd3_parse_keepalive(S("{\"result\":[]}"), &id, &ttl), EBADMSG);
	assert_int_equal(cluster__etcd3_parse_keepalive(S("{\"result\":{\"TTL\":{}}}"), &id, &ttl), EBADMSG);
	assert_int_equal(cluster__etcd3_parse_keepalive(S("{\"result\":{\"TTL\":\"5\""), &id, &ttl), EBADMSG);
}

static void
test_parse_error_and_auth(void **state)
{
	char msg[64], *tok;
	size_t len;
	int code;
	char *body = load("error-lease-not-found.json", &len);

	(void) state;
	assert_int_equal(cluster__etcd3_parse_error(body, len, &code, msg, sizeof(msg)), 0);
	assert_int_equal(code, 5);
	assert_string_equal(msg, "etcdserver: requested lease not found");
	free(body);
	body = load("keepalive-noleader.json", &len);
	assert_int_equal(cluster__etcd3_parse_error(body, len, &code, msg, sizeof(msg)), 0);
	assert_int_equal(code, 14);
	assert_string_equal(msg, "etcdserver: no leader");
	free(body);
	/* message truncated to the buffer */
	assert_int_equal(cluster__etcd3_parse_error(S("{\"error\":\"0123456789\"}"), &code, msg, 5), 0);
	assert_string_equal(msg, "0123");
	assert_int_equal(cluster__etcd3_parse_error(S("Not Found"), &code, msg, sizeof(msg)), EBADMSG);
	assert_int_equal(cluster__etcd3_parse_error(S("{\"error\":5}"), &code, msg, sizeof(msg)), EBADMSG);

	assert_int_equal(cluster__etcd3_parse_auth(S("{\"header\":{},\"token\":\"yVAxpbSdArdFFjyu.15\"}"), &tok), 0);
	assert_string_equal(tok, "yVAxpbSdArdFFjyu.15");
	free(tok);
	assert_int_equal(cluster__etcd3_parse_auth(S("{\"token\":\"a\\r\\nX-Evil: 1\"}"), &tok), EBADMSG);
	assert_null(tok);
	assert_int_equal(cluster__etcd3_parse_auth(S("{\"token\":\"\"}"), &tok), EBADMSG);
	assert_int_equal(cluster__etcd3_parse_auth(S("{}"), &tok), EBADMSG);
}

/* ---- watch ------------------------------------------------------------- */

static void
test_parse_watch_stream(void **state)
{
	cluster__etcd3_watch_msg m;
	size_t len;
	char *body = load("watch-stream.jsonl", &len);
	char *line = body, *nl;

	(void) state;
	/* created */
	nl = strchr(line, '\n');
	assert_int_equal(cluster__etcd3_parse_watch(line, (size_t) (nl - line), &m), 0);
	assert_int_equal(m.created, 1);
	assert_int_equal(m.canceled, 0);
	assert_true(m.watch_id == 0);
	assert_true(m.revision == 42);
	assert_int_equal(m.n_events, 0);
	cluster__etcd3_watch_msg_free(&m);
	/* one PUT (type absent) */
	line = nl + 1;
	nl = strchr(line, '\n');
	assert_int_equal(cluster__etcd3_parse_watch(line, (size_t) (nl - line), &m), 0);
	assert_int_equal(m.n_events, 1);
	assert_int_equal(m.events[0].type, CLUSTER__ETCD3_PUT);
	assert_string_equal(m.events[0].kv.key, "/svc/production/d");
	assert_string_equal(m.events[0].kv.value, "{\"workers\":4}");
	assert_true(m.events[0].kv.mod_revision == 43);
	cluster__etcd3_watch_msg_free(&m);
	/* DELETE + PUT in one message */
	line = nl + 1;
	nl = strchr(line, '\n');
	assert_int_equal(cluster__etcd3_parse_watch(line, (size_t) (nl - line), &m), 0);
	assert_int_equal(m.n_events, 2);
	assert_int_equal(m.events[0].type, CLUSTER__ETCD3_DELETE);
	assert_string_equal(m.events[0].kv.key, "/svc/production/a");
	assert_int_equal(m.events[0].kv.value_len, 0);
	assert_true(m.events[0].kv.mod_revision == 44);
	assert_int_equal(m.events[1].type, CLUSTER__ETCD3_PUT);
	assert_true(m.events[1].kv.mod_revision == 45);
	cluster__etcd3_watch_msg_free(&m);
	/* progress notification */
	line = nl + 1;
	nl = strchr(line, '\n');
	assert_int_equal(cluster__etcd3_parse_watch(line, (size_t) (nl - line), &m), 0);
	assert_int_equal(m.created + m.canceled + (int) m.n_events + m.error, 0);
	assert_true(m.revision == 50);
	cluster__etcd3_watch_msg_free(&m);
	/* compaction */
	line = nl + 1;
	nl = strchr(line, '\n');
	assert_int_equal(cluster__etcd3_parse_watch(line, (size_t) (nl - line), &m), 0);
	assert_int_equal(m.canceled, 1);
	assert_true(m.compact_revision == 48);
	assert_true(m.revision == 0);
	cluster__etcd3_watch_msg_free(&m);
	/* permission cancel on create */
	line = nl + 1;
	nl = strchr(line, '\n');
	assert_int_equal(cluster__etcd3_parse_watch(line, (size_t) (nl - line), &m), 0);
	assert_int_equal(m.created, 1);
	assert_int_equal(m.canceled, 1);
	assert_true(m.watch_id == -1);
	assert_non_null(strstr(m.cancel_reason, "permission denied"));
	cluster__etcd3_watch_msg_free(&m);
	/* final stream error without newline */
	line = nl + 1;
	assert_null(strchr(line, '\n'));
	assert_int_equal(cluster__etcd3_parse_watch(line, strlen(line), &m), 0);
	assert_int_equal(m.error, 1);
	assert_int_equal(m.error_code, 14);
	assert_string_equal(m.error_message, "transport is closing");
	cluster__etcd3_watch_msg_free(&m);
	free(body);
}

static void
test_parse_watch_hostile(void **state)
{
	static const char *bad[] = {
		"",
		"{\"result\":",
		"{\"result\":null}",
		"{\"result\":[]}",
		"{\"nope\":{}}",
		"{\"result\":{\"created\":\"true\"}}",
		"{\"result\":{\"canceled\":1}}",
		"{\"result\":{\"compact_revision\":\"-5\"}}",
		"{\"result\":{\"watch_id\":{}}}",
		"{\"result\":{\"cancel_reason\":7}}",
		"{\"result\":{\"events\":{}}}",
		"{\"result\":{\"events\":[null]}}",
		"{\"result\":{\"events\":[{\"type\":\"EXPIRE\",\"kv\":{\"key\":\"YQ==\"}}]}}",
		"{\"result\":{\"events\":[{\"type\":2,\"kv\":{\"key\":\"YQ==\"}}]}}",
		"{\"result\":{\"events\":[{\"type\":\"DELETE\"}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\"}},{\"kv\":{\"key\":\"not base64\"}}]}}",
		"{\"result\":{\"header\":{\"revision\":\"1\"},\"events\":[{\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"18446744073709551616\"}}]}}",
		"{\"error\":5}",
		"{\"error\":[]}",
	};
	cluster__etcd3_watch_msg m;
	size_t i;

	(void) state;
	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		int r = cluster__etcd3_parse_watch(bad[i], strlen(bad[i]), &m);

		if(r != EBADMSG)
		{
			print_error("case %zu <%s> returned %d\n", i, bad[i], r);
		}
		assert_int_equal(r, EBADMSG);
		assert_null(m.events);
		assert_null(m.cancel_reason);
	}
	/* numeric enums are accepted */
	assert_int_equal(cluster__etcd3_parse_watch(S("{\"result\":{\"events\":[{\"type\":1,\"kv\":{\"key\":\"YQ==\"}}]}}"), &m), 0);
	assert_int_equal(m.events[0].type, CLUSTER__ETCD3_DELETE);
	cluster__etcd3_watch_msg_free(&m);
	/* the unary error shape (HTTP 500 on a bad create) */
	assert_int_equal(cluster__etcd3_parse_watch(S("{\"error\":\"unexpected EOF\",\"message\":\"unexpected EOF\",\"code\":2}"), &m), 0);
	assert_int_equal(m.error, 1);
	assert_int_equal(m.error_code, 2);
	cluster__etcd3_watch_msg_free(&m);
	/* unknown fields are ignored */
	assert_int_equal(cluster__etcd3_parse_watch(S("{\"result\":{\"header\":{\"revision\":\"3\"},\"fragment\":false,\"zzz\":[1,{}]}}"), &m), 0);
	assert_true(m.revision == 3);
	cluster__etcd3_watch_msg_free(&m);
}

/* ---- member records ------------------------------------------------------ */

static void
test_member_id(void **state)
{
	char id[CLUSTER_NAME_MAX + 1], key[400];
	const char *p = "/svc/production/";

	(void) state;
	assert_int_equal(cluster__etcd3_member_id(p, "/svc/production/node-1.a_b", 26, id), 0);
	assert_string_equal(id, "node-1.a_b");
	assert_int_equal(cluster__etcd3_member_id(p, "/svc/production/", 16, id), ENOENT);
	assert_int_equal(cluster__etcd3_member_id(p, "/svc/production/x/y", 19, id), ENOENT);
	assert_int_equal(cluster__etcd3_member_id(p, "/svc/productionX", 16, id), ENOENT);
	assert_int_equal(cluster__etcd3_member_id(p, "/other/a", 8, id), ENOENT);
	assert_int_equal(cluster__etcd3_member_id(p, "/svc/production/bad id", 22, id), EINVAL);
	assert_int_equal(cluster__etcd3_member_id(p, "/svc/production/..", 18, id), EINVAL);
	assert_int_equal(cluster__etcd3_member_id(p, "/svc/production/.", 17, id), EINVAL);
	assert_int_equal(cluster__etcd3_member_id(p, "/svc/production/a\0b", 19, id), EINVAL);
	assert_int_equal(cluster__etcd3_member_id(p, "/svc/production/\xc3\xbc", 18, id), EINVAL);
	memset(key, 'x', sizeof(key));
	memcpy(key, p, 16);
	assert_int_equal(cluster__etcd3_member_id(p, key, 16 + CLUSTER_NAME_MAX, id), 0);
	assert_int_equal(strlen(id), CLUSTER_NAME_MAX);
	assert_int_equal(cluster__etcd3_member_id(p, key, 16 + CLUSTER_NAME_MAX + 1, id), EINVAL);
}

static void
test_member_value(void **state)
{
	static const char *bad[] = {
		"",
		"2",
		"\"2\"",
		"[]",
		"null",
		"{",
		"{}",
		"{\"workers\":0}",
		"{\"workers\":65536}",
		"{\"workers\":-1}",
		"{\"workers\":1.5}",
		"{\"workers\":\"2\"}",
		"{\"workers\":true}",
		"{\"workers\":1e400}",
		"{\"Workers\":2}",
	};
	cluster__member m;
	const char *why;
	size_t i;

	(void) state;
	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		memset(&m, 0, sizeof(m));
		why = NULL;
		assert_int_equal(cluster__etcd3_parse_member_value(bad[i], strlen(bad[i]), &m, &why), EINVAL);
		assert_non_null(why);
		assert_true(strlen(why) > 0);
	}
	memset(&m, 0, sizeof(m));
	assert_int_equal(cluster__etcd3_parse_member_value(S("{\"workers\":1,\"x\":{\"y\":[]}}"), &m, &why), 0);
	assert_int_equal(m.workers, 1);
	assert_int_equal(m.has_status, 0);
	assert_string_equal(why, ""); /* no status at all: nothing to warn about */
	/* malformed status fields only drop the status, with a reason to log */
	assert_int_equal(cluster__etcd3_parse_member_value(S("{\"workers\":2,\"load\":-1,\"capacity\":5}"), &m, &why), 0);
	assert_int_equal(m.workers, 2);
	assert_int_equal(m.has_status, 0);
	assert_non_null(strstr(why, "status"));
	assert_int_equal(cluster__etcd3_parse_member_value(S("{\"workers\":2,\"address\":\"a b\",\"load\":1,\"capacity\":5}"), &m, &why), 0);
	assert_int_equal(m.has_status, 0);
	assert_string_equal(m.address, "");
	assert_non_null(strstr(why, "status"));
	assert_int_equal(cluster__etcd3_parse_member_value(S("{\"workers\":2,\"load\":1,\"capacity\":-2}"), &m, &why), 0);
	assert_int_equal(m.has_status, 0);
	assert_non_null(strstr(why, "status"));
	assert_int_equal(cluster__etcd3_parse_member_value(S("{\"workers\":2,\"load\":3,\"capacity\":0}"), &m, &why), 0);
	assert_int_equal(m.has_status, 1);
	assert_string_equal(why, "");
	assert_true(m.capacity == 0);
	assert_string_equal(m.address, "");
}

static void
test_table(void **state)
{
	cluster__table t;
	cluster__member rec;
	const char *ids[] = { "m", "c", "x", "a", "q", "b" };
	size_t i;
	int changed;

	(void) state;
	memset(&t, 0, sizeof(t));
	for(i = 0; i < 6; i++)
	{
		memset(&rec, 0, sizeof(rec));
		strcpy(rec.id, ids[i]);
		rec.workers = (int) i + 1;
		assert_int_equal(cluster__table_put(&t, &rec, 100, &changed), 0);
		assert_int_equal(changed, 1);
	}
	assert_int_equal(cluster__table_count(&t), 6);
	for(i = 1; i < cluster__table_count(&t); i++)
	{
		assert_true(strcmp(cluster__table_at(&t, i - 1, NULL)->id, cluster__table_at(&t, i, NULL)->id) < 0);
	}
	/* same content: received time kept; new revision stored */
	memset(&rec, 0, sizeof(rec));
	strcpy(rec.id, "q");
	rec.workers = 5;
	rec.mod_revision = 99;
	assert_int_equal(cluster__table_put(&t, &rec, 200, &changed), 0);
	assert_int_equal(changed, 0);
	assert_true(cluster__table_find(&t, "q")->received_ms == 100);
	assert_true(cluster__table_find(&t, "q")->mod_revision == 99);
	rec.workers = 6;
	assert_int_equal(cluster__table_put(&t, &rec, 300, &changed), 0);
	assert_int_equal(changed, 1);
	assert_true(cluster__table_find(&t, "q")->received_ms == 300);
	/* status change counts as a change */
	rec.has_status = 1;
	rec.load = 4;
	assert_int_equal(cluster__table_put(&t, &rec, 400, &changed), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(cluster__table_del(&t, "c"), 1);
	assert_int_equal(cluster__table_del(&t, "c"), 0);
	assert_int_equal(cluster__table_del(&t, "zz"), 0);
	assert_null(cluster__table_find(&t, "c"));
	assert_int_equal(cluster__table_count(&t), 5);
	assert_string_equal(cluster__table_at(&t, 0, NULL)->id, "a");
	assert_string_equal(cluster__table_at(&t, 1, NULL)->id, "b");
	assert_string_equal(cluster__table_at(&t, 2, NULL)->id, "m");
	cluster__table_free(&t);
	assert_int_equal(cluster__table_count(&t), 0);
}

/* The table holds at most CLUSTER_MEMBERS_MAX members: a new id beyond
 * that is refused with E2BIG and leaves the table as it was, while
 * updates of members already held and re-adds after a delete still work. */
static void
test_table_limit(void **state)
{
	cluster__table t;
	cluster__member rec;
	cluster__node *root;
	size_t i;
	int changed = 7;

	(void) state;
	memset(&t, 0, sizeof(t));
	memset(&rec, 0, sizeof(rec));
	rec.workers = 1;
	/* descending ids: every insert lands in front */
	for(i = 0; i < CLUSTER_MEMBERS_MAX; i++)
	{
		snprintf(rec.id, sizeof(rec.id), "m%06zu", (size_t) CLUSTER_MEMBERS_MAX - i);
		assert_int_equal(cluster__table_put(&t, &rec, 100, NULL), 0);
	}
	assert_int_equal(cluster__table_count(&t), CLUSTER_MEMBERS_MAX);
	root = t.root;
	/* one more, at either end or in the middle: refused, nothing moves */
	strcpy(rec.id, "m000000");
	assert_int_equal(cluster__table_put(&t, &rec, 200, &changed), E2BIG);
	assert_int_equal(changed, 7);
	strcpy(rec.id, "z");
	assert_int_equal(cluster__table_put(&t, &rec, 200, NULL), E2BIG);
	strcpy(rec.id, "m000001x");
	assert_int_equal(cluster__table_put(&t, &rec, 200, NULL), E2BIG);
	assert_int_equal(cluster__table_count(&t), CLUSTER_MEMBERS_MAX);
	assert_ptr_equal(t.root, root);
	assert_null(cluster__table_find(&t, "m000000"));
	assert_string_equal(cluster__table_at(&t, 0, NULL)->id, "m000001");
	assert_int_equal(cluster__table_check(&t), 0);
	/* a member already held may change at the limit */
	strcpy(rec.id, "m000002");
	rec.workers = 9;
	assert_int_equal(cluster__table_put(&t, &rec, 300, &changed), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(cluster__table_find(&t, "m000002")->workers, 9);
	/* below the limit again, a new member fits */
	assert_int_equal(cluster__table_del(&t, "m000003"), 1);
	strcpy(rec.id, "z");
	assert_int_equal(cluster__table_put(&t, &rec, 400, NULL), 0);
	assert_int_equal(cluster__table_count(&t), CLUSTER_MEMBERS_MAX);
	assert_int_equal(cluster__table_put(&t, &rec, 400, NULL), 0);
	strcpy(rec.id, "m000003");
	assert_int_equal(cluster__table_put(&t, &rec, 400, NULL), E2BIG);
	cluster__table_free(&t);
}

/* A range answer with n minimal member kvs under /a/p/ (malloc'd). */
static char *
range_of(size_t n)
{
	size_t cap = n * 80 + 128, off = 0, i;
	char *body = malloc(cap);

	assert_non_null(body);
	off += (size_t) snprintf(body, cap, "{\"header\":{\"revision\":\"7\"},\"kvs\":[");
	for(i = 0; i < n; i++)
	{
		char key[32], *k;

		snprintf(key, sizeof(key), "/a/p/m%06zu", i);
		k = b64(key);
		off += (size_t) snprintf(body + off, cap - off, "%s{\"key\":\"%s\",\"value\":\"eyJ3b3JrZXJzIjoxfQ==\",\"mod_revision\":\"5\"}", i ? "," : "", k);
		free(k);
	}
	off += (size_t) snprintf(body + off, cap - off, "],\"count\":\"%zu\"}", n);
	assert_true(off < cap);
	return body;
}

/* A range answer with more kvs than CLUSTER_MEMBERS_MAX is refused by
 * the parser (E2BIG) before it decodes or allocates any of them. */
static void
test_parse_range_limit(void **state)
{
	cluster__etcd3_range rg;
	char *body;

	(void) state;
	body = range_of(CLUSTER_MEMBERS_MAX);
	assert_int_equal(cluster__etcd3_parse_range(body, strlen(body), &rg), 0);
	assert_int_equal(rg.n_kvs, CLUSTER_MEMBERS_MAX);
	assert_int_equal(rg.kvs[CLUSTER_MEMBERS_MAX - 1].key_len, strlen("/a/p/m000000"));
	cluster__etcd3_range_free(&rg);
	free(body);
	body = range_of(CLUSTER_MEMBERS_MAX + 1);
	memset(&rg, 0x55, sizeof(rg));
	assert_int_equal(cluster__etcd3_parse_range(body, strlen(body), &rg), E2BIG);
	assert_null(rg.kvs);
	assert_int_equal(rg.n_kvs, 0);
	free(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_round_trip),
		cmocka_unit_test(test_b64_rejects),
		cmocka_unit_test(test_range_end),
		cmocka_unit_test(test_build_range_and_watch),
		cmocka_unit_test(test_build_lease),
		cmocka_unit_test(test_build_txn),
		cmocka_unit_test(test_build_member_value),
		cmocka_unit_test(test_build_write),
		cmocka_unit_test(test_build_shard_requests),
		cmocka_unit_test(test_status_value),
		cmocka_unit_test(test_status_up_ms),
		cmocka_unit_test(test_parse_range),
		cmocka_unit_test(test_parse_range_hostile),
		cmocka_unit_test(test_parse_deep_nesting),
		cmocka_unit_test(test_parse_txn),
		cmocka_unit_test(test_parse_txn_ranges),
		cmocka_unit_test(test_parse_lease),
		cmocka_unit_test(test_parse_error_and_auth),
		cmocka_unit_test(test_parse_watch_stream),
		cmocka_unit_test(test_parse_watch_hostile),
		cmocka_unit_test(test_member_id),
		cmocka_unit_test(test_member_value),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_table_limit),
		cmocka_unit_test(test_parse_range_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
