/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The library against etcds that production runs: TLS with the server
 * verified against a CA, mutual TLS (client certificates) with etcd's
 * user/password auth on top, and every way of getting them wrong. The
 * certificates are made with openssl at test time (etcdh_pki_make());
 * two real etcds run for the whole program:
 * - "tls": https:// with a server certificate, nothing asked of clients;
 * - "mtls": https:// with --client-cert-auth and auth enabled, a user
 *   "app" whose role covers only the test clusters' keys, and a user
 *   "stranger" whose role covers another prefix.
 * etcd cannot be started with an expired certificate and then be waited
 * for, so "openssl s_server" presents one: a TLS endpoint whose
 * certificate expired yesterday (the handshake is all that is tested).
 * Over TLS libcurl speaks HTTP/2 to etcd, so these tests are also the
 * ones that run the keepalive stream and the watch over HTTP/2.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "etcdharness.h"
#include "etcdtest.h"

#define APP_PASSWORD      "app-Secret-7f3e"
#define STRANGER_PASSWORD "stranger-Secret-91ab"
#define WRONG_PASSWORD    "wrong-Secret-c0de"
#define ROOT_PASSWORD     "root-Secret-55aa"

static char pki[4096];
static etcdh *tls_etcd, *mtls_etcd;
static pid_t expired_server; /* openssl s_server with expired-server.crt */
static int expired_port;

/* A PKI file's path (one of a ring of buffers, main thread only). */
static const char *
pki_file(const char *name)
{
	static char ring[4][4200];
	static int next;
	char *p = ring[next++ % 4];

	snprintf(p, sizeof(ring[0]), "%s/%s", pki, name);
	return p;
}

/* Non-zero once something accepts connections on the loopback port. */
static int
listening(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short) port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0;
	if(fd >= 0)
	{
		close(fd);
	}
	return ok;
}

/* openssl s_server on a free port with the expired server certificate;
 * 0 once it listens, -1 if it does not within 10 s. */
static int
start_expired_server(void)
{
	char accept[32];
	const char *cert = strdup(pki_file("expired-server.crt")), *key = strdup(pki_file("expired-server.key"));
	double deadline;

	expired_port = et_dead_port();
	snprintf(accept, sizeof(accept), "127.0.0.1:%d", expired_port);
	expired_server = fork();
	if(expired_server == 0)
	{
		int null = open("/dev/null", O_RDWR);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, 1);
		dup2(null, 2);
		execlp("openssl", "openssl", "s_server", "-quiet", "-accept", accept, "-cert", cert, "-key", key, (char *) NULL);
		_exit(127);
	}
	free((void *) cert);
	free((void *) key);
	deadline = etcdh_now() + et_t(10);
	while(expired_server > 0 && etcdh_now() < deadline)
	{
		if(listening(expired_port))
		{
			return 0;
		}
		usleep(50000);
	}
	fprintf(stderr, "# openssl s_server did not listen on %s\n", accept);
	return -1;
}

