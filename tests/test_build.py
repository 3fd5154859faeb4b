"""The stencil build: goldens, reproducibility, --check, and clear errors."""

from __future__ import annotations

import os
import pathlib

import capstone
import pytest

from copyjit import __main__ as cli
from copyjit import stencil
from copyjit.backend import disasm, runtime
from copyjit.build import builder, targets
from copyjit.stencil import Hole, HoleKind, HoleValue, Stencil, Table
from copyjit.stencils import table
from copyjit.uops import AT_OPARG_MAX, UOPS

GOLDEN = pathlib.Path(__file__).parent / "golden"
GOLDEN_STENCILS = [
    "_ADD_INT__i0_i1_to_i2",
    "_BINARY_OP",
    "_BOX_FLOAT__f0",
    "_CHECK_EVAL_BREAKER",
    "_JUMP_IF_INT_LT__i0_i1",
    "_LOAD_FAST",
]


def _golden_text(stencil: Stencil) -> str:
    holes = "".join(f"  {h.offset:#06x} {h.kind.value:<9} {h.value.value:<12} {h.symbol or '-':<20} "
                    f"addend={h.addend}\n" for h in stencil.holes)
    return f"code: {stencil.code.hex()}\nholes:\n{holes}\n{disasm.stencil(stencil)}"


@pytest.mark.parametrize("name", GOLDEN_STENCILS)
def test_golden_stencils(name: str) -> None:
    """Bytes, holes and disassembly; COPYJIT_UPDATE_GOLDENS=1 rewrites them."""
    text = _golden_text(table().stencils[name])
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("COPYJIT_UPDATE_GOLDENS"):
        path.write_text(text)
    assert text == path.read_text()


def test_table_has_every_variant_of_every_uop() -> None:
    expected = {v.name for op in UOPS.values() for v in op.variants()}
    assert set(table().stencils) == expected


def test_holes_agree_with_the_uop_table() -> None:
    for op in UOPS.values():
        declared = {
            HoleValue.CONTINUE: not op.ends_trace,
            HoleValue.EXIT_TARGET: op.may_exit,
            HoleValue.ERROR_TARGET: op.may_error,
            HoleValue.JUMP_TARGET: op.may_jump,
        }
        for variant in op.variants():
            values = {h.value for h in table().stencils[variant.name].holes}
            found = {value: value in values for value in declared}
            if len(set(variant.ins)) < len(variant.ins):
                # Same register twice: clang folds `a < a`, `a - a`, ... so a
                # target may vanish, but none may appear.
                assert all(declared[v] for v in declared if found[v]), variant.name
            else:
                assert found == declared, variant.name


def test_layout_matches_the_running_interpreter() -> None:
    runtime.check_layout(table().layout)
    wrong = dict(table().layout, **{"frame.localsplus": table().layout["frame.localsplus"] + 8})
    with pytest.raises(runtime.LayoutMismatch, match="do not fit the frames"):
        runtime.check_layout(wrong)


@pytest.fixture(scope="module")
def rebuilt() -> Table:
    return builder.build(targets.host())


def test_shipped_table_matches_a_rebuild(rebuilt: Table) -> None:
    path = cli._stencil_module_path()
    assert path.read_text() == rebuilt.render()
    assert cli._records_path(path).read_bytes() == rebuilt.render_records()


def test_build_is_reproducible(rebuilt: Table) -> None:
    again = builder.build(targets.host())
    assert again.render() == rebuilt.render() and again.render_records() == rebuilt.render_records()


def test_binary_stencils_read_as_their_lines_say() -> None:
    # Every stencil's Rows from the binary file (what the emitter prepares
    # from) are its JSON line's, and a name finds its record in a probe or
    # two: the slot is the hash's top bits (its low bits left names that
    # differ in a register or two piled up, ~9 probes on average).
    shipped = table()
    records = shipped.stencils
    assert isinstance(records, stencil._Records)
    records.load()
    lines, probes = records._lines, []
    for name in lines:
        line = lines[name]
        assert shipped.rows(name) == (line.code, shipped.numbered(line.holes)), name
        assert records[name] == line
        probes.append(_probes(records, name))
    assert records.rows("_NO_SUCH_UOP") is None and "_NO_SUCH_UOP" not in records
    assert sum(probes) / len(probes) < 2 and max(probes) < 32


def _probes(records: stencil._Records, name: str) -> int:
    """How many slots a lookup of `name` reads: from its home slot to the
    one that points at its record."""
    record = records._locate(name)
    assert record is not None
    slots = records._slots
    count = len(slots) // 2
    slot = stencil._home(stencil._hash(name.encode()), count)
    probes = 1
    while slots[count + slot] != record - 2 - len(name.encode()):
        slot, probes = (slot + 1) % count, probes + 1
    return probes


