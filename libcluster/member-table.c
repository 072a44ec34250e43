/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The member table (see member-table.h): a persistent weight-balanced
 * tree. Balance follows Adams' weight-balanced trees with the parameters
 * (delta 3, ratio 2) and the weight = size + 1 test that Hirai and
 * Yamamoto proved correct for insert and delete: every subtree holds at
 * most 3/4 of its parent's weight, so the height stays logarithmic
 * whatever ids the registry sends (a hash-priority treap would not be,
 * against chosen ids).
 *
 * Every operation is written functionally: a function receives the old
 * subtree borrowed (never modified) and returns a new subtree it owns
 * (one reference). "Owned" arguments are references the callee consumes.
 * An allocation failure sets b->err; from then on every constructor
 * only releases what it was given, so the half-built new version is freed
 * and the old one is untouched.
 *
 * Pure: no I/O, no locks, no globals.
 */
#include "member-table.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Subtree sizes are kept in 16 bits. */
typedef char cluster__members_max_fits[CLUSTER_MEMBERS_MAX <= 65535 ? 1 : -1];

#define DELTA 3
#define RATIO 2

typedef struct build build;
struct build
{
	int err; /* ENOMEM once an allocation failed */
};

/* ------------------------------------------------------------------ */
/* references                                                           */
/* ------------------------------------------------------------------ */

static cluster__node *
node_ref(const cluster__node *n)
{
	cluster__node *m = (cluster__node *) n;

	if(m)
	{
		__atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
	}
	return m;
}

/* Drop one reference; a node whose last reference goes frees itself and
 * drops its children's. A holder of the only reference needs no atomic
 * decrement: nobody else can reach the node to change its count. The
 * recursion is bounded by the tree height. */
static void
node_release(cluster__node *n)
{
	while(n && (__atomic_load_n(&n->refs, __ATOMIC_ACQUIRE) == 1 || !__atomic_sub_fetch(&n->refs, 1, __ATOMIC_ACQ_REL)))
	{
		cluster__node *l = n->left, *r = n->right;

		free(n);
		node_release(l);
		n = r;
	}
}

/* ------------------------------------------------------------------ */
/* construction                                                         */
/* ------------------------------------------------------------------ */

static unsigned
size_of(const cluster__node *n)
{
	return n ? n->count : 0;
}

static int
sum_of(const cluster__node *n)
{
	return n ? n->sum : 0;
}

static int
own_workers(const cluster__node *n)
{
	return n->passive ? 0 : n->workers;
}

/* The status values after the address: load, capacity, joined_ms. */
struct status_vals
{
	long long load, capacity;
	int64_t joined_ms;
};

/* Bytes after the fixed fields: the id, and with a status the address and
 * the status values. */
static size_t
tail_size(size_t idlen, int has_status, size_t addrlen)
{
	return idlen + 1 + (has_status ? addrlen + 1 + sizeof(struct status_vals) : 0);
}

/* A status node's values (zero without a status). */
static struct status_vals
status_vals(const cluster__node *n)
{
	struct status_vals v = { 0, 0, 0 };

	if(n->has_status)
	{
		memcpy(&v, n->id + n->idlen + 1 + n->addrlen + 1, sizeof(v));
	}
	return v;
}

/* A bare node with room for tail bytes, children unset. */
static cluster__node *
node_alloc(build *b, size_t tail)
{
	cluster__node *n = malloc(offsetof(cluster__node, id) + tail);

	if(!n)
	{
		b->err = ENOMEM;
		return NULL;
	}
	memset(n, 0, offsetof(cluster__node, id));
	n->refs = 1;
	return n;
}

/* A new node carrying src's record over the children l and r (owned),
 * with its aggregates computed. */
