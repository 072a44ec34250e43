/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shard assignment: the record's text (round trip, normal form, the 0
 * revisions, every rejection), the planner's steps one by one, leave and
 * diff, then a simulated cluster driven through every membership change
 * of small clusters and thousands of random ones. The simulation plays
 * the members too: each applies the diff of every version it sees
 * (release, acquire, acknowledge), and a shard may never be held by two
 * of them at once. Balance and movement are checked against minima
 * computed here, independently of the planner's quota code.
 *
 * Linked with -Wl,--wrap=malloc,--wrap=realloc: allocations fail on
 * demand (fail_after). Run it under valgrind or ASan to see that nothing
 * leaks, on failure paths too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shard-map.h"
#include "testrng.h"

/* -1: allocations work; k >= 0: k more succeed, then every one fails. */
static long fail_after = -1;

void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_realloc(void *p, size_t size);

static int
should_fail(void)
{
	if(fail_after == 0)
	{
		return 1;
	}
	if(fail_after > 0)
	{
		fail_after--;
	}
	return 0;
}

void *
__wrap_malloc(size_t size)
{
	return should_fail() ? NULL : __real_malloc(size);
}

void *
__wrap_realloc(void *p, size_t size)
{
	return should_fail() ? NULL : __real_realloc(p, size);
}

static unsigned
rnd(unsigned n)
{
	return (unsigned) (rng64() % n);
}

/* ------------------------------------------------------------------ */
/* text helpers                                                         */
/* ------------------------------------------------------------------ */

static char *
enc(const cluster__shard_map *m)
{
	char *t = NULL;
	size_t n = 0;

	assert_int_equal(cluster__shard_map_encode(m, &t, &n), 0);
	assert_non_null(t);
	assert_int_equal(strlen(t), n);
	return t;
}

static void
dec(const char *text, uint32_t shards, int64_t rev, cluster__shard_map *m)
{
	char why[256];
	int err = cluster__shard_map_decode(text, strlen(text), shards, rev, m, why, sizeof(why));

	if(err)
	{
		print_error("decode failed (%d): %s\n", err, why);
	}
	assert_int_equal(err, 0);
	assert_string_equal(why, "");
}

static void
assert_encodes(const cluster__shard_map *m, const char *want)
{
	char *t = enc(m);

	assert_string_equal(t, want);
	free(t);
}

/* Decode, then re-encode: the text must be want. */
static void
assert_decodes_to(const char *text, uint32_t shards, int64_t rev, const char *want)
{
	cluster__shard_map m;

	dec(text, shards, rev, &m);
	assert_encodes(&m, want);
	cluster__shard_map_free(&m);
}

static void
assert_empty(const cluster__shard_map *m)
{
	assert_int_equal(m->shards, 0);
	assert_int_equal(m->n_runs, 0);
	assert_int_equal(m->n_owners, 0);
	assert_null(m->runs);
	assert_null(m->owners);
}

/* ------------------------------------------------------------------ */
/* the record                                                           */
/* ------------------------------------------------------------------ */

static void
test_init(void **state)
{
	cluster__shard_map m;

	(void) state;
	assert_int_equal(cluster__shard_map_init(&m, 0), EINVAL);
	assert_empty(&m);
	assert_int_equal(cluster__shard_map_init(&m, CLUSTER_SHARDS_MAX + 1), EINVAL);
	assert_empty(&m);
	assert_int_equal(cluster__shard_map_init(&m, 5), 0);
	assert_encodes(&m, "{\"v\":1,\"shards\":5,\"owners\":[],\"runs\":[[5,-1,-1,0,0]]}");
	assert_ptr_equal(cluster__shard_map_run(&m, 4), &m.runs[0]);
	assert_null(cluster__shard_map_run(&m, 5));
	assert_int_equal(cluster__shard_map_find_owner(&m, "a", 1), -1);
	assert_int_equal(cluster__shard_map_count(&m, "a", 1), 0);
	cluster__shard_map_free(&m);
	assert_empty(&m);
	cluster__shard_map_free(&m); /* twice is fine */
	cluster__shard_map_free(NULL);
	assert_int_equal(cluster__shard_map_init(&m, CLUSTER_SHARDS_MAX), 0);
	assert_encodes(&m, "{\"v\":1,\"shards\":1000000,\"owners\":[],\"runs\":[[1000000,-1,-1,0,0]]}");
	cluster__shard_map_free(&m);
}

static void
test_round_trip(void **state)
{
	const char *text = "{\"v\":1,\"shards\":10,\"owners\":[[\"a\",3],[\"b\",7],[\"c\",2]],"
					   "\"runs\":[[3,0,-1,4,0],[2,0,1,4,9],[1,-1,-1,0,0],[4,2,-1,9,0]]}";
	cluster__shard_map m, c;
	const cluster__shard_run *r;

	(void) state;
	dec(text, 10, 9, &m);
	assert_int_equal(m.n_owners, 3);
	assert_int_equal(m.n_runs, 4);
	assert_string_equal(m.owners[1].id, "b");
	assert_int_equal(m.owners[1].incarnation, 7);
	r = cluster__shard_map_run(&m, 4);
	assert_int_equal(r->start, 3);
	assert_int_equal(r->len, 2);
	assert_int_equal(r->owner, 0);
	assert_int_equal(r->next, 1);
	assert_int_equal(r->token, 4);
	assert_int_equal(r->since, 9);
	assert_int_equal(cluster__shard_map_run(&m, 5)->owner, -1);
	assert_int_equal(cluster__shard_map_run(&m, 9)->start, 6);
	assert_int_equal(cluster__shard_map_run(&m, 0)->start, 0);
	assert_encodes(&m, text);
	assert_int_equal(cluster__shard_map_find_owner(&m, "c", 2), 2);
	assert_int_equal(cluster__shard_map_find_owner(&m, "c", 3), -1);
	/* a pending hand-over does not count as given */
	assert_int_equal(cluster__shard_map_count(&m, "a", 3), 3);
	assert_int_equal(cluster__shard_map_count(&m, "b", 7), 0);
	assert_int_equal(cluster__shard_map_count(&m, "c", 2), 4);
	assert_int_equal(cluster__shard_map_copy(&c, &m), 0);
	cluster__shard_map_free(&m);
	assert_encodes(&c, text);
	cluster__shard_map_free(&c);
	/* surrounding white space is allowed */
	assert_decodes_to(" \n{\"v\":1,\"shards\":1,\"owners\":[],\"runs\":[[1,-1,-1,0,0]]}\r\n\t", 1, 1,
		"{\"v\":1,\"shards\":1,\"owners\":[],\"runs\":[[1,-1,-1,0,0]]}");
	/* as are extra fields and any key order */
	assert_decodes_to("{\"runs\":[[1,-1,-1,0,0]],\"x\":[1,{}],\"owners\":[],\"shards\":1,\"v\":1}", 1, 1,
		"{\"v\":1,\"shards\":1,\"owners\":[],\"runs\":[[1,-1,-1,0,0]]}");
}

/* 0 means "the version being written": decode resolves it to the
 * record's revision; a 0 where the field means nothing stays 0. */
static void
test_zero_revisions(void **state)
{
	(void) state;
	assert_decodes_to("{\"v\":1,\"shards\":4,\"owners\":[[\"a\",1],[\"b\",2]],\"runs\":[[2,0,1,0,0],[1,1,-1,0,0],[1,-1,-1,0,0]]}", 4, 12,
		"{\"v\":1,\"shards\":4,\"owners\":[[\"a\",1],[\"b\",2]],\"runs\":[[2,0,1,12,12],[1,1,-1,12,0],[1,-1,-1,0,0]]}");
	/* a token equal to the revision is fine, and 0 and the revision give
	 * equal runs, which merge */
	assert_decodes_to("{\"v\":1,\"shards\":4,\"owners\":[[\"a\",1]],\"runs\":[[2,0,-1,0,0],[2,0,-1,12,0]]}", 4, 12,
		"{\"v\":1,\"shards\":4,\"owners\":[[\"a\",1]],\"runs\":[[4,0,-1,12,0]]}");
}

