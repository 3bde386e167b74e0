# SPDX-License-Identifier: MIT
"""ctypes declarations for libuhp (userlib/uhp.h, uapi/linux/uhp.h).

Everything here mirrors the C headers one to one: struct_X is struct X
(ctypesgen's naming, as C's struct tags and functions share names such as
uhp_info), field for field (tests/test_abi.py compiles a C program and
compares every offset and size). The channel API built on it is in
_channel.py; nothing here is meant for applications, but it is importable
as uhp._capi for whoever needs a call the Python API does not wrap.

Two handles on the same library:
  lib   (ctypes.CDLL)  releases the GIL around each call: everything that can
                       block or take long (waits, create/attach, open).
  fast  (ctypes.PyDLL) keeps the GIL: the non-blocking data-path calls
                       (send, recv, batch, reserve/commit, peek/release),
                       which take well under a microsecond for small records;
                       dropping and retaking the GIL would cost about as much.
Data-path functions on `fast` have no argtypes (ctypes converts arguments
faster without them); callers pass c_void_p / ctypes objects for pointers
and size_t arguments.
"""
import ctypes
import ctypes.util
import os
from ctypes import (POINTER, Structure, c_bool, c_char, c_int, c_int32,
                    c_size_t, c_ssize_t, c_uint, c_uint16, c_uint32,
                    c_uint64, c_void_p)

# ---- constants (uhp.h, uapi/linux/uhp.h) ----

UHP_VERSION_MAJOR = 0       # the binding speaks this major version
UHP_VERSION_MINOR_MIN = 1   # and needs at least this minor

UHP_ABI_VERSION = 1
UHP_DEVICE_PATH = "/dev/uhp"
UHP_NAME_MAX = 64
UHP_REC_ALIGN = 64
UHP_REC_HDR_SIZE = 40
UHP_PAGE_SIZE = 4096
UHP_DEFAULT_RING_SIZE = 1 << 20
UHP_DEFAULT_MODE = 0o600
UHP_DEFAULT_STALL_TIMEOUT_NS = 200000000
UHP_DEFAULT_SPIN = 256
UHP_EXCL_RINGS_MAX = 64

UHP_REC_F_KERNEL = 1 << 0
UHP_REC_F_DISCARD = 1 << 1

UHP_CREATE_NODE = 1 << 0
UHP_CREATE_CONSUMER = 1 << 1
UHP_CREATE_KERNEL_RINGS = 1 << 2
UHP_CREATE_AUTO_UNLINK = 1 << 3
UHP_CREATE_CONSUME_ONLY = 1 << 4

UHP_ATTACH_CONSUMER = 1 << 0
UHP_ATTACH_RDONLY = 1 << 1
UHP_ATTACH_CONSUME_ONLY = 1 << 2

UHP_LIST_MAX = 1024
UHP_LIST_F_AUTO_UNLINK = 1 << 0
UHP_LIST_F_KERNEL_RINGS = 1 << 1
UHP_LIST_F_CONSUMER = 1 << 2

UHP_FEAT_NUMA_RINGS = 1 << 0
UHP_FEAT_DOUBLE_MAP = 1 << 1
UHP_FEAT_NEED_WAKEUP = 1 << 2
UHP_FEAT_KERNEL_SEND = 1 << 3
UHP_FEAT_VERIFY = 1 << 4
UHP_FEAT_KERNEL_RINGS = 1 << 5
UHP_FEAT_URING_CMD = 1 << 6
UHP_FEAT_MEMLOCK = 1 << 7
UHP_FEAT_AUTO_UNLINK = 1 << 8
UHP_FEAT_CONS_OWNER = 1 << 9
UHP_FEAT_SCOPE_IPC_NS = 1 << 10
UHP_FEAT_SCOPE_USER_NS = 1 << 11
UHP_FEAT_ATTACH_RDONLY = 1 << 12
UHP_FEAT_LIST = 1 << 13
UHP_FEAT_EXCL_RINGS = 1 << 14
UHP_FEAT_HANGUP = 1 << 15

UHP_COPY_GENERIC = 0
UHP_COPY_ERMS = 1
UHP_COPY_AVX2 = 2
UHP_COPY_AVX512 = 3

