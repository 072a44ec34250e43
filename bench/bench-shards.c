/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-shards: what shard ownership moves, how balanced it stays and how
 * long a membership change takes to reach every shard's new owner, each
 * beside the sorted-index ranges (index/total, what applications divide
 * work by without shards) measured in the same run.
 *
 * Part 1, the planner alone (libcluster/shard-map.c, no registry). For
 * each S and N, N members ("m%06d", incarnation 1, one worker each; and a
 * weighted run with 1..4 workers) get a settled assignment from an empty
 * record: the planner runs, its output is encoded and decoded as stored
 * at the next fake revision (which fills in its tokens and since values),
 * every live member acknowledges that revision, and again until the
 * planner changes nothing. From that state, K events of each kind, each
 * on its own copy, settled the same way:
 *   join   a new member at a random position in id order;
 *   leave  a random member leaves cleanly (cluster__shard_map_leave(), as
 *          cluster_leave() hands its shards back), the others settle;
 *   crash  a random member vanishes and the planner is told its lease
 *          has run out.
 * Per event:
 *   moves  shards whose holder differs between the two settled states;
 *   min    the fewest shards any balanced assignment must move, computed
 *          here from the holdings alone, never by the planner: a member of
 *          weight w ends with f = floor(S*w/W) or f+1 shards (the R = S -
 *          sum f one-mores go to members whose share has a fraction), so at
 *          most sum min(held, f) + min(R, members holding more than f) can
 *          stay. With equal weights that is the newcomer's floor(S/(N+1))
 *          for a join and what the departed held for a leave; the bench
 *          checks that it agrees;
 *   ratio  moves / min (the table shows the worst event);
 *   writes record versions until settled (what etcd is asked to store);
 *   balance owned / ideal (ideal S*w/W), highest and lowest member.
 * The yardstick, same events: members sorted by id own consecutive ranges
 * (member i owns the shards s with floor(s*N/S) == i; weighted: shard s
 * goes to worker floor(s*W/S) and so to the member holding that worker
 * index), the split index/total gives; moves and min are counted the same
 * way. Verdict: PASS iff every library event moves at most 1.1 x min and
 * leaves every member within floor/ceil of its share; exit status 1 on
 * FAIL. The same verdict is then applied to the yardstick, where it must
 * FAIL (a join or leave shifts every range after it): if it did not, the
 * verdict could not tell a minimal plan from a poor one, and that is an
 * exit status 1 too. Last, the CPU time of one planner call (a join at
 * N=200) at S=65536 and S=1e6: the planner works on runs, not shards.
 *
 * Part 2, a real etcd (a private one through the test harness: loopback,
 * temporary directory, --unsafe-no-fsync, stopped by PID). For each S and
 * N, N in-process members (one worker each, TTL and shard settle window at
 * their defaults) join one cluster; then R rounds of: a new member joins
 * (random id, so a random position), and a random member leaves with
 * cluster_leave(). Each sample runs from just before cluster_join() /
 * cluster_leave() until
 *   library:      every live member's shard callback has brought it to
 *                 its floor/ceil quota, together they hold all S shards
 *                 and the leaver none (counted in the callbacks);
 *   sorted-index: every live member's balancer callback has reported the
 *                 new total: that is when index/total ranges would have
 *                 switched over, at once but with no hand-over safety
 *                 (two members may work on the same range meanwhile).
 * The library's figure includes the shard settle window (300 ms by
 * default), the yardstick's the view's (100 ms by default); both are
 * printed, and ">=TTL" counts the library's samples that took a whole
 * TTL or more: shards that waited for an owner's lease to run out, which a
 * join or a clean leave should never need. Every acquire and release is
 * also checked against the others: a shard held by two members at once
 * is an error (exit status 2).
 *
 *   bench-shards [-p | -e] [-S LIST] [-N LIST] [-M LIST] [-k EVENTS]
 *                [-w N] [-r ROUNDS]
 *     -p / -e   part 1 only / part 2 only
 *     -S LIST   shard counts, both parts (default 1024,65536)
 *     -N LIST   part 1 cluster sizes (default 3,10,50,100,200)
 *     -M LIST   part 2 cluster sizes (default 3,10,50,200, or the
 *               environment variable BENCH_SHARDS_N)
 *     -k EVENTS part 1 events of each kind per S and N (default 100)
 *     -w N      part 1 weighted cluster size (default 50; 0: none)
 *     -r ROUNDS part 2 rounds (one join and one leave each; default 10,
 *               and 5 from N = 200 up)
 *   e.g. a smoke run: bench-shards -S 1024 -N 3,10 -M 3,10 -k 5 -r 2
 * BENCH_SHARDS_DEBUG=1 sends every member's debug log to stderr, with
 * timestamps and a line per join and leave the bench makes.
 * Part 1 takes seconds. Part 2 with the defaults is 70 rounds: about 3
 * minutes when a clean leave hands its shards over at once, up to about 8
 * when every leave waits a TTL (5 s); it runs every member in this
 * process, so run it on an otherwise idle machine.
 *
 * Exit status: 0 when part 1's verdict is PASS (or part 1 was not run);
 * 1 when it is FAIL, or when it did not fail on the yardstick; 2 when the
 * bench itself failed (usage, etcd, a timeout, its own arithmetic) or a
 * shard was held twice.
 *
 * Reading it: library moves equal to min (ratio 1.000) is minimal
 * movement; the sorted-index column shows what index/total moves for the
 * same event (a third to a half of all shards for a join or leave at a
 * random position). Balance 1.00/1.00 is perfect; with S not a multiple of N a
 * member's ceil/ideal and floor/ideal show instead (both sides are
 * balanced: the difference is what moves). The latencies say what the
 * safe two-step hand-over costs beside a switch that has none.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "benchlib.h"
