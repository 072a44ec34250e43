/* SPDX-License-Identifier: Apache-2.0 */
/* The public header must compile alone under strict C99 (see mk/core.mk). */
#include <libcluster.h>
#include <stdio.h>

static int
on_balance(CLUSTER *cluster, CLUSTERSTATE *state)
{
	(void) cluster;
	(void) state;
	return 0;
}

int
main(void)
{
	CLUSTERSTATE st;
	CLUSTERMEMBER m;
	CLUSTERREDIRECT r;
	CLUSTERADVISORCONFIG cfg;
	CLUSTERBALANCE cb = on_balance;

	(void) st;
	(void) m;
	(void) r;
	(void) cb;
	cluster_advisor_config_init(&cfg);
	printf("1..1\nok 1 - libcluster.h compiles alone as C99 (version %s)\n", cluster_version());
	return 0;
}
