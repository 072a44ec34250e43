/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-test: everything it prints besides the usage text. Library
 * threads log and call back concurrently with the main thread, so every
 * message, even a multi-line one, is formatted first and written with a
 * single stdio call: lines from different threads never interleave.
 *
 * -J: the events (rebalance, acquire, release, status, advice) go to
 * stdout as JSON, one object per line, instead of text to stderr; the
 * messages stay on stderr. Each event is written with stdout locked
 * (flockfile) and stdout is flushed before it is unlocked, so the lines
 * of one callback are never interleaved with another thread's, and a
 * reader of a pipe sees each callback's lines as soon as it has run.
 * stdout is fully buffered rather than line-buffered: a callback with a
 * thousand shards makes one write, not a thousand, and the flush at its
 * end still delivers them at once.
 */
#include "cluster-test.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* -J (set once by the main thread before any library thread exists). */
static int json_mode;
static char json_buffer[64 * 1024];

/* The member table last printed by ct_print_statuses() (main thread only). */
static char *last_table;

void
ct_set_json(int on)
{
	json_mode = on;
	if(on)
	{
		setvbuf(stdout, json_buffer, _IOFBF, sizeof(json_buffer));
	}
}

/* CLOCK_MONOTONIC in nanoseconds: the same clock for every process of a
 * host, so events of several instances can be put in order. */
static long long
mono_ns(void)
{
	struct timespec ts;

	if(clock_gettime(CLOCK_MONOTONIC, &ts))
	{
		return 0;
	}
	return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A JSON string: '"' and '\\' escaped with a backslash, every control
 * byte, DEL and byte >= 0x80 as \u00XX (the library hands out only
 * printable ASCII in ids and addresses; the rest is a safety net that
 * keeps every line valid JSON, and pure ASCII). */
static void
json_string(FILE *f, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p;

	putc('"', f);
	for(p = (const unsigned char *) s; *p; p++)
	{
		if(*p == '"' || *p == '\\')
		{
			putc('\\', f);
			putc(*p, f);
		}
		else if(*p < 0x20 || *p >= 0x7f)
		{
			fputs("\\u00", f);
			putc(hex[*p >> 4], f);
			putc(hex[*p & 0x0f], f);
		}
		else
		{
			putc(*p, f);
		}
	}
	putc('"', f);
}

/* Bracket the lines of one event or callback: other threads wait, and the
 * lines leave the process before the callback returns. */
static void
json_begin(void)
{
	flockfile(stdout);
}

static void
json_end(void)
{
	fflush(stdout);
	funlockfile(stdout);
}

void
ct_message(const char *format, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, format);
	vsnprintf(buf, sizeof(buf), format, ap);
	va_end(ap);
	fprintf(stderr, CT_NAME ": %s\n", buf);
}

void
ct_failure(int err, const char *what)
{
	ct_message("failed to %s: %s", what, strerror(err));
}

/* The library's logger: "libcluster<PRIO>: " + the message. A long message
 * gets a heap buffer rather than being cut. */
static int log_ceiling = LOG_DEBUG;

void
ct_set_log_ceiling(int priority)
{
	log_ceiling = priority;
}

void
ct_logger(int priority, const char *format, va_list ap)
{
	if(priority <= log_ceiling)
	{
		cli_library_line(priority, format, ap);
	}
}

/* The re-balance callback: the original's exact four lines (values start
 * at column 32). */
int
ct_balancer(CLUSTER *cluster, CLUSTERSTATE *state)
{
	long long now = mono_ns();

	(void) cluster;
	if(json_mode)
	{
		json_begin();
		printf("{\"event\":\"rebalance\",\"index\":%d,\"workers\":%d,\"total\":%d,\"passive\":%s,\"mono_ns\":%lld}\n",
			state->index, state->workers, state->total, state->passive ? "true" : "false", now);
		json_end();
		return 0;
	}
	fprintf(stderr, CT_NAME ": cluster has re-balanced:\n"
							"   %-28s%d\n"
							"   %-28s%d\n"
							"   %-28s%d\n",
		"first worker index:", state->index,
		"worker count:", state->workers,
		"total cluster worker count:", state->total);
	return 0;
}

