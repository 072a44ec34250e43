/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-test: the command line. Only the shape of the arguments is
 * checked here (a number where a number is needed); every value is passed
 * to libcluster, which owns the rules and names the offending field.
 */
#include "cluster-test.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CT_STR_(x) #x
#define CT_STR(x)  CT_STR_(x)
/* "1000000": for the usage text and the -s message */
#define CT_SHARDS_MAX_TEXT CT_STR(CLUSTER_SHARDS_MAX)

static const char usage_text[] =
	"Usage: " CT_NAME " [OPTIONS]\n"
	"\n"
	"Join a cluster through libcluster, print every re-balance, and stay a\n"
	"member until SIGINT or SIGTERM, then leave cleanly. " CT_NAME " does no\n"
	"work itself; it shows what a clustered service would see.\n"
	"\n"
	"OPTIONS are one or more of:\n"
	"  -h, --help      Print this message and exit\n"
	"  -V, --version   Print libcluster's version and exit\n"
	"  -v              Be more verbose (library debug logging)\n"
	"  -F              Fork: check the options, fork, print the child's PID\n"
	"                  and exit 0; the child joins and carries on\n"
	"  -k KEY          Set the cluster key to KEY (default: " CT_DEFAULT_KEY ")\n"
	"  -e ENV          Set the cluster environment to ENV (default: production)\n"
	"  -p NAME         Set the cluster partition to NAME (default: none)\n"
	"  -i ID           Set the instance identifier to ID (default: random)\n"
	"  -n COUNT        Set the number of workers to COUNT (1..65535, default 1)\n"
	"  -P              Join passively: watch the cluster, take no worker index\n"
	"  -l              List the cluster's members once (id, workers, first\n"
	"                  index, address, load, capacity) on stdout and exit;\n"
	"                  with -J one JSON object per member per line.\n"
	"                  Registers nothing (a passive watch)\n"
	"  -J              Print events as JSON, one object per line on stdout\n"
	"                  (rebalance, acquire, release, status, advice) instead\n"
	"                  of text on stderr; messages stay on stderr\n"
	" Shard ownership:\n"
	"  -s SHARDS       Divide the work into SHARDS shards (1.." CT_SHARDS_MAX_TEXT ") and\n"
	"                  print every shard this instance acquires or releases\n"
	" Registry (etcd) clustering:\n"
	"  -r URI          Set the cluster registry URI: http://HOST:PORT/ or\n"
	"                  https://..., several separated by commas (etcd v3),\n"
	"                  or etcd2+http://HOST:PORT/ (the original's v2 layout)\n"
	"  -t TTL          Set the registration lease to TTL seconds (2..3600,\n"
	"                  default 5)\n"
	"  --cacert FILE   Verify the registry's certificate with this CA (PEM;\n"
	"                  default: the system's CAs)\n"
	"  --cert FILE     Present this client certificate (PEM) to the registry\n"
	"  --key FILE      ... with this private key (PEM); both or neither\n"
	"  --user NAME     Log in to etcd as NAME; the password is the first line\n"
	"                  of --password-file FILE, or else the environment\n"
	"                  variable CLUSTER_PASSWORD (never an argument: others\n"
	"                  can read the command line)\n"
	" Static clustering (when -r is not given):\n"
	"  -I INDEX        Set this instance's first worker index (default 0)\n"
	"  -T COUNT        Set the cluster's total worker count (>= 1, default 1)\n"
	" Connection advisor:\n"
	"  -A ADDRESS      Publish ADDRESS (e.g. ws://host:port) for clients\n"
	"  -L LOAD         Report LOAD current connections (>= 0, default 0)\n"
	"  -C CAPACITY     Report CAPACITY connections at most (-1: unbounded,\n"
	"                  the default; 0: draining, send no new clients here)\n"
	"  -S              Print every member's status and the member a new client\n"
	"                  would be sent to, at join and whenever they change\n"
	"  -a              Print the connection advice of each advice round\n"
	"  --hold-down MS  Take a member that joined less than MS ago as this\n"
	"                  instance saw it into no plan or pick yet (default\n"
	"                  15000; 0: off)\n"
	"  --slow-start MS Then fill it from 1/16 of its share to all of it over\n"
	"                  MS (default 30000; 0: at once)\n"
	"\n"
	"Every value is checked by libcluster: names are 1..128 characters from\n"
	"[A-Za-z0-9._-] and not \".\" or \"..\". An option that is not given keeps\n"
	"the library's default; an option that is given is always applied, so\n"
	"-T 0 is refused (the original read 0 as \"not set\").\n"
	"\n"
	"Exit status: 0 success (including a clean leave after SIGINT/SIGTERM),\n"
	"1 a libcluster call or the system failed (the reason is printed),\n"
	"2 bad usage (unknown option, missing argument, not a number, a shard\n"
	"count out of range).\n"
	"\n"
	"Examples:\n"
	"  " CT_NAME " -i node1 -n 2 -r http://127.0.0.1:2379/\n"
	"  " CT_NAME " -i node1 -n 2 -I 0 -T 7        (static, workers #0-1 of 7)\n"
	"  " CT_NAME " -r http://127.0.0.1:2379/ -A ws://10.0.0.1:80 -L 9 -C 10 -S -a\n"
	"  " CT_NAME " -r https://etcd1:2379/,https://etcd2:2379/ --cacert ca.pem \\\n"
	"      --cert me.pem --key me-key.pem --user app --password-file app.pw\n"
	"  " CT_NAME " -s 10 -I 0 -T 2 -J             (static, shards 0-4 of 10, JSON)\n";

