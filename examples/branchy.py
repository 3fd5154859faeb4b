"""A loop that branches on its data."""
import sys


def collatz_steps(limit: int) -> int:
    longest = 0
    for start in range(1, limit):
        n, steps = start, 0
        while n != 1:
            if n % 2 == 0:  # noqa: SIM108 - a branch, on purpose
                n = n // 2
            else:
                n = 3 * n + 1
            steps += 1
        if steps > longest:
            longest = steps
    return longest


if __name__ == "__main__":
    print(collatz_steps(int(sys.argv[1]) if len(sys.argv) > 1 else 60_000))
