# SPDX-License-Identifier: MIT
"""Channels: the Python face of struct uhp_channel (see uhp/__init__.py)."""
import asyncio
import ctypes
import errno
import math
import os
import struct
import threading
import time
from array import array
from ctypes import byref, c_size_t, c_uint, c_uint32, c_uint64, c_void_p
from itertools import accumulate
from typing import NamedTuple

from . import _capi as C

__all__ = [
    "Channel", "Device", "Meta", "Stats", "Info", "RingInfo", "ListEntry",
    "VerifyResult", "arena_create", "arena_attach", "arena_unlink",
    "open_channel", "version", "crc32c", "crc32c_raw",
]

# ---- results ----


class Meta(NamedTuple):
    """struct uhp_meta. On send only seq/src/dst/type count."""
    seq: int = 0
    src: int = 0
    dst: int = 0
    type: int = 0
    flags: int = 0      # receive only: UHP_REC_F_* of the record
    ring: int = 0       # receive only: ring the record came from


class Stats(NamedTuple):
    """struct uhp_stats: this handle's counters."""
    sent: int
    received: int
    crc_errors: int
    stalled_skips: int
    notifies: int


class RingInfo(NamedTuple):
    node: int
    flags: int
    prod_off: int
    cons_off: int
    data_off: int
    kernel_full: int
    kernel_corrupt: int


class Info(NamedTuple):
    """struct uhp_info (what uhp_info() reports) with its rings."""
    flags: int
    abi_version: int
    nr_rings: int
    features: int
    data_size: int
    page_size: int
    copy_path: int
    mode: int
    uid: int
    gid: int
    name: str
    rings: tuple


class ListEntry(NamedTuple):
    """struct uhp_list_entry (Device.list())."""
    name: str
    uid: int
    gid: int
    mode: int
    flags: int
    nr_rings: int
    nr_fds: int
    data_size: int
    ring_bytes: int
    consumer_pid: int = 0   # 0: no consumer, or an older module
    nr_writers: int = 0
    scope_inum: int = 0     # the namespace of the name (/proc/PID/ns/...)


class VerifyResult(NamedTuple):
    ok: bool        # False: the CRC did not match (-EBADMSG)
    len: int
    crc: int


# ---- errors, names, timeouts ----

def _error(ret, fn, name=None):
    """OSError for a negative errno `ret` returned by the C function `fn`.

    OSError() picks the subclass by errno (BlockingIOError for EAGAIN,
    TimeoutError for ETIMEDOUT, FileNotFoundError for ENOENT, ...); the C
    function's name leads the message and is kept as e.function."""
    err = -int(ret)
    msg = "%s: %s" % (fn, os.strerror(err))
    e = OSError(err, msg) if name is None else OSError(err, msg, name)
    e.function = fn
    return e


def _name_bytes(name, fn):
    if isinstance(name, str):
        b = os.fsencode(name)
    elif isinstance(name, (bytes, bytearray, memoryview)):
        b = bytes(name)
    else:
        raise TypeError("channel name must be str or bytes, not %s"
                        % type(name).__name__)
    if b"\0" in b:  # C would see a shorter name: refuse as it refuses others
        raise _error(-errno.EINVAL, fn, name)
    return b


_SLICE_S = 0.2      # longest sleep in C before Python looks at signals again
_INT_MAX = 0x7FFFFFFF


def _deadline(timeout):
    if timeout is None:
        return None
    if timeout < 0:
        raise ValueError("timeout must be None or >= 0")
    return time.monotonic() + timeout


def _slice_ms(deadline):
    """Milliseconds for the next C wait: what is left, at most _SLICE_S."""
    if deadline is None:
        return int(_SLICE_S * 1000)
    left = deadline - time.monotonic()
    if left <= 0:
        return 0
    return min(int(math.ceil(left * 1000)), int(_SLICE_S * 1000))


def _meta_ptr(seq, src, dst, type_):
    if seq or src or dst or type_:
        return byref(C.struct_uhp_meta(seq, src, dst, type_))
    return None


def _meta_of(m):
    return Meta(m.seq, m.src, m.dst, m.type, m.flags, m.ring)


def _cbuf(data):
    """(pointer-like, nbytes) for any bytes-like object, no copy when it can."""
    if data.__class__ is bytes:
        return data, len(data)
    mv = memoryview(data)
    n = mv.nbytes
    if n == 0:
        return None, 0
    if mv.readonly or not mv.c_contiguous:
        return mv.tobytes(), n              # ctypes cannot point into these
    return (ctypes.c_char * n).from_buffer(mv.cast("B")), n


def _len_arg(n, fn):
    if n > 0xFFFFFFFF:
        raise _error(-errno.EMSGSIZE, fn)
    return n if n <= _INT_MAX else c_uint32(n)


_vp_of = c_void_p.from_buffer
_cp = ctypes.c_char_p


def _bytes_addr(b):
    """Address of a bytes object's data (keep b alive while it is used)."""
    return _vp_of(_cp(b)).value or 0


def _bytes_data_offset():
    """CPython: where a bytes object's data starts, from id(); None if that
    does not hold here (then batches always copy their payloads)."""
    try:
        off = bytes.__basicsize__ - 1           # ob_sval, after the header
        probes = [b"", b"x", b"uhp" * 100, bytes(range(256)) * 3]
        if all(_bytes_addr(b) == id(b) + off for b in probes if b):
            return off
    except Exception:
        pass
    return None


_BYTES_OFF = _bytes_data_offset()
_DIRECT_MIN = 2048      # average record size from which batches point at
_ONLY_BYTES = {bytes}   # their bytes objects instead of copying them
_type = type            # (send_batch() has a parameter named type)


# ---- batches: preallocated C arrays filled with strided memoryviews ----

