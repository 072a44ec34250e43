/* SPDX-License-Identifier: Apache-2.0 */
/* A program built only from the installed header and pkg-config flags
 * (make installcheck): proves the .pc file and the install layout. */
#include <libcluster.h>
#include <stdio.h>

int
main(void)
{
	CLUSTER *c = cluster_create("consumer");

	if(!c || cluster_join(c) || cluster_total(c) != 1)
	{
		fprintf(stderr, "consumer: static join failed\n");
		return 1;
	}
	printf("consumer: libcluster %s, index %d of %d\n", cluster_version(), cluster_index(c, 0), cluster_total(c));
	return cluster_destroy(c);
}