#include "etcdharness.h"
#include "shard-map.h"

/* The verdict: every event moves at most BOUND x the minimum. */
#define BOUND 1.1
/* A settle taking more record versions than this: the planner is stuck. */
#define SETTLE_ROUNDS 64
/* Planner timing: the best of this many calls. */
#define TIMING_REPS 20
/* Part 2: most rounds, pool slots (benchlib's: bl_member.slot is below
 * it), random ids drawn from 0 .. KEY_SPACE-1, pause between events (s). */
#define MAX_ROUNDS 1000
#define SH_SLOTS   4096
#define KEY_SPACE  1000000
#define GAP_S      0.1
#define MAX_LIST   16

/* splitmix64, fixed seed: every run draws the same events */
static uint64_t rng_state = 20240611;

static unsigned
rnd(unsigned n)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	return (unsigned) (z % n);
}

static double
cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

/* "1024,65536" -> values; returns the count, -1 if malformed. */
static int
parse_list(const char *s, long *out, int max, long lo, long hi)
{
	int n = 0;

	while(*s)
	{
		char *end;
		long v;

		errno = 0;
		v = strtol(s, &end, 10);
		if(end == s || errno || v < lo || v > hi || n == max || (*end && *end != ','))
		{
			return -1;
		}
		out[n++] = v;
		s = *end ? end + 1 : end;
	}
	return n;
}

/* ====================================================================== */
/* part 1: the planner alone                                                */
/* ====================================================================== */

/* A member: its id is "m%06d" of key, so key order is id order. */
typedef struct pmem pmem;
struct pmem
{
	int key;
	int weight;
};

static void
id_of(int key, char id[16])
{
	snprintf(id, 16, "m%06d", key);
}

static int
expired_yes(void *ctx, const char *id, int64_t incarnation)
{
	(void) ctx;
	(void) id;
	(void) incarnation;
	return 1;
}

/* Store next as the registry would: encode it and decode the text as
 * written at the next revision. Frees next; *m becomes the stored version. */
static int
commit(cluster__shard_map *m, cluster__shard_map *next, int64_t *rev)
{
	char *text = NULL, why[300];
	size_t len = 0;
	uint32_t shards = next->shards;
	int r = cluster__shard_map_encode(next, &text, &len);

	cluster__shard_map_free(next);
	if(r)
	{
		fprintf(stderr, "bench-shards: cannot encode the planner's output: %s\n", strerror(r));
		return r;
	}
	cluster__shard_map_free(m);
	r = cluster__shard_map_decode(text, len, shards, ++*rev, m, why, sizeof(why));
	if(r)
	{
		fprintf(stderr, "bench-shards: the planner's record does not decode: %s\n", why);
	}
	free(text);
	return r;
}

/* The live list the planner takes (ids in ids[], kept by the caller). */
static cluster__shard_member *
live_of(const pmem *mem, size_t n, char (*ids)[16])
{
	cluster__shard_member *live = calloc(n ? n : 1, sizeof(*live));
	size_t i;

	for(i = 0; live && i < n; i++)
	{
		id_of(mem[i].key, ids[i]);
		live[i].id = ids[i];
		live[i].incarnation = 1;
		live[i].weight = mem[i].weight;
	}
	return live;
}

/* Run the planner until it changes nothing, every live member
 * acknowledging each version as soon as it is stored. Returns the versions
 * written, -1 on failure (printed). */
static int
settle(cluster__shard_map *m, const pmem *mem, size_t n, int64_t *rev)
{
	char(*ids)[16] = calloc(n ? n : 1, sizeof(*ids));
	cluster__shard_member *live = ids ? live_of(mem, n, ids) : NULL;
	int writes = 0, round;
	size_t i;

	if(!live)
	{
		free(ids);
		fprintf(stderr, "bench-shards: out of memory\n");
		return -1;
	}
	for(round = 0; round < SETTLE_ROUNDS; round++)
	{
		cluster__shard_map next;
		int changed = 0;

		memset(&next, 0, sizeof(next));
		if(cluster__shard_plan(m, live, n, expired_yes, NULL, &next, &changed, NULL))
		{
			fprintf(stderr, "bench-shards: the planner failed\n");
			writes = -1;
			break;
		}
		if(!changed)
		{
			cluster__shard_map_free(&next);
			break;
		}
		if(commit(m, &next, rev))
		{
			writes = -1;
			break;
		}
		writes++;
		for(i = 0; i < n; i++)
		{
			live[i].acked = *rev;
		}
	}
	if(round == SETTLE_ROUNDS)
	{
		fprintf(stderr, "bench-shards: the planner did not settle in %d versions\n", SETTLE_ROUNDS);
		writes = -1;
	}
	free(live);
	free(ids);
	return writes;
}

/* Who holds each shard (a key, -1: nobody) in a map: the owner of a run
 * with no hand-over pending. Returns the shards nobody holds. */
static uint32_t
holders(const cluster__shard_map *m, int32_t *h)
{
	uint32_t loose = 0, s;
	size_t i;

	for(i = 0; i < m->n_runs; i++)
	{
		const cluster__shard_run *r = &m->runs[i];
		int32_t k = r->owner >= 0 && r->next < 0 ? (int32_t) strtol(m->owners[r->owner].id + 1, NULL, 10) : -1;

		if(k < 0)
		{
			loose += r->len;
		}
		for(s = r->start; s < r->start + r->len; s++)
		{
			h[s] = k;
		}
	}
	return loose;
}

/* The yardstick: members in id order take consecutive worker indexes
 * (weight each) and shard s goes to worker floor(s * W / S); with one
 * worker each, member i owns the s with floor(s * N / S) == i. */
