/* SPDX-License-Identifier: Apache-2.0 */
/* etcd v2 parsers: the original's value format, listings, watch events,
 * error bodies, and hostile input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "etcd2-proto.h"
#include <stdio.h>

#define S(x) x, sizeof(x) - 1

static void
test_workers(void **state)
{
	(void) state;
	assert_int_equal(cluster__etcd2_parse_workers(S("1")), 1);
	assert_int_equal(cluster__etcd2_parse_workers(S("2")), 2);
	assert_int_equal(cluster__etcd2_parse_workers(S("65535")), 65535);
	assert_int_equal(cluster__etcd2_parse_workers(S("65536")), 0);
	assert_int_equal(cluster__etcd2_parse_workers(S("0")), 0);
	assert_int_equal(cluster__etcd2_parse_workers(S("007")), 0);
	assert_int_equal(cluster__etcd2_parse_workers(S("-3")), 0);
	assert_int_equal(cluster__etcd2_parse_workers(S("+3")), 0);
	assert_int_equal(cluster__etcd2_parse_workers(S(" 3")), 0);
	assert_int_equal(cluster__etcd2_parse_workers(S("3 ")), 0);
	assert_int_equal(cluster__etcd2_parse_workers(S("3x")), 0);
	assert_int_equal(cluster__etcd2_parse_workers(S("999999999999")), 0);
	assert_int_equal(cluster__etcd2_parse_workers(S("")), 0);
	assert_int_equal(cluster__etcd2_parse_workers(NULL, 3), 0);
}

/* A listing as etcd 3.4 returns it for the original's layout, with
 * entries that must be left out. */
static void
test_list(void **state)
{
	static const char body[] =
		"{\"action\":\"get\",\"node\":{\"key\":\"/app/production\",\"dir\":true,\"nodes\":["
		"{\"key\":\"/app/production/node3\",\"value\":\"4\",\"modifiedIndex\":9,\"createdIndex\":9},"
		"{\"key\":\"/app/production/node1\",\"value\":\"2\",\"expiration\":\"2026-11-22T13:40:47Z\",\"ttl\":5,\"modifiedIndex\":7,\"createdIndex\":7},"
		"{\"key\":\"/app/production/sub\",\"dir\":true,\"modifiedIndex\":8,\"createdIndex\":8},"
		"{\"key\":\"/app/production/bad\",\"value\":\"two\",\"modifiedIndex\":10},"
		"{\"key\":\"/app/production/zero\",\"value\":\"0\",\"modifiedIndex\":11},"
		"{\"key\":\"/app/production/num\",\"value\":3,\"modifiedIndex\":12},"
		"{\"key\":\"/other/production/x\",\"value\":\"1\",\"modifiedIndex\":13},"
		"{\"key\":\"/app/production/a b\",\"value\":\"1\",\"modifiedIndex\":14},"
		"{\"value\":\"1\"},"
		"{\"key\":\"/app/production/node2\",\"value\":\"1\",\"modifiedIndex\":8}"
		"],\"modifiedIndex\":5,\"createdIndex\":5}}";
	cluster__member *m;
	size_t n, skipped;

	(void) state;
	assert_int_equal(cluster__etcd2_parse_list(S(body), "/app/production", &m, &n, &skipped), 0);
	assert_int_equal(n, 3);
	assert_int_equal(skipped, 7);
	assert_string_equal(m[0].id, "node3");
	assert_int_equal(m[0].workers, 4);
	assert_int_equal(m[0].mod_revision, 9);
	assert_string_equal(m[1].id, "node1");
	assert_int_equal(m[1].workers, 2);
	assert_string_equal(m[2].id, "node2");
	free(m);
}

