# SPDX-License-Identifier: MIT
"""The ctypes structures and constants against the C headers: a C program
prints every offset and size (and #define), Python compares."""
import ctypes
import shutil
import subprocess

import pytest

import uhp
from uhp import _capi
from conftest import ROOT

CC = shutil.which("cc") or shutil.which("gcc")


def _compile_and_run(tmp_path, body):
    if CC is None:
        pytest.fail("no C compiler (cc/gcc) to check the ABI with")
    src = tmp_path / "abi.c"
    src.write_text("#include <stddef.h>\n#include <stdio.h>\n#include <uhp.h>\n"
                   "int main(void)\n{\n" + body + "\treturn 0;\n}\n")
    exe = tmp_path / "abi"
    subprocess.run([CC, "-std=gnu11", "-Wall", "-Werror",
                    "-I", str(ROOT / "userlib"), "-I", str(ROOT / "uapi"),
                    str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True)
    return dict(line.rsplit(" ", 1) for line in out.stdout.splitlines())


def test_structs_match_c_layout(tmp_path):
    body = ""
    expect = {}
    for cls in _capi.STRUCTS:
        cname = cls.__name__[len("struct_"):]
        body += '\tprintf("%s sizeof %%zu\\n", sizeof(struct %s));\n' % (cname, cname)
        body += '\tprintf("%s alignof %%zu\\n", _Alignof(struct %s));\n' % (cname, cname)
        expect["%s sizeof" % cname] = ctypes.sizeof(cls)
        expect["%s alignof" % cname] = ctypes.alignment(cls)
        for fname, ftype in cls._fields_:
            body += ('\tprintf("%s.%s %%zu\\n", offsetof(struct %s, %s));\n'
                     % (cname, fname, cname, fname))
            body += ('\tprintf("%s.%s:size %%zu\\n", sizeof(((struct %s *)0)->%s));\n'
                     % (cname, fname, cname, fname))
            expect["%s.%s" % (cname, fname)] = getattr(cls, fname).offset
            expect["%s.%s:size" % (cname, fname)] = ctypes.sizeof(ftype)
    got = {k: int(v) for k, v in _compile_and_run(tmp_path, body).items()}
    assert got == expect


def test_structs_cover_every_field(tmp_path):
    """No field left out: the sum of field sizes plus padding the C compiler
    reports equals sizeof (checked above), and every struct the binding
    passes to libuhp is in STRUCTS."""
    names = {c.__name__ for c in _capi.STRUCTS}
    for attr in dir(_capi):
        obj = getattr(_capi, attr)
        if isinstance(obj, type) and issubclass(obj, ctypes.Structure) \
                and obj is not ctypes.Structure:
            assert obj.__name__ in names


def test_constants_match_headers(tmp_path):
    consts = {k: v for k, v in vars(_capi).items()
              if k.startswith("UHP_") and isinstance(v, int)
              and k != "UHP_VERSION_MINOR_MIN"}
    body = "".join(
        '#ifdef %s\n\tprintf("%s %%llu\\n", (unsigned long long)(%s));\n'
        '#else\n\tprintf("%s missing\\n");\n#endif\n' % (k, k, k, k)
        for k in consts)
    got = _compile_and_run(tmp_path, body)
    assert {k: got[k] for k in consts} == {k: str(v) for k, v in consts.items()}


def test_library_reports_c_sizes(arena):
    """uhp_info() fills in size = sizeof(struct uhp_info) of the library."""
    ch = arena.create(consumer=True, ring_size=1 << 16)
    out = _capi.struct_uhp_info()
    assert _capi.uhp_info(ch._p, ctypes.byref(out), None, 0) == 0
    assert out.size == ctypes.sizeof(_capi.struct_uhp_info)
    assert out.abi_version == _capi.UHP_ABI_VERSION
    ch.close()


def test_rec_total_matches_macro(tmp_path):
    lens = [0, 1, 23, 24, 25, 64, 88, 89, 1000, 65536]
    body = "".join('\tprintf("%d %%llu\\n", (unsigned long long)UHP_REC_TOTAL(%d));\n'
                   % (n, n) for n in lens)
    got = _compile_and_run(tmp_path, body)
    assert {int(k): int(v) for k, v in got.items()} == \
        {n: uhp.rec_total(n) for n in lens}
