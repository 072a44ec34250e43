/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway: the command line. The cluster options are
 * cluster-test's (-k -e -p -r -t and the registry TLS/login options), so
 * that one set of settings serves both; only their shape is checked here,
 * libcluster owns the rules and names the offending field.
 */
#include "gateway.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

static const char usage_text[] =
	"Usage: " GW_NAME " --http ADDR:PORT [OPTIONS]\n"
	"\n"
	"Join a cluster passively (taking no worker index) and tell clients over\n"
	"HTTP which member to connect to, until SIGINT or SIGTERM.\n"
	"\n"
	"  --http ADDR:PORT  Serve HTTP on ADDR:PORT (required). ADDR is an IPv4\n"
	"                  address, [IPv6] or a host name; PORT 0 takes a free\n"
	"                  port. The bound address is printed on stdout as\n"
	"                  'listening http ADDR:PORT' as the join begins (until\n"
	"                  it has succeeded, /healthz and / answer 503)\n"
	"  -h, --help      Print this message and exit\n"
	"  -V, --version   Print the version and exit\n"
	"  -v              Be more verbose (library debug logging, one line per\n"
	"                  request)\n"
	"  -k KEY          Set the cluster key to KEY (default: " GW_DEFAULT_KEY ")\n"
	"  -e ENV          Set the cluster environment to ENV (default: production)\n"
	"  -p NAME         Set the cluster partition to NAME (default: none)\n"
	"  -r URI          Set the cluster registry URI: http://HOST:PORT/ or\n"
	"                  https://..., several separated by commas (etcd v3),\n"
	"                  or etcd2+http://HOST:PORT/\n"
	"  -t TTL          Set the registry lease to TTL seconds (2..3600, default 5)\n"
	"  --tcp ADDR:PORT Also proxy TCP on ADDR:PORT: each client is spliced to\n"
	"                  a member's published address (tcp://HOST:PORT, the\n"
	"                  HOST:PORT of a URL, or HOST:PORT), weighted by\n"
	"                  capacity (by workers when a capacity is unbounded);\n"
	"                  printed as 'listening tcp ADDR:PORT'\n"
	"  --sticky        With --tcp: a client address keeps its member while\n"
	"                  that member lives (rendezvous hashing)\n"
	"  --connect-timeout MS  With --tcp: dial a member for at most MS ms\n"
	"                  (default 2000); a member that refuses or times out is\n"
	"                  passed over and the client re-queued to another\n"
	"  --down-time MS  ... passed over for MS ms (default 10000)\n"
	"  --max-connections N  With --tcp: at most N clients at once; more wait\n"
	"                  in the listen queue (default 10000)\n"
	"  --drain-time MS On SIGTERM, let proxied connections go on for up to\n"
	"                  MS ms before closing them (default 10000)\n"
	"  --pickers N     Gateways (and members) picking targets from the same\n"
	"                  statuses; each claims 1/N of a member's room between two\n"
	"                  reports (default 1: this gateway alone; 0: every member\n"
	"                  that publishes a status)\n"
	"  --cacert FILE   Verify the registry's certificate with this CA (PEM)\n"
	"  --cert FILE     Present this client certificate (PEM) to the registry\n"
	"  --key FILE      ... with this private key (PEM); both or neither\n"
	"  --user NAME     Log in to etcd as NAME; the password is the first line\n"
	"                  of --password-file FILE, or else the environment\n"
	"                  variable CLUSTER_PASSWORD\n"
	"\n"
	"--http is required with --tcp too: /healthz and /metrics live there.\n"
	"HTTP: GET / (307 to a member), /target, /workers, /members, /healthz,\n"
	"/metrics; see cluster-gateway(1).\n"
	"\n"
	"Exit status: 0 success (including a clean leave after SIGINT/SIGTERM),\n"
	"1 a libcluster call or the system failed (the reason is printed),\n"
	"2 bad usage.\n";

/* One line saying what is wrong, then where to look: exit status 2. */
static int
usage_error(const char *reason, const char *opt, const char *arg)
{
	return cli_usage_error(GW_NAME, "--help", reason, opt, arg);
}

enum
{
	OPT_CACERT = 256,
	OPT_CERT,
	OPT_KEY,
	OPT_USER,
	OPT_PASSWORD_FILE,
	OPT_HTTP,
	OPT_PICKERS,
	OPT_TCP,
	OPT_STICKY,
	OPT_CONNECT_TIMEOUT,
	OPT_DOWN_TIME,
	OPT_MAX_CONNECTIONS,
	OPT_DRAIN_TIME
};

