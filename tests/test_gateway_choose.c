/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway/choose.c: the dial-address rule on every shape a member
 * may publish, the weights, the smooth round robin's exact proportions
 * and the rendezvous hash's shares and minimal movement.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

static void
dial_ok(const char *address, const char *host, const char *port)
{
	char h[300], p[8];

	if(gw_dial_address(address, h, sizeof(h), p, sizeof(p)))
	{
		fail_msg("'%s' was refused, expected %s %s", address, host, port);
	}
	assert_string_equal(h, host);
	assert_string_equal(p, port);
}

static void
dial_bad(const char *address)
{
	char h[300], p[8];

	if(!gw_dial_address(address, h, sizeof(h), p, sizeof(p)))
	{
		fail_msg("'%s' was accepted as %s %s", address, h, p);
	}
}

static void
test_dial_address(void **state)
{
	char h[4], p[8];

	(void) state;
	dial_ok("tcp://10.0.0.1:7000", "10.0.0.1", "7000");
	dial_ok("http://ws1.example:8080/chat?x=1", "ws1.example", "8080");
	dial_ok("http://ws1.example/chat", "ws1.example", "80");
	dial_ok("ws://h", "h", "80");
	dial_ok("wss://h/p", "h", "443");
	dial_ok("https://h:8443", "h", "8443");
	dial_ok("127.0.0.1:9", "127.0.0.1", "9");
	dial_ok("[::1]:8080", "::1", "8080");
	dial_ok("tcp://[fe80::1]:1", "fe80::1", "1");
	dial_ok("http://[::1]/x", "::1", "80");
	dial_ok("h:0080", "h", "80");
	dial_bad("h:065535");
	dial_bad("");
	dial_bad("tcp://h");         /* no port and no scheme default */
	dial_bad("h");               /* bare host without a port */
	dial_bad("tcp://h:80/path"); /* tcp:// has no path */
	dial_bad("h:80/path");       /* a bare address has nothing after it */
	dial_bad("ftp://h:21");      /* unknown scheme */
	dial_bad("h:0");
	dial_bad("h:65536");
	dial_bad("h:");
	dial_bad("h:8x");
	dial_bad(":80");
	dial_bad("a:b:80"); /* an unbracketed IPv6 address */
	dial_bad("[::1");
	dial_bad("[::1]x");
	dial_bad("http://user@h:80/");
	dial_bad("tcp://h\x01:80");
	dial_bad("tcp://h h:80");
	/* a host that does not fit is refused, not cut */
	assert_int_equal(gw_dial_address("tcp://abcd:1", h, sizeof(h), p, sizeof(p)), -1);
	assert_int_equal(gw_dial_address("tcp://abc:1", h, sizeof(h), p, sizeof(p)), 0);
	assert_string_equal(h, "abc");
}

static CLUSTERMEMBER *
members(size_t n)
{
	CLUSTERMEMBER *m = calloc(n, sizeof(*m));
	size_t i;

	assert_non_null(m);
	for(i = 0; i < n; i++)
	{
		snprintf(m[i].id, sizeof(m[i].id), "member-%zu", i);
		m[i].workers = 1;
		m[i].capacity = CLUSTER_CAPACITY_UNBOUNDED;
	}
	return m;
}

static void
test_weights(void **state)
{
	CLUSTERMEMBER *m = members(3);
	int cand[3] = { 1, 1, 1 };
	long long w[3];

	(void) state;
	m[0].capacity = 100;
	m[1].capacity = 300;
	m[2].capacity = 5;
	gw_weights(m, cand, 3, w);
	assert_int_equal(w[0], 100);
	assert_int_equal(w[1], 300);
	assert_int_equal(w[2], 5);
	/* one unbounded candidate: every weight is the worker count */
	m[2].capacity = CLUSTER_CAPACITY_UNBOUNDED;
	m[0].workers = 2;
	m[1].workers = 7;
	m[2].workers = 0;
	gw_weights(m, cand, 3, w);
	assert_int_equal(w[0], 2);
	assert_int_equal(w[1], 7);
	assert_int_equal(w[2], 1);
	/* ... unless it is not a candidate */
	cand[2] = 0;
	gw_weights(m, cand, 3, w);
	assert_int_equal(w[0], 100);
	assert_int_equal(w[1], 300);
	assert_int_equal(w[2], 0);
	/* clamped, so that sums cannot overflow */
	m[0].capacity = 1LL << 62;
	gw_weights(m, cand, 3, w);
	assert_int_equal(w[0], GW_WEIGHT_MAX);
	free(m);
}