static void
test_list_empty_and_bad(void **state)
{
	cluster__member *m = (cluster__member *) 1;
	size_t n = 9, skipped = 9;

	(void) state;
	assert_int_equal(cluster__etcd2_parse_list(S("{\"action\":\"get\",\"node\":{\"key\":\"/a/b\",\"dir\":true}}"), "/a/b", &m, &n, &skipped), 0);
	assert_null(m);
	assert_int_equal(n, 0);
	assert_int_equal(skipped, 0);
	assert_int_equal(cluster__etcd2_parse_list(S("{\"node\":{\"nodes\":{}}}"), "/a/b", &m, &n, &skipped), EPROTO);
	assert_int_equal(cluster__etcd2_parse_list(S("{\"node\":[]}"), "/a/b", &m, &n, &skipped), EPROTO);
	assert_int_equal(cluster__etcd2_parse_list(S("{\"node\":{\"nodes\":["), "/a/b", &m, &n, &skipped), EPROTO);
	assert_int_equal(cluster__etcd2_parse_list(S("[]"), "/a/b", &m, &n, &skipped), EPROTO);
	assert_int_equal(cluster__etcd2_parse_list(S("<html>502 Bad Gateway</html>"), "/a/b", &m, &n, &skipped), EPROTO);
	assert_int_equal(cluster__etcd2_parse_list(NULL, 0, "/a/b", &m, &n, &skipped), EPROTO);
	assert_null(m);
}

static void
test_events(void **state)
{
	cluster__etcd2_event ev;

	(void) state;
	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":\"set\",\"node\":{\"key\":\"/k/e/n1\",\"value\":\"3\",\"modifiedIndex\":20,\"createdIndex\":20}}"), "/k/e", &ev), 0);
	assert_true(ev.relevant);
	assert_false(ev.removed);
	assert_int_equal(ev.workers, 3);
	assert_string_equal(ev.id, "n1");
	assert_int_equal(ev.modified_index, 20);

	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":\"expire\",\"node\":{\"key\":\"/k/e/n1\",\"modifiedIndex\":21,\"createdIndex\":20},\"prevNode\":{\"key\":\"/k/e/n1\",\"value\":\"3\"}}"), "/k/e", &ev), 0);
	assert_true(ev.relevant);
	assert_true(ev.removed);
	assert_int_equal(ev.modified_index, 21);

	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":\"delete\",\"node\":{\"key\":\"/k/e/n1\",\"modifiedIndex\":22}}"), "/k/e", &ev), 0);
	assert_true(ev.removed);
	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":\"compareAndDelete\",\"node\":{\"key\":\"/k/e/n1\",\"modifiedIndex\":23}}"), "/k/e", &ev), 0);
	assert_true(ev.removed);

	/* an update with a bad value: relevant, workers 0 (engine drops it) */
	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":\"update\",\"node\":{\"key\":\"/k/e/n1\",\"value\":\"lots\",\"modifiedIndex\":24}}"), "/k/e", &ev), 0);
	assert_true(ev.relevant);
	assert_int_equal(ev.workers, 0);

	/* deeper keys and directories are not members, but advance the index */
	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":\"set\",\"node\":{\"key\":\"/k/e/sub/x\",\"value\":\"1\",\"modifiedIndex\":25}}"), "/k/e", &ev), 0);
	assert_false(ev.relevant);
	assert_int_equal(ev.modified_index, 25);
	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":\"set\",\"node\":{\"key\":\"/k/e/d\",\"dir\":true,\"modifiedIndex\":26}}"), "/k/e", &ev), 0);
	assert_false(ev.relevant);
	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":\"set\",\"node\":{\"key\":\"/k/e/../x\",\"value\":\"1\",\"modifiedIndex\":27}}"), "/k/e", &ev), 0);
	assert_false(ev.relevant);

	/* malformed */
	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":\"set\",\"node\":{\"key\":\"/k/e/n1\",\"value\":\"1\"}}"), "/k/e", &ev), EPROTO);
	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":\"set\",\"node\":{\"key\":\"/k/e/n1\",\"modifiedIndex\":\"5\"}}"), "/k/e", &ev), EPROTO);
	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":\"set\",\"node\":{\"key\":\"/k/e/n1\",\"modifiedIndex\":-5}}"), "/k/e", &ev), EPROTO);
	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":\"set\",\"node\":{\"key\":\"/k/e/n1\",\"modifiedIndex\":1e300}}"), "/k/e", &ev), EPROTO);
	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":7,\"node\":{\"key\":\"/k/e/n1\",\"modifiedIndex\":5}}"), "/k/e", &ev), EPROTO);
	assert_int_equal(cluster__etcd2_parse_event(S("{\"action\":\"set\""), "/k/e", &ev), EPROTO);
	assert_int_equal(cluster__etcd2_parse_event(S(""), "/k/e", &ev), EPROTO);
}

