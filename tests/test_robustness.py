"""Robustness: a hot loop deep in the program's recursion, and memory
running out inside native code, leave the program's behaviour as it is
without the JIT. (Ctrl-C inside native code: tests/test_jit.py and
tests/test_nested.py, with tests/conftest.py's `interrupted`.)"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

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

# A loop boxing a float and appending it at each iteration until memory
# runs out (RLIMIT_AS): MemoryError raised where CPython raises it, caught,
# and the program goes on, with more loops under the JIT.
_OUT_OF_MEMORY = '''
import gc
import resource


def fill(n):
    out = []
    x = 0.5
    for i in range(n):
        x = x * 1.0000001 + 0.25
        out.append(x)
    return out


def run():
    try:
        fill(10**9)
    except MemoryError as e:
        print("MemoryError", repr(e.args))
    gc.collect()
    t = 0.0
    for i in range(200000):
        t += i * 0.5
    print("recovered", t, len([0] * 1000))


limit = 400 * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
run()
run()
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


def test_memory_running_out_in_a_traced_loop_raises_memory_error_and_goes_on(tmp_path: Path) -> None:
    plain, jitted, stats = _both(_OUT_OF_MEMORY, tmp_path)
    assert plain.returncode == 0 and plain.stdout.count("MemoryError") == 2, plain.stderr
    assert (jitted.returncode, jitted.stdout, jitted.stderr) == (0, plain.stdout, plain.stderr)
    assert isinstance(stats["traces"], int) and stats["traces"] >= 2