static cluster__node *
mk(build *b, const cluster__node *src, cluster__node *l, cluster__node *r)
{
	size_t tail = tail_size(src->idlen, src->has_status, src->addrlen);
	cluster__node *n = b->err ? NULL : node_alloc(b, tail);

	if(!n)
	{
		node_release(l);
		node_release(r);
		return NULL;
	}
	/* everything but the links and the count of references, which other
	 * threads may be changing */
	memcpy(&n->mod_revision, &src->mod_revision, offsetof(cluster__node, refs) - offsetof(cluster__node, mod_revision));
	memcpy(&n->sum, &src->sum, offsetof(cluster__node, id) + tail - offsetof(cluster__node, sum));
	n->left = l;
	n->right = r;
	n->count = (unsigned short) (size_of(l) + size_of(r) + 1);
	n->sum = sum_of(l) + sum_of(r) + own_workers(n);
	return n;
}

/* Weight a may be at most DELTA times weight b. */
static int
balanced(const cluster__node *a, const cluster__node *b)
{
	return DELTA * (size_of(a) + 1) >= size_of(b) + 1;
}

/* A single rotation restores balance when the outer grandchild is the
 * heavier one (by RATIO). */
static int
single(const cluster__node *inner, const cluster__node *outer)
{
	return size_of(inner) + 1 < RATIO * (size_of(outer) + 1);
}

/*
 * mk() for subtrees that may be out of balance by one insert or delete:
 * rotate once or twice as needed. Every node it takes apart is owned and
 * released after its parts have their own references.
 */
static cluster__node *
balance(build *b, const cluster__node *src, cluster__node *l, cluster__node *r)
{
	cluster__node *out;

	if(b->err || (balanced(l, r) && balanced(r, l)))
	{
		return mk(b, src, l, r);
	}
	if(size_of(l) > size_of(r))
	{
		/* rotate right: l is not empty */
		if(single(l->right, l->left))
		{
			out = mk(b, l, node_ref(l->left), mk(b, src, node_ref(l->right), r));
		}
		else
		{
			const cluster__node *lr = l->right;

			out = mk(b, lr, mk(b, l, node_ref(l->left), node_ref(lr->left)), mk(b, src, node_ref(lr->right), r));
		}
		node_release(l);
	}
	else
	{
		/* rotate left: r is not empty */
		if(single(r->left, r->right))
		{
			out = mk(b, r, mk(b, src, l, node_ref(r->left)), node_ref(r->right));
		}
		else
		{
			const cluster__node *rl = r->left;

			out = mk(b, rl, mk(b, src, l, node_ref(rl->left)), mk(b, r, node_ref(rl->right), node_ref(r->right)));
		}
		node_release(r);
	}
	return out;
}

/* ------------------------------------------------------------------ */
/* insert and delete                                                    */
/* ------------------------------------------------------------------ */

/* The nodes from the root down to where id is or would be, with the side
 * taken at each; one walk serves both the lookup and the rebuild. */
typedef struct path path;
struct path
{
	const cluster__node *node[CLUSTER__TABLE_DEPTH];
	unsigned char right[CLUSTER__TABLE_DEPTH];
	unsigned depth;             /* nodes above the target */
	const cluster__node *found; /* the node with id, or NULL */
	int deep;                   /* deeper than the bound (never: defence) */
};

static void
find_path(const cluster__table *t, const char *id, path *p)
{
	const cluster__node *n = t->root;

	p->depth = 0;
	p->found = NULL;
	p->deep = 0;
	while(n)
	{
		int c = strcmp(id, n->id);

		if(!c)
		{
			p->found = n;
			return;
		}
		if(p->depth == CLUSTER__TABLE_DEPTH)
		{
			p->deep = 1;
			return;
		}
		p->node[p->depth] = n;
		p->right[p->depth] = c > 0;
		p->depth++;
		n = c < 0 ? n->left : n->right;
	}
}

/* Copy the path above the target bottom-up around sub (owned, the new
 * subtree where the target was), rebalancing each level: the new root. */
static cluster__node *
rebuild(build *b, const path *p, cluster__node *sub)
{
	unsigned i = p->depth;

	while(i--)
	{
		const cluster__node *n = p->node[i];

		sub = p->right[i] ? balance(b, n, node_ref(n->left), sub) : balance(b, n, sub, node_ref(n->right));
	}
	return sub;
}