static void
yard_holders(const pmem *mem, size_t n, uint32_t shards, int32_t *h)
{
	int64_t total = 0, base = 0;
	size_t i = 0;
	uint32_t s;

	for(i = 0; i < n; i++)
	{
		total += mem[i].weight;
	}
	i = 0;
	for(s = 0; s < shards; s++)
	{
		int64_t w = (int64_t) s * total / shards;

		while(w >= base + mem[i].weight)
		{
			base += mem[i].weight;
			i++;
		}
		h[s] = mem[i].key;
	}
}

/* One event, judged from the holders before and after. */
typedef struct outcome outcome;
struct outcome
{
	long moves, min;
	double hi, lo; /* owned / ideal, highest and lowest member */
	int balanced;  /* everyone within floor/ceil, every shard held */
};

/* mem: the members after the event (id order); cnt: scratch per key. */
static void
judge(const int32_t *before, const int32_t *after, uint32_t shards, const pmem *mem, size_t n, long *cnt, int keys, outcome *o)
{
	int64_t total = 0, sumf = 0, keep = 0, above = 0, r, sum = 0;
	uint32_t s;
	size_t i;

	memset(o, 0, sizeof(*o));
	o->balanced = 1;
	o->lo = 1e300;
	for(s = 0; s < shards; s++)
	{
		o->moves += before[s] != after[s];
	}
	memset(cnt, 0, (size_t) keys * sizeof(*cnt));
	for(s = 0; s < shards; s++)
	{
		if(before[s] >= 0)
		{
			cnt[before[s]]++;
		}
	}
	for(i = 0; i < n; i++)
	{
		total += mem[i].weight;
	}
	/* the most that can stay: min(held, floor) each, plus one per
	 * one-more given to a member that holds more than its floor */
	for(i = 0; i < n; i++)
	{
		int64_t share = (int64_t) shards * mem[i].weight, f = share / total, h = cnt[mem[i].key];

		keep += h < f ? h : f;
		sumf += f;
		above += share % total != 0 && h > f;
	}
	r = (int64_t) shards - sumf;
	keep += above < r ? above : r;
	o->min = (long) ((int64_t) shards - keep);
	memset(cnt, 0, (size_t) keys * sizeof(*cnt));
	for(s = 0; s < shards; s++)
	{
		if(after[s] >= 0)
		{
			cnt[after[s]]++;
		}
	}
	for(i = 0; i < n; i++)
	{
		int64_t share = (int64_t) shards * mem[i].weight, f = share / total, c = cnt[mem[i].key];
		double x = (double) c / ((double) share / (double) total);

		sum += c;
		if(c < f || c > f + (share % total != 0))
		{
			o->balanced = 0;
		}
		o->hi = x > o->hi ? x : o->hi;
		o->lo = x < o->lo ? x : o->lo;
	}
	if(sum != (int64_t) shards)
	{
		o->balanced = 0; /* unowned, or held by someone not live */
	}
}

static double
ratio(long moves, long min)
{
	return min > 0 ? (double) moves / (double) min : moves > 0 ? 1e9 :
																 1.0;
}

/* One table row: one event kind at one S and N, both methods. */
typedef struct row row;
struct row
{
	uint32_t shards;
	int n, weighted, events, errors;
	const char *event;
	double moves, min, writes, yard_moves; /* sums */
	long moves_max;
	double worst, yard_worst;        /* ratio, highest */
	double hi, lo, yard_hi, yard_lo; /* balance */
	int balanced, yard_balanced;
};

enum
{
	EV_JOIN,
	EV_LEAVE,
	EV_CRASH,
	EV_KINDS
};
static const char *const ev_name[EV_KINDS] = { "join", "leave", "crash" };

static void
row_add(row *w, const outcome *lib, const outcome *yard, int writes)
{
	w->events++;
	w->moves += (double) lib->moves;
	w->min += (double) lib->min;
	w->writes += writes;
	w->yard_moves += (double) yard->moves;
	w->moves_max = lib->moves > w->moves_max ? lib->moves : w->moves_max;
	if(ratio(lib->moves, lib->min) > w->worst)
	{
		w->worst = ratio(lib->moves, lib->min);
	}
	if(ratio(yard->moves, yard->min) > w->yard_worst)
	{
		w->yard_worst = ratio(yard->moves, yard->min);
	}
	w->hi = lib->hi > w->hi ? lib->hi : w->hi;
	w->lo = lib->lo < w->lo ? lib->lo : w->lo;
	w->yard_hi = yard->hi > w->yard_hi ? yard->hi : w->yard_hi;
	w->yard_lo = yard->lo < w->yard_lo ? yard->lo : w->yard_lo;
	w->balanced &= lib->balanced;
	w->yard_balanced &= yard->balanced;
}

/* All events at one S and N; fills rows[EV_KINDS]. Returns 0, or -1 when
 * the bench itself failed (printed). */
