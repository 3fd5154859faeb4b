"""Disassembly with capstone, each instruction tied to its uop and its holes."""

from __future__ import annotations

import capstone

from copyjit.backend import asm
from copyjit.backend.emitter import Instruction, Trace
from copyjit.stencil import Hole, Stencil

_md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)


def _holes_in(holes: tuple[Hole, ...], start: int, size: int) -> list[Hole]:
    return [h for h in holes if start <= h.offset < start + size]


def _line(insn: capstone.CsInsn, notes: list[str]) -> str:
    text = f"{insn.mnemonic} {insn.op_str}".strip()
    line = f"  {insn.address:>#6x}: {bytes(insn.bytes).hex(' '):<30} {text}"
    return f"{line:<78} ; {', '.join(notes)}" if notes else line


def stencil(s: Stencil) -> str:
    """Like `objdump -dr`: the stencil at address 0, holes unpatched."""
    lines = [f"{s.name}: {len(s.code)} bytes"]
    for insn in _md.disasm(s.code, 0):
        notes = [h.describe() for h in _holes_in(s.holes, insn.address, insn.size)]
        lines.append(_line(insn, notes))
    return "\n".join(lines) + "\n"


def trace(t: Trace, only: range | None = None) -> str:
    """The code of an emitted trace (or of the uops in `only`), read back from memory."""
    code = t.code()
    lines = [f"trace at {t.address:#x}, {t.size} bytes, {len(t.instructions)} uops"]
    for index, (inst, prepared) in enumerate(zip(t.instructions, t.prepared, strict=True)):
        if only is not None and index not in only:
            continue
        start, end = t.offsets[index], t.offsets[index + 1]
        lines.append(f"#{index} " + asm.dump([inst]).strip())
        for insn in _md.disasm(code[start:end], t.address + start):
            local = insn.address - t.address - start
            notes = [_describe(h, inst) for h in _holes_in(prepared.holes, local, insn.size)]
            lines.append(_line(insn, notes))
    return "\n".join(lines) + "\n"


def _describe(hole: Hole, inst: Instruction) -> str:
    name = hole.value.name
    field = {"JUMP_TARGET": inst.jump, "EXIT_TARGET": inst.exit, "ERROR_TARGET": inst.error}
    if name in field:
        return f"{name} -> #{field[name]}"
    if name in ("OPARG", "OPERAND0", "OPERAND1"):
        value = getattr(inst, name.lower())
        return f"{name} = {value:#x}" if value > 1024 else f"{name} = {value}"
    return hole.describe()
