"""Frames as the native code sees them.

`RawFrame` is a `_PyInterpreterFrame`-shaped buffer with locals and a value
stack, for running traces outside a Python function (tests, the demo, the
benchmark). It owns the references it holds, like a real frame.
"""

from __future__ import annotations

import ctypes

from copyjit.backend.runtime import runtime

incref = ctypes.pythonapi.Py_IncRef
incref.argtypes = (ctypes.py_object,)
decref = ctypes.pythonapi.Py_DecRef
decref.argtypes = (ctypes.c_void_p,)

_POINTER = ctypes.sizeof(ctypes.c_void_p)
_PyObject = ctypes.py_object


class Unbound:
    """What an empty slot (an unbound local) reads as: None is a value."""


UNBOUND = Unbound()


def slot_object(frame_address: int, index: int) -> object:
    """The object in localsplus[index] of the _PyInterpreterFrame at
    `frame_address` (a new reference), or UNBOUND for an empty slot."""
    offset = runtime().layout["frame.localsplus"] + _POINTER * index
    # Read as a py_object in place: ctypes.cast (a foreign call) made this
    # 3 µs, most of the recorder's time at each LOAD_FAST; this is 0.5 µs.
    try:
        return _PyObject.from_address(frame_address + offset).value
    except ValueError:  # ("PyObject is NULL")
        return UNBOUND


def bind(slot: ctypes.c_void_p, value: object) -> None:
    """Point a frame slot at `value`, as STORE_FAST does: a new reference
    taken, the old one released last."""
    old = slot.value
    incref(value)
    slot.value = id(value)
    if old:
        decref(old)


class RawFrame:
    def __init__(self, nlocals: int, stacksize: int = 8) -> None:
        layout = runtime().layout
        self._localsplus = layout["frame.localsplus"]
        self._stacktop = layout["frame.stacktop"]
        self.nlocals = nlocals
        self._slots = nlocals + stacksize
        self._buffer = (ctypes.c_char * (self._localsplus + _POINTER * self._slots))()
        self.address = ctypes.addressof(self._buffer)
        self.stacktop = nlocals

    def _slot(self, index: int) -> ctypes.c_void_p:
        if not 0 <= index < self._slots:
            raise IndexError(index)
        return ctypes.c_void_p.from_address(self.address + self._localsplus + _POINTER * index)

    @property
    def stacktop(self) -> int:
        return ctypes.c_int.from_address(self.address + self._stacktop).value

    @stacktop.setter
    def stacktop(self, value: int) -> None:
        ctypes.c_int.from_address(self.address + self._stacktop).value = value

    def __setitem__(self, index: int, value: object) -> None:
        """Bind local `index` (takes a reference, drops the old one)."""
        bind(self._slot(index), value)

    def __getitem__(self, index: int) -> object:
        """The object in slot `index` (locals first, then the stack)."""
        self._slot(index)  # bounds
        value = slot_object(self.address, index)
        if value is UNBOUND:
            raise UnboundLocalError(f"slot {index} is empty")
        return value

    def stack(self) -> list[object]:
        return [self[i] for i in range(self.nlocals, self.stacktop)]

    def clear(self) -> None:
        """Drop every reference the frame holds; the stack becomes empty."""
        for index in range(max(self.stacktop, self.nlocals)):
            slot = self._slot(index)
            if slot.value:
                old, slot.value = slot.value, None
                decref(old)
        self.stacktop = self.nlocals

    def __enter__(self) -> RawFrame:
        return self

    def __exit__(self, *exc: object) -> None:
        self.clear()

    def __del__(self) -> None:
        self.clear()
