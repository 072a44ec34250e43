# SPDX-License-Identifier: Apache-2.0
# cluster-gateway: the front door for clients that cannot link the library
# (HTTP redirects, the member list and a TCP proxy, on libevent and
# http-parser). Like cluster-test, an ordinary client of the public
# header: its include path lacks libcluster/ and it links the installed
# library, not the core.
bin_PROGRAMS += cluster-gateway/cluster-gateway
cluster_gateway_cluster_gateway_SOURCES = \
	cluster-gateway/gateway.h \
	cluster-gateway/main.c \
	cluster-gateway/options.c \
	cluster-gateway/view.c \
	cluster-gateway/http.c \
	cluster-gateway/httpd.c \
	cluster-gateway/log.c \
	cluster-gateway/choose.c \
	cluster-gateway/tcp.c \
	cluster-gateway/register.c \
	cli-common/cli-common.h \
	cli-common/cli-common.c
cluster_gateway_cluster_gateway_CPPFLAGS = -I$(top_srcdir)/include -I$(top_srcdir)/cli-common
cluster_gateway_cluster_gateway_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(CJSON_CFLAGS)
cluster_gateway_cluster_gateway_LDADD = libcluster/libcluster.la $(HTTP_PARSER_LIBS) $(LIBEVENT_LIBS) $(CJSON_LIBS) $(PTHREAD_LIBS) -lm
dist_man_MANS = cluster-gateway/cluster-gateway.1

# Against a private etcd and real cluster-test members; needs the harness.
TESTS += tests/test_cli_gateway.sh
EXTRA_DIST += tests/test_cli_gateway.sh tests/etcd-script-lib.sh
tests/test_cli_gateway.log: tests/etcd-harness$(EXEEXT)

# The TCP proxy against real echo servers (tests/tcp-helper) and members.
check_PROGRAMS += tests/tcp-helper
tests_tcp_helper_SOURCES = tests/tcp-helper.c
tests_tcp_helper_LDADD = -lpthread
TESTS += tests/test_cli_gateway_tcp.sh
EXTRA_DIST += tests/test_cli_gateway_tcp.sh
tests/test_cli_gateway_tcp.log: tests/etcd-harness$(EXEEXT) tests/tcp-helper$(EXEEXT)

# The gateway's pure choice logic (choose.c), checked exhaustively.
CMOCKA_TESTS += tests/test_gateway_choose
tests_test_gateway_choose_SOURCES = tests/test_gateway_choose.c cluster-gateway/choose.c
tests_test_gateway_choose_CPPFLAGS = -I$(top_srcdir)/include -I$(top_srcdir)/cli-common -I$(top_srcdir)/cluster-gateway
tests_test_gateway_choose_CFLAGS = $(TEST_CFLAGS)
tests_test_gateway_choose_LDADD = $(CMOCKA_LIBS) -lm

# The HTTP server (httpd.c) over loopback, a stub for the endpoints.
CMOCKA_TESTS += tests/test_gateway_httpd
tests_test_gateway_httpd_SOURCES = tests/test_gateway_httpd.c cluster-gateway/httpd.c cluster-gateway/log.c cli-common/cli-common.c
tests_test_gateway_httpd_CPPFLAGS = -I$(top_srcdir)/include -I$(top_srcdir)/cli-common -I$(top_srcdir)/cluster-gateway
tests_test_gateway_httpd_CFLAGS = $(TEST_CFLAGS) $(LIBEVENT_CFLAGS)
tests_test_gateway_httpd_LDADD = $(CMOCKA_LIBS) $(HTTP_PARSER_LIBS) $(LIBEVENT_LIBS) libcluster/libcluster.la

# /status: the page is a plain HTML file, built into the program as a C
# string (each line quoted: backslashes and double quotes escaped).
nodist_cluster_gateway_cluster_gateway_SOURCES = cluster-gateway/status-html.c
CLEANFILES += cluster-gateway/status-html.c
EXTRA_DIST += cluster-gateway/status.html
cluster-gateway/status-html.c: $(srcdir)/cluster-gateway/status.html
	$(AM_V_GEN)$(MKDIR_P) cluster-gateway && $(AWK) 'BEGIN { print "/* generated from cluster-gateway/status.html: do not edit */"; print "const char gw_status_html[] ="; } { gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); print "\t\"" $$0 "\\n\""; } END { print "\t\"\";"; }' $(srcdir)/cluster-gateway/status.html >$@
