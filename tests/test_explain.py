"""`python -m copyjit explain` and `copyjit.explain()`: every hot loop, compiled
or why not (with its instruction and line), entries, exits per guard,
bridges, and the recorded, optimized and machine code tied to source lines."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import copyjit
from copyjit import explainer
from copyjit.trace.jit import JIT

ROOT = Path(__file__).parent.parent


def explained(function: Callable[..., Any], *args: object, threshold: int = 1) -> list[explainer.LoopReport]:
    """Run `function` under a fresh JIT and collect the report on its loops."""
    jit = JIT(threshold)
    jit.enable(function.__code__)
    try:
        function(*args)
    finally:
        jit.disable()
    return explainer.collect(jit, explainer.codes_of(function))


def with_a_dict(n: int) -> int:
    d: dict[int, int] = {}
    total = 0
    for i in range(n):
        d[i % 7] = i  # the recorder does not support this: the loop stays interpreted
        total += i
    return total + len(d)


def branchy(n: int) -> int:
    total = 0
    for i in range(n):
        if i % 3:
            total += i
        else:
            total -= 1
    return total


def test_a_loop_not_compiled_is_named_with_its_reason_instruction_and_line() -> None:
    [report] = explained(with_a_dict, 100)
    assert not report.compiled and report.trace is None
    assert report.why is not None
    assert report.why.reason == "item assignment to a dict"
    assert report.why.opname == "STORE_SUBSCR"
    line = with_a_dict.__code__.co_firstlineno + 4
    assert report.why.line == line
    rendered = explainer.render([report])
    assert "NOT COMPILED: item assignment to a dict" in rendered
    assert f"at line {line}, STORE_SUBSCR" in rendered
    assert "d[i % 7] = i" in rendered  # the source line itself


def test_a_compiled_loop_has_counts_exits_bridges_and_code_tied_to_lines() -> None:
    [report] = explained(branchy, 3000)
    assert report.compiled and report.trace is not None
    assert report.entries >= 1 and report.iterations > 2000
    # The side exit of `if i % 3` got hot and has a bridge, which was entered.
    bridged = [ex for ex in report.exits if ex.bridge is not None]
    assert len(bridged) == 1 and not bridged[0].normal
    assert bridged[0].place.line == branchy.__code__.co_firstlineno + 3
    [bridge] = report.bridges
    assert bridge.exit_number == bridged[0].number
    assert bridge.entries is not None and bridge.entries > 500
    # Each entry left by one exit: the side exit until it was bridged
    # (HOT_EXIT times), then the end of the range once. The counts are native.
    assert sum(ex.taken or 0 for ex in report.exits) == report.entries
    assert sum(ex.taken or 0 for ex in report.exits if ex.normal) == 1
    # Every op of the body has a source line of this function; the machine
    # code of every uop of the body belongs to an op with its line.
    lines = {branchy.__code__.co_firstlineno + k for k in range(1, 8)}
    assert all(line.place is not None and line.place.line in lines for line in report.trace.optimized[1:])
    body = [inst for inst in report.trace.instructions if inst.place is not None]
    assert body and {inst.place.line for inst in body if inst.place} >= {min(lines) + 1, min(lines) + 3}
    addresses = [inst.address for inst in report.trace.instructions]
    assert addresses == sorted(addresses) and addresses[0] == report.trace.address


def test_the_text_has_every_section() -> None:
    text = explainer.render(explained(branchy, 3000))
    for section in ("1 hot loops, 1 compiled", "exits (number: times taken", "-> bridge 1",
                    "recorded (", "optimized (", "machine code (", "bridge 1 from exit"):
        assert section in text, section
    # An op of the optimized trace heads the machine code made from it, with its line.
    assert re.search(r"\n  v\d+ = binary\.i\(v\d+, v\d+\) 'add'    # line \d+: total \+= i\n", text)
    assert re.search(r"\n      #\d+ .*_ADD_INT", text)


def test_copyjit_explain_of_a_function(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(copyjit, "_the_jit", JIT(1))

    @copyjit.jit
    def squares(n: int) -> int:
        def inner(m: int) -> int:  # a function defined inside: its loops are reported too
            total = 0
            for i in range(m):
                total += i * i
            return total

        return inner(n) + len([i for i in range(n)])  # a comprehension's loop: LIST_APPEND aborts

    copyjit._jit().enable(squares.__code__.co_consts[1])  # inner's code, watched too
    squares(100)
    copyjit.disable()
    text = copyjit.explain(squares)
    assert "2 hot loops, 1 compiled, 1 not compiled" in text
    assert "(test_copyjit_explain_of_a_function.<locals>.squares.<locals>.inner)  compiled" in text
    assert "NOT COMPILED: unsupported instruction LIST_APPEND" in text
    assert "machine code" in text
    assert "machine code" not in copyjit.explain(squares, code=False)


def _explain(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "copyjit", "explain", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_the_command_runs_the_program_then_reports(tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text("import sys\n"
                      "total = 0\n"
                      "for i in range(int(sys.argv[1])):\n"  # a module's loop: its code dies with the module
                      "    total += i\n"
                      "def f(n):\n"
                      "    t = 0\n"
                      "    for i in range(n):\n"
                      "        t += i\n"
                      "    return t\n"
                      "print(total, f(int(sys.argv[1])))\n")
    done = _explain("--threshold", "10", str(script), "1000")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("499500 499500\ncopyjit explain: 2 hot loops, 1 compiled, 1 not compiled")
    assert "program.py:3 (<module>)  NOT COMPILED: unsupported instruction STORE_NAME; at line 3" \
        in done.stdout
    assert "program.py:7 (f)  compiled" in done.stdout
    out = tmp_path / "report.txt"
    done = _explain("--summary", "-o", str(out), str(script), "1000")
    assert done.stdout == "499500 499500\n" and "machine code" not in out.read_text()


# A benchmark that drives the JIT itself (imports copyjit, names the package
# to find or run it, or starts processes) is a harness, not a program: under
# explain its own JIT would find the sys.monitoring tool taken by explain's
# (it fails the same way under `copyjit run`).
_HARNESS = re.compile(r"""^\s*(import|from)\s+(copyjit|subprocess)\b|["']copyjit["']""", re.MULTILINE)


def _programs() -> list[Path]:
    """Every example, and every benchmark that runs as a program (has a
    `__main__` block and is not a harness)."""
    benchmarks = [path for path in sorted((ROOT / "benchmarks").glob("*.py"))
                  if '__name__ == "__main__"' in (text := path.read_text()) and not _HARNESS.search(text)]
    return sorted((ROOT / "examples").glob("*.py")) + benchmarks


def test_the_benchmark_programs_are_found() -> None:
    names = {path.name for path in _programs()}
    assert {"nbody.py", "spectral_norm.py", "mandelbrot.py", "int_loop.py"} <= names
    assert not names & {"kernels.py", "compile.py", "passes.py", "startup.py", "examples.py", "bytecode.py"}


@pytest.mark.parametrize("program", _programs(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_explain_runs_on_every_example_and_benchmark(program: Path) -> None:
    done = _explain(str(program.relative_to(ROOT)))
    assert done.returncode == 0, done.stderr
    summary = re.search(r"copyjit explain: (\d+) hot loops, (\d+) compiled, (\d+) not compiled", done.stdout)
    assert summary is not None, done.stdout[-2000:]
    hot, _, not_compiled = map(int, summary.groups())
    assert hot >= 1
    # Every loop not compiled is named with a reason.
    reasons = re.findall(r"NOT COMPILED: (.*)", done.stdout)
    assert len(reasons) == not_compiled
    assert all(reason and reason != "not recorded yet" for reason in reasons)


def nested(n: int) -> float:
    total = 0.0
    for i in range(n):
        x = 0.0
        for _ in range(8):  # short and small: the outer trace runs it inline
            x = x * 0.5 + i
        total += x
    return total


def test_the_code_of_a_nested_loop_run_inline_is_tied_to_its_lines() -> None:
    reports = explained(nested, 3000)
    outer = reports[0]
    assert outer.place.line == nested.__code__.co_firstlineno + 2 and outer.trace is not None
    assert all(inst.origin != "?" for inst in outer.trace.instructions)
    lines = {inst.place.line for inst in outer.trace.instructions if inst.place is not None}
    inner_line = nested.__code__.co_firstlineno + 5  # x = x * 0.5 + i
    assert inner_line in lines


def countdown(n: int) -> int:
    steps = 0
    while n > 0:
        if n % 3:
            n -= 1
        else:
            n -= 2  # a bridge's path, at which the loop ends as often as at the trace's
        steps += 1
    return steps


def test_every_entry_is_counted_at_one_exit_of_the_trace_or_of_a_bridge() -> None:
    jit = JIT(1)
    jit.enable(countdown.__code__)
    try:
        for start in range(100, 400):
            countdown(start)
    finally:
        jit.disable()
    [report] = explainer.collect(jit, [countdown.__code__])
    assert report.bridges and report.entries > 250
    bridge_exits = [ex for bridge in report.bridges for ex in bridge.exits]
    assert all(ex.taken is not None for ex in bridge_exits)
    assert sum(ex.taken or 0 for ex in bridge_exits if ex.normal) > 250  # counted by the bridge's own code
    trace_exits = sum(ex.taken or 0 for ex in report.exits)
    assert trace_exits + sum(ex.taken or 0 for ex in bridge_exits) == report.entries
    text = explainer.render([report], code=False)
    assert re.search(r"\n +1000\d\d: +[1-9]\d*  line \d+ \(leaves the loop\)", text)
