"""One sample of `python -m copyjit bench`: a fresh process that calls one
benchmark's function `loops` times and prints what it measured as one line
of JSON.

    python copyjit/bench_worker.py '{"mode": ..., "dir": ..., "name": ..., "size": ..., "loops": ...}'

Modes: "cpython" (copyjit is not even imported), "copyjit" (`import
copyjit; copyjit.enable()` first, as `python -m copyjit run` does, timed
apart as `setup_seconds`), "numba" (every function of the benchmark's
module replaced by `numba.njit` of it; a kernel numba cannot compile is
reported as `unsupported`). pypy3 runs the "cpython" mode. Run as a script
by path, never imported by copyjit, and written for Python 3.9 so that
pypy3 can run it.

The first call is the warm-up (in a fresh process, with the JIT's
compiles); the others are the steady state. Every call's result is
checked against the suite's EXPECTED.
"""

from __future__ import annotations

import importlib.util
import json
import resource
import sys
import time
import types
from typing import Any

if sys.path and sys.path[0].endswith("copyjit"):  # run by path: copyjit's own modules are not the program's
    del sys.path[0]


def load(directory: str, module: str) -> types.ModuleType:
    """benchmarks/<module>.py, imported under its own name."""
    spec = importlib.util.spec_from_file_location(module, f"{directory}/{module}.py")
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[module] = loaded
    spec.loader.exec_module(loaded)
    return loaded


def numba_compile(module: types.ModuleType) -> None:
    """Replace each function of the module by numba's njit of it (compiled
    at its first call: a kernel it cannot type fails there)."""
    import numba  # type: ignore[import-not-found,import-untyped,unused-ignore]

    for name, value in list(vars(module).items()):
        if isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
            setattr(module, name, numba.njit(value))


def jit_compile_seconds(stats: dict[str, Any] | None) -> float:
    return sum(stats["compile_seconds"]) if stats else 0.0


def sample(config: dict[str, Any]) -> dict[str, Any]:
    mode = config["mode"]
    start = time.perf_counter()
    stats = None
    if mode == "copyjit":
        import copyjit

        copyjit.enable()
        stats = copyjit.stats
    setup = time.perf_counter() - start
    sys.path.insert(0, config["dir"])
    suite = load(config["dir"], "suite")
    benchmark = suite.SUITE[config["name"]]
    expected = suite.EXPECTED[config["name"]][config["size"]]
    module = load(config["dir"], benchmark.module)
    if mode == "numba":
        numba_compile(module)
    function = getattr(module, benchmark.function)
    times: list[float] = []
    compiling: list[float] = []  # the JIT's hot-to-native time in each call
    started = time.perf_counter()
    for _ in range(config["loops"]):
        before = jit_compile_seconds(stats() if stats else None)
        start = time.perf_counter()
        try:
            result = function(config["size"])
        except Exception as error:
            if mode == "numba" and not times:  # numba could not compile it (its errors, or its asserts)
                first_line = (str(error).splitlines() or [""])[0]
                return {"unsupported": f"{type(error).__name__}: {first_line}"}
            raise
        times.append(time.perf_counter() - start)
        compiling.append(jit_compile_seconds(stats() if stats else None) - before)
        if not suite.same(result, expected):
            return {"error": f"wrong result: {result!r}, expected {expected!r}"}
    first = stats()["first_trace_at"] if stats else None
    return {"times": times, "setup_seconds": setup, "compile_seconds_per_call": compiling,
            # from the first call to the first trace installed (its first native iteration follows)
            "first_native_seconds": None if first is None else first - started,
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "jit": stats() if stats else None}


if __name__ == "__main__":
    print(json.dumps(sample(json.loads(sys.argv[1]))))