/* The advice callback: one line per row that moves connections. */
void
ct_advice(CLUSTER *cluster, const CLUSTERREDIRECT *redirects, size_t count)
{
	long long now = mono_ns();
	char *text = NULL;
	size_t size = 0, i;
	FILE *f;

	(void) cluster;
	if(json_mode)
	{
		json_begin();
		for(i = 0; i < count; i++)
		{
			if(redirects[i].count <= 0)
			{
				continue;
			}
			fputs("{\"event\":\"advice\",\"target\":", stdout);
			json_string(stdout, redirects[i].target);
			fputs(",\"address\":", stdout);
			json_string(stdout, redirects[i].address);
			printf(",\"count\":%d,\"mono_ns\":%lld}\n", redirects[i].count, now);
		}
		json_end();
		return;
	}
	f = open_memstream(&text, &size);
	if(!f)
	{
		return;
	}
	for(i = 0; i < count; i++)
	{
		if(redirects[i].count <= 0)
		{
			continue;
		}
		fprintf(f, CT_NAME ": advice: redirect %d connections to %s (%s)\n",
			redirects[i].count, redirects[i].target,
			redirects[i].address[0] ? redirects[i].address : "no address");
	}
	if(fclose(f) == 0 && size)
	{
		fputs(text, stderr);
	}
	free(text);
}

/* qsort: by token, then by shard. */
static int
shard_order(const void *a, const void *b)
{
	const CLUSTERSHARD *x = a, *y = b;

	if(x->token != y->token)
	{
		return x->token < y->token ? -1 : 1;
	}
	return x->shard < y->shard ? -1 : x->shard > y->shard;
}

/* One text line per token: "cluster-test: VERB 0-99,205 (token 1234)",
 * the shards ascending, consecutive ones as a range. */
static void
format_shard_ranges(FILE *f, const char *verb, const CLUSTERSHARD *shards, size_t n)
{
	CLUSTERSHARD *sorted;
	size_t i, j, k, end;

	if(!n)
	{
		return;
	}
	sorted = malloc(n * sizeof(*sorted));
	if(!sorted)
	{
		fprintf(f, CT_NAME ": %s %zu shards (out of memory to list them)\n", verb, n);
		return;
	}
	memcpy(sorted, shards, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), shard_order);
	for(i = 0; i < n; i = j)
	{
		/* [i, j): one token */
		for(j = i; j < n && sorted[j].token == sorted[i].token; j++)
		{
		}
		fprintf(f, CT_NAME ": %s ", verb);
		for(k = i; k < j; k = end + 1)
		{
			/* [k, end]: consecutive shards (a repeated one, which the
			 * library never sends, only extends the range) */
			for(end = k; end + 1 < j && sorted[end + 1].shard - sorted[end].shard <= 1; end++)
			{
			}
			fprintf(f, "%s%u", k > i ? "," : "", sorted[k].shard);
			if(sorted[end].shard != sorted[k].shard)
			{
				fprintf(f, "-%u", sorted[end].shard);
			}
		}
		fprintf(f, " (token %lld)\n", sorted[i].token);
	}
	free(sorted);
}

static void
json_shards(const char *event, const CLUSTERSHARD *shards, size_t n, long long now)
{
	size_t i;

	for(i = 0; i < n; i++)
	{
		printf("{\"event\":\"%s\",\"shard\":%u,\"token\":%lld,\"mono_ns\":%lld}\n",
			event, shards[i].shard, shards[i].token, now);
	}
}

/* The shard callback: releases first (this instance stops on them before
 * the callback returns), then acquisitions. -J: one line per shard, in
 * the library's order; text: compact ranges per token. */
