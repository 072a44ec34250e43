/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: the cJSON helpers every parser of registry text shares
 * (etcd3-proto.c, shard-map.c). PURE: no I/O, no locks.
 */
#ifndef CLUSTER_JSON_H_
#define CLUSTER_JSON_H_ 1

#include <stddef.h>
#include <cjson/cJSON.h>

/* Non-zero if d is an integer that a double holds exactly (|d| < 2^53;
 * NaN and infinities fail). */
int cluster__json_exact_integer(double d);

/* Parse exactly one JSON document of len bytes: trailing bytes other than
 * white space make the text invalid (cJSON alone would ignore them).
 * NULL when invalid or out of memory; free with cJSON_Delete(). */
cJSON *cluster__json_parse_whole(const char *text, size_t len);

#endif /*!CLUSTER_JSON_H_*/
