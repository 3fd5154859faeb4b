"""The example programs' loops, timed in-process: CPython vs copyjit.

    python benchmarks/kernels.py [--repeat N]

Calls each example's function with the JIT off and on, interleaved, in one
process (so start-up is excluded; recording and compiling are included in
the first copyjit call of each repeat, since every repeat uses a new JIT;
the JIT's modules are imported in the first, from bytecode compiled
beforehand as an installed copyjit has it: see benchmarks/bytecode.py).
Prints CPython time / copyjit time as median, min and max, and the median
time from hot to native code over the traces and bridges of all repeats
(the first of the first kernel pays the imports). Not a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bytecode import compile_copyjit

compile_copyjit()  # before copyjit's modules are imported

from copyjit.trace.jit import JIT  # noqa: E402

EXAMPLES = Path(__file__).parent.parent / "examples"
KERNELS = {  # example: (function, argument)
    "float_accumulation": ("total", 3_000_000),
    "int_loop": ("checksum", 3_000_000),
    "nested_loops": ("table", 2_500),
    "big_ints": ("grow", 2_000),
    "branchy": ("collatz_steps", 60_000),
    "lists": ("sieve", 1_000_000),
    "calls": ("integrate", 500_000),
}


def load(name: str) -> Callable[..., Any]:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, KERNELS[name][0])  # type: ignore[no-any-return]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, {args.repeat} interleaved repeats\n")
    print(f"{'kernel':<32} {'CPython s':>10} {'copyjit s':>10} {'ratio median':>13} {'min':>6} {'max':>6}"
          f" {'hot to native ms (traces)':>26}")
    for name, (function_name, argument) in KERNELS.items():
        function = load(name)
        plain, jitted, compiles = [], [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            expected = function(argument)
            plain.append(time.perf_counter() - start)
            jit = JIT()
            jit.enable(function.__code__)
            start = time.perf_counter()
            got = function(argument)
            jitted.append(time.perf_counter() - start)
            jit.disable()
            compiles += jit.stats.compile_seconds
            if got != expected:
                print(f"{name}: RESULTS DIFFER", file=sys.stderr)
                return 1
        ratios = [a / b for a, b in zip(plain, jitted, strict=True)]
        print(f"{name + '.' + function_name:<32} {statistics.median(plain):>10.3f} "
              f"{statistics.median(jitted):>10.3f} {statistics.median(ratios):>13.2f} "
              f"{min(ratios):>6.2f} {max(ratios):>6.2f} "
              f"{statistics.median(compiles) * 1e3 if compiles else float('nan'):>19.2f} ({len(compiles)})",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
