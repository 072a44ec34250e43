/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The etcd v2 engine against a real etcd started with --enable-v2: the
 * original's key layout and value format (a mixed fleet with an instance
 * of the original), re-registration after the key vanishes, leave, and
 * duplicate ids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "etcdharness.h"
#include "etcdtest.h"

#define TTL 3

static etcdh *etcd;
static char registry[300];

static size_t
sink(char *p, size_t s, size_t n, void *ctx)
{
	char *buf = ctx;
	size_t have = strlen(buf), add = s * n;

	if(have + add < 4096)
	{
		memcpy(buf + have, p, add);
		buf[have + add] = 0;
	}
	return s * n;
}

/* A raw v2 request, as the original libcluster would send it. Returns the
 * HTTP status; the body (truncated to 4 KiB) goes to out if non-NULL. */
static long
v2(const char *method, const char *path, const char *form, char *out)
{
	char url[512], buf[4096] = "";
	CURL *curl = curl_easy_init();
	long status = 0;

	snprintf(url, sizeof(url), "%sv2/keys%s", etcdh_endpoint(etcd), path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, buf);
	if(form)
	{
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
	}
	if(curl_easy_perform(curl) == CURLE_OK)
	{
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	}
	curl_easy_cleanup(curl);
	if(out)
	{
		strcpy(out, buf);
	}
	return status;
}

static int
setup(void **state)
{
	static const char *const v2args[] = { "--enable-v2", NULL };

	(void) state;
	if(et_etcd_start(&etcd, v2args))
	{
		return -1;
	}
	snprintf(registry, sizeof(registry), "etcd2+%s", etcdh_endpoint(etcd));
	return 0;
}

static int
teardown(void **state)
{
	(void) state;
	etcdh_destroy(etcd);
	return 0;
}

static void
three(const char *key, et_member **m)
{
	m[0] = et_member_new(key, "node1", 2, registry, TTL);
	m[1] = et_member_new(key, "node2", 1, registry, TTL);
	m[2] = et_member_new(key, "node3", 4, registry, TTL);
	assert_int_equal(et_join(m[0]), 0);
	assert_int_equal(et_join(m[1]), 0);
	assert_int_equal(et_join(m[2]), 0);
	assert_int_equal(et_wait(m[0], 0, 7, 5), 0);
	assert_int_equal(et_wait(m[1], 2, 7, 5), 0);
	assert_int_equal(et_wait(m[2], 3, 7, 5), 0);
}

/* 2/1/4 -> bases 0, 2, 3 of 7, stored exactly as the original stored it. */
static void
test_layout(void **state)
{
	const char *key = et_key("v2layout");
	char path[256], body[4096];
	et_member *m[3];
	int i;

	(void) state;
	three(key, m);
	snprintf(path, sizeof(path), "/%s/production/node1", key);
	assert_int_equal(v2("GET", path, NULL, body), 200);
	assert_non_null(strstr(body, "\"value\":\"2\""));
	assert_non_null(strstr(body, "\"ttl\":"));
	for(i = 0; i < 3; i++)
	{
		et_member_free(m[i]);
	}
}

/* A member of the original libcluster (value "3", its own TTL) in the
 * same directory is counted, and its departure is seen. */
static void
test_mixed_fleet(void **state)
{
	const char *key = et_key("v2mixed");
	char path[256];
	et_member *m[3];
	int i;

	(void) state;
	three(key, m);
	snprintf(path, sizeof(path), "/%s/production/node0", key);
	assert_int_equal(v2("PUT", path, "value=3&ttl=120", NULL), 201);
	assert_int_equal(et_wait(m[0], 3, 10, 5), 0);
	assert_int_equal(et_wait(m[1], 5, 10, 5), 0);
	assert_int_equal(et_wait(m[2], 6, 10, 5), 0);
	/* the original refreshes with a plain update every 30 s: harmless */
	assert_int_equal(v2("PUT", path, "value=3&ttl=120", NULL), 200);
	assert_int_equal(v2("DELETE", path, NULL, NULL), 200);
	assert_int_equal(et_wait(m[0], 0, 7, 5), 0);
	assert_int_equal(et_wait(m[2], 3, 7, 5), 0);
	for(i = 0; i < 3; i++)
	{
		et_member_free(m[i]);
	}
}

