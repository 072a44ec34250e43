# SPDX-License-Identifier: Apache-2.0
# Local configure macros of libcluster.

# CLUSTER_WARN_FLAGS: collect the warning flags the compiler accepts into
# WARN_CFLAGS (never into the user's CFLAGS).
AC_DEFUN([CLUSTER_WARN_FLAGS], [
	WARN_CFLAGS=""
	for flag in -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes \
		-Wmissing-prototypes -Wmissing-declarations -Wold-style-definition \
		-Wpointer-arith -Wwrite-strings -Wundef -Wvla -Wno-unused-parameter; do
		AX_CHECK_COMPILE_FLAG([$flag], [WARN_CFLAGS="$WARN_CFLAGS $flag"], [], [-Werror])
	done
	AC_SUBST([WARN_CFLAGS])
])

# CLUSTER_BUILD_OPTIONS: --enable-werror, --enable-sanitizers (ASan+UBSan),
# --enable-tsan; symbol visibility.
AC_DEFUN([CLUSTER_BUILD_OPTIONS], [
	AC_ARG_ENABLE([werror],
		[AS_HELP_STRING([--enable-werror], [treat compiler warnings as errors])],
		[], [enable_werror=no])
	dnl WERROR_CFLAGS alone for targets that set their own warning flags
	dnl (the header tests): -Werror there too only when asked for.
	WERROR_CFLAGS=""
	AS_IF([test "x$enable_werror" = xyes], [WERROR_CFLAGS="-Werror"])
	WARN_CFLAGS="$WARN_CFLAGS $WERROR_CFLAGS"
	AC_SUBST([WERROR_CFLAGS])

	AC_ARG_ENABLE([sanitizers],
		[AS_HELP_STRING([--enable-sanitizers], [build with AddressSanitizer and UndefinedBehaviorSanitizer])],
		[], [enable_sanitizers=no])
	AC_ARG_ENABLE([tsan],
		[AS_HELP_STRING([--enable-tsan], [build with ThreadSanitizer])],
		[], [enable_tsan=no])
	AS_IF([test "x$enable_sanitizers" = xyes && test "x$enable_tsan" = xyes],
		[AC_MSG_ERROR([--enable-sanitizers and --enable-tsan cannot be combined])])
	SAN_CFLAGS=""
	SAN_LDFLAGS=""
	AS_IF([test "x$enable_sanitizers" = xyes], [
		SAN_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
		SAN_LDFLAGS="-fsanitize=address,undefined"])
	AS_IF([test "x$enable_tsan" = xyes], [
		SAN_CFLAGS="-fsanitize=thread -fno-omit-frame-pointer"
		SAN_LDFLAGS="-fsanitize=thread"])
	AC_SUBST([SAN_CFLAGS])
	AC_SUBST([SAN_LDFLAGS])
	AM_CONDITIONAL([SANITIZED], [test "x$enable_sanitizers" = xyes || test "x$enable_tsan" = xyes])

	VISIBILITY_CFLAGS=""
	AX_CHECK_COMPILE_FLAG([-fvisibility=hidden], [VISIBILITY_CFLAGS="-fvisibility=hidden"])
	AC_SUBST([VISIBILITY_CFLAGS])
])

# CLUSTER_CHECK_CMOCKA: cmocka runs the unit tests, but nothing else needs
# it, so a machine without it can still build the library, cluster-test
# and the shell tests. --with-cmocka=check (the default) uses cmocka when
# pkg-config finds it; --with-cmocka makes its absence an error (bootstrap
# and distcheck pass it, so that CI never loses its unit tests silently);
# --without-cmocka builds no cmocka program. Sets the HAVE_CMOCKA
# conditional.
AC_DEFUN([CLUSTER_CHECK_CMOCKA], [
	AC_ARG_WITH([cmocka],
		[AS_HELP_STRING([--without-cmocka],
			[build no cmocka unit-test program (default: build them if cmocka is found; --with-cmocka: require it)])],
		[], [with_cmocka=check])
	have_cmocka=no
	CMOCKA_MISSING="configured --without-cmocka"
	AS_IF([test "x$with_cmocka" != xno], [
		CMOCKA_MISSING="cmocka not found"
		PKG_CHECK_MODULES([CMOCKA], [cmocka >= 1.1], [have_cmocka=yes], [
			AS_IF([test "x$with_cmocka" = xyes],
				[AC_MSG_ERROR([cmocka >= 1.1 not found: install the Debian package libcmocka-dev])])])])
	AS_IF([test "x$have_cmocka" = xno],
		[AC_MSG_NOTICE([cmocka not found or disabled: make check will not build the unit-test programs (Debian package libcmocka-dev)])])
	dnl What make check says about the programs it did not build.
	AC_SUBST([CMOCKA_MISSING])
	AM_CONDITIONAL([HAVE_CMOCKA], [test "x$have_cmocka" = xyes])
])

# CLUSTER_CHECK_CXX: C++ is used only by tests/headertest-cxx. AC_PROG_CXX
# "succeeds" even when no C++ compiler is installed (it falls back to the
# name g++), so check that one really compiles and links. Sets HAVE_CXX.
AC_DEFUN([CLUSTER_CHECK_CXX], [
	AC_CACHE_CHECK([whether the C++ compiler works], [cluster_cv_cxx_works], [
		AC_LANG_PUSH([C++])
		AC_LINK_IFELSE([AC_LANG_PROGRAM([[#include <cstdio>]], [[std::puts("C++");]])],
			[cluster_cv_cxx_works=yes], [cluster_cv_cxx_works=no])
		AC_LANG_POP([C++])])
	AS_IF([test "x$cluster_cv_cxx_works" = xno],
		[AC_MSG_NOTICE([no working C++ compiler: make check will not build the C++ header test (Debian package g++)])])
	AM_CONDITIONAL([HAVE_CXX], [test "x$cluster_cv_cxx_works" = xyes])
])
