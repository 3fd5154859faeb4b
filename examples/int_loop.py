"""An integer loop whose values stay in 64 bits (a linear congruential generator)."""
import sys


def checksum(n: int) -> int:
    x, total = 12345, 0
    for i in range(n):
        x = (x * 1103515245 + 12345) % 2147483648
        total += x // 65536 - i % 7
    return total


if __name__ == "__main__":
    print(checksum(int(sys.argv[1]) if len(sys.argv) > 1 else 3_000_000))
