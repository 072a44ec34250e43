/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The stop flag and wake-ups an engine's threads share (see waker.h).
 */
#include "util.h"
#include "waker.h"

#include <errno.h>

void
cluster__waker_init(cluster__waker *w)
{
	pthread_mutex_init(&w->m, NULL);
	cluster__cond_init(&w->cv);
	w->stop = 0;
	w->flags = 0;
}

void
cluster__waker_destroy(cluster__waker *w)
{
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->m);
}

void
cluster__waker_lock(cluster__waker *w)
{
	pthread_mutex_lock(&w->m);
}

void
cluster__waker_unlock(cluster__waker *w)
{
	pthread_mutex_unlock(&w->m);
}

void
cluster__waker_raise_locked(cluster__waker *w, unsigned flags)
{
	w->flags |= flags;
	pthread_cond_broadcast(&w->cv);
}

void
cluster__waker_raise(cluster__waker *w, unsigned flags)
{
	pthread_mutex_lock(&w->m);
	cluster__waker_raise_locked(w, flags);
	pthread_mutex_unlock(&w->m);
}

void
cluster__waker_stop(cluster__waker *w)
{
	pthread_mutex_lock(&w->m);
	w->stop = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->m);
}

void
cluster__waker_reset(cluster__waker *w)
{
	pthread_mutex_lock(&w->m);
	w->stop = 0;
	w->flags = 0;
	pthread_mutex_unlock(&w->m);
}

int
cluster__waker_stopping(cluster__waker *w)
{
	int s;

	pthread_mutex_lock(&w->m);
	s = w->stop;
	pthread_mutex_unlock(&w->m);
	return s;
}

unsigned
cluster__waker_take(cluster__waker *w, unsigned mask)
{
	unsigned f;

	pthread_mutex_lock(&w->m);
	f = w->flags & mask;
	w->flags &= ~mask;
	pthread_mutex_unlock(&w->m);
	return f;
}

unsigned
cluster__waker_peek(cluster__waker *w, unsigned mask)
{
	unsigned f;

	pthread_mutex_lock(&w->m);
	f = w->flags & mask;
	pthread_mutex_unlock(&w->m);
	return f;
}

/* One deadline for the whole wait: spurious wake-ups and unrelated
 * broadcasts (another thread's flag) do not stretch it. */
int
cluster__waker_nap_locked(cluster__waker *w, int64_t ms, unsigned wake_mask)
{
	struct timespec ts;

	cluster__deadline(&ts, ms);
	while(!w->stop && !(w->flags & wake_mask))
	{
		if(pthread_cond_timedwait(&w->cv, &w->m, &ts) == ETIMEDOUT)
		{
			break;
		}
	}
	return w->stop;
}

int
cluster__waker_nap(cluster__waker *w, int64_t ms, unsigned wake_mask)
{
	int s;

	pthread_mutex_lock(&w->m);
	s = cluster__waker_nap_locked(w, ms, wake_mask);
	pthread_mutex_unlock(&w->m);
	return s;
}
