# SPDX-License-Identifier: MIT
"""reserve/commit/discard and peek/release: views straight into the ring,
released when the record stops being the caller's."""
import errno
import pickle
import struct

import pytest

import uhp


def test_reserve_commit(pair):
    c, p = pair
    view = p.reserve(16)
    assert isinstance(view, memoryview) and not view.readonly
    assert len(view) == 16 and view.format == "B"
    struct.pack_into("<QQ", view, 0, 0x1122334455667788, 99)
    with pytest.raises(BlockingIOError):
        c.recv()                        # not committed yet
    p.commit(view, seq=7, type=2)
    with pytest.raises(ValueError):
        view[0]                         # released on commit
    d, m = c.recv(with_meta=True)
    assert struct.unpack("<QQ", d) == (0x1122334455667788, 99)
    assert m.seq == 7 and m.type == 2


def test_discard_is_skipped(pair):
    c, p = pair
    v = p.reserve(32)
    v[:4] = b"junk"
    p.discard(v)
    with pytest.raises(ValueError):
        len(v.tobytes())
    p.send(b"next")
    assert c.recv() == b"next"
    with pytest.raises(BlockingIOError):
        c.recv()


def test_commit_twice_or_foreign_view_refused(pair):
    c, p = pair
    v = p.reserve(8)
    p.commit(v)
    with pytest.raises(ValueError):
        p.commit(v)
    with pytest.raises(ValueError):
        p.commit(memoryview(bytearray(8)))
    w = p.reserve(8)
    with pytest.raises(ValueError):
        c.commit(w)                     # another handle's reservation
    p.discard(w)


def test_exported_view_blocks_commit(pair):
    """A view still exported (here through a PickleBuffer) cannot be
    released, so the record is not committed either."""
    c, p = pair
    v = p.reserve(8)
    v[:] = b"12345678"
    held = pickle.PickleBuffer(v)
    with pytest.raises(BufferError):
        p.commit(v)
    with pytest.raises(BlockingIOError):
        c.recv()
    held.release()
    p.commit(v)
    assert c.recv() == b"12345678"


def test_reserved_context_manager(pair):
    c, p = pair
    with p.reserved(5, seq=3) as v:
        v[:] = b"hello"
    d, m = c.recv(with_meta=True)
    assert d == b"hello" and m.seq == 3
    with pytest.raises(RuntimeError):
        with p.reserved(5) as v:
            v[:] = b"xxxxx"
            raise RuntimeError("abandon")
    with pytest.raises(ValueError):
        v[0]
    with pytest.raises(BlockingIOError):
        c.recv()                        # discarded


def test_peek_release(pair):
    c, p = pair
    p.send(b"first", seq=1)
    p.send(b"second", seq=2)
    v, m = c.peek(with_meta=True)
    assert v.readonly and bytes(v) == b"first" and m.seq == 1
    with pytest.raises(TypeError):
        v[0] = 1                        # read-only
    again = c.peek()                    # not consumed yet: same record
    assert bytes(again) == b"first"
    c.release(v)
    with pytest.raises(ValueError):
        bytes(v)
    with pytest.raises(OSError) as ei:
        c.release(again)                # no longer the head
    assert ei.value.errno == errno.EINVAL
    assert ei.value.function == "uhp_release"
    assert c.recv() == b"second"
    with pytest.raises(BlockingIOError) as ei:
        c.peek()
    assert ei.value.function == "uhp_peek"


def test_peeked_context_manager(pair):
    c, p = pair
    p.send(b"abc")
    with c.peeked() as v:
        assert bytes(v) == b"abc"
    with pytest.raises(ValueError):
        v.tobytes()
    with pytest.raises(BlockingIOError):
        c.recv()
    p.send(b"kept")
    with pytest.raises(KeyError):
        with c.peeked() as v:
            raise KeyError
    with pytest.raises(ValueError):
        v.tobytes()
    assert c.recv() == b"kept"          # left in place


def test_large_peek(pair):
    c, p = pair
    data = bytes(range(256)) * 100
    p.send(data)
    v = c.peek()
    assert v == data
    c.release(v)


def test_close_releases_views(backend):
    c = backend.create(consumer=True, ring_size=1 << 16)
    p = backend.attach(c.name)
    p.send(b"x")
    w = p.reserve(8)
    v = c.peek()
    p.close()
    c.close()
    for view in (v, w):
        with pytest.raises(ValueError):
            view[0]
    with pytest.raises(ValueError):
        c.recv()
    with pytest.raises(ValueError):
        p.send(b"y")
    assert c.closed and p.closed


def test_peek_on_producer_is_eperm(pair):
    _, p = pair
    with pytest.raises(PermissionError) as ei:
        p.peek()
    assert ei.value.errno == errno.EPERM


def test_peek_batch_release_batch(pair):
    c, p = pair
    with pytest.raises(BlockingIOError) as ei:
        c.peek_batch()
    assert ei.value.function == "uhp_peek_batch"
    for i in range(5):
        p.send(b"rec%d" % i, seq=i)
    got = c.peek_batch(16, with_meta=True)
    assert [bytes(v) for v, _ in got] == [b"rec%d" % i for i in range(5)]
    assert [m.seq for _, m in got] == list(range(5))
    views = [v for v, _ in got]
    assert all(v.readonly for v in views)
    c.release_batch(views[:2])          # a prefix
    with pytest.raises(ValueError):
        bytes(views[0])
    with pytest.raises(ValueError):
        c.release_batch(views[:1])      # no longer live
    with pytest.raises(OSError) as ei:
        c.release_batch([views[3]])     # not the head: nothing consumed
    assert ei.value.errno == errno.EINVAL
    assert ei.value.function == "uhp_release_batch"
    assert c.recv() == b"rec2"          # rec2 was still the head
    rest = c.peek_batch(8)
    assert [bytes(v) for v in rest] == [b"rec3", b"rec4"]
    c.release_batch(rest)
    with pytest.raises(BlockingIOError):
        c.peek()
    with pytest.raises(ValueError):
        c.peek_batch(0)