_IOV = ctypes.sizeof(C.struct_uhp_iov_msg)     # 40: 5 u64, 10 u32, 20 u16 per entry
_RXM = ctypes.sizeof(C.struct_uhp_rx_msg)      # 40
assert _IOV == 40 and _RXM == 40, "uhp_iov_msg/uhp_rx_msg layout changed"
_SEND_CHUNK = 256
_SEND_DATA = 64 * 1024          # payload bytes a batch chunk copies in
_ZEROS_Q = array("Q", bytes(8 * _SEND_CHUNK))
_RX_BUF_MAX = 256 * 1024        # bytes of slots for recv_batch
_RX_SLOT_MIN = 64
_RX_SLOT_MAX = 64 * 1024        # larger records go through peek()
_RX_MAX_SLOTS = 1024
_RECV_CAP = 64 * 1024           # recv()'s buffer; larger records: peek()
_META_PACK = struct.Struct("=QIIH")     # seq, src, dst, type at offset 16


class _SendScratch:
    """One thread's uhp_iov_msg[_SEND_CHUNK], views on it, and a payload
    buffer at a fixed address: a batch whose lengths match the previous
    one's reuses every buf/len field as it is and only copies its payloads
    in (the common case: the same sizes again and again)."""
    __slots__ = ("raw", "arr", "addr", "q", "i", "meta_dirty", "data",
                 "data_ref", "daddr", "last_lens")

    def __init__(self):
        self.raw = bytearray(_SEND_CHUNK * _IOV)
        self.arr = (C.struct_uhp_iov_msg * _SEND_CHUNK).from_buffer(self.raw)
        self.addr = ctypes.addressof(self.arr)
        mv = memoryview(self.raw)
        self.q = mv.cast("Q")
        self.i = mv.cast("I")
        self.meta_dirty = False
        self.data = bytearray(_SEND_DATA)
        # the export also keeps the bytearray from ever being resized
        self.data_ref = (ctypes.c_char * _SEND_DATA).from_buffer(self.data)
        self.daddr = ctypes.addressof(self.data_ref)
        self.last_lens = None


