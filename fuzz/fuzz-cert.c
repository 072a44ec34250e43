/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client certificate file's dates (read before joining): any bytes,
 * with or without a PEM block around them.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "cert.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t not_before = 0, not_after = 0;
	int r = cluster__cert_validity((const char *) data, size, &not_before, &not_after);

	FUZZ_CHECK(r == 0 || r == EINVAL);
	return 0;
}
