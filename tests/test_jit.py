"""The tracing JIT end to end: the same results, exceptions and tracebacks
as CPython, with traces compiled and entered, and the program's control of
the interpreter (Ctrl-C, threads, tracers) intact."""

from __future__ import annotations

import gc
import json
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copyjit.trace.jit import JIT
from tests.conftest import interrupted, outcome

ROOT = Path(__file__).parent.parent


def differential(function: Callable[..., Any], *args: object, threshold: int = 1) -> dict[str, Any]:
    """Run under CPython, then under a fresh JIT; they must agree."""
    expected = outcome(function, *args)
    jit = JIT(threshold)
    jit.enable(function.__code__)
    try:
        got = outcome(function, *args)
    finally:
        jit.disable()
    assert got == expected
    return jit.stats.as_dict()


def float_accumulation(n: int) -> float:
    acc = 0.0
    for i in range(n):
        acc += i * 0.5 - 0.25
    return acc


def int_arithmetic(n: int) -> int:
    x, total = 7, 0
    for i in range(n):
        x = (x * 1103515245 + 12345) % 2147483648
        total += x // 65536 - i
    return total


def branchy(n: int) -> int:
    i, total = 0, 0
    while i < n:
        if i % 3 == 0:
            total += i
        else:
            total -= 1
        i += 1
    return total


def grows_past_64_bits(n: int) -> int:
    x, i = 1, 0
    while i < n:
        x = x * 3 + 1
        i += 1
    return x


def divides_by_zero(n: int) -> int:
    acc, i = 0, 0
    while i < n:
        acc += 100 // (50 - i)
        i += 1
    return acc


def mixed(n: int) -> float:
    x, y = 1.5, 0
    for i in range(-n, n, 3):
        y = y - i
        x = x * 0.999 + y / 7.0 - -i
    return x


def nested(n: int) -> int:
    total = 0
    for i in range(n):
        for j in range(i):
            total += i * j % 5
    return total


@pytest.mark.parametrize("function, arg", [
    (float_accumulation, 100_000), (int_arithmetic, 100_000), (mixed, 10_000),
    (grows_past_64_bits, 200), (nested, 200), (branchy, 1000),
])
def test_same_results_with_traces_entered(function: Callable[..., Any], arg: int) -> None:
    stats = differential(function, arg)
    assert stats["traces"] >= 1 and stats["native_entries"] >= 1


@pytest.mark.parametrize("n", [40, 49, 50, 51, 60])
def test_exceptions_surface_where_cpython_raises_them(n: int) -> None:
    # The trace leaves the failing division to the interpreter, which raises
    # at the same line with the same message (and inside any try/except).
    differential(divides_by_zero, n)


def test_int_results_that_outgrow_64_bits_are_exact() -> None:
    stats = differential(grows_past_64_bits, 1000)
    assert stats["exits"] >= 1


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), start=st.integers(-10**6, 10**6), step=st.integers(-5, 5).filter(bool),
       scale=st.floats(-1e3, 1e3, allow_nan=False))
def test_generated_numeric_loops(n: int, start: int, step: int, scale: float) -> None:
    def loop(n: int, start: int, step: int, scale: float) -> tuple[int, float]:
        a, b = start, 0.0
        for i in range(start, start + n * step, step):
            a = a * 3 % 1000003 - i // 7
            if a > 500:  # noqa: SIM108 - the branch is what is tested
                b = b + scale * i
            else:
                b = b - a / 3
        return a, b

    differential(loop, n, start, step, scale)


def test_unsupported_loops_abort_with_a_reason() -> None:
    def words(n: int) -> dict[int, str]:
        out = {}
        for i in range(n):
            out[i] = str(i)
        return out

    stats = differential(words, 100)
    assert stats["traces"] == 0
    assert stats["aborts"] == {"item assignment to a dict": 1}


def test_stats_have_the_documented_fields() -> None:
    stats = differential(float_accumulation, 1000)
    assert set(stats) >= {"traces", "bridges", "aborts", "exits", "native_entries",
                          "recording_seconds", "optimizing_seconds", "emitting_seconds", "compile_seconds",
                          "code_bytes"}


def test_first_trace_at_is_when_the_first_trace_was_installed() -> None:
    jit = JIT(1000)
    jit.enable(branchy.__code__)
    try:
        assert jit.stats.first_trace_at is None
        start = time.perf_counter()
        branchy(3000)
        end = time.perf_counter()
    finally:
        jit.disable()
    first = jit.stats.first_trace_at
    assert first is not None and start + sum(jit.stats.compile_seconds[:1]) <= first <= end


def test_code_bytes_is_the_machine_code_of_every_trace_and_bridge() -> None:
    jit = JIT(1)
    jit.enable(branchy.__code__)
    try:
        branchy(3000)  # a trace and a bridge
    finally:
        jit.disable()
    locations = {id(location): location for location in jit.locations.values() if location.trace}
    made = [t for location in locations.values() for t in (location.trace, *location.bridges)]
    assert jit.stats.traces >= 1 and jit.stats.bridges >= 1
    assert len(made) == jit.stats.traces + jit.stats.bridges
    assert jit.stats.code_bytes == sum(t.size for t in made if t is not None) > 0


