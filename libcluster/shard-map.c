/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shard assignment (see shard-map.h): the record's text form, the
 * planner, a clean leave and a member's diff.
 *
 * Every function that builds a map works on a list of runs whose owner
 * and next index an "entity" table (the current map's owners, and for the
 * planner the live members after them) and ends in normalise(), which
 * drops the entities no run refers to, numbers the rest in (id,
 * incarnation) order and merges adjacent equal runs. So two maps that give
 * every shard to the same owners in the same state encode to the same
 * text, whatever their history.
 *
 * Everything a record holds is treated as hostile: decode checks types,
 * ranges and coverage before it believes a number, and names what it
 * refused, quoted and escaped.
 *
 * Pure: no I/O, no locks, no globals.
 */
#include "shard-map.h"
#include "json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "util.h"
#include "view.h"

/* The "v" of the records this file writes and reads. */
#define CLUSTER__SHARD_RECORD_VERSION 1

/* 2^53: a JSON number this large may already have been rounded by the
 * parser, so numbers must stay strictly below it. */

/* How much of an offending piece a reason quotes (escaped, then cut). */
#define QUOTE_SIZE 64

typedef cluster__shard_run run;

/* An owner as the builders see it: borrowed id, and its index in the table
 * it came from (kept through a sort). */
typedef struct ent ent;
struct ent
{
	const char *id;
	int64_t incarnation;
	size_t index;
};

/* ------------------------------------------------------------------ */
/* small helpers                                                        */
/* ------------------------------------------------------------------ */

/* strdup through malloc (so that a test's malloc wrapper sees it). */
static char *
dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if(d)
	{
		memcpy(d, s, n);
	}
	return d;
}

static int
ent_cmp(const void *a, const void *b)
{
	const ent *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	if(c)
	{
		return c;
	}
	return x->incarnation < y->incarnation ? -1 : x->incarnation > y->incarnation;
}

static void
free_owners(cluster__shard_owner *owners, size_t n)
{
	size_t i;

	for(i = 0; i < n; i++)
	{
		free(owners[i].id);
	}
	free(owners);
}

void
cluster__shard_map_free(cluster__shard_map *m)
{
	if(!m)
	{
		return;
	}
	free_owners(m->owners, m->n_owners);
	free(m->runs);
	memset(m, 0, sizeof(*m));
}

int
cluster__shard_map_init(cluster__shard_map *m, uint32_t shards)
{
	memset(m, 0, sizeof(*m));
	if(shards < 1 || shards > CLUSTER_SHARDS_MAX)
	{
		return EINVAL;
	}
	m->runs = malloc(sizeof(*m->runs));
	if(!m->runs)
	{
		return ENOMEM;
	}
	m->runs[0].start = 0;
	m->runs[0].len = shards;
	m->runs[0].owner = -1;
	m->runs[0].next = -1;
	m->runs[0].token = 0;
	m->runs[0].since = 0;
	m->n_runs = 1;
	m->shards = shards;
	return 0;
}

int
cluster__shard_map_copy(cluster__shard_map *dst, const cluster__shard_map *src)
{
	size_t i;

	memset(dst, 0, sizeof(*dst));
	if(src->n_runs)
	{
		dst->runs = malloc(src->n_runs * sizeof(*dst->runs));
		if(!dst->runs)
		{
			return ENOMEM;
		}
		memcpy(dst->runs, src->runs, src->n_runs * sizeof(*dst->runs));
		dst->n_runs = src->n_runs;
	}
	if(src->n_owners)
	{
		dst->owners = malloc(src->n_owners * sizeof(*dst->owners));
		if(!dst->owners)
		{
			cluster__shard_map_free(dst);
			return ENOMEM;
		}
		for(i = 0; i < src->n_owners; i++)
		{
			dst->owners[i].incarnation = src->owners[i].incarnation;
			dst->owners[i].id = dup_str(src->owners[i].id);
			if(!dst->owners[i].id)
			{
				dst->n_owners = i;
				cluster__shard_map_free(dst);
				return ENOMEM;
			}
		}
		dst->n_owners = src->n_owners;
	}
	dst->shards = src->shards;
	return 0;
}

/* ------------------------------------------------------------------ */
/* normal form                                                          */
/* ------------------------------------------------------------------ */

/*
 * Rank the entities the runs refer to: remap[i] gets entity i's index in
 * (id, incarnation) order among the referenced ones (-1: unreferenced;
 * equal entities share an index), *sorted the referenced ones in that
 * order, *n_ref how many distinct ones. Both arrays malloc'ed (NULL when
 * there are no entities). 0 or ENOMEM.
 */
static int
rank_owners(const ent *ents, size_t n_ents, const run *runs, size_t n_runs, int32_t **remap_out, ent **sorted_out, size_t *n_ref_out)
{
	int32_t *remap;
	ent *sorted;
	size_t i, n = 0, k;

	*remap_out = NULL;
	*sorted_out = NULL;
	*n_ref_out = 0;
	if(!n_ents)
	{
		return 0;
	}
	remap = malloc(n_ents * sizeof(*remap));
	sorted = malloc(n_ents * sizeof(*sorted));
	if(!remap || !sorted)
	{
		free(remap);
		free(sorted);
		return ENOMEM;
	}
	for(i = 0; i < n_ents; i++)
	{
		remap[i] = -1;
	}
	for(i = 0; i < n_runs; i++)
	{
		int32_t who[2] = { runs[i].owner, runs[i].next };
		int j;

		for(j = 0; j < 2; j++)
		{
			if(who[j] >= 0 && remap[who[j]] == -1)
			{
				remap[who[j]] = 0;
				sorted[n] = ents[who[j]];
				sorted[n].index = (size_t) who[j];
				n++;
			}
		}
	}
	qsort(sorted, n, sizeof(*sorted), ent_cmp);
	for(i = 0, k = 0; i < n; i++)
	{
		size_t idx = sorted[i].index;

		if(!k || ent_cmp(&sorted[k - 1], &sorted[i]))
		{
			sorted[k++] = sorted[i];
		}
		remap[idx] = (int32_t) (k - 1);
	}
	*remap_out = remap;
	*sorted_out = sorted;
	*n_ref_out = k;
	return 0;
}

