"""Robustness: a hot loop deep in the program's recursion, a memory limit,
and MemoryError raised inside native code leave the program's behaviour as
it is without the JIT. (Ctrl-C inside native code: tests/test_jit.py and
tests/test_nested.py, with tests/conftest.py's `interrupted`.)"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from copyjit.trace.ir import NO_MEMORY
from copyjit.trace.jit import JIT
from tests.test_objects import differential

ROOT = Path(__file__).resolve().parent.parent

# For each margin, a new code (so that its loop is recorded at that depth)
# whose hot loop runs `margin` frames below the recursion limit, and calls
# a function that recurses until RecursionError, counting how deep it got:
# the count must be CPython's (the call is made for real while the loop is
# recorded, from the JIT's own frames).
_DEEP = '''
import sys

SOURCE = """
def probe(k):
    try:
        return probe(k + 1)
    except RecursionError:
        return k

def deep(d, n):
    if d > 0:
        return deep(d - 1, n)
    t = 0
    room = 0
    for i in range(n):
        t += i * 2
        if i < 40:
            room = max(room, probe(0))
    return t, room
"""


def depth_here():
    f, n = sys._getframe(1), 0
    while f is not None:
        f, n = f.f_back, n + 1
    return n


for margin in (60, 20, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2):
    namespace = {}
    exec(SOURCE, namespace)
    d = sys.getrecursionlimit() - margin - depth_here()
    print(margin, namespace["deep"](d, 3000))
'''

# A hot loop in the deepest frame that fits (margin 0), and 1 to 3 frames
# above it; for margins below 0 the call itself raises RecursionError.
# Before: at margin 0 the native callback could not call the JIT's handler
# (its frame did not fit), and the program got `RecursionError()` (by type,
# without its message) where CPython runs the loop.
_AT_THE_LIMIT = '''
def probe(k):
    try:
        return probe(k + 1)
    except RecursionError:
        return k


SOURCE = """
def deep(d, n):
    if d > 0:
        return deep(d - 1, n)
    t = 0
    for i in range(n):
        t += i
    return t