/* A hand-built map out of normal form encodes like its normal form. */
static void
test_normal_form(void **state)
{
	char zed[] = "zed", unused[] = "unused", abc9[] = "abc", abc2[] = "abc";
	cluster__shard_owner owners[4] = { { zed, 5 }, { unused, 1 }, { abc9, 9 }, { abc2, 2 } };
	cluster__shard_run runs[6] = {
		{ 0, 2, 0, -1, 7, 0 },
		{ 2, 1, 0, -1, 7, 44 },  /* since means nothing without a next */
		{ 3, 1, -1, -1, 55, 0 }, /* nor a token without an owner */
		{ 4, 2, -1, -1, 0, 0 },
		{ 6, 1, 3, 2, 1, 8 },
		{ 7, 1, 3, 2, 1, 8 },
	};
	cluster__shard_map m, d;

	(void) state;
	memset(&m, 0, sizeof(m));
	m.shards = 8;
	m.owners = owners;
	m.n_owners = 4;
	m.runs = runs;
	m.n_runs = 6;
	/* owners in (id, incarnation) order, the unused one dropped */
	assert_encodes(&m, "{\"v\":1,\"shards\":8,\"owners\":[[\"abc\",2],[\"abc\",9],[\"zed\",5]],"
					   "\"runs\":[[3,2,-1,7,0],[3,-1,-1,0,0],[2,0,1,1,8]]}");
	/* an id no valid map holds is still written as valid JSON (which
	 * decode then refuses by name) */
	{
		char odd[] = "q\"\\\x01";
		char *t, why[200];
		cluster__shard_map x;

		owners[1].id = odd;
		runs[3].owner = 1;
		t = enc(&m);
		assert_string_equal(t, "{\"v\":1,\"shards\":8,\"owners\":[[\"abc\",2],[\"abc\",9],[\"q\\\"\\\\\\u0001\",1],[\"zed\",5]],"
							   "\"runs\":[[3,3,-1,7,0],[1,-1,-1,0,0],[2,2,-1,0,0],[2,0,1,1,8]]}");
		assert_int_equal(cluster__shard_map_decode(t, strlen(t), 8, 9, &x, why, sizeof(why)), EBADMSG);
		assert_non_null(strstr(why, "owner 2: id \"q\\x5c\"\\x5c\\x5c\\x5cu0001\" is not a valid name"));
		free(t);
		owners[1].id = unused;
		runs[3].owner = -1;
	}
	/* decode leaves it in normal form too */
	dec("{\"v\":1,\"shards\":8,\"owners\":[[\"zed\",5],[\"unused\",1],[\"abc\",9],[\"abc\",2]],"
		"\"runs\":[[2,0,-1,7,0],[1,0,-1,7,0],[1,-1,-1,0,0],[2,-1,-1,0,0],[1,3,2,1,8],[1,3,2,1,8]]}",
		8, 10, &d);
	assert_int_equal(d.n_owners, 3);
	assert_int_equal(d.n_runs, 3);
	assert_string_equal(d.owners[0].id, "abc");
	assert_int_equal(d.owners[0].incarnation, 2);
	assert_int_equal(d.runs[2].owner, 0);
	assert_int_equal(d.runs[2].next, 1);
	assert_encodes(&d, "{\"v\":1,\"shards\":8,\"owners\":[[\"abc\",2],[\"abc\",9],[\"zed\",5]],"
					   "\"runs\":[[3,2,-1,7,0],[3,-1,-1,0,0],[2,0,1,1,8]]}");
	cluster__shard_map_free(&d);
}

typedef struct bad bad;
struct bad
{
	const char *text;
	const char *words; /* the reason must contain this */
};

#define OWN1 "\"owners\":[[\"a\",1]]"

static void
check_bad(const char *text, size_t len, uint32_t shards, const char *words)
{
	cluster__shard_map m;
	char why[256];
	int err;

	memset(&m, 0x5a, sizeof(m));
	memset(why, 'x', sizeof(why));
	err = cluster__shard_map_decode(text, len, shards, 10, &m, why, sizeof(why));
	if(err != EBADMSG || !strstr(why, words))
	{
		print_error("record %.200s: got %d '%s', want EBADMSG with '%s'\n", text, err, why, words);
	}
	assert_int_equal(err, EBADMSG);
	assert_non_null(strstr(why, words));
	assert_true(strlen(why) < 200);
	assert_empty(&m);
}

/* One case per rule; each must be EBADMSG with a reason naming it. */
static void
test_decode_rejects(void **state)
{
	static const bad cases[] = {
		{ "", "empty" },
		{ "nope", "not JSON: 'nope'" },
		{ "{\"v\":1} x", "not JSON" },
		{ "{\"v\":1", "not JSON" },
		{ "[1,2]", "not a JSON object: '[1,2]'" },
		{ "null", "not a JSON object" },
		{ "{\"shards\":3,\"owners\":[],\"runs\":[[3,-1,-1,0,0]]}", "version \"v\": '(missing)'" },
		{ "{\"v\":2,\"shards\":3,\"owners\":[],\"runs\":[[3,-1,-1,0,0]]}", "version \"v\": '2'" },
		{ "{\"v\":\"1\",\"shards\":3,\"owners\":[],\"runs\":[[3,-1,-1,0,0]]}", "version \"v\": '\"1\"'" },
		{ "{\"v\":1.5,\"shards\":3,\"owners\":[],\"runs\":[[3,-1,-1,0,0]]}", "version \"v\": '1.5'" },
		{ "{\"v\":1,\"shards\":4,\"owners\":[],\"runs\":[[4,-1,-1,0,0]]}", "foreign record: \"shards\" is '4', not 3" },
		{ "{\"v\":1,\"owners\":[],\"runs\":[[3,-1,-1,0,0]]}", "foreign record" },
		{ "{\"v\":1,\"shards\":\"3\",\"owners\":[],\"runs\":[[3,-1,-1,0,0]]}", "foreign record" },
		{ "{\"v\":1,\"shards\":3,\"owners\":{},\"runs\":[[3,-1,-1,0,0]]}", "\"owners\" is not an array: '{}'" },
		{ "{\"v\":1,\"shards\":3,\"runs\":[[3,-1,-1,0,0]]}", "\"owners\" is not an array" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[],\"runs\":7}", "\"runs\" is not an array: '7'" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[],\"runs\":[]}", "0 runs for 3 shards" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[],\"runs\":[[1,-1,-1,0,0],[1,-1,-1,0,0],[1,-1,-1,0,0],[1,-1,-1,0,0]]}", "4 runs for 3 shards" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"a\"]],\"runs\":[[3,-1,-1,0,0]]}", "owner 0 is not [\"id\",incarnation]: '[\"a\"]'" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"a\",1,2]],\"runs\":[[3,-1,-1,0,0]]}", "owner 0 is not" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[1,1]],\"runs\":[[3,-1,-1,0,0]]}", "owner 0 is not" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[\"a\"],\"runs\":[[3,-1,-1,0,0]]}", "owner 0 is not" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"a\",1],[\"a/b\",1]],\"runs\":[[3,-1,-1,0,0]]}", "owner 1: id \"a/b\" is not a valid name" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"\",1]],\"runs\":[[3,-1,-1,0,0]]}", "owner 0: id \"\" is not a valid name" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"..\",1]],\"runs\":[[3,-1,-1,0,0]]}", "is not a valid name" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"a\\u001b[2Jb\",1]],\"runs\":[[3,-1,-1,0,0]]}", "id \"a\\x5cu001b[2Jb\" is not a valid name" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"a\\u0000b\",1]],\"runs\":[[3,0,-1,0,0]]}", "a NUL byte (\\u0000)" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"a\",-1]],\"runs\":[[3,-1,-1,0,0]]}", "owner 0: incarnation '-1' is not an integer >= 0" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"a\\\\u0000\",1]],\"runs\":[[3,0,-1,0,0]]}", "owner 0: id \"a\\x5c\\x5cu0000\" is not a valid name" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"a\",1.5]],\"runs\":[[3,-1,-1,0,0]]}", "incarnation '1.5'" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"a\",1e300]],\"runs\":[[3,-1,-1,0,0]]}", "incarnation '1.0000000000000001e+300'" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"a\",\"1\"]],\"runs\":[[3,-1,-1,0,0]]}", "owner 0 is not" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"a\",1],[\"b\",1],[\"a\",1]],\"runs\":[[3,-1,-1,0,0]]}", "owners 0 and 2 are the same owner: 'a' incarnation 1" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[3,-1,-1,0]]}", "run 0 is not [len,owner,next,token,since]: '[3,-1,-1,0]'" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[3,-1,-1,0,0,0]]}", "run 0 is not [len" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[{\"len\":3}]}", "run 0 is not [len" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[1,-1,-1,0,0],[2,\"0\",-1,0,0]]}", "run 1: owner '\"0\"' is not an integer" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[3,-1,-1,0,null]]}", "run 0: since 'null' is not an integer" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[1e300,-1,-1,0,0]]}", "run 0: length '1.0000000000000001e+300' is not an integer" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[0,-1,-1,0,0],[3,-1,-1,0,0]]}", "run 0: length '0' is out of range (1 .. 3)" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[-5,-1,-1,0,0],[3,-1,-1,0,0]]}", "run 0: length '-5' is out of range" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[4294967297,-1,-1,0,0]]}", "run 0: length '4294967297' is out of range" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[2,-1,-1,0,0],[2,-1,-1,0,0]]}", "run 1: the runs cover more than 3 shards" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[2,-1,-1,0,0]]}", "the runs cover 2 shards, not 3" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[3,1,-1,0,0]]}", "run 0: owner '1' is not -1 or an owner index (1 owners)" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[3,-2,-1,0,0]]}", "run 0: owner '-2' is not -1 or an owner index" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[3,0,2,0,0]]}", "run 0: next '2' is not -1 or an owner index" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"a\",1],[\"b\",1]],\"runs\":[[3,-1,1,0,0]]}", "run 0: a next ('1') without an owner" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[3,0,0,0,0]]}", "run 0: next == owner ('0')" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[3,0,-1,11,0]]}", "run 0: token '11' is out of range (0 .. revision 10)" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[3,0,-1,-1,0]]}", "run 0: token '-1' is out of range" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[3,-1,-1,5,0]]}", "run 0: token '5' on an unowned run" },
		{ "{\"v\":1,\"shards\":3,\"owners\":[[\"a\",1],[\"b\",1]],\"runs\":[[3,0,1,1,11]]}", "run 0: since '11' is out of range (0 .. revision 10)" },
		{ "{\"v\":1,\"shards\":3," OWN1 ",\"runs\":[[3,0,-1,1,4]]}", "run 0: since '4' without a next" },
	};
	size_t i, n;
	char *big;

	(void) state;
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		check_bad(cases[i].text, strlen(cases[i].text), 3, cases[i].words);
	}
	/* bytes after a NUL inside the length, and a record cut short */
	check_bad("{\"v\":1}\0{}", 10, 3, "not JSON");
	check_bad("{\"v\":1,\"shards\":3}", 5, 3, "not JSON: '{\"v\":'");
	/* control bytes and long input quoted escaped and cut */
	check_bad("\x1b[31m\nred", 9, 3, "not JSON: '\\x1b[31m\\x0ared'");
	/* a 1 MB id */
	n = 1 << 20;
	big = malloc(n + 200);
	assert_non_null(big);
	strcpy(big, "{\"v\":1,\"shards\":3,\"owners\":[[\"");
	memset(big + strlen(big), 'a', n);
	strcpy(big + 30 + n, "\",1]],\"runs\":[[3,-1,-1,0,0]]}");
	check_bad(big, strlen(big), 3, "owner 0: id \"aaaaaaaa");
	/* nesting deeper than cJSON allows */
	memset(big, '[', n);
	memset(big + n / 2, ']', n / 2);
	check_bad(big, n, 3, "not JSON");
	free(big);
	/* the caller's mistakes */
	{
		cluster__shard_map m;
		char why[128];
		const char *ok = "{\"v\":1,\"shards\":3,\"owners\":[],\"runs\":[[3,-1,-1,0,0]]}";

		assert_int_equal(cluster__shard_map_decode(ok, strlen(ok), 0, 1, &m, why, sizeof(why)), EINVAL);
		assert_int_equal(cluster__shard_map_decode(ok, strlen(ok), 3, 0, &m, why, sizeof(why)), EINVAL);
		assert_int_equal(cluster__shard_map_decode(ok, strlen(ok), 3, 1, &m, NULL, 0), 0);
		cluster__shard_map_free(&m);
		assert_int_equal(cluster__shard_map_decode("x", 1, 3, 1, &m, NULL, 0), EBADMSG);
		assert_int_equal(cluster__shard_map_decode("x", 1, 3, 1, &m, why, 1), EBADMSG);
		assert_string_equal(why, "");
	}
}