/* t (borrowed, not empty) without its smallest node, which goes to *min. */
static cluster__node *
without_min(build *b, const cluster__node *t, const cluster__node **min)
{
	if(!t->left)
	{
		*min = t;
		return node_ref(t->right);
	}
	return balance(b, t, without_min(b, t->left, min), node_ref(t->right));
}

static cluster__node *
without_max(build *b, const cluster__node *t, const cluster__node **max)
{
	if(!t->right)
	{
		*max = t;
		return node_ref(t->left);
	}
	return balance(b, t, node_ref(t->left), without_max(b, t->right, max));
}

/* The node t (borrowed) removed: its neighbour from the heavier side
 * takes its place (which can only bring the two sides closer). */
static cluster__node *
glue(build *b, const cluster__node *t)
{
	const cluster__node *m = NULL;
	cluster__node *rest, *out;

	if(!t->left)
	{
		return node_ref(t->right);
	}
	if(!t->right)
	{
		return node_ref(t->left);
	}
	if(size_of(t->left) > size_of(t->right))
	{
		rest = without_max(b, t->left, &m);
		out = balance(b, m, rest, node_ref(t->right));
	}
	else
	{
		rest = without_min(b, t->right, &m);
		out = balance(b, m, node_ref(t->left), rest);
	}
	return out;
}

/* ------------------------------------------------------------------ */
/* public operations                                                    */
/* ------------------------------------------------------------------ */

const cluster__node *
cluster__table_find(const cluster__table *t, const char *id)
{
	const cluster__node *n = t->root;

	while(n)
	{
		int c = strcmp(id, n->id);

		if(!c)
		{
			return n;
		}
		n = c < 0 ? n->left : n->right;
	}
	return NULL;
}

int
cluster__node_status(const cluster__node *n, const char **address, long long *load, long long *capacity)
{
	struct status_vals v = status_vals(n);

	if(address)
	{
		*address = n->has_status ? n->id + n->idlen + 1 : "";
	}
	if(load)
	{
		*load = v.load;
	}
	if(capacity)
	{
		*capacity = v.capacity;
	}
	return n->has_status;
}

int64_t
cluster__node_joined_ms(const cluster__node *n)
{
	return n->has_joined ? status_vals(n).joined_ms : 0;
}

static int
status_same(const cluster__node *n, const cluster__member *rec)
{
	const char *addr;
	long long load, cap;

	if(!n->has_status || !rec->has_status)
	{
		return !n->has_status && !rec->has_status;
	}
	cluster__node_status(n, &addr, &load, &cap);
	return load == rec->load && cap == rec->capacity && !strcmp(addr, rec->address) && n->status_apart == !!rec->status_apart;
}

int
cluster__node_same(const cluster__node *n, const cluster__member *rec)
{
	return n->workers == rec->workers && n->passive == !!rec->passive && status_same(n, rec);
}

void
cluster__node_record(const cluster__node *n, cluster__member *out)
{
	const char *addr;

	memset(out, 0, sizeof(*out));
	memcpy(out->id, n->id, (size_t) n->idlen + 1);
	out->workers = n->workers;
	out->passive = n->passive;
	out->mod_revision = n->mod_revision;
	out->create_revision = n->create_revision;
	out->received_ms = n->received_ms;
	out->has_status = cluster__node_status(n, &addr, &out->load, &out->capacity);
	if(out->has_status)
	{
		memcpy(out->address, addr, (size_t) n->addrlen + 1);
		out->status_apart = n->status_apart;
		out->has_up = n->has_joined;
		out->joined_ms = cluster__node_joined_ms(n);
	}
}

