# SPDX-License-Identifier: MIT
"""send_batch/recv_batch: order, content, meta, partial sends, slot sizes."""
import array
import errno

import pytest

import uhp


def msg(i, size):
    head = i.to_bytes(4, "little")
    return (head * (size // 4 + 1))[:size]


@pytest.mark.parametrize("sizes", [[64] * 64, [0, 1, 7, 64, 65, 200, 255, 256, 257],
                                   [1000] * 50, [600, 3000, 513, 30000, 5]])
def test_round_trip(pair, sizes):
    c, p = pair
    msgs = [msg(i, s) for i, s in enumerate(sizes)]
    sent = 0
    got = []
    while sent < len(msgs):
        sent += p.send_batch(msgs[sent:], timeout=0)
        got += c.recv_batch(1000)
    while len(got) < len(msgs):
        b = c.recv_batch(1000, timeout=1.0)
        assert b, "records lost"
        got += b
    assert got == msgs
    assert c.recv_batch(10) == []


def test_meta_seq_and_fields(pair):
    c, p = pair
    assert p.send_batch([b"a", b"b", b"c"], seq=10, src=1, dst=2, type=3) == 3
    got = c.recv_batch(10, with_meta=True)
    assert [d for d, _ in got] == [b"a", b"b", b"c"]
    assert [(m.seq, m.src, m.dst, m.type) for _, m in got] == \
        [(10, 1, 2, 3), (11, 1, 2, 3), (12, 1, 2, 3)]
    # back to all-zero meta afterwards
    p.send_batch([b"d", b"e"])
    assert [m[1][:4] for m in c.recv_batch(10, with_meta=True)] == [(0, 0, 0, 0)] * 2
    metas = [uhp.Meta(seq=100 + i, src=i, dst=2 * i, type=i % 3) for i in range(5)]
    assert p.send_batch([b"%d" % i for i in range(5)], metas=metas) == 5
    got = c.recv_batch(10, with_meta=True)
    assert [m[:4] for _, m in got] == [tuple(x[:4]) for x in metas]
    with pytest.raises(ValueError):
        p.send_batch([b"x"], metas=[])


def test_more_than_a_chunk_and_bytes_like(pair):
    c, p = pair
    msgs = [msg(i, 40) for i in range(300)]   # > one 256 chunk, < the ring
    mixed = [bytearray(m) if i % 3 == 0 else memoryview(m) if i % 3 == 1 else m
             for i, m in enumerate(msgs)]
    assert p.send_batch(mixed, seq=0) == 300
    got = c.recv_batch(1000, with_meta=True)
    while len(got) < 300:
        got += c.recv_batch(1000, with_meta=True)
    assert [d for d, _ in got] == msgs
    assert [m.seq for _, m in got] == list(range(300))
    # items of itemsize > 1 count in bytes
    ints = array.array("I", range(10))
    assert p.send_batch([ints, b"z"]) == 2
    assert c.recv_batch(5) == [ints.tobytes(), b"z"]


def test_full_ring_partial_then_wait(backend):
    c = backend.create(consumer=True, ring_size=4096, node=0)
    p = backend.attach(c.name)
    cap = 4096 // uhp.rec_total(64)
    msgs = [msg(i, 64) for i in range(cap + 10)]
    assert p.send_batch(msgs) == cap           # timeout 0: what fits
    assert p.send_batch(msgs[cap:]) == 0       # full: nothing, no error
    assert p.send_batch(msgs[cap:], timeout=0.05) == 0
    got = c.recv_batch(5)
    assert got == msgs[:5]
    assert p.send_batch(msgs[cap:], timeout=1.0) == 5   # room for 5 only
    rest = []
    while len(rest) < cap - 5 + 5:
        rest += c.recv_batch(100, timeout=1.0)
    assert rest == msgs[5:cap + 5]
    p.close()
    c.close()


def test_too_large_in_the_middle(pair):
    c, p = pair
    big = b"x" * (1 << 16)                       # never fits a 64 KiB ring
    with pytest.raises(OSError) as ei:
        p.send_batch([b"a", b"b", big, b"c"])
    assert ei.value.errno == errno.EMSGSIZE
    assert ei.value.function == "uhp_send_batch"
    assert ei.value.sent == 2
    assert c.recv_batch(10) == [b"a", b"b"]
    with pytest.raises(OSError) as ei:
        p.send_batch([big])
    assert ei.value.sent == 0


def test_recv_batch_timeout_and_limits(pair):
    import time
    c, p = pair
    t = time.monotonic()
    assert c.recv_batch(10, timeout=0.1) == []
    assert time.monotonic() - t >= 0.08
    assert c.recv_batch(0) == []
    p.send_batch([b"1", b"2", b"3"])
    assert c.recv_batch(2) == [b"1", b"2"]
    assert c.recv_batch(2, timeout=None) == [b"3"]


def test_slot_growth_and_shrink(pair):
    """Slots start at 256 bytes, grow for larger records (and take records
    above 64 KiB through peek), shrink again for long runs of small ones."""
    c, p = pair
    big = [msg(i, 5000) for i in range(3)]
    assert p.send_batch([b"s"] + big) == 4
    assert c.recv_batch(10) == [b"s"]          # stops before the larger one
    assert c.recv_batch(10) == big
    assert c._rb.slot >= 5000
    for _ in range(20):
        p.send_batch([b"tiny"] * 8)
        assert c.recv_batch(8) == [b"tiny"] * 8
    assert c._rb.slot == 64


def test_batch_from_producer_only_handle_is_eperm(pair):
    _, p = pair
    with pytest.raises(PermissionError) as ei:
        p.recv_batch(4)
    assert ei.value.function == "uhp_recv_batch"


@pytest.mark.parametrize("make", [bytes, bytearray])
def test_copy_and_pointer_paths(backend, make):
    """Small batches are copied into the binding's buffer, batches of large
    bytes objects are read in place, others (large bytearrays) are joined:
    all three must deliver the same."""
    c = backend.create(consumer=True, ring_size=1 << 20)
    p = backend.attach(c.name)
    for sizes in ([100] * 10, [3000] * 30, [5000, 1, 9000, 64]):
        msgs = [make(msg(i, s)) for i, s in enumerate(sizes)]
        assert p.send_batch(msgs, seq=1) == len(msgs)
        got = []
        while len(got) < len(msgs):
            got += c.recv_batch(100, timeout=1.0, with_meta=True)
        assert [d for d, _ in got] == [bytes(m) for m in msgs]
        assert [m.seq for _, m in got] == list(range(1, len(msgs) + 1))
    p.close()
    c.close()
