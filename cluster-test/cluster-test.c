/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-test: join a cluster with libcluster and sleep until SIGINT or
 * SIGTERM, printing every re-balance (and with -s every shard acquired or
 * released), then leave cleanly; the leave's releases are printed by the
 * shard callback during cluster_leave(). An ordinary client of
 * <libcluster.h>, meant as a demo and as the API's example.
 *
 * Signals: SIGINT and SIGTERM are blocked before any library thread
 * exists (threads inherit the mask) and are taken with sigtimedwait() in
 * the main thread, which then leaves the cluster. The handler installed
 * for them does nothing; it exists only so that an inherited "ignore"
 * disposition (a background job of a non-interactive shell ignores
 * SIGINT) cannot discard the signal.
 *
 * -F: library threads do not survive fork(), so the fork happens before
 * joining. The parent first checks the whole configuration on a scratch
 * handle (so a bad option still fails with exit 1 in the foreground),
 * forks, prints the child's PID and exits 0; the child builds its own
 * handle and joins.
 */
#include "cluster-test.h"

#include <errno.h>
#include <signal.h>
#include <syslog.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* How often -S looks for a changed member table, in seconds. */
#define STATUS_POLL_SECONDS 1

static void
ignore_signal(int sig)
{
	(void) sig;
}

/* Make SIGINT and SIGTERM pending-only: blocked (for every thread created
 * later) and never ignored, so the main thread can wait for them. */
static int
block_signals(sigset_t *set)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = ignore_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	if(sigprocmask(SIG_BLOCK, set, NULL) ||
		sigaction(SIGINT, &sa, NULL) ||
		sigaction(SIGTERM, &sa, NULL))
	{
		ct_failure(errno, "set up signal handling");
		return -1;
	}
	return 0;
}

/* Apply one setter's result: on failure say which step failed. The library
 * has already logged the precise reason through ct_logger(). */
static int
step(int result, const char *what)
{
	if(result)
	{
		ct_failure(errno, what);
		return -1;
	}
	return 0;
}

/* --hold-down, --slow-start: the library's advisor defaults with these
 * two changed (it checks their ranges). 0 or -1. */
static int
set_advisor_tuning(CLUSTER *c, const struct ct_options *o)
{
	CLUSTERADVISORCONFIG cfg;

	cluster_advisor_config_init(&cfg);
	if(o->have_hold_down)
	{
		cfg.hold_down_ms = o->hold_down_ms;
	}
	if(o->have_slow_start)
	{
		cfg.slow_start_ms = o->slow_start_ms;
	}
	return step(cluster_set_advisor_config(c, &cfg), "set the advisor tuning");
}

/* --user: log in with the first line of --password-file, or else
 * $CLUSTER_PASSWORD (ct_parse_options() has made sure one is given). */
static int
set_credentials(CLUSTER *c, const struct ct_options *o)
{
	char password[1024];
	int r;

	if(cli_read_password(CT_NAME, o->password_file, password, sizeof(password)))
	{
		return -1;
	}
	r = step(cluster_set_credentials(c, o->user, password), "set the registry credentials");
	/* the library keeps its own copy */
	memset(password, 0, sizeof(password));
	return r;
}

/* Create a handle configured as the options say. Returns NULL after
 * printing why. verbose is off for -F's scratch handle, whose setter echoes
 * would otherwise be printed twice. */
static CLUSTER *
setup(const struct ct_options *o, int verbose)
{
	CLUSTER *c;

	c = cluster_create(o->key);
	if(!c)
	{
		int err = errno;

		ct_failure(err, "create cluster connection");
		if(err == EINVAL)
		{
			/* no logger can be installed before the handle exists, so
			 * the library could not say this itself */
			char shown[4 * 60 + 4];

			ct_message("invalid cluster key '%s': a key is 1..%d characters from [A-Za-z0-9._-] and not \".\" or \"..\"",
				cli_escape(shown, sizeof(shown), o->key), CLUSTER_NAME_MAX);
		}
		return NULL;
	}
	cluster_set_logger(c, ct_logger);
	/* debug lines only with -v (the library sends a few without it);
	 * a listing is all -l prints: of the library's lines only warnings
	 * and errors, and no re-balance reports */
	ct_set_log_ceiling(verbose ? LOG_DEBUG : o->list ? LOG_WARNING :
													   LOG_INFO);
	if(!o->list)
	{
		cluster_set_balancer(c, ct_balancer);
	}
	if(verbose)
	{
		cluster_set_verbose(c, 1);
	}
	if((o->env && step(cluster_set_env(c, o->env), "set the cluster environment")) ||
		(o->partition && step(cluster_set_partition(c, o->partition), "set the cluster partition")) ||
		(o->instance && step(cluster_set_instance(c, o->instance), "set the instance id")) ||
		(o->have_workers && step(cluster_set_workers(c, o->workers), "set the worker count")) ||
		(o->registry && step(cluster_set_registry(c, o->registry), "set the registry URI")) ||
		(o->have_ttl && step(cluster_set_ttl(c, o->ttl), "set the lease TTL")) ||
		((o->cacert || o->cert) && step(cluster_set_tls(c, o->cacert, o->cert, o->key_file), "set the TLS files")) ||
		(o->user && set_credentials(c, o)) ||
		(o->have_index && step(cluster_static_set_index(c, o->index), "set the static index")) ||
		(o->have_total && step(cluster_static_set_total(c, o->total), "set the static total")) ||
		(o->have_shards && step(cluster_set_shards(c, o->shards), "set the shard count")) ||
		(o->have_shards && step(cluster_set_shard_callback(c, ct_shards), "install the shard callback")) ||
		(o->address && step(cluster_set_address(c, o->address), "set the published address")) ||
		((o->have_load || o->have_capacity) &&
			step(cluster_report(c, o->load, o->capacity), "report the load and capacity")) ||
		((o->have_hold_down || o->have_slow_start) && set_advisor_tuning(c, o)) ||
		(o->advice && step(cluster_set_advisor(c, ct_advice), "install the advice callback")))
	{
		cluster_destroy(c);
		return NULL;
	}
	return c;
}

