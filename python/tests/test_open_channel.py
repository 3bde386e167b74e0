# SPDX-License-Identifier: MIT
"""uhp.open_channel(): create-or-attach on /dev/uhp or an arena."""
import errno
import os

import pytest

import uhp
from uhp import _capi
from conftest import HAVE_DEV, new_name


def test_open_channel(arena):
    name = new_name("open")
    arena.names.append(name)
    if _capi.uhp_open_channel is None:
        with pytest.raises(OSError) as ei:
            uhp.open_channel(name, create=True)
        assert ei.value.errno == errno.ENOSYS
        return
    with pytest.raises(FileNotFoundError) as ei:
        uhp.open_channel(name)
    assert ei.value.function == "uhp_open_channel"
    with uhp.open_channel(name, create=True, consumer=True, ring_size=1 << 16,
                          node=0) as c:
        assert c.created and c.consumer
        assert c.kind == ("device" if HAVE_DEV else "arena")
        assert c.nr_rings == 1 and c.data_size == 1 << 16
        p = uhp.open_channel(name, create=True)       # exists: attaches
        assert not p.created
        with pytest.raises(FileExistsError):
            uhp.open_channel(name, create=True, excl=True)
        with pytest.raises(OSError) as ei:
            uhp.open_channel(name, consumer=True)
        assert ei.value.errno == errno.EBUSY
        p.send(b"via open_channel", seq=1)
        assert c.recv() == b"via open_channel"
        p.close()
    if not HAVE_DEV:
        assert not os.path.exists("/dev/shm/uhp." + name)
    with pytest.raises(FileNotFoundError):
        uhp.open_channel(name)
    with pytest.raises(OSError) as ei:
        uhp.open_channel("bad/name", create=True)
    assert ei.value.errno == errno.EINVAL


def test_open_channel_arena_forced(arena):
    if _capi.uhp_open_channel is None:
        pytest.skip("libuhp without uhp_open_channel()")
    name = new_name("open")
    arena.names.append(name)
    with uhp.open_channel(name, create=True, arena=True,
                          ring_size=1 << 16) as c:
        assert c.kind == "arena"
        assert os.path.exists("/dev/shm/uhp." + name)
        q = uhp.arena_attach(name, consumer=True)     # the same arena
        c.send(b"same")
        assert q.recv() == b"same"
        q.close()
