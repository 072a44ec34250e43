/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the two programs on the library (cluster-test and cluster-gateway)
 * do alike on their command line and in their messages: quoting untrusted
 * text, reading numbers and the registry password, usage errors and the
 * library's log lines. Not part of the library: both programs compile it.
 * Every message starts with the program's name, passed in.
 */
#ifndef CLI_COMMON_H_
#define CLI_COMMON_H_ 1

#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>

/* Exit status for bad usage, as both programs document it. */
#define CLI_EXIT_USAGE 2

/* Room for a quoted value of up to 100 input bytes (each may become
 * \xHH) and its "...". */
#define CLI_SHOWN_SIZE (4 * 100 + 4)

/* Quote untrusted text (an option value, a request path) for a message by
 * libcluster's rule: printable ASCII but the backslash as is, every other
 * byte as \xHH, cut with "..." after a whole escape when out is too small;
 * always NUL-terminated (outsz > 0). Returns out. */
const char *cli_escape(char *out, size_t outsz, const char *in);

/* A whole decimal number (optional sign, nothing around it) within
 * [min, max] into *out. 0, or -1 with *out untouched. */
int cli_parse_number(const char *arg, long long min, long long max, long long *out);

/* How the user wrote the option a getopt code stands for ("-n",
 * "--cacert"), for messages; codes >= 256 are looked up in long_options.
 * The text lives in a static buffer: main thread only. */
const char *cli_option_name(const struct option *long_options, int opt);

/* Print "PROG: option OPT: REASON, not 'ARG'" (the parts that are not
 * NULL) and "Try 'PROG HELP' for more information." to stderr. Returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const char *prog, const char *help, const char *reason, const char *opt, const char *arg);

/* The registry password: the first line of password_file, or else
 * $CLUSTER_PASSWORD when password_file is NULL. Never from argv: any user
 * can read another's command line. 0, or -1 after printing
 * "PROG: <why>" to stderr. */
int cli_read_password(const char *prog, const char *password_file, char *out, size_t size);

/* Write one library log line to stderr as "libcluster<PRIO>: message"
 * (the library's own "libcluster: " opening is not repeated), with a
 * single stdio call so that lines from several threads never interleave;
 * a message longer than the stack buffer is not cut. */
void cli_library_line(int priority, const char *format, va_list ap);

/* Why a registry call failed, for people: the cause that errno value
 * stands for in libcluster's join and leave (the name did not resolve,
 * refused, timed out, TLS, credentials, permission...), else
 * strerror(err). */
const char *cli_registry_cause(int err);

#endif /*!CLI_COMMON_H_*/
