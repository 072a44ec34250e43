/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TCP side of bench/bench-gateway.sh: an echo server and the clients
 * that measure a proxy (cluster-gateway --tcp or HAProxy) in front of it.
 * One thread each, epoll, so that neither end is the bottleneck it
 * measures.
 *
 *   tcp-load echo N
 *       listen on N loopback ports (printed "ports P1 P2 ..."), echo
 *       every byte back on every connection, forever.
 *   tcp-load pingpong HOST PORT CONNS SECONDS SIZE
 *       CONNS connections, each sending SIZE bytes and waiting for them
 *       back, again and again for SECONDS; prints
 *       "ops N rps R p50_us A p99_us B mbps M" (mbps: payload megabytes
 *       per second one way).
 *   tcp-load idle HOST PORT N
 *       open N connections, prove each echoes one byte, print "ready N",
 *       then hold them until stdin closes.
 *   tcp-load http-idle HOST PORT N
 *       open N connections, prove each gets an answer to one keep-alive
 *       "GET /" (307 from either proxy), print "ready N", then hold them
 *       until stdin closes.
 * Exit 0, or 1 with the reason on stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void
die(const char *what)
{
	fprintf(stderr, "tcp-load: %s: %s\n", what, errno ? strerror(errno) : "failed");
	exit(1);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void
raise_fd_limit(void)
{
	struct rlimit rl;

	if(!getrlimit(RLIMIT_NOFILE, &rl))
	{
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static int
listener(void)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if(fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) || listen(fd, 4096))
	{
		die("listen");
	}
	nonblock(fd);
	return fd;
}

static int
port_of(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	getsockname(fd, (struct sockaddr *) &sa, &len);
	return ntohs(sa.sin_port);
}

/* Listeners are told apart from connections by the top bit of the tag. */
#define LISTEN_TAG (1ULL << 63)

static void __attribute__((noreturn))
echo(int n)
{
	static char buf[1 << 16];
	struct epoll_event ev, evs[256];
	int ep = epoll_create1(0), i;

	printf("ports");
	for(i = 0; i < n; i++)
	{
		int l = listener();

		ev.events = EPOLLIN;
		ev.data.u64 = LISTEN_TAG | (unsigned) l;
		epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
		printf(" %d", port_of(l));
	}
	printf("\n");
	fflush(stdout);
	for(;;)
	{
		int k = epoll_wait(ep, evs, 256, -1);

		for(i = 0; i < k; i++)
		{
			int fd = (int) (evs[i].data.u64 & 0x7fffffff);

			if(evs[i].data.u64 & LISTEN_TAG)
			{
				int c;

				while((c = accept(fd, NULL, NULL)) >= 0)
				{
					int one = 1;

					nonblock(c);
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					ev.events = EPOLLIN;
					ev.data.u64 = (unsigned) c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			for(;;)
			{
				ssize_t r = read(fd, buf, sizeof(buf)), off = 0;

				if(r == 0 || (r < 0 && errno != EAGAIN))
				{
					close(fd);
					break;
				}
				if(r < 0)
				{
					break;
				}
				/* a blocking-style write: echo peers read as they send */
				while(off < r)
				{
					ssize_t w = write(fd, buf + off, (size_t) (r - off));

					if(w < 0 && errno == EAGAIN)
					{
						struct timespec ts = { 0, 100000 };

						nanosleep(&ts, NULL);
						continue;
					}
					if(w <= 0)
					{
						break;
					}
					off += w;
				}
			}
		}
	}
}

static int
dial(const char *host, int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short) port);
	if(fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)))
	{
		die("connect");
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	nonblock(fd);
	return fd;
}

struct pp
{
	int fd;
	size_t sent, got;
	double start;
};

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;

	return x < y ? -1 : x > y;
}

