"""COPYJIT_PERF_MAP=1 / `run --perf-map`: /tmp/perf-<pid>.map in perf's format,
one line per trace and bridge, at the addresses the JIT emitted them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from copyjit import perfmap
from copyjit.trace.jit import JIT

ROOT = Path(__file__).parent.parent
EVENTS = ROOT / "tests" / "programs" / "events.py"
# Run the events program, then print this process's pid and every trace
# and bridge the JIT holds: (address, size, kind).
DRIVER = f"""
import os, runpy, sys
import copyjit
sys.argv = [{str(EVENTS)!r}]
runpy.run_path({str(EVENTS)!r}, run_name="__main__")
copyjit.disable()
print(os.getpid())
for location in set(copyjit._jit().locations.values()):
    if location.trace is not None:
        print(location.trace.address, location.trace.size, "trace")
    for bridge in location.bridges:
        print(bridge.address, bridge.size, "bridge")
"""
LINE = re.compile(r"([0-9a-f]+) ([0-9a-f]+) (copyjit:(?:trace|bridge) \S+ \S+:\d+(?: exit \d+)?)")


def mapped(tmp_path: Path, *how: str, env: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    done = subprocess.run([sys.executable, "-m", "copyjit", "run", "--threshold", "1", *how, str(script)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    output = done.stdout.splitlines()
    pid = int(output[1])
    path = Path(perfmap.path(pid))
    assert path == Path(f"/tmp/perf-{pid}.map")
    try:
        lines = path.read_text().splitlines()
    finally:
        path.unlink()
    return lines, output[2:]


@pytest.mark.parametrize("how", [("--perf-map",), ()], ids=["option", "environment"])
def test_the_map_names_every_trace_at_its_address(tmp_path: Path, how: tuple[str, ...]) -> None:
    lines, made = mapped(tmp_path, *how, env={} if how else {"COPYJIT_PERF_MAP": "1"})
    parsed = [LINE.fullmatch(line) for line in lines]
    assert all(parsed), lines
    regions = {(int(m.group(1), 16), int(m.group(2), 16)): m.group(3) for m in parsed if m}
    # Every trace and bridge alive at the end is named at its address, with its size.
    for address, size, kind in (entry.split() for entry in made):
        name = regions[int(address), int(size)]
        assert name.startswith(f"copyjit:{kind} ")
    assert any(name.startswith("copyjit:trace branchy ") and name.endswith("events.py:13")
               for name in regions.values())
    assert any(name.startswith("copyjit:bridge branchy ") and re.search(r"events\.py:13 exit \d+$", name)
               for name in regions.values())
    # Traces dropped on the way are in the map too (a region is named again if reused).
    assert len(lines) > len(made)


def test_no_map_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COPYJIT_PERF_MAP", raising=False)
    assert JIT(1).perf_map is None
    monkeypatch.setenv("COPYJIT_PERF_MAP", "0")
    assert JIT(1).perf_map is None
    monkeypatch.setenv("COPYJIT_PERF_MAP", "1")
    assert JIT(1).perf_map is not None


def test_the_line_format() -> None:
    code = test_the_line_format.__code__

    class Fake:
        address, size = 0x7F0012345000, 0x1A0

    assert perfmap.line(Fake(), perfmap.name(code, 0)) == \
        f"7f0012345000 1a0 copyjit:trace test_the_line_format {__file__}:{code.co_firstlineno}\n"  # type: ignore[arg-type]
