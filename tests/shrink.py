"""Shrinking a fuzzer's failing program, and saving it as a regression test.

A failing program becomes a standalone script (`objects_script`,
`numeric_script`: the generated module, then a driver that calls `f` with
the seed's arguments and prints what each call did). `shrink` removes
statements from it, and unwraps `if`/`else`/`try` blocks, for as long as
the script still differs between CPython and the JIT (`differs`: the
differential runner, `python -m copyjit diff`, in fresh processes, so a
crash is a difference like any other). `save` writes the result to
tests/regressions/NNN_name.py, which tests/test_regressions.py runs
differentially from then on.

By hand:

    .venv/bin/python tests/shrink.py objects SEED [THRESHOLD]   # or: numeric SEED
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGRESSIONS = Path(__file__).resolve().parent / "regressions"
DRIVER = "# --- driver: calls f with the failing seed's arguments ---"

_OBJECTS_DRIVER = '''
import gc as _gc, sys as _sys, traceback as _traceback
nan, inf = float("nan"), float("inf")
def _outcome(*args):
    try:
        return ("returned", repr(f(*args)))
    except Exception as e:
        frames = [(frame.name, frame.lineno) for frame in _traceback.extract_tb(e.__traceback__)]
        return ("raised", type(e).__name__, str(e), frames[1:])
for _xs, _ys, _ts, _ps, _n, _a, _b in CALLS:
    _s = S()
    _gc.collect()
    _before = _sys.getrefcount(_s)
    _objects = [K(v) for v in _ps]
    _result = _outcome(_xs, _ys, _ts, _objects, _s, _n, _a, _b)
    _gc.collect()
    print(_result, repr(_xs), repr(_ys), _sys.getrefcount(_s) - _before)
'''

_NUMERIC_DRIVER = '''
import traceback as _traceback
for _args in CALLS:
    try:
        print("returned", repr(f(*_args)))
    except Exception as e:
        _last = _traceback.extract_tb(e.__traceback__)[-1]
        print("raised", type(e).__name__, str(e), _last.lineno, _last.line)
'''


def _literal(value: object) -> str:
    """repr, readable back with `nan` and `inf` defined (the driver defines them)."""
    return repr(value)


def objects_script(seed: int) -> str:
    """tests/test_fuzz_objects.py's program for `seed`, as a script."""
    from tests import test_fuzz_objects as fuzz

    calls = [(list(xs), list(ys), tuple(ts), list(ps), n, a, b)
             for xs, ys, ts, ps, n, a, b in fuzz.arguments(seed)]
    return (fuzz.source(seed) + f"\n{DRIVER}\nnan, inf = float('nan'), float('inf')\n"
            f"CALLS = {_literal(calls)}\n" + _OBJECTS_DRIVER)


def numeric_script(seed: int) -> str:
    """tests/test_fuzz_jit.py's program for `seed`, as a script."""
    import random

    from tests import test_fuzz_jit as fuzz

    r = random.Random(-seed)
    calls = [(r.randint(0, 300), r.choice([1, 7, -3, 2**20, 0.5]), r.choice([2, -9, 3.25]),
              r.choice([5, 0, -1])) for _ in range(3)]
    return fuzz.source(seed) + f"\n{DRIVER}\nCALLS = {_literal(calls)}\n" + _NUMERIC_DRIVER


def differs(text: str, threshold: int, timeout: float = 60.0) -> bool:
    """Whether the script's runs under CPython and under the JIT differ
    (a run that times out under CPython too is not a difference)."""
    from copyjit.diff import first_difference, run_both

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "program.py"
        path.write_text(text)
        plain, jitted = run_both(str(path), [], threshold=threshold, timeout=timeout)
    if plain.returncode == -1:
        return False
    return first_difference(plain, jitted) is not None


_UNWRAPPED = frozenset({"if", "try", "for", "while"})


def _compiles(text: str) -> bool:
    try:
        compile(text, "<candidate>", "exec")
    except SyntaxError:
        return False
    return True


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


_CONTINUATIONS = ("elif ", "elif(", "else:", "except", "finally:")


def _block_end(lines: list[str], start: int, stop: int) -> int:
    """The end of the block that starts at `start`: the line and those after
    it indented deeper (blank lines included)."""
    depth, end = _indent(lines[start]), start + 1
    while end < stop and (not lines[end].strip() or _indent(lines[end]) > depth):
        end += 1
    return end


