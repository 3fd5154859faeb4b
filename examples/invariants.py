"""A loop that computes, every iteration, values that never change in it:
`(k + 1)`, `math.sqrt(w)`, `len(data)` and the test of `flag` (licm
computes them once, before the loop)."""
import math
import sys


def total(n: int, k: int = 2, w: float = 2.0, flag: bool = True) -> float:
    acc = 0.0
    data = [1.0, 2.0, 3.0]
    for i in range(n):
        if flag:
            acc += i * (k + 1) * 0.5
        acc += data[k] * math.sqrt(w) + w / len(data)
    return acc


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    print(f"{total(n):.6f}")
