# SPDX-License-Identifier: Apache-2.0
# make fuzz: libFuzzer harnesses (fuzz/) for every parser of data that
# comes from the network (etcd v3 answers and the status record, the v3
# watch stream, etcd v2 answers, the stream line splitter, the HTTP/1.1 answer
# of a duplex stream over plain HTTP), the endpoint
# list, the client certificate's dates, and cluster-gateway's HTTP server
# (httpd: built from its own sources with libevent and http-parser). Built with clang
# (-fsanitize=fuzzer,address,undefined) straight from the pure sources,
# apart from the automake build; each harness runs FUZZ_SECONDS from its
# seeds (fuzz/seeds/NAME) and keeps what it finds in fuzzbin/corpus-NAME
# (binaries and logs there too). A crash or a failed check stops the run,
# leaves the input in fuzzbin/crash-NAME-*, and fails the target.
FUZZ_CC = clang
FUZZ_SECONDS = 60
FUZZ_TARGETS = etcd3 watch etcd2 endpoints linesplit http1 cert httpd
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -DHAVE_CONFIG_H \
	-I$(top_builddir) -I$(top_srcdir)/include -I$(top_srcdir)/libcluster -I$(top_srcdir)/fuzz $(CJSON_CFLAGS)
FUZZ_LIB_FILES = $(top_srcdir)/libcluster/etcd3-proto.c $(top_srcdir)/libcluster/etcd2-proto.c \
	$(top_srcdir)/libcluster/json.c $(top_srcdir)/libcluster/endpoints.c $(top_srcdir)/libcluster/linesplit.c $(top_srcdir)/libcluster/http1-reader.c \
	$(top_srcdir)/libcluster/cert.c $(top_srcdir)/libcluster/escape.c $(top_srcdir)/libcluster/util.c \
	$(top_srcdir)/libcluster/view.c $(top_srcdir)/libcluster/member-table.c
FUZZ_HTTPD_FILES = -I$(top_srcdir)/cluster-gateway -I$(top_srcdir)/cli-common $(LIBEVENT_CFLAGS) \
	$(top_srcdir)/cluster-gateway/httpd.c $(top_srcdir)/cluster-gateway/log.c $(top_srcdir)/cli-common/cli-common.c \
	$(HTTP_PARSER_LIBS) $(LIBEVENT_LIBS)
# (the files, not the directory: "fuzz" is also the target below, and
# make would run it to "make" the directory for the tarball)
EXTRA_DIST += fuzz/fuzz.h fuzz/run.sh $(FUZZ_TARGETS:%=fuzz/fuzz-%.c) fuzz/seeds

fuzz-build:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || \
		{ echo "$@: $(FUZZ_CC) not found (Debian package clang)" >&2; exit 1; }
	@$(MKDIR_P) fuzzbin
	@for t in $(FUZZ_TARGETS); do \
		echo "  FUZZCC   fuzzbin/fuzz-$$t"; \
		case $$t in httpd) files="$(FUZZ_HTTPD_FILES)" ;; *) files="$(FUZZ_LIB_FILES) $(CJSON_LIBS)" ;; esac; \
		$(FUZZ_CC) $(FUZZ_CFLAGS) $(top_srcdir)/fuzz/fuzz-$$t.c $$files -o fuzzbin/fuzz-$$t || exit 1; \
	done

# FUZZ_JOBS harnesses at a time (libFuzzer keeps one core busy each);
# xargs fails the target if any of them found a crash.
FUZZ_JOBS = 2
fuzz: fuzz-build
	@printf '%s\n' $(FUZZ_TARGETS) | \
		xargs -P $(FUZZ_JOBS) -I{} sh $(top_srcdir)/fuzz/run.sh {} $(FUZZ_SECONDS) $(top_srcdir)/fuzz/seeds fuzzbin

.PHONY: fuzz fuzz-build