def test_each_trace_and_bridge_has_its_time_from_hot_to_native() -> None:
    stats = differential(branchy, 3000)  # its alternating branch gets a bridge
    assert stats["traces"] >= 1 and stats["bridges"] >= 1 and not stats["aborts"]
    times = stats["compile_seconds"]
    assert len(times) == stats["traces"] + stats["bridges"]
    assert all(t > 0 for t in times)
    # Each covers its recording, lowering and emitting, and more.
    assert sum(times) >= stats["recording_seconds"] + stats["optimizing_seconds"] + stats["emitting_seconds"]
    # The JIT's imports are part of them, and counted apart (none here: the
    # test process imported the compiler already).
    imports = stats["compile_import_seconds"]
    assert len(imports) == len(times) and all(0 <= i <= t for i, t in zip(imports, times, strict=True))
    assert sum(imports) <= stats["import_seconds"]


def test_the_first_trace_of_a_process_counts_its_imports_apart(tmp_path: Path) -> None:
    script = tmp_path / "loop.py"
    script.write_text("def f():\n    t = 0.0\n    for i in range(5000):\n        t += i * 0.5\n"
                      "    return t\nprint(f())\n")
    out = tmp_path / "stats.json"
    subprocess.run([sys.executable, "-m", "copyjit", "run", "--stats-json", str(out), str(script)],
                   check=True, capture_output=True)
    stats = json.loads(out.read_text())
    assert stats["traces"] == 1 and stats["import_seconds"] > 0
    assert 0 < stats["compile_import_seconds"][0] == stats["import_seconds"] < stats["compile_seconds"][0]


def _line_tracer(lines: list[int]) -> Any:
    """A sys.settrace function that notes float_accumulation's lines."""
    def tracer(frame, event, arg):  # type: ignore[no-untyped-def]
        if frame.f_code is float_accumulation.__code__ and event == "line":
            lines.append(frame.f_lineno)
        return tracer

    return tracer


def test_no_native_code_under_a_tracer() -> None:
    jit = JIT(1)
    jit.enable(float_accumulation.__code__)
    lines: list[int] = []
    tracer = _line_tracer(lines)

    sys.settrace(tracer)
    try:
        result = float_accumulation(50)
    finally:
        sys.settrace(None)
        jit.disable()
    assert result == sum(i * 0.5 - 0.25 for i in range(50))
    assert jit.stats.native_entries == 0
    assert len(lines) > 100  # every iteration's lines were seen


def test_another_thread_runs_while_a_trace_loops() -> None:
    progress = []
    stop = threading.Event()

    def other() -> None:
        while not stop.is_set():
            progress.append(1)
            time.sleep(0.001)

    jit = JIT(1)
    jit.enable(int_arithmetic.__code__)
    thread = threading.Thread(target=other)
    thread.start()
    try:
        before, start = len(progress), time.monotonic()
        int_arithmetic(30_000_000)
        during, seconds = len(progress) - before, time.monotonic() - start
    finally:
        stop.set()
        thread.join()
        jit.disable()
    assert jit.stats.native_entries >= 1
    # The GIL changes hands every 5 ms (sys.getswitchinterval()) when the
    # native loop checks the eval breaker; ask for a tenth of that rate.
    assert during >= seconds / 0.05, (during, seconds)


def _run(tmp_path: Path, source: str, *options: str, env: dict[str, str] | None = None,
         plain: bool = False) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(source))
    command = [sys.executable, str(script)] if plain else \
        [sys.executable, "-m", "copyjit", "run", *options, str(script)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **(env or {})})


PROGRAM = """
    import sys
    def work(n):
        acc = 0.0
        for i in range(n):
            acc += i * 0.25
        return acc
    print(work(int(sys.argv[1]) if len(sys.argv) > 1 else 100000))
    if len(sys.argv) > 2:
        raise ValueError(f"asked to fail: {sys.argv[2]}")
"""


