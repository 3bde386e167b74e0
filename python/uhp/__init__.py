# SPDX-License-Identifier: MIT
"""uhp: Python binding of libuhp (ctypes; no build step).

Message channels on shared lock-free rings, through /dev/uhp (the uhp.ko
module) or through arenas (POSIX shared memory, no module):

    import uhp

    with uhp.arena_create("jobs", consumer=True) as inbox:   # unlinked on exit
        out = uhp.arena_attach("jobs")        # e.g. in another process
        out.send(b"hello", seq=1)
        print(inbox.recv_wait(timeout=1.0))   # b'hello'

    with uhp.Device() as dev:                 # /dev/uhp: same Channel API
        ch = dev.create("agent.7", consumer=True)

The library is found through the environment variable UHP_LIB (a path to
libuhp.so.0), else by its soname libuhp.so.0; importing uhp raises
ImportError naming UHP_LIB when neither loads.

Errors from the C API (negative errno values) are OSError with that errno
(so BlockingIOError for EAGAIN, TimeoutError for ETIMEDOUT,
FileNotFoundError for ENOENT, FileExistsError for EEXIST, ...); the message
starts with the C function's name, also kept as `e.function`, and
`e.filename` is the channel name where there is one.

Timeouts are in seconds (float); None waits forever, 0 only looks.
"""
from . import _capi
from ._capi import (UHP_DEFAULT_MODE, UHP_DEFAULT_RING_SIZE,
                    UHP_DEFAULT_STALL_TIMEOUT_NS, UHP_EXCL_RINGS_MAX,
                    UHP_NAME_MAX, UHP_REC_F_DISCARD, UHP_REC_F_KERNEL,
                    UHP_REC_HDR_SIZE, rec_total)
from ._channel import (Channel, Device, Info, ListEntry, Meta, RingInfo,
                       Stats, VerifyResult, arena_attach, arena_create,
                       arena_unlink, crc32c, crc32c_raw, open_channel, version)

LIB_PATH = _capi.LIB_PATH

__all__ = [
    "Channel", "Device", "Info", "ListEntry", "Meta", "RingInfo", "Stats",
    "VerifyResult", "arena_attach", "arena_create", "arena_unlink",
    "open_channel",
    "crc32c", "crc32c_raw", "version", "rec_total", "LIB_PATH",
    "UHP_DEFAULT_MODE", "UHP_DEFAULT_RING_SIZE", "UHP_DEFAULT_STALL_TIMEOUT_NS",
    "UHP_EXCL_RINGS_MAX", "UHP_NAME_MAX", "UHP_REC_F_DISCARD",
    "UHP_REC_F_KERNEL", "UHP_REC_HDR_SIZE",
]
