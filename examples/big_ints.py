"""An integer loop whose values outgrow 64 bits: the JIT must still give Python's answer."""
import sys


def grow(n: int) -> int:
    x, i = 1, 0
    while i < n:
        x = x * 3 + i
        i += 1
    return x


def digest(n: int) -> tuple[int, int]:
    """grow(n)'s size in bits and its value modulo a prime (its decimal
    digits would be too many to print: CPython refuses over 4,300)."""
    value = grow(n)
    return value.bit_length(), value % 1_000_000_007


if __name__ == "__main__":
    print(*digest(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000))