UHP_INFO_F_CONSUMER = 1 << 0
UHP_INFO_F_RDONLY = 1 << 1
UHP_INFO_F_CONSUME_ONLY = 1 << 2

UHP_OPEN_CREATE = 1 << 0
UHP_OPEN_EXCL = 1 << 1
UHP_OPEN_CONSUMER = 1 << 2
UHP_OPEN_RDONLY = 1 << 3
UHP_OPEN_KERNEL_RINGS = 1 << 4
UHP_OPEN_ONE_NODE = 1 << 5
UHP_OPEN_DEVICE = 1 << 6
UHP_OPEN_ARENA = 1 << 7

UHP_RING_F_KERNEL = 1 << 0
UHP_RING_F_EXCL = 1 << 1
UHP_RING_F_CLAIMED = 1 << 2


def rec_total(length):
    """UHP_REC_TOTAL(len): bytes a record of `length` payload bytes occupies."""
    return (length + UHP_REC_HDR_SIZE + UHP_REC_ALIGN - 1) & ~(UHP_REC_ALIGN - 1)


# ---- structures (field for field as in the headers) ----

class struct_uhp_create_opts(Structure):
    _fields_ = [
        ("ring_size", c_uint64),
        ("mode", c_uint32),
        ("node", c_int),
        ("consumer", c_bool),
        ("kernel_rings", c_bool),
        ("excl_rings", c_uint),
    ]


class struct_uhp_meta(Structure):
    _fields_ = [
        ("seq", c_uint64),
        ("src", c_uint32),
        ("dst", c_uint32),
        ("type", c_uint16),
        ("flags", c_uint16),
        ("ring", c_uint32),
    ]


class struct_uhp_txn(Structure):
    _fields_ = [
        ("payload", c_void_p),
        ("len", c_uint32),
        ("ring", c_uint32),
        ("pos", c_uint64),
    ]


class struct_uhp_rx(Structure):
    _fields_ = [
        ("payload", c_void_p),
        ("len", c_uint32),
        ("meta", struct_uhp_meta),
        ("pos", c_uint64),
        ("crc", c_uint32),
        ("pad_", c_uint32),
    ]


class struct_uhp_iov_msg(Structure):
    _fields_ = [
        ("buf", c_void_p),
        ("len", c_uint32),
        ("meta", struct_uhp_meta),
    ]


class struct_uhp_rx_msg(Structure):
    _fields_ = [
        ("buf", c_void_p),
        ("cap", c_uint32),
        ("len", c_uint32),
        ("meta", struct_uhp_meta),
    ]


class struct_uhp_stats(Structure):
    _fields_ = [
        ("sent", c_uint64),
        ("received", c_uint64),
        ("crc_errors", c_uint64),
        ("stalled_skips", c_uint64),
        ("notifies", c_uint64),
    ]


class struct_uhp_ring_info(Structure):
    _fields_ = [
        ("node", c_int32),
        ("flags", c_uint32),
        ("prod_off", c_uint64),
        ("cons_off", c_uint64),
        ("data_off", c_uint64),
        ("kernel_full", c_uint64),
        ("kernel_corrupt", c_uint64),
    ]


class struct_uhp_info(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("flags", c_uint32),
        ("abi_version", c_uint32),
        ("nr_rings", c_uint32),
        ("features", c_uint64),
        ("data_size", c_uint64),
        ("page_size", c_uint32),
        ("copy_path", c_uint32),
        ("mode", c_uint32),
        ("uid", c_uint32),
        ("gid", c_uint32),
        ("rings_cap", c_uint32),
        ("rings_uptr", c_uint64),
        ("name", c_char * UHP_NAME_MAX),
        ("__reserved", c_uint64 * 2),
    ]


class struct_uhp_list_entry(Structure):
    _fields_ = [
        ("name", c_char * UHP_NAME_MAX),
        ("uid", c_uint32),
        ("gid", c_uint32),
        ("mode", c_uint32),
        ("flags", c_uint32),
        ("nr_rings", c_uint32),
        ("nr_fds", c_uint32),
        ("data_size", c_uint64),
        ("ring_bytes", c_uint64),
        ("consumer_pid", c_uint32),     # UHP_LIST_ENTRY_SIZE_VER1
        ("nr_writers", c_uint32),
        ("scope_inum", c_uint32),
        ("__pad0", c_uint32),
    ]