/* ------------------------------------------------------------------ */
/* the planner, step by step                                            */
/* ------------------------------------------------------------------ */

typedef struct exp_ctx exp_ctx;
struct exp_ctx
{
	int answer;
	int calls;
};

static int
expired_answer(void *ctx, const char *id, int64_t incarnation)
{
	exp_ctx *e = ctx;

	(void) id;
	(void) incarnation;
	e->calls++;
	return e->answer;
}

static cluster__shard_member
mem(const char *id, int64_t inc, int weight, int64_t acked)
{
	cluster__shard_member m;

	m.id = id;
	m.incarnation = inc;
	m.weight = weight;
	m.acked = acked;
	return m;
}

/* Plan from the record text cur (at revision rev); the plan's text must
 * be want, changed and moves as given. */
static void
plan_case(const char *cur, uint32_t shards, int64_t rev, const cluster__shard_member *live, size_t n, exp_ctx *e, const char *want, int want_changed, size_t want_moves)
{
	cluster__shard_map c, nx;
	int changed = -1;
	size_t moves = 99;

	dec(cur, shards, rev, &c);
	assert_int_equal(cluster__shard_plan(&c, live, n, expired_answer, e, &nx, &changed, &moves), 0);
	assert_encodes(&nx, want);
	assert_int_equal(changed, want_changed);
	assert_int_equal(moves, want_moves);
	cluster__shard_map_free(&c);
	cluster__shard_map_free(&nx);
}

static void
test_plan_fresh(void **state)
{
	cluster__shard_member live[3] = { mem("a", 1, 1, 0), mem("b", 2, 1, 0), mem("c", 3, 1, 0) };
	cluster__shard_member w[3] = { mem("a", 1, 1, 0), mem("b", 2, 2, 0), mem("c", 3, 0, 0) };
	exp_ctx e = { 0, 0 };

	(void) state;
	/* 10 over 3: 3 each and one more, to the first by id (all hold 0) */
	plan_case("{\"v\":1,\"shards\":10,\"owners\":[],\"runs\":[[10,-1,-1,0,0]]}", 10, 1, live, 3, &e,
		"{\"v\":1,\"shards\":10,\"owners\":[[\"a\",1],[\"b\",2],[\"c\",3]],\"runs\":[[4,0,-1,0,0],[3,1,-1,0,0],[3,2,-1,0,0]]}", 1, 10);
	/* by weight; weight 0 gets nothing */
	plan_case("{\"v\":1,\"shards\":10,\"owners\":[],\"runs\":[[10,-1,-1,0,0]]}", 10, 1, w, 3, &e,
		"{\"v\":1,\"shards\":10,\"owners\":[[\"a\",1],[\"b\",2]],\"runs\":[[4,0,-1,0,0],[6,1,-1,0,0]]}", 1, 10);
	/* nobody with weight: nothing happens */
	plan_case("{\"v\":1,\"shards\":10,\"owners\":[],\"runs\":[[10,-1,-1,0,0]]}", 10, 1, w + 2, 1, &e,
		"{\"v\":1,\"shards\":10,\"owners\":[],\"runs\":[[10,-1,-1,0,0]]}", 0, 0);
	plan_case("{\"v\":1,\"shards\":10,\"owners\":[],\"runs\":[[10,-1,-1,0,0]]}", 10, 1, NULL, 0, &e,
		"{\"v\":1,\"shards\":10,\"owners\":[],\"runs\":[[10,-1,-1,0,0]]}", 0, 0);
	/* balanced already: unchanged */
	plan_case("{\"v\":1,\"shards\":10,\"owners\":[[\"a\",1],[\"b\",2],[\"c\",3]],\"runs\":[[4,0,-1,1,0],[3,1,-1,1,0],[3,2,-1,1,0]]}", 10, 5, live, 3, &e,
		"{\"v\":1,\"shards\":10,\"owners\":[[\"a\",1],[\"b\",2],[\"c\",3]],\"runs\":[[4,0,-1,1,0],[3,1,-1,1,0],[3,2,-1,1,0]]}", 0, 0);
	assert_int_equal(e.calls, 0);
}

/* The one-mores go to those holding most above their floor: here c holds
 * 4 of 10 with three members, so c keeps its 4 and nothing moves. */
static void
test_plan_one_more(void **state)
{
	cluster__shard_member live[3] = { mem("a", 1, 1, 0), mem("b", 2, 1, 0), mem("c", 3, 1, 0) };
	cluster__shard_member two[2] = { mem("a", 1, 1, 0), mem("c", 3, 1, 0) };
	exp_ctx e = { 0, 0 };

	(void) state;
	plan_case("{\"v\":1,\"shards\":10,\"owners\":[[\"a\",1],[\"b\",2],[\"c\",3]],\"runs\":[[3,0,-1,1,0],[3,1,-1,1,0],[4,2,-1,1,0]]}", 10, 5, live, 3, &e,
		"{\"v\":1,\"shards\":10,\"owners\":[[\"a\",1],[\"b\",2],[\"c\",3]],\"runs\":[[3,0,-1,1,0],[3,1,-1,1,0],[4,2,-1,1,0]]}", 0, 0);
	/* a holds 5, c holds 2 (b's 3 unowned after b left): 10 over a, c is
	 * 5 each: c receives the lowest of the pool, the 3 unowned */
	plan_case("{\"v\":1,\"shards\":10,\"owners\":[[\"a\",1],[\"c\",3]],\"runs\":[[5,0,-1,1,0],[3,-1,-1,0,0],[2,1,-1,1,0]]}", 10, 5, two, 2, &e,
		"{\"v\":1,\"shards\":10,\"owners\":[[\"a\",1],[\"c\",3]],\"runs\":[[5,0,-1,1,0],[3,1,-1,0,0],[2,1,-1,1,0]]}", 1, 3);
}

/* The two-step hand-over: next = receiver, then after the ack owner =
 * receiver with a new token. The donor gives its highest shards. */
static void
test_plan_handover(void **state)
{
	cluster__shard_member live[2] = { mem("a", 1, 1, 0), mem("b", 2, 1, 0) };
	const char *all_a = "{\"v\":1,\"shards\":10,\"owners\":[[\"a\",1]],\"runs\":[[10,0,-1,3,0]]}";
	const char *asked = "{\"v\":1,\"shards\":10,\"owners\":[[\"a\",1],[\"b\",2]],\"runs\":[[5,0,-1,3,0],[5,0,1,3,0]]}";
	const char *asked7 = "{\"v\":1,\"shards\":10,\"owners\":[[\"a\",1],[\"b\",2]],\"runs\":[[5,0,-1,3,0],[5,0,1,3,7]]}";
	const char *taken = "{\"v\":1,\"shards\":10,\"owners\":[[\"a\",1],[\"b\",2]],\"runs\":[[5,0,-1,3,0],[5,1,-1,0,0]]}";
	exp_ctx e = { 0, 0 };

	(void) state;
	plan_case(all_a, 10, 5, live, 2, &e, asked, 1, 5);
	/* written at 7; no ack yet (or an older one): nothing to do, and no
	 * new hand-over is planned while one is pending */
	plan_case(asked, 10, 7, live, 2, &e, asked7, 0, 0);
	live[0].acked = 6;
	plan_case(asked, 10, 7, live, 2, &e, asked7, 0, 0);
	live[0].acked = 7;
	plan_case(asked, 10, 7, live, 2, &e, taken, 1, 0);
	live[0].acked = 0;
	/* the receiver gone or weightless: the hand-over is cancelled (and
	 * with b gone, a keeps everything) */
	plan_case(asked, 10, 7, live, 1, &e, all_a, 1, 0);
	live[1].weight = 0;
	plan_case(asked, 10, 7, live, 2, &e, all_a, 1, 0);
	/* the donor restarted (new incarnation): its shards are blocked until
	 * it expires; the pending hand-over is cleared */
	live[1].weight = 1;
	live[0].incarnation = 9;
	e.answer = 0;
	plan_case(asked, 10, 7, live, 2, &e,
		"{\"v\":1,\"shards\":10,\"owners\":[[\"a\",1]],\"runs\":[[10,0,-1,3,0]]}", 1, 0);
	assert_int_equal(e.calls, 1); /* once per owner, not per run */
	e.answer = 1;
	e.calls = 0;
	plan_case(asked, 10, 7, live, 2, &e,
		"{\"v\":1,\"shards\":10,\"owners\":[[\"a\",9],[\"b\",2]],\"runs\":[[5,0,-1,0,0],[5,1,-1,0,0]]}", 1, 10);
	assert_int_equal(e.calls, 1);
}

