"""Copy and patch: a list of uop instructions becomes native code.

Each instruction's stencil is copied end to end; an instruction's
continuation is always the next one, laid directly after it, so a stencil's
final `jmp CONTINUE` is dropped (fall-through). Holes whose value is the same
in every copy (GOT slots, data, C symbols) are patched once per process when
a stencil is first used; the emitter patches only what differs per copy.
"""

from __future__ import annotations

import ctypes
import itertools
import struct
import sys

from copyjit.backend.runtime import CELL, Runtime, buffer_address, runtime
from copyjit.stencil import JMP_REL32_SIZE, Hole, HoleKind, HoleValue, Stencil, tail_jump_index
from copyjit.uops import UOPS, variant_name

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Final


class EmitError(ValueError):
    """The instructions cannot be emitted (unknown uop, missing target, ...)."""


_FIELDS: Final = ("name", "ins", "outs", "oparg", "operand0", "operand1", "jump", "exit", "error")


class Instruction:
    """One uop of a trace, with registers, operands and targets chosen.

    `jump`, `exit` and `error` are indices of other instructions of the same
    trace: where a taken branch, a failed guard and a raised exception go.
    Immutable: its fields are Final, which mypy holds every module to, and
    which the native build (copyjit/native.py) refuses to set at run time.
    (A plain class: a dataclass costs ~1.4 ms to make, at the first compile
    of every program.)
    """

    __slots__ = (*_FIELDS, "stencil")

    def __init__(self, name: str, ins: tuple[str, ...] = (), outs: tuple[str, ...] = (), oparg: int = 0,
                 operand0: int = 0, operand1: int = 0, jump: object = None, exit: object = None,
                 error: object = None, *, _stencil: str = "") -> None:
        # The targets are typed `object` and checked here: compiled, an
        # `int` parameter would take True for 1.
        self.name: Final = name
        self.ins: Final = ins
        self.outs: Final = outs
        self.oparg: Final = oparg
        self.operand0: Final = operand0
        self.operand1: Final = operand1
        self.jump: Final = _target(name, "jump", jump)
        self.exit: Final = _target(name, "exit", exit)
        self.error: Final = _target(name, "error", error)
        # From retargeted(), `_stencil`: the rest was checked when the original was made.
        self.stencil: Final = _stencil or variant_name(name, ins, outs)
        if not _stencil:
            uop = UOPS.get(name)
            if uop is not None and not 0 <= oparg <= uop.oparg_max:
                raise EmitError(f"{name}: oparg {oparg} is out of range 0..{uop.oparg_max}")

    def retargeted(self, jump: int | None, exit: int | None, error: int | None) -> Instruction:
        """This instruction with other targets (each None or an index).
        Skips what the constructor checked already: the text form makes
        most of a trace's instructions this way, from ones it parsed before."""
        return Instruction(self.name, self.ins, self.outs, self.oparg, self.operand0, self.operand1,
                           jump, exit, error, _stencil=self.stencil)

    def moved(self, operand0: int) -> Instruction:
        """This instruction with another operand0 (what the constructor checked stands)."""
        return Instruction(self.name, self.ins, self.outs, self.oparg, operand0, self.operand1,
                           self.jump, self.exit, self.error, _stencil=self.stencil)

    def _values(self) -> tuple[object, ...]:
        return (self.name, self.ins, self.outs, self.oparg, self.operand0, self.operand1, self.jump,
                self.exit, self.error)

    def __eq__(self, other: object) -> bool:
        return type(other) is Instruction and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return f"Instruction({', '.join(f'{f}={v!r}' for f, v in zip(_FIELDS, self._values(), strict=True))})"


def _target(name: str, field: str, target: object) -> int | None:
    """`target`, an instruction index or None (EmitError if not)."""
    if target is None:
        return None
    if type(target) is not int or target < 0:
        raise EmitError(f"{name}: {field} target must be an instruction index, not {target!r}")
    return target


# A per-copy hole's S: which of the instruction's values it is (_patch:
# oparg, operand0, operand1, the next instruction, this instruction, the
# byte offset of spill slot oparg)...
_SOURCES: Final = {
    HoleValue.OPARG: 0,
    HoleValue.OPERAND0: 1,
    HoleValue.OPERAND1: 2,
    HoleValue.CONTINUE: 3,
    HoleValue.CODE: 4,
    HoleValue.SLOT_OFFSET: 5,
}
# How a per-copy hole is written: its kind's mode (0: 64 bits; 1: 32 bits,
# relative to the field; 2: 32 bits, as it is).
_MODES: Final = {HoleKind.ABS64: 0, HoleKind.REL32: 1, HoleKind.GOT_REL32: 1, HoleKind.ABS32S: 2}
# A relative hole to the next instruction or to this one: from here, the
# stencil's length (its tail jump dropped) or 0, whatever the copy's address.
_SAME_EVERY_COPY: Final[dict[HoleValue, Callable[[int], int]]] = {
    HoleValue.CONTINUE: lambda length: length,
    HoleValue.CODE: lambda length: 0,
}
# ... or the instruction named by one of its target fields.
_TARGET_FIELDS: Final = {
    HoleValue.JUMP_TARGET: "jump",
    HoleValue.EXIT_TARGET: "exit",
    HoleValue.ERROR_TARGET: "error",
}
_MASK64: Final = 0xFFFF_FFFF_FFFF_FFFF
_pack_q: Final = struct.Struct("<Q").pack_into
_pack_i: Final = struct.Struct("<i").pack_into


