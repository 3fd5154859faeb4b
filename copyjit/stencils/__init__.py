"""The stencil table of the running interpreter and target.

The table is generated at development time (`python -m copyjit stencils
--build`) and shipped in the package as JSON, one file per target and CPython
minor version (JSON, not a module: it loads in milliseconds even where
bytecode is not cached); `python -m copyjit stencils --check` proves it
matches the C sources and the pinned clang.
"""

from __future__ import annotations

import functools
import pathlib
import platform
import sys

from copyjit.stencil import Table


class UnsupportedPlatform(ImportError):
    """No stencils are shipped for this interpreter and machine."""


def module_name() -> str:
    target = f"{platform.machine()}_{platform.system()}".lower()
    major, minor = sys.version_info[:2]
    return f"{target}_cp{major}{minor}"


def path() -> pathlib.Path:
    return pathlib.Path(__file__).parent / f"{module_name()}.json"


@functools.cache
def table() -> Table:
    name = module_name()
    try:
        text = path().read_text()
    except FileNotFoundError:
        raise UnsupportedPlatform(
            f"copyjit has no stencils for {name} (Python {sys.version.split()[0]} on "
            f"{platform.machine()} {platform.system()}); supported: x86_64 Linux, CPython 3.13"
        ) from None
    return Table.from_json(text)