class struct_uhp_open_opts(Structure):
    _fields_ = [
        ("size", c_uint32),
        ("flags", c_uint32),
        ("ring_size", c_uint64),
        ("mode", c_uint32),
        ("node", c_uint32),
        ("excl_rings", c_uint32),
        ("spin", c_uint32),
        ("stall_timeout_ns", c_uint64),
    ]


# Structures the binding passes to libuhp, by their C names (test_abi.py).
STRUCTS = (struct_uhp_create_opts, struct_uhp_meta, struct_uhp_txn,
           struct_uhp_rx, struct_uhp_iov_msg, struct_uhp_rx_msg,
           struct_uhp_stats, struct_uhp_ring_info, struct_uhp_info,
           struct_uhp_list_entry, struct_uhp_open_opts)

# ---- loading ----

_NOT_FOUND = (
    "uhp: cannot load libuhp (soname libuhp.so.0): {why}. Set the environment "
    "variable UHP_LIB to the library's path, e.g. "
    "UHP_LIB=/path/to/uhp/build/userlib/libuhp.so.0 (built by `make lib`), "
    "or install libuhp where the dynamic linker finds it.")


def _load():
    path = os.environ.get("UHP_LIB")
    if path:
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            raise ImportError(_NOT_FOUND.format(
                why="UHP_LIB=%r does not load (%s)" % (path, e))) from None
    tried = []
    # The soname first (LD_LIBRARY_PATH, ld.so.cache); find_library() runs
    # ldconfig/gcc, slow, so only after.
    for name in ("libuhp.so.0", None):
        if name is None:
            name = ctypes.util.find_library("uhp")
            if not name:
                break
        try:
            return ctypes.CDLL(name)
        except OSError as e:
            tried.append("%s: %s" % (name, e))
    raise ImportError(_NOT_FOUND.format(
        why="UHP_LIB is not set and the dynamic linker has none (%s)"
        % "; ".join(tried)))


lib = _load()
fast = ctypes.PyDLL(lib._name, handle=lib._handle)
LIB_PATH = lib._name

version = lib.uhp_version
version.argtypes = []
version.restype = c_uint
_v = version()
if (_v >> 16) != UHP_VERSION_MAJOR or ((_v >> 8) & 0xFF) < UHP_VERSION_MINOR_MIN:
    raise ImportError("uhp: %s is version %d.%d.%d; this binding needs %d.%d or "
                      "a later %d.x (set UHP_LIB to another build)"
                      % (LIB_PATH, _v >> 16, (_v >> 8) & 0xFF, _v & 0xFF,
                         UHP_VERSION_MAJOR, UHP_VERSION_MINOR_MIN,
                         UHP_VERSION_MAJOR))


def _proto(handle, name, restype, argtypes):
    f = getattr(handle, name)
    f.restype = restype
    if argtypes is not None:
        f.argtypes = argtypes
    return f


_P = POINTER
_ch = c_void_p      # struct uhp_channel *

# Control and blocking calls: GIL released, argtypes checked.
uhp_open = _proto(lib, "uhp_open", c_int, [])
uhp_create = _proto(lib, "uhp_create", c_int,
                    [c_int, ctypes.c_char_p, _P(struct_uhp_create_opts),
                     _P(c_void_p)])
uhp_attach = _proto(lib, "uhp_attach", c_int,
                    [c_int, ctypes.c_char_p, c_uint, _P(c_void_p)])
uhp_list = _proto(lib, "uhp_list", c_int,
                  [c_int, c_uint, _P(struct_uhp_list_entry), c_uint, _P(c_uint)])
uhp_unlink = _proto(lib, "uhp_unlink", c_int, [c_int, ctypes.c_char_p])
uhp_info = _proto(lib, "uhp_info", c_int,
                  [_ch, _P(struct_uhp_info), _P(struct_uhp_ring_info), c_uint])
uhp_close = _proto(lib, "uhp_close", None, [_ch])
uhp_channel_fd = _proto(lib, "uhp_channel_fd", c_int, [_ch])
uhp_nr_rings = _proto(lib, "uhp_nr_rings", c_uint, [_ch])
uhp_ring_fill = _proto(lib, "uhp_ring_fill", c_int,
                       [_ch, c_uint, _P(c_uint64), _P(c_uint64)])
