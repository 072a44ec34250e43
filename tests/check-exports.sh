#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The shared library must export exactly the public cluster_* functions
# listed in tests/exports.txt, and nothing else.
set -u
lib="${top_builddir:-.}/libcluster/.libs/libcluster.so"
if [ ! -f "$lib" ]; then
	echo "SKIP: no shared library at $lib (built with --disable-shared?)"
	exit 77
fi
if ! command -v nm >/dev/null 2>&1; then
	echo "SKIP: nm not found"
	exit 77
fi
actual=$(mktemp) || exit 99
trap 'rm -f "$actual"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//' | sort -u > "$actual"
if diff -u "${top_srcdir:-.}/tests/exports.txt" "$actual"; then
	echo "exports match tests/exports.txt ($(wc -l < "$actual") symbols)"
	exit 0
fi
echo "FAIL: exported symbols differ from tests/exports.txt (- expected, + actual)"
exit 1
