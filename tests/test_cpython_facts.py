"""Facts about CPython 3.13 that the tracing front end will rely on.

Each is checked against the running interpreter, so a CPython release that
changes one fails here first. See docs/cpython-facts.md.
"""

from __future__ import annotations

import ctypes
import dis
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType

from copyjit.backend.runtime import runtime

JumpHook = Callable[[CodeType, int, int, int], object]  # (code, src, dst, raw frame address)


def _field(raw: int, name: str, ctype: type[ctypes._SimpleCData]) -> ctypes._SimpleCData:  # type: ignore[type-arg]
    return ctype.from_address(raw + runtime().layout[name])


@contextmanager
def _on_jump(code: CodeType, hook: JumpHook) -> Iterator[None]:
    m = sys.monitoring
    layout = runtime().layout

    def callback(c: CodeType, src: int, dst: int) -> None:
        frame = sys._getframe(1)
        raw = ctypes.c_void_p.from_address(id(frame) + layout["frame_object.f_frame"]).value
        hook(c, src, dst, raw or 0)

    m.use_tool_id(m.OPTIMIZER_ID, "copyjit-facts")
    try:
        m.register_callback(m.OPTIMIZER_ID, m.events.JUMP, callback)
        m.set_local_events(m.OPTIMIZER_ID, code, m.events.JUMP)
        yield
    finally:
        m.set_local_events(m.OPTIMIZER_ID, code, 0)
        m.register_callback(m.OPTIMIZER_ID, m.events.JUMP, None)
        m.free_tool_id(m.OPTIMIZER_ID)


def test_at_a_jump_event_instr_ptr_is_the_jump_and_stacktop_is_saved() -> None:
    def loop(n: int) -> int:
        total = 0
        for i in range(n):
            total += i
        return total

    code = loop.__code__
    seen = []

    def hook(c: CodeType, src: int, dst: int, raw: int) -> None:
        instr_ptr = _field(raw, "frame.instr_ptr", ctypes.c_void_p).value
        code_start = id(c) + runtime().layout["code.co_code_adaptive"]  # the bytecode
        seen.append((instr_ptr - code_start if instr_ptr else None, src,
                     _field(raw, "frame.stacktop", ctypes.c_int).value))

    with _on_jump(code, hook):
        assert loop(3) == 3
    jump = next(i.offset for i in dis.get_instructions(code) if i.opname == "JUMP_BACKWARD")
    # The for-loop's iterator is the one value on the stack at its backedge.
    assert seen == [(jump, jump, code.co_nlocals + 1)] * 3


def test_moving_instr_ptr_in_a_jump_callback_resumes_there() -> None:
    # An exit hands the frame back by pointing instr_ptr at any instruction
    # whose expected stack matches the saved one. Here: the first backedge
    # resumes after the loop, so the loop body runs once.
    def loop(n: int) -> int:
        i = 0
        while i < n:
            i += 1
        return i * 100

    code = loop.__code__
    after = next(i.argval for i in dis.get_instructions(code) if i.opname == "POP_JUMP_IF_FALSE")

    def hook(c: CodeType, src: int, dst: int, raw: int) -> None:
        instr_ptr = _field(raw, "frame.instr_ptr", ctypes.c_void_p)
        assert instr_ptr.value is not None
        instr_ptr.value = instr_ptr.value - src + after

    with _on_jump(code, hook):
        assert loop(10) == 100
    assert loop(10) == 1000
