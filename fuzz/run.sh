#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Run one libFuzzer harness for a bounded time (make fuzz runs several of
# these at once, one per core): fuzz/run.sh NAME SECONDS SEEDDIR BINDIR.
# The harness is BINDIR/fuzz-NAME; it grows BINDIR/corpus-NAME from the
# seeds, logs to BINDIR/fuzz-NAME.log, and leaves a crashing input as
# BINDIR/crash-NAME-*. Prints one line of figures; exits 1 on a crash.
set -u
t=$1 secs=$2 seeds=$3 bin=$4
mkdir -p "$bin/corpus-$t"
if ! "$bin/fuzz-$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
	-artifact_prefix="$bin/crash-$t-" "$bin/corpus-$t" "$seeds/$t" >"$bin/fuzz-$t.log" 2>&1; then
	tail -n 60 "$bin/fuzz-$t.log"
	echo "fuzz-$t: FAILED (input saved as $bin/crash-$t-*)"
	exit 1
fi
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$bin/fuzz-$t.log")
echo "fuzz-$t: $runs executions in $secs s; corpus: $(ls "$seeds/$t" | wc -l) seeds, $(ls "$bin/corpus-$t" | wc -l) inputs found; 0 crashes"
