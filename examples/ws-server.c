/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws-server: a server holding long-lived client connections (think
 * WebSockets) that uses libcluster's connection advisor: it publishes
 * its address, reports its load and capacity, and when the advisor says
 * to move some clients it tells them where to go and closes them. On
 * SIGTERM it drains (capacity 0): the advisor moves its clients to the
 * others, then it leaves. A second signal stops it at once.
 *
 *   ws-server [REGISTRY [HOST [PORT]]]
 *
 * REGISTRY: an etcd URI (default: $CLUSTER_REGISTRY; "-" or neither: the
 * static engine, alone). It listens on HOST (default 127.0.0.1) and PORT
 * (default 0: any free port) and publishes ws://HOST:PORT. The protocol is
 * only pretend-WebSocket: a client gets "hello ADDRESS" when accepted, and
 * "redirect ADDRESS" just before the server closes it to move it.
 * Try it: two servers, 20 clients on one (`nc HOST PORT`), SIGTERM it.
 *
 * Build: cc ws-server.c $(pkg-config --cflags --libs libcluster)
 */
#define _GNU_SOURCE /* ppoll(), pipe2() */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libcluster.h>

#define CAPACITY      64 /* most clients held; published as our capacity */
#define DRAIN_SECONDS 30 /* how long a draining server waits for advice */
#define MAX_ROWS      16 /* advice rows kept (one per target) */

static volatile sig_atomic_t signals_seen;
static int wake_pipe[2];
/* The latest advice, handed from the advisor thread to the main loop. */
static pthread_mutex_t advice_lock = PTHREAD_MUTEX_INITIALIZER;
static CLUSTERREDIRECT advice[MAX_ROWS];
static size_t n_advice;

static void
on_signal(int sig)
{
	(void) sig;
	signals_seen++;
}

/* Runs on the library's advisor thread once per round (every 5 s by
 * default). The sockets belong to the main loop, so only copy the rows
 * and wake the loop through the pipe (non-blocking: a full pipe already
 * holds a wake-up). A row whose target published no address is useless to
 * a client and is dropped. */
static void
on_advice(CLUSTER *c, const CLUSTERREDIRECT *rows, size_t n)
{
	size_t i, kept = 0;

	(void) c;
	pthread_mutex_lock(&advice_lock);
	for(i = 0; i < n && kept < MAX_ROWS; i++)
	{
		if(rows[i].count > 0 && rows[i].address[0])
		{
			advice[kept++] = rows[i];
		}
	}
	n_advice = kept;
	pthread_mutex_unlock(&advice_lock);
	if(kept && write(wake_pipe[1], "!", 1) < 0)
	{
		/* EAGAIN: the loop has a wake-up pending already */
	}
}

/* Tell a client where to reconnect, then close it. MSG_NOSIGNAL: a client
 * that has gone must not kill the server with SIGPIPE. */
static void
redirect(int fd, const char *address)
{
	char line[CLUSTER_ADDRESS_MAX + 16];
	int len = snprintf(line, sizeof(line), "redirect %s\n", address);

	send(fd, line, (size_t) len, MSG_NOSIGNAL); /* may have gone already */
	close(fd);
}