"""

top = probe(0)
for margin in range(-3, 4):
    namespace = {}
    exec(SOURCE, namespace)
    try:
        print(margin, namespace["deep"](top - margin, 300))
    except RecursionError as error:
        print(margin, repr(error))
'''

# Under a memory limit the program sets (RLIMIT_AS, which counts reserved
# address space too): a loop traced before it, so the JIT's memory is in
# place; then what fits under CPython must fit under the JIT (its code
# arena reserved 1 GiB of address space, and this allocation failed), and
# a MemoryError raised by a call in a traced loop (a 1 TiB bytearray) is
# caught by the program's `except`, every time, and the program goes on.
_OUT_OF_MEMORY = '''
import resource


def warm(n):
    t = 0
    for i in range(n):
        t += i
    return t


def sometimes(i):
    if i % 1000 == 999:
        return len(bytearray(1 << 40))
    return 1


def loop(n):
    t = caught = 0
    for i in range(n):
        try:
            t += sometimes(i)
        except MemoryError:
            caught += 1
    return t, caught


print(warm(10000))
limit = 512 << 20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
print(len(bytearray(200 << 20)))
print(loop(100000))
print(warm(20000))
'''


Completed = subprocess.CompletedProcess[str]


def _both(program: str, tmp_path: Path) -> tuple[Completed, Completed, dict[str, object]]:
    script, stats = tmp_path / "program.py", tmp_path / "stats.json"
    script.write_text(textwrap.dedent(program))
    plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    command = [sys.executable, "-m", "copyjit", "run", "--threshold", "1", "--stats-json", str(stats),
               str(script)]
    jitted = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    return plain, jitted, json.loads(stats.read_text()) if stats.exists() else {}


def test_a_hot_loop_near_the_recursion_limit_runs_as_without_the_jit(tmp_path: Path) -> None:
    # Before: recorded near the limit, the JIT's own calls raised
    # RecursionError (an internal error: the loop given up), or one reached
    # the program, and the call recording makes had fewer levels left.
    plain, jitted, stats = _both(_DEEP, tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert (jitted.returncode, jitted.stdout, jitted.stderr) == (0, plain.stdout, plain.stderr)
    aborts = stats["aborts"]
    assert isinstance(aborts, dict)
    assert not [reason for reason in aborts if "internal error" in reason], aborts
    assert stats["traces"] == 13  # each loop compiled, the deepest too


@pytest.mark.parametrize("threshold", [1, 2])
def test_a_hot_loop_in_a_frame_exactly_at_the_recursion_limit_runs_as_without_the_jit(
        threshold: int, tmp_path: Path) -> None:
    script, stats_file = tmp_path / "program.py", tmp_path / "stats.json"
    script.write_text(_AT_THE_LIMIT)
    plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0 and "0 44850" in plain.stdout, plain.stderr
    command = [sys.executable, "-m", "copyjit", "run", "--threshold", str(threshold), "--stats-json",
               str(stats_file), str(script)]
    jitted = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert (jitted.returncode, jitted.stdout, jitted.stderr) == (0, plain.stdout, plain.stderr)
    assert json.loads(stats_file.read_text())["traces"] == 4  # margins 0 to 3, the deepest too


def test_under_a_memory_limit_memory_errors_are_the_programs(tmp_path: Path) -> None:
    plain, jitted, stats = _both(_OUT_OF_MEMORY, tmp_path)
    assert plain.returncode == 0 and "(99900, 100)" in plain.stdout, plain.stderr
    assert (jitted.returncode, jitted.stdout, jitted.stderr) == (0, plain.stdout, plain.stderr)
    assert isinstance(stats["traces"], int) and stats["traces"] >= 2
    assert isinstance(stats["exits"], int) and stats["exits"] > 0


# --- Memory exhausted by a traced loop itself ----------------------------------------
#
# A loop that allocates a box per iteration until MemoryError: the trace's
# own box fails (an exit), and the exit's boxes, to write the frame back,
# fail too. They spend the emergency reserve (copyjit.h) and the exit
# finishes; native entries are refused until the reserve can be mapped
# again, so the interpreter runs the loop until it raises MemoryError. (Before:
# `Fatal Python error: copyjit: a value could not be boxed while leaving a
# trace`.) The limit is the address space in use plus 160 MiB: quick to fill.
# With runtime.c's reserve_ready() made to answer "ready" when it cannot map
# the reserve, each test below dies so (checked when they were written):
# the interpreter spends the reserve's memory, enters the trace again, and
# that trace's next exit finds none.
_LIMIT = """
import resource