class _RecvBatch:
    """The consumer's uhp_rx_msg[n] over n slots of slot bytes each."""
    __slots__ = ("slot", "n", "msgs", "buf", "base", "q", "i", "h",
                 "small_runs", "splitters")

    def __init__(self, slot):
        self.slot = slot
        self.n = max(1, min(_RX_MAX_SLOTS, _RX_BUF_MAX // slot))
        raw = bytearray(self.n * _RXM)
        self.msgs = (C.struct_uhp_rx_msg * self.n).from_buffer(raw)
        self.buf = (ctypes.c_char * (self.n * slot))()
        self.base = ctypes.addressof(self.buf)
        mv = memoryview(raw)
        self.q, self.i, self.h = mv.cast("Q"), mv.cast("I"), mv.cast("H")
        n = self.n
        self.q[0:5 * n:5] = array("Q", range(self.base, self.base + n * slot, slot))
        self.i[2:10 * n:10] = array("I", [slot]) * n
        self.small_runs = 0
        # (len, count) -> Struct cutting count slots holding len bytes each
        # into bytes objects in one call (uniform batches)
        self.splitters = {}

    def splitter(self, ln, k):
        st = self.splitters.get((ln, k))
        if st is None:
            if len(self.splitters) >= 256:
                self.splitters.clear()
            pad = self.slot - ln
            one = "%ds%dx" % (ln, pad) if pad else "%ds" % ln
            st = self.splitters[(ln, k)] = struct.Struct(
                "=" + one * (k - 1) + "%ds" % ln)
        return st


# ---- channels ----

class Channel:
    """A handle on a uhp channel: struct uhp_channel.

    Made by Device.create()/Device.attach() (a /dev/uhp channel) or
    arena_create()/arena_attach() (an arena, no module). Producer calls
    (send*, reserve/commit) may come from many threads; receive and wait
    calls from one thread at a time, on the handle with the consumer role.
    Do not close() a handle while another thread uses it.

    As a context manager the handle is closed on exit and, if this handle
    created the channel (and unlink_on_exit was left True), its name is
    unlinked too -- the C API's intended order: uhp_close(), then the creator
    removes the name; other handles keep working until they close.
    """

    def __init__(self, ptr, name, kind, *, consumer, created,
                 unlink_on_exit, device=None):
        self._p = c_void_p(ptr)
        self.name = name
        self.kind = kind                # "arena" or "device"
        self.consumer = consumer
        self.created = created
        self.unlink_on_exit = bool(created and unlink_on_exit)
        self._dev = device
        self._pid = os.getpid()
        self._txns = {}                 # id(view) -> (view, uhp_txn)
        self._peeks = {}                # id(view) -> (view, uhp_rx)
        self._tls = threading.local()
        self._rb = None                 # _RecvBatch
        self._rbuf = None               # recv() buffer
        self._rmeta = C.struct_uhp_meta()
        inf = self.info()
        self.data_size = inf.data_size
        # UHP_REC_TOTAL(len) <= data_size, data_size a multiple of 64
        self.max_payload = inf.data_size - C.UHP_REC_HDR_SIZE

    # -- life --

    def _ptr(self):
        p = self._p
        if p is None:
            raise ValueError("uhp channel %r is closed" % (self.name,))
        return p

    @property
    def closed(self):
        return self._p is None

    def close(self):
        """uhp_close(): unmap and free the handle. Live reservations are
        discarded and every view this handle gave out is released first."""
        p = self._p
        if p is None:
            return
        for view, t in list(self._txns.values()):
            C.f_discard(p, byref(t))
            try:
                view.release()
            except BufferError:     # exported: documented as the caller's bug
                pass
        self._txns.clear()
        for view, _ in list(self._peeks.values()):
            try:
                view.release()
            except BufferError:
                pass
        self._peeks.clear()
        self._p = None
        C.uhp_close(p)

    def unlink(self):
        """Remove the channel's name (uhp_arena_unlink / uhp_unlink)."""
        if self.kind == "arena":
            arena_unlink(self.name)
        elif self._dev is not None:
            self._dev.unlink(self.name)
        else:
            with Device() as dev:
                dev.unlink(self.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        if self.unlink_on_exit and os.getpid() == self._pid:
            try:
                self.unlink()
            except FileNotFoundError:
                pass

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        return "<uhp.Channel %s %r%s%s>" % (
            self.kind, self.name, " consumer" if self.consumer else "",
            " closed" if self._p is None else "")

    def __reduce__(self):
        raise TypeError("uhp channels cannot be pickled: attach by name in "
                        "the other process")

    # -- control --

    def fileno(self):
        """uhp_channel_fd(): the fd for select/poll/epoll/asyncio. Sleep on it
        only between prepare_sleep() and end_sleep(). OSError(EOPNOTSUPP)
        where the library has no fd for this kind of channel."""
        fd = C.uhp_channel_fd(self._ptr())
        if fd < 0:
            raise _error(fd, "uhp_channel_fd", self.name)
        return fd

    def info(self):
        """uhp_info(): the channel as the kernel (or the arena) reports it."""
        p = self._ptr()
        out = C.struct_uhp_info()
        nr = C.uhp_nr_rings(p)
        rings = (C.struct_uhp_ring_info * nr)()
        ret = C.uhp_info(p, byref(out), rings, nr)
        if ret:
            raise _error(ret, "uhp_info", self.name)
        return Info(out.flags, out.abi_version, out.nr_rings, out.features,
                    out.data_size, out.page_size, out.copy_path, out.mode,
                    out.uid, out.gid, out.name.decode(errors="replace"),
                    tuple(RingInfo(r.node, r.flags, r.prod_off, r.cons_off,
                                   r.data_off, r.kernel_full, r.kernel_corrupt)
                          for r in rings[:min(nr, out.nr_rings)]))

    @property
    def nr_rings(self):
        return C.uhp_nr_rings(self._ptr())

    def ring_fill(self, ring):
        """uhp_ring_fill(): (bytes used, ring size) of ring k, a snapshot."""
        used, size = c_uint64(), c_uint64()
        ret = C.uhp_ring_fill(self._ptr(), ring, byref(used), byref(size))
        if ret:
            raise _error(ret, "uhp_ring_fill", self.name)
        return used.value, size.value

    def stats(self):
        """uhp_stats(): this handle's counters."""
        s = C.struct_uhp_stats()
        ret = C.uhp_stats(self._ptr(), byref(s))
        if ret:
            raise _error(ret, "uhp_stats", self.name)
        return Stats(s.sent, s.received, s.crc_errors, s.stalled_skips,
                     s.notifies)

    def notify(self):
        ret = C.uhp_notify(self._ptr())
        if ret:
            raise _error(ret, "uhp_notify", self.name)

    @property
    def producer_ring(self):
        return C.uhp_producer_ring(self._ptr())

    @producer_ring.setter
    def producer_ring(self, ring):
        ret = C.uhp_set_producer_ring(self._ptr(), ring)
        if ret:
            raise _error(ret, "uhp_set_producer_ring", self.name)

    def claim_ring(self):
        """uhp_claim_ring(): become the only producer of an exclusive ring;
        returns its index. Send from one thread at a time afterwards."""
        ret = C.uhp_claim_ring(self._ptr())
        if ret < 0:
            raise _error(ret, "uhp_claim_ring", self.name)
        return ret

    def set_stall_timeout_ns(self, ns):
        C.uhp_set_stall_timeout_ns(self._ptr(), ns)

    def set_stall_timeout(self, seconds):
        self.set_stall_timeout_ns(int(seconds * 1e9))

    def set_spin(self, checks):
        """uhp_set_spin(): ring checks uhp_wait() makes before it sleeps
        (UHP_DEFAULT_SPIN). OSError(ENOSYS) with a libuhp without it."""
        if C.uhp_set_spin is None:
            raise _error(-errno.ENOSYS, "uhp_set_spin", self.name)
        C.uhp_set_spin(self._ptr(), checks)

    def kernel_send(self, ring, data, *, seq=0, src=0, dst=0, type=0):
        """uhp_kernel_send() (UHP_IOC_SEND, /dev/uhp only): returns the
        record's position."""
        buf, n = _cbuf(data)
        pos = c_uint64()
        meta = C.struct_uhp_meta(seq, src, dst, type)
        ret = C.uhp_kernel_send(self._ptr(), ring, buf, n, byref(meta), byref(pos))
        if ret:
            raise _error(ret, "uhp_kernel_send", self.name)
        return pos.value

    def verify(self, ring, pos):
        """uhp_verify() (UHP_IOC_VERIFY, /dev/uhp only)."""
        ln, crc = c_uint32(), c_uint32()
        ret = C.uhp_verify(self._ptr(), ring, pos, byref(ln), byref(crc))
        if ret and ret != -errno.EBADMSG:
            raise _error(ret, "uhp_verify", self.name)
        return VerifyResult(ret == 0, ln.value, crc.value)

    # -- producer --

    def send(self, data, *, seq=0, src=0, dst=0, type=0):
        """uhp_send(): copy one record in. BlockingIOError (EAGAIN) when the
        ring is full; OSError(EMSGSIZE) when it can never fit."""
        p = self._p
        if p is None:
            self._ptr()
        if data.__class__ is bytes:
            buf, n = data, len(data)
        else:
            buf, n = _cbuf(data)
        if n > _INT_MAX:
            n = _len_arg(n, "uhp_send")
        ret = C.f_send(p, buf, n, _meta_ptr(seq, src, dst, type)
                       if (seq or src or dst or type) else None)
        if ret:
            raise _error(ret, "uhp_send", self.name)

    def send_wait(self, data, timeout=None, *, seq=0, src=0, dst=0, type=0):
        """uhp_send_wait(): send, waiting up to timeout seconds (None:
        forever) for room. TimeoutError (ETIMEDOUT) with nothing sent."""
        p = self._ptr()
        buf, n = _cbuf(data)
        meta = _meta_ptr(seq, src, dst, type)
        deadline = _deadline(timeout)
        while True:
            ms = _slice_ms(deadline)
            ret = C.uhp_send_wait(p, buf, _len_arg(n, "uhp_send_wait"), meta, ms)
            if ret == 0:
                return
            if ret == -errno.ETIMEDOUT and ms and (
                    deadline is None or time.monotonic() < deadline):
                continue
            raise _error(ret, "uhp_send_wait", self.name)

    def _scratch(self):
        tls = self._tls
        try:
            return tls.s
        except AttributeError:
            tls.s = _SendScratch()
            return tls.s

    def send_batch(self, msgs, timeout=0, *, seq=None, src=0, dst=0, type=0,
                   metas=None):
        """uhp_send_batch(): send a sequence of bytes-like records, in order,
        with one reservation per run the ring has room for.

        timeout 0 (default): no waiting, returns how many were sent (a
        prefix of msgs; 0 when the ring is full). timeout None: wait for
        room as long as needed; > 0: up to that many seconds, then return
        the count. Meta: the same src/dst/type for all, seq (if given)
        numbering them seq, seq+1, ...; or metas, a Meta (or 4-tuple
        seq, src, dst, type) per message. A message the ring refuses
        (EMSGSIZE ...) raises OSError after those before it were sent; the
        exception's `sent` attribute says how many."""
        # Fast path, the common case: one chunk of small records, no meta,
        # everything fits; anything else goes the general way.
        p = self._p
        n = len(msgs)
        if p is not None and 0 < n <= _SEND_CHUNK and metas is None and \
                seq is None and not (src or dst or type):
            try:
                sc = self._tls.s
            except AttributeError:
                sc = self._scratch()
            if not sc.meta_dirty:
                lens = list(map(len, msgs))
                tot = sum(lens)
                if tot < _DIRECT_MIN * n and tot <= _SEND_DATA:
                    blob = b"".join(msgs)
                    if len(blob) == tot:
                        sc.data[0:tot] = blob
                        if lens != sc.last_lens:
                            sc.q[0:5 * n:5] = array("Q", accumulate(
                                lens[:-1], initial=sc.daddr))
                            sc.i[2:10 * n:10] = array("I", lens)
                            sc.last_lens = lens
                        ret = C.f_send_batch(p, sc.arr, n)
                        if ret == n:
                            return n
                        if ret > 0:
                            if timeout == 0:
                                return ret
                            return ret + self._send_batch(msgs[ret:], timeout)
                        if ret == -errno.EAGAIN and timeout == 0:
                            return 0
        return self._send_batch(msgs, timeout, seq, src, dst, type, metas)

    def _send_batch(self, msgs, timeout, seq=None, src=0, dst=0, type=0,
                    metas=None):
        p = self._ptr()
        total = len(msgs)
        if metas is not None and len(metas) != total:
            raise ValueError("metas must have one entry per message")
        deadline = _deadline(timeout) if timeout else None
        sc = self._scratch()
        q, i32, addr, arr = sc.q, sc.i, sc.addr, sc.arr
        sent = 0
        while sent < total:
            chunk = msgs if (sent == 0 and total <= _SEND_CHUNK) \
                else msgs[sent:sent + _SEND_CHUNK]
            n = len(chunk)
            lens = list(map(len, chunk))
            tot = sum(lens)
            blob = None
            if tot >= _DIRECT_MIN * n and _BYTES_OFF is not None and \
                    set(map(_type, chunk)) == _ONLY_BYTES:
                # large records: C reads them straight from the objects
                sc.last_lens = None
                q[0:5 * n:5] = array("Q", map(_BYTES_OFF.__add__, map(id, chunk)))
                try:
                    i32[2:10 * n:10] = array("I", lens)
                except OverflowError:
                    raise _error(-errno.EMSGSIZE, "uhp_send_batch",
                                 self.name) from None
            else:
                blob = b"".join(chunk)
                if len(blob) != tot:      # items of itemsize > 1
                    lens = [memoryview(m).nbytes for m in chunk]
                    tot = len(blob)
            if blob is None:
                pass
            elif tot <= _SEND_DATA:
                sc.data[0:tot] = blob         # same length: no resize
                if lens != sc.last_lens:
                    q[0:5 * n:5] = array("Q", accumulate(lens[:-1],
                                                         initial=sc.daddr))
                    i32[2:10 * n:10] = array("I", lens)
                    sc.last_lens = lens
            else:
                sc.last_lens = None
                q[0:5 * n:5] = array("Q", accumulate(lens[:-1],
                                                     initial=_bytes_addr(blob)))
                try:
                    i32[2:10 * n:10] = array("I", lens)
                except OverflowError:
                    raise _error(-errno.EMSGSIZE, "uhp_send_batch",
                                 self.name) from None
            if metas is not None:
                pack = _META_PACK.pack_into
                raw = sc.raw
                for j in range(n):
                    m = metas[sent + j]
                    pack(raw, j * _IOV + 16, m[0], m[1], m[2], m[3])
                sc.meta_dirty = True
            elif seq is not None or src or dst or type:
                s0 = (seq or 0) + sent
                q[2:5 * n:5] = array("Q", range(s0, s0 + n)) if seq is not None \
                    else _ZEROS_Q[:n]
                i32[6:10 * n:10] = array("I", [src]) * n
                i32[7:10 * n:10] = array("I", [dst]) * n
                q[4:5 * n:5] = array("Q", [type]) * n
                sc.meta_dirty = True
            elif sc.meta_dirty:
                for k in (2, 3, 4):
                    q[k::5] = _ZEROS_Q
                sc.meta_dirty = False
            done = 0
            while done < n:
                ret = C.f_send_batch(p, byref(arr, done * _IOV) if done else arr,
                                     n - done)
                if ret > 0:
                    done += ret
                    continue
                if ret != -errno.EAGAIN:
                    e = _error(ret, "uhp_send_batch", self.name)
                    e.sent = sent + done
                    raise e
                if timeout == 0:
                    return sent + done
                # Full: let C wait for room (spin, then naps) by sending
                # the next record through uhp_send_wait().
                ms = _slice_ms(deadline)
                ret = C.uhp_send_wait(p, q[5 * done], lens[done],
                                      addr + done * _IOV + 16, ms)
                if ret == 0:
                    done += 1
                elif ret == -errno.ETIMEDOUT:
                    if ms == 0 or (deadline is not None
                                   and time.monotonic() >= deadline):
                        return sent + done
                else:
                    e = _error(ret, "uhp_send_wait", self.name)
                    e.sent = sent + done
                    raise e
            del blob
            sent += n
        return sent

    def reserve(self, n):
        """uhp_reserve(): room for an n-byte record, as a writable memoryview
        straight into the ring. Fill it, then commit(view) or discard(view)
        soon (within the stall timeout, 200 ms by default). commit/discard
        release the view: using it afterwards raises ValueError. Do not keep
        slices or other views derived from it past that point: they are not
        tracked and would point into ring memory that is reused."""
        p = self._ptr()
        t = C.struct_uhp_txn()
        ret = C.f_reserve(p, _len_arg(n, "uhp_reserve"), byref(t))
        if ret:
            raise _error(ret, "uhp_reserve", self.name)
        view = C.memview(t.payload, n, C.PyBUF_WRITE)
        self._txns[id(view)] = (view, t)
        return view

    def _take(self, table, view, what):
        ent = table.pop(id(view), None)
        if ent is None or ent[0] is not view:
            if ent is not None:
                table[id(view)] = ent
            raise ValueError("not a live %s of this channel" % what)
        try:
            view.release()
        except BufferError:
            table[id(view)] = ent       # still exported: keep it live
            raise
        return ent[1]

    def commit(self, view, *, seq=0, src=0, dst=0, type=0):
        """uhp_commit(): seal and publish the reservation behind view, then
        release view."""
        p = self._ptr()
        t = self._take(self._txns, view, "reservation")
        ret = C.f_commit(p, byref(t), _meta_ptr(seq, src, dst, type))
        if ret:
            raise _error(ret, "uhp_commit", self.name)

    def discard(self, view):
        """uhp_discard(): give the reservation back; consumers skip it."""
        p = self._ptr()
        t = self._take(self._txns, view, "reservation")
        ret = C.f_discard(p, byref(t))
        if ret:
            raise _error(ret, "uhp_discard", self.name)

    class _Reserved:
        __slots__ = ("ch", "view", "meta")

        def __init__(self, ch, n, meta):
            self.ch, self.meta = ch, meta
            self.view = ch.reserve(n)

        def __enter__(self):
            return self.view

        def __exit__(self, et, ev, tb):
            if et is None:
                self.ch.commit(self.view, **self.meta)
            else:
                self.ch.discard(self.view)

    def reserved(self, n, **meta):
        """with ch.reserved(n, seq=...) as view: fill view; committed on
        exit, discarded if the block raises."""
        return Channel._Reserved(self, n, meta)

    # -- consumer --

    def _recv_large(self, with_meta):
        """The head record through peek(): one too large for the buffers."""
        p = self._p
        rx = C.struct_uhp_rx()
        ret = C.f_peek(p, byref(rx))
        if ret:
            raise _error(ret, "uhp_peek", self.name)
        data = ctypes.string_at(rx.payload, rx.len) if rx.len else b""
        ret = C.f_release(p, byref(rx))
        if ret:
            raise _error(ret, "uhp_release", self.name)
        return (data, _meta_of(rx.meta)) if with_meta else data

    def _recv_buf(self):
        cap = min(_RECV_CAP, max(self.max_payload, 0))
        self._rbuf = (ctypes.c_char * max(cap, 1))()
        self._rcap = c_size_t(cap)
        return self._rbuf

    def recv(self, with_meta=False):
        """uhp_recv(): the next record as bytes (with_meta: (bytes, Meta)).
        BlockingIOError (EAGAIN) when nothing waits; OSError(EBADMSG) for a
        damaged record (consumed, counted; call again for the next)."""
        p = self._p
        buf = self._rbuf
        if p is None or buf is None:
            self._ptr()
            buf = self._recv_buf()
        ret = C.f_recv(p, buf, self._rcap, byref(self._rmeta) if with_meta else None)
        if ret >= 0:
            data = buf[:ret]
            return (data, _meta_of(self._rmeta)) if with_meta else data
        if ret == -errno.EMSGSIZE:
            return self._recv_large(with_meta)
        raise _error(ret, "uhp_recv", self.name)

    def recv_wait(self, timeout=None, with_meta=False):
        """uhp_recv_wait(): recv(), waiting up to timeout seconds (None:
        forever). TimeoutError (ETIMEDOUT) when nothing came."""
        p = self._ptr()
        buf = self._rbuf if self._rbuf is not None else self._recv_buf()
        deadline = _deadline(timeout)
        meta = self._rmeta if with_meta else None
        while True:
            ms = _slice_ms(deadline)
            ret = C.uhp_recv_wait(p, buf, self._rcap, meta, ms)
            if ret >= 0:
                data = buf[:ret]
                return (data, _meta_of(meta)) if with_meta else data
            if ret == -errno.EMSGSIZE:
                return self._recv_large(with_meta)
            if ret in (-errno.ETIMEDOUT, -errno.EINTR) and ms and (
                    deadline is None or time.monotonic() < deadline):
                continue
            raise _error(ret, "uhp_recv_wait", self.name)

    def wait(self, timeout=None):
        """uhp_wait(): True once a record is ready, False after timeout
        seconds (None: forever; 0: just look)."""
        p = self._ptr()
        deadline = _deadline(timeout)
        while True:
            ms = _slice_ms(deadline)
            ret = C.uhp_wait(p, ms)
            if ret == 1:
                return True
            # timeout: 0 from libuhp 0.1's uhp_wait(), -ETIMEDOUT from later
            # ones (dlsym() gives ctypes the default symbol version)
            if ret < 0 and ret not in (-errno.EINTR, -errno.ETIMEDOUT):
                raise _error(ret, "uhp_wait", self.name)
            if ms == 0 or (deadline is not None and time.monotonic() >= deadline):
                return False

    def recv_batch(self, max_msgs=64, timeout=0, with_meta=False):
        """uhp_recv_batch(): up to max_msgs records as a list of bytes (with
        with_meta, of (bytes, Meta)). timeout 0 (default): an empty list when
        nothing waits; None or > 0: wait (uhp_wait) for the first record."""
        p = self._p
        rb = self._rb
        if p is None or rb is None:
            self._ptr()
            rb = self._rb = _RecvBatch(256)
        if max_msgs <= 0:
            return []
        if not with_meta:
            # Fast path: records waiting, all of one length.
            ret = C.f_recv_batch(p, rb.msgs, max_msgs if max_msgs < rb.n else rb.n)
            if ret > 0:
                lens = rb.i[3:10 * ret:10].tolist()
                ln = lens[0]
                if lens.count(ln) == ret:
                    st = rb.splitters.get((ln, ret))
                    if st is None:
                        st = rb.splitter(ln, ret)
                    if ln * 4 <= rb.slot and rb.slot > _RX_SLOT_MIN:
                        self._slots_small(rb, ln)
                    else:
                        rb.small_runs = 0
                    return list(st.unpack_from(rb.buf))
                return self._recv_batch_out(rb, ret, lens, False)
            if ret == -errno.EAGAIN:
                if timeout == 0:
                    return []
            elif ret < 0 and ret != -errno.EMSGSIZE:
                raise _error(ret, "uhp_recv_batch", self.name)
        deadline = None
        while True:
            n = max_msgs if max_msgs < rb.n else rb.n
            ret = C.f_recv_batch(p, rb.msgs, n)
            if ret > 0:
                break
            if ret == -errno.EAGAIN:
                if timeout == 0:
                    return []
                if timeout is None:
                    self.wait(None)
                    continue
                if deadline is None:
                    deadline = _deadline(timeout)
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self.wait(left)
                continue
            if ret == -errno.EMSGSIZE:
                rb = self._grow_slots(rb)
                if rb is None:
                    return [self._recv_large(with_meta)]
                continue
            raise _error(ret, "uhp_recv_batch", self.name)
        return self._recv_batch_out(rb, ret, rb.i[3:10 * ret:10].tolist(),
                                    with_meta)

    def _slots_small(self, rb, largest):
        """Slots much larger than what arrives cost copies: shrink them
        after a while (a record that no longer fits grows them again)."""
        rb.small_runs += 1
        if rb.small_runs >= 16:
            self._rb = _RecvBatch(max(_RX_SLOT_MIN, _slot_for(largest)))

    def _recv_batch_out(self, rb, ret, lens, with_meta):
        """The list recv_batch() returns for the ret records in rb."""
        S = rb.slot
        if lens.count(lens[0]) == ret:
            out = list(rb.splitter(lens[0], ret).unpack_from(rb.buf))
        else:
            blob = rb.buf[:(ret - 1) * S + lens[-1]]
            out = [blob[o:o + ln] for o, ln in zip(range(0, ret * S, S), lens)]
        top = max(lens)
        if S > _RX_SLOT_MIN and top * 4 <= S:
            self._slots_small(rb, top)
        else:
            rb.small_runs = 0
        if with_meta:
            q, i, h = rb.q, rb.i, rb.h
            return list(zip(out, map(Meta, q[2:5 * ret:5], i[6:10 * ret:10],
                                     i[7:10 * ret:10], h[16:20 * ret:20],
                                     h[17:20 * ret:20], i[9:10 * ret:10])))
        return out

    def _grow_slots(self, rb):
        """recv_batch() met a record larger than a slot: bigger slots if it
        fits _RX_SLOT_MAX, else None (take it through peek)."""
        rx = C.struct_uhp_rx()
        ret = C.f_peek(self._p, byref(rx))
        if ret:
            raise _error(ret, "uhp_peek", self.name)
        if rx.len > _RX_SLOT_MAX:
            return None
        self._rb = _RecvBatch(max(_slot_for(rx.len), rb.slot * 2))
        return self._rb

    def peek(self, with_meta=False):
        """uhp_peek(): the next record in place, as a read-only memoryview
        into the ring (with_meta: (view, Meta)); the record stays until
        release(view). release() releases the view: using it afterwards
        raises ValueError. Copy what you keep, and do not keep slices or
        other views derived from it past release(): they are not tracked
        and would point into ring memory that producers reuse (or, after
        close(), memory that is unmapped). Other processes can write
        there: copy what you must trust. BlockingIOError when empty."""
        p = self._ptr()
        rx = C.struct_uhp_rx()
        ret = C.f_peek(p, byref(rx))
        if ret:
            raise _error(ret, "uhp_peek", self.name)
        view = C.memview(rx.payload, rx.len, C.PyBUF_READ)
        self._peeks[id(view)] = (view, rx)
        return (view, _meta_of(rx.meta)) if with_meta else view

    def release(self, view):
        """uhp_release(): consume the record behind a peek() view, releasing
        the view."""
        p = self._ptr()
        rx = self._take(self._peeks, view, "peek() view")
        ret = C.f_release(p, byref(rx))
        if ret:
            raise _error(ret, "uhp_release", self.name)

    def peek_batch(self, n=64, with_meta=False):
        """uhp_peek_batch(): up to n records of one ring in place, in their
        order, as read-only memoryviews (with_meta: (view, Meta) pairs);
        release_batch() consumes them, all or the first k, with one store.
        The views follow peek()'s rules. BlockingIOError when empty."""
        p = self._ptr()
        if C.f_peek_batch is None:
            raise NotImplementedError("libuhp before 0.3 has no uhp_peek_batch")
        if n < 1:
            raise ValueError("n must be at least 1")
        arr = (C.struct_uhp_rx * n)()
        ret = C.f_peek_batch(p, arr, ctypes.c_uint(n))
        if ret < 0:
            raise _error(ret, "uhp_peek_batch", self.name)
        out = []
        for i in range(ret):
            rx = C.struct_uhp_rx()
            ctypes.pointer(rx)[0] = arr[i]
            view = C.memview(rx.payload, rx.len, C.PyBUF_READ)
            self._peeks[id(view)] = (view, rx)
            out.append((view, _meta_of(rx.meta)) if with_meta else view)
        return out

    def release_batch(self, views):
        """uhp_release_batch(): consume the records behind views, the first
        len(views) of what the last peek_batch() returned, in its order,
        releasing the views (as release(), also when it fails: OSError
        EINVAL, nothing consumed, when they are not those records)."""
        p = self._ptr()
        views = list(views)
        if C.f_release_batch is None:
            raise NotImplementedError("libuhp before 0.3 has no uhp_release_batch")
        if not views:
            return
        for v in views:
            ent = self._peeks.get(id(v))
            if ent is None or ent[0] is not v:
                raise ValueError("not a live peek_batch() view of this channel")
        # As release(): the views go first (a view still exported stops it).
        rxs = [self._take(self._peeks, v, "peek_batch() view") for v in views]
        arr = (C.struct_uhp_rx * len(rxs))(*rxs)
        ret = C.f_release_batch(p, arr, ctypes.c_uint(len(rxs)))
        if ret:
            raise _error(ret, "uhp_release_batch", self.name)

    class _Peeked:
        __slots__ = ("ch", "view")

        def __init__(self, ch):
            self.ch = ch
            self.view = ch.peek()

        def __enter__(self):
            return self.view

        def __exit__(self, et, ev, tb):
            if et is None:
                self.ch.release(self.view)
            else:       # leave the record, invalidate the view
                self.ch._peeks.pop(id(self.view), None)
                self.view.release()

    def peeked(self):
        """with ch.peeked() as view: ...; the record is consumed on exit
        (left in place if the block raises)."""
        return Channel._Peeked(self)

    # -- your own event loop --

    def prepare_sleep(self):
        """uhp_prepare_sleep(): ask producers for a wakeup before sleeping
        on fileno(). True: a record arrived meanwhile, do not sleep."""
        ret = C.uhp_prepare_sleep(self._ptr())
        if ret < 0:
            raise _error(ret, "uhp_prepare_sleep", self.name)
        return ret == 1

    def end_sleep(self):
        """uhp_end_sleep(): withdraw the wakeup request."""
        C.uhp_end_sleep(self._ptr())

    async def recv_async(self, with_meta=False):
        """recv() for asyncio: sleeps on fileno() through the event loop
        (prepare_sleep()/end_sleep() around it). Where the channel has no fd
        (uhp_channel_fd() says EOPNOTSUPP) it polls instead, backing off
        from 0 to 5 ms."""
        loop = asyncio.get_running_loop()
        nap = 0.0
        while True:
            try:
                return self.recv(with_meta)
            except BlockingIOError:
                pass
            try:
                fd = self.fileno()
            except OSError as e:
                if e.errno != errno.EOPNOTSUPP:
                    raise
                await asyncio.sleep(nap)
                nap = min(0.005, nap * 2 if nap else 0.0001)
                continue
            if self.prepare_sleep():
                self.end_sleep()
                continue
            fut = loop.create_future()

            def ready(fut=fut):
                if not fut.done():
                    fut.set_result(None)
            loop.add_reader(fd, ready)
            try:
                # capped like uhp_wait()'s sleeps, so stalls are looked at
                await asyncio.wait((fut,), timeout=_SLICE_S)
            finally:
                loop.remove_reader(fd)
                if self._p is not None:
                    self.end_sleep()


def _slot_for(n):
    s = _RX_SLOT_MIN
    while s < n:
        s *= 2
    return s


# ---- /dev/uhp ----

def _opts(ring_size, mode, node, consumer, kernel_rings, excl_rings, fn):
    for v in (ring_size, mode, excl_rings):
        if v < 0:
            raise _error(-errno.EINVAL, fn)
    o = C.struct_uhp_create_opts()
    o.ring_size = ring_size
    o.mode = mode
    o.node = node
    o.consumer = consumer
    o.kernel_rings = kernel_rings
    o.excl_rings = excl_rings
    return o


class Device:
    """/dev/uhp (uhp_open()): creates, attaches, unlinks and lists channels.
    OSError (ENOENT naming uhp_open) when the module is not loaded."""

    def __init__(self):
        fd = C.uhp_open()
        if fd < 0:
            raise _error(fd, "uhp_open", C.UHP_DEVICE_PATH)
        self._fd = fd

    def fileno(self):
        if self._fd < 0:
            raise ValueError("uhp.Device is closed")
        return self._fd

    def close(self):
        """Close the /dev/uhp fd (channels made through it stay usable, but
        their unlink() needs an open Device)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def create(self, name, *, ring_size=C.UHP_DEFAULT_RING_SIZE,
               mode=C.UHP_DEFAULT_MODE, node=-1, consumer=False,
               kernel_rings=False, excl_rings=0, unlink_on_exit=True):
        """uhp_create(): a new named channel; consumer=True takes the
        consumer role for this handle."""
        b = _name_bytes(name, "uhp_create")
        o = _opts(ring_size, mode, node, consumer, kernel_rings, excl_rings,
                  "uhp_create")
        out = c_void_p()
        ret = C.uhp_create(self.fileno(), b, byref(o), byref(out))
        if ret:
            raise _error(ret, "uhp_create", name)
        return Channel(out.value, name, "device", consumer=bool(consumer),
                       created=True, unlink_on_exit=unlink_on_exit, device=self)

    def attach(self, name, *, consumer=False, rdonly=False,
               consume_only=False):
        """uhp_attach(): consumer=True takes the consumer role (EBUSY when
        taken); rdonly=True attaches an observer; consume_only=True (with
        consumer) a consumer that never produces, so poll() on fileno()
        reports a hang-up once the name and every writer are gone
        (UHP_FEAT_HANGUP modules)."""
        b = _name_bytes(name, "uhp_attach")
        flags = (C.UHP_ATTACH_CONSUMER if consumer else 0) | \
                (C.UHP_ATTACH_RDONLY if rdonly else 0) | \
                (C.UHP_ATTACH_CONSUME_ONLY if consume_only else 0)
        out = c_void_p()
        ret = C.uhp_attach(self.fileno(), b, flags, byref(out))
        if ret:
            raise _error(ret, "uhp_attach", name)
        return Channel(out.value, name, "device", consumer=bool(consumer),
                       created=False, unlink_on_exit=False, device=self)

    def unlink(self, name):
        """uhp_unlink(): remove the name (owner only)."""
        ret = C.uhp_unlink(self.fileno(), _name_bytes(name, "uhp_unlink"))
        if ret:
            raise _error(ret, "uhp_unlink", name)

    def list(self):
        """uhp_list(): every visible named channel, oldest first."""
        total = c_uint()
        ret = C.uhp_list(self.fileno(), 0, None, 0, byref(total))
        if ret < 0:
            raise _error(ret, "uhp_list")
        out, start = [], 0
        while start < total.value:
            cap = min(C.UHP_LIST_MAX, total.value - start + 8)
            ents = (C.struct_uhp_list_entry * cap)()
            ret = C.uhp_list(self.fileno(), start, ents, cap, byref(total))
            if ret < 0:
                raise _error(ret, "uhp_list")
            if ret == 0:
                break
            out += [ListEntry(e.name.decode(errors="replace"), e.uid, e.gid,
                              e.mode, e.flags, e.nr_rings, e.nr_fds,
                              e.data_size, e.ring_bytes, e.consumer_pid,
                              e.nr_writers, e.scope_inum) for e in ents[:ret]]
            start += ret
        return out


# ---- arenas ----

def arena_create(name, *, ring_size=C.UHP_DEFAULT_RING_SIZE, node=-1,
                 consumer=False, excl_rings=0, mode=C.UHP_DEFAULT_MODE,
                 kernel_rings=False, unlink_on_exit=True):
    """uhp_arena_create(): a new channel in /dev/shm/uhp.<name> (no module).
    consumer=True takes the consumer role for this handle. EEXIST when the
    name is taken. (mode and kernel_rings are passed on as the C API has
    them: arenas are 0600 and refuse kernel rings with EINVAL.)"""
    b = _name_bytes(name, "uhp_arena_create")
    o = _opts(ring_size, mode, node, consumer, kernel_rings, excl_rings,
              "uhp_arena_create")
    out = c_void_p()
    ret = C.uhp_arena_create(b, byref(o), byref(out))
    if ret:
        raise _error(ret, "uhp_arena_create", name)
    return Channel(out.value, name, "arena", consumer=bool(consumer),
                   created=True, unlink_on_exit=unlink_on_exit)


def arena_attach(name, *, consumer=False, rdonly=False):
    """uhp_arena_attach(): consumer=True takes the consumer role (EBUSY while
    a live process holds it). rdonly: EOPNOTSUPP today (no observers)."""
    b = _name_bytes(name, "uhp_arena_attach")
    flags = (C.UHP_ATTACH_CONSUMER if consumer else 0) | \
            (C.UHP_ATTACH_RDONLY if rdonly else 0)
    out = c_void_p()
    ret = C.uhp_arena_attach(b, flags, byref(out))
    if ret:
        raise _error(ret, "uhp_arena_attach", name)
    return Channel(out.value, name, "arena", consumer=bool(consumer),
                   created=False, unlink_on_exit=False)


def arena_unlink(name):
    """uhp_arena_unlink(): remove the arena's name (handles keep working)."""
    ret = C.uhp_arena_unlink(_name_bytes(name, "uhp_arena_unlink"))
    if ret:
        raise _error(ret, "uhp_arena_unlink", name)


# ---- either: uhp_open_channel() ----

def open_channel(name, *, create=False, excl=False, consumer=False,
                 rdonly=False, kernel_rings=False, node=None, device=False,
                 arena=False, ring_size=0, mode=0, excl_rings=0, spin=0,
                 stall_timeout_ns=0, unlink_on_exit=True):
    """uhp_open_channel(): the channel on /dev/uhp where the module is
    loaded, else an arena (device=True / arena=True force one). Attaches;
    with create=True creates it when there is none (excl=True: EEXIST if it
    exists). ch.created says which happened, ch.kind what it is; a created
    channel is unlinked when its with-block ends (unlink_on_exit). Zero
    options mean the library's defaults. OSError(ENOSYS) with a libuhp
    older than the call."""
    fn = "uhp_open_channel"
    if C.uhp_open_channel is None:
        raise _error(-errno.ENOSYS, fn, name)
    b = _name_bytes(name, fn)
    flags = ((C.UHP_OPEN_CREATE if create else 0) |
             (C.UHP_OPEN_EXCL if excl else 0) |
             (C.UHP_OPEN_CONSUMER if consumer else 0) |
             (C.UHP_OPEN_RDONLY if rdonly else 0) |
             (C.UHP_OPEN_KERNEL_RINGS if kernel_rings else 0) |
             (C.UHP_OPEN_ONE_NODE if node is not None else 0) |
             (C.UHP_OPEN_DEVICE if device else 0) |
             (C.UHP_OPEN_ARENA if arena else 0))
    for v in (ring_size, mode, excl_rings, spin, stall_timeout_ns, node or 0):
        if v < 0:
            raise _error(-errno.EINVAL, fn, name)
    o = C.struct_uhp_open_opts(ctypes.sizeof(C.struct_uhp_open_opts), flags,
                               ring_size, mode, node or 0, excl_rings, spin,
                               stall_timeout_ns)
    out = c_void_p()
    ret = C.uhp_open_channel(b, byref(o), byref(out))
    if ret < 0:
        raise _error(ret, fn, name)
    kind = C.uhp_channel_kind(out) if C.uhp_channel_kind else None
    kind = kind.decode() if kind else ("arena" if arena else "device")
    return Channel(out.value, name, kind, consumer=bool(consumer),
                   created=ret == 1, unlink_on_exit=unlink_on_exit)


# ---- misc ----

def version():
    """uhp_version() of the library that runs, as (major, minor, patch)."""
    v = C.version()
    return (v >> 16, (v >> 8) & 0xFF, v & 0xFF)


def crc32c_raw(crc, data):
    """uhp_crc32c(crc, data): no pre/post inversion (the kernel's crc32c())."""
    buf, n = _cbuf(data)
    return C.uhp_crc32c(crc, buf, n)


def crc32c(data, crc=0):
    """The standard CRC32C of data (continuing from crc, like zlib.crc32)."""
    return crc32c_raw(crc ^ 0xFFFFFFFF, data) ^ 0xFFFFFFFF
