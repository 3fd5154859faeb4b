"""The emitter end to end: errors, text form, disassembly, refcounts, eval breaker, real frames."""

from __future__ import annotations

import _thread
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from copyjit.backend import asm, disasm
from copyjit.backend.emitter import EmitError, Instruction, emit
from copyjit.backend.frames import RawFrame
from copyjit.backend.runtime import runtime
from copyjit.stencils import table
from copyjit.uops import UOPS
from tests.conftest import NB, run
from tests.test_unboxed import SUM_RANGE


def test_empty_trace_returns_its_exit_code(compile_trace) -> None:
    assert run(compile_trace("_EXIT_TRACE oparg=42"), [1, 2]) == (42, [1, 2], [])


def test_trace_rejects_what_is_not_a_frame(compile_trace) -> None:
    trace = compile_trace("_EXIT_TRACE")
    with pytest.raises(TypeError, match="takes a frame"):
        trace("not a frame")


@pytest.mark.parametrize("instructions, message", [
    ([], "empty trace"),
    ([Instruction("_NOP")], "falls off the end"),
    ([Instruction("_NO_SUCH_UOP"), Instruction("_EXIT_TRACE")], "no stencil named '_NO_SUCH_UOP'"),
    ([Instruction("_ADD_INT", ("i0", "i9"), ("i1",)), Instruction("_EXIT_TRACE")], "no stencil"),
    ([Instruction("_CHECK_EVAL_BREAKER"), Instruction("_EXIT_TRACE")], "needs a valid exit target"),
    ([Instruction("_JUMP", jump=7)], "needs a valid jump target, not 7"),
])
def test_emit_errors_are_clear(instructions: list[Instruction], message: str) -> None:
    in_use = runtime().arena.in_use
    with pytest.raises(EmitError, match=message):
        emit(instructions)
    assert runtime().arena.in_use == in_use  # a failed emit gives its memory back


def test_text_form_round_trips() -> None:
    instructions = asm.parse(SUM_RANGE)
    text = asm.dump(instructions)
    assert asm.parse(text) == instructions
    assert asm.dump(asm.parse(text)) == text


@given(st.lists(st.sampled_from(["_NOP", "_LOAD_FAST", "_CHECK_EVAL_BREAKER"]).flatmap(
    lambda name: st.tuples(st.just(name), st.integers(0, UOPS[name].oparg_max),  # (_LOAD_FAST's: 2**28 - 1)
                           st.integers(-(2**63), 2**63 - 1))),
    min_size=1, max_size=8), st.data())
