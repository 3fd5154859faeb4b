"""Reading and writing a live frame at a JUMP event (where its stack
pointer is saved, and CPython reloads it and the instruction pointer when
the callback returns)."""

from __future__ import annotations

import ctypes
from types import CodeType, FrameType

from copyjit.backend.frames import UNBOUND, Unbound, bind, decref, incref, slot_object
from copyjit.backend.runtime import runtime

_POINTER = ctypes.sizeof(ctypes.c_void_p)
NULL: Unbound = UNBOUND  # an empty stack slot (CALL's missing self) reads as an unbound local does

_assign_version = ctypes.pythonapi.PyUnstable_Type_AssignVersionTag
_assign_version.argtypes = (ctypes.py_object,)
_assign_version.restype = ctypes.c_int


def raw(frame: FrameType) -> int:
    """The address of the frame's _PyInterpreterFrame."""
    address = ctypes.c_void_p.from_address(id(frame) + runtime().layout["frame_object.f_frame"]).value
    assert address is not None
    return address


def _field(raw_frame: int, name: str) -> int:
    return raw_frame + runtime().layout[name]


def stack_depth(raw_frame: int, code: CodeType) -> int:
    """Values on the stack, above the locals."""
    return ctypes.c_int.from_address(_field(raw_frame, "frame.stacktop")).value - code.co_nlocals


def read_local(raw_frame: int, index: int) -> object:
    return slot_object(raw_frame, index)


def read_stack(raw_frame: int, code: CodeType) -> list[object]:
    base = code.co_nlocals
    return [slot_object(raw_frame, base + i) for i in range(stack_depth(raw_frame, code))]


def read_globals(raw_frame: int) -> tuple[dict[str, object], dict[str, object]]:
    """The frame's globals and builtins dicts."""
    def at(name: str) -> dict[str, object]:
        address = ctypes.c_void_p.from_address(_field(raw_frame, name)).value or 0
        value = ctypes.cast(address, ctypes.py_object).value
        assert type(value) is dict
        return value

    return at("frame.f_globals"), at("frame.f_builtins")


def _slot(raw_frame: int, index: int) -> ctypes.c_void_p:
    return ctypes.c_void_p.from_address(_field(raw_frame, "frame.localsplus") + _POINTER * index)


def write_local(raw_frame: int, index: int, value: object) -> None:
    """Bind local `index` as STORE_FAST does (the old value is released last)."""
    bind(_slot(raw_frame, index), value)


def push(raw_frame: int, values: list[object]) -> None:
    """Push new references to `values` (NULL for `NULL`) onto the frame's stack."""
    top = ctypes.c_int.from_address(_field(raw_frame, "frame.stacktop"))
    for value in values:
        if value is NULL:
            _slot(raw_frame, top.value).value = None
        else:
            incref(value)
            _slot(raw_frame, top.value).value = id(value)
        top.value += 1


def drop(raw_frame: int, count: int) -> None:
    """Pop `count` values off the frame's stack, releasing them."""
    top = ctypes.c_int.from_address(_field(raw_frame, "frame.stacktop"))
    for _ in range(count):
        top.value -= 1
        slot = _slot(raw_frame, top.value)
        old, slot.value = slot.value, None
        if old:
            decref(old)


def set_instruction(raw_frame: int, code: CodeType, offset: int) -> None:
    """Make CPython continue at the instruction at `offset`."""
    ctypes.c_void_p.from_address(_field(raw_frame, "frame.instr_ptr")).value = \
        instruction_address(code, offset)


def instruction_address(code: CodeType, offset: int) -> int:
    """What `frame->instr_ptr` holds while executing the instruction at `offset`."""
    return id(code) + runtime().layout["code.co_code_adaptive"] + offset


_GENERIC_GETATTR = ctypes.cast(ctypes.pythonapi.PyObject_GenericGetAttr, ctypes.c_void_p).value
_MANAGED_DICT = 1 << 4  # Py_TPFLAGS_MANAGED_DICT


def generic_getattr(cls: type) -> bool:
    """Whether attribute lookup on instances of `cls` is CPython's generic
    one (no __getattribute__ or __getattr__ of its own, at the C level)."""
    slot = ctypes.c_void_p.from_address(id(cls) + runtime().layout["type.tp_getattro"]).value
    return slot == _GENERIC_GETATTR


def has_instance_dict(cls: type) -> bool:
    """Whether instances of `cls` can hold attributes of their own."""
    return cls.__dictoffset__ != 0 or bool(cls.__flags__ & _MANAGED_DICT)


def type_version(cls: type) -> int:
    """The type's version tag, assigned if it has none (0: none available)."""
    if not _assign_version(cls):
        return 0
    return ctypes.c_uint.from_address(id(cls) + runtime().layout["type.tp_version_tag"]).value
