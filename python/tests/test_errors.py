# SPDX-License-Identifier: MIT
"""What the C API refuses comes back as OSError with its errno, the C
function's name first in the message (and in e.function), the channel name
as e.filename."""
import errno
import os

import pytest

import uhp
from conftest import HAVE_DEV, new_name


BAD_NAMES = [("", errno.EINVAL), (".hidden", errno.EINVAL),
             ("a/b", errno.EINVAL), ("sp ace", errno.EINVAL),
             ("x" * 64, errno.ENAMETOOLONG), ("nul\0byte", errno.EINVAL),
             ("é", errno.EINVAL)]


@pytest.mark.parametrize("name,err", BAD_NAMES)
def test_bad_names(backend, name, err):
    with pytest.raises(OSError) as ei:
        backend.create(name, consumer=True)
    assert ei.value.errno == err
    fn = "uhp_create" if backend.kind == "device" else "uhp_arena_create"
    assert ei.value.function == fn
    assert str(ei.value).startswith("[Errno %d] %s: " % (err, fn))
    assert ei.value.filename == name
    with pytest.raises(OSError) as ei:
        backend.attach(name)
    assert ei.value.errno == err
    with pytest.raises(OSError) as ei:
        backend.unlink(name)
    assert ei.value.errno == err


def test_longest_name_works(backend):
    name = ("n%d-" % os.getpid() + "x" * 63)[:63]
    with backend.create(name, ring_size=1 << 16) as ch:
        assert ch.name == name


def test_name_types(arena):
    with pytest.raises(TypeError):
        uhp.arena_create(42)
    name = new_name()
    arena.names.append(name)
    with uhp.arena_create(name.encode(), ring_size=1 << 16) as ch:
        uhp.arena_attach(name).close()
        assert ch.name == name.encode()


def test_exists_and_missing(backend):
    c = backend.create(ring_size=1 << 16)
    with pytest.raises(FileExistsError) as ei:
        backend.create(c.name)
    assert ei.value.errno == errno.EEXIST
    missing = new_name("missing")
    with pytest.raises(FileNotFoundError) as ei:
        backend.attach(missing)
    assert ei.value.function in ("uhp_attach", "uhp_arena_attach")
    with pytest.raises(FileNotFoundError):
        backend.unlink(missing)
    c.close()


def test_second_consumer_is_ebusy(backend):
    c = backend.create(consumer=True, ring_size=1 << 16)
    with pytest.raises(OSError) as ei:
        backend.attach(c.name, consumer=True)
    assert ei.value.errno == errno.EBUSY
    c.close()                            # the role frees itself
    backend.attach(c.name, consumer=True).close()


def test_too_large_record(pair):
    c, p = pair
    with pytest.raises(OSError) as ei:
        p.send(b"x" * (c.max_payload + 1))
    assert ei.value.errno == errno.EMSGSIZE
    assert ei.value.function == "uhp_send"
    with pytest.raises(OSError) as ei:
        p.reserve(c.max_payload + 1)
    assert ei.value.errno == errno.EMSGSIZE
    with pytest.raises(OSError) as ei:
        p.send_wait(b"x" * (c.max_payload + 1), 0.1)
    assert ei.value.errno == errno.EMSGSIZE
    p.send(b"x" * c.max_payload)         # the largest fits


def test_consumer_calls_on_producer_handle(pair):
    _, p = pair
    for call in (p.recv, lambda: p.recv_wait(0.01), lambda: p.wait(0.01),
                 p.prepare_sleep, p.peek):
        with pytest.raises(PermissionError) as ei:
            call()
        assert ei.value.errno == errno.EPERM


@pytest.mark.parametrize("kw", [dict(ring_size=3 << 12), dict(ring_size=100),
                                dict(excl_rings=uhp.UHP_EXCL_RINGS_MAX + 1),
                                dict(ring_size=-1)])
