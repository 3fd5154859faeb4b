"""The numeric kernels, timed in-process: CPython vs copyjit (and pypy3).

    python tools/kernels.py [--repeat N] [NAMES...]

Calls each kernel's function with the JIT off and on, interleaved, in one
process (so start-up is excluded; recording and compiling are included in
the first copyjit call of each repeat, since every repeat uses a new JIT;
the JIT's modules are imported in the first, from bytecode compiled
beforehand as an installed copyjit has it: see tools/bytecode.py).
The JIT watches every function of the kernel's module (a kernel's loops may
be in the functions it calls). Prints CPython time / copyjit time as median,
min and max, and the median time from hot to native code over the traces
and bridges of all repeats (the first of the first kernel pays the imports).
When `pypy3` is on the PATH, each repeat also times the same
call in a fresh pypy3 process (its warm-up included, like copyjit's) and
prints CPython time / pypy3 time beside. Not a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bytecode import compile_copyjit

compile_copyjit()  # before copyjit's modules are imported

from copyjit.trace.jit import JIT  # noqa: E402

ROOT = Path(__file__).parent.parent
KERNELS = {  # name: (file, function, argument)
    "float_accumulation": ("examples/float_accumulation.py", "total", 3_000_000),
    "int_loop": ("examples/int_loop.py", "checksum", 3_000_000),
    "nested_loops": ("examples/nested_loops.py", "table", 2_500),
    "big_ints": ("examples/big_ints.py", "digest", 50_000),
    "branchy": ("examples/branchy.py", "collatz_steps", 60_000),
    "lists": ("examples/lists.py", "sieve", 1_000_000),
    "calls": ("examples/calls.py", "integrate", 500_000),
    "matmul": ("examples/matmul.py", "checksum", 100),
    "nbody": ("benchmarks/nbody.py", "nbody", 50_000),
    "spectral_norm": ("benchmarks/spectral_norm.py", "spectral_norm", 200),
    "mandelbrot": ("benchmarks/mandelbrot.py", "mandelbrot", 400),
}
# Run by pypy3: time one call of the kernel, print the seconds and the result.
PYPY_TIMER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("kernel", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
function = getattr(module, sys.argv[2])
start = time.perf_counter()
result = function(int(sys.argv[3]))
print(time.perf_counter() - start)
print(repr(result))
"""


def load(name: str) -> tuple[Callable[..., Any], list[types.CodeType]]:
    """The kernel's function, and the code of every function in its module."""
    path, function_name, _ = KERNELS[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    codes = [value.__code__ for value in vars(module).values()
             if isinstance(value, types.FunctionType) and value.__module__ == module.__name__]
    return getattr(module, function_name), codes


def pypy_time(pypy: str, name: str, expected: object) -> float:
    path, function_name, argument = KERNELS[name]
    done = subprocess.run([pypy, "-c", PYPY_TIMER, str(ROOT / path), function_name, str(argument)],
                          capture_output=True, text=True, check=True)
    seconds, result = done.stdout.splitlines()
    if result != repr(expected):
        print(f"{name}: pypy3's result differs: {result} != {expected!r}", file=sys.stderr)
    return float(seconds)


def ratios(baseline: list[float], other: list[float]) -> str:
    each = [a / b for a, b in zip(baseline, other, strict=True)]
    return f"{statistics.median(each):>13.2f} {min(each):>6.2f} {max(each):>6.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("names", nargs="*", help="kernel names (default: all)")
    args = parser.parse_args()
    names = args.names or list(KERNELS)
    pypy = shutil.which("pypy3")
    print(f"Python {sys.version.split()[0]}, {args.repeat} interleaved repeats"
          + (f"; {pypy}" if pypy else "; no pypy3") + "\n")
    header = f"{'kernel':<32} {'CPython s':>10} {'copyjit s':>10} {'ratio median':>13} {'min':>6} {'max':>6}"
    if pypy:
        header += f" {'pypy3 s':>10} {'ratio median':>13} {'min':>6} {'max':>6}"
    header += f" {'hot to native ms (traces)':>26}"
    print(header)
    for name in names:
        function, codes = load(name)
        argument = KERNELS[name][2]
        plain, jitted, pypied, compiles = [], [], [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            expected = function(argument)
            plain.append(time.perf_counter() - start)
            jit = JIT()
            for code in codes:
                jit.enable(code)
            start = time.perf_counter()
            got = function(argument)
            jitted.append(time.perf_counter() - start)
            jit.disable()
            compiles += jit.stats.compile_seconds
            if got != expected:
                print(f"{name}: RESULTS DIFFER", file=sys.stderr)
                return 1
            if pypy:
                pypied.append(pypy_time(pypy, name, expected))
        line = (f"{name + '.' + KERNELS[name][1]:<32} {statistics.median(plain):>10.3f} "
                f"{statistics.median(jitted):>10.3f} {ratios(plain, jitted)}")
        if pypy:
            line += f" {statistics.median(pypied):>10.3f} {ratios(plain, pypied)}"
        median_compile = statistics.median(compiles) * 1e3 if compiles else float("nan")
        line += f" {median_compile:>19.2f} ({len(compiles)})"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
