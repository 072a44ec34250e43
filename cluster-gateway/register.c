/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway: POST /register-worker (seed 003). A worker that cannot
 * link the library posts {"id","address","workers","capacity","load"}
 * (and optionally "ttl" in seconds); the gateway makes it a member with a
 * handle of its own (its own lease and key, so every member sees it as
 * any other), and ends that membership when the worker has not posted
 * again within the TTL.
 *
 * Every field is checked by the library itself, on a handle that is not
 * joined, before anything is kept or written: a bad request is a 400
 * naming the field, and nothing reaches etcd.
 *
 * Threads: the loop thread owns the list of registrations. Joins, worker
 * changes and leaves wait on the network, so they run in order on one
 * registrar thread, fed through a mutex-guarded queue; the registrar
 * writes back only a registration's outcome (joined, or failed) under
 * that mutex, and frees a registration only when told to leave, after
 * which the loop never touches it again.
 */
#include "gateway.h"

#include <cJSON.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

/* At most this many registrations at once (each is a full member: a
 * lease, a keepalive and a watch). */
#define MAX_REGISTRATIONS 256

enum op_kind
{
	OP_JOIN,
	OP_WORKERS,
	OP_LEAVE,
	OP_STOP
};

struct gw_reg
{
	struct gw_reg *next;
	CLUSTER *c;
	char id[CLUSTER_NAME_MAX + 1];
	long long expires_ms;
	int ttl_s;
	int workers;
	/* written by the registrar, read by the loop (registrar lock) */
	int joined;
	int failed;
};

struct op
{
	struct op *next;
	enum op_kind kind;
	struct gw_reg *reg;
	int workers;
};

struct gw_registrar
{
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct op *head, *tail;
	int started;
};

static struct gw_registrar registrar = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* Queue an operation for the registrar (loop thread). 0 or -1 (ENOMEM). */
static int
enqueue(enum op_kind kind, struct gw_reg *reg, int workers)
{
	struct op *op = calloc(1, sizeof(*op));

	if(!op)
	{
		return -1;
	}
	op->kind = kind;
	op->reg = reg;
	op->workers = workers;
	pthread_mutex_lock(&registrar.lock);
	if(registrar.tail)
	{
		registrar.tail->next = op;
	}
	else
	{
		registrar.head = op;
	}
	registrar.tail = op;
	pthread_cond_signal(&registrar.cond);
	pthread_mutex_unlock(&registrar.lock);
	return 0;
}

/* The registrar thread: the operations that wait on the network, in the
 * order they were asked for. */
static void *
registrar_main(void *arg)
{
	(void) arg;
	for(;;)
	{
		struct op *op;
		int r;

		pthread_mutex_lock(&registrar.lock);
		while(!registrar.head)
		{
			pthread_cond_wait(&registrar.cond, &registrar.lock);
		}
		op = registrar.head;
		registrar.head = op->next;
		if(!registrar.head)
		{
			registrar.tail = NULL;
		}
		pthread_mutex_unlock(&registrar.lock);
		switch(op->kind)
		{
		case OP_JOIN:
			r = cluster_join(op->reg->c);
			if(r)
			{
				gw_log(LOG_WARNING, "registered worker '%s' could not join: %s (%s)", op->reg->id, strerror(errno),
					cluster_errmsg(op->reg->c));
			}
			else
			{
				gw_log(LOG_INFO, "registered worker '%s' joined the cluster", op->reg->id);
			}
			pthread_mutex_lock(&registrar.lock);
			op->reg->joined = !r;
			op->reg->failed = !!r;
			pthread_mutex_unlock(&registrar.lock);
			break;
		case OP_WORKERS:
			if(cluster_set_workers(op->reg->c, op->workers))
			{
				gw_log(LOG_WARNING, "registered worker '%s': cannot set %d workers: %s", op->reg->id, op->workers,
					cluster_errmsg(op->reg->c));
			}
			break;
		case OP_LEAVE:
			/* cluster_destroy() leaves first (the lease is revoked) */
			cluster_destroy(op->reg->c);
			free(op->reg);
			break;
		case OP_STOP:
			free(op);
			return NULL;
		}
		free(op);
	}
}

int
gw_register_start(struct gw *gw)
{
	int err;

	(void) gw;
	err = pthread_create(&registrar.thread, NULL, registrar_main, NULL);
	if(err)
	{
		gw_log(LOG_ERR, "cannot start the registrar thread: %s", strerror(err));
		return -1;
	}
	registrar.started = 1;
	return 0;
}

