/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Command-line and message helpers shared by cluster-test and
 * cluster-gateway (see cli-common.h). No state but option names' buffer.
 */
#include "cli-common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 for a byte shown as is, 4 for one shown as \xHH. */
static size_t
unit_len(unsigned char ch)
{
	return (ch >= 0x20 && ch < 0x7f && ch != '\\') ? 1 : 4;
}

/* libcluster's own quoting rule (its escaper is internal to the library):
 * a request or an option cannot forge a log line or reach a terminal as an
 * escape sequence. */
const char *
cli_escape(char *out, size_t outsz, const char *in)
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

/* strtoll() alone accepts "12abc" and " 12" and clamps on overflow: the
 * whole text must be the number. */
int
cli_parse_number(const char *arg, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(arg, &end, 10);
	if(end == arg || *end || errno == ERANGE || v < min || v > max)
	{
		return -1;
	}
	*out = v;
	return 0;
}

const char *
cli_option_name(const struct option *long_options, int opt)
{
	static char name[40];
	size_t i;

	for(i = 0; opt >= 256 && long_options[i].name; i++)
	{
		if(long_options[i].val == opt)
		{
			snprintf(name, sizeof(name), "--%s", long_options[i].name);
			return name;
		}
	}
	snprintf(name, sizeof(name), "-%c", opt);
	return name;
}

/* One line saying what is wrong, then where to look. */
int
cli_usage_error(const char *prog, const char *help, const char *reason, const char *opt, const char *arg)
{
	char shown[CLI_SHOWN_SIZE];

	if(arg)
	{
		fprintf(stderr, "%s: option %s: %s, not '%s'\n", prog, opt, reason, cli_escape(shown, sizeof(shown), arg));
	}
	else if(opt)
	{
		fprintf(stderr, "%s: option %s: %s\n", prog, opt, reason);
	}
	else
	{
		fprintf(stderr, "%s: %s\n", prog, reason);
	}
	fprintf(stderr, "Try '%s %s' for more information.\n", prog, help);
	return CLI_EXIT_USAGE;
}

int
cli_read_password(const char *prog, const char *password_file, char *out, size_t size)
{
	char shown[CLI_SHOWN_SIZE];
	const char *env;
	size_t n;
	FILE *f;

	out[0] = 0;
	if(!password_file)
	{
		env = getenv("CLUSTER_PASSWORD");
		if(!env || !*env || strlen(env) >= size)
		{
			fprintf(stderr, "%s: the password in CLUSTER_PASSWORD is missing or longer than %zu bytes\n", prog, size - 1);
			return -1;
		}
		memcpy(out, env, strlen(env) + 1);
		return 0;
	}
	f = fopen(password_file, "re");
	if(!f)
	{
		fprintf(stderr, "%s: cannot read the password file '%s': %s\n", prog, cli_escape(shown, sizeof(shown), password_file),
			strerror(errno));
		return -1;
	}
	if(!fgets(out, (int) size, f))
	{
		out[0] = 0;
	}
	fclose(f);
	n = strcspn(out, "\r\n");
	out[n] = 0;
	if(!n)
	{
		fprintf(stderr, "%s: the password file '%s' is empty (the password is its first line)\n", prog,
			cli_escape(shown, sizeof(shown), password_file));
		return -1;
	}
	return 0;
}

/* Formatted first, then written with one call: the library logs from its
 * own threads while the program's threads print too. */
void
cli_library_line(int priority, const char *format, va_list ap)
{
	char buf[1024];
	char *text = buf;
	const char *shown;
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
	shown = text;
	if(!strncmp(shown, "libcluster: ", 12))
	{
		shown += 12;
	}
	len = strlen(shown);
	fprintf(stderr, "libcluster<%d>: %s%s", priority, shown, (len && shown[len - 1] == '\n') ? "" : "\n");
	if(text != buf)
	{
		free(text);
	}
}

const char *
cli_registry_cause(int err)
{
	switch(err)
	{
	case ENXIO:
		return "the registry's host name could not be resolved";
	case ECONNREFUSED:
		return "the registry refused the connection (nothing listening there?)";
	case ETIMEDOUT:
		return "the registry did not answer in time";
	case EPROTO:
		return "TLS failure (see the message above)";
	case EACCES:
		return "the registry refused the credentials";
	case EPERM:
		return "permission denied (the registry user may not use this cluster's keys)";
	case EIO:
		return "the registry answered with an error (see the message above)";
	default:
		return strerror(err);
	}
}
