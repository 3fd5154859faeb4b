"""Float accumulation over a range: the loop copyjit keeps unboxed."""
import sys


def total(n: int) -> float:
    acc = 0.0
    for i in range(n):
        acc += i * 0.5 - 0.25
    return acc


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000
    print(f"{total(n):.6f}")