class Prepared:
    """A stencil as laid out in traces of this process. (A plain class: a
    dataclass costs ~1 ms to make, at the first compile.)"""

    __slots__ = ("_stencils", "code", "dynamic", "ends_trace", "fixed", "name", "targets")

    def __init__(self, name: str, code: bytes, stencils: Mapping[str, Stencil],
                 fixed: tuple[tuple[int, int], ...],
                 dynamic: tuple[tuple[int, int, int, int], ...],
                 targets: tuple[tuple[int, bool, str, int], ...],
                 ends_trace: bool) -> None:
        self.name = name
        self.code = code  # tail jump dropped; fixed absolute holes patched
        self._stencils = stencils  # where `holes` come from
        # rel32 holes to fixed addresses (GOT slots, data): (offset, S + A - offset),
        # so that the displacement is that minus the copy's address.
        self.fixed = fixed
        # holes whose value depends on the instruction: (offset, mode, source, A)
        self.dynamic = dynamic
        # holes of other instructions' addresses: (offset, rel32?, field, A)
        self.targets = targets
        self.ends_trace = ends_trace

    @property
    def holes(self) -> tuple[Hole, ...]:
        """All holes still in `code`, for annotation."""
        return self._stencils[self.name].without_tail_jump().holes


def prepare(rt: Runtime, name: str) -> Prepared:
    """Stencil `name` laid out for this process, at its first use: from
    its Rows, not its Holes (a trace's first compile uses dozens of
    stencils for the first time)."""
    try:
        stored, rows = rt.table.rows(name)
    except KeyError:
        raise EmitError(f"no stencil named {name!r}") from None
    tail = tail_jump_index(stored, rows)
    if tail is not None:
        stored, rows = stored[:-JMP_REL32_SIZE], rows[:tail] + rows[tail + 1 :]
    code = bytearray(stored)
    fixed, dynamic, targets = [], [], []
    fixed_value = rt.fixed_value
    for offset, kind, what, symbol, addend in rows:
        value = fixed_value(kind, what, symbol, addend)
        rel32 = kind is not HoleKind.ABS64
        if value is not None and not rel32:
            _pack_q(code, offset, value & _MASK64)
        elif value is not None:
            fixed.append((offset, value - offset))
        elif what in _TARGET_FIELDS:
            targets.append((offset, rel32, _TARGET_FIELDS[what], addend))
        elif rel32 and what in _SAME_EVERY_COPY:
            # The next instruction or this one, relative to here: the same
            # displacement wherever the copy is (the copy's length, or 0).
            _pack_i(code, offset, _SAME_EVERY_COPY[what](len(code)) + addend - offset)
        else:
            dynamic.append((offset, _MODES[kind], _SOURCES[what], addend))
    uop = name.partition("__")[0]
    return Prepared(name, bytes(code), rt.table.stencils, tuple(fixed), tuple(dynamic),
                    tuple(targets), UOPS[uop].ends_trace)


class Trace:
    """Native code for a list of instructions, callable from Python.

    `trace(frame)` runs it on a frame object or a raw frame address and
    returns the exit code of the `_EXIT_TRACE` it left by. The code is freed
    by `free()` or when the Trace is garbage; objects the code points at
    (`constants`) live as long as the Trace.
    """

    def __init__(self, rt: Runtime, address: int, size: int,
                 instructions: tuple[Instruction, ...], prepared: list[Prepared],
                 offsets: list[int], constants: tuple[object, ...] = ()) -> None:
        self.runtime = rt
        self.address = address
        self.size = size
        self.instructions = instructions
        self.prepared = prepared
        self.offsets = offsets  # of each instruction, then the end
        self.constants = constants
        # The entry builtin reads the code address from this cell on each
        # call and counts the calls in progress (runtime.c's trace_cell).
        self._cell = bytearray(CELL.pack(address, 0))
        self.entry = rt.entry_function(self._cell)

    @property
    def cell_address(self) -> int:
        """Where its trace_cell is, for native callers (copyjit_on_jump)."""
        return buffer_address(self._cell)

    def __call__(self, frame: object) -> int:
        return self.entry(frame)  # type: ignore[operator,no-any-return]

    @property
    def freed(self) -> bool:
        return self.size == 0

    def free(self) -> None:
        """Stop new calls (they raise RuntimeError) and give the code back.

        Code that is still running (the trace called out to Python code that
        freed it) is released once the last call has left it.
        """
        if self.freed:
            return
        self._cell[:8] = bytes(8)
        self.runtime.release(self._cell, self.address, self.size, self.constants)
        self.size = 0
        self.constants = ()

    def free_with(self, parent: Trace) -> None:
        """Give the code back once no call of `parent` is running: this
        code is only ever reached from inside the parent's activations."""
        if self.freed:
            return
        self._cell[:8] = bytes(8)
        self.runtime.release(parent._cell, self.address, self.size, self.constants)
        self.size = 0
        self.constants = ()

    def __del__(self) -> None:
        # At interpreter exit module globals may already be gone: the
        # process is ending, and its memory with it.
        if sys is not None and not sys.is_finalizing():
            self.free()

    def code(self) -> bytes:
        """The machine code as it is in executable memory."""
        return ctypes.string_at(self.address, self.size)


