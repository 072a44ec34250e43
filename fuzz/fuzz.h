/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the libFuzzer harnesses share: each harness is one file with
 * LLVMFuzzerTestOneInput() feeding bytes to the parsers of one kind of
 * data that comes from the network (or, for cert, from a file the user
 * names). Built by `make fuzz` with clang -fsanitize=fuzzer,address,
 * undefined; see mk/fuzz.mk. A harness checks what the parser promises
 * (return values, lengths, NUL termination), so a wrong answer aborts
 * like a crash.
 */
#ifndef CLUSTER_FUZZ_H_
#define CLUSTER_FUZZ_H_ 1

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with a message: libFuzzer saves the input as a crash. */
#define FUZZ_CHECK(cond) \
 do \
 { \
  if(!(cond)) \
  { \
   fprintf(stderr, "fuzz: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
   abort(); \
  } \
 } \
 while(0)

#endif /*!CLUSTER_FUZZ_H_*/