/* Blocked shards wait; the rest is planned around them. */
static void
test_plan_blocked(void **state)
{
	cluster__shard_member live[2] = { mem("a", 1, 1, 0), mem("c", 3, 1, 0) };
	const char *cur = "{\"v\":1,\"shards\":9,\"owners\":[[\"a\",1],[\"b\",2],[\"c\",3]],\"runs\":[[3,0,-1,1,0],[3,1,2,1,4],[3,2,-1,1,0]]}";
	exp_ctx e = { 0, 0 };

	(void) state;
	/* b is dead, not expired: its shards stay, its hand-over to c is
	 * cleared; quotas 5 and 4 (a holds 3, c 3: a gets the one more by
	 * id); there is no pool, so nothing moves */
	plan_case(cur, 9, 5, live, 2, &e,
		"{\"v\":1,\"shards\":9,\"owners\":[[\"a\",1],[\"b\",2],[\"c\",3]],\"runs\":[[3,0,-1,1,0],[3,1,-1,1,0],[3,2,-1,1,0]]}", 1, 0);
	assert_int_equal(e.calls, 1);
	/* expired: unowned, then granted in the same version */
	e.answer = 1;
	plan_case(cur, 9, 5, live, 2, &e,
		"{\"v\":1,\"shards\":9,\"owners\":[[\"a\",1],[\"c\",3]],\"runs\":[[3,0,-1,1,0],[2,0,-1,0,0],[1,1,-1,0,0],[3,1,-1,1,0]]}", 1, 3);
	/* with no callback nothing ever expires */
	{
		cluster__shard_map c, nx;
		int changed;
		size_t moves;

		dec(cur, 9, 5, &c);
		assert_int_equal(cluster__shard_plan(&c, live, 2, NULL, NULL, &nx, &changed, &moves), 0);
		assert_int_equal(cluster__shard_map_count(&nx, "b", 2), 3);
		cluster__shard_map_free(&c);
		cluster__shard_map_free(&nx);
		/* unsorted or duplicate live members are the caller's bug */
		live[0].id = "d";
		dec(cur, 9, 5, &c);
		assert_int_equal(cluster__shard_plan(&c, live, 2, NULL, NULL, &nx, &changed, &moves), EINVAL);
		assert_empty(&nx);
		live[0].id = "c";
		assert_int_equal(cluster__shard_plan(&c, live, 2, NULL, NULL, &nx, &changed, &moves), EINVAL);
		cluster__shard_map_free(&c);
	}
}

static void
leave_case(const char *cur, uint32_t shards, const char *id, int64_t inc, const char *want, int want_changed)
{
	cluster__shard_map c, nx;
	int changed = -1;

	dec(cur, shards, 9, &c);
	assert_int_equal(cluster__shard_map_leave(&c, id, inc, &nx, &changed), 0);
	assert_encodes(&nx, want);
	assert_int_equal(changed, want_changed);
	cluster__shard_map_free(&c);
	cluster__shard_map_free(&nx);
}

static void
test_leave(void **state)
{
	const char *cur = "{\"v\":1,\"shards\":9,\"owners\":[[\"a\",1],[\"b\",2],[\"c\",3]],\"runs\":[[3,0,-1,1,0],[3,1,2,1,4],[2,2,-1,1,0],[1,2,0,2,5]]}";

	(void) state;
	/* b's runs go to their next (token 0: this version) */
	leave_case(cur, 9, "b", 2, "{\"v\":1,\"shards\":9,\"owners\":[[\"a\",1],[\"c\",3]],\"runs\":[[3,0,-1,1,0],[3,1,-1,0,0],[2,1,-1,1,0],[1,1,0,2,5]]}", 1);
	/* a's runs become unowned; c's hand-over to a is cancelled */
	leave_case(cur, 9, "a", 1, "{\"v\":1,\"shards\":9,\"owners\":[[\"b\",2],[\"c\",3]],\"runs\":[[3,-1,-1,0,0],[3,0,1,1,4],[2,1,-1,1,0],[1,1,-1,2,0]]}", 1);
	/* someone the map does not name, or another incarnation: unchanged */
	leave_case(cur, 9, "b", 3, "{\"v\":1,\"shards\":9,\"owners\":[[\"a\",1],[\"b\",2],[\"c\",3]],\"runs\":[[3,0,-1,1,0],[3,1,2,1,4],[2,2,-1,1,0],[1,2,0,2,5]]}", 0);
	leave_case(cur, 9, "zz", 1, "{\"v\":1,\"shards\":9,\"owners\":[[\"a\",1],[\"b\",2],[\"c\",3]],\"runs\":[[3,0,-1,1,0],[3,1,2,1,4],[2,2,-1,1,0],[1,2,0,2,5]]}", 0);
}

static void
shards_of(const CLUSTERSHARD *s, size_t n, const unsigned *want, size_t n_want)
{
	size_t i;

	assert_int_equal(n, n_want);
	for(i = 0; i < n; i++)
	{
		assert_int_equal(s[i].shard, want[i]);
	}
}

static void
test_diff(void **state)
{
	const char *cur = "{\"v\":1,\"shards\":9,\"owners\":[[\"a\",1],[\"b\",2]],\"runs\":[[2,0,-1,4,0],[2,0,1,5,6],[1,-1,-1,0,0],[4,1,-1,3,0]]}";
	CLUSTERSHARD held[5] = { { 1, 4 }, { 2, 5 }, { 4, 2 }, { 8, 9 }, { 12, 1 } };
	CLUSTERSHARD *acq, *rel;
	size_t na, nr;
	int ack = -1;
	cluster__shard_map m;
	static const unsigned a_acq[] = { 0 }, a_rel[] = { 2, 4, 8, 12 };
	static const unsigned b_acq[] = { 5, 6, 7, 8 };

	(void) state;
	dec(cur, 9, 7, &m);
	/* a: keeps 1, acquires 0, releases 2 (hand-over pending), 4 (unowned),
	 * 8 (b's), 12 (past the end); asked to acknowledge */
	assert_int_equal(cluster__shard_diff(&m, "a", 1, held, 5, &acq, &na, &rel, &nr, &ack), 0);
	shards_of(acq, na, a_acq, 1);
	assert_int_equal(acq[0].token, 4);
	shards_of(rel, nr, a_rel, 4);
	assert_int_equal(rel[0].token, 5); /* the held token */
	assert_int_equal(ack, 1);
	free(acq);
	free(rel);
	/* b: acquires its four, holds nothing; nothing to acknowledge */
	assert_int_equal(cluster__shard_diff(&m, "b", 2, NULL, 0, &acq, &na, &rel, &nr, &ack), 0);
	shards_of(acq, na, b_acq, 4);
	assert_int_equal(acq[3].token, 3);
	assert_null(rel);
	assert_int_equal(nr, 0);
	assert_int_equal(ack, 0);
	free(acq);
	/* a stranger releases whatever it holds; all in order: nothing */
	assert_int_equal(cluster__shard_diff(&m, "c", 1, held, 2, &acq, &na, &rel, &nr, NULL), 0);
	assert_null(acq);
	assert_int_equal(nr, 2);
	free(rel);
	assert_int_equal(cluster__shard_diff(&m, "a", 1, held, 1, &acq, &na, &rel, &nr, &ack), 0);
	assert_int_equal(na, 1);
	assert_null(rel);
	free(acq);
	{
		CLUSTERSHARD h[2] = { { 0, 4 }, { 1, 4 } };

		assert_int_equal(cluster__shard_diff(&m, "a", 1, h, 2, &acq, &na, &rel, &nr, &ack), 0);
		assert_null(acq);
		assert_null(rel);
		assert_int_equal(na + nr, 0);
		assert_int_equal(ack, 1);
	}
	cluster__shard_map_free(&m);
}

/* ------------------------------------------------------------------ */
/* the simulated cluster                                                */
/* ------------------------------------------------------------------ */

enum
{
	LIVE,
	DEAD, /* crashed: its lease has not run out yet */
	GONE  /* left cleanly, or expired */
};

typedef struct slot slot;
struct slot
{
	char id[16];
	int64_t inc;
	int weight;
	int64_t acked;
	int state;
	int left;            /* DEAD: how many more times expired() says no */
	int64_t expired_rev; /* the version planned when expired() said yes */
	CLUSTERSHARD *held;  /* what the member holds, by its own account */
	size_t n_held;
};

