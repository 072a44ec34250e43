/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd test harness, TCP proxy (see etcdharness.h): a forwarder on a free
 * loopback port in front of one etcd, run by its own thread, that can cut
 * every connection and refuse new ones until restored, so that the
 * library loses the registry while etcd itself runs on; or hold back the
 * server's first bytes on each new connection (a slow TLS handshake).
 */
#ifndef _GNU_SOURCE
# define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "etcdharness-private.h"

#define ETCDH_PROXY_MAX 256

struct etcdh_proxy
{
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int listen_fd;
	int wake[2];
	int upstream_port;
	char endpoint[64];
	int cut;                            /* (lock) reset connections */
	int stop;                           /* (lock) */
	unsigned long gen_req;              /* (lock) cut requests made */
	unsigned long gen_done;             /* (lock) cut requests applied */
	unsigned long accepted;             /* (lock) */
	int hold_ms;                        /* (lock) a new connection's answer waits */
	int fds[ETCDH_PROXY_MAX][2];        /* thread only: client, upstream */
	double hold_until[ETCDH_PROXY_MAX]; /* thread only: upstream unread before */
	int npairs;
};

static void
etcdh__close_pair(etcdh_proxy *p, int i)
{
	struct linger lg = { 1, 0 };

	/* A reset, not a polite close: the client must see a dead link. */
	setsockopt(p->fds[i][0], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(p->fds[i][0]);
	close(p->fds[i][1]);
	p->fds[i][0] = p->fds[p->npairs - 1][0];
	p->fds[i][1] = p->fds[p->npairs - 1][1];
	p->hold_until[i] = p->hold_until[p->npairs - 1];
	p->npairs--;
}

static int
etcdh__connect_upstream(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if(fd < 0)
	{
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((unsigned short) port);
	if(connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
	{
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Forward one readable side to the other; 0 ok, -1 the pair is done. */
static int
etcdh__pump(int from, int to)
{
	char buf[16384];
	ssize_t n = recv(from, buf, sizeof(buf), 0), off = 0, w;

	if(n <= 0)
	{
		return -1;
	}
	while(off < n)
	{
		w = send(to, buf + off, (size_t) (n - off), MSG_NOSIGNAL);
		if(w <= 0)
		{
			return -1;
		}
		off += w;
	}
	return 0;
}

static void *
etcdh__proxy_main(void *arg)
{
	etcdh_proxy *p = arg;
	struct pollfd pfd[2 + 2 * ETCDH_PROXY_MAX];
	int i, n, fd, up, cut, stop, hold_ms, wait_ms, one = 1;
	unsigned long gen;
	double now;
	char drain[64];

	for(;;)
	{
		pthread_mutex_lock(&p->lock);
		cut = p->cut;
		stop = p->stop;
		gen = p->gen_req;
		hold_ms = p->hold_ms;
		pthread_mutex_unlock(&p->lock);
		if(stop)
		{
			break;
		}
		if(cut)
		{
			while(p->npairs)
			{
				etcdh__close_pair(p, 0);
			}
		}
		pthread_mutex_lock(&p->lock);
		p->gen_done = gen;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);

		pfd[0].fd = p->listen_fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = p->wake[0];
		pfd[1].events = POLLIN;
		now = etcdh_now();
		wait_ms = -1;
		for(i = 0; i < p->npairs; i++)
		{
			pfd[2 + 2 * i].fd = p->fds[i][0];
			pfd[2 + 2 * i].events = POLLIN;
			pfd[3 + 2 * i].fd = p->fds[i][1];
			pfd[3 + 2 * i].events = POLLIN;
			if(p->hold_until[i] > now)
			{
				int left = (int) ((p->hold_until[i] - now) * 1000) + 1;

				pfd[3 + 2 * i].events = 0;
				wait_ms = (wait_ms < 0 || left < wait_ms) ? left : wait_ms;
			}
		}
		n = poll(pfd, (nfds_t) (2 + 2 * p->npairs), wait_ms);
		if(n < 0)
		{
			continue;
		}
		if(pfd[1].revents)
		{
			while(read(p->wake[0], drain, sizeof(drain)) > 0)
			{
			}
		}
		/* Pairs first (indices shift when one closes: walk backwards). */
		for(i = p->npairs - 1; i >= 0; i--)
		{
			short a = pfd[2 + 2 * i].revents, b = pfd[3 + 2 * i].revents;

			if((a && etcdh__pump(p->fds[i][0], p->fds[i][1])) ||
				(b && etcdh__pump(p->fds[i][1], p->fds[i][0])))
			{
				etcdh__close_pair(p, i);
			}
		}
		if(pfd[0].revents & POLLIN)
		{
			fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if(fd < 0)
			{
				continue;
			}
			pthread_mutex_lock(&p->lock);
			cut = p->cut;
			if(!cut)
			{
				p->accepted++;
			}
			pthread_mutex_unlock(&p->lock);
			up = (!cut && p->npairs < ETCDH_PROXY_MAX) ? etcdh__connect_upstream(p->upstream_port) : -1;
			if(up < 0)
			{
				struct linger lg = { 1, 0 };

				setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
				close(fd);
				continue;
			}
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			p->fds[p->npairs][0] = fd;
			p->fds[p->npairs][1] = up;
			p->hold_until[p->npairs] = hold_ms > 0 ? etcdh_now() + hold_ms / 1000.0 : 0;
			p->npairs++;
		}
	}
	while(p->npairs)
	{
		etcdh__close_pair(p, 0);
	}
	return NULL;
}

int
etcdh_proxy_start(etcdh *h, etcdh_proxy **out)
{
	etcdh_proxy *p = calloc(1, sizeof(*p));
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int one = 1;

	*out = NULL;
	if(!p)
	{
		return -1;
	}
	p->upstream_port = h->client_port;
	p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if(p->listen_fd < 0 ||
		setsockopt(p->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		bind(p->listen_fd, (struct sockaddr *) &sa, sizeof(sa)) ||
		listen(p->listen_fd, 64) ||
		getsockname(p->listen_fd, (struct sockaddr *) &sa, &sl) ||
		pipe2(p->wake, O_CLOEXEC | O_NONBLOCK))
	{
		etcdh__err("proxy: %s", strerror(errno));
		if(p->listen_fd >= 0)
		{
			close(p->listen_fd);
		}
		free(p);
		return -1;
	}
	snprintf(p->endpoint, sizeof(p->endpoint), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	if(pthread_create(&p->thread, NULL, etcdh__proxy_main, p))
	{
		close(p->listen_fd);
		close(p->wake[0]);
		close(p->wake[1]);
		free(p);
		return -1;
	}
	*out = p;
	return 0;
}

const char *
etcdh_proxy_endpoint(etcdh_proxy *p)
{
	return p->endpoint;
}

/* Set the mode and wait until the proxy thread has applied it, so that
 * after etcdh_proxy_cut() returns no old connection is still open. */
static void
etcdh__proxy_set(etcdh_proxy *p, int cut)
{
	unsigned long gen;

	pthread_mutex_lock(&p->lock);
	p->cut = cut;
	gen = ++p->gen_req;
	pthread_mutex_unlock(&p->lock);
	if(write(p->wake[1], "x", 1) < 0)
	{
		/* the pipe is full: the thread is awake anyway */
	}
	pthread_mutex_lock(&p->lock);
	while(p->gen_done < gen)
	{
		pthread_cond_wait(&p->cond, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
}

void
etcdh_proxy_cut(etcdh_proxy *p)
{
	etcdh__proxy_set(p, 1);
}

void
etcdh_proxy_restore(etcdh_proxy *p)
{
	etcdh__proxy_set(p, 0);
}

void
etcdh_proxy_hold(etcdh_proxy *p, int ms)
{
	pthread_mutex_lock(&p->lock);
	p->hold_ms = ms;
	pthread_mutex_unlock(&p->lock);
}

unsigned long
etcdh_proxy_accepted(etcdh_proxy *p)
{
	unsigned long n;

	pthread_mutex_lock(&p->lock);
	n = p->accepted;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void
etcdh_proxy_stop(etcdh_proxy *p)
{
	if(!p)
	{
		return;
	}
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_mutex_unlock(&p->lock);
	if(write(p->wake[1], "x", 1) < 0)
	{
		/* ignored: see etcdh__proxy_set() */
	}
	pthread_join(p->thread, NULL);
	close(p->listen_fd);
	close(p->wake[0]);
	close(p->wake[1]);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}