/* A run renumbered by remap, with the fields its state makes meaningless
 * zeroed (the token of an unowned run, the since of a run without a next)
 * and a next that is its owner (a hand-built map naming one owner twice)
 * dropped. */
static void
norm_run(run *r, const int32_t *remap)
{
	r->owner = r->owner >= 0 ? remap[r->owner] : -1;
	r->next = r->next >= 0 && r->owner >= 0 ? remap[r->next] : -1;
	if(r->next == r->owner)
	{
		r->next = -1;
	}
	if(r->owner < 0)
	{
		r->token = 0;
	}
	if(r->next < 0)
	{
		r->since = 0;
	}
}

/* Adjacent runs that merge. */
static int
same_state(const run *a, const run *b)
{
	return a->owner == b->owner && a->next == b->next && a->token == b->token && a->since == b->since;
}

/*
 * Make out the normal form of a list of runs over entities: owners only
 * those referred to, in (id, incarnation) order; each run as norm_run()
 * leaves it; adjacent equal runs merged. Takes runs (freed on failure
 * too). 0 or ENOMEM (out empty).
 */
static int
normalise(const ent *ents, size_t n_ents, run *runs, size_t n_runs, uint32_t shards, cluster__shard_map *out)
{
	int32_t *remap;
	ent *sorted;
	size_t i, n_ref, w = 0;

	memset(out, 0, sizeof(*out));
	if(rank_owners(ents, n_ents, runs, n_runs, &remap, &sorted, &n_ref))
	{
		free(runs);
		return ENOMEM;
	}
	if(n_ref)
	{
		out->owners = malloc(n_ref * sizeof(*out->owners));
		if(!out->owners)
		{
			goto fail;
		}
		for(i = 0; i < n_ref; i++)
		{
			out->owners[i].incarnation = sorted[i].incarnation;
			out->owners[i].id = dup_str(sorted[i].id);
			if(!out->owners[i].id)
			{
				goto fail;
			}
			out->n_owners = i + 1;
		}
	}
	for(i = 0; i < n_runs; i++)
	{
		run r = runs[i];

		norm_run(&r, remap);
		if(w && same_state(&runs[w - 1], &r))
		{
			runs[w - 1].len += r.len;
		}
		else
		{
			runs[w++] = r;
		}
	}
	free(remap);
	free(sorted);
	out->runs = runs;
	out->n_runs = w;
	out->shards = shards;
	return 0;
fail:
	free(remap);
	free(sorted);
	free(runs);
	cluster__shard_map_free(out);
	return ENOMEM;
}

static int
same_owner(const cluster__shard_map *a, int32_t i, const cluster__shard_map *b, int32_t j)
{
	if(i < 0 || j < 0)
	{
		return i < 0 && j < 0;
	}
	return a->owners[i].incarnation == b->owners[j].incarnation && !strcmp(a->owners[i].id, b->owners[j].id);
}

/* Whether a and b put every shard in the same state (owners compared by
 * identity, not index), walking both run lists once. */
static int
maps_equal(const cluster__shard_map *a, const cluster__shard_map *b)
{
	size_t i = 0, j = 0;

	if(a->shards != b->shards)
	{
		return 0;
	}
	while(i < a->n_runs && j < b->n_runs)
	{
		const run *x = &a->runs[i], *y = &b->runs[j];
		uint64_t ex = (uint64_t) x->start + x->len, ey = (uint64_t) y->start + y->len;

		if(!same_owner(a, x->owner, b, y->owner) || !same_owner(a, x->next, b, y->next) ||
			(x->owner >= 0 && x->token != y->token) || (x->next >= 0 && x->since != y->since))
		{
			return 0;
		}
		i += ex <= ey;
		j += ey <= ex;
	}
	return i == a->n_runs && j == b->n_runs;
}

/* The map's owners as entities. NULL with ENOMEM (*err) or when none. */
static ent *
ents_of(const cluster__shard_map *m, size_t extra, int *err)
{
	ent *e;
	size_t i;

	*err = 0;
	if(!m->n_owners && !extra)
	{
		return NULL;
	}
	e = malloc((m->n_owners + extra) * sizeof(*e));
	if(!e)
	{
		*err = ENOMEM;
		return NULL;
	}
	for(i = 0; i < m->n_owners; i++)
	{
		e[i].id = m->owners[i].id;
		e[i].incarnation = m->owners[i].incarnation;
		e[i].index = i;
	}
	return e;
}

/* ------------------------------------------------------------------ */
/* encode                                                               */
/* ------------------------------------------------------------------ */

typedef struct buf buf;
struct buf
{
	char *p;
	size_t len, cap;
	int err;
};

