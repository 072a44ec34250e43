/* SPDX-License-Identifier: Apache-2.0 */
/* etcd v2 engine: placeholder until the engine lands. */
#include "cluster-int.h"
#include <errno.h>

static int
etcd2_create(CLUSTER *cluster, const char *uri)
{
	(void) uri;
	cluster__log(cluster, LOG_ERR, "libcluster: etcd2: engine not built\n");
	return ENOSYS;
}

const cluster__engine cluster__engine_etcd2 = {
	"etcd2", etcd2_create, NULL, NULL, NULL, NULL, NULL
};
