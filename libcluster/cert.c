/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A certificate's validity dates (cert.h): PEM to DER, then a walk of the
 * DER (ITU-T X.690) down to Certificate.tbsCertificate.validity (RFC
 * 5280 section 4.1). Every length is checked against what is left.
 */
#ifdef HAVE_CONFIG_H
# include "config.h" /* _GNU_SOURCE: memmem() */
#endif

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "etcd3-proto.h" /* cluster__b64_decode() */

#define PEM_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_END   "-----END CERTIFICATE-----"
/* larger than any certificate a registry client presents (DER bytes, and
 * its base64 text) */
#define DER_MAX 16384
#define B64_MAX (DER_MAX / 3 * 4 + 8)

/* The base64 between p and end without its line breaks and spaces, into
 * out (cap bytes, NUL-terminated); its length, or 0 if it does not fit. */
static size_t
b64_text(const char *p, const char *end, char *out, size_t cap)
{
	size_t n = 0;

	for(; p < end; p++)
	{
		if(*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t')
		{
			continue;
		}
		if(n + 1 >= cap)
		{
			return 0;
		}
		out[n++] = *p;
	}
	out[n] = 0;
	return n;
}

/* One DER element at *p (before end): its tag, and its contents in
 * [*body, *body + *blen); *p moves past it. 0 or EINVAL. */
static int
tlv(const unsigned char **p, const unsigned char *end, int *tag, const unsigned char **body, size_t *blen)
{
	const unsigned char *q = *p;
	size_t len = 0;
	int n;

	if(end - q < 2 || (q[0] & 0x1f) == 0x1f)
	{
		return EINVAL;
	}
	*tag = q[0];
	if(q[1] < 0x80)
	{
		len = q[1];
		q += 2;
	}
	else
	{
		n = q[1] & 0x7f;
		if(n < 1 || n > 3 || end - q < 2 + n)
		{
			return EINVAL;
		}
		for(q += 2; n > 0; n--)
		{
			len = (len << 8) | *q++;
		}
	}
	if((size_t) (end - q) < len)
	{
		return EINVAL;
	}
	*body = q;
	*blen = len;
	*p = q + len;
	return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	return era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

/* n decimal digits at s; -1 if any is not a digit. */
static int
digits(const unsigned char *s, int n)
{
	int v = 0;

	for(; n > 0; n--, s++)
	{
		if(*s < '0' || *s > '9')
		{
			return -1;
		}
		v = v * 10 + (*s - '0');
	}
	return v;
}

/* A UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
static int
der_time(int tag, const unsigned char *s, size_t len, int64_t *out)
{
	int y, mo, d, h, mi, se;

	if(tag == 0x17 && len == 13)
	{
		y = digits(s, 2);
		y = y < 0 ? -1 : y < 50 ? 2000 + y :
								  1900 + y; /* RFC 5280 4.1.2.5.1 */
		s += 2;
	}
	else if(tag == 0x18 && len == 15)
	{
		y = digits(s, 4);
		s += 4;
	}
	else
	{
		return EINVAL;
	}
	mo = digits(s, 2);
	d = digits(s + 2, 2);
	h = digits(s + 4, 2);
	mi = digits(s + 6, 2);
	se = digits(s + 8, 2);
	if(y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60 || s[10] != 'Z')
	{
		return EINVAL;
	}
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
	return 0;
}

/* The validity of the DER certificate der[0..n). 0 or EINVAL. */
static int
validity(const unsigned char *der, size_t n, int64_t *not_before, int64_t *not_after)
{
	const unsigned char *p = der, *end = der + n, *body, *tbs_end, *v, *v_end;
	size_t blen;
	int tag, i;

	/* Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {...}, ... } */
	if(tlv(&p, end, &tag, &body, &blen) || tag != 0x30)
	{
		return EINVAL;
	}
	p = body;
	end = body + blen;
	if(tlv(&p, end, &tag, &body, &blen) || tag != 0x30)
	{
		return EINVAL;
	}
	p = body;
	tbs_end = body + blen;
	/* [0] version (optional), serialNumber, signature, issuer, validity */
	if(tlv(&p, tbs_end, &tag, &body, &blen))
	{
		return EINVAL;
	}
	if(tag == 0xa0 && tlv(&p, tbs_end, &tag, &body, &blen))
	{
		return EINVAL;
	}
	if(tag != 0x02)
	{
		return EINVAL;
	}
	for(i = 0; i < 2; i++)
	{
		if(tlv(&p, tbs_end, &tag, &body, &blen) || tag != 0x30)
		{
			return EINVAL;
		}
	}
	if(tlv(&p, tbs_end, &tag, &body, &blen) || tag != 0x30)
	{
		return EINVAL;
	}
	v = body;
	v_end = body + blen;
	if(tlv(&v, v_end, &tag, &body, &blen) || der_time(tag, body, blen, not_before) ||
		tlv(&v, v_end, &tag, &body, &blen) || der_time(tag, body, blen, not_after))
	{
		return EINVAL;
	}
	return 0;
}

int
cluster__cert_validity(const char *text, size_t len, int64_t *not_before, int64_t *not_after)
{
	char *b64 = NULL, *der = NULL;
	size_t n = 0, blen;
	const char *begin, *stop;
	int r;

	begin = text ? memmem(text, len, PEM_BEGIN, strlen(PEM_BEGIN)) : NULL;
	if(!begin)
	{
		return EINVAL;
	}
	begin += strlen(PEM_BEGIN);
	stop = memmem(begin, len - (size_t) (begin - text), PEM_END, strlen(PEM_END));
	b64 = stop ? malloc(B64_MAX) : NULL;
	blen = b64 ? b64_text(begin, stop, b64, B64_MAX) : 0;
	if(!blen || cluster__b64_decode(b64, blen, &der, &n) || !n)
	{
		free(b64);
		free(der);
		return EINVAL;
	}
	free(b64);
	r = validity((const unsigned char *) der, n, not_before, not_after);
	free(der);
	return r;
}
