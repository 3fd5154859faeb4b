"""Saved regressions: every script in tests/regressions/ gives the same
exit code, output and tracebacks under CPython and under the JIT
(`python -m copyjit diff`), with PYTHONMALLOC=debug so that a write past
an object is caught. A script's header may set its threshold
(`# threshold: N`) and environment (`# env: NAME=VALUE`, e.g. a guard
kind to fail). The fuzzers' failures are shrunk and saved here by
tests/shrink.py (a campaign does it by itself)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import shrink

SCRIPTS = sorted(shrink.REGRESSIONS.glob("*.py"))


def _environment(path: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONMALLOC": "debug"}
    for name, value in re.findall(r"^# env: (\w+)=(\S*)$", path.read_text(), re.M):
        env[name] = value
    return env


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda path: path.stem)
def test_a_saved_regression_runs_as_under_cpython(path: Path) -> None:
    command = [sys.executable, "-m", "copyjit", "diff", "--threshold", str(shrink.threshold_of(path)),
               "--timeout", "120", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=shrink.ROOT, env=_environment(path),
                          timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("same"), done.stdout + done.stderr


def test_there_are_saved_regressions() -> None:
    assert SCRIPTS


def test_a_fuzzed_program_as_a_script_runs() -> None:
    for script in (shrink.objects_script(3), shrink.numeric_script(3)):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout.count("\n") == 3, done.stderr


def test_the_shrinker_keeps_what_the_failure_needs() -> None:
    def fails(candidate: str) -> bool:  # a stand-in bug: any store into ys
        body = candidate.split(shrink.DRIVER)[0]
        return any(line.strip().startswith("ys[") for line in body.splitlines())

    text = next(shrink.objects_script(seed) for seed in range(100) if fails(shrink.objects_script(seed)))

    small = shrink.shrink(text, fails)
    kept = [line for line in small.split(shrink.DRIVER)[0].splitlines() if line.strip()]
    assert fails(small) and len(kept) <= 3, kept  # def f, the store (and at most one line around it)


def test_a_campaign_failure_is_shrunk_and_saved(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(shrink, "REGRESSIONS", tmp_path)
    calls = []

    def fake_differs(text: str, threshold: int, timeout: float = 60.0) -> bool:
        """A stand-in bug: any script that uses math and runs."""
        calls.append(text)
        if "math." not in text.split(shrink.DRIVER)[0]:
            return False
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(text, "<candidate>", "exec"), {"__name__": "candidate"})
        except Exception:
            return False
        return True

    monkeypatch.setattr(shrink, "differs", fake_differs)
    seed = next(s for s in range(100) if "math." in shrink.objects_script(s).split(shrink.DRIVER)[0])
    saved = shrink.shrink_and_save("objects", seed, 5)
    assert saved is not None and saved.name == f"001_objects_{seed}.py"
    assert shrink.threshold_of(saved) == 5
    assert len(saved.read_text()) < len(shrink.objects_script(seed))
    done = subprocess.run([sys.executable, str(saved)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
