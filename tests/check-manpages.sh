#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The manual pages cannot rot:
#  (a) every symbol in tests/exports.txt has man/<symbol>.3, either the
#      page of its group or a one-line ".so man3/<group>.3" whose target
#      exists in man/ and names the symbol in its NAME section;
#  (b) every page in man/ is installed (listed in mk/man.mk) and every
#      page listed there exists;
#  (c) every page (and cluster-gateway/cluster-gateway.1) renders without
#      a single warning from man --warnings and from groff -ww;
#  (d) every option that cluster-test --help prints appears in
#      man/cluster-test.1 (as roff writes it: \-k, \-\-cacert).
# Exit 0 when all hold, 1 naming each problem, 77 when no renderer exists.
set -u
here=$(dirname "$0")
srcdir=${top_srcdir:-$here/..}
builddir=${top_builddir:-$srcdir}
mandir=$srcdir/man
failures=0

fail()
{
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# ---- (a) one page per exported symbol ------------------------------------
symbols=0
while read -r sym; do
	[ -n "$sym" ] || continue
	symbols=$((symbols + 1))
	page=$mandir/$sym.3
	if [ ! -f "$page" ]; then
		fail "exported symbol $sym has no man page: man/$sym.3 is missing"
		continue
	fi
	target=$page
	first=$(sed -n 1p "$page")
	case $first in
	.so\ *)
		ref=${first#.so }
		target=$mandir/${ref#man3/}
		if [ "$(wc -l <"$page")" -ne 1 ] || [ "$ref" = "${ref#man3/}" ]; then
			fail "man/$sym.3 must be the single line '.so man3/<group>.3', not: $first"
			continue
		fi
		if [ ! -f "$target" ]; then
			fail "man/$sym.3 points at $ref, which is not in man/"
			continue
		fi
		if sed -n 1p "$target" | grep -q '^\.so '; then
			fail "man/$sym.3 points at $ref, which is itself a .so page"
			continue
		fi
		;;
	esac
	if ! sed -n '/^\.SH NAME/,/^\.SH SYNOPSIS/p' "$target" | grep -qw -- "$sym"; then
		fail "man/$sym.3: $sym is not named in the NAME section of man/${target##*/}"
	fi
done <"$srcdir/tests/exports.txt"
echo "checked $symbols exported symbols against man/<symbol>.3 and the NAME of its page"

# ---- (b) man/ and mk/man.mk agree ----------------------------------------
listed=$(sed -n 's|^[[:space:]]*\(man/[^[:space:]\\]*\).*|\1|p' "$srcdir/mk/man.mk")
pages=0
for page in "$mandir"/*.[1-8]; do
	[ -f "$page" ] || continue
	pages=$((pages + 1))
	name=man/${page##*/}
	if ! printf '%s\n' "$listed" | grep -qxF "$name"; then
		fail "$name is not listed in mk/man.mk (it would not be installed or distributed)"
	fi
done
for name in $listed; do
	[ -f "$srcdir/$name" ] || fail "mk/man.mk lists $name, which does not exist"
done
echo "checked the $pages files in man/ against the list mk/man.mk installs"

# ---- (c) every page renders without a warning ----------------------------
have_man=no
have_groff=no
command -v man >/dev/null 2>&1 && have_man=yes
command -v groff >/dev/null 2>&1 && have_groff=yes
rendered=0
if [ $have_man = no ] && [ $have_groff = no ]; then
	echo "SKIP (rendering): neither man nor groff is installed (Debian packages man-db, groff-base)"
else
	for page in "$mandir"/*.[1-8] "$srcdir/cluster-gateway/cluster-gateway.1"; do
		[ -f "$page" ] || continue
		# .so pages are checked in (a): rendered alone they would look
		# for their target under the current directory
		sed -n 1p "$page" | grep -q '^\.so ' && continue
		rendered=$((rendered + 1))
		shown=${page#"$srcdir"/}
		if [ $have_man = yes ]; then
			out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
			[ -z "$out" ] || fail "man --warnings on $shown: $out"
		fi
		if [ $have_groff = yes ]; then
			out=$(LC_ALL=C.UTF-8 groff -man -ww -z -Tutf8 "$page" 2>&1)
			[ -z "$out" ] || fail "groff -ww on $shown: $out"
		fi
	done
	echo "rendered $rendered pages looking for warnings (man --warnings: $have_man, groff -ww: $have_groff)"
fi

# ---- (d) cluster-test(1) documents every option of --help ----------------
ct=$builddir/cluster-test/cluster-test
if [ ! -x "$ct" ]; then
	fail "cannot run $ct --help (build it first)"
else
	help=$("$ct" --help) || fail "$ct --help failed"
	# an option: - or -- and a letter, after a space, a comma, a bracket
	# or the start of a line (so "cluster-test" and "re-balance" are not)
	options=$(printf '%s\n' "$help" | grep -oE '(^|[[:space:],(\[])--?[A-Za-z][A-Za-z0-9-]*' |
		sed -E 's/^[^-]+//' | sort -u)
	count=0
	for opt in $options; do
		count=$((count + 1))
		# roff writes each - as \- ; the option must stand alone
		re=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
		if ! grep -qE "(^|[^A-Za-z0-9-])$re([^A-Za-z0-9\\\\]|\\\\[^-]|\$)" "$mandir/cluster-test.1"; then
			fail "option $opt of cluster-test --help is not in man/cluster-test.1 (looked for $(printf '%s' "$opt" | sed 's/-/\\-/g'))"
		fi
	done
	echo "checked the $count options of cluster-test --help against man/cluster-test.1"
fi

if [ $failures -gt 0 ]; then
	echo "FAIL: $failures problem(s) with the manual pages"
	exit 1
fi
if [ $rendered -eq 0 ]; then
	exit 77
fi
echo "PASS: manual pages"
exit 0
