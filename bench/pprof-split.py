#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""
pprof-split: where a Go server's CPU went, from a CPU profile
(/debug/pprof/profile, gzipped protobuf) without the Go toolchain.

    pprof-split.py PROFILE [TOP]

Prints the profile's total CPU, then the share of each part of etcd's
keepalive path, found by the first matching frame from the root of each
sample's stack (so every sample counts once):

  HTTP/1.1 + JSON gateway   net/http's connection and the grpc-gateway handler
  gateway's gRPC client     the gateway's own gRPC connection to the server
  gRPC server               the server side of that connection and its handlers
  Go runtime                garbage collection and the scheduler
  other                     raft, the store, timers, ...

then three costs across those parts (garbage-collection marking, of which
scanning goroutine stacks, and the lease renewal itself), and the TOP
(default 25) functions by cumulative and by flat CPU. Only the
fields of profile.proto it needs are decoded (sample, location, function,
string_table).
"""
import gzip
import sys


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def fields(buf):
    """(field number, wire type, value) of each field of one message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 2:
            n, i = varint(buf, i)
            v = buf[i:i + n]
            i += n
        elif wt == 1:
            v = int.from_bytes(buf[i:i + 8], "little")
            i += 8
        elif wt == 5:
            v = int.from_bytes(buf[i:i + 4], "little")
            i += 4
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, v


def ints(wt, v):
    """A repeated integer field: packed (wire type 2) or one value."""
    if wt != 2:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i)
        out.append(x)
    return out


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    samples, locs, funcs, strings = [], {}, {}, []
    for num, wt, v in fields(data):
        if num == 2:
            ids, vals = [], []
            for n2, w2, v2 in fields(v):
                if n2 == 1:
                    ids += ints(w2, v2)
                elif n2 == 2:
                    vals += ints(w2, v2)
            samples.append((ids, vals))
        elif num == 4:
            lid, lines = 0, []
            for n2, w2, v2 in fields(v):
                if n2 == 1:
                    lid = v2
                elif n2 == 4:
                    for n3, _, v3 in fields(v2):
                        if n3 == 1:
                            lines.append(v3)
            locs[lid] = lines
        elif num == 5:
            fid, name = 0, 0
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    fid = v2
                elif n2 == 2:
                    name = v2
            funcs[fid] = name
        elif num == 6:
            strings.append(v.decode("utf-8", "replace"))
    return samples, locs, funcs, strings


PARTS = [
    ("HTTP/1.1 + JSON gateway", ("net/http.(*conn).serve", "etcdserverpb/gw.", "grpc-gateway")),
    ("gateway's gRPC client", ("transport.(*http2Client)", "transport.newHTTP2Client", "grpc.(*clientStream)",
                               "grpc.newClientStream", "grpc.(*addrConn)", "grpc.(*ClientConn)")),
    ("gRPC server", ("transport.(*http2Server)", "transport.newHTTP2Server", "grpc.(*Server)")),
    ("Go runtime", ("runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge", "runtime.mcall",
                    "runtime.morestack", "runtime.mstart", "runtime.sysmon")),
]


# (label, function): the share of samples with that function on the stack
NAMED = [
    ("garbage-collection marking", "runtime.gcBgMarkWorker"),
    ("  of which goroutine stacks", "runtime.scanstack"),
    ("lease renewal (lessor.Renew)", "go.etcd.io/etcd/lease.(*lessor).Renew"),
]


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: pprof-split.py PROFILE [TOP]\n")
        return 2
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    samples, locs, funcs, strings = load(sys.argv[1])
    total = 0
    flat, cum, parts = {}, {}, {}
    for ids, vals in samples:
        ns = vals[-1] if vals else 0
        total += ns
        # leaf first; each location lists its inlined frames innermost first
        stack = [strings[funcs.get(f, 0)] for lid in ids for f in locs.get(lid, [])]
        if stack:
            flat[stack[0]] = flat.get(stack[0], 0) + ns
        for name in set(stack):
            cum[name] = cum.get(name, 0) + ns
        part = "other"
        for frame in reversed(stack):
            hit = [p for p, keys in PARTS if any(k in frame for k in keys)]
            if hit:
                part = hit[0]
                break
        parts[part] = parts.get(part, 0) + ns
    if total == 0:
        print("empty profile")
        return 1
    print("total CPU in the profile: %.2f s" % (total / 1e9))
    for p in [p for p, _ in PARTS] + ["other"]:
        print("  %-30s %6.1f%%" % (p, 100.0 * parts.get(p, 0) / total))
    print("across the parts:")
    for label, name in NAMED:
        print("  %-30s %6.1f%%" % (label, 100.0 * cum.get(name, 0) / total))
    for title, table in (("cumulative", cum), ("flat", flat)):
        print("top %d by %s CPU:" % (top, title))
        for name, ns in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print("  %6.1f%%  %s" % (100.0 * ns / total, name))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(0)
