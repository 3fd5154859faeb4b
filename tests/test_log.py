"""COPYJIT_LOG: every event, as the JIT makes it, and nothing when it is off."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from copyjit import log
from copyjit.trace.jit import JIT

ROOT = Path(__file__).parent.parent
EVENTS = ROOT / "tests" / "programs" / "events.py"


def logged(setting: str, tmp_path: Path,
           to_file: bool = True) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    env = {**os.environ, "COPYJIT_LOG": setting}
    out = tmp_path / "log.txt"
    if to_file:
        env["COPYJIT_LOG_FILE"] = str(out)
    done = subprocess.run([sys.executable, "-m", "copyjit", "run", "--threshold", "1", str(EVENTS)],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "100 3233 6000 5150\n"
    lines = out.read_text().splitlines() if to_file else done.stderr.splitlines()
    assert all(line.startswith("copyjit: ") for line in lines)
    return lines, done


def find(lines: list[str], pattern: str) -> list[str]:
    return [line for line in lines if re.fullmatch(pattern, line)]


def test_the_compilers_events(tmp_path: Path) -> None:
    lines, _ = logged("1", tmp_path)
    where = re.escape(str(EVENTS))
    # A loop that cannot be recorded: why, and where; then it is given up.
    assert find(lines, rf"copyjit: aborted {where}:6 \(with_a_dict\): item assignment to a dict "
                       r"\(line 7, STORE_SUBSCR at bytecode \d+\)")
    assert find(lines, rf"copyjit: blacklisted {where}:6 \(with_a_dict\): item assignment to a dict; .*")
    # A trace: recorded, optimized pass by pass, emitted; then its bridge.
    assert find(lines, rf"copyjit: recorded {where}:13 \(branchy\): \d+ ops, bytecode \d+\.\.\d+")
    assert find(lines, rf"copyjit: optimized {where}:13 \(branchy\): (\d+) -> \d+ ops \(forward -\d+, "
                       r"fold [+-]\d+, cse [+-]\d+, guards [+-]\d+, allocs [+-]\d+, licm [+-]\d+, "
                       r"borrow [+-]\d+, virtual [+-]\d+, guards [+-]\d+, dce [+-]\d+, checks [+-]\d+\)")
    assert find(lines, rf"copyjit: emitted {where}:13 \(branchy\): \d+ bytes at 0x[0-9a-f]+, \d+ uops")
    assert find(lines, rf"copyjit: emitted {where}:13 \(branchy\) bridge from exit \d+: \d+ bytes at .*")
    # A short loop's trace dropped, and the loop given up.
    assert find(lines, rf"copyjit: invalidated {where}:23 \(three\): the loop runs too few iterations per "
                       r"entry \(\d+ in 256\)")
    assert find(lines, rf"copyjit: blacklisted {where}:23 \(three\): the loop runs too few .*")
    # A trace dropped when its exit got hot and could not have a bridge.
    assert find(lines, rf"copyjit: aborted {where}:38 \(switches\) bridge from exit \d+: item assignment .*")
    assert find(lines, rf"copyjit: invalidated {where}:38 \(switches\): exit \d+ taken 16 times without a "
                       r"bridge: recorded again")
    # "1" is the compiler's events only.
    assert not find(lines, r"copyjit: (entered|exited) .*")
    # In the order they happened.
    order = [line.split()[1] for line in lines if "(branchy)" in line]
    assert order == ["recorded", "optimized", "emitted", "recorded", "optimized", "emitted"]


def test_entries_and_exits(tmp_path: Path) -> None:
    lines, _ = logged("entered,exited", tmp_path, to_file=False)
    where = re.escape(str(EVENTS))
    entries = find(lines, rf"copyjit: entered {where}:13 \(branchy\): entry \d+")
    assert entries[0].endswith("entry 1")
    # Before its bridge, the side exit `if i % 3` left 16 times (HOT_EXIT),
    # each logged with its line; then the loop left by the end of its range.
    side = find(lines, rf"copyjit: exited {where}:13 \(branchy\): exit \d+ \(line 14, side exit, resumes .*")
    assert len(side) == 16
    assert find(lines, rf"copyjit: exited {where}:13 \(branchy\): exit \d+ \(line 13, leaving the loop, .*")
    assert len(entries) == len(find(lines, rf"copyjit: exited {where}:13 \(branchy\): .*"))
    assert not find(lines, r"copyjit: (recorded|emitted) .*")


def test_the_settings() -> None:
    assert log.events("") == log.events("0") == frozenset()
    assert log.events("1") == log.events("compile") == frozenset(log.COMPILER_EVENTS)
    assert log.events("all") == frozenset(log.EVENTS)
    assert log.events("emitted, exited") == {"emitted", "exited"}
    with pytest.raises(log.UnknownEvent, match="no event 'emit'; the events are recorded, optimized"):
        log.events("emit")


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COPYJIT_LOG", raising=False)
    assert JIT(1).log is None
    assert "copyjit.log" not in sys.modules or os.environ.get("COPYJIT_LOG") is None
    monkeypatch.setenv("COPYJIT_LOG", "bogus")
    assert JIT(1).log is None  # reported on stderr, and ignored
    monkeypatch.setenv("COPYJIT_LOG", "emitted")
    jit = JIT(1)
    assert jit.log is not None and jit.log.chosen == {"emitted"} and not jit.log.entries
