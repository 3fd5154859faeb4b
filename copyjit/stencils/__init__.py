"""The stencil table of the running interpreter and target.

The table is generated at development time (`python -m copyjit stencils
--build`) and shipped in the package as JSON Lines, one file per target and
CPython minor version: a header line, parsed at start-up, then one line per
stencil, parsed when first used. (Not a Python module: that took ~50 ms to
import where bytecode is not cached.) `python -m copyjit stencils --check`
proves it matches the C sources and the pinned clang.
"""

from __future__ import annotations

import functools
import os
import platform
import sys

from copyjit.stencil import Table


class UnsupportedPlatform(ImportError):
    """No stencils are shipped for this interpreter and machine."""


def module_name() -> str:
    target = f"{platform.machine()}_{platform.system()}".lower()
    major, minor = sys.version_info[:2]
    return f"{target}_cp{major}{minor}"


def path() -> str:
    # os.path, not pathlib: importing pathlib costs ~10 ms of start-up.
    return os.path.join(os.path.dirname(__file__), f"{module_name()}.jsonl")


@functools.cache
def table() -> Table:
    name = module_name()
    try:
        with open(path()) as file:
            text = file.read()
    except FileNotFoundError:
        raise UnsupportedPlatform(
            f"copyjit has no stencils for {name} (Python {sys.version.split()[0]} on "
            f"{platform.machine()} {platform.system()}); supported: x86_64 Linux, CPython 3.13"
        ) from None
    return Table.from_jsonl(text)
