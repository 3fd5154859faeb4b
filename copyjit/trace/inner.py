"""What the JIT knows of a nested loop's trace, as the recorder and the
lowering see it, and what the recorder reads of a decoded instruction:
type checking only (nothing imports this at run time).
Its own module: mypyc, which compiles ir.py, takes no class under an `if`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from copyjit.trace.ir import InnerBody, Snapshot


class InnerLoop(Protocol):
    """What the JIT knows of a nested loop's trace."""

    record: int
    cell: int
    keep: object

    def run(self, raw_frame: int) -> int: ...

    def snapshot(self, status: int) -> Snapshot | None: ...

    def leaving_exits(self) -> list[tuple[int, Snapshot, tuple[str, ...]]]: ...

    def pushed_kinds(self, status: int) -> tuple[str, ...] | None: ...

    def inline_body(self, status: int) -> InnerBody | None: ...


InnerLookup = Callable[[int], InnerLoop | None]


class Decoded(Protocol):
    """An instruction as copyjit.trace.bytecode decodes it: the fields of
    dis.Instruction the recorder reads (a protocol, not dis's NamedTuple,
    which compiled code would check it is)."""

    opname: str
    opcode: int
    arg: int | None
    offset: int
    start_offset: int
    argval: Any  # (dis.Instruction's own type)
    argrepr: str
