#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Generate configure and Makefile.in (they are not kept in git).
set -e
cd "$(dirname "$0")"
if [ ! -f /usr/share/aclocal/ax_pthread.m4 ] && ! aclocal --print-ac-dir >/dev/null 2>&1; then
	echo "autogen.sh: autoconf-archive is missing (Debian: apt-get install autoconf-archive)" >&2
	exit 1
fi
exec autoreconf -fi
