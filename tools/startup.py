"""The fixed costs of copyjit: an empty script and `import copyjit`, as whole processes.

    python tools/startup.py [--repeat N]

Runs each command N times (default 20), interleaved, and prints the median
wall-clock time. copyjit's bytecode is compiled first (tools/bytecode.py),
as an installed copyjit has it. Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bytecode import compile_copyjit


def commands(empty: str) -> dict[str, list[str]]:
    python = sys.executable
    return {
        "python EMPTY": [python, empty],
        "python -m copyjit run EMPTY": [python, "-m", "copyjit", "run", empty],
        "python -c 'import copyjit; copyjit.enable()'": [python, "-c", "import copyjit; copyjit.enable()"],
    }


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    compile_copyjit()
    with tempfile.TemporaryDirectory() as directory:
        empty = os.path.join(directory, "empty.py")
        open(empty, "w").close()
        runs = commands(empty)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, command in runs.items():
                times[name].append(timed(command))
    print(f"Python {sys.version.split()[0]} ({sys.executable}), median of {args.repeat} interleaved runs\n")
    for name, values in times.items():
        print(f"{statistics.median(values) * 1e3:8.1f} ms  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
