#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench_py.py: Python-to-Python message throughput, uhp against its peers.

Two processes (a producer and a consumer, forked for every run) pass
--messages messages of each --sizes size. The peers, measured interleaved
in the same run (every round runs each peer once, in this order, then the
next round starts):

  uhp_batch     uhp.Channel.send_batch()/recv_batch() through an arena,
                --batch messages per call
  uhp_single    uhp send()/recv() one message per call (same arena setup)
  mp_queue      multiprocessing.Queue, put()/get() one message per call
  sock_seqpacket  socket.socketpair(AF_UNIX, SOCK_SEQPACKET): one message
                per send()/recv() (the kernel keeps the message boundaries)
  sock_stream   socket.socketpair(AF_UNIX, SOCK_STREAM) with 4-byte length
                framing, --batch frames joined per sendall(), the consumer
                parsing frames out of recv_into() chunks (the fastest honest
                Python framing we know)

Every message is a distinct bytes object (a counter in its first 8 bytes);
the consumer counts messages and bytes and checks the last message. Time is
from the producer's first send to the consumer's last receive
(time.perf_counter(), CLOCK_MONOTONIC, the same clock in both processes).

Reported per size and peer: the median msgs/s over the rounds (min, max),
and the median of the per-round ratios uhp_batch/peer. Printed as a table,
and as JSON lines (one per row, after an environment line) to --out.

  UHP_LIB=build/userlib/libuhp.so.0 /usr/bin/python3 bench/python/bench_py.py \\
      --out build/bench/python.jsonl

