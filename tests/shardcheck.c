/* SPDX-License-Identifier: Apache-2.0 */
/* The shard tests' referee: see shardcheck.h. */
#include "shardcheck.h"
#include "etcdharness.h"
#include "etcdtest.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SC_WHO        48
#define SC_ATTACH_MAX 256

typedef struct sc_event sc_event;
struct sc_event
{
	char who[SC_WHO];
	char kind; /* 'A' or 'R' */
	unsigned shard;
	long long token;
	long long ns;
};

typedef struct sc_attached sc_attached;
struct sc_attached
{
	CLUSTER *c;
	char who[SC_WHO];
};

typedef struct sc_killrec sc_killrec;
struct sc_killrec
{
	char who[SC_WHO];
	long long ns;
};

static pthread_mutex_t sc_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned sc_shards;
static char sc_dir[512];
static sc_event *mem_events; /* in-process callbacks (sc_lock) */
static size_t n_mem, cap_mem;
static sc_attached attached[SC_ATTACH_MAX];
static size_t n_attached;
static sc_killrec kills[SC_ATTACH_MAX];
static size_t n_kills;
/* the files of member processes, by who */
static char file_who[SC_ATTACH_MAX][SC_WHO];
static size_t n_files;

static long long
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void
sc_init(unsigned shards, const char *dir)
{
	pthread_mutex_lock(&sc_lock);
	sc_shards = shards;
	snprintf(sc_dir, sizeof(sc_dir), "%s", dir);
	n_mem = n_attached = n_kills = n_files = 0;
	pthread_mutex_unlock(&sc_lock);
}

/* The run's directory for event files, made by sc_setup(). */
static char setup_dir[256];

int
sc_setup(void **state)
{
	snprintf(setup_dir, sizeof(setup_dir), "/tmp/libcluster-shards-XXXXXX");
	if(!mkdtemp(setup_dir))
	{
		return -1;
	}
	return et_setup(state);
}

int
sc_teardown(void **state)
{
	char cmd[300];

	et_teardown(state);
	sc_free();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", setup_dir);
	return system(cmd) ? 0 : 0;
}

const char *
sc_dir_path(void)
{
	return setup_dir;
}

void
sc_free(void)
{
	pthread_mutex_lock(&sc_lock);
	free(mem_events);
	mem_events = NULL;
	n_mem = cap_mem = n_attached = n_kills = n_files = 0;
	pthread_mutex_unlock(&sc_lock);
}

static void
record(const char *who, char kind, const CLUSTERSHARD *s, size_t n, long long ns)
{
	size_t i;

	for(i = 0; i < n; i++)
	{
		sc_event *e;

		if(n_mem == cap_mem)
		{
			cap_mem = cap_mem ? cap_mem * 2 : 4096;
			mem_events = realloc(mem_events, cap_mem * sizeof(*mem_events));
			if(!mem_events)
			{
				abort();
			}
		}
		e = &mem_events[n_mem++];
		snprintf(e->who, sizeof(e->who), "%s", who);
		e->kind = kind;
		e->shard = s[i].shard;
		e->token = s[i].token;
		e->ns = ns;
	}
}

static void
on_shards(CLUSTER *c, const CLUSTERSHARD *acq, size_t na, const CLUSTERSHARD *rel, size_t nr)
{
	long long ns = mono_ns();
	size_t i;

	pthread_mutex_lock(&sc_lock);
	/* the newest attachment: a freed handle's address may be reused */
	for(i = n_attached; i-- > 0;)
	{
		if(attached[i].c == c)
		{
			break;
		}
	}
	if(i == (size_t) -1)
	{
		fprintf(stderr, "# shardcheck: callback from an unknown handle\n");
		abort();
	}
	record(attached[i].who, 'R', rel, nr, ns);
	record(attached[i].who, 'A', acq, na, ns);
	pthread_mutex_unlock(&sc_lock);
}

void
sc_attach(CLUSTER *c, const char *who)
{
	pthread_mutex_lock(&sc_lock);
	if(n_attached == SC_ATTACH_MAX)
	{
		abort();
	}
	attached[n_attached].c = c;
	snprintf(attached[n_attached].who, SC_WHO, "%s", who);
	n_attached++;
	pthread_mutex_unlock(&sc_lock);
	if(cluster_set_shards(c, (int) sc_shards) || cluster_set_shard_callback(c, on_shards))
	{
		fprintf(stderr, "# shardcheck: cannot set shards: %s\n", cluster_errmsg(c));
		abort();
	}
}

