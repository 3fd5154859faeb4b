"""The stencil table of the running interpreter and target.

The table is generated at development time (`python -m copyjit stencils
--build`) and shipped in the package as JSON Lines, one file per target and
CPython minor version: a header line, read at start-up (the runtime's own
functions are in it, and an index of the lines), then one line per
stencil, sorted by name. Beside it, the same stencils in binary
(`.stencils`, Table.render_records), which a process reads whole at its
first trace and parses a stencil of when first used: ~0.4 ms, and a few µs
a stencil, where the JSON lines cost ~40 µs a stencil (a millisecond or two
of a fresh process's first traces). Without that file, the lines are read.
(Not a Python module: that took ~50 ms to import where bytecode is not
cached.) `python -m copyjit stencils --check` proves both match the C
sources and the pinned clang.
"""

from __future__ import annotations

import os
import sys

from copyjit.stencil import Table


class UnsupportedPlatform(ImportError):
    """No stencils are shipped for this interpreter and machine."""


def _machine() -> tuple[str, str]:
    """platform.machine() and platform.system(), without importing platform
    (which imports re: ~10 ms of start-up)."""
    if not hasattr(os, "uname"):  # Windows: unsupported, but say so by name
        import platform

        return platform.machine(), platform.system()
    uname = os.uname()
    return uname.machine, uname.sysname


def module_name() -> str:
    target = "_".join(_machine()).lower()
    major, minor = sys.version_info[:2]
    return f"{target}_cp{major}{minor}"


def path() -> str:
    # os.path, not pathlib: importing pathlib costs ~10 ms of start-up.
    return os.path.join(os.path.dirname(__file__), f"{module_name()}.jsonl")


_table: Table | None = None


def table() -> Table:
    """The table, read on first use."""
    global _table
    if _table is None:
        _table = _read()
    return _table


def _read() -> Table:
    try:
        return Table.read(path())
    except FileNotFoundError:
        raise UnsupportedPlatform(
            f"copyjit has no stencils for {module_name()} (Python {sys.version.split()[0]} on "
            f"{' '.join(_machine())}); supported: x86_64 Linux, CPython 3.13"
        ) from None