static void
test_errors(void **state)
{
	int code;
	uint64_t index;

	(void) state;
	assert_int_equal(cluster__etcd2_parse_error(S("{\"errorCode\":401,\"message\":\"The event in requested index is outdated and cleared\",\"cause\":\"the requested history has been cleared [109/7]\",\"index\":1108}"), &code, &index), 0);
	assert_int_equal(code, 401);
	assert_int_equal(index, 1108);
	assert_int_equal(cluster__etcd2_parse_error(S("{\"errorCode\":105,\"message\":\"Key already exists\"}"), &code, &index), 0);
	assert_int_equal(code, 105);
	assert_int_equal(index, 0);
	assert_int_equal(cluster__etcd2_parse_error(S("{\"errorCode\":\"105\"}"), &code, &index), EPROTO);
	assert_int_equal(cluster__etcd2_parse_error(S("404 page not found"), &code, &index), EPROTO);
}

/* Deep nesting and garbage must fail cleanly (no crash, no leak). */
static void
test_hostile(void **state)
{
	char *deep = malloc(200001);
	cluster__member *m;
	cluster__etcd2_event ev;
	size_t n, skipped, i;

	(void) state;
	assert_non_null(deep);
	for(i = 0; i < 100000; i++)
	{
		deep[i] = '[';
		deep[200000 - 1 - i] = ']';
	}
	deep[200000] = 0;
	assert_int_equal(cluster__etcd2_parse_list(deep, 200000, "/a", &m, &n, &skipped), EPROTO);
	assert_int_equal(cluster__etcd2_parse_event(deep, 200000, "/a", &ev), EPROTO);
	for(i = 0; i < 200000; i++)
	{
		deep[i] = (char) (i * 7919 % 251 + 1);
	}
	assert_int_equal(cluster__etcd2_parse_event(deep, 200000, "/a", &ev), EPROTO);
	free(deep);
}

/* A v2 listing of n members under /a/p (malloc'd). */
static char *
listing_of(size_t n)
{
	size_t cap = n * 64 + 128, off = 0, i;
	char *body = malloc(cap);

	assert_non_null(body);
	off += (size_t) snprintf(body, cap, "{\"action\":\"get\",\"node\":{\"key\":\"/a/p\",\"dir\":true,\"nodes\":[");
	for(i = 0; i < n; i++)
	{
		off += (size_t) snprintf(body + off, cap - off, "%s{\"key\":\"/a/p/m%06zu\",\"value\":\"1\",\"modifiedIndex\":5}", i ? "," : "", i);
	}
	off += (size_t) snprintf(body + off, cap - off, "]}}");
	assert_true(off < cap);
	return body;
}

/* More children than CLUSTER_MEMBERS_MAX: E2BIG before any member record
 * is allocated; exactly the limit is fine. */
static void
test_list_limit(void **state)
{
	cluster__member *m = (cluster__member *) 1;
	size_t n = 9, skipped = 9;
	char *body;

	(void) state;
	body = listing_of(CLUSTER_MEMBERS_MAX);
	assert_int_equal(cluster__etcd2_parse_list(body, strlen(body), "/a/p", &m, &n, &skipped), 0);
	assert_int_equal(n, CLUSTER_MEMBERS_MAX);
	assert_int_equal(skipped, 0);
	free(m);
	free(body);
	body = listing_of(CLUSTER_MEMBERS_MAX + 1);
	m = (cluster__member *) 1;
	assert_int_equal(cluster__etcd2_parse_list(body, strlen(body), "/a/p", &m, &n, &skipped), E2BIG);
	assert_null(m);
	assert_int_equal(n, 0);
	free(body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_workers),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_list_limit),
		cmocka_unit_test(test_list_empty_and_bad),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
