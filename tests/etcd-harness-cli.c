/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd-harness: the C test harness as a command, for shell tests and the
 * demo. "start DIR" leaves a private etcd running (its own session) and
 * prints its endpoint; later commands find it again through DIR and only
 * ever signal that PID.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcdharness.h"

static void
usage(FILE *f)
{
	fputs("Usage: etcd-harness COMMAND DIR [ARGS]\n"
		  "  available               exit 0 if etcd is installed, 77 if not (1 if\n"
		  "                          CLUSTER_REQUIRE_ETCD is set and it is not)\n"
		  "  pki DIR                 make a throw-away PKI in DIR (etcdharness.h)\n"
		  "  start DIR [FLAG...]     start etcd in DIR on free loopback ports; print\n"
		  "                          the endpoint; write DIR/etcd.pid, DIR/endpoint\n"
		  "                          (with --cert-file among the FLAGs: https://)\n"
		  "  stop DIR                SIGTERM (SIGKILL after a deadline) that etcd\n"
		  "  kill DIR                SIGKILL it\n"
		  "  restart DIR             start it again on the same ports and data\n"
		  "  pause DIR | resume DIR  SIGSTOP / SIGCONT\n"
		  "  endpoint DIR            print the endpoint\n"
		  "  compact DIR             compact at the current revision\n"
		  "  put DIR KEY VALUE       raw v3 put\n"
		  "  get DIR KEY             print the value (exit 1 if absent)\n"
		  "  count DIR PREFIX        print the number of keys under PREFIX\n"
		  "  metrics DIR             print /metrics\n"
		  "  log DIR [LINES]         print the tail of etcd's log\n"
		  "  auth DIR ROOTPW         create root and turn v3 auth on\n"
		  "  user DIR ROOTPW NAME PASSWORD PREFIX\n"
		  "                          add a user with readwrite on PREFIX only\n"
		  "The environment variable ETCDH_PKI=DIR makes the commands speak TLS with\n"
		  "that PKI's CA and client certificate.\n",
		f);
}

int
main(int argc, char **argv)
{
	const char *cmd, *dir;
	etcdh *h = NULL;
	char *text = NULL;
	int rc = 0;

	if(argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
	{
		usage(stdout);
		return 0;
	}
	if(argc >= 2 && !strcmp(argv[1], "available"))
	{
		if(etcdh_available())
		{
			return 0;
		}
		return etcdh_required() ? 1 : ETCDH_SKIP;
	}
	if(argc < 3)
	{
		usage(stderr);
		return 2;
	}
	cmd = argv[1];
	dir = argv[2];
	if(getenv("ETCDH_PKI") && *getenv("ETCDH_PKI"))
	{
		etcdh_use_pki(getenv("ETCDH_PKI"));
	}
	if(!strcmp(cmd, "pki"))
	{
		return etcdh_pki_make(dir) ? 1 : 0;
	}
	if(!strcmp(cmd, "start"))
	{
		rc = etcdh_start_opts(&h, dir, 1, (const char *const *) (argc > 3 ? argv + 3 : NULL));
		if(rc)
		{
			return rc == ETCDH_SKIP ? ETCDH_SKIP : 1;
		}
		printf("%s\n", etcdh_endpoint(h));
		etcdh_detach(h);
		return 0;
	}
	if(etcdh_attach(&h, dir))
	{
		return 1;
	}
	if(!strcmp(cmd, "stop"))
	{
		rc = etcdh_stop(h);
	}
	else if(!strcmp(cmd, "kill"))
	{
		rc = etcdh_kill(h);
	}
	else if(!strcmp(cmd, "restart"))
	{
		rc = etcdh_restart(h);
	}
	else if(!strcmp(cmd, "pause"))
	{
		rc = etcdh_pause(h);
	}
	else if(!strcmp(cmd, "resume"))
	{
		rc = etcdh_resume(h);
	}
	else if(!strcmp(cmd, "endpoint"))
	{
		printf("%s\n", etcdh_endpoint(h));
	}
	else if(!strcmp(cmd, "compact"))
	{
		rc = etcdh_compact(h);
	}
	else if(!strcmp(cmd, "put") && argc == 5)
	{
		rc = etcdh_put(h, argv[3], argv[4]);
	}
	else if(!strcmp(cmd, "get") && argc == 4)
	{
		rc = etcdh_get(h, argv[3], &text);
		if(rc == 1)
		{
			printf("%s\n", text);
		}
		rc = rc == 1 ? 0 : 1;
	}
	else if(!strcmp(cmd, "count") && argc == 4)
	{
		long long n = etcdh_count(h, argv[3]);

		if(n >= 0)
		{
			printf("%lld\n", n);
		}
		rc = n < 0;
	}
	else if(!strcmp(cmd, "metrics"))
	{
		rc = etcdh_metrics(h, &text);
		if(!rc)
		{
			fputs(text, stdout);
		}
	}
	else if(!strcmp(cmd, "auth") && argc == 4)
	{
		rc = etcdh_enable_auth(h, argv[3]);
	}
	else if(!strcmp(cmd, "user") && argc == 7)
	{
		rc = etcdh_add_user(h, argv[3], argv[4], argv[5], argv[6]);
	}
	else if(!strcmp(cmd, "log"))
	{
		etcdh_log_tail(h, stdout, argc > 3 ? atoi(argv[3]) : 30);
	}
	else
	{
		usage(stderr);
		etcdh_detach(h);
		return 2;
	}
	free(text);
	etcdh_detach(h);
	return rc ? 1 : 0;
}
