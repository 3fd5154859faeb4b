"""CPython's own regression tests under the JIT.

    python tests/cpython_suite.py [--quick] [MODULES...]

Runs each test module of the installed CPython's test suite (`python -m
test MODULE`) twice: plainly, and under `python -m copyjit run --threshold
1` (every loop traced at its first backedge), and compares regrtest's
result. Every module that passes without the JIT must pass with it. The
modules, and the reason for any left out, are in tests/cpython/modules.txt;
`--quick` runs the ones marked `quick` there (CI runs those, through
tests/test_cpython_suite.py). Exits 1 if any module passes only without
the JIT.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

LIST = Path(__file__).parent / "cpython" / "modules.txt"
_RESULT = re.compile(r"^Result: (\w+)", re.MULTILINE)


def modules(quick: bool = False) -> list[str]:
    """The listed modules (`quick`: only those marked so), in order."""
    found = []
    for line in LIST.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words and (not quick or "quick" in words[1:]):
            found.append(words[0])
    return found


def result(module: str, jit: bool, timeout: float = 900.0) -> str:
    """regrtest's result for one module: SUCCESS, FAILURE, ... or TIMEOUT."""
    jitted = ["-m", "copyjit", "run", "--threshold", "1"] if jit else []
    command = [sys.executable, *jitted, "-m", "test", module]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "TIMEOUT"
    found = _RESULT.findall(done.stdout)
    return found[-1] if found else f"NO RESULT (exit code {done.returncode})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the modules marked quick")
    parser.add_argument("names", nargs="*", help="modules (default: the list)")
    args = parser.parse_args()
    names = args.names or modules(args.quick)
    worse = []
    print(f"{'module':<32} {'CPython':<12} {'copyjit':<12} seconds (copyjit)", flush=True)
    for name in names:
        plain = result(name, jit=False)
        start = time.perf_counter()
        jitted = result(name, jit=True)
        print(f"{name:<32} {plain:<12} {jitted:<12} {time.perf_counter() - start:.1f}", flush=True)
        if plain == "SUCCESS" and jitted != "SUCCESS":
            worse.append(name)
    print(f"\n{len(names)} modules; passing only without the JIT: {', '.join(worse) or 'none'}")
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
