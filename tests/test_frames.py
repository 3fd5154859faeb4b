"""copyjit.trace.frames: the recorder's reads and writes of a frame
(objects.c's copyjit_frame_* builtins), on a frame-shaped buffer and on a
live frame."""

from __future__ import annotations

import sys

from copyjit.backend.frames import RawFrame
from copyjit.trace import frames
from copyjit.trace.frames import NULL


def two_locals(a: object, b: object) -> None:  # (its code: two locals)
    pass


CODE = two_locals.__code__


class Noting:
    """Notes, when released, what local 0 of `frame` then holds."""

    def __init__(self, frame: RawFrame, seen: list[object]) -> None:
        self.frame, self.seen = frame, seen

    def __del__(self) -> None:
        self.seen.append(frames.read_local(self.frame.address, 0))


def test_locals_read_and_written_as_store_fast_does() -> None:
    frame = RawFrame(CODE.co_nlocals)
    assert frames.read_local(frame.address, 0) is NULL
    seen: list[object] = []
    frames.write_local(frame.address, 0, Noting(frame, seen))
    value = object()
    before = sys.getrefcount(value)
    frames.write_local(frame.address, 0, value)
    assert seen == [value]  # the old value released after the new one is bound
    assert frames.read_local(frame.address, 0) is value
    seen.clear()
    assert sys.getrefcount(value) == before + 1  # the frame's reference
    frame.clear()
    assert sys.getrefcount(value) == before


def test_the_stack_pushed_read_and_dropped() -> None:
    frame = RawFrame(CODE.co_nlocals)
    item = object()
    before = sys.getrefcount(item)
    assert frames.stack_depth(frame.address, CODE) == 0
    assert frames.read_stack(frame.address, CODE) == []
    frames.push(frame.address, [item, NULL, 7])
    assert frames.stack_depth(frame.address, CODE) == 3
    assert frames.read_stack(frame.address, CODE) == [item, NULL, 7]
    assert frames.read_local(frame.address, CODE.co_nlocals + 1) is NULL  # an empty slot
    assert sys.getrefcount(item) == before + 1
    frames.drop(frame.address, 2)
    assert frames.read_stack(frame.address, CODE) == [item]
    frames.drop(frame.address, 1)
    assert frames.stack_depth(frame.address, CODE) == 0
    assert sys.getrefcount(item) == before


def test_a_live_frame_read_and_written() -> None:
    def run() -> tuple[object, object]:
        x, y = 1.5, [2]
        raw = frames.raw(sys._getframe())
        assert frames.read_local(raw, 0) == 1.5 and frames.read_local(raw, 1) == [2]
        frames.write_local(raw, 0, "new")
        return x, y

    assert run() == ("new", [2])
