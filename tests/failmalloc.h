/* SPDX-License-Identifier: Apache-2.0 */
/*
 * malloc that fails on demand, for a test program linked with
 * -Wl,--wrap=malloc (its own file: include it once, from the test).
 */
#ifndef TESTS_FAILMALLOC_H_
#define TESTS_FAILMALLOC_H_ 1

#include <stddef.h>

/* -1: malloc works; k >= 0: k more calls succeed, then every one fails. */
static long fail_after = -1;

void *__real_malloc(size_t size);
void *__wrap_malloc(size_t size);

void *
__wrap_malloc(size_t size)
{
	if(fail_after == 0)
	{
		return NULL;
	}
	if(fail_after > 0)
	{
		fail_after--;
	}
	return __real_malloc(size);
}

#endif /*!TESTS_FAILMALLOC_H_*/
