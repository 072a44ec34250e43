/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench-view: CPU per registry event of the membership view, no registry.
 *
 * One event = one member record changed (workers, status) or removed and
 * added back, applied to the engine's member table, then published the
 * way the core does: a new pending view replacing the previous one, with
 * this instance's base and the total. Two ways, measured in the same run:
 *
 *   tree:  the persistent member table (member-table.c) and views that
 *          share its versions (view.c): a put or delete plus rank queries.
 *   array: the approach the tree replaced, rebuilt here as the yardstick:
 *          a sorted array of fat records, and per publish a copy of it,
 *          qsort and prefix sums.
 *
 * Prints CPU ns per event (this thread's CPU time, so other load on the
 * machine does not count) for each N, and the ratio of the tree's cost
 * per log2(N) at N=1000 to N=50. The verdict is PASS when that ratio is at
 * most 1.5 (the update is O(log N)), FAIL otherwise (exit 1); the array's
 * cost per log2(N) grows about 40x over the same range, so the verdict
 * can fail. An O(log N) structure alone costs log2(1000)/log2(50) = 1.77x
 * more at N=1000: the "flat within 1.5x" is about a whole event
 * (parsing, callbacks, I/O) and is measured end to end by bench-scale.
 *
 *   bench-view [N ...]   (default: 50 200 1000 4000; the verdict needs
 *                         50 and 1000 among them)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__GLIBC__)
# include <malloc.h>
#endif

#include "view.h"

#define GOAL_RATIO 1.5
#define MIN_NS     40000000LL /* measure each case for at least this long */
#define ROUNDS     7          /* keep the fastest of this many runs */

/* CPU time of this thread: what an event costs, not what the other
 * processes on a shared machine took meanwhile. */
static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ULL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned) (rng % n);
}

/* The records events are made of, built before the clock starts: making
 * them (snprintf) is the registry's and the parser's work, not the
 * view's. */
static cluster__member *recs;

static void
make_recs(unsigned n)
{
	unsigned i;

	free(recs);
	recs = calloc(n, sizeof(*recs));
	if(!recs)
	{
		abort();
	}
	for(i = 0; i < n; i++)
	{
		cluster__member *m = &recs[i];

		snprintf(m->id, sizeof(m->id), "svc-host-%05u", i);
		m->workers = 1;
		m->has_status = 1;
		m->capacity = CLUSTER_CAPACITY_UNBOUNDED;
		snprintf(m->address, sizeof(m->address), "ws://10.0.%u.%u:8080", i / 250, i % 250);
	}
}

/* Member i as of event serial: workers and load move, like the advisor's
 * status reports and workers changes do. */
static const cluster__member *
member(unsigned i, unsigned serial)
{
	cluster__member *m = &recs[i];

	m->workers = 1 + (int) (serial % 4);
	m->load = (long long) (serial % 97);
	m->mod_revision = serial;
	return m;
}

/* ------------------------------------------------------------------ */
/* tree                                                                 */
/* ------------------------------------------------------------------ */

typedef struct tree_state tree_state;
struct tree_state
{
	cluster__table table;
	cluster__view pending;
	char self[CLUSTER_NAME_MAX + 1];
	long long sink;
};

/* One event: change or remove-and-restore a random member, then publish
 * (a delete is one event, the re-add the next). */
static void
tree_event(tree_state *s, unsigned n, unsigned serial)
{
	const cluster__member *m = member(rnd(n), serial);

	if(serial % 4 == 0 && cluster__table_del(&s->table, m->id) == 1)
	{
		cluster__view_free(&s->pending);
		cluster__view_make(&s->pending, &s->table, NULL, s->self, serial);
		s->sink += s->pending.base + s->pending.total;
		serial++;
	}
	if(cluster__table_put(&s->table, m, serial, NULL))
	{
		abort();
	}
	cluster__view_free(&s->pending);
	cluster__view_make(&s->pending, &s->table, NULL, s->self, serial);
	s->sink += s->pending.base + s->pending.total;
}