static int
pingpong(const char *host, int port, int conns, double seconds, size_t size)
{
	struct pp *c = calloc((size_t) conns, sizeof(*c));
	char *out = malloc(size), *in = malloc(size);
	size_t cap = 1 << 20, nlat = 0;
	double *lat = malloc(cap * sizeof(double)), t0, end;
	struct epoll_event ev, evs[256];
	int ep = epoll_create1(0), i;
	long long ops = 0;

	if(!c || !out || !in || !lat)
	{
		die("malloc");
	}
	memset(out, 'x', size);
	for(i = 0; i < conns; i++)
	{
		c[i].fd = dial(host, port);
		ev.events = EPOLLIN | EPOLLOUT;
		ev.data.u32 = (unsigned) i;
		epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev);
	}
	t0 = now_s();
	end = t0 + seconds;
	for(i = 0; i < conns; i++)
	{
		c[i].start = t0;
	}
	while(now_s() < end)
	{
		int k = epoll_wait(ep, evs, 256, 100);

		for(i = 0; i < k; i++)
		{
			struct pp *p = &c[evs[i].data.u32];

			if(p->sent < size && (evs[i].events & EPOLLOUT))
			{
				ssize_t w = write(p->fd, out + p->sent, size - p->sent);

				if(w > 0)
				{
					p->sent += (size_t) w;
				}
				if(p->sent == size)
				{
					ev.events = EPOLLIN;
					ev.data.u32 = evs[i].data.u32;
					epoll_ctl(ep, EPOLL_CTL_MOD, p->fd, &ev);
				}
			}
			if(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			{
				ssize_t r = read(p->fd, in, size);

				if(r == 0 || (r < 0 && errno != EAGAIN))
				{
					die("the proxy closed a connection");
				}
				if(r > 0)
				{
					p->got += (size_t) r;
				}
				if(p->got >= size && p->sent == size)
				{
					double t = now_s();

					if(nlat < cap)
					{
						lat[nlat++] = t - p->start;
					}
					ops++;
					p->sent = p->got = 0;
					p->start = t;
					ev.events = EPOLLIN | EPOLLOUT;
					ev.data.u32 = evs[i].data.u32;
					epoll_ctl(ep, EPOLL_CTL_MOD, p->fd, &ev);
				}
			}
		}
	}
	seconds = now_s() - t0;
	qsort(lat, nlat, sizeof(double), cmp_double);
	printf("ops %lld rps %.0f p50_us %.0f p99_us %.0f mbps %.1f\n", ops, (double) ops / seconds, nlat ? lat[nlat / 2] * 1e6 : 0,
		nlat ? lat[(size_t) ((double) nlat * 0.99)] * 1e6 : 0, (double) ops * (double) size / seconds / 1e6);
	return 0;
}

static int
idle(const char *host, int port, int n)
{
	int *fds = calloc((size_t) n, sizeof(int)), i;
	char ch = 'x', buf[8];

	if(!fds)
	{
		die("malloc");
	}
	for(i = 0; i < n; i++)
	{
		double deadline;
		ssize_t r = -1;

		fds[i] = dial(host, port);
		if(write(fds[i], &ch, 1) != 1)
		{
			die("write");
		}
		for(deadline = now_s() + 10; now_s() < deadline;)
		{
			r = read(fds[i], buf, 1);
			if(r == 1 || (r < 0 && errno != EAGAIN) || r == 0)
			{
				break;
			}
			usleep(200);
		}
		if(r != 1)
		{
			fprintf(stderr, "tcp-load: connection %d got no echo\n", i);
			return 1;
		}
	}
	printf("ready %d\n", n);
	fflush(stdout);
	while(read(0, buf, sizeof(buf)) > 0)
	{
	}
	return 0;
}

/* Read one HTTP answer (headers, then Content-Length bytes of body) from
 * a blocking-with-deadline socket. 0, or -1. */
static int
read_answer(int fd)
{
	char buf[4096];
	size_t got = 0;
	double deadline = now_s() + 10;
	long body = -1;
	char *end = NULL;

	while(now_s() < deadline && got < sizeof(buf) - 1)
	{
		ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);

		if(r == 0 || (r < 0 && errno != EAGAIN))
		{
			return -1;
		}
		if(r < 0)
		{
			usleep(200);
			continue;
		}
		got += (size_t) r;
		buf[got] = '\0';
		if(!end && (end = strstr(buf, "\r\n\r\n")))
		{
			char *cl;

			/* (HAProxy writes header names in lower case) */
			for(cl = buf, body = 0; cl < end; cl++)
			{
				if(!strncasecmp(cl, "\r\ncontent-length:", 17))
				{
					body = atol(cl + 17);
					break;
				}
			}
		}
		if(end && (long) got >= (end + 4 - buf) + body)
		{
			return strncmp(buf, "HTTP/1.1 307", 12) ? -1 : 0;
		}
	}
	return -1;
}

static int
http_idle(const char *host, int port, int n)
{
	static const char request[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
	int *fds = calloc((size_t) n, sizeof(int)), i;
	char buf[8];

	if(!fds)
	{
		die("malloc");
	}
	for(i = 0; i < n; i++)
	{
		fds[i] = dial(host, port);
		if(write(fds[i], request, sizeof(request) - 1) != (ssize_t) sizeof(request) - 1 || read_answer(fds[i]))
		{
			fprintf(stderr, "tcp-load: connection %d got no 307 answer\n", i);
			return 1;
		}
	}
	printf("ready %d\n", n);
	fflush(stdout);
	while(read(0, buf, sizeof(buf)) > 0)
	{
	}
	return 0;
}

int
main(int argc, char **argv)
{
	raise_fd_limit();
	if(argc == 3 && !strcmp(argv[1], "echo"))
	{
		echo(atoi(argv[2]));
	}
	if(argc == 7 && !strcmp(argv[1], "pingpong"))
	{
		return pingpong(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]), (size_t) atol(argv[6]));
	}
	if(argc == 5 && !strcmp(argv[1], "idle"))
	{
		return idle(argv[2], atoi(argv[3]), atoi(argv[4]));
	}
	if(argc == 5 && !strcmp(argv[1], "http-idle"))
	{
		return http_idle(argv[2], atoi(argv[3]), atoi(argv[4]));
	}
	fprintf(stderr, "usage: tcp-load echo N | pingpong HOST PORT CONNS SECONDS SIZE | idle HOST PORT N | http-idle HOST PORT N\n");
	return 2;
}