def limit_memory(extra):
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) for line in status if line.startswith("VmSize:")) << 10
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, size + extra))
"""

_EXHAUSTED = {
    # /work/wt-oom/oom_repro.py, the report's: a new float per iteration.
    "floats": """
        def fill():
            xs = []
            x = 0.5
            try:
                while True:
                    x = x * 1.0000001 + 0.25
                    xs.append(x)
            except MemoryError:
                n = len(xs)
                del xs
                return n > 1000
        """,
    # Ints past the small ones are boxes too. (Nothing is allocated before
    # `del xs`: CPython itself has no room for len(xs) there.)
    "ints": """
        def fill():
            xs = []
            n = 1000
            try:
                while True:
                    n += 3
                    xs.append(n)
            except MemoryError:
                del xs
                return n > 1000
        """,
    # A bridge writes back a local of its own (y) at its end, and its box
    # spends the reserve there, in the trace's body: the trace must leave at
    # its loop head (the eval breaker's bit, copyjit.h) before its next exit
    # finds no reserve. Without that bit this one stops the process.
    "bridge": """
        def fill():
            xs = []
            x = 0.5
            y = 0.25
            i = 0
            try:
                while True:
                    i += 1
                    if i % 2:
                        x = x * 1.0000001 + 0.25
                        xs.append(x)
                    else:
                        y = y * 1.0000001 + 1.5
            except MemoryError:
                del xs
                return x > 1, y > 1
        """,
    # The boxes are made in a nested loop whose trace is called (_CALL_TRACE:
    # it has a bridge, so it is not run inline)...
    "nested_called": """
        def fill():
            xs = []
            x = 0.5
            try:
                while True:
                    for k in range(50):
                        if k % 2:
                            x = x * 1.0000001 + 0.25
                        else:
                            x = x + 1.0
                        xs.append(x)
            except MemoryError:
                del xs
                return x > 1
        """,
    # ...or run inline.
    "nested_inline": """
        def fill():
            xs = []
            x = 0.5
            try:
                while True:
                    for k in range(100):
                        x = x * 1.0000001 + 0.25
                        xs.append(x)
            except MemoryError:
                n = len(xs)
                del xs
                return n > 1000
        """,
    # The reserve is spent by the trace of a loop that a call made from
    # another loop's trace runs, and memory stays exhausted (the list is
    # kept): the calling trace leaves at its loop head, and its exit's
    # boxes (eight float locals) fail with no
    # reserve left. They come from the pool (copyjit.h); without it, this
    # one stops the process. (CPython raises at the first float it makes
    # after the call, the JIT a little later, in the interpreter: both are
    # caught.) The callee keeps the floats the frame holds: an exit writes
    # a local's float in place only when the frame alone holds it.
    "called_spent": """
        import sys
        kept = [None, None]
        def exhaust(i):
            if i == 60:
                kept[1] = dict(sys._getframe(1).f_locals)
            xs = []
            x = 0.5
            try:
                while i == 60:
                    x = x * 1.0000001 + 0.25
                    xs.append(x)
            except MemoryError:
                kept[0] = xs
            return 1.0
        def fill():
            a = b = c = d = e = f = g = h = 0.5
            try:
                for i in range(100):
                    a = a * 1.5 + i
                    b = b * 1.25 + i
                    c = c * 1.125 + i
                    d = d * 1.0625 + i
                    e += a
                    f += b
                    g += c
                    h += d
                    a += exhaust(i)
            except MemoryError:
                pass
            n = len(kept[0])
            kept[0] = None
            return n > 1000
        """,
}


@pytest.mark.parametrize("kind", sorted(_EXHAUSTED))
def test_memory_exhausted_by_a_traced_loop_is_a_memory_error(kind: str, tmp_path: Path) -> None:
    program = _LIMIT + textwrap.dedent(_EXHAUSTED[kind]) + """
limit_memory(160 << 20)
print(fill())
print("after")
"""
    plain, jitted, stats = _both(program, tmp_path)
    assert plain.returncode == 0 and plain.stdout.endswith("after\n"), plain.stderr
    assert (jitted.returncode, jitted.stdout, jitted.stderr) == (0, plain.stdout, plain.stderr)
    assert isinstance(stats["native_entries"], int) and stats["native_entries"] >= 1
    # The exit that found no memory spent the reserve, and the interpreter
    # ran the loop from there (with the reserve in place, a test that no
    # longer exhausts memory inside the trace).
    assert isinstance(stats["reserve_released"], int) and stats["reserve_released"] >= 1
    assert isinstance(stats["entries_refused"], int) and stats["entries_refused"] > 0
    if kind == "bridge":
        assert stats["bridges"] == 1, stats
    if kind == "called_spent":
        assert stats["pool_taken"] > 0, stats
    if kind.startswith("nested"):
        assert stats["traces"] == 2 and stats["inlined_loops"] == (kind == "nested_inline"), stats


# The list stays alive, and MemoryError is caught again and again: each
# round fills what the program freed (16 MiB of ballast, dropped without
# allocating), and the traced loop's exit finds memory exhausted (spending
# the reserve, or raising at the append). The loop stays usable, and once
# memory is back the loops run natively again: `fill` itself each round,
# and `spin` (which allocates nothing). Under the JIT the counts go to a file.
_ROUNDS = """
import json
import sys


