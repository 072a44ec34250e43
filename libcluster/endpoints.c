/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry URIs: a comma-separated list of endpoints checked and turned
 * into base URLs. Pure: no I/O, no locks.
 */
#include "util.h"
#include "http.h"

#include <errno.h>
#include <stdlib.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Endpoints are few; anything beyond this is a mistake, not a cluster. */
#define HTTP_MAX_ENDPOINTS 64
#define HTTP_MAX_URL       1024


void
cluster__http_endpoints_free(char **endpoints, size_t n)
{
	size_t i;

	if(!endpoints)
	{
		return;
	}
	for(i = 0; i < n; i++)
	{
		free(endpoints[i]);
	}
	free(endpoints);
}

/* Validate one "scheme://host:port[/path]" element (already trimmed) and
 * produce its base URL; returns 0, EINVAL (*why set) or ENOMEM. */
static int
parse_one_endpoint(const char *s, size_t len, char **out, const char **why)
{
	size_t i, hstart, hend, pstart, plen;
	const char *scheme;
	unsigned long port = 0;
	char *base;

	if(len >= 7 && !strncasecmp(s, "http://", 7))
	{
		scheme = "http://";
		i = 7;
	}
	else if(len >= 8 && !strncasecmp(s, "https://", 8))
	{
		scheme = "https://";
		i = 8;
	}
	else
	{
		*why = "each endpoint must start with http:// or https://";
		return EINVAL;
	}
	hstart = i;
	for(pstart = i; pstart < len && s[pstart] != '/'; pstart++)
	{
		if(s[pstart] == '@')
		{
			*why = "a user name or password in the registry URI is not allowed: use cluster_set_credentials() (cluster-test "
				   "--user and --password-file)";
			return EINVAL;
		}
	}
	if(i < len && s[i] == '[')
	{
		i++;
		while(i < len && (isxdigit((unsigned char) s[i]) || s[i] == ':' || s[i] == '.'))
		{
			i++;
		}
		if(i >= len || s[i] != ']' || i == hstart + 1)
		{
			*why = "bad IPv6 address in endpoint (expected [addr]:port)";
			return EINVAL;
		}
		i++;
	}
	else
	{
		while(i < len && (isalnum((unsigned char) s[i]) || s[i] == '.' || s[i] == '-' || s[i] == '_'))
		{
			i++;
		}
	}
	hend = i;
	if(hend == hstart)
	{
		*why = "endpoint has no host name";
		return EINVAL;
	}
	if(i >= len || s[i] != ':')
	{
		*why = (i < len && s[i] != '/') ? "endpoint host name has invalid characters" : "endpoint has no port (expected host:port)";
		return EINVAL;
	}
	i++;
	pstart = i;
	while(i < len && isdigit((unsigned char) s[i]))
	{
		port = port * 10 + (unsigned long) (s[i] - '0');
		if(port > 65535)
		{
			break;
		}
		i++;
	}
	if(i == pstart || port < 1 || port > 65535)
	{
		*why = "endpoint port must be a number between 1 and 65535";
		return EINVAL;
	}
	if(i < len && s[i] != '/')
	{
		*why = "unexpected characters after the endpoint port";
		return EINVAL;
	}
	/* optional path prefix (for a proxy), trailing slashes dropped */
	pstart = i;
	for(; i < len; i++)
	{
		unsigned char ch = (unsigned char) s[i];

		if(ch <= ' ' || ch >= 0x7f || ch == '?' || ch == '#' || ch == '%' || ch == '\\')
		{
			*why = "endpoint path must not contain spaces, '?', '#', '%' or control characters";
			return EINVAL;
		}
	}
	plen = len - pstart;
	while(plen && s[pstart + plen - 1] == '/')
	{
		plen--;
	}
	if(strlen(scheme) + (hend - hstart) + 7 + plen > HTTP_MAX_URL)
	{
		*why = "endpoint URI is too long";
		return EINVAL;
	}
	base = malloc(strlen(scheme) + (hend - hstart) + 8 + plen);
	if(!base)
	{
		return ENOMEM;
	}
	sprintf(base, "%s%.*s:%lu%.*s", scheme, (int) (hend - hstart), s + hstart, port, (int) plen, s + pstart);
	*out = base;
	return 0;
}

int
cluster__http_parse_endpoints(const char *uri, char ***endpoints, size_t *n, const char **why)
{
	char **list = NULL;
	size_t count = 0;
	const char *p;
	int r;

	*endpoints = NULL;
	*n = 0;
	*why = "";
	if(!uri || !*uri)
	{
		*why = "the registry URI is empty";
		return EINVAL;
	}
	list = calloc(HTTP_MAX_ENDPOINTS, sizeof(*list));
	if(!list)
	{
		return ENOMEM;
	}
	p = uri;
	for(;;)
	{
		const char *e = strchr(p, ',');
		const char *end = e ? e : p + strlen(p);

		while(p < end && (*p == ' ' || *p == '\t'))
		{
			p++;
		}
		while(end > p && (end[-1] == ' ' || end[-1] == '\t'))
		{
			end--;
		}
		if(p == end)
		{
			*why = "empty endpoint in the registry URI list";
			r = EINVAL;
			goto fail;
		}
		if(count == HTTP_MAX_ENDPOINTS)
		{
			*why = "too many endpoints in the registry URI list (at most 64)";
			r = EINVAL;
			goto fail;
		}
		r = parse_one_endpoint(p, (size_t) (end - p), &list[count], why);
		if(r)
		{
			goto fail;
		}
		count++;
		if(!e)
		{
			break;
		}
		p = e + 1;
	}
	*endpoints = list;
	*n = count;
	return 0;
fail:
	cluster__http_endpoints_free(list, count);
	return r;
}