/* The one insert path for member and status records. */
static int
put(cluster__table *t, const cluster__member *rec, int workers, int passive, int64_t now_ms, int *changed)
{
	const char *end = memchr(rec->id, 0, sizeof(rec->id));
	const char *aend = rec->has_status ? memchr(rec->address, 0, sizeof(rec->address)) : rec->address;
	const cluster__node *old;
	cluster__node *leaf, *root;
	cluster__member want;
	build b = { 0 };
	path p;
	size_t len, alen;
	int same;

	if(!end || end == rec->id || !aend)
	{
		return EINVAL;
	}
	len = (size_t) (end - rec->id);
	alen = (size_t) (aend - rec->address);
	want = *rec;
	want.workers = workers;
	want.passive = passive;
	find_path(t, rec->id, &p);
	if(p.deep)
	{
		return EOVERFLOW;
	}
	old = p.found;
	if(!old && cluster__table_count(t) >= CLUSTER_MEMBERS_MAX)
	{
		return E2BIG;
	}
	same = old && cluster__node_same(old, &want);
	if(same && old->mod_revision == rec->mod_revision)
	{
		/* nothing to store: keep the version as it is */
		if(changed)
		{
			*changed = 0;
		}
		return 0;
	}
	leaf = node_alloc(&b, tail_size(len, rec->has_status, alen));
	if(!leaf)
	{
		return ENOMEM;
	}
	leaf->workers = (unsigned short) workers;
	leaf->passive = (unsigned char) !!passive;
	leaf->idlen = (unsigned char) len;
	leaf->mod_revision = rec->mod_revision;
	leaf->create_revision = rec->create_revision;
	leaf->received_ms = same ? old->received_ms : now_ms;
	leaf->count = 1;
	leaf->sum = own_workers(leaf);
	memcpy(leaf->id, rec->id, len + 1);
	if(rec->has_status)
	{
		struct status_vals v;

		/* the age is not content: every write publishes a new one, and
		 * each dates the join afresh from its own receipt */
		v.load = rec->load;
		v.capacity = rec->capacity;
		v.joined_ms = rec->has_up ? rec->joined_ms : 0;
		leaf->has_status = 1;
		leaf->has_joined = (unsigned char) !!rec->has_up;
		leaf->status_apart = (unsigned char) !!rec->status_apart;
		leaf->addrlen = (unsigned short) alen;
		memcpy(leaf->id + len + 1, rec->address, alen + 1);
		memcpy(leaf->id + len + 1 + alen + 1, &v, sizeof(v));
	}
	if(old)
	{
		/* the new record over the old children */
		leaf->left = node_ref(old->left);
		leaf->right = node_ref(old->right);
		leaf->count = old->count;
		leaf->sum = sum_of(old->left) + sum_of(old->right) + own_workers(leaf);
	}
	root = rebuild(&b, &p, leaf);
	if(b.err)
	{
		node_release(root);
		return b.err;
	}
	node_release(t->root);
	t->root = root;
	if(changed)
	{
		*changed = !same;
	}
	return 0;
}

int
cluster__table_put(cluster__table *t, const cluster__member *rec, int64_t now_ms, int *changed)
{
	if(rec->workers < 1 || rec->workers > CLUSTER_WORKERS_MAX)
	{
		return EINVAL;
	}
	return put(t, rec, rec->workers, rec->passive, now_ms, changed);
}

int
cluster__table_put_status(cluster__table *t, const cluster__member *rec, int64_t now_ms, int *changed)
{
	if(!rec->has_status)
	{
		return EINVAL;
	}
	return put(t, rec, 0, 1, now_ms, changed);
}

int
cluster__table_del(cluster__table *t, const char *id)
{
	build b = { 0 };
	cluster__node *root;
	path p;

	find_path(t, id, &p);
	if(p.deep)
	{
		return -1;
	}
	if(!p.found)
	{
		return 0;
	}
	root = rebuild(&b, &p, glue(&b, p.found));
	if(b.err)
	{
		node_release(root);
		return -1;
	}
	node_release(t->root);
	t->root = root;
	return 1;
}

void
cluster__table_free(cluster__table *t)
{
	node_release(t->root);
	t->root = NULL;
}

