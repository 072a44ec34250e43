/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the harness's three files share and nobody else sees: the etcd
 * handle and cluster structures, the limits, and the few internal calls
 * that cross files (complaints, naps, raw HTTP, v3 calls).
 * etcdharness.c supervises etcd processes, etcdclient.c talks to them,
 * etcdproxy.c stands between them and the library.
 */
#ifndef ETCDHARNESS_PRIVATE_H_
#define ETCDHARNESS_PRIVATE_H_ 1

#include <limits.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "etcdharness.h"

#define ETCDH_START_TRIES     5
#define ETCDH_HEALTH_SECONDS  15.0
#define ETCDH_STOP_SECONDS    10.0
#define ETCDH_HTTP_TIMEOUT_MS 3000L
#define ETCDH_MAX_EXTRA       16
#define ETCDH_CLUSTER_MAX     5
#define ETCDH_TOKEN_MAX       256

struct etcdh
{
	char dir[PATH_MAX]; /* working directory */
	int own_dir;        /* created by us: removed at destroy */
	char datadir[PATH_MAX + 16];
	char logpath[PATH_MAX + 16];
	char name[64]; /* member name, unique per start */
	char endpoint[64];
	char base[64]; /* endpoint without the trailing slash */
	int client_port;
	int peer_port;
	pid_t pid;    /* 0: not running */
	int is_child; /* we can waitpid() it */
	int detached;
	int paused;
	int tls; /* clients speak https:// ("--cert-file" among the extra flags) */
	char *extra[ETCDH_MAX_EXTRA + 1];
	/* --initial-cluster: this member alone, or every member of its cluster */
	char initial_cluster[ETCDH_CLUSTER_MAX * 96];
	etcdh_cluster *cluster;      /* the cluster this member belongs to, or NULL */
	char *root_password;         /* auth on: requests authenticate as root */
	char token[ETCDH_TOKEN_MAX]; /* root's token ("" none yet) */
};

struct etcdh_cluster
{
	char dir[PATH_MAX]; /* temporary directory: one subdirectory per member */
	int n;
	etcdh *m[ETCDH_CLUSTER_MAX];
	char endpoints[ETCDH_CLUSTER_MAX * 32];
};

/* Print "etcd-harness: <message>" to stderr. */
void etcdh__err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sleep ms milliseconds, resuming after signals. */
void etcdh__nap(long ms);

/* One HTTP request (POST body, or GET when NULL) to base + path; the HTTP
 * status, 0 on a transport error; the reply body in *out (malloc'd). */
long etcdh__http(const char *base, const char *path, const char *body, long timeout_ms, const char *token, char **out);

/* POST a v3 call (as root when auth is on); the parsed reply or NULL. */
cJSON *etcdh__call(etcdh *h, const char *path, const char *body);

#endif /*!ETCDHARNESS_PRIVATE_H_*/