typedef struct sim sim;
struct sim
{
	uint32_t S;
	int64_t rev;
	cluster__shard_map cur;
	slot *slots;
	size_t n_slots, cap;
	int *holder; /* per shard: the slot holding it, -1 */
	cluster__shard_member *live;
	size_t n_live;
	size_t moves;  /* moves the planner reported since the last reset */
	size_t rounds; /* versions written since the last reset */
	int64_t next_inc;
};

static void
sim_init(sim *s, uint32_t shards)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	s->S = shards;
	s->rev = 1;
	s->next_inc = 1;
	assert_int_equal(cluster__shard_map_init(&s->cur, shards), 0);
	s->holder = malloc(shards * sizeof(*s->holder));
	assert_non_null(s->holder);
	for(i = 0; i < shards; i++)
	{
		s->holder[i] = -1;
	}
}

static void
sim_free(sim *s)
{
	size_t i;

	for(i = 0; i < s->n_slots; i++)
	{
		free(s->slots[i].held);
	}
	free(s->slots);
	free(s->holder);
	free(s->live);
	cluster__shard_map_free(&s->cur);
}

/* A deep copy of a simulated cluster. */
static void
sim_clone(sim *s, const sim *base)
{
	size_t i;

	*s = *base;
	s->cap = base->n_slots + 1;
	assert_int_equal(cluster__shard_map_copy(&s->cur, &base->cur), 0);
	s->slots = malloc(s->cap * sizeof(*s->slots));
	s->live = malloc(s->cap * sizeof(*s->live));
	s->holder = malloc(s->S * sizeof(*s->holder));
	assert_true(s->slots && s->live && s->holder);
	memcpy(s->holder, base->holder, s->S * sizeof(*s->holder));
	for(i = 0; i < s->n_slots; i++)
	{
		s->slots[i] = base->slots[i];
		s->slots[i].held = malloc((base->slots[i].n_held + 1) * sizeof(CLUSTERSHARD));
		assert_non_null(s->slots[i].held);
		if(base->slots[i].n_held)
		{
			memcpy(s->slots[i].held, base->slots[i].held, base->slots[i].n_held * sizeof(CLUSTERSHARD));
		}
	}
}

static int
sim_join(sim *s, const char *id, int weight)
{
	slot *n;

	if(s->n_slots == s->cap)
	{
		s->cap = s->cap ? 2 * s->cap : 16;
		s->slots = realloc(s->slots, s->cap * sizeof(*s->slots));
		assert_non_null(s->slots);
		s->live = realloc(s->live, s->cap * sizeof(*s->live));
		assert_non_null(s->live);
	}
	n = &s->slots[s->n_slots];
	memset(n, 0, sizeof(*n));
	snprintf(n->id, sizeof(n->id), "%s", id);
	n->inc = s->next_inc++;
	n->weight = weight;
	n->state = LIVE;
	return (int) s->n_slots++;
}

/* The slot of a map owner (every owner is a slot). */
static int
slot_of(const sim *s, const cluster__shard_map *m, int32_t o)
{
	size_t i;

	if(o < 0)
	{
		return -1;
	}
	for(i = 0; i < s->n_slots; i++)
	{
		if(s->slots[i].inc == m->owners[o].incarnation && !strcmp(s->slots[i].id, m->owners[o].id))
		{
			return (int) i;
		}
	}
	fail_msg("owner %s/%lld is nobody", m->owners[o].id, (long long) m->owners[o].incarnation);
	return -1;
}

/* Per owner index of m, its slot. */
static int *
slots_of(const sim *s, const cluster__shard_map *m)
{
	int *r = malloc((m->n_owners + 1) * sizeof(*r));
	size_t i;

	assert_non_null(r);
	for(i = 0; i < m->n_owners; i++)
	{
		r[i] = slot_of(s, m, (int32_t) i);
	}
	return r;
}

/* The lease ran out: the member has certainly stopped, so what it held
 * is free from now on. */
static int
sim_expired(void *ctx, const char *id, int64_t inc)
{
	sim *s = ctx;
	size_t i, k;

	for(i = 0; i < s->n_slots; i++)
	{
		slot *d = &s->slots[i];

		if(d->inc != inc || strcmp(d->id, id))
		{
			continue;
		}
		assert_int_not_equal(d->state, LIVE);
		if(d->state == DEAD && d->left > 0)
		{
			d->left--;
			return 0;
		}
		d->state = GONE;
		d->expired_rev = s->rev + 1;
		for(k = 0; k < s->S; k++)
		{
			if(s->holder[k] == (int) i)
			{
				s->holder[k] = -1;
			}
		}
		return 1;
	}
	fail_msg("expired() asked about %s/%lld, nobody", id, (long long) inc);
	return 0;
}

static int
member_cmp(const void *a, const void *b)
{
	return strcmp(((const cluster__shard_member *) a)->id, ((const cluster__shard_member *) b)->id);
}

static void
build_live(sim *s)
{
	size_t i;

	s->n_live = 0;
	for(i = 0; i < s->n_slots; i++)
	{
		if(s->slots[i].state == LIVE)
		{
			s->live[s->n_live++] = mem(s->slots[i].id, s->slots[i].inc, s->slots[i].weight, s->slots[i].acked);
		}
	}
	if(s->n_live)
	{
		qsort(s->live, s->n_live, sizeof(*s->live), member_cmp);
	}
}

/*
 * Check the step from version old to version nw (written at s->rev). A
 * shard changes owner only: from nobody (granted); from a live owner to
 * the next it named, after that owner acknowledged; from a dead owner
 * that expired() gave up in this very plan; or, with leaver >= 0, from
 * the leaver to its next or nobody. A new owner has this version's token;
 * a hand-over names a live receiver with weight, and a new one this
 * version's since.
 */
static void
check_step(const sim *s, const cluster__shard_map *old, const cluster__shard_map *nw, int leaver)
{
	int *so = slots_of(s, old), *sn = slots_of(s, nw);
	size_t i = 0, j = 0;

	while(i < old->n_runs && j < nw->n_runs)
	{
		const cluster__shard_run *a = &old->runs[i], *b = &nw->runs[j];
		int ao = a->owner >= 0 ? so[a->owner] : -1, bo = b->owner >= 0 ? sn[b->owner] : -1;
		int an = a->next >= 0 ? so[a->next] : -1, bn = b->next >= 0 ? sn[b->next] : -1;
		uint64_t ea = (uint64_t) a->start + a->len, eb = (uint64_t) b->start + b->len;

		if(ao != bo)
		{
			if(bo >= 0)
			{
				assert_int_equal(b->token, s->rev);
				assert_true(ao < 0 || b->token > a->token);
			}
			if(leaver >= 0)
			{
				assert_int_equal(ao, leaver);
				assert_int_equal(bo, an);
			}
			else if(ao >= 0 && s->slots[ao].state == LIVE)
			{
				assert_int_equal(an, bo);
				assert_true(s->slots[ao].acked >= a->since);
			}
			else if(ao >= 0)
			{
				assert_int_equal(s->slots[ao].expired_rev, s->rev);
			}
		}
		else if(bo >= 0)
		{
			assert_int_equal(b->token, a->token);
		}
		if(bn >= 0)
		{
			assert_int_not_equal(bn, bo);
			assert_int_equal(s->slots[bn].state, LIVE);
			assert_true(s->slots[bn].weight > 0);
			if(bn != an || bo != ao)
			{
				assert_int_equal(b->since, s->rev);
			}
			else
			{
				assert_int_equal(b->since, a->since);
			}
		}
		i += ea <= eb;
		j += eb <= ea;
	}
	assert_int_equal(i, old->n_runs);
	assert_int_equal(j, nw->n_runs);
	free(so);
	free(sn);
}

/* Each live member applies the version's diff: release first (the shard
 * must be its), then acquire (the shard must be nobody's: the invariant
 * that matters), then acknowledge if asked. */
static void
apply_diffs(sim *s)
{
	size_t i, k;

	for(i = 0; i < s->n_slots; i++)
	{
		slot *m = &s->slots[i];
		CLUSTERSHARD *acq, *rel, *nh;
		size_t na, nr, a = 0, r = 0, h = 0, n = 0;
		int ack;

		if(m->state != LIVE)
		{
			continue;
		}
		assert_int_equal(cluster__shard_diff(&s->cur, m->id, m->inc, m->held, m->n_held, &acq, &na, &rel, &nr, &ack), 0);
		for(k = 0; k < nr; k++)
		{
			assert_int_equal(s->holder[rel[k].shard], (int) i);
			s->holder[rel[k].shard] = -1;
		}
		for(k = 0; k < na; k++)
		{
			const cluster__shard_run *run = cluster__shard_map_run(&s->cur, acq[k].shard);

			assert_int_equal(s->holder[acq[k].shard], -1);
			assert_int_equal(acq[k].token, run->token);
			s->holder[acq[k].shard] = (int) i;
		}
		/* held - released + acquired, all ascending */
		nh = malloc((m->n_held - nr + na + 1) * sizeof(*nh));
		assert_non_null(nh);
		while(h < m->n_held || a < na)
		{
			if(h < m->n_held && r < nr && m->held[h].shard == rel[r].shard)
			{
				h++;
				r++;
			}
			else if(h < m->n_held && (a == na || m->held[h].shard < acq[a].shard))
			{
				nh[n++] = m->held[h++];
			}
			else
			{
				assert_true(h == m->n_held || m->held[h].shard != acq[a].shard);
				nh[n++] = acq[a++];
			}
		}
		assert_int_equal(r, nr);
		free(m->held);
		m->held = nh;
		m->n_held = n;
		if(ack)
		{
			m->acked = s->rev;
		}
		free(acq);
		free(rel);
	}
}

