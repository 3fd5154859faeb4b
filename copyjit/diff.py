"""The differential runner: one program under plain CPython and under the JIT.

    python -m copyjit diff [--threshold N] [--no-opt PASS] [--timeout S] SCRIPT [ARGS...]
    python -m copyjit diff [...] -m MODULE [ARGS...]

Runs `python SCRIPT ARGS` and `python -m copyjit run --threshold N SCRIPT
ARGS` (N is 1 unless given: every loop is traced at its first backedge),
each in a fresh, empty working directory of its own, with the same
environment (PYTHONHASHSEED fixed, so that set and dict orders agree), and
compares what a user would see: the exit code, stdout, stderr (tracebacks
included) and the files each run left in its working directory. Prints
`same` or the first difference, readably; exits 0 when the runs agree, 1
when they differ.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

CONTEXT = 2  # lines shown before a differing line


class Outcome:
    """What one run did: its exit code, its output, and the files it left."""

    def __init__(self, returncode: int, stdout: bytes, stderr: bytes, files: dict[str, bytes]) -> None:
        self.returncode, self.stdout, self.stderr, self.files = returncode, stdout, stderr, files


def run_both(target: str, args: list[str], module: bool = False, threshold: int = 1,
             no_opt: tuple[str, ...] = (), timeout: float = 600.0) -> tuple[Outcome, Outcome]:
    """`target` run by plain CPython, then under copyjit (each in a new empty directory)."""
    where = os.getcwd()
    if not module:
        target = str(Path(target).resolve())  # the runs start elsewhere
    env = dict(os.environ)
    env.setdefault("PYTHONHASHSEED", "0")
    env.pop("COPYJIT", None)  # the JIT run must have its JIT on
    if module:  # `python -m` finds modules in the directory it starts in: this one
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (where, env.get("PYTHONPATH"))))
    program = ["-m", target] if module else [target]
    jit = ["-m", "copyjit", "run", "--threshold", str(threshold)]
    for name in no_opt:
        jit += ["--no-opt", name]
    return (_outcome([sys.executable, *program, *args], env, timeout),
            _outcome([sys.executable, *jit, *program, *args], env, timeout))


def _outcome(command: list[str], env: dict[str, str], timeout: float) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="copyjit-diff-") as scratch:
        try:
            done = subprocess.run(command, cwd=scratch, env=env, capture_output=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as expired:
            message = f"copyjit diff: timed out after {timeout:g} s\n".encode()
            return Outcome(-1, expired.stdout or b"", (expired.stderr or b"") + message, {})
        return Outcome(done.returncode, done.stdout, done.stderr, _files(Path(scratch)))


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root` (by its path relative to it) and its bytes."""
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink():
                found[str(path.relative_to(root))] = path.read_bytes()
    return found


def first_difference(plain: Outcome, jitted: Outcome) -> str | None:
    """The first thing a user would see differ, as text; None if nothing does."""
    if plain.returncode != jitted.returncode:
        return f"exit code: CPython {plain.returncode}, copyjit {jitted.returncode}"
    for stream in ("stdout", "stderr"):
        text = _text_difference(getattr(plain, stream), getattr(jitted, stream), stream)
        if text is not None:
            return text
    for name in sorted(set(plain.files) | set(jitted.files)):
        if name not in jitted.files:
            return f"file {name}: written by CPython, not under copyjit"
        if name not in plain.files:
            return f"file {name}: written under copyjit, not by CPython"
        text = _text_difference(plain.files[name], jitted.files[name], f"file {name}")
        if text is not None:
            return text
    return None


def _text_difference(a: bytes, b: bytes, what: str) -> str | None:
    if a == b:
        return None
    left = a.decode(errors="backslashreplace").splitlines()
    right = b.decode(errors="backslashreplace").splitlines()
    # zip stops at the shorter: a run whose output is a prefix of the other's differs at its end
    at = next((i for i, (x, y) in enumerate(zip(left, right, strict=False)) if x != y),
              min(len(left), len(right)))
    lines = [f"{what}: first difference at line {at + 1}"]
    lines += [f"    {line}" for line in left[max(0, at - CONTEXT):at]]
    lines.append(f"  - CPython: {left[at] if at < len(left) else '(no more lines)'}")
    lines.append(f"  + copyjit: {right[at] if at < len(right) else '(no more lines)'}")
    if at >= min(len(left), len(right)) and left[:at] == right[:at] and len(left) == len(right):
        lines.append("  (the same lines; the bytes differ, in line endings or a last newline)")
    return "\n".join(lines)


def main(target: str, args: list[str], module: bool, threshold: int | None, no_opt: tuple[str, ...],
         timeout: float) -> int:
    plain, jitted = run_both(target, args, module, 1 if threshold is None else threshold, no_opt, timeout)
    difference = first_difference(plain, jitted)
    if difference is None:
        print(f"same: exit code {plain.returncode}, {len(plain.stdout)} bytes of stdout, "
              f"{len(plain.stderr)} of stderr, {len(plain.files)} files written")
        return 0
    print(difference)
    return 1
