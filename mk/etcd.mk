# SPDX-License-Identifier: Apache-2.0
# (etcd fragment: owned by that area)
LIBCLUSTER_SOURCES += libcluster/http.h libcluster/engine-etcd3.c
