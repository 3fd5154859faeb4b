"""Stencils and their holes: the data the build produces and the emitter uses.

NamedTuples, not dataclasses: this module is on the start-up path, and
dataclasses imports inspect (~10 ms).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple


class HoleKind(enum.Enum):
    """How a hole is written: the machine encoding of the patched field."""

    ABS64 = "ABS64"  # 64-bit absolute value: S + A
    REL32 = "REL32"  # 32-bit PC-relative: S + A - P
    GOT_REL32 = "GOT_REL32"  # 32-bit PC-relative to the GOT slot of symbol S


class HoleValue(enum.Enum):
    """What a hole's symbol S stands for."""

    CONTINUE = "CONTINUE"  # the next instruction of the trace
    JUMP_TARGET = "JUMP_TARGET"  # where a taken branch goes
    EXIT_TARGET = "EXIT_TARGET"  # where a failed guard goes
    ERROR_TARGET = "ERROR_TARGET"  # where a raised exception goes
    OPARG = "OPARG"
    OPERAND0 = "OPERAND0"
    OPERAND1 = "OPERAND1"
    CODE = "CODE"  # this stencil's own code (addend: offset within it)
    DATA = "DATA"  # the shared read-only data (addend: offset within it)
    SYMBOL = "SYMBOL"  # a C symbol of the running interpreter (or libc)


# Values that differ from one instruction of a trace to the next.
JMP_REL32 = 0xE9
JMP_REL32_SIZE = 5


class Hole(NamedTuple):
    offset: int
    kind: HoleKind
    value: HoleValue
    symbol: str  # the C symbol for SYMBOL and GOT holes, else ""
    addend: int

    def describe(self) -> str:
        """e.g. `REL32 CONTINUE`, `GOT_REL32 GOT[_Py_Dealloc]`, `ABS64 DATA+0x10`."""
        what = self.symbol if self.symbol else self.value.name
        # A PC-relative field is 4 bytes before the end of its instruction
        # here, so -4 is the usual addend and not worth showing.
        usual = -4 if self.kind is not HoleKind.ABS64 else 0
        if self.kind is HoleKind.GOT_REL32:
            what = f"GOT[{what}]"
        if self.value in (HoleValue.DATA, HoleValue.CODE):
            what = f"{what}+{self.addend - usual:#x}"
        elif self.addend != usual:
            what = f"{what}{self.addend - usual:+#x}"
        return f"{self.kind.value} {what}"

    def as_tuple(self) -> tuple[int, str, str, str, int]:
        return (self.offset, self.kind.value, self.value.value, self.symbol, self.addend)

    @classmethod
    def from_tuple(cls, row: tuple[int, str, str, str, int]) -> Hole:
        offset, kind, value, symbol, addend = row
        return cls(offset, HoleKind(kind), HoleValue(value), symbol, addend)


class Stencil(NamedTuple):
    name: str
    code: bytes
    holes: tuple[Hole, ...]

    @property
    def tail_jump(self) -> Hole | None:
        """The hole of a final `jmp CONTINUE`, which fall-through can drop."""
        if len(self.code) < JMP_REL32_SIZE or self.code[-JMP_REL32_SIZE] != JMP_REL32:
            return None
        for hole in self.holes:
            if (
                hole.offset == len(self.code) - 4
                and hole.kind is HoleKind.REL32
                and hole.value is HoleValue.CONTINUE
                and hole.addend == -4
            ):
                return hole
        return None

    def without_tail_jump(self) -> Stencil:
        """This stencil as laid out when its continuation follows it directly."""
        tail = self.tail_jump
        if tail is None:
            return self
        holes = tuple(h for h in self.holes if h is not tail)
        return Stencil(self.name, self.code[:-JMP_REL32_SIZE], holes)


class Table(NamedTuple):
    """Everything one build produces, and the generated module holds."""

    python: str  # the CPython whose headers the stencils were compiled against
    target: str
    compiler: str
    layout: dict[str, int]  # frame field offsets and ABI constants
    data: bytes  # read-only data shared by every stencil
    symbols: tuple[str, ...]  # every external C symbol, in GOT order
    stencils: Mapping[str, Stencil]
    runtime: Mapping[str, Stencil]  # normal-ABI helpers, emitted once per process

    def render(self) -> str:
        """JSON Lines: a header (everything but the stencils), then one line
        per stencil, so that start-up parses only the header and a stencil
        is parsed when first used. Byte-identical for identical builds."""
        header = {
            "generated": "by `python -m copyjit stencils --build` from copyjit/uops.py and "
                         "copyjit/c/; do not edit",
            "python": self.python,
            "target": self.target,
            "compiler": self.compiler,
            "layout": self.layout,
            "symbols": list(self.symbols),
            "data": self.data.hex(),
            "runtime": {name: _row(s) for name, s in self.runtime.items()},
        }
        lines = [json.dumps(header)]
        lines += [json.dumps([name, *_row(s)]) for name, s in self.stencils.items()]
        return "\n".join(lines) + "\n"

    @classmethod
    def from_jsonl(cls, text: str) -> Table:
        header_line, _, rest = text.partition("\n")
        header = json.loads(header_line)
        return cls(
            python=header["python"],
            target=header["target"],
            compiler=header["compiler"],
            layout=header["layout"],
            data=bytes.fromhex(header["data"]),
            symbols=tuple(header["symbols"]),
            stencils=_LazyStencils(rest.splitlines()),
            runtime={name: _stencil(name, code, holes) for name, (code, holes) in header["runtime"].items()},
        )


def _row(stencil: Stencil) -> list[Any]:
    return [stencil.code.hex(), [h.as_tuple() for h in stencil.holes]]


def _stencil(name: str, code: str, holes: list[list[Any]]) -> Stencil:
    return Stencil(name, bytes.fromhex(code), tuple(Hole.from_tuple(tuple(h)) for h in holes))


class _LazyStencils(Mapping[str, Stencil]):
    """Stencils parsed from their JSON lines on first use: a process uses few."""

    def __init__(self, lines: list[str]) -> None:
        # Each line is ["name", "code", [holes]]: the name is read without parsing.
        self._lines = {line[2 : line.index('"', 2)]: line for line in lines if line}
        self._made: dict[str, Stencil] = {}

    def __getitem__(self, name: str) -> Stencil:
        stencil = self._made.get(name)
        if stencil is None:
            _, code, holes = json.loads(self._lines[name])
            stencil = self._made[name] = _stencil(name, code, holes)
        return stencil

    def __iter__(self) -> Iterator[str]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)
