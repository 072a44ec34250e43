/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Public API: validation (EINVAL names the field and changes nothing),
 * errno on every failure, the original's defects fixed, EPERM while
 * joined, EDEADLK from callbacks; the NULL-handle table, cluster_errmsg(),
 * userdata and the extended logger, the copy-out getters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "testutil.h"

static const char *bad_names[] = {
	"",
	".",
	"..",
	"a/b",
	"a b",
	"x?y",
	"h#1",
	"p%41",
	"../evil",
	"caf\xc3\xa9",
	"tab\there",
	"new\nline",
};

static void
test_create_validates_key(void **state)
{
	char big[CLUSTER_NAME_MAX + 2];
	size_t i;

	(void) state;
	errno = 0;
	assert_null(cluster_create(NULL));
	assert_int_equal(errno, EINVAL);
	for(i = 0; i < sizeof(bad_names) / sizeof(*bad_names); i++)
	{
		errno = 0;
		assert_null(cluster_create(bad_names[i]));
		assert_int_equal(errno, EINVAL);
	}
	memset(big, 'k', sizeof(big));
	big[CLUSTER_NAME_MAX + 1] = 0;
	errno = 0;
	assert_null(cluster_create(big));
	assert_int_equal(errno, EINVAL);
	big[CLUSTER_NAME_MAX] = 0;
	CLUSTER *c = cluster_create(big);
	assert_non_null(c);
	assert_string_equal(cluster_key(c), big);
	cluster_destroy(c);
}

static void
test_defaults(void **state)
{
	CLUSTER *c = tu_cluster("app");
	CLUSTERSTATE st;
	size_t i;

	(void) state;
	assert_string_equal(cluster_key(c), "app");
	assert_string_equal(cluster_env(c), "production");
	errno = EIO;
	assert_null(cluster_partition(c));
	assert_int_equal(errno, 0);
	assert_int_equal(strlen(cluster_instance(c)), 32);
	for(i = 0; i < 32; i++)
	{
		assert_non_null(strchr("0123456789abcdef", cluster_instance(c)[i]));
	}
	assert_int_equal(cluster_workers(c), 1);
	assert_int_equal(cluster_ttl(c), CLUSTER_TTL_DEFAULT);
	assert_int_equal(cluster_state(c, &st), 0);
	assert_int_equal(st.index, -1);
	assert_int_equal(st.total, 0);
	assert_int_equal(st.workers, 1);
	assert_int_equal(st.passive, 0);
	assert_string_equal(cluster_version(), PACKAGE_VERSION);
	{
		char hv[32];

		/* the header's version macros agree with the package */
		snprintf(hv, sizeof(hv), "%d.%d.%d", CLUSTER_VERSION_MAJOR, CLUSTER_VERSION_MINOR, CLUSTER_VERSION_PATCH);
		assert_string_equal(hv, PACKAGE_VERSION);
	}
	cluster_destroy(c);
	assert_int_equal(cluster_destroy(NULL), 0);
}

/* Every name setter: each bad value -> EINVAL, a logged reason naming the
 * field, and the old value kept. */
static void
test_name_setters_validate(void **state)
{
	CLUSTER *c = tu_cluster("app");
	char big[CLUSTER_NAME_MAX + 2];
	size_t i;

	(void) state;
	assert_int_equal(cluster_set_env(c, "dev"), 0);
	assert_int_equal(cluster_set_instance(c, "node1"), 0);
	assert_int_equal(cluster_set_partition(c, "blue"), 0);
	for(i = 0; i < sizeof(bad_names) / sizeof(*bad_names); i++)
	{
		tu_log_clear();
		errno = 0;
		assert_int_equal(cluster_set_env(c, bad_names[i]), -1);
		assert_int_equal(errno, EINVAL);
		assert_true(tu_logged("environment"));
		errno = 0;
		assert_int_equal(cluster_set_instance(c, bad_names[i]), -1);
		assert_int_equal(errno, EINVAL);
		assert_true(tu_logged("instance id"));
		errno = 0;
		assert_int_equal(cluster_set_partition(c, bad_names[i]), -1);
		assert_int_equal(errno, EINVAL);
		assert_true(tu_logged("partition"));
	}
	memset(big, 'x', sizeof(big));
	big[CLUSTER_NAME_MAX + 1] = 0;
	tu_log_clear();
	assert_int_equal(cluster_set_instance(c, big), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("1 to 128 bytes"));
	errno = 0;
	assert_int_equal(cluster_set_instance(c, NULL), -1);
	assert_int_equal(errno, EINVAL);
	/* nothing changed */
	assert_string_equal(cluster_env(c), "dev");
	assert_string_equal(cluster_instance(c), "node1");
	assert_string_equal(cluster_partition(c), "blue");
	/* NULL restores defaults where that has a meaning */
	assert_int_equal(cluster_set_env(c, NULL), 0);
	assert_string_equal(cluster_env(c), "production");
	assert_int_equal(cluster_set_partition(c, NULL), 0);
	assert_null(cluster_partition(c));
	/* the whole alphabet is accepted */
	assert_int_equal(cluster_set_instance(c, "Az09._-"), 0);
	assert_int_equal(cluster_set_instance(c, "..."), 0);
	cluster_destroy(c);
}

