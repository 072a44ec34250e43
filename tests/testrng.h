/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The randomized unit tests' generator: xorshift64*, deterministic per
 * seed (rng_state), so that a failure replays.
 */
#ifndef TESTS_TESTRNG_H_
#define TESTS_TESTRNG_H_ 1

#include <stdint.h>

static uint64_t rng_state;

static inline uint64_t
rng64(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

#endif /*!TESTS_TESTRNG_H_*/
