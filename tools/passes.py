"""What each optimizer pass is worth: every kernel with one pass off vs all on.

    python tools/passes.py [--repeat N] [KERNELS...]

For each kernel of tools/kernels.py, in one process, interleaved: the
JIT with every pass on, with each pass off in turn, and with none
(`--no-opt all`). Prints time(pass off) / time(all on) as median (min-max):
above 1 means the pass makes the kernel faster. Results are checked equal.
Register allocation is part of the lowering, not a pass: it is on in every
column. Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types

from bytecode import compile_copyjit

compile_copyjit()

from kernels import KERNELS, load  # noqa: E402

from copyjit.opt import PIPELINE  # noqa: E402
from copyjit.trace.jit import JIT  # noqa: E402

CONFIGS = {"all on": frozenset(), **{f"-{name}": frozenset({name}) for name in PIPELINE},
           "none": frozenset(PIPELINE)}


def timed(function: object, codes: list[types.CodeType], argument: int,
          off: frozenset[str]) -> tuple[float, object]:
    jit = JIT(opt_off=off)
    for code in codes:  # a kernel's loops may be in the functions it calls
        jit.enable(code)
    start = time.perf_counter()
    result = function(argument)  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    jit.disable()
    return elapsed, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    names = args.names or list(KERNELS)
    print(f"Python {sys.version.split()[0]}, {args.repeat} interleaved repeats; "
          "time with the pass off / time with all on: median (min-max)\n")
    print(f"{'kernel':<22}" + "".join(f"{c:>20}" for c in CONFIGS if c != "all on"))
    for name in names:
        function, codes = load(name)
        argument = KERNELS[name][2]
        times: dict[str, list[float]] = {c: [] for c in CONFIGS}
        expected = function(argument)
        timed(function, codes, argument, frozenset())  # the JIT's first compile pays its imports
        for _ in range(args.repeat):
            for config, off in CONFIGS.items():
                elapsed, result = timed(function, codes, argument, off)
                if result != expected:
                    print(f"{name} {config}: RESULT DIFFERS", file=sys.stderr)
                    return 1
                times[config].append(elapsed)
        base = times["all on"]
        cells = []
        for config in CONFIGS:
            if config == "all on":
                continue
            ratios = [t / b for t, b in zip(times[config], base, strict=True)]
            cells.append(f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
        print(f"{name:<22}" + "".join(f"{c:>20}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
