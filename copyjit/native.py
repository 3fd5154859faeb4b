"""The compiler's hottest modules as native code, when they were built so.

Optimizing and lowering a trace is Python code that runs once per trace,
on the way from a hot loop to its native code: in the interpreter, n-body's
second trace took ~3 ms there, over the 2 ms budget (docs/fixed-costs.md).
setup.py compiles the modules below with mypyc (from the same annotated
source: nothing else changes), when it can: `pip install` builds them, or
`pip install -e .` again in a checkout. Where they are not
built, they run as Python, as they do everywhere with COPYJIT_PURE=1.

A built module's source may change after the build (a checkout, an edit):
the extension would then shadow the new source. So the build writes each
source's digest (copyjit/_native_sources.py), and at the first import of
one of the modules, if any source differs (or COPYJIT_PURE=1), all of them
are imported from their source instead. A source whose size and
modification time are still those of the build is not read (a checkout
built in place: ~0.1 ms for all, where reading and digesting them took
~2.8 ms of the first hot loop's way to native code). All: compiled modules call each
other natively, so a stale one would still run under a fresh one.

Self-contained (setup.py runs it on its own, for MODULES and digest).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import ModuleType

# The modules compiled: the optimizer's passes and the lowering, with what
# they use on every op (the ops themselves, the register allocator), and
# the emitter with the rows the lowering makes (asm), and the recorder (not
# trace/bytecode.py, whose instructions fetch dis's rarer fields on demand).
MODULES = ("copyjit.trace.ir", "copyjit.trace.regalloc", "copyjit.trace.lower", "copyjit.opt.rewrite",
           "copyjit.opt.passes", "copyjit.opt.borrow", "copyjit.opt.virtual", "copyjit.opt.licm",
           "copyjit.opt.licm_code", "copyjit.opt.fold", "copyjit.backend.emitter", "copyjit.backend.asm",
           "copyjit.trace.record_base",
           "copyjit.trace.recorder", "copyjit.trace.record_numbers", "copyjit.trace.record_inline")
_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def source(module: str, package: str = _PACKAGE) -> str:
    """The path of a module's source, in the package at `package`."""
    return os.path.join(package, *module.split(".")[1:]) + ".py"


def digest(data: bytes) -> str:
    """A digest of a source, that tells an edit from none (not a hash for
    adversaries): its length and its CRC-32. (zlib's import, ~0.6 ms, is
    paid only when a source's stamp differs from the build's; its value
    modulo a prime took 2.2 ms for the 310 KB of MODULES.)"""
    from zlib import crc32

    return f"{len(data)}:{crc32(data):08x}"


def stamp(path: str) -> tuple[int, int]:
    """A source's size and modification time (ns): what the build saw, until
    something writes the file (an edit, a checkout)."""
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns


def pure_requested() -> bool:
    """COPYJIT_PURE=1: run them as Python (setup.py: do not compile them)."""
    return os.environ.get("COPYJIT_PURE", "").strip() == "1"


# Why the modules run as Python, once decided (None: not yet; "": they are native).
_why_pure: str | None = None


def _decide() -> str:
    if pure_requested():
        return "COPYJIT_PURE=1"
    try:
        # (This form: where setup.py has not written it yet, as when mypyc
        # type-checks this module for the build, a missing module, not a
        # missing attribute of copyjit.)
        import copyjit._native_sources as _native_sources  # written by setup.py
    except ImportError:
        return "not built (setup.py compiles them with mypyc, when it can)"
    stamps: dict[str, tuple[int, int]] = getattr(_native_sources, "STAMPS", {})
    for module in MODULES:
        path = source(module)
        try:
            if stamps.get(module) == stamp(path):
                continue
            with open(path, "rb") as file:
                data = file.read()
        except OSError:
            continue  # (an install without sources: what was built is what there is)
        if _native_sources.DIGESTS.get(module) != digest(data):
            return f"{path} changed since it was compiled (pip install -e . builds it again)"
    return ""


def status() -> str:
    """How the compiler's modules run: "native (mypyc)", or why in Python."""
    global _why_pure
    if _why_pure is None:
        _why_pure = _decide()
    return f"pure Python: {_why_pure}" if _why_pure else "native (mypyc)"


def _left_over(module: str) -> bool:
    """Whether an extension of a module not in MODULES sits beside its source."""
    path = source(module)
    if not os.path.exists(path):  # a package, or not copyjit's
        return False
    import _imp  # builtin

    stem = path[: -len(".py")]
    return any(os.path.exists(stem + suffix) for suffix in _imp.extension_suffixes())


class _SourceFinder:
    """On sys.meta_path, ahead of the path finder (which prefers an
    extension to a source): MODULES from their source, when they must be."""

    @staticmethod
    def find_spec(name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if name in MODULES:
            status()
            from_source = bool(_why_pure)
        else:
            # An extension left by an older build of a module no longer
            # compiled (a checkout) would shadow its source: the source.
            from_source = name.startswith("copyjit.") and _left_over(name)
        if not from_source:
            return None
        from importlib.util import spec_from_file_location

        return spec_from_file_location(name, source(name))


def install() -> None:
    """Put the finder first on sys.meta_path (copyjit/__init__.py, before
    any of MODULES is imported)."""
    if not any(finder is _SourceFinder for finder in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder)
