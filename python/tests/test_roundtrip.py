# SPDX-License-Identifier: MIT
"""send/recv one record at a time, waits with timeouts, metadata, counters."""
import array
import errno
import time

import pytest

import uhp


def test_send_recv_bytes_and_meta(pair):
    c, p = pair
    p.send(b"hello", seq=42, src=7, dst=9, type=3)
    data, meta = c.recv(with_meta=True)
    assert data == b"hello"
    assert (meta.seq, meta.src, meta.dst, meta.type) == (42, 7, 9, 3)
    assert meta.ring < c.nr_rings
    p.send(b"plain")
    assert c.recv() == b"plain"
    with pytest.raises(BlockingIOError) as ei:
        c.recv()
    assert ei.value.errno == errno.EAGAIN
    assert ei.value.function == "uhp_recv"


def test_bytes_like_inputs(pair):
    c, p = pair
    ints = array.array("I", [1, 2, 3])
    inputs = [bytearray(b"bytearray"), memoryview(b"0123456789")[2:7],
              memoryview(bytearray(b"abcdefgh"))[::2], ints, b""]
    for x in inputs:
        p.send(x)
    assert c.recv() == b"bytearray"
    assert c.recv() == b"23456"
    assert c.recv() == b"aceg"
    assert c.recv() == ints.tobytes()
    assert c.recv() == b""