void
ct_usage(void)
{
	fputs(usage_text, stdout);
}

/* One line saying what is wrong, then where to look: a usage error.
 * opt names the option ("-n", "--cacert"), or is NULL. */
static int
usage_error(const char *reason, const char *opt, const char *arg)
{
	return cli_usage_error(CT_NAME, "-h", reason, opt, arg);
}

/* Long options without a short form: their getopt codes. */
enum
{
	OPT_CACERT = 256,
	OPT_CERT,
	OPT_KEY,
	OPT_USER,
	OPT_PASSWORD_FILE,
	OPT_HOLD_DOWN,
	OPT_SLOW_START
};

static const struct option long_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ "cacert", required_argument, NULL, OPT_CACERT },
	{ "cert", required_argument, NULL, OPT_CERT },
	{ "key", required_argument, NULL, OPT_KEY },
	{ "user", required_argument, NULL, OPT_USER },
	{ "password-file", required_argument, NULL, OPT_PASSWORD_FILE },
	{ "hold-down", required_argument, NULL, OPT_HOLD_DOWN },
	{ "slow-start", required_argument, NULL, OPT_SLOW_START },
	{ NULL, 0, NULL, 0 },
};

/* The option a getopt code stands for, as the user wrote it ("-n",
 * "--cacert"), for messages. */
static const char *
option_name(int opt)
{
	return cli_option_name(long_options, opt);
}

/* Return value: the option's meaning, for messages that name the field. */
static const char *
number_field(int opt)
{
	switch(opt)
	{
	case 'n':
		return "worker count";
	case 'I':
		return "static index";
	case 'T':
		return "static total";
	case 't':
		return "lease TTL";
	case 'L':
		return "load";
	case 'C':
		return "capacity";
	case OPT_HOLD_DOWN:
		return "hold-down";
	case OPT_SLOW_START:
		return "slow start";
	}
	return "value";
}

/* Parse a numeric option into an int or long long slot. */
static int
number_option(int opt, const char *arg, int *int_out, long long *ll_out, int *have)
{
	long long v;
	char reason[96];

	if(cli_parse_number(arg, int_out ? INT_MIN : LLONG_MIN, int_out ? INT_MAX : LLONG_MAX, &v))
	{
		snprintf(reason, sizeof(reason), "the %s must be a whole number in range", number_field(opt));
		return usage_error(reason, option_name(opt), arg);
	}
	if(int_out)
	{
		*int_out = (int) v;
	}
	else
	{
		*ll_out = v;
	}
	*have = 1;
	return CT_EXIT_OK;
}

/* -s: unlike the other numbers, the range is checked here. The library
 * reads 0 as "shard ownership off", but -s means "join with S shards", so
 * -s 0 must be refused before it reaches the library; the upper bound is
 * checked with it, so that every bad -s is the same usage error. */
static int
shards_option(const char *arg, struct ct_options *opts)
{
	long long v;

	if(cli_parse_number(arg, 1, CLUSTER_SHARDS_MAX, &v))
	{
		return usage_error("the shard count must be a whole number from 1 to " CT_SHARDS_MAX_TEXT, "-s", arg);
	}
	opts->shards = (int) v;
	opts->have_shards = 1;
	return CT_EXIT_OK;
}