static int
run_pure(uint32_t shards, int n, int weighted, int k, row *rows)
{
	int keys = 10 * (n + 2), kind, e, i, rc = 0;
	pmem *mem = calloc((size_t) n + 1, sizeof(*mem)), *after = calloc((size_t) n + 1, sizeof(*after));
	int32_t *lb = malloc(shards * sizeof(*lb)), *la = malloc(shards * sizeof(*la));
	int32_t *yb = malloc(shards * sizeof(*yb)), *ya = malloc(shards * sizeof(*ya));
	long *cnt = calloc((size_t) keys, sizeof(*cnt));
	cluster__shard_map base;
	int64_t rev = 0, base_rev;

	memset(&base, 0, sizeof(base));
	if(!mem || !after || !lb || !la || !yb || !ya || !cnt || cluster__shard_map_init(&base, shards))
	{
		fprintf(stderr, "bench-shards: out of memory\n");
		rc = -1;
		goto out;
	}
	for(i = 0; i < n; i++)
	{
		mem[i].key = 10 * i + 5; /* room for a newcomer before each */
		mem[i].weight = weighted ? 1 + i % 4 : 1;
	}
	if(settle(&base, mem, (size_t) n, &rev) < 0 || holders(&base, lb))
	{
		fprintf(stderr, "bench-shards: S=%u N=%d: no settled assignment to start from\n", shards, n);
		rc = -1;
		goto out;
	}
	base_rev = rev;
	yard_holders(mem, (size_t) n, shards, yb);
	for(kind = 0; kind < EV_KINDS; kind++)
	{
		row *w = &rows[kind];

		memset(w, 0, sizeof(*w));
		w->shards = shards;
		w->n = n;
		w->weighted = weighted;
		w->event = ev_name[kind];
		w->lo = w->yard_lo = 1e300;
		w->balanced = w->yard_balanced = 1;
		for(e = 0; e < k; e++)
		{
			cluster__shard_map m;
			outcome lib, yard;
			size_t na = 0;
			int gone = -1, writes = 0, wr, p;
			long expect_lib = 0, expect_yard = 0;
			uint32_t s;

			memset(&m, 0, sizeof(m));
			if(kind == EV_JOIN)
			{
				p = (int) rnd((unsigned) n + 1);
				for(i = 0; i < n; i++)
				{
					if(i == p)
					{
						after[na].key = 10 * p;
						after[na++].weight = weighted ? 1 + (int) rnd(4) : 1;
					}
					after[na++] = mem[i];
				}
				if(p == n)
				{
					after[na].key = 10 * p;
					after[na++].weight = weighted ? 1 + (int) rnd(4) : 1;
				}
			}
			else
			{
				p = (int) rnd((unsigned) n);
				gone = mem[p].key;
				for(i = 0; i < n; i++)
				{
					if(i != p)
					{
						after[na++] = mem[i];
					}
				}
			}
			rev = base_rev;
			if(cluster__shard_map_copy(&m, &base))
			{
				fprintf(stderr, "bench-shards: out of memory\n");
				rc = -1;
				goto out;
			}
			if(kind == EV_LEAVE)
			{
				cluster__shard_map next;
				char id[16];
				int changed = 0;

				memset(&next, 0, sizeof(next));
				id_of(gone, id);
				if(cluster__shard_map_leave(&m, id, 1, &next, &changed))
				{
					fprintf(stderr, "bench-shards: leave failed\n");
					cluster__shard_map_free(&m);
					rc = -1;
					goto out;
				}
				if(changed)
				{
					if(commit(&m, &next, &rev))
					{
						cluster__shard_map_free(&m);
						rc = -1;
						goto out;
					}
					writes++;
				}
				else
				{
					cluster__shard_map_free(&next);
				}
			}
			/* a crash: the departed stays in the record until the
			 * planner hears that its lease ran out (expired_yes) */
			wr = settle(&m, after, na, &rev);
			if(wr < 0)
			{
				cluster__shard_map_free(&m);
				rc = -1;
				goto out;
			}
			writes += wr;
			holders(&m, la);
			cluster__shard_map_free(&m);
			yard_holders(after, na, shards, ya);
			judge(lb, la, shards, after, na, cnt, keys, &lib);
			judge(yb, ya, shards, after, na, cnt, keys, &yard);
			/* the bench's own arithmetic, two ways: with equal weights the
			 * minimum is the newcomer's floor, or what the departed held */
			if(kind == EV_JOIN)
			{
				expect_lib = expect_yard = (long) (shards / (uint32_t) (n + 1));
			}
			for(s = 0; kind != EV_JOIN && s < shards; s++)
			{
				expect_lib += lb[s] == gone;
				expect_yard += yb[s] == gone;
			}
			if(!weighted && (lib.min != expect_lib || yard.min != expect_yard))
			{
				fprintf(stderr, "bench-shards: S=%u N=%d %s: minimum %ld/%ld, expected %ld/%ld: the bench is wrong\n",
					shards, n, ev_name[kind], lib.min, yard.min, expect_lib, expect_yard);
				w->errors++;
			}
			if(lib.moves < lib.min || yard.moves < yard.min)
			{
				fprintf(stderr, "bench-shards: S=%u N=%d %s: %ld/%ld moves beat the minimum %ld/%ld: the bench is wrong\n",
					shards, n, ev_name[kind], lib.moves, yard.moves, lib.min, yard.min);
				w->errors++;
			}
			row_add(w, &lib, &yard, writes);
		}
	}
out:
	cluster__shard_map_free(&base);
	free(mem);
	free(after);
	free(lb);
	free(la);
	free(yb);
	free(ya);
	free(cnt);
	return rc;
}

static void
print_row(const row *w)
{
	char n[16];
	double e = w->events ? (double) w->events : 1.0;

	snprintf(n, sizeof(n), "%d%s", w->n, w->weighted ? "w" : "");
	printf("%7u %5s %-5s | %9.1f %7ld %9.1f %7.3f %6.2f  %5.3f/%5.3f%s | %9.1f %7.3f  %5.3f/%5.3f%s\n",
		w->shards, n, w->event, w->moves / e, w->moves_max, w->min / e, w->worst, w->writes / e, w->hi, w->lo,
		w->balanced ? " " : "!", w->yard_moves / e, w->yard_worst, w->yard_hi, w->yard_lo,
		w->yard_balanced ? " " : "!");
}

/* The verdict over all rows, for one method. */
static int
verdict(const row *rows, size_t n, int yard, double *worst, int *balanced)
{
	size_t i;

	*worst = 0;
	*balanced = 1;
	for(i = 0; i < n; i++)
	{
		double x = yard ? rows[i].yard_worst : rows[i].worst;

		*worst = x > *worst ? x : *worst;
		*balanced &= yard ? rows[i].yard_balanced : rows[i].balanced;
	}
	return *worst <= BOUND && *balanced;
}