def _statement(lines: list[str], start: int, stop: int) -> list[tuple[int, int]]:
    """The clauses (start, end) of the statement at `start`: one block, or
    an if/elif/else or try/except/finally chain."""
    clauses = [(start, _block_end(lines, start, stop))]
    depth = _indent(lines[start])
    while clauses[-1][1] < stop:
        following = clauses[-1][1]
        line = lines[following]
        if _indent(line) != depth or not line.strip().startswith(_CONTINUATIONS):
            break
        clauses.append((following, _block_end(lines, following, stop)))
    return clauses


def _dedented(lines: list[str], start: int, end: int) -> list[str]:
    """The body of the clause at lines[start:end], one level out."""
    inner = " " * (_indent(lines[start]) + 4)
    return [line[4:] if line.startswith(inner) else line for line in lines[start + 1 : end]]


def _candidates(lines: list[str], stop: int) -> list[list[str]]:
    """Smaller programs: each statement removed (the biggest first), and
    each compound statement replaced by the body of one of its clauses."""
    statements = []
    for start in range(stop):
        text = lines[start].strip()
        if text and not text.startswith("#") and not text.startswith(_CONTINUATIONS):
            statements.append(_statement(lines, start, stop))
    statements.sort(key=lambda clauses: clauses[0][0] - clauses[-1][1])
    result = [lines[: clauses[0][0]] + lines[clauses[-1][1] :] for clauses in statements]
    for clauses in statements:
        header = lines[clauses[0][0]].strip()
        if header.split()[0].rstrip(":") not in _UNWRAPPED:
            continue
        for start, end in clauses:
            if end > start + 1:
                result.append(lines[: clauses[0][0]] + _dedented(lines, start, end) + lines[clauses[-1][1] :])
    return result


def shrink(text: str, still_fails: Callable[[str], bool], log: Callable[[str], None] | None = None) -> str:
    """A smaller script for which `still_fails` holds (greedy: keep any
    removal that keeps the failure, until none does). Only the part above
    the driver is shrunk."""
    lines = text.split("\n")
    changed = True
    while changed:
        changed = False
        stop = lines.index(DRIVER) if DRIVER in lines else len(lines)
        for candidate in _candidates(lines, stop):
            joined = "\n".join(candidate)
            if _compiles(joined) and still_fails(joined):
                lines, changed = candidate, True
                if log is not None:
                    log(f"shrunk to {len(lines)} lines")
                break
    return "\n".join(lines)


def save(text: str, threshold: int, name: str, note: str = "") -> Path:
    """Write tests/regressions/NNN_name.py (the next free number)."""
    REGRESSIONS.mkdir(exist_ok=True)
    numbers = [int(m[1]) for p in REGRESSIONS.glob("*.py") if (m := re.match(r"(\d+)_", p.name))]
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:40] or "program"
    path = REGRESSIONS / f"{max(numbers, default=0) + 1:03d}_{slug}.py"
    header = "# copyjit regression (tests/test_regressions.py runs it under CPython and the JIT)\n"
    header += f"# threshold: {threshold}\n"
    header += "".join(f"# {line}\n" for line in note.splitlines())
    path.write_text(header + text.rstrip("\n") + "\n")
    return path


def threshold_of(path: Path) -> int:
    match = re.search(r"^# threshold: (\d+)$", path.read_text(), re.M)
    return int(match[1]) if match else 1


def shrink_and_save(kind: str, seed: int, threshold: int,
                    log: Callable[[str], None] | None = None) -> Path | None:
    """The campaign's hook: if seed's program still differs as a script,
    shrink it and save it; None if it does not reproduce that way."""
    text = objects_script(seed) if kind == "objects" else numeric_script(seed)
    if not differs(text, threshold):
        return None
    small = shrink(text, lambda candidate: differs(candidate, threshold), log)
    return save(small, threshold, f"{kind}_{seed}", f"found by the {kind} fuzzer, seed {seed}; shrunk")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("COPYJIT_VERIFY", "1")
    kind, seed = sys.argv[1], int(sys.argv[2])
    if len(sys.argv) > 3:
        threshold = int(sys.argv[3])
    elif kind == "objects":
        from tests.test_fuzz_objects import threshold_of as objects_threshold

        threshold = objects_threshold(seed)
    else:
        threshold = 1
    saved = shrink_and_save(kind, seed, threshold, print)
    print(saved if saved is not None else "no difference as a script")
