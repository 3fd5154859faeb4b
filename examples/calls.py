"""A loop calling a Python function and math functions."""
import math
import sys


def weight(x: float) -> float:
    return x * x + 1.0


def integrate(n: int) -> float:
    h = 1.0 / n
    total = 0.0
    for i in range(n):
        x = (i + 0.5) * h
        total += math.sqrt(weight(x)) * h + abs(math.sin(x)) * 0.0
    return total


if __name__ == "__main__":
    print(f"{integrate(int(sys.argv[1]) if len(sys.argv) > 1 else 500_000):.12f}")