/* CPU time of one planner call: a join at position n/2 on a settled map. */
static int
time_planner(uint32_t shards, int n)
{
	pmem *mem = calloc((size_t) n + 1, sizeof(*mem));
	char(*ids)[16] = calloc((size_t) n + 1, sizeof(*ids));
	cluster__shard_member *live = NULL;
	cluster__shard_map base;
	double best = 1e300;
	int64_t rev = 0;
	char *text = NULL;
	size_t len = 0, moves = 0;
	int i, rc = -1;

	memset(&base, 0, sizeof(base));
	if(!mem || !ids || cluster__shard_map_init(&base, shards))
	{
		goto out;
	}
	for(i = 0; i < n; i++)
	{
		mem[i].key = 10 * i + 5;
		mem[i].weight = 1;
	}
	if(settle(&base, mem, (size_t) n, &rev) < 0 || cluster__shard_map_encode(&base, &text, &len))
	{
		goto out;
	}
	memmove(mem + n / 2 + 1, mem + n / 2, (size_t) (n - n / 2) * sizeof(*mem));
	mem[n / 2].key = 10 * (n / 2);
	live = live_of(mem, (size_t) n + 1, ids);
	for(i = 0; live && i < TIMING_REPS; i++)
	{
		cluster__shard_map next;
		int changed = 0;
		double t0 = cpu_ms(), dt;

		memset(&next, 0, sizeof(next));
		if(cluster__shard_plan(&base, live, (size_t) n + 1, expired_yes, NULL, &next, &changed, &moves))
		{
			goto out;
		}
		dt = cpu_ms() - t0;
		cluster__shard_map_free(&next);
		best = dt < best ? dt : best;
	}
	if(live)
	{
		printf("planner, one call for a join at N=%d, S=%u: %.3f ms CPU (best of %d; %zu shards to move; "
			   "record before: %zu runs, %zu bytes)\n",
			n, shards, best, TIMING_REPS, moves, base.n_runs, len);
		rc = 0;
	}
out:
	if(rc)
	{
		fprintf(stderr, "bench-shards: cannot time the planner at S=%u N=%d\n", shards, n);
	}
	cluster__shard_map_free(&base);
	free(text);
	free(live);
	free(ids);
	free(mem);
	return rc;
}

/* Part 1; returns 0 (PASS), 1 (FAIL or the verdict did not fail on the
 * yardstick) or 2 (the bench failed). */
static int
part1(const long *ss, int nss, const long *ns, int nns, int k, int wn)
{
	row *rows = calloc((size_t) (nss * (nns + 1) * EV_KINDS), sizeof(*rows));
	size_t nr = 0;
	int i, j, errors = 0, ok, yard_ok, balanced, yard_balanced, rc;
	double worst, yard_worst;

	if(!rows)
	{
		return 2;
	}
	printf("part 1: the planner alone (libcluster/shard-map.c, no etcd); %d events of each kind per row,\n"
		   "each from the settled assignment of N members (1 worker each; \"Nw\": 1..4 workers)\n",
		k);
	printf("  moves: shards whose holder changed; min: the fewest any balanced assignment moves (computed\n"
		   "  here from the holdings); ratio: moves/min, worst event; writes: record versions until settled;\n"
		   "  balance: owned/ideal (ideal S*w/W), highest/lowest member (\"!\": someone outside floor/ceil)\n\n");
	printf("%7s %5s %-5s | %-55s | %s\n", "", "", "", "library (shard ownership)", "sorted-index ranges (index/total)");
	printf("%7s %5s %-5s | %9s %7s %9s %7s %6s  %-12s | %9s %7s  %-12s\n", "S", "N", "event", "moves", "max", "min",
		"ratio", "writes", "balance", "moves", "ratio", "balance");
	fflush(stdout);
	for(i = 0; i < nss; i++)
	{
		for(j = 0; j <= nns; j++)
		{
			int n = j < nns ? (int) ns[j] : wn, e;

			if(j == nns && wn <= 0)
			{
				continue;
			}
			if(run_pure((uint32_t) ss[i], n, j == nns, k, rows + nr))
			{
				free(rows);
				return 2;
			}
			for(e = 0; e < EV_KINDS; e++)
			{
				errors += rows[nr].errors;
				print_row(&rows[nr++]);
			}
			fflush(stdout);
		}
	}
	ok = verdict(rows, nr, 0, &worst, &balanced);
	yard_ok = verdict(rows, nr, 1, &yard_worst, &yard_balanced);
	printf("\nverdict: every event moves <= %.1f x min and leaves every member within floor/ceil of its share\n", BOUND);
	printf("  library:             worst ratio %.3f, balanced: %s -> %s\n", worst, balanced ? "yes" : "NO",
		ok ? "PASS" : "FAIL");
	printf("  the same verdict on sorted-index ranges (it must fail there): worst ratio %.3f, balanced: %s -> %s\n",
		yard_worst, yard_balanced ? "yes" : "NO", yard_ok ? "PASS" : "FAIL");
	if(yard_ok)
	{
		printf("  the verdict did not fail on the yardstick: it cannot tell a minimal plan from a poor one here\n");
	}
	free(rows);
	printf("\n");
	if(time_planner(65536, 200) || time_planner(CLUSTER_SHARDS_MAX, 200))
	{
		return 2;
	}
	printf("\n");
	fflush(stdout);
	rc = errors ? 2 : !ok || yard_ok ? 1 :
									   0;
	return rc;
}

/* ====================================================================== */
/* part 2: a real etcd                                                      */
/* ====================================================================== */

/* What the shard callbacks have reported, per benchlib slot, and the
 * target the current sample waits for. */
