/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cert.c: a certificate's validity dates, read from PEM without a TLS
 * library. Two real certificates made by openssl (dates checked against
 * "openssl x509 -dates"), one with UTCTime dates and one whose notAfter
 * is past 2049 and so a GeneralizedTime; then every truncation and every
 * single-byte change of one of them, and text that is no certificate:
 * never a crash or a read out of bounds (ASan), never a wrong date.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cert.h"

/* notBefore Dec  2 13:56:30 2026 GMT, notAfter Jan  1 13:56:30 2027 GMT */
static const char utc_pem[] =
	"a comment line, as some files carry\n"
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBbjCCAROgAwIBAgIUJDKlzdvtjQy6Jp3eGQwdkg6JdN8wCgYIKoZIzj0EAwIw\n"
	"DDEKMAgGA1UECgwBdDAeFw0yNjEyMDIxMzU2MzBaFw0yNzAxMDExMzU2MzBaMAwx\n"
	"CjAIBgNVBAoMAXQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAS5tZ3cS6oczzoZ\n"
	"ql9FjpJknZjb4gPHZuVaaRT/6Feh+3eU7k73YDTADCsnhn9gtgmDhv9W8J44GQ3D\n"
	"bHdt427ao1MwUTAdBgNVHQ4EFgQUQ6Tv6VQmmEHS0eIV32uZPWHtfTcwHwYDVR0j\n"
	"BBgwFoAUQ6Tv6VQmmEHS0eIV32uZPWHtfTcwDwYDVR0TAQH/BAUwAwEB/zAKBggq\n"
	"hkjOPQQDAgNJADBGAiEAz9rrC71ocTEGlLnnxCgfrehhfe99t2PR6C7NC+CaTdgC\n"
	"IQCGEqSWpignmDa9je5qoZgM2Yq9uoMdURvxqKrTqzvdXg==\n"
	"-----END CERTIFICATE-----\n";

/* notBefore Dec  2 13:56:30 2026 GMT, notAfter Apr 19 13:56:30 2054 GMT */
static const char gen_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBcDCCARWgAwIBAgIUdCAUn+EAmomKiLnS5fS63+1JftowCgYIKoZIzj0EAwIw\n"
	"DDEKMAgGA1UECgwBdDAgFw0yNjEyMDIxMzU2MzBaGA8yMDU0MDQxOTEzNTYzMFow\n"
	"DDEKMAgGA1UECgwBdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABGPuoVm8NSfJ\n"
	"XEzcsk91IQ9+8pUDKcwOgxJ9zXh6UkQWtYeIsiJgcYOUjcv2PlDTCt6Z2v3XZkAb\n"
	"cqFcnvofUI+jUzBRMB0GA1UdDgQWBBSljbeJ5B6LgyjeGnXS2n/hf7DV7zAfBgNV\n"
	"HSMEGDAWgBSljbeJ5B6LgyjeGnXS2n/hf7DV7zAPBgNVHRMBAf8EBTADAQH/MAoG\n"
	"CCqGSM49BAMCA0kAMEYCIQDx3oZ3VASNaISkCx6AcjMHmJbyXkrd6Uyqr5YM8qcN\n"
	"GQIhALxjzJ0mORmzON7pxCoMWF1eeJWGYlpl1ARY8w7Drkkl\n"
	"-----END CERTIFICATE-----\n";

static void
test_real_certificates(void **state)
{
	int64_t nb = 0, na = 0;

	(void) state;
	assert_int_equal(cluster__cert_validity(utc_pem, strlen(utc_pem), &nb, &na), 0);
	assert_int_equal(nb, 1796219790); /* date -d "Dec  2 13:56:30 2026 GMT" +%s */
	assert_int_equal(na, 1798811790);
	assert_int_equal(cluster__cert_validity(gen_pem, strlen(gen_pem), &nb, &na), 0);
	assert_int_equal(nb, 1796219790);
	assert_int_equal(na, 2660219790LL);
}