def test_bad_options(backend, kw):
    with pytest.raises(OSError) as ei:
        backend.create(**kw)
    assert ei.value.errno == errno.EINVAL


def test_arena_refusals(arena):
    with pytest.raises(OSError) as ei:
        arena.create(kernel_rings=True)
    assert ei.value.errno == errno.EINVAL
    c = arena.create(consumer=True, ring_size=1 << 16)
    # An arena observer exists (read-only), but it cannot send or notify.
    obs = uhp.arena_attach(c.name, rdonly=True)
    with pytest.raises(OSError) as ei:
        obs.send(b"x")
    assert ei.value.errno == errno.EBADF
    obs.close()
    for call, fn in ((lambda: c.kernel_send(0, b"x"), "uhp_kernel_send"),
                     (lambda: c.verify(0, 0), "uhp_verify")):
        with pytest.raises(OSError) as ei:
            call()
        assert ei.value.errno == errno.EOPNOTSUPP and ei.value.function == fn


def test_claim_ring(arena):
    c = arena.create(consumer=True, ring_size=1 << 16, excl_rings=1)
    p = uhp.arena_attach(c.name)
    k = p.claim_ring()
    assert k == c.nr_rings - 1 and p.producer_ring == k
    with pytest.raises(OSError) as ei:
        p.claim_ring()                  # one per handle
    assert ei.value.errno == errno.EBUSY
    q = uhp.arena_attach(c.name)
    with pytest.raises(OSError) as ei:
        q.claim_ring()                  # the only one is taken
    assert ei.value.errno == errno.EBUSY and ei.value.function == "uhp_claim_ring"
    p.send(b"excl")
    d, m = c.recv(with_meta=True)
    assert d == b"excl" and m.ring == k
    p.close()
    q.claim_ring()                      # freed on close
    q.close()


def test_closed_handle(pair):
    c, p = pair
    p.close()
    p.close()                           # twice is fine
    for call in (lambda: p.send(b"x"), lambda: p.send_batch([b"x"]),
                 p.fileno, p.stats, lambda: p.reserve(1)):
        with pytest.raises(ValueError):
            call()


@pytest.mark.skipif(HAVE_DEV, reason="/dev/uhp exists here")
def test_device_missing_names_uhp_open():
    with pytest.raises(FileNotFoundError) as ei:
        uhp.Device()
    assert ei.value.errno == errno.ENOENT
    assert ei.value.function == "uhp_open"
    assert ei.value.filename == "/dev/uhp"


def test_not_picklable(pair):
    import pickle
    with pytest.raises(TypeError):
        pickle.dumps(pair[0])


def test_library_not_found_names_uhp_lib(tmp_path):
    import subprocess
    import sys
    from conftest import ROOT
    env = dict(os.environ, UHP_LIB=str(tmp_path / "nope" / "libuhp.so.0"))
    r = subprocess.run([sys.executable, "-c", "import uhp"], env=env,
                       cwd=str(ROOT / "python"), capture_output=True, text=True)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "UHP_LIB" in r.stderr
    assert str(tmp_path / "nope") in r.stderr
    # unset: the soname through the dynamic linker, else the same advice
    env.pop("UHP_LIB")
    env.pop("LD_LIBRARY_PATH", None)
    r = subprocess.run([sys.executable, "-c", "import uhp; print(uhp.LIB_PATH)"],
                       env=env, cwd=str(ROOT / "python"), capture_output=True,
                       text=True)
    probe = subprocess.run(
        [sys.executable, "-c", "import ctypes, ctypes.util, sys\n"
         "try:\n    ctypes.CDLL('libuhp.so.0')\nexcept OSError:\n"
         "    sys.exit(ctypes.util.find_library('uhp') is None)"], env=env)
    system_lib = probe.returncode == 0
    if system_lib:
        assert r.returncode == 0, r.stderr
    else:
        assert r.returncode != 0 and "UHP_LIB" in r.stderr