static pthread_mutex_t sh_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sh_cond = PTHREAD_COND_INITIALIZER;
static long sh_owned[SH_SLOTS];
static char sh_watched[SH_SLOTS]; /* the live members of the target */
static int sh_slots;              /* slots ever used are below this */
static int *sh_holders;           /* per shard: members holding it */
static uint32_t sh_shards;
static long sh_lo, sh_hi; /* every watched member owns lo..hi */
static int sh_armed, sh_done;
static double sh_done_at;
static long sh_overlaps, sh_strays;

/* Under sh_lock: is the target reached? */
static int
sh_reached(void)
{
	long sum = 0;
	int i;

	for(i = 0; i < sh_slots; i++)
	{
		long o = sh_owned[i];

		if(sh_watched[i] ? o < sh_lo || o > sh_hi : o != 0)
		{
			return 0;
		}
		sum += o;
	}
	return sum == (long) sh_shards;
}

/* Counts what every member holds; the callback that completes the target
 * records the time (when the application would have it). */
static void
on_shards(CLUSTER *c, const CLUSTERSHARD *acq, size_t na, const CLUSTERSHARD *rel, size_t nr)
{
	double now = bl_now();
	bl_member *m = cluster_userdata(c);
	size_t i;

	pthread_mutex_lock(&sh_lock);
	for(i = 0; i < nr; i++)
	{
		if(rel[i].shard < sh_shards && sh_holders[rel[i].shard] > 0)
		{
			sh_holders[rel[i].shard]--;
		}
		else
		{
			sh_strays++;
		}
	}
	for(i = 0; i < na; i++)
	{
		if(acq[i].shard >= sh_shards)
		{
			sh_strays++;
		}
		else if(sh_holders[acq[i].shard]++ > 0)
		{
			sh_overlaps++;
		}
	}
	if(m && m->slot >= 0 && m->slot < SH_SLOTS)
	{
		sh_owned[m->slot] += (long) na - (long) nr;
	}
	if(sh_armed && !sh_done && sh_reached())
	{
		sh_done = 1;
		sh_done_at = now;
		pthread_cond_broadcast(&sh_cond);
	}
	pthread_mutex_unlock(&sh_lock);
}

/* From now on wait for: the members in set own their quota, nobody else
 * owns anything. */
static void
sh_expect(bl_member **set, size_t n)
{
	size_t i;

	pthread_mutex_lock(&sh_lock);
	memset(sh_watched, 0, sizeof(sh_watched));
	for(i = 0; i < n; i++)
	{
		sh_watched[set[i]->slot] = 1;
	}
	sh_lo = (long) (sh_shards / n);
	sh_hi = sh_lo + (sh_shards % n != 0);
	sh_armed = 1;
	sh_done = sh_reached();
	sh_done_at = sh_done ? bl_now() : 0;
	pthread_mutex_unlock(&sh_lock);
}

/* The time the target was reached, -1 on timeout. */
static double
sh_wait(double timeout)
{
	double end = bl_now() + timeout, at;

	pthread_mutex_lock(&sh_lock);
	while(!sh_done && bl_now() < end)
	{
		bl_cond_wait_for(&sh_cond, &sh_lock, end - bl_now());
	}
	at = sh_done ? sh_done_at : -1;
	pthread_mutex_unlock(&sh_lock);
	return at;
}

static char key_used[KEY_SPACE];
static int debug; /* BENCH_SHARDS_DEBUG: the library's debug log */

/* Every message with a timestamp (bl_now()) and the member it is about. */
static void
debug_logger(CLUSTER *c, void *userdata, int priority, const char *message)
{
	(void) userdata;
	fprintf(stderr, "%.3f %s <%d> %s\n", bl_now(), cluster_instance(c), priority, message);
}

/* A member (not joined) with a fresh random id, so a random position. */
static bl_member *
sh_member_new(const char *key, const char *endpoint, uint32_t shards)
{
	char id[16];
	bl_member *m;
	unsigned k;

	do
	{
		k = rnd(KEY_SPACE);
	}
	while(key_used[k]);
	key_used[k] = 1;
	id_of((int) k, id);
	m = bl_member_new(key, id, 1, endpoint, 0);
	if(!m)
	{
		return NULL;
	}
	if(m->slot < 0 || m->slot >= SH_SLOTS || cluster_set_shards(m->c, (int) shards) ||
		cluster_set_shard_callback(m->c, on_shards))
	{
		fprintf(stderr, "bench-shards: cannot set up shards on %s: %s\n", id, strerror(errno));
		bl_member_free(m);
		return NULL;
	}
	if(debug)
	{
		cluster_set_verbose(m->c, 1);
		cluster_set_logger2(m->c, debug_logger);
	}
	pthread_mutex_lock(&sh_lock);
	sh_owned[m->slot] = 0;
	sh_watched[m->slot] = 0;
	if(m->slot >= sh_slots)
	{
		sh_slots = m->slot + 1;
	}
	pthread_mutex_unlock(&sh_lock);
	return m;
}

typedef struct eres eres;
struct eres
{
	size_t joins, leaves;
	size_t lj_ttl, ll_ttl; /* library samples that took a TTL or more */
	double lj50, lj99, yj50, yj99, ll50, ll99, yl50, yl99;
	double setup_s, total_s;
	long overlaps, strays;
};

/* Both waits of one sample, in ms from t0; -1 when either timed out. */
static int
sample(double t0, double timeout, double *lib, double *yard)
{
	double tl = sh_wait(timeout), ty = bl_wait_target(timeout);

	if(tl < 0 || ty < 0)
	{
		fprintf(stderr, "bench-shards: no end after %.0f s: %s\n", timeout,
			tl < 0 && ty < 0 ? "library and sorted-index" : tl < 0 ? "library" :
																	 "sorted-index");
		return -1;
	}
	*lib = (tl - t0) * 1000.0;
	*yard = (ty - t0) * 1000.0;
	return 0;
}

