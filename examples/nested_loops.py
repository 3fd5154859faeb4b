"""Nested loops: the inner one is hot."""
import sys


def table(n: int) -> int:
    total = 0
    for i in range(n):
        for j in range(i):
            total += (i * j) % 11 - 5
    return total


if __name__ == "__main__":
    print(table(int(sys.argv[1]) if len(sys.argv) > 1 else 2_500))
