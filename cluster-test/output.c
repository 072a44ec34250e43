/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-test: everything it prints besides the usage text. Library
 * threads log and call back concurrently with the main thread, so every
 * message, even a multi-line one, is formatted first and written with a
 * single stdio call: lines from different threads never interleave.
 */
#include "cluster-test.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The member table last printed by ct_print_statuses() (main thread only). */
static char *last_table;

static size_t
unit_len(unsigned char ch)
{
	return (ch >= 0x20 && ch < 0x7f && ch != '\\') ? 1 : 4;
}

/* libcluster's own quoting rule (its cluster__escape() is internal):
 * printable ASCII but the backslash as is, every other byte as \xHH, cut
 * with "..." after a whole escape when out is too small. */
const char *
ct_escape(char *out, size_t outsz, const char *in)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, total = 0, reserve, i;

	if(!outsz)
	{
		return out;
	}
	for(i = 0; in[i]; i++)
	{
		total += unit_len((unsigned char) in[i]);
	}
	/* cut only when the whole does not fit: then leave room for "..." */
	reserve = total < outsz ? 0 : 3;
	for(i = 0; in[i]; i++)
	{
		unsigned char ch = (unsigned char) in[i];

		if(o + unit_len(ch) + reserve >= outsz)
		{
			break;
		}
		if(unit_len(ch) == 1)
		{
			out[o++] = (char) ch;
		}
		else
		{
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 0x0f];
		}
	}
	for(i = 0; reserve && i < 3 && o + 1 < outsz; i++)
	{
		out[o++] = '.';
	}
	out[o] = 0;
	return out;
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
void
ct_logger(int priority, const char *format, va_list ap)
{
	char buf[1024];
	char *text = buf;
	va_list copy;
	size_t len;
	int n;

	va_copy(copy, ap);
	n = vsnprintf(buf, sizeof(buf), format, copy);
	va_end(copy);
	if(n < 0)
	{
		return;
	}
	if((size_t) n >= sizeof(buf))
	{
		text = malloc((size_t) n + 1);
		if(!text)
		{
			text = buf;
		}
		else
		{
			vsnprintf(text, (size_t) n + 1, format, ap);
		}
	}
	len = strlen(text);
	fprintf(stderr, "libcluster<%d>: %s%s", priority, text, (len && text[len - 1] == '\n') ? "" : "\n");
	if(text != buf)
	{
		free(text);
	}
}

/* The re-balance callback: the original's exact four lines (values start
 * at column 32). */
int
ct_balancer(CLUSTER *cluster, CLUSTERSTATE *state)
{
	(void) cluster;

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
	char *text = NULL;
	size_t size = 0, i;
	FILE *f;

	(void) cluster;
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

/* Render the member table into a heap string; NULL with errno on failure. */
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
	fprintf(f, CT_NAME ": cluster members (%zu):\n", count);
	for(i = 0; i < count; i++)
	{
		format_member(f, &members[i]);
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
	CLUSTERMEMBER target;
	char line[CLUSTER_NAME_MAX + CLUSTER_ADDRESS_MAX + 128];
	char *table;
	int err;

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
	if(cluster_pick_target(cluster, &target) == 0)
	{
		snprintf(line, sizeof(line), CT_NAME ": a new client would be sent to %s (%s)\n",
			target.id, target.address[0] ? target.address : "no address");
	}
	else if(errno == ENOENT)
	{
		snprintf(line, sizeof(line), CT_NAME ": no member can take a new client (all draining, full or stale)\n");
	}
	else
	{
		err = errno;
		free(table);
		ct_failure(err, "pick a target for a new client");
		errno = err;
		return -1;
	}
	fprintf(stderr, "%s%s", table, line);
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
