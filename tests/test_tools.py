"""The measuring tools in tools/ still measure: a tool that captures what
the JIT does through stand-ins can break silently when the JIT's functions
change (tools/compile.py reported no trace at all for a session after
`lower` took a fourth argument)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TOOLS = Path(__file__).parent.parent / "tools"


def test_compile_times_every_phase_of_a_kernels_trace() -> None:
    done = subprocess.run([sys.executable, str(TOOLS / "compile.py"), "--replays", "1", "float_accumulation"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("float_accumulation")]
    assert rows, done.stdout
    for row in rows:  # kernel, trace, ops, uops, then optimize, lower, emit and their sum in ms
        assert int(row[2]) > 0 and int(row[3]) > 0
        assert all(re.fullmatch(r"\d+\.\d+", ms) for ms in row[4:8]), row
