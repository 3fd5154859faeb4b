"""What must not crash or leak: GC during traces, bad arguments, freeing
running code, threads, bounds, refcounts on every path."""

from __future__ import annotations

import ctypes
import gc
import subprocess
import sys
import textwrap
import threading

import pytest

from copyjit.backend import asm, memory
from copyjit.backend.emitter import EmitError, Instruction, emit
from copyjit.backend.frames import RawFrame
from copyjit.backend.runtime import runtime
from copyjit.stencil import HoleKind
from copyjit.stencils import table
from copyjit.uops import PURE_C_FUNCTIONS, SPILL_SLOTS, UOPS
from tests.conftest import NB, run

ROOT = str(__import__("pathlib").Path(__file__).parent.parent)


def _python(script: str) -> subprocess.CompletedProcess[str]:
    """Run `script` in a fresh interpreter: a crash must not take pytest down."""
    source = f"import sys\nsys.path.insert(0, {ROOT!r})\n" + textwrap.dedent(script)
    return subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=120)


def test_gc_walking_a_running_generator_sees_only_live_stack() -> None:
    # At a JUMP event in nested for-loops the trace pops both iterators: the
    # inner one is freed, then the outer one's __del__ walks the generator's
    # frame, which is still running. The slot of the freed inner iterator
    # must no longer be visible (without the fix: a freed object is reported,
    # or the interpreter crashes).
    done = _python("""
        import gc, weakref
        from copyjit.backend import asm
        from copyjit.backend.emitter import emit

        freed, during, checks = set(), [], []

        class Inner:
            def __init__(self, n):
                self.n = n
                weakref.finalize(self, freed.add, id(self))
            def __iter__(self):
                return self
            def __next__(self):
                self.n -= 1
                if self.n < 0:
                    raise StopIteration
                return self.n

        class Outer(Inner):
            def __del__(self):
                if during:  # only while the trace runs: later, ids are reused
                    checks.append(sorted({id(r) for r in gc.get_referents(GEN)} & freed))

        trace = emit(asm.parse('''
            _POP_TOP
            _POP_TOP
            _LOAD_FAST oparg=0
            _LOAD_FAST oparg=1
            _EXIT_TRACE
        '''))

        def gen(outer, inner):
            for x in Outer(3):
                for y in Inner(3):
                    yield y

        def on_jump(code, src, dst):
            if not checks:
                during.append(True)
                trace(sys._getframe(1))
                during.clear()

        m = sys.monitoring
        m.use_tool_id(m.OPTIMIZER_ID, "test")
        m.register_callback(m.OPTIMIZER_ID, m.events.JUMP, on_jump)
        GEN = gen(Outer(1), Inner(1))
        m.set_local_events(m.OPTIMIZER_ID, gen.__code__, m.events.JUMP)
        print(list(GEN), checks)
    """)
    assert (done.returncode, done.stderr) == (0, "")
    # One walk happened while the trace ran, and it saw nothing freed.
    assert done.stdout == "[2, 0, 2, 1, 0] [[]]\n"


def test_stencils_that_call_out_publish_the_stack_depth_first() -> None:
    # `escapes` is derived from the C body; the compiled code must agree:
    # a stencil that calls through the GOT belongs to an escaping uop.
    for name, stencil in table().stencils.items():
        uop = UOPS[name.partition("__")[0]]
        if any(h.kind is HoleKind.GOT_REL32 and h.symbol not in PURE_C_FUNCTIONS for h in stencil.holes):
            assert uop.escapes, name


@pytest.mark.parametrize("argument, error, message", [
    (0, ValueError, "frame address 0"),
    (-1, OverflowError, "negative"),
    (2**64, OverflowError, "too large"),
    (1.5, TypeError, "takes a frame"),
])
def test_entry_refuses_bad_frames(compile_trace, argument: object, error: type, message: str) -> None:
    trace = compile_trace("_EXIT_TRACE")
    with pytest.raises(error, match=message):
        trace(argument)


def test_entry_refuses_a_frame_without_a_saved_stack_pointer(compile_trace) -> None:
    trace = compile_trace("_EXIT_TRACE")
    with RawFrame(1) as frame:
        frame.stacktop = -1
        with pytest.raises(ValueError, match="no saved stack pointer"):
            trace(frame.address)
        frame.stacktop = 1

    def gen():  # type: ignore[no-untyped-def]
        yield 1

    suspended = gen()
    next(suspended)
    frame_object = suspended.gi_frame
    layout = runtime().layout
    raw = ctypes.c_void_p.from_address(id(frame_object) + layout["frame_object.f_frame"]).value
    assert raw is not None
    stacktop = ctypes.c_int.from_address(raw + layout["frame.stacktop"])
    saved = stacktop.value
    try:
        stacktop.value = -1  # as CPython leaves it while a frame runs
        with pytest.raises(ValueError, match="stack pointer is not saved"):
            trace(frame_object)
    finally:
        stacktop.value = saved
    assert trace(frame_object) == 0  # a suspended generator's frame is fine