static const struct option long_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "http", required_argument, NULL, OPT_HTTP },
	{ "pickers", required_argument, NULL, OPT_PICKERS },
	{ "tcp", required_argument, NULL, OPT_TCP },
	{ "sticky", no_argument, NULL, OPT_STICKY },
	{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
	{ "down-time", required_argument, NULL, OPT_DOWN_TIME },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS },
	{ "drain-time", required_argument, NULL, OPT_DRAIN_TIME },
	{ "cacert", required_argument, NULL, OPT_CACERT },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "user", required_argument, NULL, OPT_USER },
	{ "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
	{ NULL, 0, NULL, 0 },
};

/* The option a getopt code stands for, as the user wrote it, for messages. */
static const char *
option_name(int opt)
{
	return cli_option_name(long_options, opt);
}

/*
 * --http or --tcp ADDR:PORT. The port is after the last colon; an IPv6 address
 * comes in brackets (so that its colons are not read as the port's). The
 * address itself is checked by the resolver when binding; here only that
 * there is one, that it fits and that it has no byte a resolver should
 * never see.
 */
static int
address_option(const char *opt, const char *arg, char *out_host, size_t hostsz, int *out_port, int *have)
{
	const char *colon, *host = arg;
	size_t hostlen, i;
	long long port;

	if(arg[0] == '[')
	{
		const char *close = strchr(arg, ']');

		if(!close || close[1] != ':')
		{
			return usage_error("an IPv6 address is written [ADDR]:PORT", opt, arg);
		}
		host = arg + 1;
		hostlen = (size_t) (close - host);
		colon = close + 1;
	}
	else
	{
		colon = strrchr(arg, ':');
		if(!colon)
		{
			return usage_error("expected ADDR:PORT", opt, arg);
		}
		hostlen = (size_t) (colon - arg);
		if(memchr(arg, ':', hostlen))
		{
			return usage_error("an IPv6 address is written [ADDR]:PORT", opt, arg);
		}
	}
	if(!hostlen || hostlen >= hostsz)
	{
		return usage_error("the address must be 1..255 characters", opt, arg);
	}
	for(i = 0; i < hostlen; i++)
	{
		unsigned char ch = (unsigned char) host[i];

		if(ch <= 0x20 || ch >= 0x7f || ch == '/' || ch == '[' || ch == ']')
		{
			return usage_error("the address has a character no address has", opt, arg);
		}
	}
	if(cli_parse_number(colon + 1, 0, 65535, &port))
	{
		return usage_error("the port must be a whole number from 0 to 65535", opt, arg);
	}
	memcpy(out_host, host, hostlen);
	out_host[hostlen] = 0;
	*out_port = (int) port;
	*have = 1;
	return GW_EXIT_OK;
}

/* The TCP proxy's numbers, each with its range: a timeout of 0 would
 * fail every dial, and the limits keep timevals and fd counts sane. */
static int
tcp_number(int opt, const char *arg, struct gw_options *opts)
{
	static const struct
	{
		int opt;
		long long min, max;
		const char *reason;
	} ranges[] = {
		{ OPT_CONNECT_TIMEOUT, 1, 600000, "the connect timeout must be a whole number of ms from 1 to 600000" },
		{ OPT_DOWN_TIME, 0, 3600000, "the down time must be a whole number of ms from 0 to 3600000" },
		{ OPT_MAX_CONNECTIONS, 1, 1000000, "the connection limit must be a whole number from 1 to 1000000" },
		{ OPT_DRAIN_TIME, 0, 3600000, "the drain time must be a whole number of ms from 0 to 3600000" },
	};
	int *slot[] = { &opts->connect_timeout_ms, &opts->down_ms, &opts->max_connections, &opts->drain_ms };
	long long v;
	size_t i = 0;

	while(ranges[i].opt != opt)
	{
		i++;
	}
	if(cli_parse_number(arg, ranges[i].min, ranges[i].max, &v))
	{
		return usage_error(ranges[i].reason, option_name(opt), arg);
	}
	*slot[i] = (int) v;
	return GW_EXIT_OK;
}