const char *
sc_event_file(const char *who)
{
	static char ring[4][600];
	static unsigned k;
	char *p = ring[k++ % 4];
	size_t i;

	pthread_mutex_lock(&sc_lock);
	for(i = 0; i < n_files; i++)
	{
		if(!strcmp(file_who[i], who))
		{
			break;
		}
	}
	if(i == n_files && n_files < SC_ATTACH_MAX)
	{
		snprintf(file_who[n_files++], SC_WHO, "%s", who);
	}
	snprintf(p, 600, "%s/%s.events", sc_dir, who);
	pthread_mutex_unlock(&sc_lock);
	return p;
}

void
sc_killed(const char *who)
{
	pthread_mutex_lock(&sc_lock);
	if(n_kills < SC_ATTACH_MAX)
	{
		snprintf(kills[n_kills].who, SC_WHO, "%s", who);
		kills[n_kills].ns = mono_ns();
		n_kills++;
	}
	pthread_mutex_unlock(&sc_lock);
}

/* Every event so far: in-process ones and the files' (caller frees). */
static sc_event *
all_events(size_t *n)
{
	sc_event *ev;
	size_t cap, i;

	pthread_mutex_lock(&sc_lock);
	cap = n_mem + 1024;
	ev = malloc(cap * sizeof(*ev));
	if(!ev)
	{
		abort();
	}
	if(n_mem)
	{
		memcpy(ev, mem_events, n_mem * sizeof(*ev));
	}
	*n = n_mem;
	for(i = 0; i < n_files; i++)
	{
		char path[600], line[128];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s.events", sc_dir, file_who[i]);
		f = fopen(path, "r");
		if(!f)
		{
			continue;
		}
		while(fgets(line, sizeof(line), f))
		{
			sc_event e;

			memset(&e, 0, sizeof(e));
			if(!strchr(line, '\n') || sscanf(line, "%c %u %lld %lld", &e.kind, &e.shard, &e.token, &e.ns) != 4)
			{
				continue; /* a line cut short by SIGKILL */
			}
			snprintf(e.who, sizeof(e.who), "%s", file_who[i]);
			if(*n == cap)
			{
				cap *= 2;
				ev = realloc(ev, cap * sizeof(*ev));
				if(!ev)
				{
					abort();
				}
			}
			ev[(*n)++] = e;
		}
		fclose(f);
	}
	pthread_mutex_unlock(&sc_lock);
	return ev;
}

static long long
killed_at(const char *who)
{
	size_t i;

	for(i = 0; i < n_kills; i++)
	{
		if(!strcmp(kills[i].who, who))
		{
			return kills[i].ns;
		}
	}
	return INT64_MAX;
}

typedef struct sc_interval sc_interval;
struct sc_interval
{
	const char *who;
	unsigned shard;
	long long token;
	long long from, to;
};

static int
by_shard_then_start(const void *a, const void *b)
{
	const sc_interval *x = a, *y = b;

	if(x->shard != y->shard)
	{
		return x->shard < y->shard ? -1 : 1;
	}
	return x->from < y->from ? -1 : x->from > y->from;
}

static int
by_time(const void *a, const void *b)
{
	const sc_event *x = a, *y = b;

	return x->ns < y->ns ? -1 : x->ns > y->ns;
}

static int
by_who_then_time(const void *a, const void *b)
{
	const sc_event *x = a, *y = b;
	int c = strcmp(x->who, y->who);

	if(c)
	{
		return c;
	}
	return x->ns < y->ns ? -1 : x->ns > y->ns;
}