def test_a_trace_freed_while_it_runs_finishes_and_is_reclaimed() -> None:
    arena = runtime().arena

    class FreesTheTrace:
        def __add__(self, other: object) -> int:
            trace.free()
            emit(asm.parse("_EXIT_TRACE oparg=9")).free()  # reuse must not take its place
            return 7

    freer = FreesTheTrace()
    trace = emit(asm.parse("""
    _LOAD_CONST operand0=@freer
    _LOAD_FAST oparg=0
    _BINARY_OP oparg=@add error=error
    _STORE_FAST oparg=0
    _EXIT_TRACE oparg=3
error:
    _ERROR_TRACE
""", {"freer": id(freer), "add": NB["+"]}), constants=(freer,))
    before = arena.in_use - trace.size - 16
    assert run(trace, [1]) == (3, [7], [])
    with pytest.raises(RuntimeError, match="freed"):
        trace(0)
    emit(asm.parse("_EXIT_TRACE")).free()  # reaps what is no longer running
    assert arena.in_use <= before + 16


def test_threads_emitting_and_freeing_at_once() -> None:
    arena = runtime().arena
    # Earlier tests' traces, freed once a collection finds them, or reaped
    # at the next emit: not during this test (it measured them as freed).
    gc.collect()
    emit(asm.parse("_EXIT_TRACE")).free()
    baseline = arena.in_use
    errors: list[BaseException] = []
    interval = sys.getswitchinterval()

    def work(seed: int) -> None:
        try:
            for n in range(150):
                code = seed * 1000 + n
                trace = emit([Instruction("_EXIT_TRACE", oparg=code)])
                assert run(trace, [])[0] == code
                trace.free()
        except BaseException as e:
            errors.append(e)

    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    # A free that found another thread's reap under way (or the arena busy)
    # leaves its code to the next reap (Runtime.reap): the last one here.
    runtime().reap()
    assert errors == []
    assert arena.in_use == baseline


def test_dropped_traces_free_their_code() -> None:
    arena = runtime().arena
    gc.collect()  # earlier tests' garbage (JITs in cycles) may hold traces
    runtime().reap()  # and code freed but left to the next reap
    baseline = arena.in_use
    trace = emit(asm.parse("_EXIT_TRACE"))
    assert arena.in_use > baseline
    entry = trace.entry
    del trace
    gc.collect()
    assert arena.in_use == baseline
    with pytest.raises(RuntimeError, match="freed"):
        entry(0)  # type: ignore[operator]


@pytest.mark.parametrize("instruction, message", [
    (lambda: Instruction("_SPILL_INT", ("i0",), oparg=SPILL_SLOTS), f"out of range 0..{SPILL_SLOTS - 1}"),
    (lambda: Instruction("_RELOAD_FLOAT", (), ("f0",), oparg=-1), "out of range"),
    (lambda: Instruction("_EXIT_TRACE", oparg=2**63), "out of range 0..2147483647"),
    (lambda: Instruction("_JUMP", jump=True), "must be an instruction index"),
    (lambda: Instruction("_JUMP", jump=-1), "must be an instruction index"),
])
def test_instructions_out_of_bounds_are_refused(instruction, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EmitError, match=message):
        instruction()


def test_arena_accounting_survives_failures_and_double_frees() -> None:
    arena = memory.Arena(reserve=1 << 20)
    arena.writer = lambda address, data: None
    with pytest.raises(MemoryError):
        arena.alloc(2 << 20)
    assert arena.in_use == 0
    block = arena.alloc(32)
    arena.alloc(32)
    arena.free(block, 32)
    with pytest.raises(ValueError, match="not allocated"):
        arena.free(block, 32)
    with pytest.raises(ValueError, match="not allocated"):
        arena.free(arena.top, 16)
    assert arena.in_use == 32


def test_constants_live_as_long_as_the_trace() -> None:
    value = [1, 2, 3]
    trace = emit(asm.parse("_LOAD_CONST operand0=@v\n_STORE_FAST oparg=0\n_EXIT_TRACE",
                           {"v": id(value)}), constants=(value,))
    del value
    gc.collect()
    assert run(trace, [None])[1] == [[1, 2, 3]]
    trace.free()


def test_branch_on_a_non_bool_releases_it(compile_trace) -> None:
    trace = compile_trace("_LOAD_FAST oparg=0\n_POP_JUMP_IF_TRUE jump=t\n_EXIT_TRACE oparg=0\n"
                          "t:\n_EXIT_TRACE oparg=1")
    thing = object()
    before = sys.getrefcount(thing)
    assert run(trace, [True])[0] == 1
    run(trace, [thing])
    assert sys.getrefcount(thing) == before