def fill(xs, x):
    try:
        while True:
            x = x * 1.0000001 + 0.25
            xs.append(x)
    except MemoryError:
        return x


def spin(n):
    t = 0.0
    for i in range(n):
        t = t * 0.5 + i
    return t


def counts():
    if "copyjit" not in sys.modules:
        return None
    return sys.modules["copyjit"].stats()["native_entries"]


print(spin(1000))
ballast = [bytearray(16 << 20) for _ in range(4)]
limit_memory(24 << 20)
xs, x, rounds = [], 0.5, []
for round in range(4):
    at_start = counts()
    x = fill(xs, x)
    ballast[round] = None
    after_fill = counts()
    print(round, len(xs) > 1000, spin(2000))
    rounds.append((at_start, after_fill, counts()))
if rounds[0][0] is not None:
    with open(sys.argv[1], "w") as file:
        json.dump(rounds, file)
print(len(xs) > 1000)
"""


def test_a_loop_that_catches_memory_errors_goes_on_and_runs_natively_again(tmp_path: Path) -> None:
    counts = tmp_path / "rounds.json"
    script, stats_file = tmp_path / "program.py", tmp_path / "stats.json"
    script.write_text(_LIMIT + _ROUNDS)
    plain = subprocess.run([sys.executable, str(script), str(counts)], capture_output=True, text=True,
                           timeout=300)
    assert plain.returncode == 0 and plain.stdout.count("True") == 5, plain.stderr
    assert not counts.exists()
    command = [sys.executable, "-m", "copyjit", "run", "--threshold", "1", "--stats-json", str(stats_file),
               str(script), str(counts)]
    jitted = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert (jitted.returncode, jitted.stdout, jitted.stderr) == (0, plain.stdout, plain.stderr)
    rounds = json.loads(counts.read_text())
    for at_start, after_fill, after_spin in rounds:
        assert after_fill > at_start, rounds  # fill's loop entered its trace
        assert after_spin > after_fill, rounds  # and spin's, with memory back
    stats = json.loads(stats_file.read_text())
    assert stats["reserve_released"] >= 1 and stats["entries_refused"] > 0, stats


# --- MemoryError in the JIT's own work ---------------------------------------------
#
# With memory nearly exhausted (the reserve still in place), the JIT's own
# Python code can run out: that is not a bug of the JIT's (an internal error
# gave the loop up for good) and not the program's exception (the native
# callback deferred it to the program, which got it at a later backedge).

_SPIN = """
def spin(n):
    t = 0.0
    for i in range(n):
        t = t * 0.5 + i
    return t
