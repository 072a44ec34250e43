/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The validity dates of a PEM certificate, read without a TLS library.
 * Why: a server that refuses our client certificate says only "bad
 * certificate" in its TLS alert, whatever the reason. The commonest
 * reason in production is a certificate that expired; join reads its
 * dates first and says so (cluster.c). Pure: no I/O, no locks.
 */
#ifndef CLUSTER_CERT_H_
#define CLUSTER_CERT_H_ 1

#include <stddef.h>
#include <stdint.h>

/*
 * Find the first "-----BEGIN CERTIFICATE-----" block in text (len bytes,
 * need not be NUL-terminated), decode it and read the notBefore and
 * notAfter times of its TBSCertificate, as seconds since the epoch (UTC).
 * Returns 0, or EINVAL when there is no such block, it is not a
 * well-formed X.509 certificate as far as those fields go, or memory ran
 * out (the caller then does without the dates).
 */
int cluster__cert_validity(const char *text, size_t len, int64_t *not_before, int64_t *not_after);

#endif /*!CLUSTER_CERT_H_*/
