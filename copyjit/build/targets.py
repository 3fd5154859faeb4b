"""What differs between targets: compiler flags and relocation encodings."""

from __future__ import annotations

import dataclasses
import sysconfig
from collections.abc import Callable

import capstone

from copyjit.stencil import JMP_REL32, Hole, HoleKind, HoleValue, Stencil


@dataclasses.dataclass(frozen=True)
class Target:
    name: str  # the key of the generated stencil module
    triple: str
    machine: str  # ELF e_machine of its objects
    flags: tuple[str, ...]
    relocations: dict[str, HoleKind]  # the only relocation types understood
    peephole: Callable[[Stencil], Stencil] = lambda stencil: stencil

    def include_flags(self) -> list[str]:
        # `-target *-none` does not search the system's headers: name them.
        multiarch = sysconfig.get_config_var("MULTIARCH") or ""
        flags = ["-isystem", "/usr/include"]
        if multiarch:
            flags[:0] = ["-isystem", f"/usr/include/{multiarch}"]
        include = sysconfig.get_paths()["include"]
        return [*flags, "-I", include, "-I", f"{include}/internal"]


# Flags after CPython's Tools/jit (see DESIGN.md §3), plus:
# -fno-jump-tables: a jump table in .rodata would hold addresses of code
#   inside one copy of the stencil, which the shared data cannot.
# -ffunction-sections / -fdata-sections: one section per variant, so each
#   variant's code and relocations can be read on their own.
COMMON_FLAGS = (
    "-Os",
    "-std=c11",
    "-fno-asynchronous-unwind-tables",
    "-fno-unwind-tables",
    "-fno-builtin",
    "-fno-plt",
    "-fno-stack-protector",
    "-fomit-frame-pointer",
    "-fno-jump-tables",
    "-ffunction-sections",
    "-fdata-sections",
    "-Wall",
    "-Wno-unused-variable",
    "-Wno-unused-but-set-variable",
    "-Werror",
)

def _x86_64_branch_targets(stencil: Stencil) -> tuple[set[int], set[int]]:
    """Instruction starts, and targets of jumps within the stencil.

    A jump whose displacement is a hole leaves the stencil; capstone would
    show its zero displacement as a jump to the next instruction.
    """
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    holes = {h.offset for h in stencil.holes}
    starts: set[int] = set()
    targets: set[int] = set()
    for insn in md.disasm(stencil.code, 0):
        starts.add(insn.address)
        patched = any(insn.address < o < insn.address + insn.size for o in holes)
        if insn.group(capstone.CS_GRP_JUMP) and not patched:
            targets.update(op.imm for op in insn.operands if op.type == capstone.x86.X86_OP_IMM)
    return starts, targets


def x86_64_invert_final_branch(stencil: Stencil) -> Stencil:
    """Make a final conditional jump to CONTINUE droppable by fall-through.

    before:  jcc CONTINUE ; jmp OTHER     (clang's conditional tail call)
    after:   jncc OTHER   ; jmp CONTINUE  (same length; the jmp can be dropped)

    Only when nothing inside the stencil jumps to the final `jmp`, which
    would otherwise land on CONTINUE instead of OTHER.
    """
    code, size = stencil.code, len(stencil.code)
    if size < 11 or code[-11] != 0x0F or not 0x80 <= code[-10] <= 0x8F or code[-5] != JMP_REL32:
        return stencil
    by_offset = {h.offset: h for h in stencil.holes if h.kind is HoleKind.REL32 and h.addend == -4}
    jcc, jmp = by_offset.get(size - 9), by_offset.get(size - 4)
    if jcc is None or jmp is None or jcc.value is not HoleValue.CONTINUE:
        return stencil
    starts, targets = _x86_64_branch_targets(stencil)
    if {size - 11, size - 5} - starts or size - 5 in targets:
        return stencil
    inverted = code[:-10] + bytes([code[-10] ^ 1]) + code[-9:]  # cc ^ 1 negates cc
    moved = {
        jcc: Hole(jcc.offset, jcc.kind, jmp.value, jmp.symbol, jmp.addend),
        jmp: Hole(jmp.offset, jmp.kind, HoleValue.CONTINUE, "", jmp.addend),
    }
    return Stencil(stencil.name, inverted, tuple(moved.get(h, h) for h in stencil.holes))


X86_64_LINUX = Target(
    name="x86_64_linux",
    triple="x86_64-linux-none",
    machine="EM_X86_64",
    flags=(*COMMON_FLAGS, "-fno-pic", "-mcmodel=medium", "-mlarge-data-threshold=0"),
    relocations={
        "R_X86_64_64": HoleKind.ABS64,
        "R_X86_64_32S": HoleKind.ABS32S,
        "R_X86_64_PC32": HoleKind.REL32,
        "R_X86_64_PLT32": HoleKind.REL32,
        "R_X86_64_GOTPCREL": HoleKind.GOT_REL32,
        "R_X86_64_GOTPCRELX": HoleKind.GOT_REL32,
        "R_X86_64_REX_GOTPCRELX": HoleKind.GOT_REL32,
    },
    peephole=x86_64_invert_final_branch,
)


def host() -> Target:
    import platform

    if platform.machine() == "x86_64" and platform.system() == "Linux":
        return X86_64_LINUX
    raise NotImplementedError(f"copyjit has no target for {platform.machine()} {platform.system()}")