/* After the loop: options that only make sense together. */
static int
check_combinations(struct ct_options *opts)
{
	if(!!opts->cert != !!opts->key_file)
	{
		return usage_error("--cert and --key go together (a client certificate and its private key)", NULL, NULL);
	}
	if(opts->list && (opts->fork || opts->have_shards || opts->statuses || opts->advice || opts->address || opts->have_load ||
						 opts->have_capacity || opts->have_workers || opts->have_index || opts->have_total))
	{
		return usage_error("-l lists the members once and exits: it takes no -F, -s, -S, -a, -A, -L, -C, -n, -I or -T", NULL, NULL);
	}
	if(opts->list)
	{
		/* a listing only watches: it takes no worker index */
		opts->passive = 1;
	}
	if(opts->password_file && !opts->user)
	{
		return usage_error("--password-file needs --user", NULL, NULL);
	}
	if(opts->user && !opts->password_file && !(getenv("CLUSTER_PASSWORD") && *getenv("CLUSTER_PASSWORD")))
	{
		return usage_error("--user needs a password: --password-file FILE, or the environment variable CLUSTER_PASSWORD", NULL,
			NULL);
	}
	return CT_EXIT_OK;
}

int
ct_parse_options(int argc, char **argv, struct ct_options *opts)
{
	int c, r;

	memset(opts, 0, sizeof(*opts));
	opts->key = CT_DEFAULT_KEY;
	opts->capacity = CLUSTER_CAPACITY_UNBOUNDED;
	/* leading ':' = report a missing argument apart from an unknown option;
	 * opterr = 0 = our messages, not getopt's */
	opterr = 0;
	while((c = getopt_long(argc, argv, ":hVvFk:e:p:i:n:r:PlI:T:t:A:L:C:SaJs:", long_options, NULL)) != -1)
	{
		r = CT_EXIT_OK;
		switch(c)
		{
		case 'h':
			ct_usage();
			return -1;
		case 'V':
			printf(CT_NAME " (libcluster %s)\n", cluster_version());
			return -1;
		case 'v':
			opts->verbose = 1;
			break;
		case 'F':
			opts->fork = 1;
			break;
		case 'k':
			opts->key = optarg;
			break;
		case 'e':
			opts->env = optarg;
			break;
		case 'p':
			opts->partition = optarg;
			break;
		case 'i':
			opts->instance = optarg;
			break;
		case 'n':
			r = number_option(c, optarg, &opts->workers, NULL, &opts->have_workers);
			break;
		case 'r':
			opts->registry = optarg;
			break;
		case 'P':
			opts->passive = 1;
			break;
		case 'l':
			opts->list = 1;
			break;
		case 'I':
			r = number_option(c, optarg, &opts->index, NULL, &opts->have_index);
			break;
		case 'T':
			r = number_option(c, optarg, &opts->total, NULL, &opts->have_total);
			break;
		case 't':
			r = number_option(c, optarg, &opts->ttl, NULL, &opts->have_ttl);
			break;
		case 'A':
			opts->address = optarg;
			break;
		case 'L':
			r = number_option(c, optarg, NULL, &opts->load, &opts->have_load);
			break;
		case 'C':
			r = number_option(c, optarg, NULL, &opts->capacity, &opts->have_capacity);
			break;
		case 'S':
			opts->statuses = 1;
			break;
		case 'a':
			opts->advice = 1;
			break;
		case 'J':
			opts->json = 1;
			break;
		case 's':
			r = shards_option(optarg, opts);
			break;
		case OPT_CACERT:
			opts->cacert = optarg;
			break;
		case OPT_CERT:
			opts->cert = optarg;
			break;
		case OPT_KEY:
			opts->key_file = optarg;
			break;
		case OPT_USER:
			opts->user = optarg;
			break;
		case OPT_PASSWORD_FILE:
			opts->password_file = optarg;
			break;
		case OPT_HOLD_DOWN:
			r = number_option(c, optarg, &opts->hold_down_ms, NULL, &opts->have_hold_down);
			break;
		case OPT_SLOW_START:
			r = number_option(c, optarg, &opts->slow_start_ms, NULL, &opts->have_slow_start);
			break;
		case ':':
			if(optopt)
			{
				return usage_error("missing argument", option_name(optopt), NULL);
			}
			return usage_error("missing argument", argv[optind - 1], NULL);
		default:
			if(optopt > 32 && optopt < 127)
			{
				return usage_error("unknown option", option_name(optopt), NULL);
			}
			else
			{
				/* an unknown long option: getopt leaves its text in argv */
				char reason[4 * 100 + 64], shown[CLI_SHOWN_SIZE];

				snprintf(reason, sizeof(reason), "unknown option '%s'", cli_escape(shown, sizeof(shown), argv[optind - 1]));
				return usage_error(reason, NULL, NULL);
			}
		}
		if(r != CT_EXIT_OK)
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