static void
test_not_a_certificate(void **state)
{
	static const char *bad[] = {
		"",
		"-----BEGIN CERTIFICATE-----",
		"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
		"-----BEGIN CERTIFICATE-----\nMIIB*bad*\n-----END CERTIFICATE-----\n",
		"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
		"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	};
	int64_t nb, na;
	size_t i;

	(void) state;
	for(i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		assert_int_equal(cluster__cert_validity(bad[i], strlen(bad[i]), &nb, &na), EINVAL);
	}
	assert_int_equal(cluster__cert_validity(NULL, 0, &nb, &na), EINVAL);
}

/* Base64 of der[0..n) wrapped as a PEM certificate into out. */
static void
pem(const unsigned char *der, size_t n, char *out, size_t cap)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = (size_t) snprintf(out, cap, "-----BEGIN CERTIFICATE-----\n");
	unsigned v;

	for(i = 0; i < n; i += 3)
	{
		v = (unsigned) der[i] << 16 | (i + 1 < n ? (unsigned) der[i + 1] << 8 : 0) | (i + 2 < n ? der[i + 2] : 0);
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? b64[v & 63] : '=';
	}
	snprintf(out + o, cap - o, "\n-----END CERTIFICATE-----\n");
}

/* The DER of gen_pem, decoded here independently of cert.c. */
static size_t
gen_der(unsigned char *der, size_t cap)
{
	const char *p = strchr(gen_pem, '\n') + 1, *end = strstr(gen_pem, "-----END");
	unsigned acc = 0;
	int bits = 0;
	size_t n = 0;
	const char *at;

	for(; p < end && *p != '='; p++)
	{
		if(*p == '\n')
		{
			continue;
		}
		at = strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", *p);
		assert_non_null(at);
		acc = acc << 6 | (unsigned) (at - "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
		bits += 6;
		if(bits >= 8)
		{
			bits -= 8;
			assert_true(n < cap);
			der[n++] = (unsigned char) (acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return n;
}

/* Every truncation fails (the outer length no longer fits); every
 * single-byte change either fails or, where it leaves the structure and
 * the dates alone, gives the true dates. */
static void
test_truncations_and_changes(void **state)
{
	unsigned char der[1024], copy[1024];
	char text[2048];
	int64_t nb, na;
	size_t n, k, i;
	int r, ok = 0, refused = 0;
	static const unsigned char values[] = { 0x00, 0x01, 0x30, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0xff, '0', '9', 'Z' };

	(void) state;
	n = gen_der(der, sizeof(der));
	assert_int_equal(n, 372);
	for(k = 0; k < n; k++)
	{
		pem(der, k, text, sizeof(text));
		assert_int_equal(cluster__cert_validity(text, strlen(text), &nb, &na), EINVAL);
	}
	for(i = 0; i < n; i++)
	{
		for(k = 0; k < sizeof(values); k++)
		{
			memcpy(copy, der, n);
			copy[i] = values[k];
			pem(copy, n, text, sizeof(text));
			nb = na = -1;
			r = cluster__cert_validity(text, strlen(text), &nb, &na);
			assert_true(r == 0 || r == EINVAL);
			if(r == 0 && i >= 63 && i < 95)
			{
				/* a changed date byte that still parses: a date, but
				 * never the original pair */
				assert_true(nb != 1796219790 || na != 2660219790LL || copy[i] == der[i]);
			}
			else if(r == 0)
			{
				assert_int_equal(nb, 1796219790);
				assert_int_equal(na, 2660219790LL);
			}
			ok += r == 0;
			refused += r != 0;
		}
	}
	fprintf(stderr, "# %zu single-byte changes: %d parsed, %d refused\n", n * sizeof(values), ok, refused);
	assert_true(refused > 0 && ok > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_certificates),
		cmocka_unit_test(test_not_a_certificate),
		cmocka_unit_test(test_truncations_and_changes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
