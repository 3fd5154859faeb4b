"""COPYJIT_PERF_MAP=1 (or `run --perf-map`): a Linux perf map, so that `perf
report` names the time spent in traces by their loop rather than as raw
addresses.

perf reads /tmp/perf-<pid>.map for code it finds no file for: one line per
code region, `START SIZE name`, START and SIZE in hex. Each trace and bridge
is appended as it is emitted (the file is line-buffered: a process killed
mid-run leaves a map of all its traces so far); a region freed and reused
later is named again by a later line, which perf prefers.

    perf record -g python -m copyjit run --perf-map program.py
    perf report
"""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from types import CodeType

    from copyjit.backend.emitter import Trace


def path(pid: int | None = None) -> str:
    """Where perf looks for the map of process `pid` (this one's by default)."""
    return f"/tmp/perf-{os.getpid() if pid is None else pid}.map"


def name(code: CodeType, dst: int, bridge: int | None = None) -> str:
    """A trace's name in the map: its function, file and line (and the exit
    a bridge continues), as `perf report` shows it."""
    from copyjit.trace.jit import _line_of

    where = f"{code.co_qualname} {code.co_filename}:{_line_of(code, dst)}"
    return f"copyjit:trace {where}" if bridge is None else f"copyjit:bridge {where} exit {bridge}"


def line(trace: Trace, label: str) -> str:
    return f"{trace.address:x} {trace.size:x} {label}\n"


class PerfMap:
    """The map file of this process, opened at the first trace."""

    def __init__(self) -> None:
        self._file: IO[str] | None = None
        self._pid = 0

    def add(self, trace: Trace, code: CodeType, dst: int, bridge: int | None) -> None:
        if self._file is None or self._pid != os.getpid():  # a forked child writes its own
            self._pid = os.getpid()
            self._file = open(path(self._pid), "a", buffering=1)  # noqa: SIM115 - open as long as the process
        self._file.write(line(trace, name(code, dst, bridge)))