void
ct_shards(CLUSTER *cluster, const CLUSTERSHARD *acquired, size_t n_acquired, const CLUSTERSHARD *released, size_t n_released)
{
	long long now = mono_ns();
	char *text = NULL;
	size_t size = 0;
	FILE *f;

	(void) cluster;
	if(json_mode)
	{
		if(n_released || n_acquired)
		{
			json_begin();
			json_shards("release", released, n_released, now);
			json_shards("acquire", acquired, n_acquired, now);
			json_end();
		}
		return;
	}
	f = open_memstream(&text, &size);
	if(!f)
	{
		return;
	}
	format_shard_ranges(f, "release", released, n_released);
	format_shard_ranges(f, "acquire", acquired, n_acquired);
	if(fclose(f) == 0 && size)
	{
		fputs(text, stderr);
	}
	free(text);
}

/* One member as a table row. Ages are left out on purpose: the table is
 * re-printed only when it changes, and an age changes all the time. */
static void
format_member(FILE *f, const CLUSTERMEMBER *m)
{
	fprintf(f, "   %c %s ", m->self ? '*' : ' ', m->id);
	if(m->passive)
	{
		fprintf(f, "[passive]");
	}
	else
	{
		fprintf(f, "[%d]", m->base);
	}
	fprintf(f, " workers %d", m->workers);
	if(!m->has_status)
	{
		fprintf(f, ", no status\n");
		return;
	}
	fprintf(f, ", address %s, load %lld, capacity ",
		m->address[0] ? m->address : "(none)", m->load);
	if(m->capacity == CLUSTER_CAPACITY_UNBOUNDED)
	{
		fprintf(f, "unbounded\n");
	}
	else if(m->capacity == 0)
	{
		fprintf(f, "0 (draining)\n");
	}
	else
	{
		fprintf(f, "%lld\n", m->capacity);
	}
}

/* -J: one member as a JSON object; address, load and capacity are null
 * when the member has published no status. */
static void
format_member_json(FILE *f, const CLUSTERMEMBER *m)
{
	fputs("{\"id\":", f);
	json_string(f, m->id);
	fprintf(f, ",\"self\":%s,\"passive\":%s,\"base\":%d,\"workers\":%d,\"has_status\":%s,\"address\":",
		m->self ? "true" : "false", m->passive ? "true" : "false", m->base, m->workers,
		m->has_status ? "true" : "false");
	if(!m->has_status)
	{
		fputs("null,\"load\":null,\"capacity\":null}", f);
		return;
	}
	json_string(f, m->address);
	fprintf(f, ",\"load\":%lld,\"capacity\":%lld}", m->load, m->capacity);
}

/* Render the member table into a heap string (-J: a JSON array); NULL
 * with errno on failure. */
static char *
render_table(CLUSTER *cluster)
{
	CLUSTERMEMBER *members = NULL;
	size_t count = 0, i, size = 0;
	char *text = NULL;
	FILE *f;
	int err;

	if(cluster_members(cluster, &members, &count))
	{
		return NULL;
	}
	f = open_memstream(&text, &size);
	if(!f)
	{
		err = errno;
		cluster_members_free(members);
		errno = err;
		return NULL;
	}
	if(json_mode)
	{
		putc('[', f);
		for(i = 0; i < count; i++)
		{
			if(i)
			{
				putc(',', f);
			}
			format_member_json(f, &members[i]);
		}
		putc(']', f);
	}
	else
	{
		fprintf(f, CT_NAME ": cluster members (%zu):\n", count);
		for(i = 0; i < count; i++)
		{
			format_member(f, &members[i]);
		}
	}
	cluster_members_free(members);
	if(fclose(f))
	{
		free(text);
		errno = ENOMEM;
		return NULL;
	}
	return text;
}

