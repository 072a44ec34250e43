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
