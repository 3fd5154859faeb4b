"""The cost of entering and leaving a trace: a loop of k iterations, called
over and over, under copyjit (threshold 2, the short-loop rule off) against
an identical function the JIT does not watch, interleaved in one process.

    python tools/entry.py

Prints ns per call, minimum over 25 rounds of 20,000 calls. Not a test.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import copyjit
from copyjit.trace import jit

SOURCE = "def {name}(k):\n    t = 0\n    for i in range(k):\n        t += i\n    return t\n"


def per_call(function: Callable[[int], int], k: int, calls: int = 20_000) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        function(k)
    return (time.perf_counter() - start) / calls * 1e9


def main() -> None:
    namespace: dict[str, Callable[[int], int]] = {}
    exec(SOURCE.format(name="plain") + SOURCE.format(name="jitted"), namespace)
    plain, jitted = namespace["plain"], namespace["jitted"]
    jit.ENTRIES_BEFORE_JUDGING = 1 << 62  # measure every k, however short
    copyjit.enable(threshold=2)  # sets the threshold; only `jitted` is watched from here on
    copyjit.disable()
    copyjit.jit(jitted)
    jitted(1000)  # recorded here, on a loop long enough to record
    print(f"{'k':>4} {'python ns':>10} {'copyjit ns':>11} {'difference':>11}")
    for k in (1, 2, 3, 5, 8, 10, 15, 20, 50, 100):
        a = min(per_call(plain, k) for _ in range(25))
        b = min(per_call(jitted, k) for _ in range(25))
        print(f"{k:>4} {a:>10.0f} {b:>11.0f} {b - a:>+11.0f}")
    print(copyjit.stats())


if __name__ == "__main__":
    main()
