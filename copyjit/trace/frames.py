"""Reading a live frame at a JUMP event (where its stack pointer is saved)."""

from __future__ import annotations

import ctypes
from types import CodeType, FrameType

from copyjit.backend.frames import slot_object
from copyjit.backend.runtime import runtime


def raw(frame: FrameType) -> int:
    """The address of the frame's _PyInterpreterFrame."""
    address = ctypes.c_void_p.from_address(id(frame) + runtime().layout["frame_object.f_frame"]).value
    assert address is not None
    return address


def stack_depth(raw_frame: int, code: CodeType) -> int:
    """Values on the stack, above the locals."""
    top = ctypes.c_int.from_address(raw_frame + runtime().layout["frame.stacktop"]).value
    return top - code.co_nlocals


def read_local(raw_frame: int, index: int) -> object:
    return slot_object(raw_frame, index)


def read_stack(raw_frame: int, code: CodeType) -> list[object]:
    base = code.co_nlocals
    return [slot_object(raw_frame, base + i) for i in range(stack_depth(raw_frame, code))]


def instruction_address(code: CodeType, offset: int) -> int:
    """What `frame->instr_ptr` holds while executing the instruction at `offset`."""
    return id(code) + runtime().layout["code.co_code_adaptive"] + offset
