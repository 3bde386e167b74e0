# SPDX-License-Identifier: MIT
"""fileno() for select/poll/asyncio: the protocol is prepare_sleep(), sleep
on the fd, end_sleep(), recv(). Arena fds are new in libuhp: where
uhp_channel_fd() still answers EOPNOTSUPP for an arena the wake tests are
expected to fail (xfail, decided at run time in conftest.py)."""
import asyncio
import errno
import multiprocessing as mp
import os
import select
import threading
import time

import pytest

import uhp
from conftest import ARENA_FD_ERRNO, HAVE_DEV, Backend, xfail_no_arena_fd


@pytest.fixture(params=[pytest.param("arena", marks=xfail_no_arena_fd),
                        "device"])
def fd_backend(request):
    if request.param == "device" and not HAVE_DEV:
        pytest.skip("no /dev/uhp here (uhp.ko not loaded)")
    b = Backend(request.param)
    yield b
    b.cleanup()


def test_arena_fileno_errno_or_fd(arena):
    c = arena.create(consumer=True, ring_size=1 << 16)
    p = uhp.arena_attach(c.name)
    if ARENA_FD_ERRNO == errno.EOPNOTSUPP:
        with pytest.raises(OSError) as ei:
            c.fileno()
        assert ei.value.errno == errno.EOPNOTSUPP
        assert ei.value.function == "uhp_channel_fd"
    else:
        assert ARENA_FD_ERRNO == 0
        fd = c.fileno()
        os.fstat(fd)
        assert c.fileno() == fd
    try:                                 # producers: an fd or EOPNOTSUPP
        os.fstat(p.fileno())
    except OSError as e:
        assert e.errno == errno.EOPNOTSUPP and e.function == "uhp_channel_fd"
    p.close()


def _send_later(name, kind, delay, data):
    time.sleep(delay)
    if kind == "arena":
        ch = uhp.arena_attach(name)
    else:
        ch = uhp.Device().attach(name)
    ch.send(data)
    ch.close()


def test_select_wakes_on_fd(fd_backend):
    c = fd_backend.create(consumer=True, ring_size=1 << 16)
    fd = c.fileno()
    assert c.prepare_sleep() is False
    r, _, _ = select.select([fd], [], [], 0.2)
    assert r == [], "readable with nothing sent"
    proc = mp.get_context("fork").Process(
        target=_send_later, args=(c.name, fd_backend.kind, 0.3, b"wake"))
    proc.start()
    t = time.monotonic()
    r, _, _ = select.select([fd], [], [], 10)
    dt = time.monotonic() - t
    c.end_sleep()
    proc.join(10)
    assert proc.exitcode == 0
    assert r == [fd], "the producer's send did not wake select()"
    assert 0.2 <= dt < 5
    assert c.recv() == b"wake"
    # drained: sleeping again is quiet until the next record
    assert c.prepare_sleep() is False
    r, _, _ = select.select([fd], [], [], 0.1)
    c.end_sleep()
    assert r == []
    # a record committed before prepare_sleep(): it says so, do not sleep
    uhp_p = fd_backend.attach(c.name)
    uhp_p.send(b"early")
    assert c.prepare_sleep() is True
    c.end_sleep()
    assert c.recv() == b"early"
    uhp_p.close()


def test_asyncio_recv_async_on_fd(fd_backend):
    c = fd_backend.create(consumer=True, ring_size=1 << 16)
    p = fd_backend.attach(c.name)
    fd = c.fileno()                      # the fd path, not the fallback
    readers = []

    async def main():
        loop = asyncio.get_running_loop()
        orig = loop.add_reader

        def spy(f, *a):
            readers.append(f)
            return orig(f, *a)
        loop.add_reader = spy
        threading.Timer(0.2, p.send, args=(b"async",)).start()
        t = time.monotonic()
        data = await asyncio.wait_for(c.recv_async(), 10)
        return data, time.monotonic() - t

    data, dt = asyncio.run(main())
    assert data == b"async"
    assert readers and set(readers) == {fd}
    assert dt < 5
    p.close()


def test_recv_async_fallback_without_fd(arena, monkeypatch):
    """Where uhp_channel_fd() has no fd, recv_async() polls instead."""
    c = arena.create(consumer=True, ring_size=1 << 16)
    p = uhp.arena_attach(c.name)

    def no_fd():
        raise OSError(errno.EOPNOTSUPP, "uhp_channel_fd: Operation not supported")
    monkeypatch.setattr(c, "fileno", no_fd)

    async def main():
        threading.Timer(0.1, p.send, args=(b"polled",), kwargs={"seq": 4}).start()
        first = await asyncio.wait_for(c.recv_async(with_meta=True), 10)
        p.send(b"ready")
        second = await asyncio.wait_for(c.recv_async(), 10)
        return first, second

    first, second = asyncio.run(main())
    assert first[0] == b"polled" and first[1].seq == 4
    assert second == b"ready"
    p.close()
