"""An integer loop whose values outgrow 64 bits: the JIT must still give Python's answer."""
import sys


def grow(n: int) -> int:
    x, i = 1, 0
    while i < n:
        x = x * 3 + i
        i += 1
    return x


if __name__ == "__main__":
    value = grow(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000)
    print(value.bit_length(), value % 1_000_000_007)