void
cluster__table_share(cluster__table *out, const cluster__table *in)
{
	out->root = node_ref(in->root);
}

size_t
cluster__table_count(const cluster__table *t)
{
	return size_of(t->root);
}

int
cluster__table_total(const cluster__table *t)
{
	return sum_of(t->root);
}

const cluster__node *
cluster__table_locate(const cluster__table *t, const char *id, long *pos, int *base)
{
	const cluster__node *n = t->root;
	size_t at = 0;
	int sum = 0;

	while(n)
	{
		int c = strcmp(id, n->id);

		if(c < 0)
		{
			n = n->left;
			continue;
		}
		at += size_of(n->left);
		sum += sum_of(n->left);
		if(!c)
		{
			break;
		}
		at++;
		sum += own_workers(n);
		n = n->right;
	}
	if(pos)
	{
		*pos = n ? (long) at : -1;
	}
	if(base)
	{
		*base = sum;
	}
	return n;
}

long
cluster__table_rank(const cluster__table *t, const char *id, int *base)
{
	long pos;

	cluster__table_locate(t, id, &pos, base);
	return pos;
}

const cluster__node *
cluster__table_at(const cluster__table *t, size_t pos, int *base)
{
	const cluster__node *n = t->root;
	int sum = 0;

	while(n)
	{
		size_t left = size_of(n->left);

		if(pos < left)
		{
			n = n->left;
			continue;
		}
		sum += sum_of(n->left);
		if(pos == left)
		{
			break;
		}
		pos -= left + 1;
		sum += own_workers(n);
		n = n->right;
	}
	if(base)
	{
		*base = sum;
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* iteration                                                            */
/* ------------------------------------------------------------------ */

static void
push_left(cluster__table_iter *it, const cluster__node *n)
{
	for(; n && it->depth < CLUSTER__TABLE_DEPTH; n = n->left)
	{
		it->stack[it->depth++] = n;
	}
}

void
cluster__table_iter_init(cluster__table_iter *it, const cluster__table *t)
{
	it->depth = 0;
	push_left(it, t->root);
}

const cluster__node *
cluster__table_iter_next(cluster__table_iter *it)
{
	const cluster__node *n;

	if(!it->depth)
	{
		return NULL;
	}
	n = it->stack[--it->depth];
	push_left(it, n->right);
	return n;
}

/* ------------------------------------------------------------------ */
/* invariants (tests)                                                   */
/* ------------------------------------------------------------------ */

/* Check the subtree n, whose ids must sort strictly between lo and hi
 * (NULL: unbounded); returns its height or -1. */
static int
check(const cluster__node *n, const char *lo, const char *hi)
{
	int hl, hr;

	if(!n)
	{
		return 0;
	}
	if(!__atomic_load_n(&n->refs, __ATOMIC_RELAXED) || n->idlen < 1 || n->idlen > CLUSTER_NAME_MAX ||
		strlen(n->id) != n->idlen || (lo && strcmp(lo, n->id) >= 0) || (hi && strcmp(n->id, hi) >= 0))
	{
		return -1;
	}
	if(n->count != size_of(n->left) + size_of(n->right) + 1 || n->sum != sum_of(n->left) + sum_of(n->right) + own_workers(n) ||
		!balanced(n->left, n->right) || !balanced(n->right, n->left))
	{
		return -1;
	}
	if((n->has_status && strlen(n->id + n->idlen + 1) != n->addrlen) || ((n->has_joined || n->status_apart) && !n->has_status))
	{
		return -1;
	}
	hl = check(n->left, lo, n->id);
	hr = check(n->right, n->id, hi);
	if(hl < 0 || hr < 0)
	{
		return -1;
	}
	return 1 + (hl > hr ? hl : hr);
}

int
cluster__table_check(const cluster__table *t)
{
	int h = check(t->root, NULL, NULL);

	return h < 0 || h > CLUSTER__TABLE_DEPTH ? -1 : 0;
}