int
ct_print_statuses(CLUSTER *cluster, int force)
{
	long long now = mono_ns();
	CLUSTERMEMBER target;
	char line[CLUSTER_NAME_MAX + CLUSTER_ADDRESS_MAX + 128];
	char *table;
	int err, picked;

	table = render_table(cluster);
	if(!table)
	{
		err = errno;
		ct_failure(err, "read the cluster members");
		errno = err;
		return -1;
	}
	if(!force && last_table && !strcmp(table, last_table))
	{
		free(table);
		return 0;
	}
	/* a real pick: the library counts it as provisional load on the
	 * target, as it would for a client that is sent there */
	picked = cluster_pick_target(cluster, &target) == 0;
	if(!picked && errno != ENOENT)
	{
		err = errno;
		free(table);
		ct_failure(err, "pick a target for a new client");
		errno = err;
		return -1;
	}
	if(json_mode)
	{
		json_begin();
		printf("{\"event\":\"status\",\"members\":%s,\"pick\":", table);
		if(picked)
		{
			fputs("{\"id\":", stdout);
			json_string(stdout, target.id);
			fputs(",\"address\":", stdout);
			json_string(stdout, target.address);
			putchar('}');
		}
		else
		{
			fputs("null", stdout);
		}
		printf(",\"mono_ns\":%lld}\n", now);
		json_end();
	}
	else
	{
		if(picked)
		{
			snprintf(line, sizeof(line), CT_NAME ": a new client would be sent to %s (%s)\n",
				target.id, target.address[0] ? target.address : "no address");
		}
		else
		{
			snprintf(line, sizeof(line), CT_NAME ": no member can take a new client (all draining, full or stale)\n");
		}
		fprintf(stderr, "%s%s", table, line);
	}
	free(last_table);
	last_table = table;
	return 0;
}

void
ct_output_cleanup(void)
{
	free(last_table);
	last_table = NULL;
}

/* -l. No age column: a member's age (CLUSTERMEMBER.age_ms) is the time
 * since this process received its record, which is always about 0 in a
 * one-shot listing; a join time would compare clocks across hosts. */
int
ct_print_list(CLUSTER *cluster)
{
	CLUSTERMEMBER *members = NULL;
	size_t count = 0, i, shown = 0;
	char base[16], load[24], capacity[24];
	int idw = 2, addrw = 7;

	if(cluster_members(cluster, &members, &count))
	{
		ct_failure(errno, "read the cluster members");
		return -1;
	}
	for(i = 0; i < count; i++)
	{
		int l = members[i].self ? 0 : (int) strlen(members[i].id), a = (int) strlen(members[i].address);

		idw = l > idw ? l : idw;
		addrw = a > addrw ? a : addrw;
	}
	if(!json_mode)
	{
		printf("%-*s %7s %6s %-*s %8s %10s\n", idw, "ID", "WORKERS", "BASE", addrw, "ADDRESS", "LOAD", "CAPACITY");
	}
	for(i = 0; i < count; i++)
	{
		const CLUSTERMEMBER *m = &members[i];

		if(m->self)
		{
			continue;
		}
		shown++;
		if(json_mode)
		{
			format_member_json(stdout, m);
			putchar('\n');
			continue;
		}
		snprintf(base, sizeof(base), m->passive ? "-" : "%d", m->base);
		snprintf(load, sizeof(load), m->has_status ? "%lld" : "-", m->load);
		if(!m->has_status)
		{
			snprintf(capacity, sizeof(capacity), "-");
		}
		else if(m->capacity == CLUSTER_CAPACITY_UNBOUNDED)
		{
			snprintf(capacity, sizeof(capacity), "unbounded");
		}
		else if(m->capacity == 0)
		{
			snprintf(capacity, sizeof(capacity), "draining");
		}
		else
		{
			snprintf(capacity, sizeof(capacity), "%lld", m->capacity);
		}
		printf("%-*s %7d %6s %-*s %8s %10s\n", idw, m->id, m->workers, base, addrw, m->address[0] ? m->address : "-", load, capacity);
	}
	cluster_members_free(members);
	if(!json_mode)
	{
		printf("(%zu member%s)\n", shown, shown == 1 ? "" : "s");
	}
	if(fflush(stdout))
	{
		ct_failure(errno, "write the listing");
		return -1;
	}
	return 0;
}