/* Over every window of sum(weights) picks, each member is chosen exactly
 * its weight times; no member waits longer than needed. */
static void
test_round_robin_exact(void **state)
{
	long long w[5] = { 5, 1, 0, 3, 1 }, cur[5] = { 0 };
	int picks[5], round, i;
	long total = 10;

	(void) state;
	for(round = 0; round < 50; round++)
	{
		memset(picks, 0, sizeof(picks));
		for(i = 0; i < total; i++)
		{
			long c = gw_choose_round_robin(w, cur, 5);

			assert_true(c >= 0 && c < 5);
			picks[c]++;
		}
		assert_int_equal(picks[0], 5);
		assert_int_equal(picks[1], 1);
		assert_int_equal(picks[2], 0);
		assert_int_equal(picks[3], 3);
		assert_int_equal(picks[4], 1);
	}
	/* the heavy member is spread, not run: never more than 2 in a row
	 * for 5 of 10 */
	memset(cur, 0, sizeof(cur));
	{
		long prev = -1;
		int run = 0, longest = 0;

		for(i = 0; i < 100; i++)
		{
			long c = gw_choose_round_robin(w, cur, 5);

			run = c == prev ? run + 1 : 1;
			longest = run > longest ? run : longest;
			prev = c;
		}
		assert_true(longest <= 2);
	}
	w[0] = w[1] = w[3] = w[4] = 0;
	assert_int_equal(gw_choose_round_robin(w, cur, 5), -1);
	assert_int_equal(gw_choose_round_robin(w, cur, 0), -1);
}

#define KEYS 20000

static void
key_text(int k, char *out, size_t size)
{
	snprintf(out, size, "10.%d.%d.%d", (k >> 16) & 255, (k >> 8) & 255, k & 255);
}

/* Shares follow the weights, and removing or adding a member moves only
 * the keys that must move. */
static void
test_rendezvous(void **state)
{
	CLUSTERMEMBER *m = members(5);
	long long w[5] = { 1, 3, 1, 1, 0 };
	long *before = calloc(KEYS, sizeof(long));
	int counts[5] = { 0 }, k, moved_wrongly = 0, moved_to_new = 0;
	char key[32];

	(void) state;
	assert_non_null(before);
	for(k = 0; k < KEYS; k++)
	{
		key_text(k, key, sizeof(key));
		before[k] = gw_choose_rendezvous(key, m, w, 5);
		assert_true(before[k] >= 0 && before[k] < 4);
		counts[before[k]]++;
		/* the same key, the same member */
		assert_int_equal(gw_choose_rendezvous(key, m, w, 5), before[k]);
	}
	/* expected shares 1/6, 3/6, 1/6, 1/6 of 20000: within 5 % of each */
	assert_in_range(counts[0], 3333 - 167, 3333 + 167);
	assert_in_range(counts[1], 10000 - 500, 10000 + 500);
	assert_in_range(counts[2], 3333 - 167, 3333 + 167);
	assert_in_range(counts[3], 3333 - 167, 3333 + 167);
	/* member 1 leaves: only its keys move */
	w[1] = 0;
	for(k = 0; k < KEYS; k++)
	{
		long now;

		key_text(k, key, sizeof(key));
		now = gw_choose_rendezvous(key, m, w, 5);
		assert_true(now != 1);
		moved_wrongly += before[k] != 1 && now != before[k];
	}
	assert_int_equal(moved_wrongly, 0);
	/* member 4 joins (weight 1 of 7): keys move only to it, about 1/7 */
	w[1] = 3;
	w[4] = 1;
	for(k = 0; k < KEYS; k++)
	{
		long now;

		key_text(k, key, sizeof(key));
		now = gw_choose_rendezvous(key, m, w, 5);
		if(now != before[k])
		{
			assert_int_equal(now, 4);
			moved_to_new++;
		}
	}
	assert_in_range(moved_to_new, 2857 - 143, 2857 + 143);
	memset(w, 0, sizeof(w));
	assert_int_equal(gw_choose_rendezvous("x", m, w, 5), -1);
	free(before);
	free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dial_address),
		cmocka_unit_test(test_weights),
		cmocka_unit_test(test_round_robin_exact),
		cmocka_unit_test(test_rendezvous),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
