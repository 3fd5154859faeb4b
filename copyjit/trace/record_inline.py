"""Recording through calls of small Python functions (inlining).

A call of a plain Python function whose body has no side effects (loads,
arithmetic, comparisons, branches, reading globals and attributes, calls
of `math`, `len` and other such functions) is not recorded as a `call`
op: the recorder runs the callee's bytecode itself, as ops of the same
trace, with the arguments as values (unboxed numbers stay unboxed) and its
result pushed where the call's would be.

The callee's frame never exists. Since nothing the inlined body does is
visible, every exit inside it resumes the *caller* at its CALL, with the
callable and the arguments back on the caller's stack (the callee's own
values are released: `Snapshot.drop`), and the interpreter makes the call
again: an exception then comes from a real callee frame, with CPython's
own traceback.

The trace guards the function's identity (the caller's `guard_is`) and its
version (`guard_function`: CPython resets `func_version` when `__code__`,
`__defaults__` or `__kwdefaults__` is reassigned; the same uop exits when
another monitoring tool has local events on the callee's code, a
debugger's breakpoint). Globals it reads are guarded as the caller's are.

What is not inlined stays a `call` op, with the reason counted
(Recording.inlining): generators, closures, *args/**kwargs, keyword-only
parameters, functions of another module, recursion, more than MAX_DEPTH
nested inlined calls, long bodies, any instruction not in _PURE, a call in
the body that is not itself inlined or pure, and anything the recorder
aborts on inside the body (the recording is rolled back to the CALL).
"""

from __future__ import annotations

import ctypes
import sys
import types

from copyjit.backend.runtime import runtime
from copyjit.trace import bytecode, frames
from copyjit.trace.ir import NO_VALUE, Abort, Op, Snapshot, local_name
from copyjit.trace.record_base import Handback, kind_of
from copyjit.trace.record_numbers import NumberOps

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from types import CodeType
    from typing import Final

    from copyjit.trace.inner import Decoded  # what copyjit.trace.bytecode decodes

MAX_DEPTH: Final = 3  # inlined calls within inlined calls
MAX_INSTRUCTIONS: Final = 120  # in the callee's code
# Values (spill slots) a recording may reach by inlining; beyond, the call
# stays a call rather than make the whole trace too big to lower.
MAX_VALUES: Final = 96
# Instructions with no visible effect, as the recorder performs them. (A
# CALL is checked when recorded: only pure functions and inlined ones.)
_PURE: Final = frozenset({
    "RESUME", "NOP", "EXTENDED_ARG", "LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_LOAD_FAST", "STORE_FAST",
    "STORE_FAST_LOAD_FAST", "STORE_FAST_STORE_FAST", "LOAD_CONST", "RETURN_VALUE", "RETURN_CONST",
    "LOAD_GLOBAL", "LOAD_ATTR", "BINARY_OP", "BINARY_SUBSCR", "COMPARE_OP", "UNARY_NEGATIVE", "UNARY_NOT",
    "TO_BOOL", "POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE", "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE",
    "JUMP_FORWARD", "POP_TOP", "COPY", "SWAP", "PUSH_NULL", "CALL", "UNPACK_SEQUENCE", "IS_OP"})
_BRANCHES: Final = ("POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE", "EXTENDED_ARG")
# CO_VARARGS, CO_VARKEYWORDS, CO_GENERATOR, CO_COROUTINE, CO_ITERABLE_COROUTINE,
# CO_ASYNC_GENERATOR (inspect's names, without importing inspect).
_UNSUPPORTED_FLAGS: Final = 0x04 | 0x08 | 0x20 | 0x80 | 0x100 | 0x200
_COPYJIT_TOOL: Final = 5


class _Call:
    """An inlined call being recorded: the caller's state, set aside while
    the callee is recorded, and the callee's locals (slot -> value,
    concrete, whether the trace owns that reference: arguments are the
    caller's, on its stack)."""

    __slots__ = ("code", "following", "instructions", "locals", "offset", "stack")

    def __init__(self, code: CodeType, instructions: dict[int, Decoded], following: dict[int, int],
                 offset: int, stack: list[tuple[int, object]],
                 local_values: dict[int, tuple[int, object, bool]]) -> None:
        self.code, self.instructions, self.following = code, instructions, following
        self.offset, self.stack, self.locals = offset, stack, local_values