/* ns per event with the table at n members. */
static double
tree_run(unsigned n)
{
	tree_state s;
	unsigned i, serial = 1, events = 0;
	int64_t t0, dt;

	memset(&s, 0, sizeof(s));
	cluster__view_init(&s.pending);
	snprintf(s.self, sizeof(s.self), "svc-host-%05u", n / 2);
	make_recs(n);
	for(i = 0; i < n; i++)
	{
		if(cluster__table_put(&s.table, member(i, 0), 0, NULL))
		{
			abort();
		}
	}
	t0 = now_ns();
	do
	{
		for(i = 0; i < 1000; i++)
		{
			tree_event(&s, n, serial++);
			events += serial % 4 == 1 ? 2 : 1;
		}
		dt = now_ns() - t0;
	}
	while(dt < MIN_NS);
	cluster__view_free(&s.pending);
	cluster__table_free(&s.table);
	if(s.sink == 42)
	{
		putchar(' ');
	}
	return (double) dt / events;
}

/* ------------------------------------------------------------------ */
/* array: the yardstick                                                 */
/* ------------------------------------------------------------------ */

/* A fat record as views held them: the member plus its computed base. */
typedef struct fat fat;
struct fat
{
	cluster__member m;
	int base;
};

typedef struct array_state array_state;
struct array_state
{
	fat *table; /* sorted by id */
	size_t n;
	fat *pending; /* the published copy */
	size_t pending_n;
	int base, total;
	char self[CLUSTER_NAME_MAX + 1];
	long long sink;
};

static int
fat_cmp(const void *a, const void *b)
{
	return strcmp(((const fat *) a)->m.id, ((const fat *) b)->m.id);
}

static size_t
array_pos(const array_state *s, const char *id, int *found)
{
	size_t lo = 0, hi = s->n;

	*found = 0;
	while(lo < hi)
	{
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->table[mid].m.id, id);

		if(!c)
		{
			*found = 1;
			return mid;
		}
		if(c < 0)
		{
			lo = mid + 1;
		}
		else
		{
			hi = mid;
		}
	}
	return lo;
}

/* The old publish: copy, sort, prefix sums, replace the pending copy. */
static void
array_publish(array_state *s)
{
	fat *v = malloc((s->n ? s->n : 1) * sizeof(*v));
	int sum = 0;
	size_t i;

	if(!v)
	{
		abort();
	}
	memcpy(v, s->table, s->n * sizeof(*v));
	qsort(v, s->n, sizeof(*v), fat_cmp);
	s->base = -1;
	for(i = 0; i < s->n; i++)
	{
		v[i].base = v[i].m.passive ? -1 : sum;
		sum += v[i].m.passive ? 0 : v[i].m.workers;
		if(!strcmp(v[i].m.id, s->self))
		{
			s->base = v[i].base;
		}
	}
	s->total = sum;
	free(s->pending);
	s->pending = v;
	s->pending_n = s->n;
	s->sink += s->base + s->total;
}

static void
array_put(array_state *s, const cluster__member *m)
{
	int found;
	size_t pos = array_pos(s, m->id, &found);

	if(!found)
	{
		memmove(&s->table[pos + 1], &s->table[pos], (s->n - pos) * sizeof(*s->table));
		s->n++;
	}
	s->table[pos].m = *m;
}

static void
array_event(array_state *s, unsigned n, unsigned serial)
{
	const cluster__member *m = member(rnd(n), serial);
	int found;
	size_t pos = array_pos(s, m->id, &found);

	if(serial % 4 == 0 && found)
	{
		memmove(&s->table[pos], &s->table[pos + 1], (s->n - pos - 1) * sizeof(*s->table));
		s->n--;
		array_publish(s);
	}
	array_put(s, m);
	array_publish(s);
}

static double
array_run(unsigned n)
{
	array_state s;
	unsigned i, serial = 1, events = 0;
	int64_t t0, dt;

	memset(&s, 0, sizeof(s));
	s.table = calloc(n, sizeof(*s.table));
	if(!s.table)
	{
		abort();
	}
	snprintf(s.self, sizeof(s.self), "svc-host-%05u", n / 2);
	make_recs(n);
	for(i = 0; i < n; i++)
	{
		array_put(&s, member(i, 0));
	}
	t0 = now_ns();
	do
	{
		for(i = 0; i < 20; i++)
		{
			array_event(&s, n, serial++);
			events += serial % 4 == 1 ? 2 : 1;
		}
		dt = now_ns() - t0;
	}
	while(dt < MIN_NS);
	free(s.pending);
	free(s.table);
	if(s.sink == 42)
	{
		putchar(' ');
	}
	return (double) dt / events;
}

/* ------------------------------------------------------------------ */

