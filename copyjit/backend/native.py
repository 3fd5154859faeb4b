"""The pieces of ctypes that start-up needs, made from _ctypes directly.

Importing ctypes costs ~1.5 ms, nearly half of what copyjit may add to the
start-up of a program (it defines every C type and makes several function
prototypes at import). Start-up only calls a few C functions, reads a few
words of memory and lays out one struct. The types here are ctypes' own
(same `_type_` codes, so the same conversions); code that runs once a loop
is hot uses ctypes itself.
"""

from __future__ import annotations

import _ctypes

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    import ctypes
    from typing import Any

    Structure = ctypes.Structure
    c_char = ctypes.c_char
    c_char_p = ctypes.c_char_p
    c_int = ctypes.c_int
    c_long = ctypes.c_long
    c_size_t = ctypes.c_size_t
    c_ssize_t = ctypes.c_ssize_t
    c_uint8 = ctypes.c_uint8
    c_uint32 = ctypes.c_uint32
    c_void_p = ctypes.c_void_p
    py_object = ctypes.py_object
else:
    # As ctypes defines them on x86-64 Linux (LP64).
    class c_void_p(_ctypes._SimpleCData):
        _type_ = "P"

    class c_char(_ctypes._SimpleCData):
        _type_ = "c"

    class c_char_p(_ctypes._SimpleCData):
        _type_ = "z"

    class c_uint8(_ctypes._SimpleCData):
        _type_ = "B"

    class c_int(_ctypes._SimpleCData):
        _type_ = "i"

    class c_uint32(_ctypes._SimpleCData):
        _type_ = "I"

    class c_long(_ctypes._SimpleCData):
        _type_ = "l"

    class c_size_t(_ctypes._SimpleCData):
        _type_ = "L"

    class py_object(_ctypes._SimpleCData):
        _type_ = "O"

    c_ssize_t = c_long
    Structure = _ctypes.Structure

addressof = _ctypes.addressof
get_errno = _ctypes.get_errno
# ctypes.pythonapi's handle: the whole process (typeshed does not know that None is allowed).
_PROCESS = _ctypes.dlopen(None, _ctypes.RTLD_LOCAL)  # type: ignore[arg-type]


def symbol(name: str) -> int:
    """The address of a C symbol of the running process (LookupError if none)."""
    try:
        return int(_ctypes.dlsym(_PROCESS, name))
    except OSError:
        raise LookupError(name) from None


def versioned_symbol(name: str, version: str) -> int:
    """The address of version `version` of C symbol `name` (glibc's dlvsym:
    a compat symbol, which dlsym does not find), or LookupError if the libc
    or the process has none."""
    try:
        dlvsym = function(symbol("dlvsym"), c_void_p, c_void_p, c_char_p, c_char_p, python=False)
    except LookupError:
        raise LookupError(f"{name}@{version}: no dlvsym") from None
    address = dlvsym(None, name.encode(), version.encode())  # (None: RTLD_DEFAULT)
    if not address:
        raise LookupError(f"{name}@{version}")
    return int(address)


def function(address: int, restype: Any, *argtypes: Any, python: bool = True,
             errno: bool = False) -> Any:
    """The C function at `address`, callable from Python: with `python`,
    as ctypes.PYFUNCTYPE makes it (the GIL stays held; a Python exception
    it sets is raised), else as ctypes.CFUNCTYPE (use_errno=`errno`)."""
    flags = _ctypes.FUNCFLAG_CDECL
    if python:
        flags |= _ctypes.FUNCFLAG_PYTHONAPI
    if errno:
        flags |= _ctypes.FUNCFLAG_USE_ERRNO

    class Prototype(_ctypes.CFuncPtr):
        _argtypes_ = argtypes
        _restype_ = restype
        _flags_ = flags

    return Prototype(address)


def address(buffer: bytearray) -> int:
    """Where a (non-empty) bytearray's bytes are; they move only if it is resized."""
    return int(addressof(c_char.from_buffer(buffer)))


def word(address: int) -> int:
    """The pointer-sized word at `address` (0 for NULL)."""
    return c_void_p.from_address(address).value or 0


_MEMMOVE = _ctypes._memmove_addr  # type: ignore[attr-defined]  # ctypes.memmove's function
memmove = function(_MEMMOVE, c_void_p, c_void_p, c_void_p, c_size_t, python=False)
