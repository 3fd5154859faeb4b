"""`python -m copyjit run`: run a script or module as `python` would, with the JIT on."""

from __future__ import annotations

import importlib.util
import io
import os
import runpy  # already imported: `python -m` runs copyjit through it
import sys

import copyjit

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import CodeType, TracebackType

_OURS = (os.path.dirname(os.path.abspath(copyjit.__file__)), "<frozen runpy>", runpy.__file__)


def _strip(tb: TracebackType | None) -> TracebackType | None:
    """Drop the frames of copyjit and runpy above the program's own, so the
    traceback reads as under plain `python`."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_OURS):
        tb = tb.tb_next
    return tb


def _report(stats_to_stderr: bool, stats_json: str | None) -> None:
    data = copyjit.stats()
    if stats_json:
        import json  # loaded by run() before the program could shadow it

        with open(stats_json, "w") as file:
            json.dump(data, file, indent=2)
    if stats_to_stderr:
        aborts = ", ".join(f"{reason} ({n})" for reason, n in data["aborts"].items()) or "none"
        compiles = data["compile_seconds"]
        hot = "none"
        if compiles:
            own = [c - i for c, i in zip(compiles, data["compile_import_seconds"], strict=True)]
            hot = (f"median {_median(compiles) * 1e3:.1f} ms over {len(compiles)}, "
                   f"{_median(own) * 1e3:.1f} ms without loading the JIT's compiler "
                   f"({data['import_seconds'] * 1e3:.1f} ms, once)")
        print(f"copyjit: {data['traces']} traces, {data['bridges']} bridges, "
              f"{data['inlined_loops']} nested loops inlined, "
              f"{data['native_entries']} native entries, {data['exits']} exits; "
              f"recording {data['recording_seconds'] * 1e3:.1f} ms, optimizing "
              f"{data['optimizing_seconds'] * 1e3:.1f} ms, emitting "
              f"{data['emitting_seconds'] * 1e3:.1f} ms; hot to native: {hot}; aborts: {aborts}; "
              f"compiler: {data['compiler']}",
              file=sys.stderr)
        if data.get("calls"):
            calls = ", ".join(f"{what} ({n})" for what, n in data["calls"].items())
            print(f"copyjit: calls in traces: {calls}", file=sys.stderr)
        if data.get("guards_forced"):
            forced = ", ".join(f"{kind} ({n})" for kind, n in sorted(data["guards_forced"].items()))
            print(f"copyjit: guards made to fail (COPYJIT_FAIL_GUARDS): {forced}", file=sys.stderr)


def _median(values: list[float]) -> float:
    """statistics.median, which is not worth its imports (fractions, decimal, random) at exit."""
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _importer(path: str) -> object | None:
    """pkgutil.get_importer(path): a finder when `path` is a directory or a
    zip archive, None for a plain file."""
    try:
        return sys.path_importer_cache[path]
    except KeyError:
        pass
    for hook in sys.path_hooks:
        try:
            return sys.path_importer_cache.setdefault(path, hook(path))
        except ImportError:
            pass
    return None


def _run_path(path: str) -> None:
    """runpy.run_path(path, run_name="__main__"), which imports pkgutil (and
    with it functools, collections and typing: ~8 ms, as much as the rest
    of copyjit's start-up) to tell a source file from a directory, a zip
    archive or a .pyc. A source file that compiles is run here by runpy's
    own code; anything else (and every error) goes to run_path as before."""
    code = _source_code(path) if _importer(path) is None else None
    if code is None:
        runpy.run_path(path, run_name="__main__")
    else:
        runpy._run_module_code(code, None, "__main__", pkg_name="", script_name=path)  # type: ignore[attr-defined]


def _source_code(path: str) -> CodeType | None:
    """The code of a Python source file, as run_path compiles it; None for a
    .pyc or a file that cannot be read or compiled."""
    try:
        with io.open_code(path) as file:
            source = file.read()
        if source[:4] == importlib.util.MAGIC_NUMBER:
            return None
        return compile(source, path, "exec")
    except (OSError, SyntaxError, ValueError):  # ValueError: a null byte
        return None


def run(target: str, args: list[str], module: bool, threshold: int | None,
        stats_to_stderr: bool, stats_json: str | None, no_opt: Sequence[str] = (),
        at_end: Callable[[], None] | None = None) -> int:
    """`at_end`: called once the program is done (explain's report)."""
    if stats_json:  # imported before the program's directory is on the path
        import json  # noqa: F401
    sys.argv = [target, *args]
    if not module:  # as `python SCRIPT`: an absolute __file__, its directory first on the path
        target = os.path.abspath(target)
        sys.path[0] = os.path.dirname(target)
    copyjit.enable(threshold, no_opt)
    try:
        if module:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            _run_path(target)
    except SystemExit:
        raise
    except BaseException as error:
        copyjit.disable()
        # Since 3.12 excepthook prints the exception's own __traceback__.
        error.__traceback__ = _strip(error.__traceback__) or error.__traceback__
        sys.excepthook(type(error), error, error.__traceback__)
        if isinstance(error, KeyboardInterrupt):  # die by SIGINT, as python does
            # _signal, not signal: builtin, so loaded already and never a
            # module of the program's that shadows it; signal imports enum.
            import _signal

            _report(stats_to_stderr, stats_json)
            if at_end is not None:
                at_end()
            sys.stdout.flush()
            _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
            os.kill(os.getpid(), _signal.SIGINT)
        return 1
    finally:
        copyjit.disable()
        _report(stats_to_stderr, stats_json)
        if at_end is not None:
            at_end()
    return 0