/* Room for need more bytes (and a NUL). */
static int
reserve(buf *b, size_t need)
{
	size_t cap;
	char *p;

	if(b->err)
	{
		return -1;
	}
	if(b->len + need + 1 <= b->cap)
	{
		return 0;
	}
	cap = b->cap ? b->cap : 256;
	while(cap < b->len + need + 1)
	{
		cap *= 2;
	}
	p = realloc(b->p, cap);
	if(!p)
	{
		b->err = ENOMEM;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Append s (room already reserved). */
static void
put(buf *b, const char *s, size_t n)
{
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* Append a decimal integer (room for 20 bytes already reserved): the
 * encoder writes millions of them, so no printf. */
static void
put_int(buf *b, int64_t v)
{
	char tmp[24];
	size_t n = 0;
	uint64_t u = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;

	do
	{
		tmp[n++] = (char) ('0' + u % 10);
		u /= 10;
	}
	while(u);
	if(v < 0)
	{
		tmp[n++] = '-';
	}
	while(n)
	{
		b->p[b->len++] = tmp[--n];
	}
}

/* Append s as a JSON string. Valid names need no escape; anything else a
 * hand-built map holds is escaped rather than written broken. */
static void
put_string(buf *b, const char *s)
{
	size_t n = strlen(s), i;

	if(n > SIZE_MAX / 6 - 4 || reserve(b, 6 * n + 2))
	{
		b->err = ENOMEM;
		return;
	}
	b->p[b->len++] = '"';
	for(i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if(c < 0x20)
		{
			static const char hex[] = "0123456789abcdef";
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

			put(b, e, 6);
		}
		else
		{
			if(c == '"' || c == '\\')
			{
				b->p[b->len++] = '\\';
			}
			b->p[b->len++] = (char) c;
		}
	}
	b->p[b->len++] = '"';
}

/* Flush one normalised run. */
static void
put_run(buf *b, const run *r, int first)
{
	if(reserve(b, 5 * 21 + 4))
	{
		return;
	}
	put(b, first ? "[" : ",[", first ? 1 : 2);
	put_int(b, r->len);
	b->p[b->len++] = ',';
	put_int(b, r->owner);
	b->p[b->len++] = ',';
	put_int(b, r->next);
	b->p[b->len++] = ',';
	put_int(b, r->token);
	b->p[b->len++] = ',';
	put_int(b, r->since);
	b->p[b->len++] = ']';
}

/*
 * One pass over the runs, normalising on the fly (the map need not be in
 * normal form: a hand-built one encodes like its normal form), into a
 * buffer that doubles as it grows.
 */
int
cluster__shard_map_encode(const cluster__shard_map *m, char **text, size_t *len)
{
	buf b = { NULL, 0, 0, 0 };
	ent *ents, *sorted = NULL;
	int32_t *remap = NULL;
	size_t n_ref = 0, i;
	run pend;
	int have = 0, err;

	*text = NULL;
	if(len)
	{
		*len = 0;
	}
	ents = ents_of(m, 0, &err);
	if(err || rank_owners(ents, m->n_owners, m->runs, m->n_runs, &remap, &sorted, &n_ref))
	{
		free(ents);
		return ENOMEM;
	}
	if(!reserve(&b, 96))
	{
		put(&b, "{\"v\":", 5);
		put_int(&b, CLUSTER__SHARD_RECORD_VERSION);
		put(&b, ",\"shards\":", 10);
		put_int(&b, m->shards);
		put(&b, ",\"owners\":[", 11);
	}
	for(i = 0; i < n_ref && !b.err; i++)
	{
		if(!reserve(&b, 2))
		{
			put(&b, i ? ",[" : "[", i ? 2 : 1);
		}
		put_string(&b, sorted[i].id);
		if(!reserve(&b, 23))
		{
			b.p[b.len++] = ',';
			put_int(&b, sorted[i].incarnation);
			b.p[b.len++] = ']';
		}
	}
	if(!reserve(&b, 10))
	{
		put(&b, "],\"runs\":[", 10);
	}
	memset(&pend, 0, sizeof(pend));
	for(i = 0; i < m->n_runs && !b.err; i++)
	{
		run r = m->runs[i];

		norm_run(&r, remap);
		if(have && same_state(&pend, &r))
		{
			pend.len += r.len;
			continue;
		}
		if(have)
		{
			put_run(&b, &pend, have == 1);
			have = 2;
		}
		else
		{
			have = 1;
		}
		pend = r;
	}
	if(have)
	{
		put_run(&b, &pend, have == 1);
	}
	if(!reserve(&b, 2))
	{
		put(&b, "]}", 2);
		b.p[b.len] = 0;
	}
	free(ents);
	free(remap);
	free(sorted);
	if(b.err)
	{
		free(b.p);
		return ENOMEM;
	}
	*text = b.p;
	if(len)
	{
		*len = b.len;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* decode                                                               */
/* ------------------------------------------------------------------ */

/* An integral JSON number within [lo, hi]. */
static int
get_int(const cJSON *it, int64_t lo, int64_t hi, int64_t *out)
{
	if(!cJSON_IsNumber(it) || !cluster__json_exact_integer(it->valuedouble))
	{
		return -1;
	}
	*out = (int64_t) it->valuedouble;
	return *out >= lo && *out <= hi ? 0 : -1;
}

/*
 * A piece of the record as a reason quotes it: a number as written (in
 * integer form when it is one), anything else as cJSON prints it; escaped
 * and cut to out's size.
 */
static const char *
quote(char out[QUOTE_SIZE], const cJSON *it)
{
	char *p;

	if(!it)
	{
		return "(missing)";
	}
	if(cJSON_IsNumber(it))
	{
		char num[40];

		if(cluster__json_exact_integer(it->valuedouble))
		{
			snprintf(num, sizeof(num), "%lld", (long long) it->valuedouble);
		}
		else
		{
			snprintf(num, sizeof(num), "%.17g", it->valuedouble);
		}
		return cluster__escape(out, QUOTE_SIZE, num, strlen(num));
	}
	p = cJSON_PrintUnformatted(it);
	if(!p)
	{
		return "(unprintable)";
	}
	cluster__escape(out, QUOTE_SIZE, p, strlen(p));
	cJSON_free(p);
	return out;
}

/* Whether a JSON text holds the escape \u0000 in a string: cJSON would
 * cut the string there, so "a\u0000b" would pass for the id "a". */
static int
has_nul_escape(const char *text, size_t len)
{
	size_t i;

	for(i = 0; i + 1 < len; i++)
	{
		if(text[i] == '\\')
		{
			if(text[i + 1] == 'u' && len - i >= 6 && !memcmp(text + i + 2, "0000", 4))
			{
				return 1;
			}
			i++; /* skip the escaped byte (an escaped backslash too) */
		}
	}
	return 0;
}

/* Exactly n elements (n <= 5); puts them in el. */
static int
tuple(const cJSON *a, const cJSON *el[5], int n)
{
	const cJSON *c;
	int i = 0;

	if(!cJSON_IsArray(a))
	{
		return -1;
	}
	for(c = a->child; c; c = c->next)
	{
		if(i == n)
		{
			return -1;
		}
		el[i++] = c;
	}
	return i == n ? 0 : -1;
}

#define WHY(...) (why && why_size ? (void) snprintf(why, why_size, __VA_ARGS__) : (void) 0)

/* The owners array into ents (ids borrowed from the tree). */
static int
decode_owners(const cJSON *owners, ent *ents, size_t n, char *why, size_t why_size)
{
	char q[QUOTE_SIZE];
	const cJSON *c, *el[5];
	size_t i = 0;

	for(c = owners->child; c; c = c->next, i++)
	{
		int64_t inc;

		if(tuple(c, el, 2) || !cJSON_IsString(el[0]) || !cJSON_IsNumber(el[1]))
		{
			WHY("owner %zu is not [\"id\",incarnation]: '%s'", i, quote(q, c));
			return EBADMSG;
		}
		if(cluster__name_check(el[0]->valuestring, strlen(el[0]->valuestring), NULL) != CLUSTER__NAME_OK)
		{
			WHY("owner %zu: id %s is not a valid name", i, quote(q, el[0]));
			return EBADMSG;
		}
		if(get_int(el[1], 0, INT64_MAX, &inc))
		{
			WHY("owner %zu: incarnation '%s' is not an integer >= 0", i, quote(q, el[1]));
			return EBADMSG;
		}
		ents[i].id = el[0]->valuestring;
		ents[i].incarnation = inc;
		ents[i].index = i;
	}
	(void) n;
	return 0;
}

/* No two owners the same: sort a copy. */
static int
check_duplicates(const ent *ents, size_t n, char *why, size_t why_size)
{
	char q[QUOTE_SIZE];
	ent *s;
	size_t i;

	if(n < 2)
	{
		return 0;
	}
	s = malloc(n * sizeof(*s));
	if(!s)
	{
		return ENOMEM;
	}
	memcpy(s, ents, n * sizeof(*s));
	qsort(s, n, sizeof(*s), ent_cmp);
	for(i = 1; i < n; i++)
	{
		if(!ent_cmp(&s[i - 1], &s[i]))
		{
			size_t a = s[i - 1].index < s[i].index ? s[i - 1].index : s[i].index;
			size_t b = s[i - 1].index < s[i].index ? s[i].index : s[i - 1].index;

			WHY("owners %zu and %zu are the same owner: '%s' incarnation %lld", a, b, cluster__escape(q, sizeof(q), s[i].id, strlen(s[i].id)), (long long) s[i].incarnation);
			free(s);
			return EBADMSG;
		}
	}
	free(s);
	return 0;
}

/* The runs array into runs (tokens and since values of 0 resolved). */
static int
decode_runs(const cJSON *arr, uint32_t shards, size_t n_owners, int64_t rev, run *runs, char *why, size_t why_size)
{
	static const char *const field[5] = { "length", "owner", "next", "token", "since" };
	char q[QUOTE_SIZE];
	const cJSON *c, *el[5];
	uint64_t covered = 0;
	size_t i = 0;
	int j;

	for(c = arr->child; c; c = c->next, i++)
	{
		int64_t v[5];
		run *r = &runs[i];

		if(tuple(c, el, 5))
		{
			WHY("run %zu is not [len,owner,next,token,since]: '%s'", i, quote(q, c));
			return EBADMSG;
		}
		for(j = 0; j < 5; j++)
		{
			if(get_int(el[j], INT64_MIN / 2, INT64_MAX / 2, &v[j]))
			{
				WHY("run %zu: %s '%s' is not an integer", i, field[j], quote(q, el[j]));
				return EBADMSG;
			}
		}
		if(v[0] < 1 || v[0] > (int64_t) shards)
		{
			WHY("run %zu: length '%s' is out of range (1 .. %u)", i, quote(q, el[0]), shards);
			return EBADMSG;
		}
		if((uint64_t) v[0] > shards - covered)
		{
			WHY("run %zu: the runs cover more than %u shards", i, shards);
			return EBADMSG;
		}
		for(j = 1; j < 3; j++)
		{
			if(v[j] < -1 || v[j] >= (int64_t) n_owners)
			{
				WHY("run %zu: %s '%s' is not -1 or an owner index (%zu owners)", i, j == 1 ? "owner" : "next", quote(q, el[j]), n_owners);
				return EBADMSG;
			}
		}
		if(v[2] >= 0 && v[1] < 0)
		{
			WHY("run %zu: a next ('%s') without an owner", i, quote(q, el[2]));
			return EBADMSG;
		}
		if(v[2] >= 0 && v[2] == v[1])
		{
			WHY("run %zu: next == owner ('%s')", i, quote(q, el[2]));
			return EBADMSG;
		}
		if(v[1] >= 0 ? v[3] < 0 || v[3] > rev : v[3] != 0)
		{
			WHY(v[1] >= 0 ? "run %zu: token '%s' is out of range (0 .. revision %lld)" : "run %zu: token '%s' on an unowned run (only 0)", i, quote(q, el[3]), (long long) rev);
			return EBADMSG;
		}
		if(v[2] >= 0 ? v[4] < 0 || v[4] > rev : v[4] != 0)
		{
			WHY(v[2] >= 0 ? "run %zu: since '%s' is out of range (0 .. revision %lld)" : "run %zu: since '%s' without a next (only 0)", i, quote(q, el[4]), (long long) rev);
			return EBADMSG;
		}
		r->start = (uint32_t) covered;
		r->len = (uint32_t) v[0];
		r->owner = (int32_t) v[1];
		r->next = (int32_t) v[2];
		r->token = v[1] >= 0 && !v[3] ? rev : v[3];
		r->since = v[2] >= 0 && !v[4] ? rev : v[4];
		covered += (uint64_t) v[0];
	}
	if(covered != shards)
	{
		WHY("the runs cover %llu shards, not %u", (unsigned long long) covered, shards);
		return EBADMSG;
	}
	return 0;
}

/*
 * Check everything before believing anything: the shape, each number's
 * type and range, owner indexes, names, coverage; then the normal form
 * (so that a decoded map compares and re-encodes like the planner's).
 */
int
cluster__shard_map_decode(const char *text, size_t len, uint32_t shards, int64_t mod_revision, cluster__shard_map *out, char *why, size_t why_size)
{
	char q[QUOTE_SIZE];
	cJSON *root = NULL;
	const cJSON *v, *s, *owners, *runs_arr;
	ent *ents = NULL;
	run *runs = NULL;
	size_t n_owners, n_runs;
	int64_t x;
	int err = EBADMSG;

	memset(out, 0, sizeof(*out));
	WHY("%s", "");
	if(shards < 1 || shards > CLUSTER_SHARDS_MAX || mod_revision <= 0 || (!text && len))
	{
		WHY("invalid arguments (shards %u, revision %lld)", shards, (long long) mod_revision);
		return EINVAL;
	}
	if(!len)
	{
		WHY("the record is empty");
		return EBADMSG;
	}
	root = cluster__json_parse_whole(text, len);
	if(!root)
	{
		WHY("the record is not JSON: '%s'", cluster__escape(q, sizeof(q), text, len));
		return EBADMSG;
	}
	if(!cJSON_IsObject(root))
	{
		WHY("the record is not a JSON object: '%s'", quote(q, root));
		goto done;
	}
	if(has_nul_escape(text, len))
	{
		WHY("the record holds a NUL byte (\\u0000) in a string");
		goto done;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "v");
	if(get_int(v, CLUSTER__SHARD_RECORD_VERSION, CLUSTER__SHARD_RECORD_VERSION, &x))
	{
		WHY("unsupported record version \"v\": '%s' (expected %d)", quote(q, v), CLUSTER__SHARD_RECORD_VERSION);
		goto done;
	}
	s = cJSON_GetObjectItemCaseSensitive(root, "shards");
	if(get_int(s, 0, INT64_MAX, &x) || x != (int64_t) shards)
	{
		WHY("a foreign record: \"shards\" is '%s', not %u", quote(q, s), shards);
		goto done;
	}
	owners = cJSON_GetObjectItemCaseSensitive(root, "owners");
	runs_arr = cJSON_GetObjectItemCaseSensitive(root, "runs");
	if(!cJSON_IsArray(owners))
	{
		WHY("\"owners\" is not an array: '%s'", quote(q, owners));
		goto done;
	}
	if(!cJSON_IsArray(runs_arr))
	{
		WHY("\"runs\" is not an array: '%s'", quote(q, runs_arr));
		goto done;
	}
	n_owners = (size_t) cJSON_GetArraySize(owners);
	n_runs = (size_t) cJSON_GetArraySize(runs_arr);
	if(n_owners > INT32_MAX)
	{
		WHY("too many owners (%zu)", n_owners);
		goto done;
	}
	if(n_runs > shards || !n_runs)
	{
		WHY("%zu runs for %u shards", n_runs, shards);
		goto done;
	}
	ents = n_owners ? malloc(n_owners * sizeof(*ents)) : NULL;
	runs = malloc(n_runs * sizeof(*runs));
	if((n_owners && !ents) || !runs)
	{
		err = ENOMEM;
		goto done;
	}
	err = decode_owners(owners, ents, n_owners, why, why_size);
	if(!err)
	{
		err = check_duplicates(ents, n_owners, why, why_size);
	}
	if(!err)
	{
		err = decode_runs(runs_arr, shards, n_owners, mod_revision, runs, why, why_size);
	}
	if(!err)
	{
		err = normalise(ents, n_owners, runs, n_runs, shards, out);
		runs = NULL;
	}
done:
	free(ents);
	free(runs);
	cJSON_Delete(root);
	if(err == ENOMEM)
	{
		WHY("out of memory");
	}
	else if(!err)
	{
		WHY("%s", "");
	}
	return err;
}

/* ------------------------------------------------------------------ */
/* the planner                                                          */
/* ------------------------------------------------------------------ */

long
cluster__shard_find_member(const cluster__shard_member *live, size_t n, const char *id)
{
	size_t lo = 0, hi = n;

	while(lo < hi)
	{
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(live[mid].id, id);

		if(!c)
		{
			return (long) mid;
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
	return -1;
}

/* A candidate for one more shard: how far above its floor it holds. */
typedef struct extra extra;
struct extra
{
	int64_t above;
	size_t member;
};

/* Most above the floor first, then by id (live is in id order). */
static int
extra_cmp(const void *a, const void *b)
{
	const extra *x = a, *y = b;

	if(x->above != y->above)
	{
		return x->above > y->above ? -1 : 1;
	}
	return x->member < y->member ? -1 : x->member > y->member;
}

/* The planner's scratch, freed together. */
typedef struct plan plan;
struct plan
{
	ent *ents;         /* cur's owners, then the live members */
	int32_t *live_of;  /* per cur owner: its entity among the live, or -1 */
	signed char *gone; /* per cur owner: expired() asked (1/0), -1 not yet */
	run *o;            /* the runs: after steps 1 and 2 at o + room, the
	                    * output from o up */
	int64_t *held;     /* per live member: held, then what it must give */
	int64_t *quota;    /* per live member: quota, then what it needs */
	uint32_t *from;    /* per live member: its first shard given away */
	extra *ex;
};

static void
plan_free(plan *p)
{
	free(p->ents);
	free(p->live_of);
	free(p->gone);
	free(p->o);
	free(p->held);
	free(p->quota);
	free(p->from);
	free(p->ex);
}

/*
 * Quotas (step 3): floor(S*w/W) each, and the R = S - sum of floors
 * one-mores to members with a fractional share, the ones holding most
 * above their floor first. A one-more given to a member holding above its
 * floor keeps one shard in place that would otherwise move; any other
 * choice moves more. 64-bit: S*w < 2^20 * 2^31.
 */
static void
quotas(plan *p, const cluster__shard_member *live, size_t n_live, uint32_t shards, int64_t total)
{
	int64_t given = 0, r;
	size_t i, n_ex = 0;

	for(i = 0; i < n_live; i++)
	{
		int64_t w = live[i].weight > 0 ? live[i].weight : 0;
		int64_t share = (int64_t) shards * w;

		p->quota[i] = share / total;
		given += p->quota[i];
		if(share % total)
		{
			p->ex[n_ex].above = p->held[i] - p->quota[i];
			p->ex[n_ex].member = i;
			n_ex++;
		}
	}
	qsort(p->ex, n_ex, sizeof(*p->ex), extra_cmp);
	r = (int64_t) shards - given;
	for(i = 0; i < n_ex && (int64_t) i < r; i++)
	{
		p->quota[p->ex[i].member]++;
	}
}

/* Steps 1 and 2 for one run of cur, into *out; returns whether a
 * hand-over is still pending. Entities: cur's owners, then the live
 * members. */
static int
settle_run(plan *p, const cluster__shard_map *cur, const run *r, const cluster__shard_member *live, cluster__shard_expired_fn expired, void *ctx, run *out)
{
	int32_t n_cur = (int32_t) cur->n_owners;

	*out = *r;
	out->next = -1;
	out->since = 0;
	if(r->owner < 0)
	{
		out->owner = -1;
		out->token = 0;
		return 0;
	}
	if(p->live_of[r->owner] >= 0)
	{
		const cluster__shard_member *a = &live[p->live_of[r->owner] - n_cur];
		int32_t nx = r->next >= 0 ? p->live_of[r->next] : -1;

		out->owner = p->live_of[r->owner];
		if(nx < 0 || live[nx - n_cur].weight <= 0)
		{
			return 0; /* next gone or weightless: cancelled */
		}
		if(a->acked >= r->since)
		{
			out->owner = nx; /* released and acknowledged: take over */
			out->token = 0;
			return 0;
		}
		out->next = nx;
		out->since = r->since;
		return 1;
	}
	if(p->gone[r->owner] < 0)
	{
		const cluster__shard_owner *o = &cur->owners[r->owner];

		p->gone[r->owner] = expired && expired(ctx, o->id, o->incarnation) ? 1 : 0;
	}
	if(p->gone[r->owner])
	{
		out->owner = -1;
		out->token = 0;
	}
	return 0;
}

/*
 * Step 3 over the settled runs at o + room: the donors' excess comes off
 * their highest shards (one pass backwards finds where each donor's gift
 * starts), and the pool (unowned shards and gifts, in shard order) goes to
 * the receivers in id order (one pass forwards, writing from o up: each
 * donor and each receiver splits at most one run, and room covers that,
 * so the writes never overtake the reads). Returns the shards moved; *n
 * gets the output's run count.
 */
static size_t
hand_out(plan *p, size_t n_cur, size_t n_live, size_t n_runs, size_t room, size_t *n)
{
	size_t i, n_o = 0, rc = 0, moved = 0;
	run *w = p->o + room;

	for(i = 0; i < n_live; i++)
	{
		p->from[i] = UINT32_MAX;
	}
	for(i = n_runs; i-- > 0;)
	{
		const run *r = &w[i];
		int64_t *give = r->owner >= (int32_t) n_cur ? &p->held[r->owner - (int32_t) n_cur] : NULL;

		if(give && *give > 0)
		{
			uint32_t c = *give < r->len ? (uint32_t) *give : r->len;

			p->from[r->owner - (int32_t) n_cur] = r->start + r->len - c;
			*give -= c;
		}
	}
	for(i = 0; i < n_runs; i++)
	{
		run r = w[i];
		uint32_t start = r.start, len = r.len;
		int grant = r.owner < 0;

		if(!grant)
		{
			uint32_t from = r.owner >= (int32_t) n_cur ? p->from[r.owner - (int32_t) n_cur] : UINT32_MAX;

			if(from >= r.start + r.len)
			{
				p->o[n_o++] = r;
				continue;
			}
			if(from > r.start)
			{
				p->o[n_o] = r;
				p->o[n_o++].len = from - r.start;
				start = from;
				len = r.start + r.len - from;
			}
		}
		while(len)
		{
			uint32_t t;

			while(rc < n_live && p->quota[rc] <= 0)
			{
				rc++;
			}
			p->o[n_o] = r;
			p->o[n_o].start = start;
			if(rc == n_live)
			{
				p->o[n_o++].len = len; /* nobody needs it (blocked shards) */
				break;
			}
			t = p->quota[rc] < len ? (uint32_t) p->quota[rc] : len;
			p->o[n_o].len = t;
			if(grant)
			{
				p->o[n_o].owner = (int32_t) (n_cur + rc);
				p->o[n_o].token = 0;
			}
			else
			{
				p->o[n_o].next = (int32_t) (n_cur + rc);
				p->o[n_o].since = 0;
			}
			n_o++;
			p->quota[rc] -= t;
			moved += t;
			start += t;
			len -= t;
		}
	}
	*n = n_o;
	return moved;
}

/*
 * Steps 1 and 2 in one pass over the runs, step 3 in two more (see
 * hand_out()), so the cost is O(runs + members) plus the sort of the
 * one-more candidates; then normalise(). One array of runs serves all
 * three passes.
 */
int
cluster__shard_plan(const cluster__shard_map *cur, const cluster__shard_member *live, size_t n_live, cluster__shard_expired_fn expired, void *ctx, cluster__shard_map *next, int *changed, size_t *moves)
{
	plan p;
	size_t n_cur = cur->n_owners, i, n_o, moved = 0, room = 2 * n_live + 2;
	int64_t total = 0;
	int pending = 0, err;

	memset(&p, 0, sizeof(p));
	memset(next, 0, sizeof(*next));
	if(changed)
	{
		*changed = 0;
	}
	if(moves)
	{
		*moves = 0;
	}
	for(i = 1; i < n_live; i++)
	{
		if(strcmp(live[i - 1].id, live[i].id) >= 0)
		{
			return EINVAL; /* not sorted by id, or not unique */
		}
	}
	if(!cur->n_runs || n_cur + n_live > INT32_MAX)
	{
		return EINVAL;
	}
	p.ents = ents_of(cur, n_live, &err);
	p.live_of = malloc((n_cur ? n_cur : 1) * sizeof(*p.live_of));
	p.gone = malloc(n_cur ? n_cur : 1);
	p.o = malloc((cur->n_runs + room) * sizeof(*p.o));
	p.held = malloc((n_live ? n_live : 1) * sizeof(*p.held));
	p.quota = malloc((n_live ? n_live : 1) * sizeof(*p.quota));
	p.from = malloc((n_live ? n_live : 1) * sizeof(*p.from));
	p.ex = malloc((n_live ? n_live : 1) * sizeof(*p.ex));
	if(err || (!p.ents && n_cur + n_live) || !p.live_of || !p.gone || !p.o || !p.held || !p.quota || !p.from || !p.ex)
	{
		plan_free(&p);
		return ENOMEM;
	}
	for(i = 0; i < n_live; i++)
	{
		p.ents[n_cur + i].id = live[i].id;
		p.ents[n_cur + i].incarnation = live[i].incarnation;
		p.ents[n_cur + i].index = n_cur + i;
		p.held[i] = 0;
		total += live[i].weight > 0 ? live[i].weight : 0;
	}
	for(i = 0; i < n_cur; i++)
	{
		long l = cluster__shard_find_member(live, n_live, cur->owners[i].id);

		p.live_of[i] = l >= 0 && live[l].incarnation == cur->owners[i].incarnation ? (int32_t) (n_cur + (size_t) l) : -1;
		p.gone[i] = -1;
	}
	/* steps 1 and 2 */
	for(i = 0; i < cur->n_runs; i++)
	{
		run *r = &p.o[room + i];

		pending |= settle_run(&p, cur, &cur->runs[i], live, expired, ctx, r);
		if(r->owner >= (int32_t) n_cur)
		{
			p.held[r->owner - (int32_t) n_cur] += r->len;
		}
	}
	if(!pending && total > 0)
	{
		/* step 3: from here on held[] is what a member must give and
		 * quota[] what it needs */
		quotas(&p, live, n_live, cur->shards, total);
		for(i = 0; i < n_live; i++)
		{
			int64_t h = p.held[i], q = p.quota[i];

			p.held[i] = h > q ? h - q : 0;
			p.quota[i] = q > h ? q - h : 0;
		}
		moved = hand_out(&p, n_cur, n_live, cur->n_runs, room, &n_o);
	}
	else
	{
		memmove(p.o, p.o + room, cur->n_runs * sizeof(*p.o));
		n_o = cur->n_runs;
	}
	err = normalise(p.ents, n_cur + n_live, p.o, n_o, cur->shards, next);
	p.o = NULL;
	plan_free(&p);
	if(err)
	{
		return err;
	}
	if(changed)
	{
		*changed = !maps_equal(cur, next);
	}
	if(moves)
	{
		*moves = moved;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* lookups, leave, diff                                                 */
/* ------------------------------------------------------------------ */

int
cluster__shard_map_find_owner(const cluster__shard_map *m, const char *id, int64_t incarnation)
{
	size_t i;

	for(i = 0; i < m->n_owners; i++)
	{
		if(m->owners[i].incarnation == incarnation && !strcmp(m->owners[i].id, id))
		{
			return (int) i;
		}
	}
	return -1;
}

const cluster__shard_run *
cluster__shard_map_run(const cluster__shard_map *m, uint32_t shard)
{
	size_t lo = 0, hi = m->n_runs;

	if(shard >= m->shards || !m->n_runs)
	{
		return NULL;
	}
	/* the last run starting at or before shard */
	while(hi - lo > 1)
	{
		size_t mid = lo + (hi - lo) / 2;

		if(m->runs[mid].start <= shard)
		{
			lo = mid;
		}
		else
		{
			hi = mid;
		}
	}
	return &m->runs[lo];
}

/* The leaver released everything, so what it held needs no hand-over:
 * its runs go to their next at once, or to nobody. */
int
cluster__shard_map_leave(const cluster__shard_map *cur, const char *id, int64_t incarnation, cluster__shard_map *next, int *changed)
{
	int o = cluster__shard_map_find_owner(cur, id, incarnation), err;
	ent *ents;
	run *w;
	size_t i;

	if(changed)
	{
		*changed = 0;
	}
	if(o < 0)
	{
		return cluster__shard_map_copy(next, cur);
	}
	memset(next, 0, sizeof(*next));
	ents = ents_of(cur, 0, &err);
	w = malloc((cur->n_runs ? cur->n_runs : 1) * sizeof(*w));
	if(err || !w)
	{
		free(ents);
		free(w);
		return ENOMEM;
	}
	for(i = 0; i < cur->n_runs; i++)
	{
		w[i] = cur->runs[i];
		if(w[i].owner == o)
		{
			w[i].owner = w[i].next;
			w[i].token = 0;
			w[i].next = -1;
		}
		else if(w[i].next == o)
		{
			w[i].next = -1;
		}
	}
	err = normalise(ents, cur->n_owners, w, cur->n_runs, cur->shards, next);
	free(ents);
	if(!err && changed)
	{
		*changed = !maps_equal(cur, next);
	}
	return err;
}

size_t
cluster__shard_map_count(const cluster__shard_map *m, const char *id, int64_t incarnation)
{
	int o = cluster__shard_map_find_owner(m, id, incarnation);
	size_t i, n = 0;

	for(i = 0; o >= 0 && i < m->n_runs; i++)
	{
		if(m->runs[i].owner == o && m->runs[i].next < 0)
		{
			n += m->runs[i].len;
		}
	}
	return n;
}

/*
 * Walk the map's runs and the held list together, twice: once to count,
 * once to fill arrays of the exact size. Shards are compared, not tokens:
 * a member holds a shard or not.
 */
int
cluster__shard_diff(const cluster__shard_map *m, const char *id, int64_t incarnation, const CLUSTERSHARD *held, size_t n_held, CLUSTERSHARD **acquire, size_t *n_acquire, CLUSTERSHARD **release, size_t *n_release, int *must_ack)
{
	int o = cluster__shard_map_find_owner(m, id, incarnation);
	CLUSTERSHARD *acq = NULL, *rel = NULL;
	size_t na = 0, nr = 0, pass;
	int ack = 0;

	*acquire = NULL;
	*release = NULL;
	*n_acquire = 0;
	*n_release = 0;
	if(must_ack)
	{
		*must_ack = 0;
	}
	for(pass = 0; pass < 2; pass++)
	{
		size_t i, h = 0;

		na = nr = 0;
		for(i = 0; i < m->n_runs; i++)
		{
			const run *r = &m->runs[i];
			uint64_t end = (uint64_t) r->start + r->len, s;
			int mine = o >= 0 && r->owner == o && r->next < 0;

			ack |= o >= 0 && r->owner == o && r->next >= 0;
			if(!mine)
			{
				/* held shards in this run are released */
				while(h < n_held && held[h].shard < end)
				{
					if(rel)
					{
						rel[nr] = held[h];
					}
					nr++;
					h++;
				}
				continue;
			}
			for(s = r->start; s < end; s++)
			{
				while(h < n_held && held[h].shard < s)
				{
					/* below this run: belonged to an earlier one (kept
					 * in order anyway) */
					if(rel)
					{
						rel[nr] = held[h];
					}
					nr++;
					h++;
				}
				if(h < n_held && held[h].shard == s)
				{
					h++;
					continue;
				}
				if(acq)
				{
					acq[na].shard = (unsigned int) s;
					acq[na].token = r->token;
				}
				na++;
			}
		}
		/* held shards past the map's range */
		if(rel)
		{
			for(; h < n_held; h++)
			{
				rel[nr++] = held[h];
			}
		}
		else
		{
			nr += n_held - h;
		}
		if(pass)
		{
			break;
		}
		if(na)
		{
			acq = malloc(na * sizeof(*acq));
		}
		if(nr)
		{
			rel = malloc(nr * sizeof(*rel));
		}
		if((na && !acq) || (nr && !rel))
		{
			free(acq);
			free(rel);
			return ENOMEM;
		}
		if(!na && !nr)
		{
			break;
		}
	}
	*acquire = acq;
	*release = rel;
	*n_acquire = na;
	*n_release = nr;
	if(must_ack)
	{
		*must_ack = ack;
	}
	return 0;
}
