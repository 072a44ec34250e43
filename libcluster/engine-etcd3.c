/* SPDX-License-Identifier: Apache-2.0 */
/* etcd v3 engine: placeholder until the engine lands. */
#include "cluster-int.h"
#include <errno.h>

static int
etcd3_create(CLUSTER *cluster, const char *uri)
{
	(void) uri;
	cluster__log(cluster, LOG_ERR, "libcluster: etcd: engine not built\n");
	return ENOSYS;
}

const cluster__engine cluster__engine_etcd3 = {
	"etcd", etcd3_create, NULL, NULL, NULL, NULL, NULL
};