/* Options that only make sense together, and the one that is required. */
static int
check_combinations(const struct gw_options *opts)
{
	const char *env = getenv("CLUSTER_PASSWORD");

	if(!opts->have_http)
	{
		return usage_error("--http ADDR:PORT is required (where to serve clients)", NULL, NULL);
	}
	if(opts->sticky && !opts->have_tcp)
	{
		return usage_error("--sticky needs --tcp (it maps TCP clients to members)", NULL, NULL);
	}
	if(!!opts->cert != !!opts->key_file)
	{
		return usage_error("--cert and --key go together (a client certificate and its private key)", NULL, NULL);
	}
	if(opts->password_file && !opts->user)
	{
		return usage_error("--password-file needs --user", NULL, NULL);
	}
	if(opts->user && !opts->password_file && !(env && *env))
	{
		return usage_error("--user needs a password: --password-file FILE, or the environment variable CLUSTER_PASSWORD", NULL, NULL);
	}
	return GW_EXIT_OK;
}

/* getopt's complaint about the option at optind, in our words. */
static int
bad_option(int c, char **argv)
{
	char reason[4 * 100 + 64], shown[CLI_SHOWN_SIZE];

	if(c == ':')
	{
		return usage_error("missing argument", optopt ? option_name(optopt) : argv[optind - 1], NULL);
	}
	if(optopt > 32 && optopt < 127)
	{
		return usage_error("unknown option", option_name(optopt), NULL);
	}
	/* an unknown long option: getopt leaves its text in argv */
	snprintf(reason, sizeof(reason), "unknown option '%s'", cli_escape(shown, sizeof(shown), argv[optind - 1]));
	return usage_error(reason, NULL, NULL);
}

int
gw_parse_options(int argc, char **argv, struct gw_options *opts)
{
	long long v;
	int c, r;

	memset(opts, 0, sizeof(*opts));
	opts->key = GW_DEFAULT_KEY;
	opts->pickers = 1;
	opts->connect_timeout_ms = 2000;
	opts->down_ms = 10000;
	opts->max_connections = 10000;
	opts->drain_ms = 10000;
	/* ':' first: a missing argument is told apart from an unknown option;
	 * opterr = 0: our messages, not getopt's */
	opterr = 0;
	while((c = getopt_long(argc, argv, ":hVvk:e:p:r:t:", long_options, NULL)) != -1)
	{
		r = GW_EXIT_OK;
		switch(c)
		{
		case 'h':
			fputs(usage_text, stdout);
			return -1;
		case 'V':
			printf(GW_NAME " (libcluster %s)\n", cluster_version());
			return -1;
		case 'v': opts->verbose = 1; break;
		case 'k': opts->key = optarg; break;
		case 'e': opts->env = optarg; break;
		case 'p': opts->partition = optarg; break;
		case 'r': opts->registry = optarg; break;
		case 't':
			if(cli_parse_number(optarg, INT_MIN, INT_MAX, &v))
			{
				return usage_error("the lease TTL must be a whole number in range", "-t", optarg);
			}
			opts->ttl = (int) v;
			opts->have_ttl = 1;
			break;
		case OPT_PICKERS:
			if(cli_parse_number(optarg, 0, 1000000, &v))
			{
				return usage_error("the picker count must be a whole number from 0 to 1000000", "--pickers", optarg);
			}
			opts->pickers = (int) v;
			break;
		case OPT_HTTP: r = address_option("--http", optarg, opts->http_host, sizeof(opts->http_host), &opts->http_port, &opts->have_http); break;
		case OPT_TCP: r = address_option("--tcp", optarg, opts->tcp_host, sizeof(opts->tcp_host), &opts->tcp_port, &opts->have_tcp); break;
		case OPT_STICKY: opts->sticky = 1; break;
		case OPT_CONNECT_TIMEOUT:
		case OPT_DOWN_TIME:
		case OPT_MAX_CONNECTIONS:
		case OPT_DRAIN_TIME: r = tcp_number(c, optarg, opts); break;
		case OPT_CACERT: opts->cacert = optarg; break;
		case OPT_CERT: opts->cert = optarg; break;
		case OPT_KEY: opts->key_file = optarg; break;
		case OPT_USER: opts->user = optarg; break;
		case OPT_PASSWORD_FILE: opts->password_file = optarg; break;
		default:
			return bad_option(c, argv);
		}
		if(r != GW_EXIT_OK)
		{
			return r;
		}
	}
	if(optind < argc)
	{
		char reason[4 * 100 + 64], shown[CLI_SHOWN_SIZE];

		snprintf(reason, sizeof(reason), "unexpected argument '%s' (options only)", cli_escape(shown, sizeof(shown), argv[optind]));
		return usage_error(reason, NULL, NULL);
	}
	return check_combinations(opts);
}