def test_text_form_round_trips_any_operands(rows, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    n = len(rows) + 1
    instructions = [Instruction(name, oparg=a, operand0=b, exit=data.draw(st.integers(0, n - 1)))
                    for name, a, b in rows] + [Instruction("_EXIT_TRACE")]
    assert asm.parse(asm.dump(instructions)) == instructions


def test_parsing_again_gives_the_same_instructions() -> None:
    # Lines already parsed are remembered; lines that name a label or an
    # @name are not (they mean something else in another text).
    asm._PARSED.clear()
    first = asm.parse(SUM_RANGE)
    assert asm._PARSED and asm.parse(SUM_RANGE) == first
    asm._PARSED.clear()
    assert asm.parse(SUM_RANGE) == first
    line = "_CHECK_EVAL_BREAKER exit=out\n"
    assert asm.parse(line + "out:\n_EXIT_TRACE\n")[0].exit == 1
    assert asm.parse("_NOP\n" + line + "out:\n_EXIT_TRACE\n")[1].exit == 2
    assert asm.parse("_LOAD_CONST operand0=@x", {"x": 1})[0].operand0 == 1
    assert asm.parse("_LOAD_CONST operand0=@x", {"x": 2})[0].operand0 == 2


def test_parse_lines_is_parse_of_the_joined_text() -> None:
    lines = ["    _NOP", "loop:", "    _CHECK_EVAL_BREAKER exit=out", "", "    # a comment",
             "    _JUMP jump=loop", "out:", "    _EXIT_TRACE oparg=1", "    _CHECK_EVAL_BREAKER exit=out"]
    lines.append("    _EXIT_TRACE")
    for _ in range(2):  # the second time, from what the first remembered
        assert asm.parse_lines(lines) == asm.parse("\n".join(lines))
    made = asm.parse_lines(lines)
    assert made[1].exit == 3 and made[2].jump == 1 and made[4].exit == 3


def test_retargeted_is_the_instruction_with_other_targets() -> None:
    base = Instruction("_ADD_INT", ("i0", "i1"), ("i2",), oparg=1, operand0=2, operand1=3)
    assert base.retargeted(4, 5, None) == Instruction("_ADD_INT", ("i0", "i1"), ("i2",), 1, 2, 3, 4, 5, None)
    assert base.retargeted(None, None, None) == base
    with pytest.raises(EmitError, match="instruction index"):
        base.retargeted(-1, None, None)


def test_text_form_errors() -> None:
    with pytest.raises(asm.AsmError, match="no label 'nowhere'"):
        asm.parse("_JUMP jump=nowhere")
    with pytest.raises(asm.AsmError, match="@x is not defined"):
        asm.parse("_LOAD_CONST operand0=@x")
    with pytest.raises(asm.AsmError, match="unknown key 'target'"):
        asm.parse("_JUMP target=x")


_REGISTERS = st.sampled_from(["i0", "i1", "i2", "f0", "f3"])


@st.composite
def _rows(draw: st.DrawFn) -> list[asm.Row]:
    """Labels and instructions (some naming labels), each label defined once
    and followed by an instruction."""
    count = draw(st.integers(1, 8))
    labels = [f"L{k}" for k in range(draw(st.integers(0, 4)))]
    at = {label: draw(st.integers(0, count - 1)) for label in labels}
    target = st.none() | st.sampled_from(labels) if labels else st.none()
    rows: list[asm.Row] = []
    for index in range(count):
        rows += [label for label in labels if at[label] == index]
        name = draw(st.sampled_from(["_NOP", "_LOAD_FAST", "_CHECK_EVAL_BREAKER"]))
        rows.append(asm.make(name,
                             tuple(draw(st.lists(_REGISTERS, max_size=2))),
                             tuple(draw(st.lists(_REGISTERS, max_size=2))),
                             draw(st.integers(0, UOPS[name].oparg_max)), draw(st.integers(0, 2**64 - 1)),
                             draw(st.integers(0, 2**64 - 1)), draw(target), draw(target), draw(target)))
    return rows


@given(_rows())
def test_rows_assemble_to_what_their_text_parses_to(rows: list[asm.Row]) -> None:
    # The lowering makes rows, and shows them (explain, the log) as text.
    text = "\n".join(asm.row_text(row) for row in rows)
    assert asm.assemble(rows) == asm.parse(text)


def test_assemble_errors() -> None:
    with pytest.raises(asm.AsmError, match="line 2: no label 'nowhere'"):
        asm.assemble([asm.make("_NOP"), asm.make("_JUMP", jump="nowhere")])
    with pytest.raises(asm.AsmError, match="line 3: label out defined twice"):
        asm.assemble(["out", asm.make("_NOP"), "out", asm.make("_NOP")])
    with pytest.raises(asm.AsmError, match="names no instruction"):
        asm.assemble([asm.make("_JUMP", jump="out"), "out"])
    with pytest.raises(asm.AsmError, match="line 4: no label 'x'"):  # the line's number, not the row's
        asm.parse("_NOP\n\n# a comment\n_JUMP jump=x")


@given(st.text(alphabet=st.sampled_from(list("aZ_9.:é² -#")), min_size=1, max_size=12))
def test_labels_are_what_the_grammar_says(line: str) -> None:
    import re

    match = re.match(r"^([A-Za-z_][\w.]*):$", line)
    assert asm._label(line) == (match[1] if match else None)


def test_fall_through_leaves_no_jump_to_the_next_instruction(compile_trace) -> None:
    import capstone

    trace = compile_trace(SUM_RANGE)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    useless = [
        f"{insn.address:#x}: {insn.mnemonic} {insn.op_str}"
        for insn in md.disasm(trace.code(), trace.address)
        if insn.mnemonic == "jmp" and insn.operands[0].type == capstone.x86.X86_OP_IMM
        and insn.operands[0].imm == insn.address + insn.size
    ]
    assert useless == []
    stencils = table().stencils
    assert trace.size < sum(len(stencils[i.stencil].code) for i in trace.instructions)


def test_disassembly_ties_code_to_uops_and_holes(compile_trace) -> None:
    trace = compile_trace(SUM_RANGE)
    text = disasm.trace(trace)
    assert "#7 i2 = _ADD_INT i2, i0 exit=L14" in text
    assert "EXIT_TARGET -> #14" in text
    assert "JUMP_TARGET -> #6" in text
    assert "GOT_REL32 GOT[PyLong_FromSsize_t]" in text
    assert "ABS64 PyLong_Type" in text
    assert "OPERAND0 = 1" in text
    assert f"{trace.address:#x}" in text


def test_a_million_native_iterations_leak_nothing(compile_trace) -> None:
    step = 1.5 * 1.0  # a float of our own: not immortal, refcount visible
    trace = compile_trace("""
loop:
    _LOAD_FAST oparg=1
    _LOAD_CONST operand0=@step
    _BINARY_OP oparg=@add error=error
    _STORE_FAST oparg=1
    _LOAD_FAST oparg=0
    i0 = _UNBOX_INT exit=bail
    i1 = _LOAD_INT_CONST operand0=1
    i0 = _SUB_INT i0, i1 exit=bail
    _BOX_INT i0 error=error
    _STORE_FAST oparg=0
    _LOAD_FAST oparg=0
    _LOAD_CONST operand0=@zero
    _COMPARE_OP oparg=4 error=error
    _POP_JUMP_IF_TRUE jump=loop
    _EXIT_TRACE
bail:
    _EXIT_TRACE oparg=1
error:
    _ERROR_TRACE
""", step=id(step), add=NB["+"], zero=id(0))
    refs, blocks = sys.getrefcount(step), sys.getallocatedblocks()
    with RawFrame(2) as frame:
        frame[0], frame[1] = 1_000_000, 0.0
        assert trace(frame.address) == 0
        assert (frame[0], frame[1]) == (0, 1_500_000.0)
    assert sys.getrefcount(step) == refs
    assert sys.getallocatedblocks() - blocks < 100


def test_a_frame_slot_reads_as_a_new_reference_or_as_unbound() -> None:
    from copyjit.backend.frames import UNBOUND, slot_object

    value = object()
    with RawFrame(2) as frame:
        frame[0] = value
        refs = sys.getrefcount(value)
        read = [slot_object(frame.address, 0) for _ in range(100)]
        assert all(item is value for item in read) and sys.getrefcount(value) == refs + 100
        del read
        assert sys.getrefcount(value) == refs
        assert slot_object(frame.address, 1) is UNBOUND


INFINITE = """
loop:
    _CHECK_EVAL_BREAKER exit=out
    _JUMP jump=loop
out:
    _EXIT_TRACE oparg=3
"""


def test_native_loop_yields_to_other_threads_and_to_ctrl_c(compile_trace) -> None:
    trace = compile_trace(INFINITE)
    progress = []

    def other() -> None:
        for _ in range(5):  # needs the GIL each time: the native loop must let go
            progress.append(time.monotonic())
            time.sleep(0.01)
        _thread.interrupt_main()

    exits = []
    thread = threading.Thread(target=other)
    with RawFrame(0) as frame, pytest.raises(KeyboardInterrupt):
        thread.start()
        while True:
            exits.append(trace(frame.address))
    thread.join()
    assert len(progress) == 5 and exits and set(exits) == {3}


def test_sigint_interrupts_a_native_loop_in_a_subprocess(tmp_path) -> None:
    script = tmp_path / "spin.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent.parent)!r})
        from copyjit.backend import asm
        from copyjit.backend.emitter import emit
        from copyjit.backend.frames import RawFrame
        trace = emit(asm.parse({INFINITE!r}))
        frame = RawFrame(0)
        print("spinning", flush=True)
        while True:
            trace(frame.address)
    """))
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "spinning\n"
    time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    # As for any Python program: the traceback, then death by SIGINT itself.
    assert child.returncode == -signal.SIGINT
    assert err.rstrip().endswith("KeyboardInterrupt")


def test_trace_runs_on_the_real_frame_of_a_running_function() -> None:
    # At a JUMP event CPython has saved the frame's stack pointer (DESIGN.md
    # §1): a trace may read and write that frame's locals and stack.
    trace = emit(asm.parse("""
    _LOAD_FAST oparg=0
    _LOAD_FAST oparg=1
    _BINARY_OP oparg=@add error=error
    _STORE_FAST oparg=1
    _EXIT_TRACE
error:
    _ERROR_TRACE
""", {"add": NB["+"]}))

    def loop(n: int) -> int:
        acc = 0
        for _ in range(n):
            acc += 1000  # the trace adds n on each backward jump
        return acc

    monitoring = sys.monitoring
    tool = monitoring.OPTIMIZER_ID
    seen = []

    def on_jump(code, src: int, dst: int) -> object:  # type: ignore[no-untyped-def]
        frame = sys._getframe(1)
        seen.append(trace(frame))
        return None

    monitoring.use_tool_id(tool, "copyjit-test")
    try:
        monitoring.register_callback(tool, monitoring.events.JUMP, on_jump)
        monitoring.set_local_events(tool, loop.__code__, monitoring.events.JUMP)
        assert loop(5) == 5 * 1000 + 5 * 5
    finally:
        monitoring.set_local_events(tool, loop.__code__, 0)
        monitoring.register_callback(tool, monitoring.events.JUMP, None)
        monitoring.free_tool_id(tool)
        trace.free()
    assert seen == [0] * 5