static int
run_etcd(const char *endpoint, uint32_t shards, int n, int rounds, eres *res)
{
	static double lj[MAX_ROUNDS], yj[MAX_ROUNDS], ll[MAX_ROUNDS], yl[MAX_ROUNDS];
	bl_member **live = calloc((size_t) n + 1, sizeof(*live)), *m;
	double mult = etcdh_timeout_mult(), t0, start = bl_now();
	int count = 0, r, rc = 0, i;
	char key[64];

	memset(res, 0, sizeof(*res));
	pthread_mutex_lock(&sh_lock);
	free(sh_holders);
	sh_holders = calloc(shards, sizeof(*sh_holders));
	sh_shards = shards;
	sh_armed = 0;
	sh_overlaps = sh_strays = 0;
	pthread_mutex_unlock(&sh_lock);
	if(!live || !sh_holders)
	{
		free(live);
		fprintf(stderr, "bench-shards: out of memory\n");
		return -1;
	}
	snprintf(key, sizeof(key), "shards%u-%d", shards, n);
	for(count = 0; count < n; count++)
	{
		live[count] = sh_member_new(key, endpoint, shards);
		if(!live[count] || cluster_join(live[count]->c))
		{
			fprintf(stderr, "bench-shards: member %d could not join: %s\n", count, strerror(errno));
			count += live[count] != NULL;
			rc = -1;
			goto out;
		}
	}
	sh_expect(live, (size_t) n);
	bl_set_target(live, (size_t) n, n);
	if(sh_wait(120 * mult) < 0 || bl_wait_target(60 * mult) < 0)
	{
		fprintf(stderr, "bench-shards: %d members never settled on %u shards\n", n, shards);
		rc = -1;
		goto out;
	}
	res->setup_s = bl_now() - start;
	for(r = 0; r < rounds; r++)
	{
		/* a join: N + 1 members must own their quota */
		m = sh_member_new(key, endpoint, shards);
		if(!m)
		{
			rc = -1;
			break;
		}
		live[n] = m;
		count = n + 1;
		sh_expect(live, (size_t) n + 1);
		bl_set_target(live, (size_t) n + 1, n + 1);
		t0 = bl_now();
		if(debug)
		{
			fprintf(stderr, "%.3f bench-shards: %s joins\n", t0, cluster_instance(m->c));
		}
		if(cluster_join(m->c))
		{
			fprintf(stderr, "bench-shards: round %d: join failed: %s\n", r, strerror(errno));
			rc = -1;
			break;
		}
		if(sample(t0, 60 * mult, &lj[res->joins], &yj[res->joins]))
		{
			rc = -1;
			break;
		}
		res->joins++;
		bl_sleep(GAP_S);
		/* a leave of a random member: the other N own their quota, the
		 * leaver nothing */
		i = (int) rnd((unsigned) n + 1);
		m = live[i];
		live[i] = live[n];
		live[n] = m;
		sh_expect(live, (size_t) n);
		bl_set_target(live, (size_t) n, n);
		t0 = bl_now();
		if(debug)
		{
			fprintf(stderr, "%.3f bench-shards: %s leaves\n", t0, cluster_instance(m->c));
		}
		cluster_leave(m->c);
		if(sample(t0, 60 * mult, &ll[res->leaves], &yl[res->leaves]))
		{
			rc = -1;
			break;
		}
		res->leaves++;
		bl_member_free(m);
		live[n] = NULL;
		count = n;
		bl_sleep(GAP_S);
	}
out:
	pthread_mutex_lock(&sh_lock);
	sh_armed = 0;
	pthread_mutex_unlock(&sh_lock);
	for(i = 0; i < count; i++)
	{
		bl_member_free(live[i]);
	}
	free(live);
	pthread_mutex_lock(&sh_lock);
	res->overlaps = sh_overlaps;
	res->strays = sh_strays;
	pthread_mutex_unlock(&sh_lock);
	for(i = 0; i < (int) res->joins; i++)
	{
		res->lj_ttl += lj[i] >= CLUSTER_TTL_DEFAULT * 1000.0;
	}
	for(i = 0; i < (int) res->leaves; i++)
	{
		res->ll_ttl += ll[i] >= CLUSTER_TTL_DEFAULT * 1000.0;
	}
	res->lj50 = bl_quantile(lj, res->joins, 0.5);
	res->lj99 = bl_quantile(lj, res->joins, 0.99);
	res->yj50 = bl_quantile(yj, res->joins, 0.5);
	res->yj99 = bl_quantile(yj, res->joins, 0.99);
	res->ll50 = bl_quantile(ll, res->leaves, 0.5);
	res->ll99 = bl_quantile(ll, res->leaves, 0.99);
	res->yl50 = bl_quantile(yl, res->leaves, 0.5);
	res->yl99 = bl_quantile(yl, res->leaves, 0.99);
	res->total_s = bl_now() - start;
	return rc;
}

/* etcd's version from GET /version ("?" if unknown). */
static void
etcd_version(etcdh *h, char *out, size_t size)
{
	char url[256], *body = NULL, *p;

	snprintf(out, size, "?");
	snprintf(url, sizeof(url), "%sversion", etcdh_endpoint(h));
	if(etcdh_request("GET", url, NULL, 2000, &body) == 200 && body && (p = strstr(body, "\"etcdserver\":\"")))
	{
		p += strlen("\"etcdserver\":\"");
		snprintf(out, size, "%.*s", (int) strcspn(p, "\""), p);
	}
	free(body);
}

