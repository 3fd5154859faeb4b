"""The differential runner (`python -m copyjit diff`): agreeing programs are
`same`; a difference in exit code, stdout, stderr or a written file is
reported as the first differing line, with exit status 1. The programs that
differ here tell the runs apart by asking whether copyjit is loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from copyjit.diff import Outcome, first_difference

LOOP = """
def f(n):
    t = 0.0
    for i in range(n):
        t += i * 0.5
    return t
"""
JIT = '"copyjit" in sys.modules'


def diff(tmp_path: Path, body: str, *options: str, module: bool = False) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "prog.py"
    script.write_text("import sys\n" + LOOP + body)
    target = ["-m", "prog"] if module else [str(script)]
    return subprocess.run([sys.executable, "-m", "copyjit", "diff", *options, *target],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_a_program_that_agrees_is_the_same(tmp_path: Path) -> None:
    done = diff(tmp_path, "print(f(5000))\nopen('out.txt', 'w').write(str(f(10)))\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("same: exit code 0") and "1 files written" in done.stdout


def test_an_exception_from_a_hot_loop_is_the_same(tmp_path: Path) -> None:
    done = diff(tmp_path, "def g(n):\n    t = 0\n    for i in range(n):\n        t += 10 // (50 - i)\n"
                          "    return t\nprint(g(100))\n")
    assert done.returncode == 0, done.stdout
    assert "same: exit code 1" in done.stdout


@pytest.mark.parametrize("body, expected", [
    (f"print(f(100))\nprint({JIT})\n", "stdout: first difference at line 2\n    2475.0\n"
                                       "  - CPython: False\n  + copyjit: True"),
    (f"print('x', file=sys.stderr) if {JIT} else None\n", "stderr: first difference at line 1\n"
                                                          "  - CPython: (no more lines)\n  + copyjit: x"),
    (f"sys.exit(3 if {JIT} else 0)\n", "exit code: CPython 0, copyjit 3"),
    (f"__import__('os').makedirs('a')\nopen('a/b.txt' if {JIT} else 'c.txt', 'w').close()\n",
     "file a/b.txt: written under copyjit, not by CPython"),
    (f"open('out.txt', 'w').write('one\\ntwo\\n' if {JIT} else 'one\\n2\\n')\n",
     "file out.txt: first difference at line 2\n    one\n  - CPython: 2\n  + copyjit: two"),
])
def test_the_first_difference_is_reported(tmp_path: Path, body: str, expected: str) -> None:
    done = diff(tmp_path, body)
    assert done.returncode == 1
    assert done.stdout.strip() == expected


def test_a_module_runs_from_the_directory_diff_started_in(tmp_path: Path) -> None:
    done = diff(tmp_path, "print(f(3000))\n", "--threshold", "5", module=True)
    assert done.returncode == 0 and done.stdout.startswith("same: exit code 0"), done.stdout + done.stderr


def test_bad_options_are_clear_errors(tmp_path: Path) -> None:
    done = diff(tmp_path, "", "--no-opt", "bogus")
    assert done.returncode != 0 and "no optimizer pass 'bogus'" in done.stderr
    assert "Traceback" not in done.stderr
    nothing = subprocess.run([sys.executable, "-m", "copyjit", "diff"], capture_output=True, text=True)
    assert nothing.returncode != 0 and "give a script" in nothing.stderr


def test_bytes_that_differ_only_at_the_end_are_reported() -> None:
    plain, jitted = Outcome(0, b"a\n", b"", {}), Outcome(0, b"a", b"", {})
    assert first_difference(plain, jitted) == (
        "stdout: first difference at line 2\n    a\n  - CPython: (no more lines)\n"
        "  + copyjit: (no more lines)\n"
        "  (the same lines; the bytes differ, in line endings or a last newline)")
    assert first_difference(plain, Outcome(0, b"a\n", b"", {})) is None
