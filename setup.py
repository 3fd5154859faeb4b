"""The build (pyproject.toml has the metadata): copyjit is Python, and the
compiler's hottest modules (copyjit/native.py's MODULES) are compiled with
mypyc as well, when it can, so that a hot loop becomes native code sooner.
Without a C compiler, or with COPYJIT_PURE=1, or if mypyc fails, the
install goes on without them: the same modules run as Python.

After a build, copyjit/_native_sources.py holds each compiled source's
digest (and size and modification time, which spare reading it while they
hold): a module whose source changed since is imported from its source.
In a checkout, `pip install -e .` again rebuilds them.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

NATIVE = runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "copyjit", "native.py"))
MODULES: tuple[str, ...] = NATIVE["MODULES"]


def _skip(why: str) -> None:
    print(f"copyjit: the compiler's modules stay pure Python: {why}", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext that gives up quietly (the modules run as Python), and
    writes the digests of what it compiled."""

    def run(self) -> None:
        if not self.extensions:
            return
        try:
            super().run()
        except Exception as error:  # no C compiler, a compile error: Python will do
            _skip(f"{type(error).__name__}: {error}")
            return
        package = os.path.join("." if self.inplace else self.build_lib, "copyjit")
        digest, stamp = NATIVE["digest"], NATIVE["stamp"]
        digests, stamps = [], []
        for module in MODULES:
            path = NATIVE["source"](module, "copyjit")
            with open(path, "rb") as file:
                digests.append(f"    {module!r}: {digest(file.read())!r},\n")
            stamps.append(f"    {module!r}: {stamp(path)!r},\n")
        with open(os.path.join(package, "_native_sources.py"), "w") as file:
            file.write('"""Written by setup.py: the digests of the sources it compiled, and their\n'
                       'sizes and modification times (ns) then."""\n\n'
                       "DIGESTS = {\n" + "".join(digests) + "}\n"
                       "STAMPS = {\n" + "".join(stamps) + "}\n")


def _extensions() -> list[Any]:
    if NATIVE["pure_requested"]():
        _skip("COPYJIT_PURE=1")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _skip("mypyc is not installed")
        return []
    paths = [NATIVE["source"](module, "copyjit") for module in MODULES]
    # mypyc type-checks first: its cache apart from the checkout's own
    # .mypy_cache, which a later `mypy` would otherwise trust (the build's
    # mypy, in pip's isolated environment, is not the checkout's).
    os.environ["MYPY_CACHE_DIR"] = os.path.join("build", "mypyc-cache")
    try:
        return list(mypycify(paths, opt_level="3", group_name="copyjit"))
    except BaseException as error:  # (mypyc exits on a type error)
        _skip(f"mypyc: {type(error).__name__}: {error}")
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
