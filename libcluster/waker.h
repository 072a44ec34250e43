/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private header: the scaffold an engine's threads share: one mutex (which
 * also guards whatever state the engine shares between its threads), one
 * condition variable on the monotonic clock, the stop flag, and wake-up
 * flags that one thread raises and another takes. Every engine thread
 * loop is built from these few calls instead of its own lock, flag and
 * broadcast code.
 */
#ifndef CLUSTER_WAKER_H_
#define CLUSTER_WAKER_H_ 1

#include <pthread.h>
#include <stdint.h>

typedef struct cluster__waker cluster__waker;
struct cluster__waker
{
	pthread_mutex_t m; /* never held across I/O or a callback */
	pthread_cond_t cv;
	int stop;       /* (m) the threads should end */
	unsigned flags; /* (m) raised, not yet taken */
};

void cluster__waker_init(cluster__waker *w);
void cluster__waker_destroy(cluster__waker *w);

/* The mutex, for state the engine keeps beside the flags. */
void cluster__waker_lock(cluster__waker *w);
void cluster__waker_unlock(cluster__waker *w);

/* Raise flags (0: a plain wake-up) and wake every waiter. The _locked
 * form is for a caller that holds the mutex. */
void cluster__waker_raise(cluster__waker *w, unsigned flags);
void cluster__waker_raise_locked(cluster__waker *w, unsigned flags);

/* Ask the threads to stop (wakes every waiter); start again from clear. */
void cluster__waker_stop(cluster__waker *w);
void cluster__waker_reset(cluster__waker *w);
int cluster__waker_stopping(cluster__waker *w);

/* The flags of mask that are raised, cleared (take) or left (peek). */
unsigned cluster__waker_take(cluster__waker *w, unsigned mask);
unsigned cluster__waker_peek(cluster__waker *w, unsigned mask);

/*
 * Wait up to ms (negative counts as 0), until stop, or until a flag of
 * wake_mask is raised (the flags are left for the caller to take).
 * Returns non-zero when stopping. The _locked form is called and returns
 * with the mutex held.
 */
int cluster__waker_nap(cluster__waker *w, int64_t ms, unsigned wake_mask);
int cluster__waker_nap_locked(cluster__waker *w, int64_t ms, unsigned wake_mask);

#endif /*!CLUSTER_WAKER_H_*/
