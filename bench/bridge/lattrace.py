#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Where a bridged record's latency goes, per hop (bench/bridge/run.sh with
LATTRACE=DIR writes the inputs):

  DIR/bench.lat           peer size sent_ns one_way_ns  (bench_bridge, latency runs)
  DIR/A.trace, B.trace    stage sent_ns at_ns           (uhp-bridge, LATTRACE build)

Stages: 1 A peeked the record from the outbox, 5 A calls publish (single
records), 2 A's publish returned,
3 B's callback/pull loop got the message, 4 B committed it into the channel;
the bench's receipt is the end. Each hop's p50/p90 in us, from the records
the bench measured in latency mode (throughput runs are left out).
"""
import sys
from collections import defaultdict

HOPS = [("send->A peek", 0, 1), ("A peek->publishing", 1, 5),
        ("publishing->B got it", 5, 3), ("publishing->publish returned", 5, 2), ("B got->committed", 3, 4),
        ("committed->agent got", 4, 9)]


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, len(v) * p // 100)] if v else float("nan")


def main(d):
    stages = defaultdict(dict)          # sent -> {stage: at}
    for name in ("A.trace", "B.trace"):
        try:
            with open(f"{d}/{name}") as f:
                for line in f:
                    st, sent, at = (int(x) for x in line.split())
                    stages[sent].setdefault(st, at)
        except FileNotFoundError:
            print(f"lattrace: {d}/{name} missing", file=sys.stderr)
    rows = defaultdict(list)            # (peer, size) -> [(sent, lat)]
    with open(f"{d}/bench.lat") as f:
        for line in f:
            peer, size, sent, lat = line.split()
            rows[(peer, int(size))].append((int(sent), int(lat)))
    print("\n| peer | size | n | hop | p50 us | p90 us |")
    print("|---|---:|---:|---|---:|---:|")
    for (peer, size), v in sorted(rows.items()):
        print(f"| {peer} | {size} | {len(v)} | one way | {pct([l for _, l in v], 50) / 1e3:.0f} "
              f"| {pct([l for _, l in v], 90) / 1e3:.0f} |")
        if not peer.startswith("bridge"):
            continue
        hops = defaultdict(list)
        for sent, lat in v:
            t = dict(stages.get(sent, {}))
            t[0], t[9] = sent, sent + lat
            for name, a, b in HOPS:
                if a in t and b in t:
                    hops[name].append(t[b] - t[a])
        for name, _, _ in HOPS:
            h = hops[name]
            print(f"| {peer} | {size} | {len(h)} | {name} | {pct(h, 50) / 1e3:.0f} | {pct(h, 90) / 1e3:.0f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
