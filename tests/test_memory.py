"""Executable memory: W^X, shared pages, reuse of freed code."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import threading

import pytest

from copyjit.backend import memory
from copyjit.backend.asm import parse
from copyjit.backend.emitter import emit
from copyjit.backend.runtime import runtime
from tests.conftest import run

SMALL = "_EXIT_TRACE oparg=5\n"


def _mappings() -> list[tuple[int, int, str]]:
    rows = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            rows.append((start, end, perms))
    return rows


def _perms_at(address: int) -> str:
    (perms,) = [p for start, end, p in _mappings() if start <= address < end]
    return perms


def test_no_mapping_is_writable_and_executable() -> None:
    traces = [emit(parse(SMALL)) for _ in range(50)]
    rt = runtime()
    try:
        offenders = [(hex(s), p) for s, _, p in _mappings() if "w" in p and "x" in p]
        assert offenders == []
        assert _perms_at(traces[0].address).startswith("r-x")
        assert _perms_at(rt.functions["copyjit_enter"]).startswith("r-x")
        assert _perms_at(rt.data_address).startswith("r--")  # GOT and data: read only
    finally:
        for trace in traces:
            trace.free()
    assert [(s, p) for s, _, p in _mappings() if "w" in p and "x" in p] == []


def test_traces_share_pages() -> None:
    # In a fresh process: here, earlier tests leave holes in the arena, and
    # first fit may put the second trace in a hole on another page.
    script = f"""
from copyjit.backend import memory
from copyjit.backend.asm import parse
from copyjit.backend.emitter import emit
a, b = emit(parse({SMALL!r})), emit(parse({SMALL!r}))
assert a.address // memory.PAGE_SIZE == b.address // memory.PAGE_SIZE, (a.address, b.address)
assert abs(a.address - b.address) < 64, (a.address, b.address)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_freed_code_is_poisoned_and_reused() -> None:
    trace = emit(parse(SMALL))
    address, size = trace.address, trace.size
    assert run(trace, [])[0] == 5
    trace.free()
    assert ctypes.string_at(address, size) == memory.POISON * size
    with pytest.raises(RuntimeError, match="freed"):
        trace(0)
    again = emit(parse(SMALL))
    assert again.address == address
    again.free()


def test_emit_free_cycles_do_not_grow_the_arena() -> None:
    arena = runtime().arena
    warm = [emit(parse(SMALL)) for _ in range(3)]
    for trace in warm:
        trace.free()
    top, in_use = arena.top, arena.in_use
    for n in range(1000):
        traces = [emit(parse(SMALL * (1 + n % 7))) for _ in range(3)]
        for trace in traces:
            trace.free()
    assert (arena.top, arena.in_use) == (top, in_use)


def _freeing_inside(writes: int, free: object) -> None:
    """Make the arena's next `writes` writes call `free` first, as the
    garbage collector may (a trace's __del__, its code's weak reference
    callback) wherever Python code allocates."""
    arena = runtime().arena
    writer = arena.writer
    assert writer is not None

    def write(address: int, data: bytes) -> None:
        nonlocal writes
        writes -= 1
        if writes <= 0:
            arena.writer = writer
        free()  # type: ignore[operator]
        writer(address, data)

    arena.writer = write


def _within(seconds: float, body: object) -> None:
    """Run `body` in a thread; fail (not hang) if it does not end in time."""
    failed: list[BaseException] = []

    def target() -> None:
        try:
            body()  # type: ignore[operator]
        except BaseException as error:  # (reported below)
            failed.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "deadlocked"
    assert not failed, failed


def test_a_trace_freed_while_the_arena_writes_is_freed_later_without_a_deadlock() -> None:
    # (It deadlocked: Trace.__del__, run by a collection inside another
    # trace's free, waited for the lock that free held.)
    arena = runtime().arena
    in_use = arena.in_use
    first, second, third = (emit(parse(SMALL)) for _ in range(3))
    _freeing_inside(1, second.free)
    _within(10, first.free)  # second is freed inside first's poisoning write: it waits
    assert second.freed and arena.in_use > in_use
    _freeing_inside(1, lambda: None)
    _within(10, third.free)  # the next reap frees both
    assert arena.in_use == in_use


class _RecordingArena(memory.Arena):
    """An arena whose writes are recorded, not performed (no executable pages)."""

    def __init__(self) -> None:
        super().__init__(reserve=1 << 20)
        self.writer = lambda address, data: None


def test_allocator_first_fit_and_coalescing() -> None:
    arena = _RecordingArena()
    a, b, c = arena.alloc(10), arena.alloc(40), arena.alloc(16)
    assert (b - a, c - b) == (16, 48)  # 16-byte aligned blocks, laid in order
    end = arena.top
    arena.free(b, 40)
    assert arena.alloc(20) == b  # first fit, split
    arena.free(b, 20)
    arena.free(a, 10)
    assert arena.free_blocks == [(a, 64)]  # a and b coalesced
    arena.free(c, 16)
    assert (arena.free_blocks, arena.top) == ([], a)  # everything back to the bump region
    assert end == c + 16


def test_arena_full_is_a_memory_error() -> None:
    arena = _RecordingArena()
    with pytest.raises(MemoryError, match="arena is full"):
        arena.alloc(2 << 20)


def test_writes_outside_the_arena_are_refused() -> None:
    arena = _RecordingArena()
    with pytest.raises(ValueError, match="outside the arena"):
        arena.write(arena.base - 16, b"x")
