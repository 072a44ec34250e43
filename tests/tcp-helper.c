/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small real TCP ends for the gateway's proxy tests (no fakes of the
 * gateway: these stand for the members' servers and for the clients).
 *
 *   tcp-helper serve NAME
 *       listen on 127.0.0.1, print "port N", then for every connection
 *       send "NAME\n" and echo every byte back until the peer closes.
 *   tcp-helper connect HOST PORT COUNT [BIND_ADDR [BYTES]]
 *       COUNT connections one after another (from BIND_ADDR when given):
 *       read the member's name line, print it, send BYTES pseudo-random
 *       bytes (default 16) and check that they come back the same.
 *   tcp-helper blackhole
 *       listen on 127.0.0.1 with a full accept queue and never accept:
 *       print "port N"; a connect there gets no answer (Linux drops the
 *       SYN), as from a hung host.
 *   tcp-helper hold HOST PORT
 *       one connection: print the name line, wait for a line on stdin,
 *       then check an echo and print "echo ok".
 *   tcp-helper flood HOST PORT
 *       one connection that sends without reading until nothing has
 *       been taken for a second (every buffer on the way is full), or
 *       256 MB went (a proxy that buffers without bound): print
 *       "stalled N" (the bytes sent), wait for a line on stdin, then read
 *       the N bytes back, check them and print "flood ok".
 * Exit 0, or 1 with the reason on stderr. Every wait is bounded by
 * 10 s x CLUSTER_TEST_TIMEOUT_MULTIPLIER.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int timeout_ms = 10000;
static const char *name;

static void
die(const char *what)
{
	fprintf(stderr, "tcp-helper: %s: %s\n", what, errno ? strerror(errno) : "failed");
	exit(1);
}

/* Wait for fd to be readable; 0, or -1 on timeout. */
static int
wait_readable(int fd)
{
	struct pollfd p = { fd, POLLIN, 0 };

	return poll(&p, 1, timeout_ms) == 1 ? 0 : -1;
}

static void *
serve_one(void *arg)
{
	int fd = (int) (long) arg;
	char buf[65536], line[300];
	ssize_t n;

	snprintf(line, sizeof(line), "%s\n", name);
	if(write(fd, line, strlen(line)) == (ssize_t) strlen(line))
	{
		while((n = read(fd, buf, sizeof(buf))) > 0)
		{
			ssize_t off = 0;

			while(off < n)
			{
				ssize_t w = write(fd, buf + off, (size_t) (n - off));

				if(w <= 0)
				{
					goto out;
				}
				off += w;
			}
		}
	}
out:
	close(fd);
	return NULL;
}

static void __attribute__((noreturn))
serve(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if(lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) || listen(lfd, 512) || getsockname(lfd, (struct sockaddr *) &sa, &len))
	{
		die("listen");
	}
	printf("port %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	for(;;)
	{
		pthread_t t;
		int fd = accept(lfd, NULL, NULL);

		if(fd < 0)
		{
			if(errno == EINTR || errno == ECONNABORTED)
			{
				continue;
			}
			die("accept");
		}
		if(pthread_create(&t, NULL, serve_one, (void *) (long) fd))
		{
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
}

static void __attribute__((noreturn))
blackhole(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), i;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if(lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof(sa)) || listen(lfd, 0) || getsockname(lfd, (struct sockaddr *) &sa, &len))
	{
		die("listen");
	}
	/* fill the accept queue (backlog 0 holds one) with our own connects */
	for(i = 0; i < 3; i++)
	{
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

		if(fd < 0)
		{
			die("socket");
		}
		connect(fd, (struct sockaddr *) &sa, sizeof(sa));
	}
	printf("port %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	for(;;)
	{
		pause();
	}
}

static int
dial(const char *host, const char *port, const char *bind_addr)
{
	struct sockaddr_in sa, src;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short) atoi(port));
	if(fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
	{
		die("socket or address");
	}
	if(bind_addr)
	{
		memset(&src, 0, sizeof(src));
		src.sin_family = AF_INET;
		if(inet_pton(AF_INET, bind_addr, &src.sin_addr) != 1 || bind(fd, (struct sockaddr *) &src, sizeof(src)))
		{
			die("bind the source address");
		}
	}
	if(connect(fd, (struct sockaddr *) &sa, sizeof(sa)))
	{
		die("connect to the gateway");
	}
	return fd;
}

/* The first line the member sends: its name. */
static void
read_name(int fd, char *out, size_t size)
{
	size_t n = 0;

	errno = 0;
	while(n + 1 < size)
	{
		ssize_t r;

		if(wait_readable(fd))
		{
			errno = ETIMEDOUT;
			die("wait for the member's name");
		}
		r = read(fd, out + n, 1);
		if(r <= 0)
		{
			die("read the member's name (the gateway closed the connection)");
		}
		if(out[n] == '\n')
		{
			break;
		}
		n++;
	}
	out[n] = 0;
}

