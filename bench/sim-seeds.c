/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Event models of the two seed balancers (sim-seeds.h), each doing what
 * its package's code does, with its own timers and the staleness of what
 * it reads. Sources: /work/shared/seeds/000_*.txt (cluster-balancer
 * README), /work/shared/seeds/001_*.txt (ClusterLoadBalancer README),
 * /work/shared/reference/peers.md §4.1 and §4.2 (the packages' code as
 * read there), and the packages' own files in the public index
 * (CharlesWall/node-cluster-balancer lib/Advisor.js, lib/Change.js,
 * lib/Status.js, lib/storage/ioredis.js, test/simulations/;
 * pushex-project/cluster_load_balancer lib/cluster_load_balancer/
 * worker.ex, collection.ex, calculator.ex), which agree with peers.md.
 * [guess] marks what no source says.
 *
 * Common to both:
 *  C1. A node's load is its connected clients. Shed clients leave at
 *      once (the shedder's load drops when it acts) and arrive where
 *      they reconnect after the sim_flight delay, or are lost.
 *  C2. Loads, capacities and membership are fixed apart from the
 *      balancer's own moves: no node joins, leaves or restarts during a
 *      run, and no new clients arrive or leave by themselves.
 *  C3. Every node starts its timer(s) at its own time, uniform over one
 *      interval (the brief; nodes start at different times in a rolling
 *      deploy).
 *  C4. Events are handled in time order, in milliseconds; equal times:
 *      lower node index first, and for one node its report (or round)
 *      timer before its other event. Clients land at the start of a
 *      tick (sim_flight's granularity), before that tick's events.
 *  C5. Before a run the cluster is assumed to have sat at its start
 *      state (what any status published before time 0 shows).
 *  C6. Stop: nothing sent or landed and nothing in flight for
 *      3 intervals + the longest time before every node has acted on
 *      current data (cluster-balancer: + status age + publish interval);
 *      after that no node can ever act again. [own criterion, per brief;
 *      one exception: a healthyThreshold between the statuses' least and
 *      greatest age makes peers flicker in and out of view, and a node
 *      could in principle act after the window]
 *
 * cluster-balancer (seed 000, npm 2.0.1; peers.md §4.1, Advisor.js):
 *  B1. Two setTimeout chains per node, both started at once by start():
 *      advice every adviceInterval (default 5000) and report every
 *      report interval (default 2500). The README's reportInterval is
 *      ignored (the code reads advisingInterval || interval: peers.md
 *      bug 1), so the report timer stays 2500 with the README settings.
 *      `||` defaulting: 0 means the default (peers.md §4.1).
 *  B2. Each next timeout is set after the tick's work finishes
 *      (.finally), so each period is the interval + that work's time:
 *      uniform [0, latency_ms], latency_ms 2 [guess: Redis round
 *      trips]. The two chains therefore drift apart slowly.
 *  B3. Both ticks publish the node's load at the moment (advice calls
 *      update() = publish self || fetch peers). The advice's self value
 *      is that fresh load; the status in storage keeps showing it, even
 *      after the node sheds, until its next publish.
 *  B4. A reader sees, for each peer, the latest status published at
 *      least status_age_ms earlier. Default 0: a Redis SET (the
 *      README's storage) or ZooKeeper setData is visible to every
 *      reader within milliseconds. The statuses are still up to
 *      one publish interval old (2.5 s with the defaults: the audit's
 *      "up to ~2.5 s"); status_age_ms adds on top of that. [the brief
 *      suggested 2500 here; that would count the report interval twice]
 *  B5. Peers come in storage order = node index order. [Redis HGETALL
 *      of a small hash returns fields in insertion order; a restarted
 *      node removes its field on stop() and appends a new one, so after
 *      a rolling deploy in index order the order is the index order.]
 *  B6. _getCurrentAdvice exactly: with no peers, no change. sum = min =
 *      max = self's value, n = 1 (self is counted even when its
 *      maxCapacity is 0). Each healthy peer (maxCapacity !== 0 and, only
 *      when healthyThreshold is set, |now - timestamp| <= threshold):
 *      max updated on >, the min peer on a strict < against the running
 *      min (which starts at self; the first healthy peer is taken when
 *      none is lower), sum and n added. A change {reduction: stepSize,
 *      target: min peer} iff a min peer exists, max - min > precision
 *      (strict, absolute) and self > mean. A positive maxCapacity is
 *      never used. One target per advice, the same for every shedder.
 *  B7. Timestamps are compared with the reader's clock: no skew
 *      between nodes. [guess]
 *  B8. The application redirects min(reduction, its load) clients to
 *      the named target (README usage; the package's own simulation
 *      moves exactly delta), and they reconnect there (targeted).
 *  B9. Status expiry (Redis TTL 60 s, statusTTL ignored: peers.md bug 2)
 *      never happens: every node republishes every <= 2.5 s.
 *
 * ClusterLoadBalancer (seed 001, hex 1.0.0; peers.md §4.2, worker.ex):
 *  L1. One round timer per node, Process.send_after(round) set at the
 *      start of each tick, so exactly periodic (no drift).
 *  L2. At its tick a node takes its own count() then, and casts a
 *      request to every other :pg member; each answers with its count()
 *      when it handles the request. The round finalizes when all answers
 *      are in: reply_ms after the tick [guess 1 ms, Distributed Erlang
 *      in one data centre]. The model reads every other node's count at
 *      that moment (not at reply_ms / 2: under a millisecond apart). A
 *      round still unanswered at the next tick is discarded.
 *  L3. With no other member, no answer ever arrives, so a round never
 *      finalizes and a lone node never sheds (Collection.finalized? is
 *      only checked when an answer arrives).
 *  L4. Every node takes part, whatever its capacity (the package has no
 *      capacity); the tie-breaker is drawn once per node (:rand.uniform
 *      at init) from seed.
 *  L5. Calculator exactly: highest iff for every other node self > other
 *      or (equal and rand > other's rand); avg = sum / (others + 1) as a
 *      float; shed iff highest and self > avg + dev% x avg; amount =
 *      trunc((self - avg) x shed%), then min(max_shed, amount), and
 *      nothing if that is below min_shed.
 *  L6. kill_processes(amount) kills min(amount, its clients now)
 *      (Enum.take on the shuffled transports) at the moment the round
 *      finalizes.
 *  L7. It names no target: killed clients reconnect through whatever
 *      balancer is in front (README). least_loaded 0: each to one of the
 *      other nodes with capacity not 0, uniformly at random; 1: each to
 *      the least-loaded of those as the shedder's round saw them, plus
 *      those already sent there by this shed (a least-connections
 *      balancer counting its own assignments), lowest index on ties.
 *      [the brief's two modes; "plus already sent" is mine] If there is
 *      no other in-service node they reconnect to the shedder.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "sim-seeds.h"

/* ------------------------------------------------------------------ */
/* the run both models share: loads, flight, judge, bookkeeping         */
/* ------------------------------------------------------------------ */

typedef struct run run;
struct run
{
	const sim_state *s;
	const sim_judge *j;
	const sim_reconnect *rc;
	sim_flight f;
	sim_track t;
	long long load[SIM_MAXN];
	uint64_t rng;
	int tick_ms;
	long long moved, lost;
	long long last_change_ms; /* the last client sent or landed */
	int balanced;             /* at the end of the last tick */
	long long became_ms;      /* when it last became balanced */
};

static int
run_init(run *r, const sim_state *s, const sim_judge *j, const sim_reconnect *rc, int tick_ms, uint64_t seed)
{
	memset(r, 0, sizeof(*r));
	r->s = s;
	r->j = j;
	r->rc = rc;
	r->tick_ms = tick_ms;
	r->rng = seed;
	memcpy(r->load, s->load, sizeof(r->load));
	if(sim_flight_init(&r->f, tick_ms, rc) < 0)
	{
		return -1;
	}
	sim_track_start(&r->t, j, r->load);
	r->balanced = sim_balanced(j, r->load);
	return 0;
}

/* Clients landing at the start of tick k. The models name every target. */
static void
run_land(run *r, long long k)
{
	long long arrived[SIM_MAXN], unnamed;
	int i;

	sim_flight_land(&r->f, k, r->s->n, arrived, &unnamed);
	for(i = 0; i < r->s->n; i++)
	{
		if(arrived[i] > 0)
		{
			r->load[i] += arrived[i];
			r->last_change_ms = k * r->tick_ms;
		}
	}
}

/* count clients shed at now_ms (in tick k) reconnect to node to; the
 * caller has taken them off the shedder already. */
static void
run_send(run *r, long long k, long long now_ms, int to, long long count)
{
	if(count <= 0)
	{
		return;
	}
	r->moved += count;
	r->lost += sim_flight_send(&r->f, r->rc, k, to, count, &r->rng);
	r->last_change_ms = now_ms;
}

static void
run_tick_end(run *r, long long k)
{
	int b;

	sim_track_step(&r->t, r->j, r->load);
	b = sim_balanced(r->j, r->load);
	if(b && !r->balanced)
	{
		r->became_ms = (k + 1) * r->tick_ms;
	}
	r->balanced = b;
}

/* Quiet for quiet_ms with nothing in flight: no node can act again. */
static int
run_quiet(const run *r, long long end_ms, long long quiet_ms)
{
	return r->f.in_flight == 0 && end_ms - r->last_change_ms >= quiet_ms;
}

static void
run_finish(run *r, long long interval_ms, sim_outcome *o)
{
	/* not converged: when it last changed anything (the horizon, for
	 * one still moving; when it gave up, for one that stopped) */
	long long at = r->balanced ? r->became_ms : r->last_change_ms;

	memset(o, 0, sizeof(*o));
	o->converged = r->balanced;
	o->time_s = (double) at / 1000.0;
	o->rounds = (at + interval_ms - 1) / interval_ms;
	o->moved = r->moved;
	o->lost = r->lost;
	sim_finish(r->j, &r->t, r->s, r->load, o);
	sim_flight_free(&r->f);
}

static void
out_of_memory(sim_outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->time_s = -1;
	o->rounds = -1;
}

/* ------------------------------------------------------------------ */
/* cluster-balancer (seed 000)                                          */
/* ------------------------------------------------------------------ */

void
sim_cb_defaults(sim_cb_settings *cb)
{
	memset(cb, 0, sizeof(*cb));
	cb->interval_ms = 5000;
	cb->step = 2;
	cb->precision = 10;
	cb->status_interval_ms = 2500;
	cb->status_age_ms = 0;
	cb->healthy_threshold_ms = 0;
	cb->latency_ms = 2;
}

void
sim_cb_readme(sim_cb_settings *cb)
{
	sim_cb_defaults(cb);
	cb->interval_ms = 100;
	cb->step = 1;
	cb->precision = 3;
	cb->healthy_threshold_ms = 2000;
	/* reportInterval: 100 is ignored by the code (B1) */
	cb->status_interval_ms = 2500;
}

int
sim_cb_describe(const sim_cb_settings *cb, char *buf, size_t size)
{
	char thr[32];

	if(cb->healthy_threshold_ms > 0)
	{
		snprintf(thr, sizeof(thr), "%d ms", cb->healthy_threshold_ms);
	}
	else
	{
		snprintf(thr, sizeof(thr), "off");
	}
	return snprintf(buf, size, "advice %d ms, stepSize %lld, precision %lld, report %d ms, status age +%d ms, healthyThreshold %s, latency 0..%d ms",
		cb->interval_ms > 0 ? cb->interval_ms : 5000, cb->step > 0 ? cb->step : 2, cb->precision > 0 ? cb->precision : 10,
		cb->status_interval_ms > 0 ? cb->status_interval_ms : 2500, cb->status_age_ms, thr, cb->latency_ms);
}

/* What each node has published: a ring of (time, value) per node. */
typedef struct cb_hist cb_hist;
struct cb_hist
{
	int size;         /* entries per node */
	long long *at;    /* [n][size] */
	long long *value; /* [n][size] */
	long long cnt[SIM_MAXN];
};

static void
cb_publish(cb_hist *h, int i, long long at, long long value)
{
	long long x = (long long) i * h->size + h->cnt[i] % h->size;

	h->at[x] = at;
	h->value[x] = value;
	h->cnt[i]++;
}

/* The latest time <= x on a chain of period p that ticked first at
 * first > x (C5: the node's timers ran the same way before time 0). */
static long long
chain_before(long long first, long long p, long long x)
{
	return first - (first - x + p - 1) / p * p;
}

/* The status of node i a reader sees when it reads at `x` = now - age:
 * the latest published at or before x (B4). Before the node's first
 * publish in the run, its start load with the timestamp of its last
 * publish before time 0 (C5). */
static void
cb_lookup(const cb_hist *h, const sim_state *s, int i, long long x, long long first, long long adv, long long rep, long long *value, long long *at)
{
	long long c, lo = h->cnt[i] > h->size ? h->cnt[i] - h->size : 0, a, b;

	for(c = h->cnt[i] - 1; c >= lo; c--)
	{
		long long y = (long long) i * h->size + c % h->size;

		if(h->at[y] <= x)
		{
			*value = h->value[y];
			*at = h->at[y];
			return;
		}
	}
	/* the ring is sized so that this is before the node's first publish */
	*value = s->load[i];
	a = chain_before(first, adv, x);
	b = chain_before(first, rep, x);
	*at = a > b ? a : b;
}

void
sim_cb_run(const sim_state *s, const sim_judge *j, const sim_cb_settings *cb, const sim_reconnect *rc, int tick_ms, long long horizon_ms, uint64_t seed, sim_outcome *o)
{
	run r;
	cb_hist h;
	long long adv = cb->interval_ms > 0 ? cb->interval_ms : 5000;
	long long rep = cb->status_interval_ms > 0 ? cb->status_interval_ms : 2500;
	long long step = cb->step > 0 ? cb->step : 2;
	long long precision = cb->precision > 0 ? cb->precision : 10;
	long long age = cb->status_age_ms > 0 ? cb->status_age_ms : 0;
	long long thr = cb->healthy_threshold_ms > 0 ? cb->healthy_threshold_ms : 0;
	long long lat = cb->latency_ms > 0 ? cb->latency_ms : 0;
	long long first[SIM_MAXN], next_adv[SIM_MAXN], next_rep[SIM_MAXN];
	long long quiet, k;
	int n = s->n, i;

	if(run_init(&r, s, j, rc, tick_ms, seed) < 0)
	{
		out_of_memory(o);
		return;
	}
	/* publishes within one status age, plus the one read and a margin */
	memset(&h, 0, sizeof(h));
	h.size = (int) (age / adv + age / rep + 4);
	h.at = malloc((size_t) n * (size_t) h.size * sizeof(*h.at));
	h.value = malloc((size_t) n * (size_t) h.size * sizeof(*h.value));
	if(!h.at || !h.value)
	{
		free(h.at);
		free(h.value);
		sim_flight_free(&r.f);
		out_of_memory(o);
		return;
	}
	for(i = 0; i < n; i++)
	{
		/* C3, B1: both timers start at the node's start */
		first[i] = (long long) sim_below(&r.rng, (uint64_t) adv);
		next_adv[i] = next_rep[i] = first[i];
	}
	/* C6: a change is published within min(adv, rep), visible after
	 * age, and acted on within one more advice interval */
	quiet = 3 * adv + age + (adv < rep ? adv : rep) + 4 * lat + 2 * tick_ms;
	for(k = 0; k * tick_ms < horizon_ms; k++)
	{
		long long end = (k + 1) * tick_ms;

		run_land(&r, k);
		for(;;)
		{
			long long t = end;
			int who = -1, advice = 0;

			for(i = 0; i < n; i++)
			{
				if(next_rep[i] < t)
				{
					t = next_rep[i];
					who = i;
					advice = 0;
				}
				if(next_adv[i] < t)
				{
					t = next_adv[i];
					who = i;
					advice = 1;
				}
			}
			if(who < 0)
			{
				break;
			}
			i = who;
			/* B3: either tick publishes the load at the moment */
			cb_publish(&h, i, t, r.load[i]);
			if(!advice)
			{
				next_rep[i] = t + rep + (lat ? (long long) sim_below(&r.rng, (uint64_t) lat + 1) : 0);
				continue;
			}
			if(n > 1)
			{
				/* B6: _getCurrentAdvice */
				long long self = r.load[i], sum = self, mn = self, mx = self, cnt = 1;
				int p, minpeer = -1;

				for(p = 0; p < n; p++)
				{
					long long v, at;

					if(p == i || s->cap[p] == 0)
					{
						continue; /* maxCapacity === 0: not healthy */
					}
					cb_lookup(&h, s, p, t - age, first[p], adv, rep, &v, &at);
					if(thr && (t - at > thr || at - t > thr))
					{
						continue;
					}
					if(v > mx)
					{
						mx = v;
					}
					if(v < mn)
					{
						minpeer = p;
						mn = v;
					}
					else if(minpeer < 0)
					{
						minpeer = p;
					}
					sum += v;
					cnt++;
				}
				if(minpeer >= 0 && mx - mn > precision && self * cnt > sum)
				{
					/* B8 */
					long long c = step < r.load[i] ? step : r.load[i];

					r.load[i] -= c;
					run_send(&r, k, t, minpeer, c);
				}
			}
			next_adv[i] = t + adv + (lat ? (long long) sim_below(&r.rng, (uint64_t) lat + 1) : 0);
		}
		run_tick_end(&r, k);
		if(run_quiet(&r, end, quiet))
		{
			break;
		}
	}
	free(h.at);
	free(h.value);
	run_finish(&r, adv, o);
}

/* ------------------------------------------------------------------ */
/* ClusterLoadBalancer (seed 001)                                       */
/* ------------------------------------------------------------------ */

void
sim_clb_defaults(sim_clb_settings *clb)
{
	memset(clb, 0, sizeof(*clb));
	clb->round_ms = 10000;
	clb->deviation_percent = 25;
	clb->shed_percent = 50;
	clb->min_shed = 10;
	clb->max_shed = 100;
	clb->reply_ms = 1;
}

int
sim_clb_describe(const sim_clb_settings *clb, char *buf, size_t size)
{
	return snprintf(buf, size, "round %d ms, allowed deviation %d%%, shed %d%%, shed count %lld..%lld, replies after %d ms",
		clb->round_ms, clb->deviation_percent, clb->shed_percent, clb->min_shed, clb->max_shed, clb->reply_ms);
}

/* L5, L6, L7: node i's round, begun with its count self, finalizes at t. */
static void
clb_finalize(run *r, const sim_clb_settings *clb, int least_loaded, long long k, long long t, int i, long long self, const uint64_t *tiebreak)
{
	const sim_state *s = r->s;
	long long count[SIM_MAXN], add[SIM_MAXN], sum = self, amount, c;
	int n = s->n, p, highest = 1, elig[SIM_MAXN], ne = 0;
	double avg, calc;

	for(p = 0; p < n; p++)
	{
		if(p == i)
		{
			continue;
		}
		count[p] = r->load[p]; /* L2: its count() when it answered */
		sum += count[p];
		if(!(self > count[p] || (self == count[p] && tiebreak[i] > tiebreak[p])))
		{
			highest = 0;
		}
	}
	avg = (double) sum / (double) n;
	if(!highest || !((double) self > avg + (double) clb->deviation_percent / 100.0 * avg))
	{
		return;
	}
	calc = ((double) self - avg) * ((double) clb->shed_percent / 100.0);
	amount = (long long) calc; /* trunc; calc > 0 here */
	if(amount > clb->max_shed)
	{
		amount = clb->max_shed;
	}
	if(amount < clb->min_shed)
	{
		return;
	}
	if(amount > r->load[i])
	{
		amount = r->load[i];
	}
	if(amount <= 0)
	{
		return;
	}
	r->load[i] -= amount;
	for(p = 0; p < n; p++)
	{
		add[p] = 0;
		if(p != i && s->cap[p] != 0)
		{
			elig[ne++] = p;
		}
	}
	if(ne == 0)
	{
		run_send(r, k, t, i, amount);
		return;
	}
	for(c = 0; c < amount; c++)
	{
		int to = elig[0], e;

		if(least_loaded)
		{
			for(e = 1; e < ne; e++)
			{
				if(count[elig[e]] + add[elig[e]] < count[to] + add[to])
				{
					to = elig[e];
				}
			}
		}
		else
		{
			to = elig[sim_below(&r->rng, (uint64_t) ne)];
		}
		add[to]++;
	}
	for(p = 0; p < n; p++)
	{
		run_send(r, k, t, p, add[p]);
	}
}

void
sim_clb_run(const sim_state *s, const sim_judge *j, const sim_clb_settings *clb, int least_loaded, const sim_reconnect *rc, int tick_ms, long long horizon_ms, uint64_t seed, sim_outcome *o)
{
	run r;
	long long round = clb->round_ms > 0 ? clb->round_ms : 10000;
	long long reply = clb->reply_ms > 0 ? clb->reply_ms : 0;
	long long next_tick[SIM_MAXN], fin_at[SIM_MAXN], self_count[SIM_MAXN];
	uint64_t tiebreak[SIM_MAXN];
	long long quiet, k;
	int n = s->n, i;

	if(run_init(&r, s, j, rc, tick_ms, seed) < 0)
	{
		out_of_memory(o);
		return;
	}
	for(i = 0; i < n; i++)
	{
		next_tick[i] = (long long) sim_below(&r.rng, (uint64_t) round); /* C3 */
		tiebreak[i] = sim_rand(&r.rng);                                 /* L4 */
		fin_at[i] = -1;
		self_count[i] = 0;
	}
	quiet = 3 * round + reply + 2 * tick_ms; /* C6: reads are current */
	for(k = 0; k * tick_ms < horizon_ms; k++)
	{
		long long end = (k + 1) * tick_ms;

		run_land(&r, k);
		for(;;)
		{
			long long t = end;
			int who = -1, fin = 0;

			for(i = 0; i < n; i++)
			{
				if(next_tick[i] < t)
				{
					t = next_tick[i];
					who = i;
					fin = 0;
				}
				if(fin_at[i] >= 0 && fin_at[i] < t)
				{
					t = fin_at[i];
					who = i;
					fin = 1;
				}
			}
			if(who < 0)
			{
				break;
			}
			i = who;
			if(fin)
			{
				fin_at[i] = -1;
				clb_finalize(&r, clb, least_loaded, k, t, i, self_count[i], tiebreak);
				continue;
			}
			/* L1, L2: a pending round is discarded; a new one starts */
			next_tick[i] = t + round;
			self_count[i] = r.load[i];
			fin_at[i] = n > 1 ? t + reply : -1; /* L3 */
		}
		run_tick_end(&r, k);
		if(run_quiet(&r, end, quiet))
		{
			break;
		}
	}
	run_finish(&r, round, o);
}
