"""Compile the uop table to stencils: C -> clang -> ELF -> holes -> a Python table."""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import shlex
import subprocess
import sys
import tempfile
from typing import Final

from copyjit.build import cgen, elf
from copyjit.build.targets import Target
from copyjit.build.versions import LAYOUT_PROBES
from copyjit.stencil import Hole, HoleKind, HoleValue, Stencil, Table
from copyjit.uops import SPILL_SLOTS, UOPS

C_DIR = pathlib.Path(__file__).parent.parent / "c"
RUNTIME_FUNCTIONS = ("copyjit_enter", "copyjit_on_jump", "copyjit_write_code",
                     "copyjit_reraise", "copyjit_keys_version", "copyjit_key_index", "copyjit_instance_index",
                     "copyjit_shared_keys_version", "copyjit_call_in_frame", "copyjit_dealloc_rax",
                     "copyjit_float_for_exit", "copyjit_int_for_exit", "copyjit_reraiser_for_exit",
                     "copyjit_store_float_item_rax", "copyjit_store_float_item_c",
                     "copyjit_store_float_attr", "copyjit_store_int_attr",
                     "copyjit_store_float_leaving", "copyjit_store_int_leaving", "copyjit_sync_float",
                     "copyjit_sync_int", "copyjit_check_floats", "copyjit_exit_data",
                     "copyjit_watch_dict_key", "copyjit_on_dict_event",
                     "copyjit_frame_read", "copyjit_frame_write", "copyjit_frame_stack",
                     "copyjit_frame_depth", "copyjit_frame_push", "copyjit_frame_drop")

# Sections every object file has that carry nothing a stencil needs.
IGNORED_SECTIONS = frozenset(
    {"", ".text", ".comment", ".note.GNU-stack", ".llvm_addrsig", ".eh_frame", ".strtab",
     ".shstrtab", ".symtab"}
)

class BuildError(Exception):
    """The stencils cannot be built; the message names the stencil and the cause."""


def compiler() -> list[str]:
    """The pinned clang: ziglang's, unless COPYJIT_CLANG names another."""
    override = os.environ.get("COPYJIT_CLANG")
    return shlex.split(override) if override else [sys.executable, "-m", "ziglang", "cc"]


