/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shard ownership's public calls without a registry: argument checks,
 * EPERM while joined, EINVAL without a callback, ENOTSUP with the etcd v2
 * engine (before any network use), and the static engine's fixed split
 * (acquire on join, more on a worker change, release on leave).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* What the callback saw, in order. */
static CLUSTERSHARD got_acq[64], got_rel[64];
static size_t n_acq, n_rel;
static int calls;
static int owned_inside; /* cluster_owned_shards() count seen inside the callback */

static void
on_shards(CLUSTER *c, const CLUSTERSHARD *acq, size_t na, const CLUSTERSHARD *rel, size_t nr)
{
	CLUSTERSHARD *o;
	size_t n;

	calls++;
	/* never NULL, even when empty (the header's promise) */
	assert_non_null(acq);
	assert_non_null(rel);
	memcpy(got_acq + n_acq, acq, na * sizeof(*acq));
	n_acq += na;
	memcpy(got_rel + n_rel, rel, nr * sizeof(*rel));
	n_rel += nr;
	/* a getter works inside (it never blocks), a control call does not */
	owned_inside = cluster_owned_shards(c, &o, &n) ? -1 : (int) n;
	cluster_shards_free(o);
	assert_int_equal(cluster_set_workers(c, 3), -1);
	assert_int_equal(errno, EDEADLK);
}

static void
reset(void)
{
	n_acq = n_rel = 0;
	calls = 0;
}