def test_largest_record_and_large_recv_path(backend):
    c = backend.create(consumer=True, ring_size=1 << 18)
    p = backend.attach(c.name)
    assert c.max_payload == (1 << 18) - uhp.UHP_REC_HDR_SIZE
    big = bytes(range(256)) * (c.max_payload // 256) + b"x" * (c.max_payload % 256)
    assert len(big) == c.max_payload
    p.send(big)
    assert c.recv() == big              # > recv()'s 64 KiB buffer: via peek
    mid = b"m" * 100000
    p.send(mid, seq=5)
    d, m = c.recv_wait(1.0, with_meta=True)
    assert d == mid and m.seq == 5
    p.close()
    c.close()


def test_recv_wait_times_out(pair):
    c, _ = pair
    t = time.monotonic()
    with pytest.raises(TimeoutError) as ei:
        c.recv_wait(0.2)
    dt = time.monotonic() - t
    assert ei.value.errno == errno.ETIMEDOUT
    assert ei.value.function == "uhp_recv_wait"
    assert 0.15 <= dt < 2.0
    with pytest.raises(TimeoutError):
        c.recv_wait(0)


def test_wait(pair):
    c, p = pair
    assert c.wait(0) is False
    t = time.monotonic()
    assert c.wait(0.1) is False
    assert time.monotonic() - t >= 0.08
    p.send(b"x")
    assert c.wait(0) is True
    assert c.wait(None) is True
    assert c.recv() == b"x"


def test_send_wait_times_out_when_full(backend):
    c = backend.create(consumer=True, ring_size=4096, node=0)
    p = backend.attach(c.name)
    n = 0
    while True:
        try:
            p.send(b"z" * 64)
        except BlockingIOError:
            break
        n += 1
    assert n == 4096 // uhp.rec_total(64)
    t = time.monotonic()
    with pytest.raises(TimeoutError) as ei:
        p.send_wait(b"z" * 64, 0.1)
    assert ei.value.function == "uhp_send_wait"
    assert time.monotonic() - t >= 0.08
    assert c.recv() == b"z" * 64
    p.send_wait(b"after", 1.0)          # room again
    assert len(c.recv_batch(1000)) == n
    p.close()
    c.close()


def test_stats_ring_fill_info(pair):
    c, p = pair
    for i in range(5):
        p.send(b"a" * i)
    used, size = c.ring_fill(p.producer_ring)
    assert size == 1 << 16
    assert used == sum(uhp.rec_total(i) for i in range(5))
    for i in range(5):
        assert c.recv() == b"a" * i
    assert p.stats().sent == 5 and p.stats().received == 0
    st = c.stats()
    assert st.received == 5 and st.sent == 0 and st.crc_errors == 0
    inf = c.info()
    assert inf.data_size == 1 << 16 and inf.nr_rings == c.nr_rings >= 1
    assert inf.flags & 1                   # UHP_INFO_F_CONSUMER
    assert not p.info().flags & 1
    assert len(inf.rings) == inf.nr_rings


def test_producer_ring_property(pair):
    c, p = pair
    for k in range(c.nr_rings):
        p.producer_ring = k
        assert p.producer_ring == k
        p.send(b"r%d" % k)
        d, m = c.recv(with_meta=True)
        assert d == b"r%d" % k and m.ring == k
    with pytest.raises(OSError) as ei:
        p.producer_ring = c.nr_rings + 5
    assert ei.value.errno == errno.EINVAL
    assert ei.value.function == "uhp_set_producer_ring"


@pytest.mark.parametrize("how", ["recv", "recv_batch", "recv_batch_meta",
                                 "peek", "recv_wait"])
def test_damaged_record_is_reported_and_skipped(arena, how):
    """Flip a payload byte in the shared memory: the receive call says
    EBADMSG once (counted), the next record comes through. Uses the arena
    layout of arena.c: header page, then ring 0's prod page, cons page,
    data."""
    import mmap
    import os
    c = arena.create(consumer=True, ring_size=1 << 16, node=0)
    p = arena.attach(c.name)
    p.send(b"A" * 100)
    p.send(b"good")
    page = os.sysconf("SC_PAGE_SIZE")
    fd = os.open("/dev/shm/uhp." + c.name, os.O_RDWR)
    try:
        with mmap.mmap(fd, 3 * page + (1 << 16)) as m:
            off = 3 * page + uhp.UHP_REC_HDR_SIZE + 10
            assert m[off] == ord("A")
            m[off] = ord("B")
    finally:
        os.close(fd)
    call = {"recv": c.recv, "recv_batch": lambda: c.recv_batch(8),
            "recv_batch_meta": lambda: c.recv_batch(8, with_meta=True),
            "peek": c.peek, "recv_wait": lambda: c.recv_wait(1.0)}[how]
    fn = {"recv_batch_meta": "uhp_recv_batch"}.get(how, "uhp_" + how)
    with pytest.raises(OSError) as ei:
        call()
    assert ei.value.errno == errno.EBADMSG and ei.value.function == fn
    assert c.stats().crc_errors == 1
    assert c.recv() == b"good"
    p.close()


def test_stalled_reservation_is_skipped(arena):
    c = arena.create(consumer=True, ring_size=1 << 16, node=0)
    p = arena.attach(c.name)
    c.set_stall_timeout(0.05)
    view = p.reserve(16)               # never committed
    p.send(b"after")
    with pytest.raises(BlockingIOError):
        c.recv()
    assert c.recv_wait(2.0) == b"after"
    assert c.stats().stalled_skips == 1
    p.discard(view)                    # too late: refused or harmless
    p.close()


def test_signal_interrupts_endless_wait(tmp_path):
    """recv_wait(None) sleeps in C in slices, so a signal handler's
    exception gets through (PEP 475 style), instead of hanging."""
    import subprocess
    import sys
    from conftest import ROOT
    code = r'''
import signal, sys, time
sys.path.insert(0, %r)
import uhp
class Alarm(Exception): pass
def h(*a): raise Alarm()
signal.signal(signal.SIGALRM, h)
ch = uhp.arena_create("pyt-sig-%%d" %% __import__("os").getpid(), consumer=True,
                      ring_size=1 << 16)
signal.setitimer(signal.ITIMER_REAL, 0.3)
t = time.monotonic()
try:
    with ch:
        ch.recv_wait(None)
except Alarm:
    print("interrupted after %%.2f" %% (time.monotonic() - t))
''' % str(ROOT / "python")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("interrupted after")
    assert float(r.stdout.split()[-1]) < 2.0


def test_crc32c():
    assert uhp.crc32c(b"123456789") == 0xE3069283
    assert uhp.crc32c_raw(0xFFFFFFFF, b"123456789") ^ 0xFFFFFFFF == 0xE3069283
    assert uhp.crc32c(b"6789", uhp.crc32c(b"12345")) == 0xE3069283
    assert uhp.crc32c(bytearray(b"123456789")) == 0xE3069283


def test_version():
    v = uhp.version()
    assert v[0] == 0 and v[1] >= 1