def test_check_command(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path,
                       capsys: pytest.CaptureFixture[str], rebuilt: Table) -> None:
    monkeypatch.setattr(cli, "_rebuild_table", lambda: rebuilt)
    assert cli.main(["stencils", "--check"]) == 0
    stale = tmp_path / "stale.jsonl"
    stale.write_text(rebuilt.render().replace('["_NOP", "', '["_NOP", "90'))
    stale.with_suffix(".stencils").write_bytes(rebuilt.render_records())
    monkeypatch.setattr(cli, "_stencil_module_path", lambda: stale)
    assert cli.main(["stencils", "--check"]) == 1
    assert "stencils are stale" in capsys.readouterr().err
    stale.write_text(rebuilt.render())  # the lines up to date, the binary file not
    stale.with_suffix(".stencils").write_bytes(rebuilt.render_records()[:-1])
    assert cli.main(["stencils", "--check"]) == 1
    assert "stale.stencils differs from a rebuild" in capsys.readouterr().err
    stale.with_suffix(".stencils").unlink()
    assert cli.main(["stencils", "--check"]) == 1


def test_list_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["stencils", "--list"]) == 0
    out = capsys.readouterr().out
    assert f"# {len(table().stencils)} stencils" in out
    assert "_ADD_INT__i0_i1_to_i2" in out and "REL32 EXIT_TARGET" in out


def _build_one(body: str, prelude: str = "") -> dict[str, Stencil]:
    source = f'#include "copyjit.h"\n{prelude}\nSTENCIL(stencil_PROBE)\n{{\n{body}\n}}\n'
    return builder.build_units({"probe": source}, targets.host())[0]


def test_a_probe_stencil_builds() -> None:
    stencil = _build_one("i0 += (intptr_t)_JIT_OPERAND1; TAIL(_JIT_CONTINUE);")["_PROBE"]
    assert {h.value for h in stencil.holes} == {HoleValue.OPERAND1, HoleValue.CONTINUE}


def test_a_spill_slot_is_one_32_bit_displacement() -> None:
    stencil = _build_one("i0 = SLOT; TAIL(_JIT_CONTINUE);")["_PROBE"]
    (slot,) = [h for h in stencil.holes if h.value is HoleValue.SLOT_OFFSET]
    assert slot.kind is HoleKind.ABS32S and slot.addend == 0
    assert len(stencil.without_tail_jump().code) <= 8  # mov rdi, [r15 + disp32]: no movabs


def test_an_oparg_compared_is_one_32_bit_immediate() -> None:
    stencil = _build_one("if (((PyVarObject *)i0)->ob_size != OPARG_IMM32) { TAIL(_JIT_EXIT_TARGET); }\n"
                         "TAIL(_JIT_CONTINUE);")["_PROBE"]
    (oparg,) = [h for h in stencil.holes if h.value is HoleValue.OPARG]
    assert oparg.kind is HoleKind.ABS32S and oparg.addend == 0
    assert len(stencil.without_tail_jump().code) <= 14  # cmp qword ptr [rdi + 0x10], imm32; jne: no movabs
    assert UOPS["_GUARD_SIZE_O"].oparg_max == UOPS["_GUARD_MIN_SIZE_O"].oparg_max == AT_OPARG_MAX


_DETAILED = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
_DETAILED.detail = True


def test_a_float_overwritten_in_place_takes_three_instructions() -> None:
    """_STORE_SUBSCR_LIST_*_F_OVER's fast path: compare the count, branch,
    store the double; it falls through to the next uop (its slow path
    "expected", so that clang lays the other last), and the oparg is made
    on the slow path only (OPARG_HERE)."""
    for name in ("_STORE_SUBSCR_LIST_CONST_F_OVER__f0_i1_i2", "_STORE_SUBSCR_LIST_INT_F_OVER__f0_i1_i2_i3"):
        stencil = table().stencils[name]
        code = stencil.without_tail_jump().code
        cmp, branch = list(_DETAILED.disasm(code, 0))[:2]
        assert cmp.mnemonic == "cmp" and branch.mnemonic == "je", name
        target = branch.operands[0].imm
        assert [i.mnemonic for i in _DETAILED.disasm(code[target:], target)] == ["movsd"], name
        assert all(h.offset > branch.address for h in stencil.holes if h.value is HoleValue.OPARG), name