int
sc_check_intervals(void)
{
	sc_event *ev;
	sc_interval *iv;
	long long *open_at, *open_tok;
	size_t n, niv = 0, i, j;
	int bad = 0;

	ev = all_events(&n);
	/* stable per holder: events of one callback share a time, and
	 * releases come first in each */
	for(i = 0; i < n; i++)
	{
		ev[i].ns = ev[i].ns * 4 + (ev[i].kind == 'A' ? 1 : 0);
	}
	qsort(ev, n, sizeof(*ev), by_who_then_time);
	iv = malloc((n + 1) * sizeof(*iv)); /* one per acquire at most */
	open_at = malloc(sc_shards * sizeof(*open_at));
	open_tok = malloc(sc_shards * sizeof(*open_tok));
	if(!iv || !open_at || !open_tok)
	{
		abort();
	}
	for(i = 0; i < n;)
	{
		long long end;
		size_t g;

		for(j = 0; j < sc_shards; j++)
		{
			open_at[j] = -1;
		}
		end = killed_at(ev[i].who);
		end = end == INT64_MAX ? INT64_MAX : end * 4;
		for(g = i; g < n && !strcmp(ev[g].who, ev[i].who); g++)
		{
			sc_event *e = &ev[g];

			if(e->shard >= sc_shards)
			{
				fprintf(stderr, "# shardcheck: %s got shard %u of %u\n", e->who, e->shard, sc_shards);
				bad++;
				continue;
			}
			if(e->kind == 'A')
			{
				if(open_at[e->shard] >= 0)
				{
					fprintf(stderr, "# shardcheck: %s acquired shard %u twice\n", e->who, e->shard);
					bad++;
				}
				open_at[e->shard] = e->ns;
				open_tok[e->shard] = e->token;
			}
			else if(open_at[e->shard] < 0)
			{
				fprintf(stderr, "# shardcheck: %s released shard %u it did not hold\n", e->who, e->shard);
				bad++;
			}
			else
			{
				iv[niv++] = (sc_interval) { e->who, e->shard, open_tok[e->shard], open_at[e->shard], e->ns };
				open_at[e->shard] = -1;
			}
		}
		for(j = 0; j < sc_shards; j++)
		{
			if(open_at[j] >= 0)
			{
				/* still held (or until the kill) */
				iv[niv++] = (sc_interval) { ev[i].who, (unsigned) j, open_tok[j], open_at[j], end };
			}
		}
		i = g;
	}
	qsort(iv, niv, sizeof(*iv), by_shard_then_start);
	for(i = 1; i < niv; i++)
	{
		const sc_interval *a = &iv[i - 1], *b = &iv[i];

		if(a->shard != b->shard)
		{
			continue;
		}
		if(b->from < a->to)
		{
			fprintf(stderr, "# shardcheck: DOUBLE OWNERSHIP of shard %u: %s held it from %.6f to %.6f, %s from %.6f\n", a->shard, a->who, a->from / 4e9,
				a->to == INT64_MAX ? -1.0 : a->to / 4e9, b->who, b->from / 4e9);
			bad++;
		}
		if(strcmp(a->who, b->who) && b->token <= a->token)
		{
			fprintf(stderr, "# shardcheck: shard %u went from %s (token %lld) to %s with token %lld: not larger\n", a->shard, a->who, a->token, b->who, b->token);
			bad++;
		}
	}
	fprintf(stderr, "# shardcheck: %zu events, %zu holding intervals, %d violations\n", n, niv, bad);
	free(iv);
	free(open_at);
	free(open_tok);
	free(ev);
	return bad;
}

size_t
sc_event_count(const char *who)
{
	sc_event *ev;
	size_t n, i, c = 0;

	ev = all_events(&n);
	for(i = 0; i < n; i++)
	{
		c += !who || !strcmp(ev[i].who, who);
	}
	free(ev);
	return c;
}

/* ---- snapshots ---------------------------------------------------- */

struct sc_snapshot
{
	unsigned shards;
	char (*holder)[SC_WHO]; /* "" none; "*" more than one */
	int dead_holding;       /* a holder nobody named as live still holds */
};

sc_snapshot *
sc_snapshot_take(void)
{
	sc_snapshot *s = calloc(1, sizeof(*s));
	sc_event *ev;
	size_t n, i;

	if(!s)
	{
		abort();
	}
	s->shards = sc_shards;
	s->holder = calloc(sc_shards, SC_WHO);
	if(!s->holder)
	{
		abort();
	}
	ev = all_events(&n);
	for(i = 0; i < n; i++)
	{
		ev[i].ns = ev[i].ns * 4 + (ev[i].kind == 'A' ? 1 : 0);
	}
	qsort(ev, n, sizeof(*ev), by_time);
	/* replay in time order; a killed holder holds nothing */
	for(i = 0; i < n; i++)
	{
		sc_event *e = &ev[i];

		if(e->shard >= sc_shards || killed_at(e->who) != INT64_MAX)
		{
			continue;
		}
		if(e->kind == 'A')
		{
			if(s->holder[e->shard][0] && strcmp(s->holder[e->shard], e->who))
			{
				snprintf(s->holder[e->shard], SC_WHO, "*");
			}
			else
			{
				snprintf(s->holder[e->shard], SC_WHO, "%s", e->who);
			}
		}
		else if(!strcmp(s->holder[e->shard], e->who))
		{
			s->holder[e->shard][0] = 0;
		}
	}
	free(ev);
	return s;
}

void
sc_snapshot_free(sc_snapshot *s)
{
	if(s)
	{
		free(s->holder);
		free(s);
	}
}