int
main(int argc, char **argv)
{
	const char *registry = argc > 1 ? argv[1] : getenv("CLUSTER_REGISTRY");
	const char *host = argc > 2 ? argv[2] : "127.0.0.1";
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sin_len = sizeof(sin);
	struct pollfd fds[2 + CAPACITY];
	int clients[CAPACITY], n_clients = 0, reported = -1, draining = 0, lfd, i, one = 1, rc = 0;
	char address[CLUSTER_ADDRESS_MAX + 1], buf[512];
	CLUSTERREDIRECT rows[MAX_ROWS];
	struct timespec tick = { 1, 0 };
	struct sigaction sa;
	sigset_t block, in_poll;
	time_t drain_until = 0;
	size_t r, n_rows;
	CLUSTER *c;

	if(registry && (!*registry || !strcmp(registry, "-")))
	{
		registry = NULL;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* SIGINT/SIGTERM: blocked in every thread (library threads inherit the
	 * mask; none exists yet), unblocked only while the main thread sits in
	 * ppoll(). So the handler runs only there and just counts; the loop
	 * does the rest, outside any callback. A signal that comes while the
	 * loop is busy stays pending and ends the next ppoll() at once. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &in_poll);
	sigdelset(&in_poll, SIGINT);
	sigdelset(&in_poll, SIGTERM);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_mask = block;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	sin.sin_port = htons((unsigned short) (argc > 3 ? atoi(argv[3]) : 0));
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if(lfd < 0 || inet_pton(AF_INET, host, &sin.sin_addr) != 1 ||
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		bind(lfd, (struct sockaddr *) &sin, sizeof(sin)) || listen(lfd, 64) ||
		getsockname(lfd, (struct sockaddr *) &sin, &sin_len) ||
		pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC))
	{
		perror("ws-server: listen");
		return 1;
	}
	snprintf(address, sizeof(address), "ws://%s:%d", host, ntohs(sin.sin_port));

	c = cluster_create("ws-example");
	/* Address and a first status before joining, so that the others can
	 * send clients here from the start. */
	if(!c || cluster_set_registry(c, registry) || cluster_set_address(c, address) ||
		cluster_report(c, 0, CAPACITY) || cluster_set_advisor(c, on_advice) ||
		cluster_join(c))
	{
		fprintf(stderr, "ws-server: %s\n", cluster_errmsg(c));
		cluster_destroy(c);
		return 1;
	}
	printf("listening on %s as %s\n", address, cluster_instance(c));

	for(;;)
	{
		if(signals_seen && !draining)
		{
			/* Capacity 0: the plan moves all our clients elsewhere, at
			 * the cluster's redirect budget, and the pick sends no new
			 * ones here. */
			draining = 1;
			drain_until = time(NULL) + DRAIN_SECONDS;
			reported = -1;
			printf("draining %d clients\n", n_clients);
		}
		if(draining && (!n_clients || signals_seen > 1 || time(NULL) >= drain_until))
		{
			break;
		}
		/* Cheap: the library writes to etcd only what changed, at most
		 * once per report interval, from its own thread. */
		if(n_clients != reported)
		{
			cluster_report(c, n_clients, draining ? 0 : CAPACITY);
			reported = n_clients;
			printf("reported load %d, capacity %d\n", n_clients, draining ? 0 : CAPACITY);
		}
		fds[0] = (struct pollfd) { .fd = lfd, .events = POLLIN };
		fds[1] = (struct pollfd) { .fd = wake_pipe[0], .events = POLLIN };
		for(i = 0; i < n_clients; i++)
		{
			fds[2 + i] = (struct pollfd) { .fd = clients[i], .events = POLLIN };
		}
		if(ppoll(fds, (nfds_t) (2 + n_clients), &tick, &in_poll) <= 0)
		{
			continue; /* a signal (EINTR), or a quiet second */
		}
		/* Clients: a real server would read frames; this one only
		 * notices that a client hung up. From the end, so that moving
		 * the last client into a freed slot skips nobody. */
		for(i = n_clients - 1; i >= 0; i--)
		{
			if(fds[2 + i].revents && read(clients[i], buf, sizeof(buf)) <= 0)
			{
				close(clients[i]);
				clients[i] = clients[--n_clients];
			}
		}
		if(fds[1].revents)
		{
			while(read(wake_pipe[0], buf, sizeof(buf)) > 0)
			{
			}
			pthread_mutex_lock(&advice_lock);
			n_rows = n_advice;
			memcpy(rows, advice, n_rows * sizeof(rows[0]));
			n_advice = 0;
			pthread_mutex_unlock(&advice_lock);
			/* Move the newest clients: any choice works, the advisor only
			 * counts. */
			for(r = 0; r < n_rows; r++)
			{
				printf("advice: move %d clients to %s\n", rows[r].count, rows[r].address);
				for(i = 0; i < rows[r].count && n_clients > 0; i++)
				{
					redirect(clients[--n_clients], rows[r].address);
				}
			}
		}
		if(fds[0].revents)
		{
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			CLUSTERMEMBER to;

			if(fd < 0)
			{
				continue;
			}
			if(draining || n_clients == CAPACITY)
			{
				/* No room: send the client where there is some. The pick
				 * may answer ENOENT (nobody has room) or, with our status
				 * not yet written, ourselves. */
				if(cluster_pick_target(c, &to) == 0 && !to.self && to.address[0])
				{
					redirect(fd, to.address);
				}
				else
				{
					close(fd);
				}
				continue;
			}
			clients[n_clients++] = fd;
			snprintf(buf, sizeof(buf), "hello %s\n", address);
			send(fd, buf, strlen(buf), MSG_NOSIGNAL);
		}
	}
	/* Out of the loop, on the main thread: leave (deregisters, so the
	 * others stop counting us at once), then close what is left. */
	printf("leaving with %d clients\n", n_clients);
	if(cluster_leave(c))
	{
		fprintf(stderr, "ws-server: cluster_leave: %s\n", cluster_errmsg(c));
		rc = 1;
	}
	else
	{
		printf("left the cluster\n");
	}
	while(n_clients > 0)
	{
		close(clients[--n_clients]);
	}
	cluster_destroy(c);
	close(lfd);
	return rc;
}