/* The original's worst defect: a deleted key meant ejection for good. */
static void
test_never_ejected(void **state)
{
	const char *key = et_key("v2eject");
	char path[256];
	et_member *m[3];
	int i;

	(void) state;
	three(key, m);
	snprintf(path, sizeof(path), "/%s/production/node2", key);
	assert_int_equal(v2("DELETE", path, NULL, NULL), 200);
	assert_int_equal(et_wait(m[2], 2, 6, 5), 0);
	/* re-registered by its ping thread within TTL/3 */
	assert_int_equal(et_wait(m[1], 2, 7, TTL + 2), 0);
	assert_int_equal(et_wait(m[2], 3, 7, 5), 0);
	assert_int_equal(v2("GET", path, NULL, NULL), 200);
	for(i = 0; i < 3; i++)
	{
		et_member_free(m[i]);
	}
}

static void
test_leave_and_workers(void **state)
{
	const char *key = et_key("v2leave");
	et_member *m[3];
	double t0;
	int i;

	(void) state;
	three(key, m);
	assert_int_equal(cluster_set_workers(m[1]->c, 3), 0);
	assert_int_equal(et_wait(m[2], 5, 9, 5), 0);
	assert_int_equal(et_wait(m[0], 0, 9, 5), 0);
	t0 = etcdh_now();
	assert_int_equal(cluster_leave(m[0]->c), 0);
	assert_true(etcdh_now() - t0 < 1.0);
	assert_int_equal(et_last(m[0]).index, -1);
	assert_int_equal(et_wait(m[1], 0, 7, 5), 0);
	assert_int_equal(et_wait(m[2], 3, 7, 5), 0);
	for(i = 0; i < 3; i++)
	{
		et_member_free(m[i]);
	}
}

static void
test_duplicate(void **state)
{
	const char *key = et_key("v2dup");
	et_member *a = et_member_new(key, "same", 1, registry, TTL);
	et_member *b = et_member_new(key, "same", 1, registry, TTL);
	double t0;

	(void) state;
	assert_int_equal(et_join(a), 0);
	t0 = etcdh_now();
	errno = 0;
	assert_int_equal(et_join(b), -1);
	assert_int_equal(errno, EEXIST);
	/* it waited for a crashed predecessor's key to expire first */
	assert_true(etcdh_now() - t0 >= TTL);
	assert_int_equal(et_last(a).index, 0);
	et_member_free(b);
	et_member_free(a);
}

/* Passive: watches, counts nobody, registers nothing. */
static void
test_passive(void **state)
{
	const char *key = et_key("v2passive");
	char path[256];
	et_member *m[3], *w;
	int i;

	(void) state;
	three(key, m);
	w = et_member_new(key, "watcher", 1, registry, TTL);
	assert_int_equal(et_join_passive(w), 0);
	assert_int_equal(et_wait(w, -1, 7, 5), 0);
	snprintf(path, sizeof(path), "/%s/production/watcher", key);
	assert_int_equal(v2("GET", path, NULL, NULL), 404);
	et_member_free(m[2]);
	assert_int_equal(et_wait(w, -1, 3, 5), 0);
	et_member_free(w);
	for(i = 0; i < 2; i++)
	{
		et_member_free(m[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_mixed_fleet),
		cmocka_unit_test(test_never_ejected),
		cmocka_unit_test(test_leave_and_workers),
		cmocka_unit_test(test_duplicate),
		cmocka_unit_test(test_passive),
	};

	if(!etcdh_available() && !etcdh_required())
	{
		printf("1..0 # SKIP etcd is not installed (Debian package etcd-server)\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
