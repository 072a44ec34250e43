/* SPDX-License-Identifier: Apache-2.0 */
/* Connection-advisor public API: placeholder until the advisor lands. */
#include "cluster-int.h"
#include <errno.h>
#include <string.h>

int cluster_set_address(CLUSTER *c, const char *a) { (void) c; (void) a; errno = ENOSYS; return -1; }
int cluster_report(CLUSTER *c, long long l, long long cap) { (void) c; (void) l; (void) cap; errno = ENOSYS; return -1; }
void cluster_advisor_config_init(CLUSTERADVISORCONFIG *cfg) { memset(cfg, 0, sizeof(*cfg)); cfg->version = CLUSTER_ADVISOR_CONFIG_VERSION; }
int cluster_set_advisor_config(CLUSTER *c, const CLUSTERADVISORCONFIG *cfg) { (void) c; (void) cfg; errno = ENOSYS; return -1; }
int cluster_set_advisor(CLUSTER *c, CLUSTERADVICE cb) { (void) c; (void) cb; errno = ENOSYS; return -1; }
int cluster_pick_target(CLUSTER *c, CLUSTERMEMBER *t) { (void) c; (void) t; errno = ENOSYS; return -1; }
int cluster_advice(CLUSTER *c, CLUSTERREDIRECT **r, size_t *n) { (void) c; (void) r; (void) n; errno = ENOSYS; return -1; }
void cluster_redirects_free(CLUSTERREDIRECT *r) { (void) r; }
int cluster__advisor_start(CLUSTER *c) { (void) c; return 0; }
void cluster__advisor_stop(CLUSTER *c) { (void) c; }
void cluster__advisor_free(CLUSTER *c) { (void) c; }
