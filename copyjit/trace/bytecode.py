"""A code object's instructions, as `dis.get_instructions` gives them, but fast.

The recorder decodes the code of every loop it records. dis makes each
instruction with its source position, label and argument description
(~4 µs each: 0.3 to 2 ms a recording, most of its time), and importing dis
(with collections) costs 2 to 5 ms at the first hot loop. This decodes
`co_code` the way dis does (EXTENDED_ARG prefixes, inline caches skipped)
into instructions with the fields the recorder reads eagerly: `opname`,
`opcode`, `arg`, `offset`, `start_offset`, and `argval` for constants and
jumps (other opcodes' `argval`, `argrepr` except BINARY_OP's, and any other
field of dis.Instruction: asked of dis itself, on first use; tests compare
every field with dis).
"""

from __future__ import annotations

import itertools
import opcode

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from dis import Instruction
    from types import CodeType

    from copyjit.trace.inner import Decoded  # what these are, as the recorder reads them

_EXTENDED_ARG = opcode.EXTENDED_ARG
_OPNAME = opcode.opname
_HAS_ARG = frozenset(opcode.hasarg)
_HAS_CONST = frozenset(opcode.hasconst)
_HAS_JUMP = frozenset(opcode.hasjump)
_BACKWARD = frozenset(opcode.opmap[name] for name in ("JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT"))
_BINARY_OP = opcode.opmap["BINARY_OP"]
# Inline cache entries after each opcode (code units).
_CACHE_ENTRIES: dict[str, int] = opcode._inline_cache_entries  # type: ignore[attr-defined]  # dis reads it too
_CACHES = [_CACHE_ENTRIES.get(name, 0) for name in _OPNAME]
_NB_OPS: list[tuple[str, str]] = opcode._nb_ops  # type: ignore[attr-defined]  # BINARY_OP's argreprs (dis's)
_INT_OVERFLOW = 2**31  # an oparg is a C int: dis wraps it to a negative one beyond


class _Decoded:
    """One code object's instructions; dis's, made when a rare field is asked for."""

    __slots__ = ("code", "full")

    def __init__(self, code: CodeType) -> None:
        self.code = code
        self.full: dict[int, Instruction] | None = None

    def of(self, offset: int) -> Instruction:
        if self.full is None:
            import dis

            self.full = {i.offset: i for i in dis.get_instructions(self.code)}
        return self.full[offset]


class _Instruction:
    __slots__ = ("arg", "argrepr", "argval", "decoded", "offset", "opcode", "opname", "start_offset")
    argval: object
    argrepr: str

    def __init__(self, decoded: _Decoded, op: int, arg: int | None, offset: int, start_offset: int) -> None:
        self.decoded, self.opcode, self.opname, self.arg = decoded, op, _OPNAME[op], arg
        self.offset, self.start_offset = offset, start_offset

    @property
    def oparg(self) -> int | None:
        return self.arg

    def __getattr__(self, name: str) -> object:
        # Only for the fields not set in __init__ (a slot left empty, or one
        # that is not a slot): dis's value.
        return getattr(self.decoded.of(self.offset), name)

    def __repr__(self) -> str:
        return f"<{self.opname} {self.arg} at {self.offset}>"


def instructions(code: CodeType) -> list[Decoded]:
    """`list(dis.get_instructions(code))`, in effect."""
    raw = code.co_code
    decoded = _Decoded(code)
    consts = code.co_consts
    result: list[Decoded] = []
    extended = 0
    prefixes = 0  # EXTENDED_ARG units before the current instruction
    caches = 0
    for offset in range(0, len(raw), 2):
        if caches:
            caches -= 1
            continue
        op = raw[offset]
        caches = _CACHES[op]
        arg: int | None = None
        if op in _HAS_ARG:
            arg = raw[offset + 1] | extended
            extended = arg << 8 if op == _EXTENDED_ARG else 0
            if extended >= _INT_OVERFLOW:
                extended -= 2 * _INT_OVERFLOW
        else:
            extended = 0
        if op == _EXTENDED_ARG:
            start = offset
            prefixes += 1
        else:
            start = offset - 2 * prefixes
            prefixes = 0
        ins = _Instruction(decoded, op, arg, offset, start)
        if arg is None:
            ins.argval, ins.argrepr = None, ""
        elif op in _HAS_CONST:
            ins.argval = consts[arg]
        elif op in _HAS_JUMP:
            ins.argval = offset + 2 + 2 * _CACHES[op] + 2 * (-arg if op in _BACKWARD else arg)
        elif op == _BINARY_OP:
            ins.argval, ins.argrepr = arg, _NB_OPS[arg][1]
        result.append(ins)
    return result


# The last few codes' instructions (offset -> instruction) and what follows
# each offset: a loop nest's recordings (nested trace, outer trace, bridges),
# the JIT's look at a loop before it (jit.py's _enclosing_loop), and the
# functions a trace inlines decode the same codes, at ~0.8 µs an
# instruction. Shared: not to be changed.
_DECODED: dict[CodeType, tuple[dict[int, Decoded], dict[int, int]]] = {}
_DECODED_CODES = 8


def decoded(code: CodeType) -> tuple[dict[int, Decoded], dict[int, int]]:
    """The code's instructions by offset (in order), and the offset of the
    instruction after each."""
    found = _DECODED.get(code)
    if found is None:
        by_offset = {i.offset: i for i in instructions(code)}
        offsets = list(by_offset)
        found = by_offset, dict(itertools.pairwise(offsets))
        if len(_DECODED) >= _DECODED_CODES:
            del _DECODED[next(iter(_DECODED))]  # the oldest
        _DECODED[code] = found
    return found


_BACKEDGES: dict[CodeType, list[tuple[int, int]]] = {}


def backedges(code: CodeType) -> list[tuple[int, int]]:
    """(offset, target) of each of the code's JUMP_BACKWARDs, in order.
    (Each recording asks for its loop's end and the loops nested in it:
    scanning the instructions' attributes for that was a fifth of
    recording n-body's loops.)"""
    found = _BACKEDGES.get(code)
    if found is None:
        found = [(i.offset, i.argval) for i in decoded(code)[0].values() if i.opname == "JUMP_BACKWARD"]
        if len(_BACKEDGES) >= _DECODED_CODES:
            del _BACKEDGES[next(iter(_BACKEDGES))]  # the oldest
        _BACKEDGES[code] = found
    return found
