/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-test: a demonstration client of libcluster. It uses nothing but
 * the public header; this private header only ties its own files together.
 */
#ifndef CLUSTER_TEST_H_
#define CLUSTER_TEST_H_ 1

#include <libcluster.h>

#include "cli-common.h"

#define CT_NAME        "cluster-test"
#define CT_DEFAULT_KEY "cluster-test"

/* Exit codes: success, a library call (or the system) failed, bad usage. */
#define CT_EXIT_OK    0
#define CT_EXIT_ERROR 1
#define CT_EXIT_USAGE CLI_EXIT_USAGE

/* Everything the command line asked for. A have_* flag is set only when the
 * option was given: an absent option leaves the library's default alone. */
struct ct_options
{
	int verbose;
	int fork;
	int passive;
	int list;
	int statuses;
	int advice;
	int json;
	const char *key;
	const char *env;
	const char *partition;
	const char *instance;
	const char *registry;
	const char *address;
	/* registry TLS files and login (--cacert, --cert, --key, --user,
	 * --password-file) */
	const char *cacert;
	const char *cert;
	const char *key_file;
	const char *user;
	const char *password_file;
	int workers;
	int have_workers;
	int index;
	int have_index;
	int total;
	int have_total;
	int ttl;
	int have_ttl;
	long long load;
	int have_load;
	long long capacity;
	int have_capacity;
	int shards;
	int have_shards;
	/* advisor tuning (--hold-down, --slow-start; ms) */
	int hold_down_ms;
	int have_hold_down;
	int slow_start_ms;
	int have_slow_start;
};

/* options.c */

/* Parse argv into *opts. Returns CT_EXIT_OK to carry on, -1 when -h
 * printed the usage (exit 0), or CT_EXIT_USAGE after printing the reason. */
int ct_parse_options(int argc, char **argv, struct ct_options *opts);
void ct_usage(void);

/* output.c */

/* Print "cluster-test: " + the formatted message + a newline to stderr
 * as one write. */
void ct_message(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* As ct_message() with ": <strerror(err)>" appended. */
void ct_failure(int err, const char *what);
void ct_logger(int priority, const char *format, va_list ap);
/* Pass the library's lines up to this syslog priority only (default:
 * all of them). */
void ct_set_log_ceiling(int priority);
/* -l: every member but this (passive) instance once on stdout, as a table
 * or (-J) as JSON lines. 0, or -1 after saying why. */
int ct_print_list(CLUSTER *cluster);
int ct_balancer(CLUSTER *cluster, CLUSTERSTATE *state);
void ct_advice(CLUSTER *cluster, const CLUSTERREDIRECT *redirects, size_t count);
/* Print the member table and the pick if the table differs from the last
 * one printed (or always when force is set). Returns 0, or -1 with errno
 * set when the library call failed. */
int ct_print_statuses(CLUSTER *cluster, int force);
/* -J: print events as JSON lines on stdout instead of text on stderr.
 * Called once, before any library thread exists. */
void ct_set_json(int on);
void ct_shards(CLUSTER *cluster, const CLUSTERSHARD *acquired, size_t n_acquired, const CLUSTERSHARD *released, size_t n_released);
void ct_output_cleanup(void);

#endif /*!CLUSTER_TEST_H_*/