/* Part 2; returns 0, or 2 when the bench failed or a shard was held twice. */
static int
part2(const long *ss, int nss, const long *ns, int nns, int rounds)
{
	char version[64];
	int i, j, rc = 0;
	etcdh *h;
	eres res;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	bl_raise_nofile();
	i = etcdh_start(&h);
	if(i == ETCDH_SKIP)
	{
		printf("part 2: etcd is not installed: skipped\n");
		curl_global_cleanup();
		return 0;
	}
	if(i)
	{
		fprintf(stderr, "bench-shards: cannot start etcd\n");
		curl_global_cleanup();
		return 2;
	}
	etcd_version(h, version, sizeof(version));
	printf("part 2: a real etcd %s (private, %s, --unsafe-no-fsync); %ld CPUs online; libcluster %s\n", version,
		etcdh_endpoint(h), sysconf(_SC_NPROCESSORS_ONLN), cluster_version());
	printf("  members in this process, 1 worker each; TTL %d s, shard settle %d ms, view settle %d ms (the defaults)\n",
		CLUSTER_TTL_DEFAULT, CLUSTER_SHARD_SETTLE_DEFAULT_MS, CLUSTER_SETTLE_DEFAULT_MS);
	printf("  from just before cluster_join()/cluster_leave() until: library: every live member's shard callback\n"
		   "  has it at its floor/ceil quota, all S held, the leaver holding none; sorted-index: every live\n"
		   "  member's balancer callback reported the new total (no hand-over safety); rounds of one join +\n"
		   "  one leave of a random member; >=TTL: library samples that took a TTL or more (shards that\n"
		   "  waited for an owner's lease to run out)\n\n");
	printf("%7s %5s %-5s %7s | %10s %10s %5s | %10s %10s | %8s %8s\n", "S", "N", "event", "samples", "lib p50 ms",
		"lib p99 ms", ">=TTL", "idx p50 ms", "idx p99 ms", "setup s", "total s");
	fflush(stdout);
	for(i = 0; i < nss; i++)
	{
		for(j = 0; j < nns; j++)
		{
			int n = (int) ns[j], r = rounds > 0 ? rounds : n >= 200 ? 5 :
																	  10;

			if(run_etcd(etcdh_endpoint(h), (uint32_t) ss[i], n, r, &res))
			{
				printf("%7ld %5d  failed (see stderr)\n", ss[i], n);
				rc = 2;
			}
			if(res.joins)
			{
				printf("%7ld %5d %-5s %7zu | %10.1f %10.1f %5zu | %10.1f %10.1f | %8.1f %8.1f\n", ss[i], n, "join",
					res.joins, res.lj50, res.lj99, res.lj_ttl, res.yj50, res.yj99, res.setup_s, res.total_s);
			}
			if(res.leaves)
			{
				printf("%7ld %5d %-5s %7zu | %10.1f %10.1f %5zu | %10.1f %10.1f |\n", ss[i], n, "leave", res.leaves,
					res.ll50, res.ll99, res.ll_ttl, res.yl50, res.yl99);
			}
			if(res.overlaps || res.strays)
			{
				printf("%7ld %5d  ERROR: %ld acquisitions of a shard another member held, %ld releases of a shard "
					   "nobody held\n",
					ss[i], n, res.overlaps, res.strays);
				rc = 2;
			}
			fflush(stdout);
		}
	}
	etcdh_destroy(h);
	pthread_mutex_lock(&sh_lock);
	free(sh_holders);
	sh_holders = NULL;
	pthread_mutex_unlock(&sh_lock);
	curl_global_cleanup();
	return rc;
}

/* ====================================================================== */

static int
usage(void)
{
	fprintf(stderr, "usage: bench-shards [-p | -e] [-S LIST] [-N LIST] [-M LIST] [-k EVENTS] [-w N] [-r ROUNDS]\n"
					"  (LIST: comma-separated, e.g. -S 1024,65536; -M defaults to $BENCH_SHARDS_N)\n");
	return 2;
}

int
main(int argc, char **argv)
{
	long ss[MAX_LIST] = { 1024, 65536 }, ns[MAX_LIST] = { 3, 10, 50, 100, 200 }, ms[MAX_LIST] = { 3, 10, 50, 200 };
	int nss = 2, nns = 5, nms = 4, k = 100, wn = 50, rounds = 0, pure = 1, real = 1, opt, rc1 = 0, rc2 = 0;
	const char *env = getenv("BENCH_SHARDS_N"), *dbg = getenv("BENCH_SHARDS_DEBUG");

	setvbuf(stdout, NULL, _IOLBF, 0);
	debug = dbg && *dbg && strcmp(dbg, "0");
	if(env && *env && (nms = parse_list(env, ms, MAX_LIST, 1, 1000)) < 1)
	{
		fprintf(stderr, "bench-shards: BENCH_SHARDS_N: a comma-separated list of 1..1000\n");
		return 2;
	}
	while((opt = getopt(argc, argv, "peS:N:M:k:w:r:")) != -1)
	{
		switch(opt)
		{
		case 'p': real = 0; break;
		case 'e': pure = 0; break;
		case 'S': nss = parse_list(optarg, ss, MAX_LIST, 1, CLUSTER_SHARDS_MAX); break;
		case 'N': nns = parse_list(optarg, ns, MAX_LIST, 1, 10000); break;
		case 'M': nms = parse_list(optarg, ms, MAX_LIST, 1, 1000); break;
		case 'k': k = atoi(optarg); break;
		case 'w': wn = atoi(optarg); break;
		case 'r': rounds = atoi(optarg); break;
		default: return usage();
		}
	}
	if(optind != argc || nss < 1 || nns < 1 || nms < 1 || k < 1 || wn < 0 || wn > 10000 || rounds < 0 ||
		rounds > MAX_ROUNDS || (!pure && !real))
	{
		return usage();
	}
	if(pure)
	{
		rc1 = part1(ss, nss, ns, nns, k, wn);
	}
	if(real)
	{
		rc2 = part2(ss, nss, ms, nms, rounds);
	}
	return rc1 == 2 || rc2 == 2 ? 2 : rc1;
}
