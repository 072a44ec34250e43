// SPDX-License-Identifier: Apache-2.0
// The public header must compile alone as C++ and link with C linkage.
#include <libcluster.h>
#include <cstdio>

int
main()
{
	CLUSTER *c = cluster_create("headertest");
	int ok = c != 0 && cluster_destroy(c) == 0;
	std::printf("1..1\n%s 1 - libcluster.h compiles and links as C++\n", ok ? "ok" : "not ok");
	return ok ? 0 : 1;
}
