"""Reading and writing a live frame at a JUMP event (where its stack
pointer is saved, and CPython reloads it and the instruction pointer when
the callback returns)."""

from __future__ import annotations

import ctypes
from types import CodeType, FrameType

from copyjit.backend.frames import UNBOUND, Unbound
from copyjit.backend.runtime import runtime

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable

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


# objects.c's builtins (copyjit_frame_*): through ctypes, writing a local
# took 3.4 µs and reading the stack 5.6, a few hundred µs of each n-body run's
# recordings. An empty slot reads, and pushes, as NULL.
_BUILTINS = runtime().frame_functions(NULL)
_stack, _depth = _BUILTINS["stack"], _BUILTINS["depth"]
# read_local(raw_frame, index): local (or stack slot) `index`'s object.
read_local: Callable[[int, int], object] = _BUILTINS["read"]
# write_local(raw_frame, index, value): bind local `index` as STORE_FAST
# does (the old value is released last).
write_local: Callable[[int, int, object], None] = _BUILTINS["write"]  # type: ignore[assignment]
# push(raw_frame, values): push new references to the list's `values`.
push: Callable[[int, list[object]], None] = _BUILTINS["push"]  # type: ignore[assignment]
# drop(raw_frame, count): pop `count` values off the stack, releasing them.
drop: Callable[[int, int], None] = _BUILTINS["drop"]  # type: ignore[assignment]


def stack_depth(raw_frame: int, code: CodeType) -> int:
    """Values on the stack, above the locals."""
    return _depth(raw_frame, code.co_nlocals)  # type: ignore[return-value]


def read_stack(raw_frame: int, code: CodeType) -> list[object]:
    return _stack(raw_frame, code.co_nlocals)  # type: ignore[return-value]


def read_globals(raw_frame: int) -> tuple[dict[str, object], dict[str, object]]:
    """The frame's globals and builtins dicts."""
    def at(name: str) -> dict[str, object]:
        address = ctypes.c_void_p.from_address(_field(raw_frame, name)).value or 0
        value = ctypes.cast(address, ctypes.py_object).value
        assert type(value) is dict
        return value

    return at("frame.f_globals"), at("frame.f_builtins")


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