class Emitter:
    def __init__(self, rt: Runtime | None = None) -> None:
        self.runtime = rt or runtime()
        self._prepared: dict[str, Prepared] = {}

    def prepared(self, name: str) -> Prepared:
        p = self._prepared.get(name)
        if p is None:
            p = self._prepared[name] = prepare(self.runtime, name)
        return p

    def emit(self, instructions: list[Instruction] | tuple[Instruction, ...],
             constants: tuple[object, ...] = ()) -> Trace:
        """Native code for `instructions`; keep `constants` (objects whose
        addresses are operands) alive as long as the code."""
        instructions = tuple(instructions)
        if not instructions:
            raise EmitError("an empty trace has nowhere to exit")
        try:
            cache = self._prepared
            prepared = [cache[i.stencil] for i in instructions]
        except KeyError:  # first use of a stencil in this process
            prepared = [self.prepared(i.stencil) for i in instructions]
        if not prepared[-1].ends_trace:
            raise EmitError(f"the last instruction ({instructions[-1].name}) falls off the end")
        offsets = [0, *itertools.accumulate([len(p.code) for p in prepared])]
        size = offsets[-1]
        self.runtime.reap()
        base = self.runtime.arena.alloc(size)
        try:
            code = bytearray(b"".join([p.code for p in prepared]))
            try:
                self._patch(code, base, instructions, prepared, offsets)
            except struct.error as e:  # a displacement that does not fit
                raise EmitError(f"cannot patch: {e}") from None
            self.runtime.arena.write(base, bytes(code))
        except BaseException:
            self.runtime.arena.free(base, size)
            raise
        return Trace(self.runtime, base, size, instructions, prepared, offsets, tuple(constants))

    @staticmethod
    def _patch(code: bytearray, base: int, instructions: tuple[Instruction, ...],
               prepared: list[Prepared], offsets: list[int]) -> None:
        # The hot loop of emission, kept flat: ~1 µs per uop is the budget.
        # (Each value picked by a branch, not from a tuple of all six: compiled,
        # every item of such a tuple is an int object made, most of them
        # big enough to be allocated.)
        pack_i, pack_q = _pack_i, _pack_q
        count = len(instructions)
        for index, inst in enumerate(instructions):
            p = prepared[index]
            start = offsets[index]
            here = base + start
            if p.fixed:
                for offset, value in p.fixed:
                    pack_i(code, start + offset, value - here)
            if p.dynamic:
                for offset, mode, source, addend in p.dynamic:
                    if source == 0:
                        value = inst.oparg + addend
                    elif source == 1:
                        value = inst.operand0 + addend
                    elif source == 2:
                        value = inst.operand1 + addend
                    elif source == 3:
                        value = here + len(p.code) + addend
                    elif source == 4:
                        value = here + addend
                    else:
                        value = inst.oparg * 8 + addend
                    if mode == 1:
                        pack_i(code, start + offset, value - here - offset)
                    elif mode:
                        pack_i(code, start + offset, value)
                    else:
                        pack_q(code, start + offset, value & _MASK64)
            if p.targets:
                for offset, rel32, field, addend in p.targets:
                    target = inst.jump if field == "jump" else inst.exit if field == "exit" else inst.error
                    if target is None or target >= count:
                        raise EmitError(f"instruction {index} ({inst.name}) needs a valid "
                                        f"{field} target, not {target}")
                    value = base + offsets[target] + addend
                    if rel32:
                        pack_i(code, start + offset, value - here - offset)
                    else:
                        pack_q(code, start + offset, value & _MASK64)


def load_stencils() -> None:
    """Read the stencil file now (~0.4 ms, once a process; see stencil.py's
    _Records), not at the first stencil a trace uses."""
    stencils = runtime().table.stencils
    load = getattr(stencils, "load", None)
    if load is not None:
        load()


def emit(instructions: list[Instruction] | tuple[Instruction, ...],
         constants: tuple[object, ...] = ()) -> Trace:
    """Emit with the process's shared emitter."""
    return _shared().emit(instructions, constants)


_the_emitter: Emitter | None = None


def _shared() -> Emitter:
    """The process's emitter (functools.cache without functools, which is
    not loaded yet at the first hot loop of an installed copyjit)."""
    global _the_emitter
    if _the_emitter is None:
        _the_emitter = Emitter()
    return _the_emitter
