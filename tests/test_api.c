/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Public API: validation (EINVAL names the field and changes nothing),
 * errno on every failure, the original's defects fixed, EPERM while
 * joined, EDEADLK from callbacks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char *bad_names[] = {
	"", ".", "..", "a/b", "a b", "x?y", "h#1", "p%41", "../evil", "caf\xc3\xa9", "tab\there", "new\nline",
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
	cluster_set_workers(c, 0);             /* LOG_ERR: dropped without a logger */
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

#define CAPTURE_MAX                    16

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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