def compiler_version() -> str:
    out = subprocess.run([*compiler(), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0].strip()


class _DataLayout:
    """Read-only data of all stencils, laid out once and shared by every copy."""

    def __init__(self) -> None:
        self.blob = bytearray()
        self._placed: dict[tuple[bytes, int], int] = {}

    def place(self, section: elf.Section) -> int:
        key = (section.data, section.align)
        if key not in self._placed:
            self.blob += bytes(-len(self.blob) % section.align)
            self._placed[key] = len(self.blob)
            self.blob += section.data
        return self._placed[key]


def _check_sections(unit: str, obj: elf.ObjectFile) -> None:
    for section in obj.sections.values():
        if section.name in IGNORED_SECTIONS or not section.alloc:
            if section.execute and section.size:
                raise BuildError(f"{unit}: code outside a function section: {section.name}")
            continue
        if section.write and section.size:
            raise BuildError(
                f"{unit}: writable data section {section.name!r}: stencils are copied, "
                "so static variables would not be shared; pass state through operands"
            )
        if section.type not in ("SHT_PROGBITS",):
            raise BuildError(f"{unit}: section {section.name!r} of type {section.type} not understood")
        if not section.execute and section.relocations:
            raise BuildError(
                f"{unit}: data section {section.name!r} has relocations "
                f"({section.relocations[0].type} against {section.relocations[0].symbol}); "
                "shared data must not point into code or symbols"
            )


# The holes in copyjit.h's small section, which clang writes as 32-bit
# absolute values (a displacement, an immediate), and what each stands for.
_SMALL_HOLES: Final = {"_JIT_SLOT_OFFSET": HoleValue.SLOT_OFFSET, "_JIT_OPARG_IMM32": HoleValue.OPARG}


def _hole(
    name: str, section: elf.Section, rel: elf.Relocation, target: Target,
    obj: elf.ObjectFile, data: _DataLayout,
) -> Hole:
    kind = target.relocations.get(rel.type)
    if kind is None:
        raise BuildError(
            f"stencil {name}: relocation {rel.type} against {rel.symbol!r} at offset "
            f"{rel.offset:#x} is not understood by the {target.name} builder"
        )
    if kind is HoleKind.ABS32S and not rel.symbol.startswith("_JIT_"):
        raise BuildError(f"stencil {name}: {rel.type} against {rel.symbol!r}: an address in 32 bits")
    if rel.section is None:
        if rel.symbol.startswith("_JIT_"):
            small = _SMALL_HOLES.get(rel.symbol)
            try:
                value = small if small is not None else HoleValue[rel.symbol.removeprefix("_JIT_")]
            except KeyError:
                raise BuildError(f"stencil {name}: unknown hole {rel.symbol}") from None
            if kind is HoleKind.GOT_REL32:
                raise BuildError(f"stencil {name}: {rel.type} through the GOT for hole {rel.symbol}")
            if (kind is HoleKind.ABS32S) != (small is not None):
                raise BuildError(f"stencil {name}: {rel.type} for hole {rel.symbol} (the holes of "
                                 "copyjit.h's small section, SLOT_OFFSET and OPARG_IMM32, and only "
                                 "those, are 32 bits absolute)")
            return Hole(rel.offset, kind, value, "", rel.addend)
        return Hole(rel.offset, kind, HoleValue.SYMBOL, rel.symbol, rel.addend)
    if kind is HoleKind.GOT_REL32:
        raise BuildError(f"stencil {name}: {rel.type} through the GOT for local {rel.symbol!r}")
    if rel.section == section.name:
        return Hole(rel.offset, kind, HoleValue.CODE, "", rel.value + rel.addend)
    home = obj.sections[rel.section]
    if home.execute:
        raise BuildError(
            f"stencil {name}: calls or refers to code in {rel.section!r}; "
            "helpers must be static inline"
        )
    if home.write or not home.alloc:
        raise BuildError(f"stencil {name}: refers to {rel.section!r}, which is not read-only data")
    return Hole(rel.offset, kind, HoleValue.DATA, "", data.place(home) + rel.value + rel.addend)


def stencils_from_object(
    unit: str, blob: bytes, target: Target, data: _DataLayout
) -> dict[str, Stencil]:
    obj = elf.read(blob)
    if obj.machine != target.machine:
        raise BuildError(f"{unit}: object is for {obj.machine}, not {target.machine}")
    _check_sections(unit, obj)
    result = {}
    for section in obj.sections.values():
        if not (section.execute and section.size):
            continue
        if len(section.functions) != 1:
            raise BuildError(f"{unit}: section {section.name} holds {section.functions or 'no function'}")
        (function,) = section.functions
        name = function.removeprefix(cgen.C_PREFIX)
        holes = tuple(_hole(name, section, r, target, obj, data) for r in section.relocations)
        result[name] = target.peephole(Stencil(name, section.data, holes))
    return result


def _compile(source: str, unit: str, target: Target, workdir: pathlib.Path) -> bytes:
    c_file = workdir / f"{unit}.c"
    o_file = workdir / f"{unit}.o"
    c_file.write_text(source)
    command = [
        *compiler(), "-target", target.triple, *target.flags, *target.include_flags(),
        f"-DSPILL_SLOTS={SPILL_SLOTS}", "-I", str(C_DIR), "-c", str(c_file), "-o", str(o_file),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise BuildError(f"compiling {unit} failed:\n{done.stderr}")
    return o_file.read_bytes()


def _layout_source(probes: dict[str, str]) -> str:
    values = ",\n    ".join(f"(uint64_t)({expr})" for expr in probes.values())
    return (
        '#include "copyjit.h"\n#include <stddef.h>\n'
        f"const uint64_t copyjit_layout[] = {{\n    {values}\n}};\n"
    )


def _read_layout(blob: bytes, probes: dict[str, str]) -> dict[str, int]:
    # -mlarge-data-threshold=0 puts every object in .lrodata.*, not .rodata.*
    (section,) = [s for s in elf.read(blob).sections.values() if s.name.endswith(".copyjit_layout")]
    words = [int.from_bytes(section.data[i : i + 8], "little") for i in range(0, len(section.data), 8)]
    return dict(zip(probes, words, strict=True))


def sources() -> dict[str, str]:
    """Every translation unit, by name: one per uop, plus the runtime."""
    units = {name: cgen.uop_source(op) for name, op in UOPS.items()}
    units["runtime"] = (C_DIR / "runtime.c").read_text()
    units["objects"] = (C_DIR / "objects.c").read_text()
    return units


def compile_units(units: dict[str, str], target: Target) -> dict[str, bytes]:
    """Object files for C translation units, compiled in parallel."""
    with tempfile.TemporaryDirectory(prefix="copyjit-build-") as tmp, \
            concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        work = pathlib.Path(tmp)
        jobs = {unit: pool.submit(_compile, src, unit, target, work) for unit, src in units.items()}
        return {unit: job.result() for unit, job in jobs.items()}


def build_units(units: dict[str, str], target: Target) -> tuple[dict[str, Stencil], bytes]:
    """Stencils (and their shared data) from C translation units."""
    objects = compile_units(units, target)
    data = _DataLayout()
    stencils: dict[str, Stencil] = {}
    for unit in sorted(units):  # sorted: the data layout must not depend on timing
        stencils |= stencils_from_object(unit, objects[unit], target, data)
    return stencils, bytes(data.blob)


def build(target: Target) -> Table:
    probes = LAYOUT_PROBES.get(sys.version_info[:2])
    if probes is None:
        raise BuildError(f"copyjit does not support Python {sys.version_info[:2]} yet")
    layout = _read_layout(compile_units({"layout": _layout_source(probes)}, target)["layout"], probes)
    stencils, data = build_units(sources(), target)
    runtime = {name: stencils.pop(name) for name in RUNTIME_FUNCTIONS}
    _check_runtime(runtime)
    symbols = sorted({h.symbol for s in (*stencils.values(), *runtime.values()) for h in s.holes if h.symbol})
    return Table(
        python=".".join(map(str, sys.version_info[:3])),
        target=target.name,
        compiler=compiler_version(),
        layout=layout,
        data=data,
        symbols=tuple(symbols),
        stencils=dict(sorted(stencils.items())),
        runtime=runtime,
    )


def _check_runtime(runtime: dict[str, Stencil]) -> None:
    for stencil in runtime.values():
        for hole in stencil.holes:
            if hole.value not in (HoleValue.SYMBOL, HoleValue.DATA, HoleValue.CODE):
                raise BuildError(f"runtime function {stencil.name} has a {hole.value.name} hole")
