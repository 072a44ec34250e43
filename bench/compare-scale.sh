#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Run bench-scale (this checkout's bench/bench-scale.c, benchlib and etcd
# harness) against the library of another git revision, so that today's
# figures and the new ones come from the same bench source:
#
#   bench/compare-scale.sh REV [bench-scale options and N ...]
#
# e.g. the old library, then the new one, one after the other:
#   bench/compare-scale.sh 428af70 2>&1 | tee scale-old.txt
#   bench/compare-scale.sh HEAD    2>&1 | tee scale-new.txt
#
# REV is checked out in a temporary git worktree under /tmp, its library
# alone is built there (autogen + configure + make libcluster.la), the
# bench is compiled against that tree's include/libcluster.h and linked
# with its static libcluster.a, and run. The worktree is removed at the
# end (KEEP=1 keeps it). CC, CFLAGS and ETCD are honoured.
set -e

if [ $# -lt 1 ]; then
	echo "usage: $0 REV [bench-scale options and N ...]" >&2
	exit 2
fi
rev=$1
shift
here=$(cd "$(dirname "$0")/.." && pwd)
git -C "$here" rev-parse --verify -q "$rev^{commit}" >/dev/null || {
	echo "compare-scale: $rev is not a revision of $here" >&2
	exit 2
}
tmp=$(mktemp -d /tmp/compare-scale.XXXXXX)
cleanup() {
	if [ -z "$KEEP" ]; then
		git -C "$here" worktree remove --force "$tmp/lib" >/dev/null 2>&1 || true
		rm -rf "$tmp"
	else
		echo "compare-scale: kept $tmp" >&2
	fi
}
trap cleanup EXIT INT TERM

echo "compare-scale: library at $rev ($(git -C "$here" rev-parse --short "$rev")) in $tmp/lib" >&2
git -C "$here" worktree add --detach "$tmp/lib" "$rev" >/dev/null 2>&1
(
	cd "$tmp/lib"
	./autogen.sh >"$tmp/build.log" 2>&1
	mkdir -p build
	cd build
	../configure >>"$tmp/build.log" 2>&1
	make -j"$(nproc 2>/dev/null || echo 2)" libcluster/libcluster.la >>"$tmp/build.log" 2>&1
) || {
	echo "compare-scale: building the library of $rev failed; last lines of $tmp/build.log:" >&2
	tail -20 "$tmp/build.log" >&2
	KEEP=1
	exit 1
}

lib=$tmp/lib/build/libcluster/.libs/libcluster.a
${CC:-cc} ${CFLAGS:--O2 -g} -pthread \
	-I"$tmp/lib/include" -I"$here/tests" -I"$here/bench" \
	"$here/bench/bench-scale.c" "$here/bench/benchlib.c" \
	"$here/tests/etcdharness.c" "$here/tests/etcdclient.c" "$here/tests/etcdproxy.c" \
	"$lib" $(pkg-config --cflags --libs libcurl libcjson) -lm \
	-o "$tmp/bench-scale"

echo "compare-scale: bench-scale (source of $(git -C "$here" rev-parse --short HEAD)$(git -C "$here" diff --quiet -- bench tests || echo '+changes')) against the library of $rev" >&2
"$tmp/bench-scale" "$@"
