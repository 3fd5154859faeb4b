"""The program's recursion budget is the program's, not the JIT's.

The JIT's handler is Python code called from a JUMP event, at whatever
depth the program's hot loop is. Near `sys.getrecursionlimit()` its own
calls would raise RecursionError: inside `compile` an internal error (the
loop given up), elsewhere an exception the program sees and CPython would
not have raised. So the handler runs with HEADROOM more levels of Python
recursion than the thread has left (jit.py, on_jump), and the one call of
the program's that recording makes for real runs with the budget the
program's frame has (`as_program()`): no more, no less than without the
JIT. The limit itself (sys.getrecursionlimit()) is never changed: the
budget is the thread state's count of levels left,
`tstate->py_recursion_remaining`, whose offset is found by looking (it
is the int that is one less a frame deeper, followed by the limit), once.

A loop in a frame exactly at the limit: there the handler's own first
frame would not fit (the JUMP callback is native, and calls it), and the
program got a RecursionError (by type, without its message: runtime.c,
defer_exception). The native callback lends that frame its level (LENT,
runtime.c's call_handler); the handler makes the rest of its room before
it calls any function.
"""

from __future__ import annotations

import sys

from copyjit.backend import native

HEADROOM = 200  # levels of Python calls the JIT's own code may use above the program's
LENT = 1  # of those, lent by runtime.c's call_handler to the handler's own frame (jit.py, on_jump)
_FIELDS = 64  # ints of PyThreadState searched for the counter

thread_state = native.function(native.symbol("PyThreadState_Get"), native.c_void_p)
offset: int | None = None  # of py_recursion_remaining in PyThreadState, once found
_probed = False
handlers = 0  # handlers running with HEADROOM (jit.py, on_jump)


def _ints(address: int) -> list[int]:
    return [native.c_int.from_address(address + 4 * i).value for i in range(_FIELDS)]


def _one_deeper(address: int) -> list[int]:
    return _ints(address)


def _probe() -> int | None:
    """The offset of py_recursion_remaining in PyThreadState, or None."""
    address = thread_state()
    here, deeper, limit = _ints(address), _one_deeper(address), sys.getrecursionlimit()
    found = [4 * i for i in range(_FIELDS - 1) if here[i] - deeper[i] == 1 and here[i + 1] == limit]
    return found[0] if len(found) == 1 else None


def prepare() -> None:
    """Find the counter (once; JIT.enable calls this, not deep in recursion)."""
    global offset, _probed
    if not _probed:
        offset, _probed = _probe(), True


def counter() -> native.c_int | None:
    """This thread's count of levels left (None if it was not found)."""
    return None if offset is None else native.c_int.from_address(thread_state() + offset)


# The handler (jit.py, on_jump) makes room without calling a Python
# function, which would need a level itself (on_jump's own was LENT; code
# called from elsewhere, a weak reference callback, adds all of HEADROOM):
#
#     budget = depth.counter_type.from_address(depth.thread_state() + depth.offset)
#     budget.value += depth.HEADROOM
#     depth.handlers += 1
#     try: ... finally: budget.value -= depth.HEADROOM; depth.handlers -= 1
counter_type = native.c_int


class as_program:
    """Inside the handler: make a call of the program's with the budget its
    frame has, as if that frame made it. `levels`: how many frames up from
    the one with this `with` statement the program's frame is."""

    __slots__ = ("budget", "levels", "program", "saved")

    def __init__(self, levels: int | None) -> None:
        self.levels = levels

    def __enter__(self) -> None:
        levels = self.levels
        self.budget = budget = counter() if handlers and levels is not None else None
        if budget is None or levels is None:
            return
        # Here (one frame below the caller's) the count is the program's
        # frame's, less `levels` + 1, plus the handler's HEADROOM.
        self.saved = budget.value
        self.program = budget.value + 1 + levels - HEADROOM
        budget.value = self.program - 1  # one more once this method returns

    def __exit__(self, *exc: object) -> None:
        budget = self.budget
        if budget is not None:
            # What the call did to the budget (sys.setrecursionlimit moves it) is kept.
            moved = budget.value + 1 - self.program
            budget.value = self.saved + moved