size_t
sc_moves(const sc_snapshot *a, const sc_snapshot *b)
{
	size_t i, m = 0;

	for(i = 0; i < a->shards; i++)
	{
		m += strcmp(a->holder[i], b->holder[i]) != 0;
	}
	return m;
}

static int
cmp_desc(const void *a, const void *b)
{
	long long x = *(const long long *) a, y = *(const long long *) b;

	return x > y ? -1 : x < y;
}

/*
 * From scratch: each live member i of weight w keeps min(held_i, q_i)
 * where q_i is floor(S*w/W) or one more; the one-mores (S - sum floor of
 * them) go where they keep the most, i.e. to members holding more than
 * their floor. Everything else moves.
 */
size_t
sc_min_moves(const sc_snapshot *a, const sc_live *live, size_t n)
{
	long long W = 0, S = a->shards, floors = 0, kept = 0, extra;
	long long *gain = calloc(n + 1, sizeof(*gain));
	size_t i, k, g = 0;

	if(!gain)
	{
		abort();
	}
	for(i = 0; i < n; i++)
	{
		W += live[i].workers;
	}
	for(i = 0; i < n; i++)
	{
		long long fl = S * live[i].workers / W, held = 0;
		int frac = (S * live[i].workers) % W != 0;

		for(k = 0; k < a->shards; k++)
		{
			held += !strcmp(a->holder[k], live[i].who);
		}
		floors += fl;
		kept += held < fl ? held : fl;
		if(frac)
		{
			gain[g++] = held > fl ? 1 : 0;
		}
	}
	extra = S - floors;
	qsort(gain, g, sizeof(*gain), cmp_desc);
	for(i = 0; i < g && (long long) i < extra; i++)
	{
		kept += gain[i];
	}
	free(gain);
	return (size_t) (S - kept);
}

int
sc_settled(const sc_live *live, size_t n, char *why, size_t whysz)
{
	sc_snapshot *s = sc_snapshot_take();
	long long W = 0, S = sc_shards;
	size_t i, k;
	int r = 0;

	for(i = 0; i < n; i++)
	{
		W += live[i].workers;
	}
	for(k = 0; k < s->shards && !r; k++)
	{
		int found = 0;

		if(!s->holder[k][0])
		{
			snprintf(why, whysz, "shard %zu has no holder", k);
			r = -1;
			break;
		}
		if(!strcmp(s->holder[k], "*"))
		{
			snprintf(why, whysz, "shard %zu has two holders", k);
			r = -1;
			break;
		}
		for(i = 0; i < n; i++)
		{
			found |= !strcmp(s->holder[k], live[i].who);
		}
		if(!found)
		{
			snprintf(why, whysz, "shard %zu is held by %s, which is not live", k, s->holder[k]);
			r = -1;
		}
	}
	for(i = 0; i < n && !r; i++)
	{
		long long held = 0, lo = S * live[i].workers / W, hi = lo + ((S * live[i].workers) % W != 0);

		for(k = 0; k < s->shards; k++)
		{
			held += !strcmp(s->holder[k], live[i].who);
		}
		if(held < lo || held > hi)
		{
			snprintf(why, whysz, "%s holds %lld shards, not %lld..%lld", live[i].who, held, lo, hi);
			r = -1;
		}
	}
	sc_snapshot_free(s);
	return r;
}

/* Every event of one shard, in time order (after a failed check). */
static void
dump_shard(unsigned shard)
{
	sc_event *ev;
	size_t n, i;

	ev = all_events(&n);
	qsort(ev, n, sizeof(*ev), by_time);
	for(i = 0; i < n; i++)
	{
		if(ev[i].shard == shard)
		{
			fprintf(stderr, "#   shard %u: %.6f %s %c token %lld%s\n", shard, ev[i].ns / 1e9, ev[i].who, ev[i].kind, ev[i].token,
				killed_at(ev[i].who) != INT64_MAX ? " (killed later)" : "");
		}
	}
	free(ev);
}

int
sc_wait_settled(const sc_live *live, size_t n, double seconds)
{
	double end = etcdh_now() + et_t(seconds);
	char why[300] = "";

	for(;;)
	{
		if(!sc_settled(live, n, why, sizeof(why)))
		{
			return 0;
		}
		if(etcdh_now() > end)
		{
			unsigned shard;

			fprintf(stderr, "# shardcheck: not settled after %.1f s: %s\n", et_t(seconds), why);
			if(sscanf(why, "shard %u", &shard) == 1)
			{
				dump_shard(shard);
			}
			return -1;
		}
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}
