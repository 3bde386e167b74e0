# SPDX-License-Identifier: MIT
"""Shared fixtures. Run:
    UHP_LIB=/path/to/build/userlib/libuhp.so.0 /usr/bin/python3 -m pytest -q python/tests
(UHP_LIB defaults to the in-tree build/userlib/libuhp.so.0 when it exists.)
"""
import errno
import itertools
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]          # the uhp repository
sys.path.insert(0, str(ROOT / "python"))
if "UHP_LIB" not in os.environ and (ROOT / "build/userlib/libuhp.so.0").exists():
    os.environ["UHP_LIB"] = str(ROOT / "build/userlib/libuhp.so.0")

import uhp  # noqa: E402
from uhp import _capi  # noqa: E402

HAVE_DEV = os.path.exists("/dev/uhp")
_counter = itertools.count()


def new_name(tag="t"):
    return "pyt-%s-%d-%d" % (tag, os.getpid(), next(_counter))


def _arena_fd_errno():
    """What uhp_channel_fd() says for an arena today: 0 (an fd) or an errno."""
    name = new_name("fdprobe")
    ch = uhp.arena_create(name, consumer=True, ring_size=1 << 16)
    try:
        ret = _capi.uhp_channel_fd(ch._p)
        return -ret if ret < 0 else 0
    finally:
        ch.close()
        uhp.arena_unlink(name)


ARENA_FD_ERRNO = _arena_fd_errno()
# Only when the C call really answers EOPNOTSUPP: any other failure fails.
xfail_no_arena_fd = pytest.mark.xfail(
    ARENA_FD_ERRNO == errno.EOPNOTSUPP, strict=False,
    reason="uhp_channel_fd() returns -EOPNOTSUPP for arenas in this libuhp "
           "(arena fds are being added on the C side)")


class Backend:
    """create/attach/unlink for one kind of channel, same keywords."""

    def __init__(self, kind):
        self.kind = kind
        self.dev = uhp.Device() if kind == "device" else None
        self.names = []

    def create(self, name=None, **kw):
        name = new_name(self.kind) if name is None else name
        self.names.append(name)
        if self.dev:
            return self.dev.create(name, **kw)
        return uhp.arena_create(name, **kw)

    def attach(self, name, **kw):
        if self.dev:
            return self.dev.attach(name, **kw)
        return uhp.arena_attach(name, **kw)

    def unlink(self, name):
        if self.dev:
            return self.dev.unlink(name)
        return uhp.arena_unlink(name)

    def cleanup(self):
        for n in self.names:
            try:
                self.unlink(n)
            except OSError:
                pass
        if self.dev:
            self.dev.close()


@pytest.fixture(params=["arena", "device"])
def backend(request):
    if request.param == "device" and not HAVE_DEV:
        pytest.skip("no /dev/uhp here (uhp.ko not loaded)")
    b = Backend(request.param)
    yield b
    b.cleanup()


@pytest.fixture
def arena():
    b = Backend("arena")
    yield b
    b.cleanup()


@pytest.fixture
def pair(backend):
    """(consumer, producer) on a fresh 64 KiB-per-ring channel."""
    c = backend.create(consumer=True, ring_size=1 << 16)
    p = backend.attach(c.name)
    yield c, p
    p.close()
    c.close()
