/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A registry URI list, as cluster_set_registry() gets it (from a user, or
 * from a configuration service): either endpoints that are URLs we can
 * use, or EINVAL with a reason.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "http.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *uri = malloc(size + 1), **eps = NULL;
	const char *why = NULL;
	size_t n = 0, i;
	int r;

	if(!uri)
	{
		return 0;
	}
	memcpy(uri, data, size);
	uri[size] = 0;
	r = cluster__http_parse_endpoints(uri, &eps, &n, &why);
	if(!r)
	{
		FUZZ_CHECK(n >= 1);
		for(i = 0; i < n; i++)
		{
			FUZZ_CHECK(!strncmp(eps[i], "http://", 7) || !strncmp(eps[i], "https://", 8));
		}
		cluster__http_endpoints_free(eps, n);
	}
	else
	{
		FUZZ_CHECK(r == EINVAL || r == ENOMEM);
		FUZZ_CHECK(r != EINVAL || why != NULL);
	}
	free(uri);
	return 0;
}