def test_guards_exit_with_the_stack_untouched(compile_trace) -> None:
    trace = compile_trace("""
    _LOAD_FAST oparg=0
    _LOAD_FAST oparg=1
    _GUARD_NOS_TYPE operand0=@float exit=nos
    _GUARD_TOS_TYPE operand0=@int exit=tos
    _POP_TOP
    _POP_TOP
    _EXIT_TRACE oparg=0
nos:
    _EXIT_TRACE oparg=1
tos:
    _EXIT_TRACE oparg=2
""", float=id(float), int=id(int))
    big = 10**40
    before = sys.getrefcount(big)
    assert run(trace, [1.5, big]) == (0, [1.5, big], [])
    assert run(trace, [big, big]) == (1, [big, big], [big, big])
    assert run(trace, [1.5, "x"]) == (2, [1.5, "x"], [1.5, "x"])
    assert sys.getrefcount(big) == before


def test_unbox_exit_paths_leave_refcounts_alone(compile_trace) -> None:
    trace = compile_trace("""
    _LOAD_FAST oparg=0
    i0 = _UNBOX_INT exit=out
    _EXIT_TRACE oparg=0
out:
    _POP_TOP
    _EXIT_TRACE oparg=1
""")
    for value in (10**30, -(2**63) - 1, 2.5, "s"):
        before = sys.getrefcount(value)
        assert run(trace, [value])[0] == 1
        assert sys.getrefcount(value) == before


def test_remaining_register_uops_and_set_ip(compile_trace) -> None:
    trace = compile_trace("""
    f1 = _LOAD_FLOAT_CONST operand0=2.5
    f3 = _NEG_FLOAT f1
    f0 = _COPY_FLOAT f3
    i2 = _LOAD_INT_CONST operand0=-40
    i1 = _COPY_INT i2
    _NOP
    _SET_IP operand0=0x1234
    _BOX_FLOAT f0 error=error
    _STORE_FAST oparg=0
    _BOX_INT i1 error=error
    _STORE_FAST oparg=1
    _EXIT_TRACE
error:
    _ERROR_TRACE
""")
    with RawFrame(2) as frame:
        assert trace(frame.address) == 0
        assert (frame[0], frame[1]) == (-2.5, -40)
        instr_ptr = ctypes.c_void_p.from_address(frame.address + runtime().layout["frame.instr_ptr"])
        assert instr_ptr.value == 0x1234


def _debug_malloc(script: str) -> subprocess.CompletedProcess[str]:
    """`script` in a fresh interpreter whose allocator checks every block's
    guard bytes when it is freed (PYTHONMALLOC=debug)."""
    import os

    source = f"import sys\nsys.path.insert(0, {ROOT!r})\n" + textwrap.dedent(script)
    return subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONMALLOC": "debug"})


def test_an_exit_at_a_full_stack_writes_nothing_past_the_frame() -> None:
    # The overflow exit of `t * 3` leaves with the stack full (the iterator,
    # t and 3: co_stacksize). Writing the unboxed locals back pushed each
    # box first and popped it into its local: one slot past the frame's
    # stack, which for a generator is past the generator object (found by
    # fault injection, tests/test_faults.py: a Python frame's first word
    # overwritten while the recorder ran a nested trace).
    done = _debug_malloc("""
        import gc
        from copyjit.trace.jit import JIT
        def gen(n):
            t = 1
            for i in range(n):
                t = t * 3
            yield t
        assert gen.__code__.co_stacksize == 3
        jit = JIT(1)
        jit.enable(gen.__code__)
        for _ in range(3):
            g = gen(100)
            print(next(g) % 1000)
            del g
            gc.collect()
        jit.disable()
        assert jit.stats.exits > 0
    """)
    assert done.returncode == 0 and done.stdout == "1\n1\n1\n", done.stderr[-2000:]


def test_locals_reread_after_a_nested_trace_go_through_no_stack_slot() -> None:
    # The nested `while` loop's trace (called, not inlined: it has a
    # bridge) leaves at `j < i` with j and i pushed: the stack is full, and
    # re-reading the outer trace's locals pushed each one past it.
    done = _debug_malloc("""
        import gc
        from copyjit.trace.jit import JIT
        def gen(m):
            t = 0
            for i in range(m):
                j = 0
                while j < i:
                    if j & 1:
                        t += j
                    else:
                        t -= 1
                    j += 1
            yield t
        jit = JIT(1)
        jit.enable(gen.__code__)
        for _ in range(3):
            g = gen(300)
            print(next(g))
            del g
            gc.collect()
        jit.disable()
    """)
    assert done.returncode == 0 and done.stdout == "2205050\n" * 3, done.stderr[-2000:]