/* Send len pseudo-random bytes and read them back, compared. */
static void
echo_check(int fd, size_t len, unsigned seed)
{
	unsigned char *out = malloc(len ? len : 1), *in = malloc(len ? len : 1);
	size_t sent = 0, got = 0, i;

	if(!out || !in)
	{
		die("malloc");
	}
	for(i = 0; i < len; i++)
	{
		seed = seed * 1103515245u + 12345u;
		out[i] = (unsigned char) (seed >> 16);
	}
	while(got < len)
	{
		struct pollfd p = { fd, POLLIN | (sent < len ? POLLOUT : 0), 0 };
		ssize_t r;

		errno = 0;
		if(poll(&p, 1, timeout_ms) != 1)
		{
			errno = ETIMEDOUT;
			die("echo");
		}
		if((p.revents & POLLOUT) && sent < len)
		{
			r = write(fd, out + sent, len - sent > 65536 ? 65536 : len - sent);
			if(r <= 0)
			{
				die("send through the gateway");
			}
			sent += (size_t) r;
		}
		if(p.revents & (POLLIN | POLLHUP | POLLERR))
		{
			r = read(fd, in + got, len - got);
			if(r <= 0)
			{
				die("read the echo (the connection ended early)");
			}
			got += (size_t) r;
		}
	}
	if(memcmp(in, out, len))
	{
		errno = 0;
		die("the echo differs from what was sent");
	}
	free(in);
	free(out);
}

/* Byte i of the flood: a pattern with a period no buffer size shares. */
static unsigned char
flood_byte(size_t i)
{
	return (unsigned char) (i * 131u % 251u);
}

/* See "flood" above: the proxy must stop reading from a sender whose
 * receiver does not read, not keep what it sends. */
static void
flood(int fd)
{
	unsigned char buf[65536];
	size_t sent = 0, got = 0, i;
	char line[300];

	while(sent < ((size_t) 256 << 20))
	{
		struct pollfd p = { fd, POLLOUT, 0 };
		ssize_t r;

		if(poll(&p, 1, 1000) != 1)
		{
			break;
		}
		for(i = 0; i < sizeof(buf); i++)
		{
			buf[i] = flood_byte(sent + i);
		}
		r = write(fd, buf, sizeof(buf));
		if(r <= 0)
		{
			die("flood the gateway");
		}
		sent += (size_t) r;
	}
	printf("stalled %zu\n", sent);
	fflush(stdout);
	if(!fgets(line, sizeof(line), stdin))
	{
		line[0] = 0;
	}
	while(got < sent)
	{
		ssize_t r;

		errno = 0;
		if(wait_readable(fd))
		{
			errno = ETIMEDOUT;
			die("read the flood back");
		}
		r = read(fd, buf, sent - got < sizeof(buf) ? sent - got : sizeof(buf));
		if(r <= 0)
		{
			die("read the flood back (the connection ended early)");
		}
		for(i = 0; i < (size_t) r; i++)
		{
			if(buf[i] != flood_byte(got + i))
			{
				errno = 0;
				die("the flood came back different");
			}
		}
		got += (size_t) r;
	}
	printf("flood ok\n");
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	const char *mult = getenv("CLUSTER_TEST_TIMEOUT_MULTIPLIER");
	char line[300];

	signal(SIGPIPE, SIG_IGN);
	if(mult && atof(mult) >= 1)
	{
		timeout_ms = (int) (10000 * atof(mult));
	}
	if(argc == 3 && !strcmp(argv[1], "serve"))
	{
		name = argv[2];
		serve();
	}
	if(argc == 2 && !strcmp(argv[1], "blackhole"))
	{
		blackhole();
	}
	if(argc >= 5 && argc <= 7 && !strcmp(argv[1], "connect"))
	{
		int i, count = atoi(argv[4]);
		size_t bytes = argc == 7 ? (size_t) atol(argv[6]) : 16;

		for(i = 0; i < count; i++)
		{
			int fd = dial(argv[2], argv[3], argc >= 6 && argv[5][0] ? argv[5] : NULL);

			read_name(fd, line, sizeof(line));
			echo_check(fd, bytes, (unsigned) i + 1);
			printf("%s\n", line);
			fflush(stdout);
			close(fd);
		}
		return 0;
	}
	if(argc == 4 && !strcmp(argv[1], "hold"))
	{
		int fd = dial(argv[2], argv[3], NULL);

		read_name(fd, line, sizeof(line));
		printf("%s\n", line);
		fflush(stdout);
		if(!fgets(line, sizeof(line), stdin))
		{
			line[0] = 0;
		}
		echo_check(fd, 1000, 7);
		printf("echo ok\n");
		fflush(stdout);
		close(fd);
		return 0;
	}
	if(argc == 4 && !strcmp(argv[1], "flood"))
	{
		int fd = dial(argv[2], argv[3], NULL);

		read_name(fd, line, sizeof(line));
		flood(fd);
		close(fd);
		return 0;
	}
	fprintf(stderr, "usage: tcp-helper serve NAME | blackhole | connect HOST PORT COUNT [BIND [BYTES]] | hold HOST PORT | flood HOST PORT\n");
	return 2;
}