def test_run_matches_python_and_reports_stats(tmp_path: Path) -> None:
    plain = _run(tmp_path, PROGRAM, plain=True)
    jitted = _run(tmp_path, PROGRAM, "--stats-json", "stats.json", "--threshold", "1")
    assert (jitted.returncode, jitted.stdout, jitted.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["traces"] >= 1 and stats["native_entries"] >= 1


def test_run_gives_the_same_traceback_and_exit_code(tmp_path: Path) -> None:
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(PROGRAM))
    plain = subprocess.run([sys.executable, str(script), "10", "boom"], capture_output=True, text=True,
                           cwd=tmp_path)
    jitted = subprocess.run([sys.executable, "-m", "copyjit", "run", str(script), "10", "boom"],
                            capture_output=True, text=True, cwd=tmp_path,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert (jitted.returncode, jitted.stdout, jitted.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert plain.returncode == 1 and "ValueError: asked to fail: boom" in plain.stderr


def test_run_stats_to_stderr_and_off_switch(tmp_path: Path) -> None:
    on = _run(tmp_path, PROGRAM, "--stats", "--threshold", "1")
    assert re.search(r"copyjit: [1-9]\d* traces", on.stderr)
    assert re.search(r"; hot to native: median \d+\.\d ms over [1-9]\d*, \d+\.\d ms without loading "
                     r"the JIT's compiler \(\d+\.\d ms, once\);", on.stderr)
    off = _run(tmp_path, PROGRAM, "--stats", env={"COPYJIT": "0"})
    assert "copyjit: 0 traces" in off.stderr and off.stdout == on.stdout
    assert "; hot to native: none;" in off.stderr


@pytest.mark.parametrize("site", [True, False])
def test_a_program_that_exits_with_the_jit_on_prints_nothing_of_its_own(tmp_path: Path, site: bool) -> None:
    # Weak references to dead code call the JIT back while the interpreter
    # tears modules down: its own loops must still be told apart then.
    (tmp_path / "kernel.py").write_text("def grow(n):\n    x, i = 1, 0\n    while i < n:\n"
                                        "        x = x * 3 + i\n        i += 1\n    return x\n")
    (tmp_path / "main.py").write_text("import copyjit\ncopyjit.enable()\nimport kernel\n"
                                      "print(kernel.grow(2000) % 1000)\n")
    done = subprocess.run([sys.executable, *([] if site else ["-S"]), str(tmp_path / "main.py")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{grow_reference(2000) % 1000}\n", "")


def grow_reference(n: int) -> int:
    x, i = 1, 0
    while i < n:
        x = x * 3 + i
        i += 1
    return x


def test_ctrl_c_interrupts_a_native_loop(tmp_path: Path) -> None:
    script = tmp_path / "spin.py"
    script.write_text(textwrap.dedent("""
        import sys
        def spin():
            i = 0
            while i >= 0:
                i = (i + 1) % 1000
        print("spinning", flush=True)
        spin()
    """))
    err = interrupted(script, tmp_path / "s.json")
    assert 'line 5, in spin' in err or 'line 6, in spin' in err
    assert json.loads((tmp_path / "s.json").read_text())["native_entries"] >= 1


def test_jit_decorator_watches_only_its_function() -> None:
    import copyjit

    @copyjit.jit
    def chosen(n: int) -> int:
        t = 0
        for i in range(n):
            t += i
        return t

    before = copyjit.stats()["traces"]
    assert chosen(10_000) == sum(range(10_000))
    assert copyjit.stats()["traces"] > before
    copyjit.disable()


@pytest.mark.parametrize("threshold", [8, 9, 10])
def test_a_recording_that_runs_off_the_end_of_the_loop_is_retried(threshold: int) -> None:
    # An inner loop of 10 iterations, 9 backedges a run: at threshold 9 the
    # recording starts on the last iteration and leaves the loop. That must
    # not blacklist it: the next run records it.
    def outer(m: int) -> int:
        total = 0
        for _ in range(m):
            i = 0
            while i < 10:
                i += 1
            total += i
        return total

    expected = outer(300)
    jit = JIT(threshold)
    jit.enable(outer.__code__)
    try:
        assert outer(300) == expected
    finally:
        jit.disable()
    # Traced, not given up: entered natively from then on (from the
    # interpreter, or from the outer loop's trace once it has one).
    assert jit.stats.traces >= 1 and jit.stats.native_entries >= 1
    assert not any("ended while recording" in reason for reason in jit.stats.aborts) or \
        jit.stats.traces >= 1


def test_a_local_bound_on_one_path_only() -> None:
    # Recorded with `t` bound, entered later with it unbound: the trace must
    # leave at once (this crashed when the entry loaded the NULL local).
    def g(n: int, k: int) -> int:
        i = 0
        while i < n:
            if i >= k:
                t = i * 2  # noqa: F841 - bound on one path only is the point
            i += 1
        return i

    jit = JIT(1)
    jit.enable(g.__code__)
    try:
        assert [g(10, 0), g(10, 5), g(10, 11), g(10, 0)] == [10, 10, 10, 10]
    finally:
        jit.disable()


def test_overflow_while_recording_does_not_blacklist_the_loop() -> None:
    def square(x: int, n: int) -> int:
        y = 0
        for _ in range(n):
            y = x * x
        return y

    jit = JIT(1)
    jit.enable(square.__code__)
    try:
        assert square(2**40, 10) == 2**80  # records, and the product leaves 64 bits
        assert square(3, 1000) == 9
    finally:
        jit.disable()
    assert jit.stats.traces == 1


def test_eval_breaker_exits_do_not_count_against_a_trace() -> None:
    stop = threading.Event()

    def other() -> None:  # asks for the GIL all the time
        while not stop.is_set():
            time.sleep(0)

    jit = JIT(1)
    jit.enable(int_arithmetic.__code__)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    thread = threading.Thread(target=other)
    thread.start()
    deadline = time.monotonic() + 30
    try:
        # Before the fix, 64 such exits discarded the trace (a second one
        # was recorded) and 4 x 64 gave the loop up.
        while jit.stats.exits < 300 and time.monotonic() < deadline:
            int_arithmetic(1_000_000)
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
        jit.disable()
    assert jit.stats.exits >= 300  # GIL hand-overs, each an exit
    assert jit.stats.traces == 1 and not jit.stats.aborts


def test_changing_the_threshold_reaches_the_native_counter() -> None:
    jit = JIT(1000)
    jit.enable(float_accumulation.__code__)
    try:
        float_accumulation(500)
        assert jit.stats.traces == 0
        jit.threshold = 5
        jit.enable(float_accumulation.__code__)
        float_accumulation(500)
        assert jit.stats.traces == 1
    finally:
        jit.disable()


def test_dead_code_objects_are_forgotten() -> None:
    import gc

    jit = JIT(1000)
    jit.enable()
    try:
        for n in range(200):
            namespace: dict[str, Any] = {}
            source = f"def f():\n    t = 0\n    for i in range({n + 5}):\n        t += i\n    return t\n"
            exec(source, namespace)
            namespace["f"]()
            del namespace
        gc.collect()
    finally:
        jit.disable()
    assert len(jit.counters) < 50


def test_a_signal_handler_exception_reaches_the_program(tmp_path: Path) -> None:
    done = _run(tmp_path, """
        import signal
        class Timeout(Exception):
            pass
        def alarm(signum, frame):
            raise Timeout("alarm")
        signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        def spin(n):
            i = 0
            while i < n:
                i = i + 1
            return i
        try:
            print("finished", spin(10**11))
        except Timeout:
            print("interrupted by Timeout")
    """, "--threshold", "1")
    assert (done.returncode, done.stdout) == (0, "interrupted by Timeout\n")


def test_loops_with_continue() -> None:
    def skip(n: int) -> int:
        total = 0
        for i in range(n):
            if i % 3 == 0:
                continue
            total += i * 2
        return total

    def skip_while(n: int) -> int:
        i, total = 0, 0
        while i < n:
            i += 1
            if i % 4 == 1:
                continue
            total -= i
        return total

    for function in (skip, skip_while):
        stats = differential(function, 10_000)
        assert stats["traces"] >= 1 and "an inner loop" not in stats["aborts"], stats


class _Thing:
    pass


def aborting_loop(n: int) -> list[Any]:
    refs: list[Any] = []
    for i in range(n):
        thing = _Thing()
        refs.append(weakref.ref(thing))
        refs.append({i: thing})  # BUILD_MAP: the recording aborts here, with `thing` on its stack
    return refs


def test_an_aborted_recording_frees_what_it_saw_at_once() -> None:
    """Without waiting for the cyclic GC: the abort's exception and the
    recorder's frames made a cycle that kept every value alive till then."""
    gc.disable()
    try:
        jit = JIT(1)
        jit.enable(aborting_loop.__code__)
        try:
            refs = aborting_loop(10)[::2]  # the weak references (the dicts made with the things are gone)
        finally:
            jit.disable()
        assert jit.stats.aborts == {"unsupported instruction BUILD_MAP": 1}
        assert [r() for r in refs] == [None] * 10
    finally:
        gc.enable()


def test_short_loops_entered_often_are_given_up() -> None:
    # Entering a trace costs more than a few native iterations save.
    def short(n: int) -> int:
        t = 0
        for i in range(n):
            t += i
        return t

    jit = JIT(1)
    jit.enable(short.__code__)
    try:
        assert all(short(5) == 10 for _ in range(1000))
        assert short(10**5) == sum(range(10**5))
    finally:
        jit.disable()
    assert jit.stats.aborts == {"the loop runs too few iterations per entry": 1}
    assert jit.stats.native_entries == 256  # then the backedge was disabled


def test_long_loops_entered_often_keep_their_trace() -> None:
    jit = JIT(1)
    jit.enable(float_accumulation.__code__)
    try:
        for _ in range(300):
            float_accumulation(1000)
    finally:
        jit.disable()
    assert jit.stats.traces == 1 and not jit.stats.aborts and jit.stats.native_entries >= 299


def over(items: list[int]) -> int:
    total = 0
    for item in items:
        total += item
    return total


def test_a_loop_over_short_lists_is_given_up_before_it_is_compiled() -> None:
    # Hot, but each entry would run 2 native iterations: the sequence at
    # the hot backedge says so (twice, a threshold apart), without a
    # trace compiled, entered 256 times and judged.
    jit = JIT(1000)
    jit.enable(over.__code__)
    try:
        assert all(over([1, 2, 3]) == 6 for _ in range(2000))
    finally:
        jit.disable()
    assert jit.stats.traces == 0
    assert jit.stats.aborts == {"the loop runs too few iterations per entry": 1}


def test_a_loop_over_long_lists_is_compiled() -> None:
    jit = JIT(1000)
    jit.enable(over.__code__)
    try:
        assert all(over(list(range(50))) == 1225 for _ in range(100))
    finally:
        jit.disable()
    assert jit.stats.traces == 1 and "the loop runs too few iterations per entry" not in jit.stats.aborts


class Counter:
    def __init__(self) -> None:
        self.count = 0

    def bump(self) -> None:  # stores an attribute: not inlined
        self.count += 1


def bump_all(counters: list[Counter]) -> int:
    for counter in counters:
        counter.bump()
    return sum(counter.count for counter in counters)


def bump_and_sum(counters: list[Counter]) -> float:
    total = 0.0
    for counter in counters:
        counter.bump()
        c = counter.count
        total += c * 0.5 + c * c * 0.25 - c / 3.0 + (c % 7) * 1.5 + (c // 3) * 0.125
    return total


def test_a_loop_mostly_calling_python_functions_is_given_up() -> None:
    # Each call it does not inline costs a trace more than the
    # interpreter's own call; the loop does little else.
    from copyjit.trace.jit import CALLS_COST_MORE

    counters = [Counter() for _ in range(3000)]
    jit = JIT(1000)
    jit.enable(bump_all.__code__)
    try:
        assert bump_all(counters) == 3000 and bump_all(counters) == 6000
    finally:
        jit.disable()
    assert jit.stats.traces == 0
    assert jit.stats.aborts == {CALLS_COST_MORE: 1}
    assert jit.stats.calls == {}  # (counted for compiled traces only)


def test_a_loop_calling_python_functions_among_other_work_is_compiled() -> None:
    expected = bump_and_sum([Counter() for _ in range(3000)])
    counters = [Counter() for _ in range(3000)]
    jit = JIT(1000)
    jit.enable(bump_and_sum.__code__)
    try:
        assert bump_and_sum(counters) == expected and counters[0].count == 1
    finally:
        jit.disable()
    assert jit.stats.traces == 1 and not jit.stats.aborts
    assert jit.stats.calls == {"not inlined: STORE_ATTR in the function": 1}


def grid_sum(rows: int, cols: int) -> int:
    total = 0
    for i in range(rows):
        for j in range(cols):
            total += i * j
    return total


@pytest.mark.parametrize(("rows", "traces"), [(700, 2), (500, 1)])
def test_entries_of_a_nested_loops_trace_count_for_the_loop_around_it(rows: int, traces: int) -> None:
    # The inner loop (10 backedges an outer iteration) gets its trace after
    # 100 outer iterations; from then on each outer iteration counts twice
    # (its backedge, and the interpreter's entry of the inner trace), so
    # the outer loop is hot after ~550 of them, not 1000. At 500 it is not.
    jit = JIT(1000)
    jit.enable(grid_sum.__code__)
    try:
        assert grid_sum(rows, 10) == sum(i * j for i in range(rows) for j in range(10))
    finally:
        jit.disable()
    assert jit.stats.traces == traces


def test_the_loop_an_entry_counts_for_is_the_innermost_around_it() -> None:
    from copyjit.trace.bytecode import decoded
    from copyjit.trace.jit import _enclosing_unit

    def nest(n: int) -> int:
        total = 0
        for i in range(n):
            for j in range(i):
                for k in range(j):
                    total += k
            for m in range(i):
                total += m
        for p in range(n):
            total += p
        return total

    # (head, backedge) of each loop, in the order of their heads: i, j, k, m, p.
    (i_head, i_src), (j_head, j_src), (k_head, k_src), (m_head, m_src), (p_head, p_src) = \
        sorted((ins.argval, ins.offset) for ins in decoded(nest.__code__)[0].values()
               if ins.opname == "JUMP_BACKWARD")
    assert _enclosing_unit(nest.__code__, k_src, k_head) == j_src // 2 + 1
    assert _enclosing_unit(nest.__code__, j_src, j_head) == i_src // 2 + 1
    assert _enclosing_unit(nest.__code__, m_src, m_head) == i_src // 2 + 1
    assert _enclosing_unit(nest.__code__, i_src, i_head) == 0
    assert _enclosing_unit(nest.__code__, p_src, p_head) == 0


def count_up(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


@pytest.mark.parametrize("n", [1000, 500, 100])
def test_a_range_whose_length_divides_the_threshold_is_compiled(n: int) -> None:
    # Every thousandth backedge is an entry's last: what is left of the
    # range there (nothing) is no sample of its length; the second backedge
    # of the next entry is (it was given up as short, never compiled).
    jit = JIT(1000)
    jit.enable(count_up.__code__)
    try:
        assert all(count_up(n) == n * (n - 1) // 2 for _ in range(30_000 // n))
    finally:
        jit.disable()
    assert jit.stats.traces == 1 and not jit.stats.aborts, jit.stats.aborts


@pytest.mark.parametrize("n", [3, 10])
def test_a_loop_over_short_ranges_is_given_up_before_it_is_compiled(n: int) -> None:
    jit = JIT(1000)
    jit.enable(count_up.__code__)
    try:
        assert all(count_up(n) == n * (n - 1) // 2 for _ in range(5000))
    finally:
        jit.disable()
    assert jit.stats.traces == 0
    assert jit.stats.aborts == {"the loop runs too few iterations per entry": 1}


def rarely_unbridgeable(n: int, every: int) -> int:
    total = 0
    for i in range(n):
        if i % every == every - 1:
            total += len({i: i})  # BUILD_MAP: the exit's bridge cannot be recorded
        total += i
    return total


def test_a_recording_the_same_as_the_trace_just_dropped_is_given_up() -> None:
    # The exit taken every 6th iteration cannot have a bridge, so the trace
    # is dropped after 16; recorded again on the same path (a threshold,
    # 1000 iterations, later: not the 6th), it would be dropped again
    # (MAX_RECORDINGS times, each compiled for nothing).
    stats = differential(rarely_unbridgeable, 20_000, 6, threshold=1000)
    assert stats["traces"] == 1
    assert stats["aborts"]["recorded the trace just dropped for exits taken early again"] == 1


def test_a_trace_that_repaid_its_compile_is_recorded_again() -> None:
    # The same, where the trace ran 16 * 25,000 iterations before it was
    # dropped: another such life is worth a compile.
    stats = differential(rarely_unbridgeable, 500_000, 25_000, threshold=1000)
    assert stats["traces"] >= 2
    assert "recorded the trace just dropped for exits taken early again" not in stats["aborts"]


class _Counted:
    def __init__(self) -> None:
        self.calls = 0  # instances with a dict: a method looked up on one is bound afresh

    def bump(self, x: int) -> int:
        self.calls += 1
        return x


def calls_a_method(n: int) -> int:
    counted, total = _Counted(), 0
    for i in range(n):
        total += counted.bump(i)
    return total + counted.calls


def calls_a_method_of_its_own_dict(n: int) -> int:
    counted, total = _Counted(), 0
    counted.__dict__ = {"calls": 0}  # a dict of its own holds its attributes: generic lookups
    for i in range(n):
        total += counted.bump(i)
    return total + counted.calls


def calls_a_bound_method(n: int) -> int:
    counted, total = _Counted(), 0
    bump = counted.bump  # bound once: the same object at every iteration
    for i in range(n):
        total += bump(i)
    return total + counted.calls


def test_a_method_bound_afresh_at_every_iteration_is_not_traced() -> None:
    # Found on the class (the instance's keys checked to hold no `bump`):
    # the function, called with the instance.
    stats = differential(calls_a_method, 3000, threshold=1000)
    assert stats["traces"] == 1 and stats["native_entries"] == 1 and not stats["aborts"]
    # Looked up generically, it is bound afresh: its guard (the method
    # object recorded) would fail at every iteration.
    stats = differential(calls_a_method_of_its_own_dict, 3000, threshold=1000)
    assert stats["traces"] == 0
    assert stats["aborts"] == {"a call of a method bound afresh at every iteration": 1}
    stats = differential(calls_a_bound_method, 3000, threshold=1000)
    assert stats["traces"] == 1 and stats["native_entries"] == 1 and not stats["aborts"]


def around_an_untraceable_loop(n: int) -> int:
    total = 0
    for i in range(n):
        for j in range(3):
            total += len({j: i})  # BUILD_MAP: the nested loop stays in the interpreter
    return total


def test_a_loop_around_a_loop_given_up_is_given_up_at_once() -> None:
    # Its recordings need the nested loop's trace, which will never come:
    # one try, not 32 (MAX_TRANSIENT_ABORTS) ended at the nested loop.
    stats = differential(around_an_untraceable_loop, 300)
    assert stats["aborts"] == {"unsupported instruction BUILD_MAP": 1,
                               "an inner loop that stays in the interpreter": 1}


def runs_to(n: int) -> int:
    i = total = 0
    while i < n:
        total += i
        i += 1
    return total


def test_recordings_that_found_the_loop_ending_count_in_a_row_only() -> None:
    # A trace made since resets the count: the loop had longer entries then.
    from types import SimpleNamespace

    from copyjit.backend.runtime import buffer_address
    from copyjit.trace.jit import Location

    totals = bytearray(64)
    location = Location(0, buffer_address(totals))
    location.ended_in_a_row = 3
    location.install(SimpleNamespace(cell_address=0), SimpleNamespace(snapshots=[]), 256)  # type: ignore[arg-type]
    assert location.ended_in_a_row == 0


def sum_of(items: list[int]) -> int:
    total = 0
    for item in items:
        total += item
    return total


def test_a_hot_backedge_after_the_last_item_records_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # 20 items an entry and a threshold of 1,000: the hot backedge is the
    # 50th entry's last, after which FOR_ITER ends the loop. A recording
    # there would only find that out; it is counted as that abort without
    # recording, and the loop is recorded at the next backedge.
    from copyjit.trace import recorder

    recorded: list[object] = []
    real = recorder.record

    def counting(*args: Any, **kwargs: Any) -> Any:
        recorded.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(recorder, "record", counting)
    items = list(range(20))
    jit = JIT(1000)
    jit.enable(sum_of.__code__)
    try:
        assert all(sum_of(items) == 190 for _ in range(100))
    finally:
        jit.disable()
    assert jit.stats.traces == 1
    assert len(recorded) == 1
    assert jit.stats.aborts == {"the loop ended while recording": 1}


def test_items_left_reads_lists_tuples_and_ranges() -> None:
    from copyjit.trace.jit import _items_left

    for sequence in ([1, 2, 3], (1, 2, 3), range(3)):
        iterator = iter(sequence)
        assert _items_left(iterator) == 3
        next(iterator)
        assert _items_left(iterator) == 2
        next(iterator), next(iterator)
        assert _items_left(iterator) == 0
        assert next(iterator, None) is None
        assert _items_left(iterator) == 0
    grown = [1]
    iterator = iter(grown)
    next(iterator)
    grown.append(2)  # a list the loop appends to goes on
    assert _items_left(iterator) == 1
    assert _items_left(iter({1: 2})) is None
    assert _items_left(None) is None


def test_a_loop_that_keeps_ending_while_recorded_is_given_up_as_short() -> None:
    # Each call runs two iterations, one after its only backedge: every hot
    # backedge is the loop's last, so every recording finds it ending
    # (retried at the next backedge).
    from copyjit.trace.jit import MAX_ENDED_IN_A_ROW

    jit = JIT(1000)
    jit.enable(runs_to.__code__)
    try:
        assert all(runs_to(2) == 1 for _ in range(2000))
    finally:
        jit.disable()
    assert jit.stats.aborts == {"the loop ended while recording": MAX_ENDED_IN_A_ROW,
                                "the loop runs too few iterations per entry": 1}


# --- native entry: coexistence, signals, counters -------------------------

OTHER_TOOL = sys.monitoring.PROFILER_ID


@pytest.mark.parametrize("scope", ["local", "global"])
def test_no_native_entries_while_another_tool_watches(scope: str) -> None:
    # The trace exists before the other tool arrives: the native callback
    # itself must step aside for it, and come back once it is gone.
    monitoring, code = sys.monitoring, float_accumulation.__code__
    jit = JIT(1)
    jit.enable(code)
    try:
        float_accumulation(100)
        before = jit.stats.native_entries
        assert jit.stats.traces == 1 and before >= 1
        monitoring.use_tool_id(OTHER_TOOL, "another tool")
        try:
            if scope == "local":
                monitoring.set_local_events(OTHER_TOOL, code, monitoring.events.PY_START)
            else:
                monitoring.set_events(OTHER_TOOL, monitoring.events.RAISE)
            assert float_accumulation(100) == sum(i * 0.5 - 0.25 for i in range(100))
            assert jit.stats.native_entries == before
        finally:
            monitoring.set_local_events(OTHER_TOOL, code, 0)
            monitoring.set_events(OTHER_TOOL, 0)
            monitoring.free_tool_id(OTHER_TOOL)
        float_accumulation(100)
        assert jit.stats.native_entries == before + 1
    finally:
        jit.disable()


def test_no_native_entries_once_a_tracer_is_set() -> None:
    jit = JIT(1)
    jit.enable(float_accumulation.__code__)
    lines: list[int] = []
    tracer = _line_tracer(lines)

    try:
        float_accumulation(100)
        before = jit.stats.native_entries
        sys.settrace(tracer)
        try:
            result = float_accumulation(50)
        finally:
            sys.settrace(None)
    finally:
        jit.disable()
    assert result == sum(i * 0.5 - 0.25 for i in range(50))
    assert jit.stats.native_entries == before and len(lines) > 100


def test_native_entries_and_exits_are_counted() -> None:
    jit = JIT(1)
    jit.enable(float_accumulation.__code__)
    try:
        for _ in range(100):
            float_accumulation(1000)
    finally:
        jit.disable()
    # The first call records at its first backedge, then enters like the others.
    assert (jit.stats.native_entries, jit.stats.exits, jit.stats.traces) == (100, 100, 1)


def test_two_threads_in_one_trace_keep_the_counters_whole() -> None:
    jit = JIT(1)
    jit.enable(int_arithmetic.__code__)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)  # many eval-breaker exits and re-entries
    try:
        int_arithmetic(10)
        threads = [threading.Thread(target=lambda: [int_arithmetic(200_000) for _ in range(20)])
                   for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
        jit.disable()
    stats = jit.stats
    assert stats.native_entries == stats.exits >= 41
    assert stats.traces == 1 and not stats.aborts


def test_a_trace_that_fails_hands_its_exception_to_the_program() -> None:
    # Traces never fail today (they exit to let the interpreter raise); one
    # that does must not crash: its exception is raised in the program.
    from copyjit.backend import asm
    from copyjit.backend.emitter import emit
    from tests.conftest import NB

    def loop(n: int) -> int:
        zero = 0
        for _ in range(n):
            zero += 0
        return zero

    jit = JIT(1)
    jit.enable(loop.__code__)
    try:
        loop(10)
        (location,) = [loc for loc in jit.locations.values() if loc.trace is not None]
        assert location.lowered is not None
        failing = emit(asm.parse(f"""
            _LOAD_FAST oparg=1
            _LOAD_FAST oparg=1
            _BINARY_OP oparg={NB["/"]} error=error
            _POP_TOP
            _EXIT_TRACE
        error:
            _ERROR_TRACE
        """))
        location.install(failing, location.lowered, 0)
        with pytest.raises(ZeroDivisionError):
            loop(10)
    finally:
        jit.disable()


def _spin_until_signalled(tmp_path: Path, program: str) -> subprocess.Popen[str]:
    script = tmp_path / "spin.py"
    script.write_text(textwrap.dedent(program))
    child = subprocess.Popen(
        [sys.executable, "-m", "copyjit", "run", "--threshold", "1", str(script)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert child.stdout is not None and child.stdout.readline() == "spinning\n"
    time.sleep(0.3)  # well inside the trace by now
    return child


SPIN = """
    import signal, sys
    def spin():
        i = 0
        while i >= 0:
            i = (i + 1) % 1000
    {setup}
    print("spinning", flush=True)
    {run}
"""


def test_a_custom_sigint_handler_runs_once_per_signal_and_sees_the_program(tmp_path: Path) -> None:
    child = _spin_until_signalled(tmp_path, SPIN.format(setup=textwrap.dedent("""
        callers = []
        class Done(Exception):
            pass
        def handler(signum, frame):
            callers.append((sys._getframe(1).f_code.co_name, frame.f_code.co_name))
            if len(callers) == 3:
                raise Done
        signal.signal(signal.SIGINT, handler)
    """).replace("\n", "\n    "), run="""
    try:
        spin()
    except Done:
        print(callers)
    """))
    for _ in range(2):
        child.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert child.poll() is None  # the handler ran once per signal, not twice
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert (child.returncode, err) == (0, "")
    assert out == f"{[('spin', 'spin')] * 3}\n"


def test_sys_exit_in_a_signal_handler_keeps_its_code(tmp_path: Path) -> None:
    child = _spin_until_signalled(tmp_path, SPIN.format(
        setup="signal.signal(signal.SIGUSR1, lambda *a: sys.exit(3))", run="spin()"))
    child.send_signal(signal.SIGUSR1)
    out, err = child.communicate(timeout=30)
    assert (child.returncode, out, err) == (3, "", "")


def test_code_dying_after_the_jits_module_was_cleared_leaves_stderr_alone(tmp_path: Path) -> None:
    # At interpreter exit, a module run by runpy (its namespace kept alive
    # by a gc callback's globals) died after copyjit.trace.jit's globals
    # were cleared: forgetting its traces read `depth`, then None, and
    # printed "Exception ignored ... AttributeError" for each code.
    (tmp_path / "module.py").write_text(textwrap.dedent("""
        def spin(n):
            s = 0
            for i in range(n):
                s += i
            return s
        print(spin(10000))
    """))
    (tmp_path / "program.py").write_text(textwrap.dedent("""
        import gc, runpy
        import copyjit
        gc.callbacks.append(lambda phase, info: None)
        copyjit.enable()
        runpy.run_path("module.py", run_name="__main__")
    """))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COPYJIT_THRESHOLD": "1"}
    done = subprocess.run([sys.executable, "program.py"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "49995000\n", "")


def test_the_compilers_objects_are_aged_as_it_loads(tmp_path: Path) -> None:
    # Left young, the compiler's ~5,600 objects were swept by a collection
    # a few traces later, in the middle of one (n-body's second trace: 5.4
    # ms from hot to native instead of 1.9). Loading the compiler ages them.
    (tmp_path / "program.py").write_text(textwrap.dedent("""
        import gc
        import copyjit
        copyjit.enable()
        def spin(n):
            s = 0
            for i in range(n):
                s += i
            return s
        spin(10000)
        import copyjit.trace.lower as lowering
        print(any(o is lowering.lower for o in gc.get_objects(generation=2)))
    """))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COPYJIT_THRESHOLD": "1"}
    done = subprocess.run([sys.executable, "program.py"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, "True\n", "")


def test_loops_at_exit_leave_stderr_alone(tmp_path: Path) -> None:
    # weakref.finalize's registry is walked at exit, by a loop: registering
    # a finalizer from the JUMP callback then (for code not seen before)
    # printed "dictionary changed size during iteration".
    program = """
        import weakref
        import copyjit
        copyjit.enable()
        class Box:
            pass
        boxes = [Box() for _ in range(5)]
        keep = [weakref.finalize(box, print, i) for i, box in enumerate(boxes)]
    """
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(program))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COPYJIT_THRESHOLD": "1"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=env)
    off = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env={**env, "COPYJIT": "0"})
    assert (done.returncode, done.stdout, done.stderr) == (off.returncode, off.stdout, off.stderr)