static void
test_arguments(void **state)
{
	CLUSTER *c = tu_cluster("cluster-test");

	(void) state;
	assert_int_equal(cluster_shards(c), 0);
	assert_int_equal(cluster_set_shards(c, -1), -1);
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(cluster_errmsg(c), "shard count -1"));
	assert_int_equal(cluster_set_shards(c, CLUSTER_SHARDS_MAX + 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_shards(c), 0);
	assert_int_equal(cluster_set_shards(c, CLUSTER_SHARDS_MAX), 0);
	assert_int_equal(cluster_shards(c), CLUSTER_SHARDS_MAX);
	assert_int_equal(cluster_set_shard_settle(c, -1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_set_shard_settle(c, 60001), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_set_shard_settle(c, 0), 0);
	/* shards set, no callback: the join is refused before anything runs */
	assert_int_equal(cluster_join(c), -1);
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(cluster_errmsg(c), "no shard callback"));
	assert_int_equal(cluster_index(c, 0), -1);
	/* getters before joining */
	{
		CLUSTERSHARD *o = (CLUSTERSHARD *) 1;
		size_t n = 1;

		assert_int_equal(cluster_owned_shards(c, &o, &n), -1);
		assert_int_equal(errno, EPERM);
		assert_null(o);
		assert_int_equal(n, 0);
		assert_int_equal(cluster_owned_shards(c, NULL, &n), -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(cluster_shard_owner(c, 0, NULL, 0, NULL), -1);
		assert_int_equal(errno, EPERM);
	}
	assert_int_equal(cluster_set_shards(NULL, 4), -1);
	assert_int_equal(errno, EINVAL);
	cluster_destroy(c);
}

static void
test_v2_refused(void **state)
{
	CLUSTER *c = tu_cluster("cluster-test");

	(void) state;
	/* a port nothing listens on: the refusal must come first */
	assert_int_equal(cluster_set_registry(c, "etcd2+http://127.0.0.1:9/"), 0);
	assert_int_equal(cluster_set_shards(c, 16), 0);
	assert_int_equal(cluster_set_shard_callback(c, on_shards), 0);
	assert_int_equal(cluster_join(c), -1);
	assert_int_equal(errno, ENOTSUP);
	assert_non_null(strstr(cluster_errmsg(c), "does not support shard ownership"));
	cluster_destroy(c);
}

static void
test_static_split(void **state)
{
	CLUSTER *c = tu_cluster("cluster-test");
	CLUSTERSHARD *o;
	size_t n, i;
	char id[CLUSTER_NAME_MAX + 1];
	long long token = 0;

	(void) state;
	reset();
	assert_int_equal(cluster_set_instance(c, "w1"), 0);
	assert_int_equal(cluster_static_set_index(c, 1), 0);
	assert_int_equal(cluster_static_set_total(c, 4), 0);
	assert_int_equal(cluster_set_shards(c, 10), 0);
	assert_int_equal(cluster_set_shard_callback(c, on_shards), 0);
	assert_int_equal(cluster_join(c), 0);
	/* index 1 of 4: s with floor(s * 4 / 10) == 1, i.e. 3 and 4 */
	assert_int_equal(calls, 1);
	assert_int_equal(n_acq, 2);
	assert_int_equal(got_acq[0].shard, 3);
	assert_int_equal(got_acq[1].shard, 4);
	assert_int_equal(got_acq[0].token, 1);
	assert_int_equal(owned_inside, 2);
	assert_int_equal(cluster_owned_shards(c, &o, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(o[1].shard, 4);
	cluster_shards_free(o);
	assert_int_equal(cluster_shard_owner(c, 4, id, sizeof(id), &token), 0);
	assert_string_equal(id, "w1");
	assert_int_equal(token, 1);
	assert_int_equal(cluster_shard_owner(c, 4, id, 2, &token), -1);
	assert_int_equal(errno, ENOSPC);
	assert_int_equal(cluster_shard_owner(c, 4, id, 0, &token), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_shard_owner(c, 0, id, sizeof(id), &token), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(cluster_shard_owner(c, 10, id, sizeof(id), &token), -1);
	assert_int_equal(errno, ERANGE);
	assert_int_equal(cluster_shard_owner(c, -1, id, sizeof(id), &token), -1);
	assert_int_equal(errno, ERANGE);
	/* configuration is fixed while joined */
	assert_int_equal(cluster_set_shards(c, 20), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_set_shard_callback(c, NULL), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_set_shard_settle(c, 5), -1);
	assert_int_equal(errno, EPERM);
	/* two workers: indexes 1 and 2, i.e. 3 .. 7 */
	reset();
	assert_int_equal(cluster_set_workers(c, 2), 0);
	assert_int_equal(calls, 1);
	assert_int_equal(n_acq, 3);
	assert_int_equal(n_rel, 0);
	for(i = 0; i < 3; i++)
	{
		assert_int_equal(got_acq[i].shard, 5 + i);
	}
	/* leave releases everything */
	reset();
	assert_int_equal(cluster_leave(c), 0);
	assert_int_equal(n_rel, 5);
	assert_int_equal(n_acq, 0);
	assert_int_equal(got_rel[0].shard, 3);
	assert_int_equal(got_rel[4].shard, 7);
	assert_int_equal(cluster_owned_shards(c, &o, &n), -1);
	assert_int_equal(errno, EPERM);
	cluster_destroy(c);
}

/* Every shard of a static cluster has exactly one worker, balanced. */
static void
test_static_cover(void **state)
{
	int S, T;

	(void) state;
	for(S = 1; S <= 23; S += 2)
	{
		for(T = 1; T <= 7; T++)
		{
			int seen[23] = { 0 }, idx;

			for(idx = 0; idx < T; idx++)
			{
				CLUSTER *c = tu_cluster("cluster-test");
				CLUSTERSHARD *o;
				size_t n, i;

				reset();
				assert_int_equal(cluster_static_set_index(c, idx), 0);
				assert_int_equal(cluster_static_set_total(c, T), 0);
				assert_int_equal(cluster_set_shards(c, S), 0);
				assert_int_equal(cluster_set_shard_callback(c, on_shards), 0);
				assert_int_equal(cluster_join(c), 0);
				assert_int_equal(cluster_owned_shards(c, &o, &n), 0);
				assert_true((int) n == S / T || (int) n == S / T + 1);
				for(i = 0; i < n; i++)
				{
					seen[o[i].shard]++;
				}
				cluster_shards_free(o);
				reset();
				cluster_destroy(c);
			}
			for(idx = 0; idx < S; idx++)
			{
				assert_int_equal(seen[idx], 1);
			}
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_v2_refused),
		cmocka_unit_test(test_static_split),
		cmocka_unit_test(test_static_cover),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