/* Unlink reg from the loop's list and hand it to the registrar to leave. */
static void
retire(struct gw *gw, struct gw_reg **link)
{
	struct gw_reg *reg = *link;

	*link = reg->next;
	gw->reg_count--;
	if(enqueue(OP_LEAVE, reg, 0))
	{
		/* no memory for the op: leave here, on the loop (rare) */
		cluster_destroy(reg->c);
		free(reg);
	}
}

void
gw_register_expire(struct gw *gw)
{
	long long now = gw_now_ms();
	struct gw_reg **link = &gw->regs;

	while(*link)
	{
		struct gw_reg *reg = *link;
		int failed;

		pthread_mutex_lock(&registrar.lock);
		failed = reg->failed;
		pthread_mutex_unlock(&registrar.lock);
		if(failed || reg->expires_ms <= now)
		{
			if(!failed)
			{
				gw_log(LOG_NOTICE, "registered worker '%s' expired (no POST /register-worker within %d s): leaving for it", reg->id,
					reg->ttl_s);
				gw->reg_expired++;
			}
			retire(gw, link);
			continue;
		}
		link = &reg->next;
	}
}

void
gw_register_stop(struct gw *gw)
{
	while(gw->regs)
	{
		retire(gw, &gw->regs);
	}
	if(registrar.started)
	{
		if(enqueue(OP_STOP, NULL, 0) == 0)
		{
			pthread_join(registrar.thread, NULL);
		}
		registrar.started = 0;
	}
}

/* An integer field: absent gives def; present it must be a whole number
 * in [min, max]. 0, or -1 with why set. */
static int
int_field(const cJSON *doc, const char *name, long long def, long long min, long long max, long long *out, char *why, size_t whysz)
{
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(doc, name);

	if(!f)
	{
		*out = def;
		return 0;
	}
	if(!cJSON_IsNumber(f) || f->valuedouble != floor(f->valuedouble) || f->valuedouble < (double) min || f->valuedouble > (double) max)
	{
		snprintf(why, whysz, "\"%s\" must be a whole number from %lld to %lld", name, min, max);
		return -1;
	}
	*out = (long long) f->valuedouble;
	return 0;
}

/* A library setter's refusal, in the answer: the library names the field. */
static int
refused(CLUSTER *c, const char *field, char *why, size_t whysz)
{
	snprintf(why, whysz, "\"%s\": %s", field, cluster_errmsg(c));
	return -1;
}

/* One request, checked. */
struct request
{
	char id[CLUSTER_NAME_MAX + 1];
	char address[CLUSTER_ADDRESS_MAX + 1];
	long long workers, load, capacity, ttl;
	/* a handle set up with every field, never joined */
	CLUSTER *c;
};

/*
 * Check a request on a handle of its own that is never joined: the
 * library's own rules for each field, and nothing written anywhere. On
 * success rq->c is that handle, ready to be configured and joined.
 */
static int
check_request(struct gw *gw, const char *body, size_t len, struct request *rq, char *why, size_t whysz)
{
	const cJSON *id, *addr;
	cJSON *doc;
	CLUSTER *c = NULL;
	int r = -1;

	doc = cJSON_ParseWithLength(body, len);
	if(!doc || !cJSON_IsObject(doc))
	{
		snprintf(why, whysz, "the body is not a JSON object");
		cJSON_Delete(doc);
		return -1;
	}
	id = cJSON_GetObjectItemCaseSensitive(doc, "id");
	addr = cJSON_GetObjectItemCaseSensitive(doc, "address");
	if(!cJSON_IsString(id) || !cJSON_IsString(addr))
	{
		snprintf(why, whysz, "\"id\" and \"address\" are required strings");
	}
	else if(!int_field(doc, "workers", 1, 1, CLUSTER_WORKERS_MAX, &rq->workers, why, whysz) &&
			!int_field(doc, "load", 0, 0, 1LL << 53, &rq->load, why, whysz) &&
			!int_field(doc, "capacity", CLUSTER_CAPACITY_UNBOUNDED, CLUSTER_CAPACITY_UNBOUNDED, 1LL << 53, &rq->capacity, why, whysz) &&
			!int_field(doc, "ttl", gw->opts->have_ttl ? gw->opts->ttl : CLUSTER_TTL_DEFAULT, 2, 3600, &rq->ttl, why, whysz))
	{
		c = cluster_create(gw->opts->key);
		if(!c)
		{
			snprintf(why, whysz, "cannot create a handle: %s", strerror(errno));
		}
		else if(cluster_set_instance(c, id->valuestring))
		{
			refused(c, "id", why, whysz);
		}
		else if(cluster_set_address(c, addr->valuestring))
		{
			refused(c, "address", why, whysz);
		}
		else if(cluster_set_workers(c, (int) rq->workers))
		{
			refused(c, "workers", why, whysz);
		}
		else if(cluster_report(c, rq->load, rq->capacity))
		{
			refused(c, "load/capacity", why, whysz);
		}
		else
		{
			/* both fit: the library has just accepted them */
			snprintf(rq->id, sizeof(rq->id), "%s", id->valuestring);
			snprintf(rq->address, sizeof(rq->address), "%s", addr->valuestring);
			rq->c = c;
			r = 0;
		}
		if(r && c)
		{
			cluster_destroy(c);
		}
	}
	cJSON_Delete(doc);
	return r;
}