@pytest.mark.parametrize("prelude, body, message", [
    ("extern _Thread_local intptr_t counter;",
     "counter += i0; TAIL(_JIT_CONTINUE);",
     r"stencil _PROBE: relocation R_X86_64_\w*TPOFF\w* against 'counter' at offset 0x\w+ is not understood"),
    ("static _Thread_local intptr_t counter;",
     "counter += i0; TAIL(_JIT_CONTINUE);",
     "writable data section '.tbss.counter'"),
    ("static intptr_t counter;",
     "counter += i0; TAIL(_JIT_CONTINUE);",
     "writable data section '.lbss.counter'"),
    ("__attribute__((noinline)) static intptr_t helper(intptr_t x) { return x * x + 1; }",
     "i0 = helper(i0); TAIL(_JIT_CONTINUE);",
     "stencil _PROBE: calls or refers to code in '.text.helper'; helpers must be static inline"),
    ("extern char _JIT_NONSENSE[];",
     "i0 = (intptr_t)_JIT_NONSENSE; TAIL(_JIT_CONTINUE);",
     "stencil _PROBE: unknown hole _JIT_NONSENSE"),
    ("static const char *const names[] = {\"a\", \"b\"};",
     "i0 = (intptr_t)names[i0 & 1]; TAIL(_JIT_CONTINUE);",
     "data section .* has relocations"),
    # 32-bit absolute: only the slot offset, a small displacement.
    ("extern char small_thing[] __attribute__((section(\".bss.small\")));",
     "i0 = *(intptr_t *)((char *)slots + (uintptr_t)small_thing); TAIL(_JIT_CONTINUE);",
     "R_X86_64_32S against 'small_thing': an address in 32 bits"),
    ("extern char _JIT_CODE[] __attribute__((section(\".bss.small\")));",
     "i0 = *(intptr_t *)((char *)slots + (uintptr_t)_JIT_CODE); TAIL(_JIT_CONTINUE);",
     "R_X86_64_32S for hole _JIT_CODE"),
])
def test_what_the_builder_does_not_understand_is_an_error(prelude: str, body: str, message: str) -> None:
    with pytest.raises(builder.BuildError, match=message):
        _build_one(body, prelude)


def test_compile_errors_name_the_unit() -> None:
    with pytest.raises(builder.BuildError, match="compiling probe failed"):
        _build_one("this is not C;")


def _jcc_pair(condition: int = 0x84) -> Stencil:
    # test rax, rax; jcc CONTINUE; jmp EXIT_TARGET
    code = bytes([0x48, 0x85, 0xC0, 0x0F, condition, 0, 0, 0, 0, 0xE9, 0, 0, 0, 0])
    holes = (Hole(5, HoleKind.REL32, HoleValue.CONTINUE, "", -4),
             Hole(10, HoleKind.REL32, HoleValue.EXIT_TARGET, "", -4))
    return Stencil("pair", code, holes)


def test_peephole_inverts_a_final_conditional_continue() -> None:
    after = targets.x86_64_invert_final_branch(_jcc_pair(0x84))  # je -> jne
    assert after.code[4] == 0x85 and len(after.code) == 14
    assert [(h.offset, h.value) for h in after.holes] == [
        (5, HoleValue.EXIT_TARGET), (10, HoleValue.CONTINUE)]
    assert after.tail_jump is not None


def test_peephole_leaves_a_jump_target_alone() -> None:
    # jz lands on the final jmp: rewriting would send it to CONTINUE.
    base = _jcc_pair()
    code = bytes([0x74, 0x06]) + base.code[3:]  # jz rel8: 2 + 6 = 8, the final jmp
    holes = tuple(Hole(h.offset - 1, h.kind, h.value, h.symbol, h.addend) for h in base.holes)
    stencil = Stencil("guarded", code, holes)
    assert stencil.code[8] == 0xE9
    assert targets.x86_64_invert_final_branch(stencil) == stencil


def test_own_structs_match_copyjit_h() -> None:
    runtime.check_own_layout(table().layout)
    wrong = dict(table().layout, **{"record.due": table().layout["record.due"] + 8})
    with pytest.raises(runtime.LayoutMismatch, match="disagree with copyjit"):
        runtime.check_own_layout(wrong)


def test_monitoring_layout_matches_the_running_interpreter() -> None:
    import sys

    monitoring, tool, name = sys.monitoring, sys.monitoring.PROFILER_ID, "probe"
    monitoring.use_tool_id(tool, name)
    try:
        monitoring.set_events(tool, monitoring.events.RAISE)
        runtime.check_monitoring_layout(table().layout, tool, name, 10, None)
        monitoring.set_local_events(tool, test_own_structs_match_copyjit_h.__code__, monitoring.events.JUMP)
        runtime.check_monitoring_layout(table().layout, tool, name, 7,
                                        test_own_structs_match_copyjit_h.__code__)
        wrong = dict(table().layout, **{"interp.monitors": table().layout["interp.monitors"] + 1})
        with pytest.raises(runtime.LayoutMismatch, match="monitoring state"):
            runtime.check_monitoring_layout(wrong, tool, name, 10, None)
    finally:
        monitoring.set_local_events(tool, test_own_structs_match_copyjit_h.__code__, 0)
        monitoring.set_events(tool, 0)
        monitoring.free_tool_id(tool)
