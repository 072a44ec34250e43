/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cluster-gateway: which member a proxied TCP connection goes to. Pure
 * logic (no I/O, no clock, no locks) so that tests/test_gateway_choose.c
 * can check it exhaustively; tcp.c feeds it the loop thread's member list.
 *
 * - The dial address: tcp://HOST:PORT, SCHEME://HOST[:PORT][/...] (the
 *   scheme's port when none is given: 80 for http and ws, 443 for https
 *   and wss), or a bare HOST:PORT; an IPv6 host in brackets.
 * - The weight: every candidate's capacity when all of them publish a
 *   bounded one, else every candidate's worker count: capacities and
 *   worker counts are not the same unit, so they are never mixed.
 * - Without --sticky: smooth weighted round robin (each candidate gains
 *   its weight, the richest is chosen and pays the total), which spreads
 *   a burst in proportion at once instead of in runs.
 * - With --sticky: weighted rendezvous hashing of the client's address
 *   over the member ids, so that a member's departure moves only the
 *   clients it had and a new member takes only its share.
 */
#include "gateway.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The default port of the schemes a member may publish. */
static const char *
scheme_port(const char *scheme, size_t len)
{
	static const struct
	{
		const char *name;
		const char *port;
	} known[] = { { "http", "80" }, { "ws", "80" }, { "https", "443" }, { "wss", "443" } };
	size_t i;

	for(i = 0; i < sizeof(known) / sizeof(known[0]); i++)
	{
		if(strlen(known[i].name) == len && !strncmp(known[i].name, scheme, len))
		{
			return known[i].port;
		}
	}
	return NULL;
}

int
gw_dial_address(const char *address, char *host, size_t hostsz, char *port, size_t portsz)
{
	const char *p = address, *sep, *end, *hostend, *portstart = NULL, *defport = NULL;
	size_t hostlen, portlen, i;
	int is_tcp = 0;
	long v = 0;

	sep = strstr(address, "://");
	if(sep)
	{
		if(sep - address == 3 && !strncmp(address, "tcp", 3))
		{
			is_tcp = 1;
		}
		else if(!(defport = scheme_port(address, (size_t) (sep - address))))
		{
			return -1;
		}
		p = sep + 3;
	}
	/* the authority ends at the path, query or fragment */
	end = p + strcspn(p, "/?#");
	if(is_tcp && *end)
	{
		/* tcp:// has no path */
		return -1;
	}
	if(memchr(p, '@', (size_t) (end - p)))
	{
		return -1;
	}
	if(*p == '[')
	{
		hostend = memchr(p, ']', (size_t) (end - p));
		if(!hostend)
		{
			return -1;
		}
		p++;
		if(hostend + 1 < end)
		{
			if(hostend[1] != ':')
			{
				return -1;
			}
			portstart = hostend + 2;
		}
	}
	else
	{
		const char *colon = memchr(p, ':', (size_t) (end - p));

		hostend = colon ? colon : end;
		if(colon)
		{
			if(memchr(colon + 1, ':', (size_t) (end - colon - 1)))
			{
				return -1;
			}
			portstart = colon + 1;
		}
	}
	if(!sep && *end)
	{
		/* a bare HOST:PORT has nothing after it */
		return -1;
	}
	hostlen = (size_t) (hostend - p);
	if(!hostlen || hostlen >= hostsz)
	{
		return -1;
	}
	for(i = 0; i < hostlen; i++)
	{
		unsigned char ch = (unsigned char) p[i];

		if(ch <= 0x20 || ch >= 0x7f)
		{
			return -1;
		}
	}
	if(portstart)
	{
		portlen = (size_t) (end - portstart);

		if(!portlen || portlen > 5)
		{
			return -1;
		}
		for(i = 0; i < portlen; i++)
		{
			if(portstart[i] < '0' || portstart[i] > '9')
			{
				return -1;
			}
			v = v * 10 + (portstart[i] - '0');
		}
		if(v < 1 || v > 65535)
		{
			return -1;
		}
		if(snprintf(port, portsz, "%ld", v) >= (int) portsz)
		{
			return -1;
		}
	}
	else
	{
		if(!defport || strlen(defport) >= portsz)
		{
			return -1;
		}
		strcpy(port, defport);
	}
	memcpy(host, p, hostlen);
	host[hostlen] = 0;
	return 0;
}

void
gw_weights(const CLUSTERMEMBER *members, const int *candidate, size_t n, long long *weight)
{
	int by_capacity = 1;
	size_t i;

	for(i = 0; i < n; i++)
	{
		if(candidate[i] && (members[i].capacity == CLUSTER_CAPACITY_UNBOUNDED || members[i].capacity <= 0))
		{
			by_capacity = 0;
		}
	}
	for(i = 0; i < n; i++)
	{
		long long w = by_capacity ? members[i].capacity : members[i].workers;

		/* at least 1; at most GW_WEIGHT_MAX, so that the round robin's
		 * sums of n weights cannot overflow */
		weight[i] = candidate[i] ? (w < 1 ? 1 : w > GW_WEIGHT_MAX ? GW_WEIGHT_MAX :
																	w) :
								   0;
	}
}

long
gw_choose_round_robin(const long long *weight, long long *current, size_t n)
{
	long long total = 0;
	long best = -1;
	size_t i;

	for(i = 0; i < n; i++)
	{
		if(weight[i] <= 0)
		{
			continue;
		}
		current[i] += weight[i];
		total += weight[i];
		if(best < 0 || current[i] > current[best])
		{
			best = (long) i;
		}
	}
	if(best >= 0)
	{
		current[best] -= total;
	}
	return best;
}

/* FNV-1a over the client's key and the member id, then a 64-bit finalizer
 * (splitmix64's) so that near keys give unrelated values. */
static uint64_t
pair_hash(const char *key, const char *id)
{
	uint64_t h = 1469598103934665603ULL;
	const unsigned char *p;

	for(p = (const unsigned char *) key; *p; p++)
	{
		h = (h ^ *p) * 1099511628211ULL;
	}
	h = (h ^ 0xff) * 1099511628211ULL;
	for(p = (const unsigned char *) id; *p; p++)
	{
		h = (h ^ *p) * 1099511628211ULL;
	}
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

long
gw_choose_rendezvous(const char *key, const CLUSTERMEMBER *members, const long long *weight, size_t n)
{
	double best_score = 0;
	long best = -1;
	size_t i;

	for(i = 0; i < n; i++)
	{
		double u, score;

		if(weight[i] <= 0)
		{
			continue;
		}
		/* u in (0, 1): 53 bits of the hash, never 0 or 1 */
		u = ((double) (pair_hash(key, members[i].id) >> 11) + 0.5) / 9007199254740992.0;
		/* weighted rendezvous: the largest w / -ln(u) wins; a member's
		 * chance is its share of the total weight */
		score = (double) weight[i] / -log(u);
		if(best < 0 || score > best_score)
		{
			best = (long) i;
			best_score = score;
		}
	}
	return best;
}
