"""The parts of an ELF relocatable object file the stencil builder reads."""

from __future__ import annotations

import dataclasses
import io

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection


@dataclasses.dataclass(frozen=True)
class Relocation:
    offset: int
    type: str  # e.g. "R_X86_64_PLT32"
    symbol: str  # symbol name; a section symbol is named by its section
    section: str | None  # where the symbol is defined; None if undefined
    value: int  # the symbol's offset within that section
    addend: int


@dataclasses.dataclass(frozen=True)
class Section:
    name: str
    type: str  # e.g. "SHT_PROGBITS"
    data: bytes
    size: int
    align: int
    alloc: bool
    write: bool
    execute: bool
    relocations: tuple[Relocation, ...]
    functions: tuple[str, ...]  # STT_FUNC symbols defined here


@dataclasses.dataclass(frozen=True)
class ObjectFile:
    machine: str
    sections: dict[str, Section]
    # Relocation sections (and any other section pyelftools parses into a
    # special class) are folded into the sections they apply to.


# Relocation types the x86-64 psABI defines that pyelftools 0.33 does not name.
_MISSING_RELOC_NAMES = {"EM_X86_64": {41: "R_X86_64_GOTPCRELX"}}


def _reloc_type_names(elf: ELFFile) -> dict[int, str]:
    from elftools.elf import enums

    machine = elf["e_machine"]
    table = {"EM_X86_64": enums.ENUM_RELOC_TYPE_x64}.get(machine)
    if table is None:
        raise NotImplementedError(f"relocations of {machine} objects")
    names = {number: name for name, number in table.items() if isinstance(number, int)}
    return names | _MISSING_RELOC_NAMES.get(machine, {})


def read(blob: bytes) -> ObjectFile:
    elf = ELFFile(io.BytesIO(blob))
    names = _reloc_type_names(elf)
    relocations: dict[int, list[Relocation]] = {}
    functions: dict[int, list[str]] = {}
    for section in elf.iter_sections():
        if isinstance(section, RelocationSection):
            symtab = elf.get_section(section["sh_link"])
            assert isinstance(symtab, SymbolTableSection)
            target = relocations.setdefault(section["sh_info"], [])
            for rel in section.iter_relocations():
                target.append(_relocation(elf, symtab, rel, names))
        elif isinstance(section, SymbolTableSection):
            for symbol in section.iter_symbols():
                if symbol["st_info"]["type"] == "STT_FUNC":
                    functions.setdefault(symbol["st_shndx"], []).append(symbol.name)
    sections: dict[str, Section] = {}
    for index, section in enumerate(elf.iter_sections()):
        if isinstance(section, RelocationSection | SymbolTableSection):
            continue
        if section.name in sections:
            raise ValueError(f"two sections are named {section.name!r}: they cannot be told apart")
        flags = section["sh_flags"]
        nobits = section["sh_type"] == "SHT_NOBITS"
        sections[section.name] = Section(
            name=section.name,
            type=section["sh_type"],
            data=b"" if nobits else section.data(),
            size=section["sh_size"],
            align=max(1, section["sh_addralign"]),
            alloc=bool(flags & SH_FLAGS.SHF_ALLOC),
            write=bool(flags & SH_FLAGS.SHF_WRITE),
            execute=bool(flags & SH_FLAGS.SHF_EXECINSTR),
            relocations=tuple(sorted(relocations.get(index, ()), key=lambda r: r.offset)),
            functions=tuple(functions.get(index, ())),
        )
    return ObjectFile(machine=elf["e_machine"], sections=sections)


def _relocation(elf: ELFFile, symtab: SymbolTableSection, rel, names: dict[int, str]) -> Relocation:  # type: ignore[no-untyped-def]
    symbol = symtab.get_symbol(rel["r_info_sym"])
    shndx = symbol["st_shndx"]
    section = None if shndx == "SHN_UNDEF" else elf.get_section(shndx).name
    name = symbol.name or (section or "")
    kind = names.get(rel["r_info_type"], f"relocation type {rel['r_info_type']}")
    return Relocation(rel["r_offset"], kind, name, section, symbol["st_value"], rel["r_addend"])
