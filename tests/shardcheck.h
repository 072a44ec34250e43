/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shardcheck: the shard tests' referee. It records every acquire and
 * release with its CLOCK_MONOTONIC time, from in-process members (their
 * shard callback) and from member processes (tests/etcd-member -E files),
 * and checks what the issue promises, independently of the library's own
 * bookkeeping:
 *  - intervals: no shard was held by two holders at the same moment, and
 *    a shard's token grows whenever its holder changes;
 *  - settled: every shard has exactly one live holder, each holding
 *    floor or ceil of S * workers / total;
 *  - movement: shards that changed holder between two settled states,
 *    against the minimum any balanced assignment needs.
 * A holder is one incarnation of a member ("who"), named by the test.
 */
#ifndef SHARDCHECK_H_
#define SHARDCHECK_H_ 1

#include <stddef.h>
#include <libcluster.h>

/* cmocka group set-up and teardown: a temporary directory for event
 * files (sc_dir_path()) and the program's private etcd (et_setup()). */
int sc_setup(void **state);
int sc_teardown(void **state);
const char *sc_dir_path(void);

/* Start a run with S shards; event files go to dir (must exist). */
void sc_init(unsigned shards, const char *dir);
void sc_free(void);

/* Set shards on c and record its callbacks as who (before the join). */
void sc_attach(CLUSTER *c, const char *who);
/* The event file a member process named who writes (static buffer ring). */
const char *sc_event_file(const char *who);
/* who (a process) was killed now: its holdings end here. */
void sc_killed(const char *who);

/* Events recorded so far for who (NULL: all). */
size_t sc_event_count(const char *who);

/* Count the overlaps and token regressions (each printed); 0 is good. */
int sc_check_intervals(void);

/* The live holders and their worker counts. */
typedef struct sc_live sc_live;
struct sc_live
{
	const char *who;
	int workers;
};

/* 0 if settled (every shard held once by a live holder, balanced, and no
 * departed holder that was not killed still holds one); else -1 with the
 * reason in why. */
int sc_settled(const sc_live *live, size_t n, char *why, size_t whysz);
/* Wait up to seconds (x multiplier) for sc_settled; 0 or -1 (printed). */
int sc_wait_settled(const sc_live *live, size_t n, double seconds);

/* A snapshot of who holds what (for movement). */
typedef struct sc_snapshot sc_snapshot;
sc_snapshot *sc_snapshot_take(void);
void sc_snapshot_free(sc_snapshot *s);
/* Shards whose holder differs between a and b (both settled). */
size_t sc_moves(const sc_snapshot *a, const sc_snapshot *b);
/* The fewest shards a balanced assignment for live (after the change)
 * must move away from the holdings in a: computed here, from scratch. */
size_t sc_min_moves(const sc_snapshot *a, const sc_live *live, size_t n);

#endif /*!SHARDCHECK_H_*/