class InlineOps(NumberOps):
    inlined: tuple[_Call, ...] = ()  # the calls being inlined, outermost first
    inlining: dict[str, int] | None = None  # "inlined" or why not -> count

    def note(self, what: str) -> None:
        if self.inlining is None:
            self.inlining = {}
        self.inlining[what] = self.inlining.get(what, 0) + 1

    # --- deciding -------------------------------------------------------------

    def not_inlined(self, function: types.FunctionType, count: int) -> str | None:
        """Why a call of `function` with `count` arguments cannot be inlined
        here (None: it can)."""
        code = function.__code__
        if len(self.inlined) >= MAX_DEPTH:
            return "inlined calls nested too deep"
        if code is self.code or any(call.code is code for call in self.inlined):
            return "recursion"
        if code.co_flags & _UNSUPPORTED_FLAGS:
            return "a generator, coroutine, *args or **kwargs"
        if code.co_kwonlyargcount or code.co_freevars or code.co_cellvars:
            return "keyword-only parameters or a closure"
        defaults = function.__defaults__ or ()
        if not code.co_argcount - len(defaults) <= count <= code.co_argcount:
            return "another number of arguments than the function takes"
        if _function_version(function) == 0:
            return "a function without a version (made by FunctionType, or changed)"
        frame_globals, frame_builtins = frames.read_globals(self.raw)
        if function.__globals__ is not frame_globals or \
                function.__builtins__ is not frame_builtins:
            return "a function of another module"
        if _monitored(code) or sys.getprofile() is not None:
            return "a function another tool or a profiler watches"
        instructions = list(bytecode.decoded(code)[0].values())
        if len(instructions) > MAX_INSTRUCTIONS:
            return "a function too long"
        for instruction in instructions:
            if instruction.opname not in _PURE:
                return f"{instruction.opname} in the function"
        return None

    # --- recording ------------------------------------------------------------

    def inline(self, ins: Decoded, base: int, function: object) -> int | None:
        """Record the call at `ins` (the callable at stack position `base`)
        through the body of `function`; None, with nothing recorded, when
        it is not to be inlined."""
        if type(function) is not types.FunctionType:
            return None
        entries = self.stack[base + 1:]
        args = [entry for entry in entries if self.kind(entry[0]) != "n"]
        reason = self.not_inlined(function, len(args))
        if reason is not None:
            self.note(f"not inlined: {reason}")
            return None
        mark, types_before, stack_before = len(self.ops), dict(self.types), list(self.stack)
        try:
            value, concrete = self._inline(ins, base, function, args)
        except Abort as abort:  # nothing visible happened: record it as a call instead
            del self.ops[mark:]
            del self.positions[mark:]
            self.types, self.stack, self.pending = types_before, stack_before, None
            self.note(f"not inlined: {abort.reason}")
            return None
        self.note("inlined")
        callable_ = self.stack[base][0]
        self.stack[base:] = []
        self.release(callable_, *(value for value, _ in args))
        self.push(value, concrete)
        return self.following[ins.offset]

    def _inline(self, ins: Decoded, base: int, function: types.FunctionType,
                args: list[tuple[int, object]]) -> tuple[int, object]:
        callable_ = self.stack[base][0]
        self.emit(Op("guard_function", args=(callable_,), arg=_function_version(function),
                     snapshot=self.snapshot()))
        code = function.__code__
        local_values = {slot: (value, concrete, False) for slot, (value, concrete) in enumerate(args)}
        defaults = function.__defaults__ or ()
        for slot in range(len(args), code.co_argcount):
            default = defaults[slot - (code.co_argcount - len(defaults))]
            const = self.constant(default)
            local_values[slot] = (const, default, self.kind(const) == "o")
        call = _Call(self.code, self.instructions, self.following, ins.start_offset, self.stack, local_values)
        self.inlined = (*self.inlined, call)
        self.code, self.stack = code, []
        self.instructions, self.following = bytecode.decoded(code)
        try:
            result = self._run_callee()
            if sum(1 for op in self.ops if op.name not in NO_VALUE and op.kind != "n") > MAX_VALUES:
                raise Abort("a trace too big with it")
            return result
        except Handback as stop:  # raised by a handler that would hand the frame back
            raise stop.abort from None
        except Abort:
            raise
        except Exception as error:  # a bug of the recorder's: the call is recorded as a call
            raise Abort(f"internal error: {type(error).__name__}: {error}") from error
        finally:
            self.inlined = self.inlined[:-1]
            self.code, self.instructions, self.following = call.code, call.instructions, call.following
            self.offset, self.stack = call.offset, call.stack

    def _run_callee(self) -> tuple[int, object]:
        offset = min(self.instructions)
        for _ in range(MAX_INSTRUCTIONS):
            instruction = self.instructions[offset]
            self.offset = instruction.start_offset
            if self.pending is not None and not instruction.opname.startswith(_BRANCHES):
                raise Abort("a comparison whose result is not a branch")
            if instruction.opname in ("RETURN_VALUE", "RETURN_CONST"):
                return self._returned(instruction)
            if instruction.opname not in _PURE:
                raise Abort(f"{instruction.opname} in the function")
            offset = getattr(self, f"op_{instruction.opname}")(instruction)
        raise Abort("a function too long")

    def _returned(self, ins: Decoded) -> tuple[int, object]:
        if ins.opname == "RETURN_CONST":
            self.push(self.constant(ins.argval), ins.argval)
        value, concrete = self.pop()
        if self.stack or self.kind(value) == "n":
            raise Abort("values left on the stack at a return")
        self.release(*(v for v, _, owned in self.inlined[-1].locals.values() if owned))
        return value, concrete

    def constant(self, value: object) -> int:
        kind = kind_of(value)
        if kind == "o":
            return self.emit(Op("const_o", "o", arg=self.keep(value)), known=type(value))
        return self.emit(Op("const", kind, arg=value))

    # --- what differs inside an inlined body ----------------------------------

    def snapshot(self, offset: int | None = None, stack: list[tuple[int, object]] | None = None,
                 normal: bool = False, reraise: int | None = None) -> Snapshot:
        """Inside an inlined body, every exit resumes at the outermost
        inlined CALL (the interpreter makes the call), releasing what the
        inlined calls own: their stacks, and locals they stored."""
        if not self.inlined:
            return super().snapshot(offset, stack, normal, reraise)
        if reraise is not None:
            raise Abort("a call that may raise")
        drop = [value for call in self.inlined[1:] for value, _ in call.stack if self.kind(value) == "o"]
        drop += [value for call in self.inlined for value, _, owned in call.locals.values() if owned]
        drop += [value for value, _ in (self.stack if stack is None else stack) if self.kind(value) == "o"]
        outer = self.inlined[0]
        return Snapshot(outer.offset, tuple(value for value, _ in outer.stack), drop=tuple(drop))

    def _within_loop(self, offset: int) -> int:
        return offset if self.inlined else super()._within_loop(offset)

    def load(self, slot: int, checked: bool = False) -> None:
        if not self.inlined:
            return super().load(slot, checked)
        entry = self.inlined[-1].locals.get(slot)
        if entry is None:  # UnboundLocalError: the interpreter raises it
            raise Abort(f"local {local_name(self.code, slot)!r} is unbound")
        value, concrete, _ = entry
        if self.kind(value) == "o":  # a new reference, which its user releases
            value = self.emit(Op("copy_o", "o", (value,)), known=self.types.get(value))
        self.push(value, concrete)
        return None

    def store(self, slot: int) -> None:
        if not self.inlined:
            return super().store(slot)
        value, concrete = self.pop()
        if self.kind(value) == "n":
            raise Abort("storing NULL")
        local_values = self.inlined[-1].locals
        old = local_values.get(slot)
        local_values[slot] = (value, concrete, self.kind(value) == "o")
        if old is not None and old[2]:
            self.release(old[0])
        return None

    def op_STORE_FAST_STORE_FAST(self, ins: Decoded) -> int:
        if not self.inlined:
            return super().op_STORE_FAST_STORE_FAST(ins)
        self.store(ins.arg >> 4)  # type: ignore[operator]
        self.store(ins.arg & 15)  # type: ignore[operator]
        return self.following[ins.offset]

    def op_RESUME(self, ins: Decoded) -> int:
        if not self.inlined:
            raise Abort("unsupported instruction RESUME")
        return self.following[ins.offset]

    def no_effects(self, what: str) -> None:
        """Inside an inlined body, nothing with effects is recorded."""
        if self.inlined:
            raise Abort(f"{what}, which may have effects")


def _function_version(function: types.FunctionType) -> int:
    """CPython's func_version: set by MAKE_FUNCTION, 0 once __code__,
    __defaults__ or __kwdefaults__ is reassigned."""
    return ctypes.c_uint32.from_address(id(function) + runtime().layout["function.func_version"]).value


def _monitored(code: CodeType) -> bool:
    """Whether a tool other than copyjit has local events on `code`."""
    # (Not `sys.monitoring`: compiled by mypyc, that names a module to import.)
    monitoring = vars(sys)["monitoring"]
    return any(tool != _COPYJIT_TOOL and monitoring.get_tool(tool) is not None
               and monitoring.get_local_events(tool, code) for tool in range(6))