static int
group_setup(void **state)
{
	const char *tmp = getenv("TMPDIR");
	const char *tls_args[] = { "--cert-file", NULL, "--key-file", NULL, NULL };
	const char *mtls_args[] = { "--cert-file", NULL, "--key-file", NULL, "--client-cert-auth", "--trusted-ca-file", NULL,
		NULL };
	int rc;

	(void) state;
	snprintf(pki, sizeof(pki), "%s/libcluster-pki.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if(!mkdtemp(pki) || etcdh_pki_make(pki))
	{
		fprintf(stderr, "# cannot make a PKI in %s\n", pki);
		return -1;
	}
	etcdh_use_pki(pki);
	tls_args[1] = mtls_args[1] = strdup(pki_file("server.crt"));
	tls_args[3] = mtls_args[3] = strdup(pki_file("server.key"));
	mtls_args[6] = strdup(pki_file("ca.crt"));
	rc = et_etcd_start(&tls_etcd, tls_args);
	if(!rc)
	{
		rc = et_etcd_start(&mtls_etcd, mtls_args);
	}
	free((void *) tls_args[1]);
	free((void *) tls_args[3]);
	free((void *) mtls_args[6]);
	if(rc || start_expired_server())
	{
		return -1;
	}
	/* the mtls etcd: auth on, "app" may use the test clusters' keys
	 * (every et_key() starts with "/it-"), "stranger" only /elsewhere/ */
	if(etcdh_enable_auth(mtls_etcd, ROOT_PASSWORD) ||
		etcdh_add_user(mtls_etcd, ROOT_PASSWORD, "app", APP_PASSWORD, "/it-") ||
		etcdh_add_user(mtls_etcd, ROOT_PASSWORD, "stranger", STRANGER_PASSWORD, "/elsewhere/"))
	{
		fprintf(stderr, "# cannot set up auth on the mtls etcd\n");
		return -1;
	}
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[4200];

	(void) state;
	et_free_all();
	if(expired_server > 0)
	{
		kill(expired_server, SIGKILL);
		waitpid(expired_server, NULL, 0);
	}
	etcdh_destroy(tls_etcd);
	etcdh_destroy(mtls_etcd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki);
	if(system(cmd))
	{
		fprintf(stderr, "# cannot remove %s\n", pki);
	}
	return 0;
}

/* A member on etcd e with the given TLS files (any NULL) and credentials
 * (user NULL: none). */
static et_member *
member(etcdh *e, const char *key, const char *id, int ttl, const char *ca, const char *cert, const char *pkey,
	const char *user, const char *password)
{
	et_member *m = et_new_at(key, id, 1, etcdh_endpoint(e), ttl);

	assert_int_equal(cluster_set_tls(m->c, ca, cert, pkey), 0);
	if(user)
	{
		assert_int_equal(cluster_set_credentials(m->c, user, password), 0);
	}
	return m;
}

/* Fail unless the key stays registered under the same lease for the
 * given number of TTLs (keepalives answered all along). */
static void
stays_registered(etcdh *e, const char *key, const char *id, int ttl, int ttls)
{
	long long lease = etcdh_key_lease(e, et_member_key(key, id)), now;
	double end = etcdh_now() + (double) ttl * ttls;

	assert_true(lease > 0);
	while(etcdh_now() < end)
	{
		usleep(250000);
		now = etcdh_key_lease(e, et_member_key(key, id));
		if(now != lease)
		{
			fail_msg("%s's registration changed from lease %lld to %lld within %d TTLs", id, lease, now, ttls);
		}
	}
}

/* Leave b and see a's view lose it well before b's lease could expire:
 * leave revoked the lease over TLS. */
static void
leave_is_seen_at_once(et_member *a, et_member *b, int ttl)
{
	double t0 = etcdh_now();

	assert_int_equal(cluster_leave(b->c), 0);
	assert_int_equal(et_wait(a, 0, 1, ttl / 2.0), 0);
	fprintf(stderr, "# leave seen by the other member in %.3f s (TTL %d s)\n", etcdh_now() - t0, ttl);
}

/*
 * https:// with the server verified against our CA: two members see each
 * other, keep their leases for several TTLs (the keepalive stream over
 * HTTP/2), see a status report and a worker change, and a leave is seen
 * at once.
 */
static void
test_tls_server_verified(void **state)
{
	const char *key = et_key("tls");
	const int ttl = 4;
	CLUSTERMEMBER *ms = NULL;
	CLUSTERREDIRECT *rd = NULL;
	size_t nrd = 0;
	size_t n = 0, i;
	et_member *a, *b;
	int seen = 0;
	double end;

	(void) state;
	a = member(tls_etcd, key, "a", ttl, pki_file("ca.crt"), NULL, NULL, NULL, NULL);
	b = member(tls_etcd, key, "b", ttl, pki_file("ca.crt"), NULL, NULL, NULL, NULL);
	assert_int_equal(cluster_set_address(b->c, "ws://10.0.0.2:80"), 0);
	assert_int_equal(cluster_report(b->c, 7, 100), 0);
	assert_int_equal(et_join(a), 0);
	assert_int_equal(cluster_advice(a->c, &rd, &nrd), 0);
	cluster_redirects_free(rd);
	assert_int_equal(et_join(b), 0);
	et_check(a, 0, 1, 2, 5);
	et_check(b, 1, 1, 2, 5);
	stays_registered(tls_etcd, key, "a", ttl, 3);
	assert_int_equal(etcdh_count(tls_etcd, et_prefix(key)), 2);

	/* b's status reached a over the status watch */
	end = etcdh_now() + et_t(5);
	while(!seen && etcdh_now() < end)
	{
		assert_int_equal(cluster_peers(a->c, &ms, &n), 0);
		for(i = 0; i < n; i++)
		{
			seen |= !strcmp(ms[i].id, "b") && ms[i].has_status && ms[i].load == 7;
		}
		cluster_members_free(ms);
		usleep(50000);
	}
	assert_true(seen);

	assert_int_equal(cluster_set_workers(b->c, 3), 0);
	et_check(a, 0, 1, 4, 5);
	leave_is_seen_at_once(a, b, ttl);
	et_member_free(b);
	et_member_free(a);
}

/*
 * A TLS handshake slower than a TCP connect's 1 s cap (here the server's
 * answer held back 1.5 s by a proxy; in life a busy etcd, or the system's
 * CA store loaded under valgrind) still joins within the request time:
 * over https a connect gets half of it. Before, every attempt ended in
 * "SSL connection timeout" and the join retried until its deadline.
 */
static void
test_slow_handshake_joins(void **state)
{
	const char *key = et_key("slowtls");
	const int request_ms = (int) et_t(4) * 1000;
	etcdh_proxy *px;
	char registry[96];
	et_member *a;
	double t0;

	(void) state;
	assert_int_equal(etcdh_proxy_start(tls_etcd, &px), 0);
	etcdh_proxy_hold(px, 1500);
	snprintf(registry, sizeof(registry), "https%s", strchr(etcdh_proxy_endpoint(px), ':'));
	/* a TTL long enough that a keepalive (a third of it) fits the
	 * handshake too */
	a = et_new_at(key, "a", 1, registry, 15);
	assert_int_equal(cluster_set_tls(a->c, pki_file("ca.crt"), NULL, NULL), 0);
	assert_int_equal(cluster_set_timeouts(a->c, request_ms, (int) et_t(20) * 1000), 0);
	t0 = etcdh_now();
	if(et_join(a))
	{
		et_dump(a);
		fail_msg("join through a 1.5 s handshake failed after %.1f s: %s", etcdh_now() - t0, cluster_errmsg(a->c));
	}
	fprintf(stderr, "# joined through a 1.5 s TLS handshake in %.2f s\n", etcdh_now() - t0);
	et_check(a, 0, 1, 1, 5);
	assert_int_equal(etcdh_count(tls_etcd, et_prefix(key)), 1);
	et_member_free(a);
	etcdh_proxy_stop(px);
}

/*
 * Over https etcd speaks HTTP/2, where an ended stream leaves its
 * connection open: the member holds two connections (watch, keepalives)
 * through a proxy that counts them, and its leave, which ends the
 * keepalive stream and revokes, opens none. (Over plain HTTP/1.1 it
 * opens one: test_etcd_contract.)
 */
static void
test_leave_over_http2_opens_no_connection(void **state)
{
	const char *key = et_key("h2leave");
	const int ttl = 2;
	etcdh_proxy *px;
	char registry[96];
	unsigned long conns;
	double t0;
	et_member *a, *b;

	(void) state;
	assert_int_equal(etcdh_proxy_start(tls_etcd, &px), 0);
	snprintf(registry, sizeof(registry), "https%s", strchr(etcdh_proxy_endpoint(px), ':'));
	a = member(tls_etcd, key, "a", ttl, pki_file("ca.crt"), NULL, NULL, NULL, NULL);
	b = et_new_at(key, "b", 1, registry, ttl);
	assert_int_equal(cluster_set_tls(b->c, pki_file("ca.crt"), NULL, NULL), 0);
	assert_int_equal(et_join(a), 0);
	assert_int_equal(et_join(b), 0);
	et_check(a, 0, 1, 2, 5);
	/* a TTL and more: the keepalive stream is open (its first keepalive
	 * is due at TTL/3), and the lease has been renewed on it */
	stays_registered(tls_etcd, key, "b", ttl, 2);
	conns = etcdh_proxy_accepted(px);
	fprintf(stderr, "# connections before leave: %lu\n", conns);
	assert_int_equal(conns, 2);
	t0 = etcdh_now();
	assert_int_equal(cluster_leave(b->c), 0);
	assert_int_equal(et_wait(a, 0, 1, ttl / 2.0), 0);
	fprintf(stderr, "# leave seen in %.3f s; connections after leave: %lu\n", etcdh_now() - t0, etcdh_proxy_accepted(px));
	assert_int_equal(etcdh_proxy_accepted(px), conns);
	et_member_free(b);
	et_member_free(a);
	etcdh_proxy_stop(px);
}

/*
 * Mutual TLS with etcd auth: members with the CA, a client certificate
 * and a user limited to the test keys join, stay, and leave as on plain
 * http.
 */
static void
test_mtls_with_auth(void **state)
{
	const char *key = et_key("mtls");
	const int ttl = 4;
	et_member *a, *b;

	(void) state;
	a = member(mtls_etcd, key, "a", ttl, pki_file("ca.crt"), pki_file("client.crt"), pki_file("client.key"), "app",
		APP_PASSWORD);
	b = member(mtls_etcd, key, "b", ttl, pki_file("ca.crt"), pki_file("client.crt"), pki_file("client.key"), "app",
		APP_PASSWORD);
	assert_int_equal(et_join(a), 0);
	assert_int_equal(et_join(b), 0);
	et_check(a, 0, 1, 2, 5);
	et_check(b, 1, 1, 2, 5);
	stays_registered(mtls_etcd, key, "b", ttl, 3);
	assert_int_equal(cluster_set_workers(a->c, 2), 0);
	et_check(b, 2, 1, 3, 5);
	leave_is_seen_at_once(b, a, ttl);
	assert_int_equal(et_wait(b, 0, 1, 5), 0);
	et_member_free(a);
	et_member_free(b);
}

static void
no_shards(CLUSTER *c, const CLUSTERSHARD *acquired, size_t n_acquired, const CLUSTERSHARD *released, size_t n_released)
{
	(void) c;
	(void) acquired;
	(void) n_acquired;
	(void) released;
	(void) n_released;
}

/*
 * No key escapes the cluster's directory, whatever the names: a user whose
 * role covers exactly "/<key>/" joins with the oddest valid partition,
 * environment and instance names, publishes a status (its own key) and
 * owns shards (their keys): a key written anywhere else would fail with
 * a permission error.
 */
static void
test_keys_stay_under_the_cluster_prefix(void **state)
{
	const char *key = et_key("tight");
	et_member *a, *b;

	(void) state;
	assert_int_equal(etcdh_add_user(mtls_etcd, ROOT_PASSWORD, "tight", APP_PASSWORD, et_root(key)), 0);
	a = member(mtls_etcd, key, "...", 4, pki_file("ca.crt"), pki_file("client.crt"), pki_file("client.key"), "tight",
		APP_PASSWORD);
	b = member(mtls_etcd, key, "-_.", 4, pki_file("ca.crt"), pki_file("client.crt"), pki_file("client.key"), "tight",
		APP_PASSWORD);
	assert_int_equal(cluster_set_partition(a->c, ".."), -1); /* refused, as "." */
	assert_int_equal(cluster_set_partition(a->c, "..."), 0);
	assert_int_equal(cluster_set_partition(b->c, "..."), 0);
	assert_int_equal(cluster_set_env(a->c, "_-"), 0);
	assert_int_equal(cluster_set_env(b->c, "_-"), 0);
	assert_int_equal(cluster_set_shards(a->c, 8), 0);
	assert_int_equal(cluster_set_shards(b->c, 8), 0);
	assert_int_equal(cluster_set_shard_callback(a->c, no_shards), 0);
	assert_int_equal(cluster_set_shard_callback(b->c, no_shards), 0);
	assert_int_equal(cluster_set_address(a->c, "ws://10.0.0.1:80"), 0);
	assert_int_equal(cluster_report(a->c, 3, 10), 0);
	assert_int_equal(et_join(a), 0);
	assert_int_equal(et_join(b), 0);
	/* "-_." sorts before "..." */
	et_check(a, 1, 1, 2, 5);
	et_check(b, 0, 1, 2, 5);
	/* everything the two wrote is under /<key>/ (the role allows no
	 * more), and there is something beside the two member keys */
	assert_true(etcdh_count(mtls_etcd, et_root(key)) > 2);
	leave_is_seen_at_once(b, a, 4);
	et_member_free(a);
	et_member_free(b);
}

/* ---- every way of getting it wrong ---- */

struct logbuf
{
	char text[32768];
	size_t len;
};

static void
capture(CLUSTER *c, void *userdata, int priority, const char *message)
{
	struct logbuf *b = userdata;
	size_t n = strlen(message);

	(void) c;
	(void) priority;
	if(b->len + n < sizeof(b->text))
	{
		memcpy(b->text + b->len, message, n + 1);
		b->len += n;
	}
}

struct bad_case
{
	const char *name;
	int mtls;                     /* which etcd */
	int plain;                    /* http:// to its TLS port */
	const char *ca, *cert, *pkey; /* PKI file names, NULL: none */
	const char *user, *password;
	int err;           /* the errno cluster_join must fail with */
	const char *words; /* what the logged reason must say */
};

static const struct bad_case bad_cases[] = {
	{ "no CA: the server is not trusted", 0, 0, NULL, NULL, NULL, NULL, NULL, EPROTO, "certificate" },
	{ "the server's certificate expired", 2, 0, "ca.crt", NULL, NULL, NULL, NULL, EPROTO, "certificate has expired" },
	{ "a stranger's CA", 0, 0, "other-ca.crt", NULL, NULL, NULL, NULL, EPROTO, "certificate" },
	{ "a CA file that does not exist", 0, 0, "missing-ca.crt", NULL, NULL, NULL, NULL, EPROTO, "missing-ca.crt" },
	{ "http:// to a TLS port", 0, 1, NULL, NULL, NULL, NULL, NULL, EPROTO, "https://" },
	{ "no client certificate", 1, 0, "ca.crt", NULL, NULL, "app", APP_PASSWORD, EPROTO, "certificate" },
	{ "a client certificate from a stranger's CA", 1, 0, "ca.crt", "other-client.crt", "other-client.key", "app",
		APP_PASSWORD, EPROTO, "certificate" },
	{ "an expired client certificate", 1, 0, "ca.crt", "expired-client.crt", "expired-client.key", "app",
		APP_PASSWORD, EPROTO, "expired on" },
	{ "a wrong password", 1, 0, "ca.crt", "client.crt", "client.key", "app", WRONG_PASSWORD, EACCES,
		"invalid user ID or password" },
	{ "a user without permission on the cluster's keys", 1, 0, "ca.crt", "client.crt", "client.key", "stranger",
		STRANGER_PASSWORD, EPERM, "permission denied" },
	{ "no credentials where etcd requires them", 1, 0, "ca.crt", "client.crt", "client.key", NULL, NULL, EACCES,
		"user name is empty" },
};

/*
 * Each bad configuration makes cluster_join fail at once (well within
 * its deadline, no silent retries) with the errno of its cause, a logged
 * reason and cluster_errmsg() naming it; nothing is written to etcd; no
 * password appears in any message, even at debug verbosity.
 */
static void
test_bad_tls_and_auth_fail_clearly(void **state)
{
	const char *key = et_key("bad");
	/* scaled: under valgrind a handshake that loads the system's CAs
	 * takes seconds */
	const int request_ms = (int) et_t(2) * 1000, join_ms = (int) et_t(8) * 1000;
	size_t i;
	int failures = 0;

	(void) state;
	for(i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
	{
		const struct bad_case *bc = &bad_cases[i];
		etcdh *e = bc->mtls ? mtls_etcd : tls_etcd;
		struct logbuf *log = calloc(1, sizeof(*log));
		char registry[128], errmsg[1024];
		CLUSTER *c;
		double t0, took;
		int rc, err;

		assert_non_null(log);
		if(bc->mtls == 2)
		{
			snprintf(registry, sizeof(registry), "https://127.0.0.1:%d/", expired_port);
		}
		else
		{
			snprintf(registry, sizeof(registry), "%s%s", bc->plain ? "http" : "https", strchr(etcdh_endpoint(e), ':'));
		}
		c = cluster_create(key);
		assert_non_null(c);
		assert_int_equal(cluster_set_instance(c, "bad"), 0);
		assert_int_equal(cluster_set_registry(c, registry), 0);
		assert_int_equal(cluster_set_timeouts(c, request_ms, join_ms), 0);
		assert_int_equal(cluster_set_userdata(c, log), 0);
		assert_int_equal(cluster_set_logger2(c, capture), 0);
		assert_int_equal(cluster_set_verbose(c, 1), 0);
		assert_int_equal(cluster_set_tls(c, bc->ca ? pki_file(bc->ca) : NULL, bc->cert ? pki_file(bc->cert) : NULL,
							 bc->pkey ? pki_file(bc->pkey) : NULL),
			0);
		if(bc->user)
		{
			assert_int_equal(cluster_set_credentials(c, bc->user, bc->password), 0);
		}
		t0 = etcdh_now();
		rc = cluster_join(c);
		err = errno;
		snprintf(errmsg, sizeof(errmsg), "%s", cluster_errmsg(c));
		took = etcdh_now() - t0;
		fprintf(stderr, "# %s: cluster_join %d, errno %s, %.3f s; errmsg: %s\n", bc->name, rc, strerror(err), took,
			errmsg);
		if(rc != -1 || err != bc->err || took > join_ms / 2000.0 || !strstr(log->text, bc->words) ||
			!strstr(errmsg, bc->words) || strstr(log->text, "Secret") || strstr(errmsg, "Secret") ||
			etcdh_count(e, et_root(key)) != 0)
		{
			fprintf(stderr, "#   FAILED: wanted -1, errno %s, under %.1f s, \"%s\" logged and in the error message, "
							"no password, nothing in etcd (%lld keys); the log:\n%s",
				strerror(bc->err), join_ms / 2000.0, bc->words, etcdh_count(e, et_root(key)), log->text);
			failures++;
		}
		cluster_destroy(c);
		free(log);
	}
	assert_int_equal(failures, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_tls_server_verified, et_teardown_members),
		cmocka_unit_test_teardown(test_slow_handshake_joins, et_teardown_members),
		cmocka_unit_test_teardown(test_leave_over_http2_opens_no_connection, et_teardown_members),
		cmocka_unit_test_teardown(test_mtls_with_auth, et_teardown_members),
		cmocka_unit_test_teardown(test_keys_stay_under_the_cluster_prefix, et_teardown_members),
		cmocka_unit_test_teardown(test_bad_tls_and_auth_fail_clearly, et_teardown_members),
	};

	if(etcdh_skip())
	{
		return 0;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
