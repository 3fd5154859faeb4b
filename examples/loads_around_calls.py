"""A loop that runs code (`str(i)` is a call, whose code the trace does not
see) and loads globals, a builtin and a module attribute every iteration:
licm loads them once, before the loop, and the loop tests an epoch of
watched dict keys where it loaded them after code ran (licm_code.py).
`python -m copyjit explain examples/loads_around_calls.py` shows the
`watch_epoch` before `loop_head` and the `guard_watched` in the loop."""
import math
import sys


class Point:
    def __init__(self, x: float) -> None:
        self.x = x


def scaled(p: Point) -> float:
    return p.x * 2.0


def work(n: int) -> float:
    total = 0.0
    points = [Point(float(i)) for i in range(10)]
    for i in range(n):
        p = points[i % 10]
        total += scaled(p) + math.sqrt(abs(p.x)) + len(str(i))
    return total


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    print(f"{work(n):.6f}")
