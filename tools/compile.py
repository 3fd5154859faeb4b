"""Where a trace's compile time goes: optimizing, lowering, emitting, replayed.

    python tools/compile.py [--replays N] [--profile] [NAMES...]

Runs each kernel (tools/kernels.py's) once under the JIT, keeping
every recording it optimizes and every lowering's arguments, then replays
optimize, lower (or lower_bridge) and emit for each, outside the JUMP
callback (inside it, sys.monitoring delivers no events, so cProfile sees
nothing), and prints per trace the median of N replays of each phase, in
ms. The first replay of a process pays nothing the kernels' run has not
paid already (imports, first uses of stencils): this times the steady
state, as the kernels' later traces see it. `--profile` prints cProfile's
view of all replays. `--instructions` counts instead of timing (the
host's speed changes several-fold by the hour): per kernel and phase, the
instructions one replay of all its traces takes, as valgrind's callgrind
counts them (a run with 2 + N replays less one with 2; hash seed fixed,
the collector off), for before/after comparisons of the compiler. Needs
valgrind (`apt-get install -y valgrind`); slow (~40 s a kernel and phase).
Not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from kernels import KERNELS, load

import copyjit.opt
import copyjit.trace.lower
from copyjit.backend.emitter import emit
from copyjit.trace.ir import Recording
from copyjit.trace.jit import JIT

Replay = Callable[[], object]


class Captured:
    """One trace or bridge as the JIT made it: how to optimize and lower it again."""

    def __init__(self, raw: Recording, off: frozenset[str], loop: bool) -> None:
        self.raw, self.off, self.loop = raw, off, loop
        self.lower: Callable[[Recording], Any] | None = None
        self.ops = 0

    def phases(self) -> dict[str, Replay]:
        assert self.lower is not None
        lower = self.lower
        optimized = copyjit.opt.optimize(self.raw, self.off, check=False, loop=self.loop)
        lowered = lower(optimized)
        self.ops = len(lowered.instructions)
        return {
            "optimize": lambda: copyjit.opt.optimize(self.raw, self.off, check=False, loop=self.loop),
            "lower": lambda: lower(optimized),
            "emit": lambda: emit(lowered.instructions, lowered.constants),
        }


def capture(name: str) -> list[Captured]:
    """Run the kernel once under a JIT, keeping what each compile was given."""
    function, codes = load(name)
    captured: list[Captured] = []
    optimize, lower, lower_bridge = (copyjit.opt.optimize, copyjit.trace.lower.lower,
                                     copyjit.trace.lower.lower_bridge)

    def optimizing(rec: Recording, off: frozenset[str] = frozenset(), check: bool | None = None,
                   loop: bool = True, report: Any = None) -> Recording:
        captured.append(Captured(rec, off, loop))
        return optimize(rec, off, check, loop, report)

    def lowering(rec: Recording, *args: Any, **kwargs: Any) -> Any:  # counter, fail, flagged
        captured[-1].lower = lambda r: lower(r, *args, **kwargs)
        return lower(rec, *args, **kwargs)

    def bridging(rec: Recording, *args: Any, **kwargs: Any) -> Any:  # parent, exit, first exit, loop, counter
        captured[-1].lower = lambda r: lower_bridge(r, *args, **kwargs)
        return lower_bridge(rec, *args, **kwargs)

    copyjit.opt.optimize = optimizing  # type: ignore[assignment]
    copyjit.trace.lower.lower, copyjit.trace.lower.lower_bridge = lowering, bridging  # type: ignore[assignment]
    try:
        jit = JIT()
        for code in codes:
            jit.enable(code)
        function(KERNELS[name][2])
        jit.disable()
    finally:
        copyjit.opt.optimize = optimize
        copyjit.trace.lower.lower, copyjit.trace.lower.lower_bridge = lower, lower_bridge
    made = [c for c in captured if c.lower is not None]
    if not made or jit.stats.traces == 0:  # (a capture that no longer fits lower's arguments, say)
        raise SystemExit(f"{name}: no trace captured (aborts: {dict(jit.stats.aborts)})")
    return made


PHASES = ("optimize", "lower", "emit")


def replay_only(phase: str, count: int, name: str) -> None:
    """Capture the kernel's traces, then replay one phase of all of them
    `count` times (what --instructions runs under valgrind)."""
    runs = [trace.phases()[phase] for trace in capture(name)]
    gc.collect()
    gc.disable()  # (a collection's place would depend on the count)
    for _ in range(count):
        for run in runs:
            run()


def instructions(names: list[str], replays: int) -> int:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("--instructions needs valgrind (apt-get install -y valgrind)", file=sys.stderr)
        return 1
    env = {**os.environ, "PYTHONHASHSEED": "0"}

    def counted(phase: str, count: int, name: str) -> int:
        done = subprocess.run([valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                               __file__, "--replay-only", phase, str(count), name],
                              env=env, capture_output=True, text=True, check=True)
        return int(re.search(r"Collected : (\d+)", done.stderr)[1])  # type: ignore[index]

    print(f"{'kernel':<20} " + " ".join(f"{phase:>12}" for phase in PHASES) + f" {'sum':>12}"
          + "   (instructions per replay of all the kernel's traces)")
    for name in names:
        counts = [(counted(phase, 2 + replays, name) - counted(phase, 2, name)) // replays
                  for phase in PHASES]
        print(f"{name:<20} " + " ".join(f"{count:>12,}" for count in counts) + f" {sum(counts):>12,}",
              flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replays", type=int, help="(default: 20 timed, 10 counted)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--replay-only", nargs=3, metavar=("PHASE", "COUNT", "NAME"), help=argparse.SUPPRESS)
    parser.add_argument("names", nargs="*", help="kernel names (default: all)")
    args = parser.parse_args()
    if args.replay_only:
        phase, count, name = args.replay_only
        replay_only(phase, int(count), name)
        return 0
    if args.instructions:
        return instructions(args.names or list(KERNELS), args.replays or 10)
    profile = cProfile.Profile() if args.profile else None
    print(f"{'kernel':<20} {'trace':>5} {'ops':>5} {'uops':>5} {'optimize':>9} {'lower':>7} {'emit':>7} "
          f"{'sum':>7}")
    for name in args.names or list(KERNELS):
        for number, trace in enumerate(capture(name)):
            phases = trace.phases()
            times: dict[str, list[float]] = {phase: [] for phase in phases}
            if profile is not None:
                profile.enable()
            for _ in range(args.replays or 20):
                for phase, run in phases.items():
                    start = time.perf_counter()
                    run()
                    times[phase].append(time.perf_counter() - start)
            if profile is not None:
                profile.disable()
            medians = {phase: statistics.median(t) * 1e3 for phase, t in times.items()}
            print(f"{name:<20} {number:>5} {len(trace.raw.ops):>5} {trace.ops:>5} "
                  f"{medians['optimize']:>9.3f} {medians['lower']:>7.3f} {medians['emit']:>7.3f} "
                  f"{sum(medians.values()):>7.3f}", flush=True)
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
