# SPDX-License-Identifier: Apache-2.0
# (advisor fragment: owned by that area)
LIBCLUSTER_SOURCES += libcluster/advisor-api.c
