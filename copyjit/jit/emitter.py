"""Copy and patch: a list of uop instructions becomes native code.

Each instruction's stencil is copied end to end; an instruction's
continuation is always the next one, laid directly after it, so a stencil's
final `jmp CONTINUE` is dropped (fall-through). Holes whose value is the same
in every copy (GOT slots, data, C symbols) are patched once per process when
a stencil is first used; the emitter patches only what differs per copy.
"""

from __future__ import annotations

import dataclasses
import struct

from copyjit.jit import memory
from copyjit.jit.runtime import Runtime, runtime
from copyjit.stencil import Hole, HoleKind, HoleValue
from copyjit.uops import UOPS, variant_name


class EmitError(ValueError):
    """The instructions cannot be emitted (unknown uop, missing target, ...)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Instruction:
    """One uop of a trace, with registers, operands and targets chosen.

    `jump`, `exit` and `error` are indices of other instructions of the same
    trace: where a taken branch, a failed guard and a raised exception go.
    """

    name: str
    ins: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    oparg: int = 0
    operand0: int = 0
    operand1: int = 0
    jump: int | None = None
    exit: int | None = None
    error: int | None = None
    stencil: str = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stencil", variant_name(self.name, self.ins, self.outs))


# What a per-copy hole's S is, in the emitter's inner loop.
_FIXED, _OPARG, _OPERAND0, _OPERAND1, _CONTINUE, _JUMP, _EXIT, _ERROR, _CODE = range(9)
_SOURCES = {
    HoleValue.OPARG: _OPARG,
    HoleValue.OPERAND0: _OPERAND0,
    HoleValue.OPERAND1: _OPERAND1,
    HoleValue.CONTINUE: _CONTINUE,
    HoleValue.JUMP_TARGET: _JUMP,
    HoleValue.EXIT_TARGET: _EXIT,
    HoleValue.ERROR_TARGET: _ERROR,
    HoleValue.CODE: _CODE,
}
_TARGET_FIELD = {_JUMP: "jump", _EXIT: "exit", _ERROR: "error"}


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    """A stencil as laid out in traces of this process."""

    name: str
    code: bytes  # tail jump dropped; fixed absolute holes patched
    holes: tuple[Hole, ...]  # all holes still in `code`, for annotation
    patches: tuple[tuple[int, bool, int, int], ...]  # (offset, rel32?, source, constant)
    ends_trace: bool


def prepare(rt: Runtime, name: str) -> Prepared:
    try:
        stencil = rt.table.stencils[name]
    except KeyError:
        raise EmitError(f"no stencil named {name!r}") from None
    stencil = stencil.without_tail_jump()
    code = bytearray(stencil.code)
    patches = []
    for hole in stencil.holes:
        fixed = rt.fixed_value(hole)
        if fixed is not None and hole.kind is HoleKind.ABS64:
            struct.pack_into("<Q", code, hole.offset, fixed & 0xFFFF_FFFF_FFFF_FFFF)
        elif fixed is not None:
            patches.append((hole.offset, True, _FIXED, fixed))
        else:
            patches.append((hole.offset, hole.kind is not HoleKind.ABS64, _SOURCES[hole.value], hole.addend))
    uop = name.partition("__")[0]
    return Prepared(name, bytes(code), stencil.holes, tuple(patches), UOPS[uop].ends_trace)


class Trace:
    """Native code for a list of instructions, callable from Python.

    `trace(frame)` runs it on a frame object or a raw frame address and
    returns the exit code of the `_EXIT_TRACE` it left by.
    """

    def __init__(self, rt: Runtime, address: int, size: int,
                 instructions: tuple[Instruction, ...], prepared: list[Prepared],
                 offsets: list[int]) -> None:
        self.runtime = rt
        self.address = address
        self.size = size
        self.instructions = instructions
        self.prepared = prepared
        self.offsets = offsets  # of each instruction, then the end
        self._cell = bytearray(struct.pack("<Q", address))
        self.entry = rt.entry_function(self._cell)

    def __call__(self, frame: object) -> int:
        return self.entry(frame)  # type: ignore[operator,no-any-return]

    @property
    def freed(self) -> bool:
        return self.size == 0

    def free(self) -> None:
        """Give the code back; a later call raises RuntimeError."""
        if self.freed:
            return
        self._cell[:] = bytes(8)
        self.runtime.arena.free(self.address, self.size)
        self.size = 0

    def code(self) -> bytes:
        import ctypes

        return ctypes.string_at(self.address, self.size)


_MASK64 = 0xFFFF_FFFF_FFFF_FFFF
_pack_q = struct.Struct("<Q").pack_into
_pack_i = struct.Struct("<i").pack_into


class Emitter:
    def __init__(self, rt: Runtime | None = None) -> None:
        self.runtime = rt or runtime()
        self._prepared: dict[str, Prepared] = {}

    def prepared(self, name: str) -> Prepared:
        p = self._prepared.get(name)
        if p is None:
            p = self._prepared[name] = prepare(self.runtime, name)
        return p

    def emit(self, instructions: list[Instruction] | tuple[Instruction, ...]) -> Trace:
        instructions = tuple(instructions)
        if not instructions:
            raise EmitError("an empty trace has nowhere to exit")
        cache = self._prepared
        prepared = [cache.get(i.stencil) or self.prepared(i.stencil) for i in instructions]
        if not prepared[-1].ends_trace:
            raise EmitError(f"the last instruction ({instructions[-1].name}) falls off the end")
        offsets = []
        size = 0
        for p in prepared:
            offsets.append(size)
            size += len(p.code)
        offsets.append(size)
        base = self.runtime.arena.alloc(size)
        try:
            code = bytearray(b"".join([p.code for p in prepared]))
            self._patch(code, base, instructions, prepared, offsets)
            self.runtime.arena.write(base, bytes(code))
        except BaseException:
            self.runtime.arena.free(base, size)
            raise
        return Trace(self.runtime, base, size, instructions, prepared, offsets)

    @staticmethod
    def _patch(code: bytearray, base: int, instructions: tuple[Instruction, ...],
               prepared: list[Prepared], offsets: list[int]) -> None:
        count = len(instructions)
        for index, p in enumerate(prepared):
            start = offsets[index]
            inst = instructions[index]
            for offset, rel32, source, value in p.patches:
                if source == _CONTINUE:
                    value += base + offsets[index + 1]
                elif source == _OPARG:
                    value += inst.oparg
                elif source == _OPERAND0:
                    value += inst.operand0
                elif source == _OPERAND1:
                    value += inst.operand1
                elif source == _CODE:
                    value += base + start
                elif source != _FIXED:
                    target = getattr(inst, _TARGET_FIELD[source])
                    if target is None or not 0 <= target < count:
                        raise EmitError(
                            f"instruction {index} ({inst.name}) needs a valid "
                            f"{_TARGET_FIELD[source]} target, not {target}"
                        )
                    value += base + offsets[target]
                where = start + offset
                if rel32:
                    value -= base + where
                    if not -0x8000_0000 <= value < 0x8000_0000:
                        raise EmitError(f"instruction {index} ({inst.name}): rel32 out of range")
                    _pack_i(code, where, value)
                else:
                    _pack_q(code, where, value & _MASK64)


def emit(instructions: list[Instruction] | tuple[Instruction, ...]) -> Trace:
    """Emit with the process's shared emitter."""
    return _default().emit(instructions)


_emitter: Emitter | None = None


def _default() -> Emitter:
    global _emitter
    if _emitter is None:
        _emitter = Emitter()
    return _emitter


__all__ = ["EmitError", "Emitter", "Instruction", "Trace", "emit", "memory"]
