"""Disassembly with capstone, each instruction tied to its uop and its holes."""

from __future__ import annotations

import capstone

from copyjit.jit import asm
from copyjit.stencil import Hole, Stencil

_md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)


def _holes_in(holes: tuple[Hole, ...], start: int, size: int) -> list[Hole]:
    return [h for h in holes if start <= h.offset < start + size]


def _line(address: int, raw: bytes, text: str, notes: list[str]) -> str:
    line = f"  {address:>#6x}: {raw.hex(' '):<30} {text}"
    return f"{line:<78} ; {', '.join(notes)}" if notes else line


def stencil(s: Stencil) -> str:
    """Like `objdump -dr`: the stencil at address 0, holes unpatched."""
    lines = [f"{s.name}: {len(s.code)} bytes"]
    for insn in _md.disasm(s.code, 0):
        notes = [h.describe() for h in _holes_in(s.holes, insn.address, insn.size)]
        lines.append(_line(insn.address, bytes(insn.bytes), f"{insn.mnemonic} {insn.op_str}".strip(), notes))
    return "\n".join(lines) + "\n"


def trace(t: object, only: range | None = None) -> str:
    """The code of an emitted trace (or of the uops in `only`), read back from memory."""
    from copyjit.jit.emitter import Trace

    assert isinstance(t, Trace)
    code = t.code()
    lines = [f"trace at {t.address:#x}, {t.size} bytes, {len(t.instructions)} uops"]
    for index, (inst, prepared) in enumerate(zip(t.instructions, t.prepared)):
        if only is not None and index not in only:
            continue
        start, end = t.offsets[index], t.offsets[index + 1]
        lines.append(f"#{index} " + asm.dump([inst]).strip())
        for insn in _md.disasm(code[start:end], t.address + start):
            local = insn.address - t.address - start
            notes = [_describe(h, inst, t) for h in _holes_in(prepared.holes, local, insn.size)]
            lines.append(_line(insn.address, bytes(insn.bytes), f"{insn.mnemonic} {insn.op_str}".strip(), notes))
    return "\n".join(lines) + "\n"


def _describe(hole: Hole, inst: object, t: object) -> str:
    from copyjit.jit.emitter import Instruction, Trace

    assert isinstance(inst, Instruction) and isinstance(t, Trace)
    name = hole.value.name
    field = {"JUMP_TARGET": inst.jump, "EXIT_TARGET": inst.exit, "ERROR_TARGET": inst.error}
    if name in field:
        return f"{name} -> #{field[name]}"
    if name in ("OPARG", "OPERAND0", "OPERAND1"):
        value = getattr(inst, name.lower())
        return f"{name} = {value:#x}" if value > 1024 else f"{name} = {value}"
    return hole.describe()
