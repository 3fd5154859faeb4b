"""The stencil table of the running interpreter and target.

The table is generated at development time (`python -m copyjit stencils
--build`) and shipped in the package, one module per target and CPython
minor version; `python -m copyjit stencils --check` proves it matches the C
sources and the pinned clang.
"""

from __future__ import annotations

import functools
import importlib
import platform
import sys

from copyjit.stencil import Table


class UnsupportedPlatform(ImportError):
    """No stencils are shipped for this interpreter and machine."""


def module_name() -> str:
    target = f"{platform.machine()}_{platform.system()}".lower()
    major, minor = sys.version_info[:2]
    return f"{target}_cp{major}{minor}"


@functools.cache
def table() -> Table:
    name = module_name()
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError:
        raise UnsupportedPlatform(
            f"copyjit has no stencils for {name} (Python {sys.version.split()[0]} on "
            f"{platform.machine()} {platform.system()}); supported: x86_64 Linux, CPython 3.13"
        ) from None
    return Table.from_module(module)
