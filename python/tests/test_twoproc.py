# SPDX-License-Identifier: MIT
"""Processes exchanging 100k messages: every one arrives, in order, intact."""
import multiprocessing as mp
import struct
import traceback

import pytest

import uhp

N = 100_000
CTX = mp.get_context("fork")


def payload(i, src=0):
    size = 1 + (i * 37) % 300           # 1..300 bytes: both sides of 256
    head = struct.pack("<IH", i, src)
    return (head * (size // 6 + 1))[:size]


def _child(errq, fn, *args):
    try:
        fn(*args)
        errq.put(None)
    except BaseException:
        errq.put(traceback.format_exc())


def spawn(fn, *args):
    errq = CTX.SimpleQueue()
    proc = CTX.Process(target=_child, args=(errq, fn) + args)
    proc.start()
    return proc, errq


def join(proc, errq, timeout=120):
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        pytest.fail("child still running after %ds" % timeout)
    err = errq.get()
    assert err is None, err
    assert proc.exitcode == 0


def produce_batches(name, n, src, batch):
    with uhp.arena_attach(name) as ch:
        for start in range(0, n, batch):
            k = min(batch, n - start)
            msgs = [payload(i, src) for i in range(start, start + k)]
            assert ch.send_batch(msgs, timeout=30, seq=start, src=src) == k


def produce_single(name, n, src):
    with uhp.arena_attach(name) as ch:
        for i in range(n):
            ch.send_wait(payload(i, src), 30, seq=i, src=src)


def consume_check(ch, n, producers):
    nxt = {s: 0 for s in producers}
    got = 0
    while got < n:
        batch = ch.recv_batch(256, timeout=30, with_meta=True)
        assert batch, "nothing for 30 s after %d messages" % got
        for data, m in batch:
            i = nxt[m.src]
            assert m.seq == i, "src %d: seq %d, expected %d" % (m.src, m.seq, i)
            assert data == payload(i, m.src), "src %d: message %d damaged" % (m.src, i)
            nxt[m.src] = i + 1
        got += len(batch)
    assert all(v == n // len(producers) for v in nxt.values())
    assert ch.recv_batch(16) == []
    assert ch.stats().received == n and ch.stats().crc_errors == 0


@pytest.mark.parametrize("batch", [1, 64, 1000])
def test_100k_batches_across_processes(arena, batch):
    ch = arena.create(consumer=True, ring_size=1 << 16)   # small: fills up
    proc = spawn(produce_batches, ch.name, N, 1, batch)
    consume_check(ch, N, [1])
    join(*proc)
    ch.close()


def test_100k_single_sends_across_processes(arena):
    ch = arena.create(consumer=True, ring_size=1 << 16)
    proc = spawn(produce_single, ch.name, N, 3)
    consume_check(ch, N, [3])
    join(*proc)
    ch.close()


def test_two_producer_processes_fifo_each(arena):
    ch = arena.create(consumer=True, ring_size=1 << 16)
    procs = [spawn(produce_batches, ch.name, N // 2, s, 50) for s in (1, 2)]
    consume_check(ch, N, [1, 2])
    for p in procs:
        join(*p)
    ch.close()


def consume_in_child(name, n):
    with uhp.arena_attach(name, consumer=True) as ch:
        for i in range(n):
            data, m = ch.recv_wait(30, with_meta=True)
            assert m.seq == i and data == payload(i, 0)


def test_consumer_in_child_producer_here(arena):
    ch = arena.create(ring_size=1 << 16)        # creator: producer only
    proc = spawn(consume_in_child, ch.name, 20_000)
    msgs = [payload(i) for i in range(20_000)]
    for s in range(0, len(msgs), 100):
        assert ch.send_batch(msgs[s:s + 100], timeout=30, seq=s) == 100
    join(*proc)
    ch.close()