static void
test_workers_validate(void **state)
{
	CLUSTER *c = tu_cluster("app");
	int bad[] = { 0, -1, -3, CLUSTER_WORKERS_MAX + 1, 1 << 30 };
	size_t i;

	(void) state;
	assert_int_equal(cluster_set_workers(c, 4), 0);
	for(i = 0; i < sizeof(bad) / sizeof(*bad); i++)
	{
		tu_log_clear();
		errno = 0;
		assert_int_equal(cluster_set_workers(c, bad[i]), -1);
		assert_int_equal(errno, EINVAL);
		assert_true(tu_logged("worker count"));
		assert_int_equal(cluster_workers(c), 4);
	}
	assert_int_equal(cluster_set_threads(c, CLUSTER_WORKERS_MAX), 0);
	assert_int_equal(cluster_workers(c), CLUSTER_WORKERS_MAX);
	assert_int_equal(cluster_set_threads(c, 0), -1);
	assert_int_equal(errno, EINVAL);
	cluster_destroy(c);
}

static void
test_ttl_tls_credentials(void **state)
{
	CLUSTER *c = tu_cluster("app");

	(void) state;
	assert_int_equal(cluster_set_ttl(c, 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("TTL 1 is invalid"));
	assert_int_equal(cluster_set_ttl(c, CLUSTER_TTL_MAX + 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_ttl(c), CLUSTER_TTL_DEFAULT);
	assert_int_equal(cluster_set_ttl(c, 2), 0);
	assert_int_equal(cluster_ttl(c), 2);

	assert_int_equal(cluster_set_tls(c, "", NULL, NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("TLS CA file"));
	assert_int_equal(cluster_set_tls(c, NULL, "cert.pem", NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_set_tls(c, "ca.pem", "cert.pem", "key.pem"), 0);
	assert_int_equal(cluster_set_tls(c, NULL, NULL, NULL), 0);

	assert_int_equal(cluster_set_credentials(c, "user", NULL), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_set_credentials(c, "us:er", "pw"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_set_credentials(c, "user", "pw"), 0);
	assert_int_equal(cluster_set_credentials(c, NULL, NULL), 0);
	cluster_destroy(c);
}

/* The original double-freed after cluster_set_registry(NULL); and any
 * unknown scheme must leave the previous engine in place. */
static void
test_registry(void **state)
{
	CLUSTER *c = tu_cluster("app");
	const char *bad[] = { "", "ftp://x/", "https//broken", "sqlite:///tmp/x", "HTTP", "etcd2+ftp://x" };
	size_t i;

	(void) state;
	assert_int_equal(cluster_set_registry(c, NULL), 0);
	assert_int_equal(cluster_set_registry(c, NULL), 0);
	for(i = 0; i < sizeof(bad) / sizeof(*bad); i++)
	{
		tu_log_clear();
		errno = 0;
		assert_int_equal(cluster_set_registry(c, bad[i]), -1);
		assert_int_equal(errno, EINVAL);
		assert_true(tu_logged("registry"));
	}
	/* still static: joining works with no network */
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(cluster_total(c), 1);
	assert_int_equal(cluster_leave(c), 0);
	assert_int_equal(cluster_set_registry(c, NULL), 0);
	/* schemes are case-insensitive (HTTP:// was once refused) */
	assert_int_equal(cluster_set_registry(c, "HTTP://127.0.0.1:1/"), 0);
	assert_int_equal(cluster_set_registry(c, "Https://a:1,hTTp://b:2"), 0);
	assert_int_equal(cluster_set_registry(c, "ETCD2+HTTP://127.0.0.1:1/"), 0);
	/* credentials in the URI: refused, named, and never logged */
	tu_log_clear();
	assert_int_equal(cluster_set_registry(c, "http://root:s3cret@127.0.0.1:2379/"), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("<http://***@127.0.0.1:2379/>: a user name or password in the registry URI is not allowed"));
	pthread_mutex_lock(&tu_lock);
	assert_null(strstr(tu_log, "s3cret"));
	pthread_mutex_unlock(&tu_lock);
	assert_null(strstr(cluster_errmsg(c), "s3cret"));
	assert_int_equal(cluster_set_registry(c, NULL), 0);
	cluster_destroy(c);
}

static void
test_static_setters_validate(void **state)
{
	CLUSTER *c = tu_cluster("app");

	(void) state;
	assert_int_equal(cluster_static_set_index(c, -1), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("base index -1 is invalid"));
	assert_int_equal(cluster_static_set_total(c, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("total 0 is invalid"));
	assert_int_equal(cluster_static_set_total(c, -5), -1);
	assert_int_equal(errno, EINVAL);
	cluster_destroy(c);
}

/* Once joined, configuration is frozen (EPERM), including the
 * instance id reset the original allowed. */
static void
test_eperm_while_joined(void **state)
{
	CLUSTER *c = tu_cluster("app");
	char before[CLUSTER_NAME_MAX + 1];

	(void) state;
	assert_int_equal(cluster_join(c), 0);
	snprintf(before, sizeof(before), "%s", cluster_instance(c));
	assert_int_equal(cluster_reset_instance(c), -1);
	assert_int_equal(errno, EPERM);
	assert_string_equal(cluster_instance(c), before);
	assert_int_equal(cluster_set_instance(c, "x"), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_set_env(c, "x"), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_set_partition(c, "x"), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_set_registry(c, NULL), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_set_ttl(c, 10), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_static_set_index(c, 0), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_static_set_total(c, 3), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_set_tls(c, NULL, NULL, NULL), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_set_credentials(c, NULL, NULL), -1);
	assert_int_equal(errno, EPERM);
	assert_true(tu_logged("while joined"));
	/* joining twice is fine */
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(cluster_leave(c), 0);
	assert_int_equal(cluster_leave(c), 0);
	/* after leaving, configuration may change again */
	assert_int_equal(cluster_reset_instance(c), 0);
	assert_string_not_equal(cluster_instance(c), before);
	cluster_destroy(c);
}

static void
test_getters_not_joined(void **state)
{
	CLUSTER *c = tu_cluster("app");
	CLUSTERMEMBER *m = (CLUSTERMEMBER *) 1;
	size_t n = 99;

	(void) state;
	errno = 0;
	assert_int_equal(cluster_index(c, 0), -1);
	assert_int_equal(errno, EPERM);
	errno = 0;
	assert_int_equal(cluster_total(c), 0);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_members(c, &m, &n), -1);
	assert_int_equal(errno, EPERM);
	assert_null(m);
	assert_int_equal(n, 0);
	assert_int_equal(cluster_members(c, NULL, &n), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_state(c, NULL), -1);
	assert_int_equal(errno, EINVAL);
	cluster_destroy(c);
}

static void
test_index_range(void **state)
{
	CLUSTER *c = tu_cluster("app");

	(void) state;
	cluster_set_workers(c, 3);
	cluster_static_set_index(c, 4);
	cluster_static_set_total(c, 10);
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(cluster_index(c, 0), 4);
	assert_int_equal(cluster_index(c, 2), 6);
	errno = 0;
	assert_int_equal(cluster_index(c, 3), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_index(c, -1), -1);
	assert_int_equal(errno, EINVAL);
	cluster_destroy(c);
}

/* Control calls from inside a callback would wait for their own thread. */
static CLUSTER *deadlock_target;
static int deadlock_errors[4];

static int
deadlock_balancer(CLUSTER *cluster, CLUSTERSTATE *st)
{
	(void) st;
	if(cluster != deadlock_target || deadlock_errors[0])
	{
		return 0;
	}
	deadlock_errors[0] = cluster_leave(cluster) == -1 ? errno : 0;
	deadlock_errors[1] = cluster_destroy(cluster) == -1 ? errno : 0;
	deadlock_errors[2] = cluster_set_workers(cluster, 2) == -1 ? errno : 0;
	/* getters are fine, and see the state being reported */
	deadlock_errors[3] = cluster_index(cluster, 0);
	return 0;
}

static void
test_edeadlk_from_callback(void **state)
{
	CLUSTER *c = tu_cluster("app");

	(void) state;
	deadlock_target = c;
	cluster_static_set_index(c, 1);
	cluster_static_set_total(c, 2);
	cluster_set_balancer(c, deadlock_balancer);
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(deadlock_errors[0], EDEADLK);
	assert_int_equal(deadlock_errors[1], EDEADLK);
	assert_int_equal(deadlock_errors[2], EDEADLK);
	assert_int_equal(deadlock_errors[3], 1);
	assert_int_equal(cluster_workers(c), 1);
	cluster_destroy(c);
}

/* Without a logger only LOG_CRIT and worse reach stderr; with one,
 * everything goes through it. */
static void
test_logger_priorities(void **state)
{
	CLUSTER *c = cluster_create("app");

	(void) state;
	tu_reset();
	cluster_set_workers(c, 0); /* LOG_ERR: dropped without a logger */
	assert_int_equal(tu_log_len, 0);
	cluster_set_logger(c, tu_logger);
	cluster_set_workers(c, 0);
	assert_true(tu_logged("<3>libcluster: worker count 0 is invalid"));
	cluster_set_logger(c, NULL);
	tu_log_clear();
	cluster_set_workers(c, 0);
	assert_int_equal(tu_log_len, 0);
	cluster_destroy(c);
}

/* ---- messages that quote input ------------------------------------------- */

#define CAPTURE_MAX 16

static char captured[CAPTURE_MAX][1024];
static size_t n_captured;

/* Keep each formatted message apart, to check it byte by byte. */
static void
capture_logger(int priority, const char *format, va_list ap)
{
	(void) priority;
	if(n_captured < CAPTURE_MAX)
	{
		vsnprintf(captured[n_captured++], sizeof(captured[0]), format, ap);
	}
}

/* One line of printable ASCII: no byte below 0x20 but the single
 * trailing '\n', none at 0x7f or above. */
static void
assert_one_clean_line(const char *msg)
{
	size_t i, len = strlen(msg);

	assert_true(len > 0);
	for(i = 0; i < len; i++)
	{
		unsigned char ch = (unsigned char) msg[i];

		if((ch < 0x20 && !(ch == '\n' && i == len - 1)) || ch >= 0x7f)
		{
			fail_msg("byte %zu (0x%02x) of the message is not printable: %s", i, ch, msg);
		}
	}
	assert_int_equal(msg[len - 1], '\n');
}

/* Every message that quotes a rejected value quotes it escaped, so a
 * value cannot forge a log line or send terminal escapes (issue 9,
 * defect 11): "x\nforged" is logged as x\x0aforged. */
static void
test_rejected_names_are_logged_escaped(void **state)
{
	static const struct
	{
		int (*set)(CLUSTER *, const char *);
		const char *value;
		const char *shown;
	} cases[] = {
		{ cluster_set_instance, "x\nforged", "x\\x0aforged" },
		{ cluster_set_env, "a\x1b[31mred", "a\\x1b[31mred" },
		{ cluster_set_partition, "caf\xc3\xa9", "caf\\xc3\\xa9" },
		{ cluster_set_instance, "back\\slash\r", "back\\x5cslash\\x0d" },
		{ cluster_set_registry, "ftp://\nx", "ftp://\\x0ax" },
		{ cluster_set_registry, "etcd2+http://h\x1b[2J:1/", "etcd2+http://h\\x1b[2J:1/" },
		{ cluster_set_address, "ws://a\x7f\x80", "ws://a\\x7f\\x80" },
	};
	char longname[300];
	CLUSTER *c = cluster_create("app");
	size_t i;

	(void) state;
	assert_non_null(c);
	cluster_set_logger(c, capture_logger);
	for(i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		n_captured = 0;
		errno = 0;
		assert_int_equal(cases[i].set(c, cases[i].value), -1);
		assert_int_equal(errno, EINVAL);
		assert_int_equal(n_captured, 1);
		assert_one_clean_line(captured[0]);
		if(!strstr(captured[0], cases[i].shown))
		{
			fail_msg("case %zu: '%s' not in: %s", i, cases[i].shown, captured[0]);
		}
	}
	/* too long, with a newline early enough to be quoted */
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	longname[3] = '\n';
	n_captured = 0;
	assert_int_equal(cluster_set_instance(c, longname), -1);
	assert_int_equal(n_captured, 1);
	assert_one_clean_line(captured[0]);
	assert_non_null(strstr(captured[0], "nnn\\x0annn"));
	cluster_destroy(c);
}

/* The settle window and the time limits: ranges checked, nothing changed
 * on a refusal, and the limits are control settings (EPERM while joined). */
static void
test_settle_and_timeouts_validate(void **state)
{
	CLUSTER *c = tu_cluster("app");

	(void) state;
	tu_reset();
	assert_int_equal(cluster_set_settle(c, -1), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("settle window -1 ms is invalid"));
	assert_int_equal(cluster_set_settle(c, 60001), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_set_settle(c, 0), 0);
	assert_int_equal(cluster_set_settle(c, 60000), 0);
	assert_int_equal(cluster_set_settle(NULL, 10), -1);
	assert_int_equal(errno, EINVAL);

	assert_int_equal(cluster_set_timeouts(c, 99, 0), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("request timeout 99 ms is invalid"));
	assert_int_equal(cluster_set_timeouts(c, 60001, 0), -1);
	assert_int_equal(errno, EINVAL);
	/* the join deadline must cover at least one request */
	assert_int_equal(cluster_set_timeouts(c, 3000, 2000), -1);
	assert_int_equal(errno, EINVAL);
	assert_true(tu_logged("join timeout 2000 ms is invalid"));
	assert_int_equal(cluster_set_timeouts(c, 0, 600001), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(cluster_set_timeouts(c, 500, 1000), 0);
	assert_int_equal(cluster_set_timeouts(c, 0, 0), 0);
	assert_int_equal(cluster_set_timeouts(NULL, 0, 0), -1);
	assert_int_equal(errno, EINVAL);

	/* static: joined, the limits are refused, the view is current */
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(cluster_set_timeouts(c, 1000, 2000), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(cluster_set_settle(c, 5), 0);
	assert_int_equal(cluster_view_fresh(c, NULL), 1);
	cluster_destroy(c);
}

/* ---- NULL handles ---------------------------------------------------------- */

/*
 * Every public function, called with a NULL handle (and otherwise valid
 * arguments), gives its documented result and errno and never crashes.
 * Each thunk returns the call's result as an intptr_t.
 */
#define THUNK(fn, ...) \
 static intptr_t t_##fn(void) \
 { \
  return (intptr_t) fn(__VA_ARGS__); \
 }
#define THUNK_VOID(fn, ...) \
 static intptr_t t_##fn(void) \
 { \
  fn(__VA_ARGS__); \
  return 0; \
 }

static int
null_balancer(CLUSTER *cluster, CLUSTERSTATE *st)
{
	(void) cluster;
	(void) st;
	return 0;
}
static void
null_logger2(CLUSTER *cluster, void *ud, int prio, const char *msg)
{
	(void) cluster;
	(void) ud;
	(void) prio;
	(void) msg;
}
static void
null_advice(CLUSTER *cluster, const CLUSTERREDIRECT *r, size_t n)
{
	(void) cluster;
	(void) r;
	(void) n;
}
static CLUSTERSTATE null_state;
static CLUSTERMEMBER *null_members, null_member;
static CLUSTERREDIRECT *null_redirects;
static CLUSTERPLANENTRY *null_plan;
static CLUSTERSHARD *null_shards;
static CLUSTERADVISORCONFIG null_config;
static size_t null_count;
static long long null_revision;
static char null_buf[CLUSTER_NAME_MAX + 1];

THUNK(cluster_create, NULL)
THUNK(cluster_destroy, NULL)
THUNK(cluster_join, NULL)
THUNK(cluster_join_passive, NULL)
THUNK(cluster_leave, NULL)
THUNK(cluster_set_verbose, NULL, 1)
THUNK(cluster_set_logger, NULL, tu_logger)
THUNK(cluster_set_logger2, NULL, null_logger2)
THUNK(cluster_set_userdata, NULL, &null_state)
THUNK(cluster_userdata, NULL)
THUNK(cluster_set_balancer, NULL, null_balancer)
THUNK(cluster_key, NULL)
THUNK(cluster_env, NULL)
THUNK(cluster_set_env, NULL, "dev")
THUNK(cluster_instance, NULL)
THUNK(cluster_set_instance, NULL, "node1")
THUNK(cluster_reset_instance, NULL)
THUNK(cluster_partition, NULL)
THUNK(cluster_set_partition, NULL, "blue")
THUNK(cluster_set_workers, NULL, 2)
THUNK(cluster_set_threads, NULL, 2)
THUNK(cluster_set_registry, NULL, NULL)
THUNK(cluster_set_settle, NULL, 10)
THUNK(cluster_set_timeouts, NULL, 0, 0)
THUNK(cluster_set_ttl, NULL, 10)
THUNK(cluster_ttl, NULL)
THUNK(cluster_set_tls, NULL, NULL, NULL, NULL)
THUNK(cluster_set_credentials, NULL, NULL, NULL)
THUNK(cluster_static_set_index, NULL, 0)
THUNK(cluster_static_set_total, NULL, 1)
THUNK(cluster_index, NULL, 0)
THUNK(cluster_view_fresh, NULL, &null_revision)
THUNK(cluster_total, NULL)
THUNK(cluster_workers, NULL)
THUNK(cluster_state, NULL, &null_state)
THUNK(cluster_members, NULL, &null_members, &null_count)
THUNK(cluster_peers, NULL, &null_members, &null_count)
THUNK_VOID(cluster_members_free, NULL)
THUNK(cluster_copy_key, NULL, null_buf, sizeof(null_buf))
THUNK(cluster_copy_env, NULL, null_buf, sizeof(null_buf))
THUNK(cluster_copy_instance, NULL, null_buf, sizeof(null_buf))
THUNK(cluster_copy_partition, NULL, null_buf, sizeof(null_buf))
THUNK(cluster_set_address, NULL, "h:1")
THUNK(cluster_report, NULL, 1, 10)
THUNK_VOID(cluster_advisor_config_init, NULL)
THUNK(cluster_set_advisor_config, NULL, &null_config)
THUNK(cluster_set_advisor, NULL, null_advice)
THUNK(cluster_pick_target, NULL, &null_member)
THUNK(cluster_advice, NULL, &null_redirects, &null_count)
THUNK(cluster_plan, NULL, &null_plan, &null_count)
THUNK(cluster_set_shards, NULL, 4)
THUNK(cluster_shards, NULL)
THUNK(cluster_set_shard_callback, NULL, NULL)
THUNK(cluster_set_shard_settle, NULL, 10)
THUNK(cluster_owned_shards, NULL, &null_shards, &null_count)
THUNK_VOID(cluster_shards_free, NULL)
THUNK(cluster_shard_owner, NULL, 0, null_buf, sizeof(null_buf), &null_revision)
THUNK_VOID(cluster_redirects_free, NULL)
THUNK_VOID(cluster_plan_free, NULL)
THUNK(cluster_errmsg, NULL)
THUNK(cluster_version)

/* What a NULL handle gives: -1 or 0 (the count getters) or NULL, with
 * EINVAL; or, for the free()-like calls, nothing and errno untouched. */
enum null_result
{
	NR_MINUS1_EINVAL,
	NR_NULL_EINVAL,
	NR_CREATE, /* cluster_create(NULL): NULL/EINVAL, a NULL key */
	NR_ZERO_EINVAL,
	NR_ZERO_UNTOUCHED,   /* cluster_destroy(NULL): 0, a no-op */
	NR_VOID_UNTOUCHED,   /* the free functions */
	NR_VOID_EINVAL,      /* cluster_advisor_config_init(NULL) */
	NR_STRING_UNTOUCHED, /* cluster_errmsg(NULL), cluster_version(): never NULL */
};

static const struct
{
	const char *name;
	intptr_t (*call)(void);
	enum null_result expect;
} null_table[] = {
#define ROW(fn, r) \
 { \
#  fn, t_##fn, r \
 }
	ROW(cluster_create, NR_CREATE),
	ROW(cluster_destroy, NR_ZERO_UNTOUCHED),
	ROW(cluster_join, NR_MINUS1_EINVAL),
	ROW(cluster_join_passive, NR_MINUS1_EINVAL),
	ROW(cluster_leave, NR_MINUS1_EINVAL),
	ROW(cluster_set_verbose, NR_MINUS1_EINVAL),
	ROW(cluster_set_logger, NR_MINUS1_EINVAL),
	ROW(cluster_set_logger2, NR_MINUS1_EINVAL),
	ROW(cluster_set_userdata, NR_MINUS1_EINVAL),
	ROW(cluster_userdata, NR_NULL_EINVAL),
	ROW(cluster_set_balancer, NR_MINUS1_EINVAL),
	ROW(cluster_key, NR_NULL_EINVAL),
	ROW(cluster_env, NR_NULL_EINVAL),
	ROW(cluster_set_env, NR_MINUS1_EINVAL),
	ROW(cluster_instance, NR_NULL_EINVAL),
	ROW(cluster_set_instance, NR_MINUS1_EINVAL),
	ROW(cluster_reset_instance, NR_MINUS1_EINVAL),
	ROW(cluster_partition, NR_NULL_EINVAL),
	ROW(cluster_set_partition, NR_MINUS1_EINVAL),
	ROW(cluster_set_workers, NR_MINUS1_EINVAL),
	ROW(cluster_set_threads, NR_MINUS1_EINVAL),
	ROW(cluster_set_registry, NR_MINUS1_EINVAL),
	ROW(cluster_set_settle, NR_MINUS1_EINVAL),
	ROW(cluster_set_timeouts, NR_MINUS1_EINVAL),
	ROW(cluster_set_ttl, NR_MINUS1_EINVAL),
	ROW(cluster_ttl, NR_ZERO_EINVAL),
	ROW(cluster_set_tls, NR_MINUS1_EINVAL),
	ROW(cluster_set_credentials, NR_MINUS1_EINVAL),
	ROW(cluster_static_set_index, NR_MINUS1_EINVAL),
	ROW(cluster_static_set_total, NR_MINUS1_EINVAL),
	ROW(cluster_index, NR_MINUS1_EINVAL),
	ROW(cluster_view_fresh, NR_MINUS1_EINVAL),
	ROW(cluster_total, NR_ZERO_EINVAL),
	ROW(cluster_workers, NR_ZERO_EINVAL),
	ROW(cluster_state, NR_MINUS1_EINVAL),
	ROW(cluster_members, NR_MINUS1_EINVAL),
	ROW(cluster_peers, NR_MINUS1_EINVAL),
	ROW(cluster_members_free, NR_VOID_UNTOUCHED),
	ROW(cluster_copy_key, NR_MINUS1_EINVAL),
	ROW(cluster_copy_env, NR_MINUS1_EINVAL),
	ROW(cluster_copy_instance, NR_MINUS1_EINVAL),
	ROW(cluster_copy_partition, NR_MINUS1_EINVAL),
	ROW(cluster_set_address, NR_MINUS1_EINVAL),
	ROW(cluster_report, NR_MINUS1_EINVAL),
	ROW(cluster_advisor_config_init, NR_VOID_EINVAL),
	ROW(cluster_set_advisor_config, NR_MINUS1_EINVAL),
	ROW(cluster_set_advisor, NR_MINUS1_EINVAL),
	ROW(cluster_pick_target, NR_MINUS1_EINVAL),
	ROW(cluster_advice, NR_MINUS1_EINVAL),
	ROW(cluster_redirects_free, NR_VOID_UNTOUCHED),
	ROW(cluster_plan, NR_MINUS1_EINVAL),
	ROW(cluster_plan_free, NR_VOID_UNTOUCHED),
	ROW(cluster_set_shards, NR_MINUS1_EINVAL),
	ROW(cluster_shards, NR_ZERO_EINVAL),
	ROW(cluster_set_shard_callback, NR_MINUS1_EINVAL),
	ROW(cluster_set_shard_settle, NR_MINUS1_EINVAL),
	ROW(cluster_owned_shards, NR_MINUS1_EINVAL),
	ROW(cluster_shards_free, NR_VOID_UNTOUCHED),
	ROW(cluster_shard_owner, NR_MINUS1_EINVAL),
	ROW(cluster_errmsg, NR_STRING_UNTOUCHED),
	ROW(cluster_version, NR_STRING_UNTOUCHED),
#undef ROW
};

/* The table covers every exported function (tests/exports.txt, which
 * check-exports.sh ties to the library's dynamic symbols). */
static void
test_null_table_is_complete(void **state)
{
	const char *top = getenv("top_srcdir");
	char path[4096], line[256];
	size_t i, n = 0;
	FILE *f;

	(void) state;
	snprintf(path, sizeof(path), "%s/tests/exports.txt", top ? top : ".");
	f = fopen(path, "r");
	if(!f)
	{
		skip();
	}
	while(fgets(line, sizeof(line), f))
	{
		int found = 0;

		line[strcspn(line, "\n")] = 0;
		if(!*line)
		{
			continue;
		}
		for(i = 0; i < sizeof(null_table) / sizeof(null_table[0]); i++)
		{
			found |= !strcmp(null_table[i].name, line);
		}
		if(!found)
		{
			fclose(f);
			fail_msg("%s is exported but not in the NULL-handle table", line);
		}
		n++;
	}
	fclose(f);
	assert_int_equal(n, sizeof(null_table) / sizeof(null_table[0]));
}

static void
test_null_handle(void **state)
{
	size_t i;

	(void) state;
	cluster_advisor_config_init(&null_config);
	for(i = 0; i < sizeof(null_table) / sizeof(null_table[0]); i++)
	{
		const char *name = null_table[i].name;
		intptr_t r;
		int e;

		errno = 12345;
		r = null_table[i].call();
		e = errno;
		switch(null_table[i].expect)
		{
		case NR_MINUS1_EINVAL:
			if(r != -1 || e != EINVAL)
			{
				fail_msg("%s(NULL): %ld, errno %d; expected -1/EINVAL", name, (long) r, e);
			}
			/* the reason is kept for cluster_errmsg(NULL) */
			if(!strstr(cluster_errmsg(NULL), name) || !strstr(cluster_errmsg(NULL), "NULL"))
			{
				fail_msg("%s(NULL): errmsg is '%s'", name, cluster_errmsg(NULL));
			}
			break;
		case NR_NULL_EINVAL:
			if(r != 0 || e != EINVAL)
			{
				fail_msg("%s(NULL): %p, errno %d; expected NULL/EINVAL", name, (void *) r, e);
			}
			assert_non_null(strstr(cluster_errmsg(NULL), name));
			break;
		case NR_CREATE:
			if(r != 0 || e != EINVAL)
			{
				fail_msg("%s(NULL): %p, errno %d; expected NULL/EINVAL", name, (void *) r, e);
			}
			assert_string_equal(cluster_errmsg(NULL), "libcluster: cluster key must not be NULL");
			break;
		case NR_ZERO_EINVAL:
		case NR_VOID_EINVAL:
			if(r != 0 || e != EINVAL)
			{
				fail_msg("%s(NULL): %ld, errno %d; expected 0/EINVAL", name, (long) r, e);
			}
			assert_non_null(strstr(cluster_errmsg(NULL), name));
			break;
		case NR_ZERO_UNTOUCHED:
		case NR_VOID_UNTOUCHED:
			if(r != 0 || e != 12345)
			{
				fail_msg("%s(NULL): %ld, errno %d; expected 0, errno untouched", name, (long) r, e);
			}
			break;
		case NR_STRING_UNTOUCHED:
			if(!r || e != 12345)
			{
				fail_msg("%s(NULL): %p, errno %d; expected a string, errno untouched", name, (void *) r, e);
			}
			break;
		}
	}
}

/* ---- cluster_errmsg() -------------------------------------------------------- */

/* Every failure leaves its reason, logged or not, with or without a
 * logger; the message belongs to the handle of the failed call. */
static void
test_errmsg(void **state)
{
	CLUSTER *c = cluster_create("app"), *other = cluster_create("other");
	CLUSTERMEMBER m;
	CLUSTERREDIRECT *rows;
	size_t n;

	(void) state;
	assert_non_null(c);
	assert_non_null(other);
	assert_string_equal(cluster_errmsg(c), "");
	/* no logger installed: the message is dropped but still kept */
	assert_int_equal(cluster_set_workers(c, 0), -1);
	assert_string_equal(cluster_errmsg(c), "libcluster: worker count 0 is invalid: it must be between 1 and 65535");
	assert_string_equal(cluster_errmsg(other), "");
	/* a success does not clear it (as errno) ... */
	assert_int_equal(cluster_set_workers(c, 2), 0);
	assert_non_null(strstr(cluster_errmsg(c), "worker count 0"));
	/* ... the next failure replaces it */
	assert_int_equal(cluster_set_env(c, "a\nb"), -1);
	assert_string_equal(cluster_errmsg(c), "libcluster: environment 'a\\x0ab' is invalid: byte 1 (0x0a) is not one of [A-Za-z0-9._-]");
	/* a failure on another handle takes the thread's record */
	assert_int_equal(cluster_set_ttl(other, 1), -1);
	assert_string_equal(cluster_errmsg(c), "");
	assert_non_null(strstr(cluster_errmsg(other), "TTL 1 is invalid"));
	/* refusals that are not logged still leave a reason */
	assert_int_equal(cluster_view_fresh(c, NULL), -1);
	assert_int_equal(errno, EPERM);
	assert_non_null(strstr(cluster_errmsg(c), "not joined"));
	assert_int_equal(cluster_members(c, &null_members, &n), -1);
	assert_int_equal(errno, EPERM);
	assert_non_null(strstr(cluster_errmsg(c), "cluster_members(): this instance has not joined"));
	assert_int_equal(cluster_pick_target(c, &m), -1);
	assert_int_equal(errno, EPERM);
	assert_non_null(strstr(cluster_errmsg(c), "cluster_pick_target(): this instance has not joined"));
	assert_int_equal(cluster_advice(c, &rows, &n), -1);
	assert_non_null(strstr(cluster_errmsg(c), "cluster_advice(): this instance has not joined"));
	assert_int_equal(cluster_total(c), 0);
	assert_int_equal(errno, EPERM);
	assert_non_null(strstr(cluster_errmsg(c), "cluster total"));
	assert_int_equal(cluster_state(c, NULL), -1);
	assert_non_null(strstr(cluster_errmsg(c), "needs a buffer"));
	/* a notice-level refusal (EPERM while joined) */
	assert_int_equal(cluster_join_passive(c), 0);
	assert_int_equal(cluster_set_env(c, "dev"), -1);
	assert_int_equal(errno, EPERM);
	assert_non_null(strstr(cluster_errmsg(c), "while joined"));
	assert_int_equal(cluster_index(c, 0), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(cluster_errmsg(c), "no cluster index"));
	cluster_destroy(c);
	cluster_destroy(other);

	/* cluster_create() fails with no handle: cluster_errmsg(NULL) */
	assert_null(cluster_create("../evil"));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(cluster_errmsg(NULL), "cluster key '../evil' is invalid"));
	/* a new handle (maybe at a freed one's address) starts clean */
	c = cluster_create("app");
	assert_int_equal(cluster_set_workers(c, 0), -1);
	cluster_destroy(c);
	c = cluster_create("app");
	assert_string_equal(cluster_errmsg(c), "");
	cluster_destroy(c);
}

/* Two threads failing on one handle each keep their own reason. */
static CLUSTER *shared_handle;
static pthread_barrier_t errmsg_barrier;
static int errmsg_ok[2];

static void *
errmsg_thread(void *arg)
{
	int which = (int) (intptr_t) arg, i, ok = 1;

	for(i = 0; i < 200; i++)
	{
		if(which)
		{
			ok &= cluster_set_ttl(shared_handle, 1) == -1 && errno == EINVAL;
		}
		else
		{
			ok &= cluster_set_workers(shared_handle, 0) == -1 && errno == EINVAL;
		}
		if(i == 0)
		{
			pthread_barrier_wait(&errmsg_barrier);
		}
		ok &= strstr(cluster_errmsg(shared_handle), which ? "TTL 1 is invalid" : "worker count 0 is invalid") != NULL;
	}
	errmsg_ok[which] = ok;
	return NULL;
}

static void
test_errmsg_per_thread(void **state)
{
	pthread_t t[2];
	int i;

	(void) state;
	shared_handle = cluster_create("app");
	assert_non_null(shared_handle);
	pthread_barrier_init(&errmsg_barrier, NULL, 2);
	for(i = 0; i < 2; i++)
	{
		assert_int_equal(pthread_create(&t[i], NULL, errmsg_thread, (void *) (intptr_t) i), 0);
	}
	for(i = 0; i < 2; i++)
	{
		pthread_join(t[i], NULL);
		assert_true(errmsg_ok[i]);
	}
	pthread_barrier_destroy(&errmsg_barrier);
	/* this thread failed nothing on the handle */
	assert_string_equal(cluster_errmsg(shared_handle), "");
	cluster_destroy(shared_handle);
}

/* ---- userdata and the extended logger --------------------------------------- */

static int userdata_seen;
static char logger2_msg[1024];
static int logger2_prio = -1, logger2_calls;
static void *logger2_userdata;
static CLUSTER *logger2_cluster;

static int
userdata_balancer(CLUSTER *cluster, CLUSTERSTATE *st)
{
	(void) st;
	userdata_seen = *(int *) cluster_userdata(cluster);
	return 0;
}

static void
record_logger2(CLUSTER *cluster, void *userdata, int priority, const char *message)
{
	logger2_cluster = cluster;
	logger2_userdata = userdata;
	logger2_prio = priority;
	logger2_calls++;
	snprintf(logger2_msg, sizeof(logger2_msg), "%s", message);
}

static void
test_userdata_and_logger2(void **state)
{
	CLUSTER *c = tu_cluster("app");
	int value = 42;

	(void) state;
	errno = EIO;
	assert_null(cluster_userdata(c));
	assert_int_equal(errno, 0);
	assert_int_equal(cluster_set_userdata(c, &value), 0);
	assert_ptr_equal(cluster_userdata(c), &value);
	/* callbacks get it through the handle */
	cluster_set_balancer(c, userdata_balancer);
	assert_int_equal(cluster_join(c), 0);
	assert_int_equal(userdata_seen, 42);
	assert_int_equal(cluster_leave(c), 0);
	/* the extended logger wins over the classic one, and gets the handle,
	 * the userdata and one escaped line without its newline */
	tu_log_clear();
	assert_int_equal(cluster_set_logger2(c, record_logger2), 0);
	assert_int_equal(cluster_set_instance(c, "x\x1b[2J"), -1);
	assert_int_equal(tu_log_len, 0);
	assert_int_equal(logger2_calls, 1);
	assert_ptr_equal(logger2_cluster, c);
	assert_ptr_equal(logger2_userdata, &value);
	assert_int_equal(logger2_prio, LOG_ERR);
	assert_string_equal(logger2_msg, "libcluster: instance id 'x\\x1b[2J' is invalid: byte 1 (0x1b) is not one of [A-Za-z0-9._-]");
	assert_string_equal(cluster_errmsg(c), logger2_msg);
	/* removed: the classic logger takes over again */
	assert_int_equal(cluster_set_logger2(c, NULL), 0);
	assert_int_equal(cluster_set_workers(c, 0), -1);
	assert_int_equal(logger2_calls, 1);
	assert_true(tu_logged("<3>libcluster: worker count 0 is invalid"));
	assert_int_equal(cluster_set_userdata(c, NULL), 0);
	assert_null(cluster_userdata(c));
	cluster_destroy(c);
}

/* ---- copy-out getters ------------------------------------------------------- */

static void
test_copy_out(void **state)
{
	CLUSTER *c = tu_cluster("app");
	char buf[CLUSTER_NAME_MAX + 1], big[CLUSTER_NAME_MAX + 1];

	(void) state;
	assert_int_equal(cluster_copy_key(c, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "app");
	assert_int_equal(cluster_copy_env(c, buf, sizeof(buf)), 10);
	assert_string_equal(buf, "production");
	assert_int_equal(cluster_copy_instance(c, buf, sizeof(buf)), 32);
	assert_string_equal(buf, cluster_instance(c));
	/* no partition: 0 and "" */
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(cluster_copy_partition(c, buf, 1), 0);
	assert_string_equal(buf, "");
	assert_int_equal(cluster_set_partition(c, "blue"), 0);
	assert_int_equal(cluster_copy_partition(c, buf, sizeof(buf)), 4);
	assert_string_equal(buf, "blue");
	/* exactly enough room, then one byte short: ERANGE and "" */
	assert_int_equal(cluster_copy_partition(c, buf, 5), 4);
	assert_string_equal(buf, "blue");
	memset(buf, 'x', sizeof(buf));
	errno = 0;
	assert_int_equal(cluster_copy_partition(c, buf, 4), -1);
	assert_int_equal(errno, ERANGE);
	assert_string_equal(buf, "");
	assert_true(tu_logged("too small for the partition"));
	assert_non_null(strstr(cluster_errmsg(c), "a buffer of 4 bytes is too small for the partition (4 bytes and a NUL)"));
	assert_int_equal(cluster_copy_key(c, buf, 0), -1);
	assert_int_equal(errno, ERANGE);
	/* NULL buffer: EINVAL */
	assert_int_equal(cluster_copy_env(c, NULL, 10), -1);
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(cluster_errmsg(c), "needs a buffer"));
	/* the longest name fits CLUSTER_NAME_MAX + 1 */
	memset(big, 'i', CLUSTER_NAME_MAX);
	big[CLUSTER_NAME_MAX] = 0;
	assert_int_equal(cluster_set_instance(c, big), 0);
	assert_int_equal(cluster_copy_instance(c, buf, sizeof(buf)), CLUSTER_NAME_MAX);
	assert_string_equal(buf, big);
	cluster_destroy(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_validates_key),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_name_setters_validate),
		cmocka_unit_test(test_workers_validate),
		cmocka_unit_test(test_ttl_tls_credentials),
		cmocka_unit_test(test_settle_and_timeouts_validate),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_static_setters_validate),
		cmocka_unit_test(test_eperm_while_joined),
		cmocka_unit_test(test_getters_not_joined),
		cmocka_unit_test(test_index_range),
		cmocka_unit_test(test_edeadlk_from_callback),
		cmocka_unit_test(test_logger_priorities),
		cmocka_unit_test(test_rejected_names_are_logged_escaped),
		cmocka_unit_test(test_null_table_is_complete),
		cmocka_unit_test(test_null_handle),
		cmocka_unit_test(test_errmsg),
		cmocka_unit_test(test_errmsg_per_thread),
		cmocka_unit_test(test_userdata_and_logger2),
		cmocka_unit_test(test_copy_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