uhp_notify = _proto(lib, "uhp_notify", c_int, [_ch])
uhp_kernel_send = _proto(lib, "uhp_kernel_send", c_int,
                         [_ch, c_uint, c_void_p, c_uint32, _P(struct_uhp_meta),
                          _P(c_uint64)])
uhp_verify = _proto(lib, "uhp_verify", c_int,
                    [_ch, c_uint, c_uint64, _P(c_uint32), _P(c_uint32)])
uhp_set_producer_ring = _proto(lib, "uhp_set_producer_ring", c_int, [_ch, c_uint])
uhp_producer_ring = _proto(lib, "uhp_producer_ring", c_uint, [_ch])
uhp_claim_ring = _proto(lib, "uhp_claim_ring", c_int, [_ch])
uhp_wait = _proto(lib, "uhp_wait", c_int, [_ch, c_int])
uhp_prepare_sleep = _proto(lib, "uhp_prepare_sleep", c_int, [_ch])
uhp_end_sleep = _proto(lib, "uhp_end_sleep", None, [_ch])
uhp_recv_wait = _proto(lib, "uhp_recv_wait", c_ssize_t,
                       [_ch, c_void_p, c_size_t, _P(struct_uhp_meta), c_int])
uhp_send_wait = _proto(lib, "uhp_send_wait", c_int,
                       [_ch, c_void_p, c_uint32, c_void_p, c_int])
uhp_arena_create = _proto(lib, "uhp_arena_create", c_int,
                          [ctypes.c_char_p, _P(struct_uhp_create_opts),
                           _P(c_void_p)])
uhp_arena_attach = _proto(lib, "uhp_arena_attach", c_int,
                          [ctypes.c_char_p, c_uint, _P(c_void_p)])
uhp_arena_unlink = _proto(lib, "uhp_arena_unlink", c_int, [ctypes.c_char_p])
uhp_set_stall_timeout_ns = _proto(lib, "uhp_set_stall_timeout_ns", None,
                                  [_ch, c_uint64])
uhp_stats = _proto(lib, "uhp_stats", c_int, [_ch, _P(struct_uhp_stats)])
uhp_crc32c = _proto(lib, "uhp_crc32c", c_uint32, [c_uint32, c_void_p, c_size_t])
# Newer calls: None when the loaded library predates them.
def _optional(name, restype, argtypes):
    return _proto(lib, name, restype, argtypes) if hasattr(lib, name) else None


uhp_set_spin = _optional("uhp_set_spin", None, [_ch, c_uint])
uhp_open_channel = _optional("uhp_open_channel", c_int,
                             [ctypes.c_char_p, _P(struct_uhp_open_opts),
                              _P(c_void_p)])
uhp_channel_kind = _optional("uhp_channel_kind", ctypes.c_char_p, [_ch])

# Data path: GIL held, no argtypes (pass c_void_p/ctypes objects).
f_send = _proto(fast, "uhp_send", c_int, None)
f_send_batch = _proto(fast, "uhp_send_batch", c_int, None)
f_reserve = _proto(fast, "uhp_reserve", c_int, None)
f_commit = _proto(fast, "uhp_commit", c_int, None)
f_discard = _proto(fast, "uhp_discard", c_int, None)
f_recv = _proto(fast, "uhp_recv", c_ssize_t, None)
f_recv_batch = _proto(fast, "uhp_recv_batch", c_int, None)
f_peek = _proto(fast, "uhp_peek", c_int, None)
f_release = _proto(fast, "uhp_release", c_int, None)
# libuhp 0.3: None with an older library (peek_batch() says so).
f_peek_batch = (_proto(fast, "uhp_peek_batch", c_int, None)
                if hasattr(lib, "uhp_peek_batch") else None)
f_release_batch = (_proto(fast, "uhp_release_batch", c_int, None)
                   if hasattr(lib, "uhp_release_batch") else None)

# A memoryview straight over libuhp's memory (no owner object): the binding
# releases it itself when the memory stops being ours.
PyBUF_READ = 0x100
PyBUF_WRITE = 0x200
memview = ctypes.pythonapi.PyMemoryView_FromMemory
memview.restype = ctypes.py_object
memview.argtypes = [c_void_p, c_ssize_t, c_int]