/* -F: check the configuration, then fork. Returns in the child only. */
static int
fork_now(const struct ct_options *o)
{
	CLUSTER *scratch;
	pid_t pid;

	scratch = setup(o, 0);
	if(!scratch)
	{
		return -1;
	}
	cluster_destroy(scratch);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if(pid < 0)
	{
		ct_failure(errno, "fork child process");
		return -1;
	}
	if(pid > 0)
	{
		ct_message("forked child process %ld", (long) pid);
		exit(CT_EXIT_OK);
	}
	return 0;
}

/* Join and say where we stand, in the original's words. */
static int
join(CLUSTER *c, const struct ct_options *o)
{
	CLUSTERSTATE st;

	if(o->passive ? cluster_join_passive(c) : cluster_join(c))
	{
		int err = errno;

		ct_message("failed to join cluster: %s", cli_registry_cause(err));
		return -1;
	}
	if(step(cluster_state(c, &st), "obtain cluster state"))
	{
		return -1;
	}
	if(st.passive)
	{
		ct_message("passively-joined a cluster of %d worker%s", st.total, st.total == 1 ? "" : "s");
	}
	else if(st.workers == 1)
	{
		ct_message("actively-joined a cluster of %d worker%s (our node is worker #%d)", st.total, st.total == 1 ? "" : "s", st.index);
	}
	else
	{
		/* inclusive range: the original printed index + workers */
		ct_message("actively-joined a cluster of %d workers (our node is workers #%d-%d)", st.total, st.index, st.index + st.workers - 1);
	}
	return 0;
}

/* Sleep until SIGINT/SIGTERM, refreshing -S's table meanwhile. Returns 0
 * on a signal, -1 when the table could not be printed. */
static int
wait_for_signal(CLUSTER *c, const struct ct_options *o, const sigset_t *set)
{
	struct timespec poll = { STATUS_POLL_SECONDS, 0 };
	int sig;

	for(;;)
	{
		sig = o->statuses ? sigtimedwait(set, NULL, &poll) : sigwaitinfo(set, NULL);
		if(sig > 0)
		{
			ct_message("signal received, will terminate");
			return 0;
		}
		if(errno == EAGAIN)
		{
			if(ct_print_statuses(c, 0))
			{
				return -1;
			}
		}
		else if(errno != EINTR)
		{
			ct_failure(errno, "wait for a signal");
			return -1;
		}
	}
}

int
main(int argc, char **argv)
{
	struct ct_options opts;
	sigset_t set;
	CLUSTER *c;
	int r;

	r = ct_parse_options(argc, argv, &opts);
	if(r < 0)
	{
		return CT_EXIT_OK;
	}
	if(r)
	{
		return r;
	}
	if(opts.json)
	{
		ct_set_json(1);
	}
	if(block_signals(&set))
	{
		return CT_EXIT_ERROR;
	}
	if(opts.fork && fork_now(&opts))
	{
		return CT_EXIT_ERROR;
	}
	c = setup(&opts, opts.verbose);
	if(!c)
	{
		return CT_EXIT_ERROR;
	}
	if(opts.list)
	{
		CLUSTERADVISORCONFIG cfg;

		/* a passive watch that also reads statuses (the advisor's
		 * defaults ask for them): the join's answer is the listing */
		cluster_advisor_config_init(&cfg);
		if(cluster_set_advisor_config(c, &cfg))
		{
			ct_failure(errno, "ask for the members' statuses");
			cluster_destroy(c);
			return CT_EXIT_ERROR;
		}
		if(cluster_join_passive(c))
		{
			ct_message("failed to read the cluster: %s", cli_registry_cause(errno));
			cluster_destroy(c);
			return CT_EXIT_ERROR;
		}
		r = ct_print_list(c) ? CT_EXIT_ERROR : CT_EXIT_OK;
		cluster_destroy(c);
		ct_output_cleanup();
		return r;
	}
	if(join(c, &opts))
	{
		cluster_destroy(c);
		return CT_EXIT_ERROR;
	}
	r = CT_EXIT_OK;
	if(opts.statuses && ct_print_statuses(c, 1))
	{
		r = CT_EXIT_ERROR;
	}
	else
	{
		ct_message("cluster joined; sleeping until terminated");
		if(wait_for_signal(c, &opts, &set))
		{
			r = CT_EXIT_ERROR;
		}
	}
	ct_message("will now leave the cluster");
	if(cluster_leave(c))
	{
		ct_failure(errno, "leave cluster");
		r = CT_EXIT_ERROR;
	}
	else if(errno)
	{
		int cause = errno, ttl = cluster_ttl(c);

		/* left, but the registry could not be told: say so */
		ct_message("left; the registry was unreachable (%s), the registration expires within %d s", cli_registry_cause(cause), ttl);
	}
	else
	{
		ct_message("successfully left the cluster");
	}
	cluster_destroy(c);
	ct_output_cleanup();
	return r;
}