/* Write a planned (or left) map as the next version, through its text. */
static void
sim_write(sim *s, cluster__shard_map *next, int leaver)
{
	cluster__shard_map nw;
	char *t = enc(next);

	cluster__shard_map_free(next);
	s->rev++;
	dec(t, s->S, s->rev, &nw);
	free(t);
	check_step(s, &s->cur, &nw, leaver);
	cluster__shard_map_free(&s->cur);
	s->cur = nw;
	s->rounds++;
	apply_diffs(s);
}

/* One plan; returns whether it wrote a version. */
static int
sim_round(sim *s)
{
	cluster__shard_map next;
	int changed = -1;
	size_t moves = 0;

	build_live(s);
	assert_int_equal(cluster__shard_plan(&s->cur, s->live, s->n_live, sim_expired, s, &next, &changed, &moves), 0);
	s->moves += moves;
	if(!changed)
	{
		char *a = enc(&s->cur), *b = enc(&next);

		/* unchanged means equal */
		assert_string_equal(a, b);
		free(a);
		free(b);
		assert_int_equal(moves, 0);
		cluster__shard_map_free(&next);
		return 0;
	}
	sim_write(s, &next, -1);
	return 1;
}

/* Does a crashed member still own shards in the map? */
static int
blocked(const sim *s)
{
	int *so = slots_of(s, &s->cur);
	size_t i;
	int b = 0;

	for(i = 0; i < s->cur.n_runs && !b; i++)
	{
		b = s->cur.runs[i].owner >= 0 && s->slots[so[s->cur.runs[i].owner]].state == DEAD;
	}
	free(so);
	return b;
}

/* Plan, write, apply and acknowledge until the plan changes nothing (and
 * nothing waits for a lease to run out). */
static void
sim_settle(sim *s)
{
	int n = 0;

	while(sim_round(s) || blocked(s))
	{
		assert_true(++n < 100);
	}
}

static void
sim_leave(sim *s, int i)
{
	cluster__shard_map next;
	slot *m = &s->slots[i];
	size_t k;
	int changed;

	/* it released everything first */
	for(k = 0; k < m->n_held; k++)
	{
		assert_int_equal(s->holder[m->held[k].shard], i);
		s->holder[m->held[k].shard] = -1;
	}
	free(m->held);
	m->held = NULL;
	m->n_held = 0;
	m->state = GONE;
	assert_int_equal(cluster__shard_map_leave(&s->cur, m->id, m->inc, &next, &changed), 0);
	if(changed)
	{
		sim_write(s, &next, i);
	}
	else
	{
		cluster__shard_map_free(&next);
	}
}

/* It stops answering: what it holds stays held until its lease runs out
 * (expired() says no k more times). */
static void
sim_crash(sim *s, int i, int k)
{
	slot *m = &s->slots[i];

	free(m->held);
	m->held = NULL;
	m->n_held = 0;
	m->state = DEAD;
	m->left = k;
}

/* Shards the map gives each slot (no hand-over pending), into cnt. */
static void
counts(const sim *s, int64_t *cnt)
{
	int *so = slots_of(s, &s->cur);
	size_t i;

	memset(cnt, 0, s->n_slots * sizeof(*cnt));
	for(i = 0; i < s->cur.n_runs; i++)
	{
		const cluster__shard_run *r = &s->cur.runs[i];

		if(r->owner >= 0 && r->next < 0)
		{
			cnt[so[r->owner]] += r->len;
		}
	}
	free(so);
}

/*
 * After a settle: nothing pending; with any weight, every shard owned by a
 * live member with weight and each holding floor(S*w/W) or one more
 * (exactly S*w/W when whole), S - sum of floors of them one more; each
 * member holding exactly what the map gives it.
 */
static void
check_settled(const sim *s)
{
	int64_t *cnt = malloc((s->n_slots + 1) * sizeof(*cnt)), total = 0, floors = 0, ones = 0;
	int *so = slots_of(s, &s->cur);
	size_t i, k;

	assert_non_null(cnt);
	counts(s, cnt);
	for(i = 0; i < s->n_slots; i++)
	{
		if(s->slots[i].state == LIVE)
		{
			total += s->slots[i].weight;
		}
	}
	for(i = 0; i < s->cur.n_runs; i++)
	{
		const cluster__shard_run *r = &s->cur.runs[i];

		assert_int_equal(r->next, -1);
		if(total > 0)
		{
			assert_true(r->owner >= 0);
			assert_int_equal(s->slots[so[r->owner]].state, LIVE);
			assert_true(s->slots[so[r->owner]].weight > 0);
		}
		for(k = r->start; k < (size_t) r->start + r->len; k++)
		{
			assert_int_equal(s->holder[k], r->owner >= 0 ? so[r->owner] : -1);
		}
	}
	for(i = 0; i < s->n_slots && total > 0; i++)
	{
		const slot *m = &s->slots[i];
		int64_t f, share;

		if(m->state != LIVE)
		{
			continue;
		}
		share = (int64_t) s->S * m->weight;
		f = share / total;
		floors += f;
		assert_int_equal(cnt[i], (int64_t) m->n_held);
		if(share % total)
		{
			assert_true(cnt[i] == f || cnt[i] == f + 1);
			ones += cnt[i] == f + 1;
		}
		else
		{
			assert_int_equal(cnt[i], f);
		}
	}
	if(total > 0)
	{
		assert_int_equal(ones, (int64_t) s->S - floors);
	}
	free(cnt);
	free(so);
}

/* What each live member holds now by the map (a crashed member's shards
 * count as nobody's: they will move), into held; returns W. */
static int64_t
live_held(const sim *s, int64_t *held)
{
	int64_t total = 0;
	size_t i;

	counts(s, held);
	for(i = 0; i < s->n_slots; i++)
	{
		if(s->slots[i].state != LIVE)
		{
			held[i] = 0;
		}
		else
		{
			total += s->slots[i].weight;
		}
	}
	return total;
}

/*
 * The least number of shards a balanced assignment must move from the
 * current state, by a closed form: each member keeps min(held, its count);
 * of the R = S - sum of floors one-mores, each given to a member holding
 * above its floor keeps one more shard in place.
 */
static int64_t
min_closed(const sim *s)
{
	int64_t *held = malloc((s->n_slots + 1) * sizeof(*held)), total, keep = 0, r = s->S, above = 0;
	size_t i;

	assert_non_null(held);
	total = live_held(s, held);
	if(total <= 0)
	{
		free(held);
		return 0;
	}
	for(i = 0; i < s->n_slots; i++)
	{
		int64_t share = (int64_t) s->S * s->slots[i].weight, f;

		if(s->slots[i].state != LIVE)
		{
			continue;
		}
		f = share / total;
		r -= f;
		keep += held[i] < f ? held[i] : f;
		above += share % total && held[i] > f;
	}
	free(held);
	return (int64_t) s->S - keep - (above < r ? above : r);
}

/* The same by enumeration of every count vector the balance rule allows
 * (small clusters): max over them of the shards kept in place. */
static void
enum_counts(const int64_t *held, const int64_t *lo, const int *frac, size_t n, size_t i, int64_t left, int64_t kept, int64_t *best)
{
	int64_t c;

	if(i == n)
	{
		if(!left && kept > *best)
		{
			*best = kept;
		}
		return;
	}
	for(c = lo[i]; c <= lo[i] + frac[i] && c <= left; c++)
	{
		enum_counts(held, lo, frac, n, i + 1, left - c, kept + (held[i] < c ? held[i] : c), best);
	}
}

static int64_t
min_enum(const sim *s)
{
	int64_t *held = malloc((s->n_slots + 1) * sizeof(*held)), h[8], lo[8], total, best = -1;
	int frac[8];
	size_t i, n = 0;

	assert_non_null(held);
	total = live_held(s, held);
	if(total <= 0)
	{
		free(held);
		return 0;
	}
	for(i = 0; i < s->n_slots; i++)
	{
		if(s->slots[i].state == LIVE)
		{
			int64_t share = (int64_t) s->S * s->slots[i].weight;

			assert_true(n < 8);
			h[n] = held[i];
			lo[n] = share / total;
			frac[n] = share % total != 0;
			n++;
		}
	}
	enum_counts(h, lo, frac, n, 0, s->S, 0, &best);
	assert_true(best >= 0);
	free(held);
	return (int64_t) s->S - best;
}

/*
 * The same by brute force over every assignment of shards to members
 * (tiny S): the least number of shards whose holder differs among the
 * assignments whose counts follow the balance rule.
 */