"""


def _fresh_spin() -> Callable[[int], float]:
    namespace: dict[str, Any] = {}
    exec(_SPIN, namespace)
    return namespace["spin"]  # type: ignore[no-any-return]


def test_a_memory_error_while_recording_is_tried_again_later(monkeypatch: pytest.MonkeyPatch) -> None:
    from copyjit.trace import recorder

    real, failed = recorder.record, []

    def record(*args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(True)
            raise MemoryError
        return real(*args, **kwargs)

    monkeypatch.setattr(recorder, "record", record)
    spin, expected = _fresh_spin(), _fresh_spin()(1000)
    jit = JIT(1)
    jit.enable(spin.__code__)
    try:
        assert spin(1000) == expected
    finally:
        jit.disable()
    assert failed and jit.stats.aborts == {NO_MEMORY: 1}, jit.stats.aborts
    assert jit.stats.traces == 1 and jit.stats.native_entries >= 1


def test_a_memory_error_in_the_jits_handler_is_not_the_programs(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def out_of_memory(*args: Any) -> None:
        calls.append(args)
        raise MemoryError

    spin, expected = _fresh_spin(), _fresh_spin()(1000)
    jit = JIT(1)
    monkeypatch.setattr(jit, "_on_jump", out_of_memory)
    jit.enable(spin.__code__)
    try:
        assert spin(1000) == expected  # before: MemoryError, deferred to the loop's next backedge
    finally:
        jit.disable()
    assert calls


# --- Ctrl-C during the JIT's first import -----------------------------------------

def test_a_sigint_during_the_compilers_first_import_is_held_then_raised() -> None:
    # Importing runs Python code in weak reference callbacks (importlib's
    # module locks), where a KeyboardInterrupt is printed and lost: the JIT
    # holds a SIGINT while it first imports its compiler, then raises it.
    import os
    import signal

    from copyjit.trace.jit import _SigintHeld

    seen = []
    with pytest.raises(KeyboardInterrupt):
        with _SigintHeld("copyjit.a_module_not_imported"):
            os.kill(os.getpid(), signal.SIGINT)
            for i in range(100_000):  # eval-breaker checks: the signal is held, not raised here
                seen.append(i)
        seen.append("after")  # never: raised at the with's end
    assert len(seen) == 100_000
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    # Once the compiler is imported, nothing is held.
    with pytest.raises(KeyboardInterrupt), _SigintHeld("copyjit"):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100_000):
            pass
        seen.append("inside")
    assert "inside" not in seen


def test_a_program_sigint_handler_runs_once_after_the_hold() -> None:
    import os
    import signal

    from copyjit.trace.jit import _SigintHeld

    calls = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: calls.append(signum))
    try:
        with _SigintHeld("copyjit.a_module_not_imported"):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100_000):
                pass
            assert calls == []
        for _ in range(100_000):
            pass
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_pool_is_held_only_while_native_code_runs() -> None:
    """Every activation of native code (entered by the callback, by the
    recorder, or by a trace for its nested loop) holds its share of the
    pool of boxes for exits (copyjit.h) and gives it back."""
    from copyjit.backend.runtime import runtime

    def nested(n: int) -> float:
        t = 0.0
        for i in range(n):
            for j in range(3):
                t += i * 0.5 + j
        return t

    differential(nested, 2000)
    counts = runtime().pool_counts()
    assert counts["held"] == 0, counts
    assert counts["per_activation"] >= 2 and counts["pooled"] >= counts["per_activation"], counts


def _raises_at(i: int) -> int:
    if i == 77:
        raise ValueError(f"at {i}")
    return i


@pytest.mark.parametrize("start", [0, 2**30 - 40, -(2**30) - 40, 2**60, -(2**62), 2**63 - 300, -(2**63) + 10])
def test_boxes_from_the_pool_are_the_numbers_they_stand_for(start: int) -> None:
    """With exits made to box from the pool alone (as when memory and the
    reserve are both gone), each number an exit hands to the frame, and
    each exception a call raised, is CPython's."""
    from copyjit.backend.runtime import runtime

    def f(n: int) -> tuple[object, ...]:
        k, x, seen = start, 0.5, []
        for i in range(n):
            k += 1 if k < 2**62 else -3
            x = x * 1.5 - i
            if i % 9 == 0:
                seen.append((k, str(k), hash(k), k + 1, -k, x))
        return k, str(k), hash(k), k // 7, -k, x, str(x), seen[-3:]

    def g(n: int) -> tuple[int, str]:
        t = start
        try:
            for i in range(n):
                t += _raises_at(i)
        except ValueError as e:
            return t, str(e)
        return t, ""

    before = runtime().pool_counts()["taken"]
    runtime().pool_only(True)
    try:
        for n in (10, 50, 300):
            differential(f, n)
        differential(g, 300)
    finally:
        runtime().pool_only(False)
    assert runtime().pool_counts()["taken"] > before
    assert runtime().pool_counts()["held"] == 0


def test_the_pools_reraisers_are_out_of_the_gcs_sight() -> None:
    """Pooled reraisers hold no exception yet: gc.get_objects() must not
    hand one to the program (calling it would raise a non-exception; found
    by review). A taken one is tracked again, with its exception."""
    import gc

    from copyjit.backend.runtime import runtime

    def f(n: int) -> float:
        t = 0.0
        for i in range(n):
            t += abs(-i * 0.5)
        return t

    differential(f, 500)
    assert runtime().pool_counts()["reraisers_pooled"] > 0
    assert not [o for o in gc.get_objects()
                if type(o) is type(len) and getattr(o, "__name__", "") == "copyjit_reraise"]