static cJSON *
answer(const char *key, const char *text, const struct request *rq)
{
	cJSON *doc = cJSON_CreateObject();

	if(doc && (!cJSON_AddStringToObject(doc, key, text) || (rq && (!cJSON_AddStringToObject(doc, "id", rq->id) ||
																	  !cJSON_AddNumberToObject(doc, "ttl", (double) rq->ttl)))))
	{
		cJSON_Delete(doc);
		doc = NULL;
	}
	return doc;
}

cJSON *
gw_register(struct gw *gw, const char *body, size_t len, int *code)
{
	char why[512], shown[CLI_SHOWN_SIZE];
	struct request rq;
	struct gw_reg *reg;

	memset(&rq, 0, sizeof(rq));
	if(check_request(gw, body, len, &rq, why, sizeof(why)))
	{
		*code = 400;
		gw->reg_refused++;
		gw_log(LOG_INFO, "POST /register-worker refused: %s", cli_escape(shown, sizeof(shown), why));
		return answer("error", why, NULL);
	}
	for(reg = gw->regs; reg && strcmp(reg->id, rq.id); reg = reg->next)
	{
	}
	if(reg)
	{
		/* a renewal: the values passed the library's checks, so applying
		 * them cannot fail; the lease keeps the first post's TTL */
		cluster_destroy(rq.c);
		cluster_set_address(reg->c, rq.address);
		cluster_report(reg->c, rq.load, rq.capacity);
		if(rq.workers != reg->workers && enqueue(OP_WORKERS, reg, (int) rq.workers) == 0)
		{
			reg->workers = (int) rq.workers;
		}
		reg->ttl_s = (int) rq.ttl;
		reg->expires_ms = gw_now_ms() + rq.ttl * 1000;
		gw->reg_renewed++;
		*code = 200;
		return answer("status", "renewed", &rq);
	}
	if(gw->reg_count >= MAX_REGISTRATIONS)
	{
		cluster_destroy(rq.c);
		gw->reg_refused++;
		*code = 503;
		return answer("error", "too many registered workers (256 per gateway)", NULL);
	}
	reg = calloc(1, sizeof(*reg));
	if(reg)
	{
		/* filled before the registrar can see it */
		reg->c = rq.c;
		snprintf(reg->id, sizeof(reg->id), "%s", rq.id);
		reg->workers = (int) rq.workers;
		reg->ttl_s = (int) rq.ttl;
		reg->expires_ms = gw_now_ms() + rq.ttl * 1000;
	}
	if(!reg || gw_configure(gw->opts, rq.c) || cluster_set_ttl(rq.c, (int) rq.ttl) || enqueue(OP_JOIN, reg, 0))
	{
		free(reg);
		cluster_destroy(rq.c);
		*code = 500;
		return answer("error", "cannot set up the registration (see the gateway's log)", NULL);
	}
	reg->next = gw->regs;
	gw->regs = reg;
	gw->reg_count++;
	gw->reg_accepted++;
	gw_log(LOG_INFO, "registered worker '%s' at %s (ttl %lld s): joining for it", reg->id, cli_escape(shown, sizeof(shown), rq.address), rq.ttl);
	/* accepted: the join happens on the registrar thread */
	*code = 202;
	return answer("status", "registering", &rq);
}