static int64_t
min_brute(const sim *s)
{
	int *cur = malloc(s->S * sizeof(*cur)), *who = malloc((s->n_slots + 1) * sizeof(*who)), *a = calloc(s->S, sizeof(int));
	int64_t *cnt = malloc((s->n_slots + 1) * sizeof(*cnt)), total = 0, best = INT64_MAX;
	size_t i, n = 0, k;
	int *so = slots_of(s, &s->cur);

	assert_true(cur && who && a && cnt);
	for(i = 0; i < s->n_slots; i++)
	{
		if(s->slots[i].state == LIVE && s->slots[i].weight > 0)
		{
			who[n++] = (int) i;
			total += s->slots[i].weight;
		}
	}
	for(k = 0; k < s->S && n; k++)
	{
		const cluster__shard_run *r = cluster__shard_map_run(&s->cur, (uint32_t) k);

		cur[k] = r->owner >= 0 && s->slots[so[r->owner]].state == LIVE ? so[r->owner] : -1;
	}
	for(best = n ? best : 0; n;)
	{
		int ok = 1;
		int64_t diff = 0;

		memset(cnt, 0, (s->n_slots + 1) * sizeof(*cnt));
		for(k = 0; k < s->S; k++)
		{
			cnt[who[a[k]]]++;
			diff += cur[k] != who[a[k]];
		}
		for(i = 0; i < n && ok; i++)
		{
			int64_t share = (int64_t) s->S * s->slots[who[i]].weight, f = share / total;

			ok = cnt[who[i]] == f || (share % total && cnt[who[i]] == f + 1);
		}
		if(ok && diff < best)
		{
			best = diff;
		}
		/* next assignment */
		for(k = 0; k < s->S && ++a[k] == (int) n; k++)
		{
			a[k] = 0;
		}
		if(k == s->S)
		{
			break;
		}
	}
	free(cur);
	free(who);
	free(a);
	free(cnt);
	free(so);
	return best;
}

/* ------------------------------------------------------------------ */
/* exhaustive small clusters                                            */
/* ------------------------------------------------------------------ */

static const char *const pool[4] = { "m0", "m1", "m2", "m3" };
static size_t brute_checks;

/* Membership number k: per pool id a weight 0..max or absent (base
 * max+2 digits). Returns how many members. */
static int
membership(unsigned k, int max, int w[4])
{
	int i, n = 0;

	for(i = 0; i < 4; i++)
	{
		w[i] = (int) (k % (unsigned) (max + 2)) - 1; /* -1: absent */
		k /= (unsigned) (max + 2);
		n += w[i] >= 0;
	}
	return n;
}

/* Make the live membership w (by pool id): members absent leave cleanly,
 * new ones join, the others take their new weight. */
static void
become(sim *s, const int w[4])
{
	size_t i;
	int p;

	for(p = 0; p < 4; p++)
	{
		int found = -1;

		for(i = 0; i < s->n_slots; i++)
		{
			if(s->slots[i].state == LIVE && !strcmp(s->slots[i].id, pool[p]))
			{
				found = (int) i;
			}
		}
		if(found >= 0 && w[p] < 0)
		{
			sim_leave(s, found);
		}
		else if(found >= 0)
		{
			s->slots[found].weight = w[p];
		}
		else if(w[p] >= 0)
		{
			sim_join(s, pool[p], w[p]);
		}
	}
}

/* Settle into membership w from the current state; moves must be the
 * minimum, by enumeration (and by brute force when brute). */
static void
settle_checked(sim *s, const int w[4], int brute, size_t *n_checked)
{
	int64_t want, closed;

	become(s, w);
	want = min_enum(s);
	closed = min_closed(s);
	assert_int_equal(closed, want);
	if(brute)
	{
		assert_int_equal(min_brute(s), want);
		brute_checks++;
	}
	s->moves = 0;
	sim_settle(s);
	check_settled(s);
	if((int64_t) s->moves != want)
	{
		print_error("S %u: moved %zu, minimum %lld\n", s->S, s->moves, (long long) want);
	}
	assert_int_equal((int64_t) s->moves, want);
	(*n_checked)++;
}

/*
 * Every S in 1..12; from the state a settle of a membership with weights
 * 1..3 leaves (and from all unowned), into every membership of 1..4
 * members with weights 0..3. Then one long walk through every membership
 * in turn, whose states are more fragmented. All starting memberships for
 * every S is about two million settles (some 20 s): only with
 * CLUSTER_TEST_FULL set; by default each S takes every eighth (a
 * different eighth for each S, so every one is a start for some S).
 */
static void
test_exhaustive(void **state)
{
	unsigned from, to, n_from = 5 * 5 * 5 * 5, n_to = 5 * 5 * 5 * 5;
	size_t checked = 0;
	uint32_t S;
	int full = getenv("CLUSTER_TEST_FULL") != NULL;

	(void) state;
	for(S = 1; S <= 12; S++)
	{
		sim walk;

		for(from = 0; from < n_from; from++)
		{
			int wf[4], wt[4];
			sim base;

			/* weights 1..3 (digits 0 and 1 of base 5 are absent and 0) */
			if(membership(from, 3, wf) == 0 && from)
			{
				continue;
			}
			if((wf[0] == 0 || wf[1] == 0 || wf[2] == 0 || wf[3] == 0) || (from && !full && (from + S) % 8))
			{
				continue;
			}
			sim_init(&base, S);
			settle_checked(&base, wf, S <= 5 && from % 7 == 0, &checked);
			for(to = 0; to < n_to; to++)
			{
				sim s;

				if(!membership(to, 3, wt))
				{
					continue;
				}
				sim_clone(&s, &base);
				settle_checked(&s, wt, S <= 5 && (from + to) % 13 == 0, &checked);
				sim_free(&s);
			}
			sim_free(&base);
		}
		sim_init(&walk, S);
		for(to = 0; to < n_to; to++)
		{
			int wt[4];

			if(membership((to * 7919u) % n_to, 3, wt))
			{
				settle_checked(&walk, wt, 0, &checked);
			}
		}
		sim_free(&walk);
	}
	fprintf(stderr, "# exhaustive: %zu settles checked (%zu minima also by brute force)\n", checked, brute_checks);
}

/* ------------------------------------------------------------------ */
/* random membership changes                                            */
/* ------------------------------------------------------------------ */

typedef struct tally tally;
struct tally
{
	size_t moves, minimum, changes, at_minimum, midflight;
};

/* Per shard, the slot the map gives it to (-1: nobody or pending). */
static void
owners_now(const sim *s, int *out)
{
	int *so = slots_of(s, &s->cur);
	size_t i, k;

	for(i = 0; i < s->cur.n_runs; i++)
	{
		const cluster__shard_run *r = &s->cur.runs[i];

		for(k = r->start; k < (size_t) r->start + r->len; k++)
		{
			out[k] = r->owner >= 0 && r->next < 0 ? so[r->owner] : -1;
		}
	}
	free(so);
}

/* A random live slot, or -1. */
static int
any_live(const sim *s)
{
	size_t i, n = 0;
	int pick = -1;

	for(i = 0; i < s->n_slots; i++)
	{
		if(s->slots[i].state == LIVE && rnd((unsigned) ++n) == 0)
		{
			pick = (int) i;
		}
	}
	return pick;
}

static int
n_live(const sim *s)
{
	size_t i;
	int n = 0;

	for(i = 0; i < s->n_slots; i++)
	{
		n += s->slots[i].state == LIVE;
	}
	return n;
}

static int
random_weight(void)
{
	return rnd(10) ? 1 + (int) rnd(4) : 0;
}

/* One random change: join (a new id, or an old one with a new
 * incarnation), clean leave, crash, or new weight. */
static void
random_change(sim *s, int max_members)
{
	unsigned kind = rnd(4);
	int i = any_live(s);

	if(i < 0 || (kind == 0 && n_live(s) < max_members))
	{
		char id[16];

		snprintf(id, sizeof(id), "n%02u", rnd(rnd(2) ? 100 : (unsigned) max_members + 1));
		for(i = 0; i < (int) s->n_slots; i++)
		{
			if(s->slots[i].state == LIVE && !strcmp(s->slots[i].id, id))
			{
				return; /* that id is live: no change */
			}
		}
		sim_join(s, id, random_weight());
	}
	else if(kind == 1)
	{
		sim_leave(s, i);
	}
	else if(kind == 2)
	{
		sim_crash(s, i, (int) rnd(4));
	}
	else
	{
		s->slots[i].weight = random_weight();
	}
}

/*
 * A sequence of changes, each followed by a settle: balance, and moves no
 * more than the change needs (the independent minimum, from the state
 * right after it), and every member that stays keeps whatever it is not
 * required to give up: of what it held before, it keeps min(before,
 * after). One change in four comes while a re-assignment is still in
 * flight (after one plan of the one before): those are checked for
 * safety and balance only.
 */
static void
run_random(uint64_t seed, uint32_t shards, int steps, tally *t)
{
	int *before = malloc(shards * sizeof(*before)), *after = malloc(shards * sizeof(*after));
	int64_t *nb, *na, *both;
	int max_members, step;
	sim s;

	rng_state = seed;
	max_members = 1 + (int) rnd(50);
	assert_true(before && after);
	sim_init(&s, shards);
	for(step = 0; step < steps; step++)
	{
		int64_t want;
		int midflight = rnd(4) == 0;
		size_t i, k;

		owners_now(&s, before);
		if(midflight)
		{
			random_change(&s, max_members);
			sim_round(&s);
		}
		random_change(&s, max_members);
		want = min_closed(&s);
		s.moves = 0;
		sim_settle(&s);
		check_settled(&s);
		if(midflight)
		{
			t->midflight++;
			continue;
		}
		if((int64_t) s.moves > want)
		{
			print_error("seed %llu S %u step %d: moved %zu, minimum %lld\n", (unsigned long long) seed, shards, step, s.moves, (long long) want);
		}
		assert_true((int64_t) s.moves <= want);
		t->moves += s.moves;
		t->minimum += (size_t) want;
		t->at_minimum += (int64_t) s.moves == want;
		t->changes++;
		owners_now(&s, after);
		nb = calloc(s.n_slots + 1, sizeof(*nb));
		na = calloc(s.n_slots + 1, sizeof(*na));
		both = calloc(s.n_slots + 1, sizeof(*both));
		assert_true(nb && na && both);
		for(k = 0; k < shards; k++)
		{
			if(before[k] >= 0)
			{
				nb[before[k]]++;
			}
			if(after[k] >= 0)
			{
				na[after[k]]++;
			}
			if(before[k] >= 0 && before[k] == after[k])
			{
				both[before[k]]++;
			}
		}
		for(i = 0; i < s.n_slots; i++)
		{
			if(s.slots[i].state == LIVE)
			{
				assert_int_equal(both[i], nb[i] < na[i] ? nb[i] : na[i]);
			}
		}
		free(nb);
		free(na);
		free(both);
	}
	sim_free(&s);
	free(before);
	free(after);
}

