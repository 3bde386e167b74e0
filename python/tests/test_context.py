# SPDX-License-Identifier: MIT
"""with-blocks close handles, and the creator's also unlinks the name (the
C API's intent: uhp_close(), then the creator removes the name); other
handles keep working until they close."""
import multiprocessing as mp
import os

import pytest

import uhp
from conftest import HAVE_DEV, new_name


def shm(name):
    return "/dev/shm/uhp." + name


def test_creator_with_closes_and_unlinks(arena):
    name = new_name()
    arena.names.append(name)
    with uhp.arena_create(name, consumer=True, ring_size=1 << 16) as ch:
        assert os.path.exists(shm(name))
        ch.send_batch([b"x"])  # a producer call on the consumer handle: fine
        assert ch.recv() == b"x"
    assert ch.closed
    assert not os.path.exists(shm(name))
    with pytest.raises(FileNotFoundError):
        uhp.arena_attach(name)


def test_cleanup_on_exception(arena):
    name = new_name()
    arena.names.append(name)
    with pytest.raises(ZeroDivisionError):
        with uhp.arena_create(name, ring_size=1 << 16) as ch:
            1 / 0
    assert ch.closed and not os.path.exists(shm(name))


def test_keep_name_and_attach_does_not_unlink(arena):
    name = new_name()
    arena.names.append(name)
    with uhp.arena_create(name, ring_size=1 << 16, unlink_on_exit=False):
        pass
    assert os.path.exists(shm(name))
    with uhp.arena_attach(name, consumer=True) as c:
        assert c.consumer
    assert os.path.exists(shm(name))
    uhp.arena_unlink(name)
    assert not os.path.exists(shm(name))


def test_other_handles_outlive_the_name(arena):
    name = new_name()
    arena.names.append(name)
    with uhp.arena_create(name, ring_size=1 << 16) as creator:
        c = uhp.arena_attach(name, consumer=True)
        p = uhp.arena_attach(name)
    assert creator.closed and not os.path.exists(shm(name))
    p.send(b"still here")
    assert c.recv() == b"still here"
    p.close()
    c.close()


def _child_exits_with(ch):
    with ch:
        pass
    os._exit(0 if ch.closed else 1)


def test_forked_child_does_not_unlink(arena):
    ch = arena.create(ring_size=1 << 16)
    proc = mp.get_context("fork").Process(target=_child_exits_with, args=(ch,))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    assert os.path.exists(shm(ch.name))     # only the creating process unlinks
    ch.send(b"parent's handle is fine")
    ch.close()


def test_consumer_role_freed_by_with(arena):
    c0 = arena.create(ring_size=1 << 16)
    with uhp.arena_attach(c0.name, consumer=True):
        with pytest.raises(OSError):
            uhp.arena_attach(c0.name, consumer=True)
    uhp.arena_attach(c0.name, consumer=True).close()


def test_gc_closes(arena):
    import gc
    import weakref
    c = arena.create(consumer=True, ring_size=1 << 16)
    p = uhp.arena_attach(c.name, consumer=False)
    r = weakref.ref(c)
    name = c.name
    del c
    gc.collect()
    assert r() is None
    uhp.arena_attach(name, consumer=True).close()   # role released by close
    p.close()


@pytest.mark.skipif(not HAVE_DEV, reason="no /dev/uhp here (uhp.ko not loaded)")
def test_device_with_blocks():
    name = new_name("dev")
    with uhp.Device() as dev:
        with dev.create(name, consumer=True, ring_size=1 << 16) as ch:
            assert name in [e.name for e in dev.list()]
            ch.send(b"d")
            assert ch.recv() == b"d"
        assert name not in [e.name for e in dev.list()]
    with pytest.raises(ValueError):
        dev.fileno()
