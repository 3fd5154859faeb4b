"""CPython with the JIT off vs copyjit on every program in examples/.

    python tools/examples.py [--repeat N] [NAMES...]

Each program runs as a whole process (start-up, warm-up and compilation
included), `python X.py` and `python -m copyjit run X.py` interleaved, with
the same interpreter. Prints, per program, the ratio CPython time / copyjit
time (above 1: copyjit is faster) as median, min and max over the repeats.
copyjit's bytecode is compiled first, as an installed copyjit has it (see
tools/bytecode.py): with PYTHONDONTWRITEBYTECODE=1 an editable checkout
would otherwise compile copyjit from source in every run. Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bytecode import compile_copyjit

EXAMPLES = Path(__file__).parent.parent / "examples"


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("names", nargs="*", help="example names (default: all)")
    args = parser.parse_args()
    compile_copyjit()
    programs = sorted(EXAMPLES.glob("*.py"))
    if args.names:
        programs = [p for p in programs if p.stem in args.names]
    print(f"Python {sys.version.split()[0]} ({sys.executable}), {args.repeat} interleaved repeats\n")
    print(f"{'example':<20} {'CPython s':>10} {'copyjit s':>10} {'ratio median':>13} {'min':>6} {'max':>6}")
    for program in programs:
        plain, jitted, ratios = [], [], []
        for _ in range(args.repeat):
            a, out_a = timed([sys.executable, str(program)])
            b, out_b = timed([sys.executable, "-m", "copyjit", "run", str(program)])
            if out_a != out_b:
                print(f"{program.stem}: OUTPUT DIFFERS", file=sys.stderr)
                return 1
            plain.append(a)
            jitted.append(b)
            ratios.append(a / b)
        print(f"{program.stem:<20} {statistics.median(plain):>10.3f} {statistics.median(jitted):>10.3f} "
              f"{statistics.median(ratios):>13.2f} {min(ratios):>6.2f} {max(ratios):>6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