static void
test_random(void **state)
{
	static const struct
	{
		uint32_t shards;
		int sequences, steps;
	} plan[] = { { 1, 600, 20 }, { 7, 600, 20 }, { 64, 400, 25 }, { 1024, 100, 30 }, { 65536, 6, 30 } };
	tally t;
	size_t p;
	int i;

	(void) state;
	memset(&t, 0, sizeof(t));
	for(p = 0; p < sizeof(plan) / sizeof(plan[0]); p++)
	{
		for(i = 0; i < plan[p].sequences; i++)
		{
			run_random(0x9e3779b97f4a7c15ULL * (uint64_t) (i + 1) + plan[p].shards, plan[p].shards, plan[p].steps, &t);
		}
	}
	fprintf(stderr, "# random: %zu changes moved %zu shards, minimum %zu (%zu changes at their minimum; %zu more in flight)\n",
		t.changes, t.moves, t.minimum, t.at_minimum, t.midflight);
}

/* ------------------------------------------------------------------ */
/* allocation failures, scale                                           */
/* ------------------------------------------------------------------ */

/* A record of 300 runs over five owners, with hand-overs pending. */
static char *
busy_record(void)
{
	size_t cap = 64 * 1024, len;
	char *t = malloc(cap);
	int i;

	assert_non_null(t);
	len = (size_t) snprintf(t, cap, "{\"v\":1,\"shards\":1000,\"owners\":[[\"a\",1],[\"b\",2],[\"c\",3],[\"d\",4],[\"e\",5]],\"runs\":[");
	for(i = 0; i < 300; i++)
	{
		int owner = i % 5, next = i % 7 == 0 ? (owner + 1) % 5 : -1;

		len += (size_t) snprintf(t + len, cap - len, "%s[%d,%d,%d,%d,%d]", i ? "," : "", i < 299 ? 3 : 103, i % 11 ? owner : -1, i % 11 ? next : -1, i % 11 ? 1 + i % 4 : 0, i % 11 && next >= 0 ? 5 : 0);
	}
	snprintf(t + len, cap - len, "]}");
	return t;
}

/* Fail the k-th allocation for k = 0, 1, ... until the call succeeds:
 * every failure is ENOMEM with the output empty and the input intact. */
static void
test_out_of_memory(void **state)
{
	cluster__shard_member live[4] = { mem("a", 1, 1, 5), mem("c", 3, 2, 0), mem("e", 5, 1, 0), mem("f", 6, 3, 0) };
	cluster__shard_map cur, out;
	CLUSTERSHARD held[3] = { { 0, 1 }, { 5, 1 }, { 999, 1 } };
	char *text = busy_record(), *before, *t;
	exp_ctx e = { 1, 0 };
	int op;

	(void) state;
	dec(text, 1000, 9, &cur);
	before = enc(&cur);
	for(op = 0; op < 7; op++)
	{
		long k;

		for(k = 0;; k++)
		{
			CLUSTERSHARD *acq = NULL, *rel = NULL;
			size_t na = 0, nr = 0, len = 0;
			int err = -1, changed = 0;
			char why[128];

			t = NULL;
			fail_after = k;
			switch(op)
			{
			case 0:
				err = cluster__shard_plan(&cur, live, 4, expired_answer, &e, &out, &changed, &na);
				break;
			case 1:
				err = cluster__shard_map_encode(&cur, &t, &len);
				break;
			case 2:
				err = cluster__shard_map_decode(text, strlen(text), 1000, 9, &out, why, sizeof(why));
				break;
			case 3:
				err = cluster__shard_map_leave(&cur, "b", 2, &out, &changed);
				break;
			case 4:
				err = cluster__shard_map_copy(&out, &cur);
				break;
			case 5:
				err = cluster__shard_diff(&cur, "a", 1, held, 3, &acq, &na, &rel, &nr, NULL);
				break;
			default:
				err = cluster__shard_map_init(&out, 10);
				break;
			}
			fail_after = -1;
			if(!err)
			{
				if(!k)
				{
					print_error("operation %d allocates nothing\n", op);
				}
				assert_true(k > 0); /* at least one allocation was failed */
				if(op == 1)
				{
					free(t);
				}
				else if(op == 5)
				{
					assert_true(na > 0 && nr > 0);
					free(acq);
					free(rel);
				}
				else
				{
					cluster__shard_map_free(&out);
				}
				break;
			}
			assert_int_equal(err, ENOMEM);
			if(op == 1)
			{
				assert_null(t);
			}
			else if(op == 5)
			{
				assert_null(acq);
				assert_null(rel);
			}
			else
			{
				assert_empty(&out);
			}
			if(op == 2)
			{
				assert_string_equal(why, "out of memory");
			}
			t = enc(&cur);
			assert_string_equal(t, before);
			free(t);
		}
	}
	cluster__shard_map_free(&cur);
	free(before);
	free(text);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * A million shards over 200 members: from nothing; after a member goes and
 * two come; and from the worst record there is, one run per shard. No
 * timing assertion (bench/ measures): the times go to stderr.
 */
static void
test_scale(void **state)
{
	enum
	{
		N = 200,
		S = CLUSTER_SHARDS_MAX
	};
	cluster__shard_member *live = malloc((N + 2) * sizeof(*live));
	char(*ids)[16] = malloc((N + 2) * sizeof(*ids));
	cluster__shard_map m, next, frag;
	int changed, i;
	size_t moves, len;
	double t0, t1, t2, t3, t4;
	char *text;
	exp_ctx yes = { 1, 0 };

	(void) state;
	assert_true(live && ids);
	for(i = 0; i < N + 2; i++)
	{
		snprintf(ids[i], sizeof(ids[i]), "w%04d", i);
		live[i] = mem(ids[i], i + 1, 1 + i % 8, 0);
	}
	assert_int_equal(cluster__shard_map_init(&m, S), 0);
	t0 = now_ms();
	assert_int_equal(cluster__shard_plan(&m, live, N, NULL, NULL, &next, &changed, &moves), 0);
	t1 = now_ms();
	assert_int_equal(moves, S);
	assert_int_equal(next.n_runs, N);
	cluster__shard_map_free(&m);
	m = next;
	/* the tokens a decode would have resolved */
	for(i = 0; i < (int) m.n_runs; i++)
	{
		m.runs[i].token = 2;
	}
	/* w0100 leaves, w0200 and w0201 join */
	memmove(&live[100], &live[101], (N + 1 - 100) * sizeof(*live));
	t2 = now_ms();
	assert_int_equal(cluster__shard_plan(&m, live, N + 1, expired_answer, &yes, &next, &changed, &moves), 0);
	t3 = now_ms();
	assert_true(changed);
	cluster__shard_map_free(&next);
	cluster__shard_map_free(&m);
	/* one run per shard, owners round robin */
	memset(&frag, 0, sizeof(frag));
	frag.shards = S;
	frag.n_runs = S;
	frag.runs = malloc(S * sizeof(*frag.runs));
	frag.n_owners = N;
	frag.owners = malloc(N * sizeof(*frag.owners));
	assert_true(frag.runs && frag.owners);
	for(i = 0; i < N; i++)
	{
		frag.owners[i].id = malloc(16);
		assert_non_null(frag.owners[i].id);
		strcpy(frag.owners[i].id, ids[i]);
		frag.owners[i].incarnation = i + 1;
	}
	for(i = 0; i < S; i++)
	{
		cluster__shard_run r = { (uint32_t) i, 1, i % N, -1, 1 + i % 3, 0 };

		frag.runs[i] = r;
	}
	t4 = now_ms();
	assert_int_equal(cluster__shard_map_encode(&frag, &text, &len), 0);
	fprintf(stderr, "# scale: %d shards, %d members: plan from nothing %.1f ms, after a change %.1f ms; "
					"%d runs: encode %.1f ms (%zu bytes), ",
		S, N, t1 - t0, t3 - t2, S, now_ms() - t4, len);
	free(text);
	live[0].weight = 0;
	t4 = now_ms();
	assert_int_equal(cluster__shard_plan(&frag, live, N, NULL, NULL, &next, &changed, &moves), 0);
	fprintf(stderr, "plan %.1f ms\n", now_ms() - t4);
	assert_true(changed);
	cluster__shard_map_free(&next);
	cluster__shard_map_free(&frag);
	free(live);
	free(ids);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_zero_revisions),
		cmocka_unit_test(test_normal_form),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_plan_fresh),
		cmocka_unit_test(test_plan_one_more),
		cmocka_unit_test(test_plan_handover),
		cmocka_unit_test(test_plan_blocked),
		cmocka_unit_test(test_leave),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_exhaustive),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_out_of_memory),
		cmocka_unit_test(test_scale),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