def test_a_called_nested_loops_trace_still_runs_after_the_pool_grew() -> None:
    """The pool is made with room for nested loops' traces, which
    `_CALL_TRACE` enters without making any: also when a later trace needs
    more than the pool was made for (found measuring: n-body after another
    kernel in one process gave up its loops, its nested trace refused)."""
    from copyjit.backend.runtime import runtime

    def warm(n: int) -> float:  # the pool made, for a small trace
        t = 0.0
        for i in range(n):
            t += i
        return t

    differential(warm, 100)
    # More than half the pool: enough for the outer trace's entry, not
    # for its nested trace's too, unless the pool is made larger then.
    runtime().hold_for_exits(runtime().pool_counts()["pooled"] // 2 + 1)

    def f(n: int) -> float:
        x = 0.5
        for _ in range(n):
            for k in range(50):
                if k % 2:  # noqa: SIM108  (a side exit with a bridge: the nested loop is not run inline)
                    x = x * 0.999 + 0.25
                else:
                    x = x + 1.0
        return x

    stats = differential(f, 2000)
    assert stats["traces"] == 2 and stats["inlined_loops"] == 0, stats
    assert stats["native_entries"] < 100, stats  # the outer loop entered once or so, not given up


# --- internal errors outside the compiles, and the program's own exceptions ---

def _alternating(n: int) -> int:
    total = 0
    for i in range(n):
        if i % 2:  # a side exit, taken every other iteration: it gets hot
            total += i
        else:
            total -= 1
    return total


def test_an_internal_error_at_a_backedge_leaves_the_program_as_without_the_jit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Outside compile(), whose own `except` catches its bugs: judging a
    # trace runs at backedges, in the JUMP callback; a bug there reached
    # the program as its own exception.
    def broken(self: JIT, location: object, src: int) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(JIT, "judge", broken)
    stats = differential(_alternating, 5000)
    assert stats["aborts"].get("internal error at a backedge: RuntimeError: a bug", 0) >= 1, stats["aborts"]


def test_an_internal_error_at_a_hot_exit_leaves_the_program_as_without_the_jit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: JIT, *args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(JIT, "_on_hot_exit", broken)
    reason = "internal error at a hot exit: RuntimeError: a bug"
    short = differential(_alternating, 5000)["aborts"].get(reason, 0)
    assert short >= 1
    # Not once per hot exit for as long as the loop runs: the trace is
    # judged and given up as without the error.
    assert differential(_alternating, 200_000)["aborts"].get(reason, 0) == short


class _Alarm(Exception):
    pass


@pytest.mark.parametrize("where", ["record", "optimize"])
def test_a_signal_handlers_exception_raised_while_compiling_reaches_the_program(
        where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The handler runs at an eval-breaker check of the JIT's own code: its
    # exception is the program's (a timeout), not an internal error to
    # swallow. signal.raise_signal runs the handler before it returns.
    import signal

    import copyjit.opt
    from copyjit.trace import recorder

    module = recorder if where == "record" else copyjit.opt
    original = getattr(module, where)
    fired: list[int] = []

    def signalled(*args: Any, **kwargs: Any) -> Any:
        if not fired:
            fired.append(1)
            signal.raise_signal(signal.SIGUSR1)
        return original(*args, **kwargs)

    def handler(signum: int, frame: object) -> None:
        raise _Alarm("timeout")

    monkeypatch.setattr(module, where, signalled)
    previous = signal.signal(signal.SIGUSR1, handler)
    jit = JIT(1)
    jit.enable(_alternating.__code__)
    try:
        with pytest.raises(_Alarm):
            _alternating(5000)
    finally:
        jit.disable()
        signal.signal(signal.SIGUSR1, previous)
    assert fired == [1]
    assert not [reason for reason in jit.stats.aborts if "internal error" in reason], jit.stats.aborts
