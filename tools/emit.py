"""Backend costs: emitting a 100-uop trace, and entering/leaving an empty one.

    python tools/emit.py [--repeat N]

Not a test: it prints median, min and max. Targets (issue 2): emit <= 100 µs
per 100 uops (copy + patch + write to executable memory), entry <= 1 µs.
"""

from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import time
from collections.abc import Callable

from copyjit.backend import asm
from copyjit.backend.emitter import Emitter, Instruction
from copyjit.backend.frames import RawFrame
from copyjit.backend.runtime import runtime

# A realistic mix: unbox, a loop of unboxed int and float arithmetic with
# guards and branches, boxed operations with error targets, exits.
BODY = """
    _LOAD_FAST oparg=0
    i1 = _UNBOX_INT exit=bail
    _LOAD_FAST oparg=1
    f0 = _UNBOX_FLOAT exit=bail
    i0 = _LOAD_INT_CONST operand0=0
    i2 = _LOAD_INT_CONST operand0=1
    f1 = _LOAD_FLOAT_CONST operand0=0.5
loop:
    _CHECK_EVAL_BREAKER exit=bail
    f2 = _INT_TO_FLOAT i0
    f2 = _MUL_FLOAT f2, f1
    f0 = _ADD_FLOAT f0, f2
    i3 = _MUL_INT i0, i2 exit=bail
    i0 = _ADD_INT i0, i2 exit=bail
    _LOAD_FAST oparg=2
    _LOAD_FAST oparg=3
    _BINARY_OP oparg=0 error=error
    _STORE_FAST oparg=2
    _JUMP_IF_INT_LT i0, i1 jump=loop
"""
TAIL = """
    _BOX_FLOAT f0 error=error
    _STORE_FAST oparg=1
    _EXIT_TRACE
bail:
    _EXIT_TRACE oparg=1
error:
    _ERROR_TRACE
"""


def hundred_uops() -> list[Instruction]:
    """Five copies of BODY (18 uops each), the tail (5), and 5 register copies."""
    body = BODY.replace("loop:", "{label}:").replace("jump=loop", "jump={label}")
    copies = "".join(body.format(label=f"loop{n}") for n in range(5))
    filler = "    i3 = _COPY_INT i0\n" * 5
    return asm.parse(filler + copies + TAIL)


def summary(samples: list[float], unit: str, scale: float) -> str:
    values = sorted(s * scale for s in samples)
    return (f"median {statistics.median(values):8.3f} {unit}   min {values[0]:8.3f} {unit}   "
            f"max {values[-1]:8.3f} {unit}   ({len(values)} samples)")


def bench_emit(repeat: int) -> list[float]:
    emitter = Emitter()
    instructions = hundred_uops()
    assert len(instructions) == 100, len(instructions)
    emitter.emit(instructions).free()  # warm: stencils prepared once per process
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        trace = emitter.emit(instructions)
        samples.append(time.perf_counter() - start)
        trace.free()
    return samples


def per_call(function: Callable[[], None], calls: int, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) / calls)
    return samples


def bench_entry(repeat: int) -> dict[str, list[float]]:
    calls = 100_000
    trace = Emitter().emit(asm.parse("_EXIT_TRACE"))
    frame = RawFrame(0)
    address = frame.address
    entry = trace.entry

    def enter() -> None:
        for _ in range(calls):
            entry(address)

    def builtin() -> None:  # the floor: calling a trivial builtin from Python
        for _ in range(calls):
            abs(address)

    noop = ctypes.PYFUNCTYPE(ctypes.c_int)(ctypes.pythonapi.PyGILState_Check)

    def ctypes_call() -> None:  # what a ctypes entry would cost instead
        for _ in range(calls):
            noop()

    result = {name: per_call(fn, calls, repeat) for name, fn in
              [("trace entry+exit", enter), ("abs() (floor)", builtin), ("ctypes call", ctypes_call)]}
    trace.free()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=2000, help="emit samples (entry: repeat/100)")
    args = parser.parse_args()
    runtime()  # bootstrap outside the measurement
    print(f"Python {sys.version.split()[0]}, copyjit backend\n")
    emit = bench_emit(args.repeat)
    print(f"emit 100 uops (copy + patch + write)  {summary(emit, 'µs', 1e6)}")
    for name, samples in bench_entry(max(5, args.repeat // 100)).items():
        print(f"{name:<38}{summary(samples, 'ns', 1e9)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