/* Heap bytes held by one table of n members, each with a status or none
 * (glibc only; -1 elsewhere): what an instance holds per member, malloc's
 * chunk rounding included. */
static long
table_bytes(unsigned n, int with_status)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	cluster__table t;
	struct mallinfo2 a, b;
	unsigned i;

	memset(&t, 0, sizeof(t));
	make_recs(n);
	a = mallinfo2();
	for(i = 0; i < n; i++)
	{
		cluster__member m = *member(i, i);

		m.has_status = with_status;
		if(cluster__table_put(&t, &m, 0, NULL))
		{
			abort();
		}
	}
	b = mallinfo2();
	cluster__table_free(&t);
	return (long) (b.uordblks - a.uordblks);
#else
	(void) n;
	return -1;
#endif
}

static double
best(double (*run)(unsigned), unsigned n)
{
	double b = run(n);
	int r;

	for(r = 1; r < ROUNDS; r++)
	{
		double x = run(n);

		b = x < b ? x : b;
	}
	return b;
}

int
main(int argc, char **argv)
{
	unsigned def[] = { 50, 200, 1000, 4000 };
	unsigned ns[16];
	size_t nn = 0, i;
	double tree[16], array[16], t50 = 0, t1000 = 0, a50 = 0, a1000 = 0;
	long bytes, plain_bytes;

	for(i = 1; i < (size_t) argc && nn < 16; i++)
	{
		long v = strtol(argv[i], NULL, 10);

		if(v < 2 || v > CLUSTER_MEMBERS_MAX)
		{
			fprintf(stderr, "usage: bench-view [N ...] (2..%d)\n", CLUSTER_MEMBERS_MAX);
			return 2;
		}
		ns[nn++] = (unsigned) v;
	}
	if(!nn)
	{
		memcpy(ns, def, sizeof(def));
		nn = sizeof(def) / sizeof(def[0]);
	}
	printf("bench-view: CPU ns per event (one member changed or removed, then published), best of %d runs\n", ROUNDS);
	printf("%8s %14s %14s %10s %16s %16s\n", "N", "tree ns/ev", "array ns/ev", "speed-up", "tree ns/ev/logN", "array ns/ev/N");
	/* every tree run first, then every array run: the array's big copies
	 * would otherwise evict the tree's nodes from the caches in between */
	for(i = 0; i < nn; i++)
	{
		tree[i] = best(tree_run, ns[i]);
	}
	for(i = 0; i < nn; i++)
	{
		array[i] = best(array_run, ns[i]);
	}
	for(i = 0; i < nn; i++)
	{
		double lg = 0;
		unsigned k;

		for(k = ns[i]; k > 1; k >>= 1)
		{
			lg++;
		}
		printf("%8u %14.0f %14.0f %9.1fx %16.1f %16.1f\n", ns[i], tree[i], array[i], array[i] / tree[i], tree[i] / lg, array[i] / ns[i]);
		if(ns[i] == 50)
		{
			t50 = tree[i];
			a50 = array[i];
		}
		if(ns[i] == 1000)
		{
			t1000 = tree[i];
			a1000 = array[i];
		}
	}
	bytes = table_bytes(1000, 1);
	plain_bytes = table_bytes(1000, 0);
	free(recs);
	if(bytes >= 0)
	{
		printf("member table at N=1000, ids of 14 bytes: %ld bytes without statuses (%.0f per member), %ld with statuses "
			   "(%.0f per member)\n",
			plain_bytes, plain_bytes / 1000.0, bytes, bytes / 1000.0);
	}
	if(!t50 || !t1000)
	{
		printf("no verdict: give 50 and 1000 among the sizes\n");
		return 0;
	}
	printf("per-event cost at N=1000 / N=50: tree %.2fx, array %.2fx (log2 1000 / log2 50 = 1.77x)\n", t1000 / t50, a1000 / a50);
	printf("cost per log2(N) at N=1000 / N=50: tree %.2fx, array %.2fx (1.00x = exactly logarithmic; goal: tree <= %.1fx)\n",
		(t1000 / 9.97) / (t50 / 5.64), (a1000 / 9.97) / (a50 / 5.64), GOAL_RATIO);
	if((t1000 / 9.97) / (t50 / 5.64) <= GOAL_RATIO)
	{
		printf("PASS\n");
		return 0;
	}
	printf("FAIL\n");
	return 1;
}