--profile SIZE runs the uhp_batch producer and consumer in one process
under cProfile instead and prints where the time goes.
"""
import argparse
import json
import os
import platform
import socket
import statistics
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))

import uhp  # noqa: E402

PEERS = ("uhp_batch", "uhp_single", "mp_queue", "sock_seqpacket", "sock_stream")
REF = "uhp_batch"
GOALS = {"mp_queue": 5.0, "sock_seqpacket": 2.0, "sock_stream": 2.0}
POOL = 4096
RECV_BUF = 65536


def parse_count(s):
    s = s.strip().upper()
    mult = {"K": 10**3, "M": 10**6, "G": 10**9}.get(s[-1:], 1)
    return int(float(s[:-1] if mult > 1 else s) * mult)


def parse_size(s):
    s = s.strip().upper()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(s[-1:], 1)
    return int(s[:-1] if mult > 1 else s) * mult


def make_pool(size):
    fill = bytes((i * 7 + 3) & 0xFF for i in range(size))
    return [struct.pack("<Q", i) + fill[8:] if size >= 8 else fill
            for i in range(POOL)]


# ---- producers and consumers: each runs in its own forked process ----
# produce(env, pool, n, batch) sends n messages (pool[i % POOL]);
# consume(env, n, batch) returns (count, bytes, last message).

def uhp_open(env, role):
    return uhp.arena_attach(env["name"], consumer=(role == "consumer"))


def uhp_batch_produce(ch, pool, n, batch):
    sent = 0
    while sent < n:
        k = min(batch, n - sent)
        o = sent % POOL
        ch.send_batch(pool[o:o + k], timeout=None)
        sent += k


def uhp_batch_consume(ch, n, batch):
    got = nbytes = 0
    last = None
    recv_batch = ch.recv_batch
    while got < n:
        msgs = recv_batch(batch, None)
        got += len(msgs)
        nbytes += sum(map(len, msgs))
        last = msgs[-1]
    return got, nbytes, last


def uhp_single_produce(ch, pool, n, batch):
    send = ch.send
    for i in range(n):
        m = pool[i % POOL]
        try:
            send(m)
        except BlockingIOError:
            ch.send_wait(m)


def uhp_single_consume(ch, n, batch):
    got = nbytes = 0
    last = None
    recv, wait = ch.recv, ch.wait
    while got < n:
        try:
            last = recv()
        except BlockingIOError:
            wait(None)
            continue
        got += 1
        nbytes += len(last)
    return got, nbytes, last


def queue_produce(q, pool, n, batch):
    put = q.put
    for i in range(n):
        put(pool[i % POOL])
    q.close()
    q.join_thread()     # the feeder thread must hand everything over


def queue_consume(q, n, batch):
    got = nbytes = 0
    last = None
    get = q.get
    for _ in range(n):
        last = get()
        got += 1
        nbytes += len(last)
    return got, nbytes, last


def seqpacket_produce(s, pool, n, batch):
    send = s.send
    for i in range(n):
        send(pool[i % POOL])


def seqpacket_consume(s, n, batch):
    got = nbytes = 0
    last = None
    recv = s.recv
    for _ in range(n):
        last = recv(RECV_BUF)
        got += 1
        nbytes += len(last)
    return got, nbytes, last


_HDR = struct.Struct("<I")


def stream_produce(s, pool, n, batch):
    hdr = _HDR.pack
    sendall = s.sendall
    sent = 0
    while sent < n:
        k = min(batch, n - sent)
        o = sent % POOL
        parts = []
        for m in pool[o:o + k]:
            parts.append(hdr(len(m)))
            parts.append(m)
        sendall(b"".join(parts))
        sent += k


def stream_consume(s, n, batch):
    got = nbytes = 0
    last = None
    buf = bytearray(1 << 20)
    mv = memoryview(buf)
    unpack = _HDR.unpack_from
    recv_into = s.recv_into
    end = 0
    while got < n:
        k = recv_into(mv[end:])
        if k == 0:
            break
        end += k
        data = bytes(mv[:end])          # one copy; messages are slices of it
        off = 0
        while end - off >= 4:
            (ln,) = unpack(data, off)
            if end - off - 4 < ln:
                break
            last = data[off + 4:off + 4 + ln]
            got += 1
            nbytes += ln
            off += 4 + ln
        if off:
            rest = end - off
            buf[:rest] = data[off:end]
            end = rest
    return got, nbytes, last


# ---- one run: a peer, a size, n messages ----

class Peer:
    def __init__(self, name, args):
        self.name, self.args = name, args

    def setup(self, tag):
        if self.name.startswith("uhp"):
            name = "bench-py-%d-%s" % (os.getpid(), tag)
            try:
                uhp.arena_unlink(name)
            except FileNotFoundError:
                pass
            ch = uhp.arena_create(name, ring_size=self.args.ring_size,
                                  node=self.args.node)
            return {"name": name, "creator": ch}
        if self.name == "mp_queue":
            import multiprocessing as mp
            return {"q": mp.get_context("fork").Queue()}
        kind = socket.SOCK_SEQPACKET if self.name == "sock_seqpacket" \
            else socket.SOCK_STREAM
        a, b = socket.socketpair(socket.AF_UNIX, kind)
        return {"p": a, "c": b}

    def teardown(self, env):
        if "creator" in env:
            env["creator"].close()
            uhp.arena_unlink(env["name"])
        for k in ("p", "c"):
            if k in env:
                env[k].close()
        if "q" in env:
            env["q"].close()

    def open(self, env, role):
        if self.name.startswith("uhp"):
            env["creator"].close()      # the child's copy of the mapping
            return uhp_open(env, role)
        if self.name == "mp_queue":
            return env["q"]
        (env["c"] if role == "producer" else env["p"]).close()
        return env["p"] if role == "producer" else env["c"]

    def funcs(self):
        return {
            "uhp_batch": (uhp_batch_produce, uhp_batch_consume),
            "uhp_single": (uhp_single_produce, uhp_single_consume),
            "mp_queue": (queue_produce, queue_consume),
            "sock_seqpacket": (seqpacket_produce, seqpacket_consume),
            "sock_stream": (stream_produce, stream_consume),
        }[self.name]


def _child(fn, w_ready, r_go, w_res, cpu):
    try:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        fn(w_ready, r_go, w_res)
        code = 0
    except BaseException as e:      # report, never fall back into the parent
        try:
            os.write(w_res, json.dumps({"error": repr(e)}).encode() + b"\n")
        except OSError:
            pass
        code = 1
    os._exit(code)


def run_one(peer, size, pool, args, tag):
    env = peer.setup(tag)
    produce, consume = peer.funcs()
    n, batch = args.messages, args.batch
    pipes = [os.pipe() for _ in range(3)]   # ready, go, results
    (r_ready, w_ready), (r_go, w_go), (r_res, w_res) = pipes
    cpus = (None, None)
    if args.pin:
        avail = sorted(os.sched_getaffinity(0))
        cpus = (avail[0], avail[1 % len(avail)])

    def consumer(w_ready, r_go, w_res):
        h = peer.open(env, "consumer")
        os.write(w_ready, b"c")
        got, nbytes, last = consume(h, n, batch)
        t1 = time.perf_counter()
        ok = got == n and nbytes == n * size and last == pool[(n - 1) % POOL]
        os.write(w_res, json.dumps({"role": "c", "t1": t1, "got": got,
                                    "ok": ok}).encode() + b"\n")

    def producer(w_ready, r_go, w_res):
        h = peer.open(env, "producer")
        os.write(w_ready, b"p")
        os.read(r_go, 1)
        t0 = time.perf_counter()
        produce(h, pool, n, batch)
        os.write(w_res, json.dumps({"role": "p", "t0": t0}).encode() + b"\n")

    pids = []
    for fn, cpu in ((consumer, cpus[1]), (producer, cpus[0])):
        pid = os.fork()
        if pid == 0:
            _child(fn, w_ready, r_go, w_res, cpu)
        pids.append(pid)
    os.close(w_res)
    ready = b""
    while len(ready) < 2:
        chunk = os.read(r_ready, 2 - len(ready))
        if not chunk:
            break
        ready += chunk
    os.write(w_go, b"g")
    out = b""
    while True:
        chunk = os.read(r_res, 65536)
        if not chunk:
            break
        out += chunk
    codes = [os.waitpid(pid, 0)[1] for pid in pids]
    for fd in (r_ready, w_ready, r_go, w_go, r_res):
        os.close(fd)
    peer.teardown(env)
    res = {}
    for line in out.splitlines():
        d = json.loads(line)
        if "error" in d:
            raise RuntimeError("%s size %d: child failed: %s"
                               % (peer.name, size, d["error"]))
        res[d["role"]] = d
    if any(codes) or set(res) != {"p", "c"}:
        raise RuntimeError("%s size %d: children exited %s" % (peer.name, size, codes))
    if not res["c"]["ok"]:
        raise RuntimeError("%s size %d: consumer got %d of %d or wrong content"
                           % (peer.name, size, res["c"]["got"], n))
    return n / (res["c"]["t1"] - res["p"]["t0"])


# ---- profile: where a uhp_batch message's time goes ----

def profile(args, size):
    """One process, a ring big enough for a whole pass: time the Python
    calls against the bare C calls on the same prepared arrays (the same
    `batch` messages again and again, so payload cache misses do not count
    on either side), then cProfile the Python side."""
    import cProfile
    import pstats
    from uhp import _capi as C
    pool = make_pool(size)
    batch = args.batch
    per_pass = max(batch, (args.ring_size // uhp.rec_total(size)) // batch * batch)
    passes = max(1, args.messages // per_pass)
    name = "bench-py-prof-%d" % os.getpid()
    with uhp.arena_create(name, consumer=True, ring_size=args.ring_size,
                          node=0) as c:
        p = uhp.arena_attach(name)
        p.send_batch(pool[:batch])          # warm up: scratch arrays, slots
        while c.recv_batch(batch):
            pass
        sc, rb = p._scratch(), c._rb
        cp, cc = p._p, c._p

        def py_send():  # the same messages as c_send (cache-warm sources)
            for _ in range(0, per_pass, batch):
                p.send_batch(pool[0:batch])

        def py_recv():
            while c.recv_batch(batch):
                pass

        def c_send():   # the same iov array, already filled
            for _ in range(0, per_pass, batch):
                C.f_send_batch(cp, sc.arr, batch)

        def c_recv():
            while C.f_recv_batch(cc, rb.msgs, batch) > 0:
                pass

        def timed(fn, fill=None, drain=None):
            best = float("inf")
            for _ in range(passes):
                if fill:
                    fill()
                t = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t)
                if drain:
                    drain()
            return best / per_pass * 1e9

        py_s = timed(py_send, drain=c_recv)
        c_s = timed(c_send, drain=c_recv)
        py_r = timed(py_recv, fill=c_send)
        c_r = timed(c_recv, fill=c_send)
        print("uhp_batch, %d-byte messages, %d per call, one process "
              "(best of %d passes of %d messages):" % (size, batch, passes, per_pass))
        print("  %-34s %8s %8s %8s" % ("", "python", "C alone", "binding"))
        print("  %-34s %8.0f %8.0f %8.0f  ns/message" % (
            "send_batch (uhp_send_batch)", py_s, c_s, py_s - c_s))
        print("  %-34s %8.0f %8.0f %8.0f  ns/message" % (
            "recv_batch (uhp_recv_batch)", py_r, c_r, py_r - c_r))
        print("  'C alone' calls the ctypes function on arrays the binding "
              "filled before (one ctypes call per %d messages);\n"
              "  'binding' is what the Python side adds: building the "
              "uhp_iov_msg array and payload buffer, cutting the\n"
              "  received slots into bytes objects.\n" % batch)
        pr = cProfile.Profile()
        pr.enable()
        for _ in range(passes):
            py_send()
            py_recv()
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(10)
        p.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="64,256,1024")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--messages", default="300K", type=parse_count)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--ring-size", default="1M", type=parse_size,
                    help="arena ring bytes (default 1M, the library default)")
    ap.add_argument("--node", type=int, default=-1,
                    help="arena ring on this node (-1: one per node)")
    ap.add_argument("--only", default=",".join(PEERS),
                    help="peers to run, comma-separated (%s)" % ",".join(PEERS))
    ap.add_argument("--pin", action="store_true",
                    help="producer on the first allowed CPU, consumer on the second")
    ap.add_argument("--out", help="JSON lines file to write")
    ap.add_argument("--profile", type=int, metavar="SIZE",
                    help="profile uhp_batch in one process instead")
    args = ap.parse_args()
    if args.profile:
        profile(args, args.profile)
        return 0
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    names = [p for p in args.only.split(",") if p]
    for p in names:
        if p not in PEERS:
            ap.error("unknown peer %r" % p)
    if args.rounds < 1:
        ap.error("--rounds must be >= 1")
    peers = [Peer(p, args) for p in names]
    rates = {(s, p): [] for s in sizes for p in names}
    for size in sizes:
        pool = make_pool(size)
        for r in range(args.rounds):
            for peer in peers:
                rate = run_one(peer, size, pool, args, "%d-%d" % (size, r))
                rates[(size, peer.name)].append(rate)
                print("  size %5d round %d %-15s %12.0f msgs/s"
                      % (size, r + 1, peer.name, rate), file=sys.stderr)

    env = {"bench": "python_env", "python": platform.python_version(),
           "implementation": platform.python_implementation(),
           "cpus": len(os.sched_getaffinity(0)), "lib": uhp.LIB_PATH,
           "uhp_version": "%d.%d.%d" % uhp.version(), "messages": args.messages,
           "rounds": args.rounds, "batch": args.batch,
           "ring_bytes": args.ring_size, "pinned": bool(args.pin),
           "note": "medians over interleaved rounds; compare ratios, not "
                   "absolute figures"}
    rows = []
    for size in sizes:
        for p in names:
            rs = rates[(size, p)]
            row = {"bench": "python_throughput", "peer": p, "size": size,
                   "messages": args.messages, "rounds": args.rounds,
                   "batch": args.batch if p in ("uhp_batch", "sock_stream") else 1,
                   "msgs_per_s": float(round(statistics.median(rs))),
                   "msgs_per_s_min": float(round(min(rs))),
                   "msgs_per_s_max": float(round(max(rs)))}
            if REF in names:
                ratios = [a / b for a, b in zip(rates[(size, REF)], rs)]
                row["ratio_vs_peer"] = round(statistics.median(ratios), 3)
                row["ratio_of"] = "%s/%s msgs_per_s, per round" % (REF, p)
            rows.append(row)

    print("\nPython to Python, 2 processes, %d messages per run, %d rounds "
          "interleaved, median msgs/s" % (args.messages, args.rounds))
    hdr = "%6s  %-15s %12s %12s %12s  %s" % ("size", "peer", "msgs/s", "min",
                                              "max", "%s/peer" % REF)
    print(hdr)
    print("-" * len(hdr))
    for row in rows:
        ratio = row.get("ratio_vs_peer")
        goal = GOALS.get(row["peer"])
        mark = ""
        if ratio is not None and goal:
            mark = "  (goal >= %gx: %s)" % (goal, "met" if ratio >= goal else "SHORT")
        print("%6d  %-15s %12.0f %12.0f %12.0f  %s%s" % (
            row["size"], row["peer"], row["msgs_per_s"], row["msgs_per_s_min"],
            row["msgs_per_s_max"],
            "%.2fx" % ratio if ratio is not None else "-", mark))
    if args.out:
        d = os.path.dirname(os.path.abspath(args.out))
        os.makedirs(d, exist_ok=True)
        with open(args.out, "w") as f:
            for row in [env] + rows:
                f.write(json.dumps(row) + "\n")
        print("\nJSON lines: %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
