"""`python -m copyjit demo`: one loop, from a trace to running machine code.

The trace below is what the tracing front end will record for `total`; it is
written by hand here because that front end is not built yet. Everything after
it is the real backend: stencils copied and patched into executable memory,
entered through a builtin function, running on a frame.
"""

from __future__ import annotations

import time

from copyjit.backend import asm, disasm
from copyjit.backend.emitter import emit
from copyjit.backend.frames import RawFrame
from copyjit.backend.runtime import runtime


def total(n: int) -> float:
    acc = 0.0
    for i in range(n):
        acc += i * 0.5
    return acc


# locals: 0 = n, 1 = acc. i lives only in a register.
TRACE = """
    _LOAD_FAST oparg=0
    i1 = _UNBOX_INT exit=bail            # n
    _LOAD_FAST oparg=1
    f0 = _UNBOX_FLOAT exit=bail          # acc
    i0 = _LOAD_INT_CONST operand0=0      # i
    i2 = _LOAD_INT_CONST operand0=1
    f1 = _LOAD_FLOAT_CONST operand0=0.5
    _JUMP_IF_INT_GE i0, i1 jump=done
loop:
    _CHECK_EVAL_BREAKER exit=interrupted
    f2 = _INT_TO_FLOAT i0
    f2 = _MUL_FLOAT f2, f1
    f0 = _ADD_FLOAT f0, f2
    i0 = _ADD_INT i0, i2 exit=interrupted
    _JUMP_IF_INT_LT i0, i1 jump=loop
done:
    _BOX_FLOAT f0 error=error
    _STORE_FAST oparg=1
    _EXIT_TRACE oparg=0
interrupted:                             # a real exit would also save i
    _BOX_FLOAT f0 error=error
    _STORE_FAST oparg=1
    _EXIT_TRACE oparg=2
bail:
    _EXIT_TRACE oparg=1
error:
    _ERROR_TRACE
"""


def main(n: int) -> bool:
    """Run the demo; True if the native result equals CPython's."""
    start = time.perf_counter()
    runtime()
    boot_ms = (time.perf_counter() - start) * 1e3
    instructions = asm.parse(TRACE)
    start = time.perf_counter()
    trace = emit(instructions)
    emit_us = (time.perf_counter() - start) * 1e6
    print("The trace (copyjit's backend text form):")
    print(asm.dump(instructions))
    body = range(8, 14)
    print(f"Backend bootstrap (once per process): {boot_ms:.1f} ms. Emitted in {emit_us:.0f} µs "
          f"(first use of each stencil included): {trace.size} bytes of machine code. The loop body:")
    print(disasm.trace(trace, only=body))

    with RawFrame(2) as frame:
        frame[0], frame[1] = n, 0.0
        start = time.perf_counter()
        status = trace(frame.address)
        native = time.perf_counter() - start
        result = frame[1]
    start = time.perf_counter()
    expected = total(n)
    interpreted = time.perf_counter() - start
    print(f"total({n:,}) natively:      {result!r} (exit {status}) in {native * 1e3:8.2f} ms")
    print(f"total({n:,}) by CPython:    {expected!r} in {interpreted * 1e3:8.2f} ms")
    print("same result" if result == expected else "RESULTS DIFFER")
    trace.free()
    return result == expected
