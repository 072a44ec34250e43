/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small services every part of the library uses: the monotonic clock,
 * condition variables that wait on it, and random instance ids. No
 * library state, no locks of its own.
 */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_GETRANDOM
# include <sys/random.h>
#endif

int64_t
cluster__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
cluster__cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}

void
cluster__deadline(struct timespec *ts, int64_t ms)
{
	if(ms < 0)
	{
		ms = 0;
	}
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t) (ms / 1000);
	ts->tv_nsec += (long) (ms % 1000) * 1000000L;
	if(ts->tv_nsec >= 1000000000L)
	{
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* A fresh random instance id: 32 lower-case hex digits, like a UUID
 * without dashes (the original's format). */
int
cluster__random_id(char out[33])
{
	unsigned char raw[16];
	size_t got = 0;
	int i;

#ifdef HAVE_GETRANDOM
	while(got < sizeof(raw))
	{
		ssize_t r = getrandom(raw + got, sizeof(raw) - got, 0);

		if(r < 0)
		{
			if(errno == EINTR)
			{
				continue;
			}
			break;
		}
		got += (size_t) r;
	}
#endif
	if(got < sizeof(raw))
	{
		int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

		got = 0;
		while(fd >= 0 && got < sizeof(raw))
		{
			ssize_t r = read(fd, raw + got, sizeof(raw) - got);

			if(r <= 0)
			{
				break;
			}
			got += (size_t) r;
		}
		if(fd >= 0)
		{
			close(fd);
		}
		if(got < sizeof(raw))
		{
			return EIO;
		}
	}
	for(i = 0; i < 16; i++)
	{
		snprintf(out + i * 2, 3, "%02x", raw[i]);
	}
	return 0;
}

/* Grow *buf (capacity *cap) to hold need bytes, doubling from first.
 * Returns 0 or ENOMEM (the buffer is left as it was). Callers bound
 * sizes before they call it. */
int
cluster__reserve(char **buf, size_t *cap, size_t need, size_t first)
{
	size_t c = *cap ? *cap : first;
	char *p;

	if(need <= *cap)
	{
		return 0;
	}
	while(c < need)
	{
		c *= 2;
	}
	p = realloc(*buf, c);
	if(!p)
	{
		return ENOMEM;
	}
	*buf = p;
	*cap = c;
	return 0;
}
